using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>Truncated DFTs, complex mode mixing and the spectral layers against host references in double.</summary>
public class SpectralTests
{
    private static readonly Device Cpu = Device.Cpu;

    private static double[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => r.NextDouble() * 2 - 1).ToArray();
    }

    private static float[] F(double[] a) => a.Select(v => (float)v).ToArray();

    private static (double Re, double Im) Dft(double[] x, int offset, int stride, int n, long j)
    {
        double re = 0, im = 0;
        for (int t = 0; t < n; t++)
        {
            double a = -2 * Math.PI * ((j * t) % n) / n;
            re += x[offset + t * stride] * Math.Cos(a);
            im += x[offset + t * stride] * Math.Sin(a);
        }
        return (re, im);
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 8, 3, 5)]
    [InlineData(3, 7, 4, 1)]
    [InlineData(1, 16, 9, 2)]
    public void RfftModesMatchesHostDftAlongAnAxis(int lead, int n, int modes, int trail)
    {
        var x = Random(lead * n * trail, 1);
        using var t = Tensor.FromArray(F(x), [lead, n, trail], Cpu);
        var y = SpectralTransform.RfftModes(t, modes, axis: 1).ToArray();
        for (int l = 0; l < lead; l++)
            for (int c = 0; c < trail; c++)
                for (int j = 0; j < modes; j++)
                {
                    var (re, im) = Dft(x, l * n * trail + c, trail, n, j);
                    Assert.Equal(re, y[(l * 2 * modes + j) * trail + c], 1e-4 * n);
                    Assert.Equal(im, y[(l * 2 * modes + modes + j) * trail + c], 1e-4 * n);
                }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(1)]
    [InlineData(2)]
    public void IrfftOfTheFullHalfSpectrumIsTheIdentity(int n)
    {
        var x = Random(3 * n, 2);
        using var t = Tensor.FromArray(F(x), [3, n], Cpu);
        int k = SpectralTransform.MaxModes(n);
        var back = SpectralTransform.IrfftModes(SpectralTransform.RfftModes(t, k), n).ToArray();
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], back[i], 1e-5);
    }

    [Fact]
    public void IrfftModesIsTheZeroPaddedHermitianInverse()
    {
        // One mode j = 2 of amplitude (a + ib) in a length-10 signal: x_t = (2/N)(a cos - b sin)(2π j t/N).
        int n = 10, k = 4;
        var spec = new float[2 * k];
        spec[2] = 3f; spec[k + 2] = -1.5f; spec[0] = 5f; spec[k] = 7f; // DC imaginary part is ignored
        using var s = Tensor.FromArray(spec, [2 * k], Cpu);
        var x = SpectralTransform.IrfftModes(s, n).ToArray();
        for (int t = 0; t < n; t++)
        {
            double a = 2 * Math.PI * 2 * t / n;
            double want = 5.0 / n + 2.0 / n * (3 * Math.Cos(a) + 1.5 * Math.Sin(a));
            Assert.Equal(want, x[t], 1e-5);
        }
    }

    [Theory]
    [InlineData(1, 6, 8, 2, 3, 4)]
    [InlineData(2, 5, 7, 2, 2, 1)]
    [InlineData(1, 4, 4, 1, 3, 2)]
    public void Rfft2ModesMatchesHost2dDft(int b, int h, int w, int m1, int m2, int c)
    {
        var x = Random(b * h * w * c, 3);
        using var t = Tensor.FromArray(F(x), [b, h, w, c], Cpu);
        var y = SpectralTransform.Rfft2Modes(t, m1, m2);
        Assert.Equal([b, 2 * m1, 2, m2, c], y.Shape);
        var yy = y.ToArray();
        for (int bi = 0; bi < b; bi++)
            for (int r = 0; r < 2 * m1; r++)
            {
                int fr = r < m1 ? r : r - 2 * m1;
                for (int j = 0; j < m2; j++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        double re = 0, im = 0;
                        for (int p = 0; p < h; p++)
                            for (int q = 0; q < w; q++)
                            {
                                double a = -2 * Math.PI * ((double)fr * p / h + (double)j * q / w);
                                double v = x[((bi * h + p) * w + q) * c + ch];
                                re += v * Math.Cos(a);
                                im += v * Math.Sin(a);
                            }
                        int baseIdx = (((bi * 2 * m1 + r) * 2) * m2 + j) * c + ch;
                        Assert.Equal(re, yy[baseIdx], 1e-3);
                        Assert.Equal(im, yy[baseIdx + m2 * c], 1e-3);
                    }
            }
    }

    [Theory]
    [InlineData(6, 8)]
    [InlineData(4, 5)]
    public void Irfft2OfTheFullSpectrumIsTheIdentity(int h, int w)
    {
        var x = Random(2 * h * w * 3, 4);
        using var t = Tensor.FromArray(F(x), [2, h, w, 3], Cpu);
        var back = SpectralTransform.Irfft2Modes(SpectralTransform.Rfft2Modes(t, h / 2, w / 2 + 1), h, w).ToArray();
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], back[i], 1e-4);
    }

    [Fact]
    public void ComplexModeMixMatchesComplexArithmetic()
    {
        int m = 3, b = 2, cin = 4, cout = 5;
        var x = Random(m * b * 2 * cin, 5);
        var wr = Random(m * cin * cout, 6);
        var wi = Random(m * cin * cout, 7);
        using var xt = Tensor.FromArray(F(x), [m, b, 2 * cin], Cpu);
        using var wrt = Tensor.FromArray(F(wr), [m, cin, cout], Cpu);
        using var wit = Tensor.FromArray(F(wi), [m, cin, cout], Cpu);
        var y = xt.ComplexModeMix(wrt, wit).ToArray();
        for (int mm = 0; mm < m; mm++)
            for (int bb = 0; bb < b; bb++)
                for (int o = 0; o < cout; o++)
                {
                    double re = 0, im = 0;
                    for (int i = 0; i < cin; i++)
                    {
                        double a = x[(mm * b + bb) * 2 * cin + i], bI = x[(mm * b + bb) * 2 * cin + cin + i];
                        double c = wr[(mm * cin + i) * cout + o], d = wi[(mm * cin + i) * cout + o];
                        re += a * c - bI * d;
                        im += a * d + bI * c;
                    }
                    Assert.Equal(re, y[(mm * b + bb) * 2 * cout + o], 1e-5);
                    Assert.Equal(im, y[(mm * b + bb) * 2 * cout + cout + o], 1e-5);
                }
    }

    [Fact]
    public void ComplexModeMixGradCheck()
    {
        var x = Tensor.Normal([3, 2, 6], 1, device: Cpu);
        var wr = Tensor.Normal([3, 3, 2], 2, device: Cpu);
        var wi = Tensor.Normal([3, 3, 2], 3, device: Cpu);
        x.RequiresGrad = wr.RequiresGrad = wi.RequiresGrad = true;
        GradCheck.Assert(a => a[0].ComplexModeMix(a[1], a[2]), [x, wr, wi]);
    }

    [Fact]
    public void SpectralConv1dGradCheck()
    {
        using var conv = new SpectralConv1d(3, 2, 3, seed: 4, device: Cpu);
        FnoInitForTest(conv);
        var x = Tensor.Normal([2, 7, 3], 5, device: Cpu);
        x.RequiresGrad = true;
        GradCheck.Assert(_ => conv.Forward(x), [x, conv.WeightRe, conv.WeightIm], maxEntriesPerInput: 24);
    }

    [Fact]
    public void SpectralConv2dGradCheck()
    {
        using var conv = new SpectralConv2d(2, 3, 2, 2, seed: 6, device: Cpu);
        FnoInitForTest(conv.WeightRe, conv.WeightIm);
        var x = Tensor.Normal([2, 5, 4, 2], 7, device: Cpu);
        x.RequiresGrad = true;
        GradCheck.Assert(_ => conv.Forward(x), [x, conv.WeightRe, conv.WeightIm], maxEntriesPerInput: 24);
    }

    [Fact]
    public void SpectralConv1dSecondOrderGradCheck()
    {
        // Gradient of sum(conv(x)²) with respect to x, differentiated again (double backprop through the DFT GEMMs).
        using var conv = new SpectralConv1d(2, 2, 2, seed: 8, device: Cpu);
        FnoInitForTest(conv);
        var x = Tensor.Normal([1, 6, 2], 9, device: Cpu);
        x.RequiresGrad = true;
        GradCheck.Assert(a =>
        {
            using var mode = GradMode.EnableGrad();
            var saved = a.Select(t => t.Grad).ToArray();
            foreach (var t in a) t.Grad = null;
            conv.Forward(a[0]).Square().Sum().Backward(createGraph: true);
            var g = a[0].Grad!;
            for (int i = 0; i < a.Length; i++) a[i].Grad = saved[i];
            return g;
        }, [x, conv.WeightRe], maxEntriesPerInput: 12);
    }

    /// <summary>O(1) random weights, so that gradients are not dominated by the tiny reference scale.</summary>
    private static void FnoInitForTest(SpectralConv1d conv) => FnoInitForTest(conv.WeightRe, conv.WeightIm);

    private static void FnoInitForTest(Tensor re, Tensor im)
    {
        using (var t = Tensor.Normal(re.Shape, 11, device: Cpu)) re.CopyFrom(t);
        using (var t = Tensor.Normal(im.Shape, 12, device: Cpu)) im.CopyFrom(t);
    }

    [Theory]
    [InlineData(2, 16, 3, 4, 5)]
    [InlineData(1, 9, 2, 3, 5)]
    [InlineData(3, 10, 4, 1, 6)]
    public void SpectralConv1dEqualsNaiveHostImplementation(int b, int n, int cin, int cout, int modes)
    {
        using var conv = new SpectralConv1d(cin, cout, modes, seed: 13, device: Cpu);
        FnoInitForTest(conv);
        var wr = conv.WeightRe.ToArray().Select(v => (double)v).ToArray();
        var wi = conv.WeightIm.ToArray().Select(v => (double)v).ToArray();
        var x = Random(b * n * cin, 14);
        using var xt = Tensor.FromArray(F(x), [b, n, cin], Cpu);
        var y = conv.Forward(xt).ToArray();
        for (int bb = 0; bb < b; bb++)
        {
            // Direct DFT per channel, mix, then the inverse as a full complex sum over ±j (Hermitian extension).
            var xr = new double[cin, modes];
            var xi = new double[cin, modes];
            for (int i = 0; i < cin; i++)
                for (int j = 0; j < modes; j++)
                    (xr[i, j], xi[i, j]) = Dft(x, bb * n * cin + i, cin, n, j);
            for (int o = 0; o < cout; o++)
            {
                var spec = new System.Numerics.Complex[n];
                for (int j = 0; j < modes; j++)
                {
                    var acc = System.Numerics.Complex.Zero;
                    for (int i = 0; i < cin; i++)
                        acc += new System.Numerics.Complex(xr[i, j], xi[i, j])
                               * new System.Numerics.Complex(wr[(j * cin + i) * cout + o], wi[(j * cin + i) * cout + o]);
                    spec[j] = acc;
                }
                // A real output: the imaginary parts of DC and Nyquist are dropped, the other modes get their conjugates.
                spec[0] = new System.Numerics.Complex(spec[0].Real, 0);
                if (n % 2 == 0 && modes > n / 2) spec[n / 2] = new System.Numerics.Complex(spec[n / 2].Real, 0);
                for (int j = 1; j < modes; j++)
                    if (n - j != j) spec[n - j] = System.Numerics.Complex.Conjugate(spec[j]);
                for (int t = 0; t < n; t++)
                {
                    var s = System.Numerics.Complex.Zero;
                    for (int j = 0; j < n; j++)
                        s += spec[j] * System.Numerics.Complex.FromPolarCoordinates(1, 2 * Math.PI * ((long)j * t % n) / n);
                    Assert.True(Math.Abs(s.Imaginary) < 1e-9 * n * n);
                    Assert.Equal(s.Real / n, y[(bb * n + t) * cout + o], 1e-4);
                }
            }
        }
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        using var conv = new SpectralConv1d(3, 2, 5, device: Cpu);
        using var x7 = Tensor.Zeros([2, 7, 3], Cpu);
        var e = Assert.Throws<ArgumentException>(() => conv.Forward(x7)); // 5 modes > 7/2 + 1
        Assert.Contains("SpectralConv1d", e.Message);
        Assert.Contains("[2, 7, 3]", e.Message);
        using var wrongC = Tensor.Zeros([2, 10, 4], Cpu);
        e = Assert.Throws<ArgumentException>(() => conv.Forward(wrongC));
        Assert.Contains("[batch, n, 3]", e.Message);
        Assert.Contains("[2, 10, 4]", e.Message);
        using var empty = Tensor.Zeros([2, 0, 3], Cpu);
        e = Assert.Throws<ArgumentException>(() => conv.Forward(empty));
        Assert.Contains("n = 0", e.Message);

        using var fno = new Fno1d(9, 4, blocks: 1, projectionHidden: 4, device: Cpu);
        using var small = Tensor.Zeros([1, 12], Cpu);
        e = Assert.Throws<ArgumentException>(() => fno.Forward(small));
        Assert.Contains("Fno1d", e.Message);
        Assert.Contains("[1, 12]", e.Message);
        using var twoChannels = Tensor.Zeros([1, 32, 2], Cpu);
        e = Assert.Throws<ArgumentException>(() => fno.Forward(twoChannels));
        Assert.Contains("Fno1d", e.Message);
        using var none = Tensor.Zeros([1, 0], Cpu);
        e = Assert.Throws<ArgumentException>(() => fno.Forward(none));
        Assert.Contains("n = 0", e.Message);

        using var conv2 = new SpectralConv2d(2, 2, 3, 2, device: Cpu);
        using var short2 = Tensor.Zeros([1, 5, 8, 2], Cpu);
        e = Assert.Throws<ArgumentException>(() => conv2.Forward(short2));
        Assert.Contains("SpectralConv2d", e.Message);
        Assert.Contains("[1, 5, 8, 2]", e.Message);
        using var fno2 = new Fno2d(2, 2, 4, blocks: 1, projectionHidden: 4, device: Cpu);
        using var flat = Tensor.Zeros([1, 8], Cpu);
        e = Assert.Throws<ArgumentException>(() => fno2.Forward(flat));
        Assert.Contains("Fno2d", e.Message);

        using var v = Tensor.Zeros([4, 6], Cpu);
        e = Assert.Throws<ArgumentException>(() => SpectralTransform.RfftModes(v, 5));
        Assert.Contains("rfft_modes", e.Message);
        e = Assert.Throws<ArgumentException>(() => SpectralTransform.IrfftModes(v, 2));
        Assert.Contains("irfft_modes", e.Message);
        using var mix = Tensor.Zeros([3, 2, 6], Cpu);
        using var w = Tensor.Zeros([3, 2, 2], Cpu);
        e = Assert.Throws<ArgumentException>(() => mix.ComplexModeMix(w, w));
        Assert.Contains("complex_mode_mix", e.Message);
        Assert.Contains("[3, 2, 6]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpectralConv1d(0, 2, 3, device: Cpu));
    }

    [Fact]
    public void FnoShapesAndParameters()
    {
        using var fno = new Fno1d(4, 6, blocks: 2, projectionHidden: 5, device: Cpu);
        using var x = Tensor.Normal([3, 16], 1, device: Cpu);
        Assert.Equal([3, 16], fno.Forward(x).Shape);
        using var x3 = Tensor.Normal([3, 16, 1], 1, device: Cpu);
        Assert.Equal([3, 16], fno.Forward(x3).Shape);
        // lift 2·6+6, per block 2·4·6·6 + 6·6+6, projection 6·5+5 + 5+1.
        Assert.Equal(18 + 2 * (288 + 42) + 35 + 6, fno.ParameterCount);
        using var fno2 = new Fno2d(2, 3, 4, blocks: 1, projectionHidden: 3, device: Cpu);
        using var a = Tensor.Normal([2, 6, 5], 1, device: Cpu);
        Assert.Equal([2, 6, 5], fno2.Forward(a).Shape);
    }

    [Fact]
    public void GeluSecondMomentMatchesQuadrature()
    {
        // Simpson over [-12, 12]; Φ by the composite trapezoid rule on a finer grid.
        int n = 40000;
        double a = -12, h = 24.0 / n, phiCdf = 0, s = 0, prevPdf = 0;
        for (int i = 0; i <= n; i++)
        {
            double z = a + i * h;
            double pdf = Math.Exp(-z * z / 2) / Math.Sqrt(2 * Math.PI);
            if (i > 0) phiCdf += 0.5 * h * (pdf + prevPdf);
            prevPdf = pdf;
            double f = z * z * phiCdf * phiCdf * pdf;
            s += (i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2) * f;
        }
        Assert.Equal(FnoInit.GeluSecondMoment(1.0), s * h / 3, 1e-6);
        Assert.Equal(0.25, FnoInit.GeluSecondMoment(1e-6), 1e-3);
        Assert.Equal(0.5, FnoInit.GeluSecondMoment(1e6), 1e-3);
    }
}
