using Engine.Kernels;
using Engine.Kernels.Cpu.Fft;

namespace Engine.Tests.Kernels;

/// <summary>
/// The FFT kernels (<see cref="IFftKernels.Fft"/>, Rfft, Irfft, Rfft2, Irfft2) against naive O(n²) DFTs in double
/// precision, per kernel set, on the set's own FFTs and on the composite fallback (dense DFTs as core GEMMs). Error measure: ||actual - reference||₂ / ||reference||₂ over the whole output, below 1e-5. Lengths cover
/// every path of the CPU set (powers of two, mixed radix 2/3/5/7, Bluestein for larger prime factors, length 1) and
/// batches that fill a lane group (8 or 16 rows), leave a partial one, or are a single row. Outputs are pre-filled with NaN.
/// </summary>
public abstract class FftKernelTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    /// <summary>The transforms under test: the set's own, or (composite subclasses) the fallback over its core.</summary>
    protected virtual IFftKernels F => K.FftKernels();

    private const double RelTol = 1e-5;

    /// <summary>All the lengths the issue lists.</summary>
    public static readonly int[] AllLengths = [1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 64, 85, 97, 128, 141, 211, 256, 421, 1024];

    /// <summary>A subset for the slow emulator.</summary>
    public static readonly int[] SmallLengths = [1, 2, 3, 5, 8, 16, 17, 31, 64];

    /// <summary>(batch, n) cases by tier.</summary>
    public static IEnumerable<object[]> Cases1D(ShapeTier tier)
    {
        var lengths = tier == ShapeTier.Full ? AllLengths : SmallLengths;
        int[] batches = tier == ShapeTier.Full ? [1, 19] : [1, 3];
        foreach (var n in lengths)
            foreach (var b in batches)
                yield return [b, n];
        // Full lane groups at 8 and 16 lanes (the transposed loads and stores), then a partial one.
        yield return [16, 16];
        yield return [33, 8];
        if (tier == ShapeTier.Full)
        {
            // Two full lane groups, every mixed-radix factor, and a long Bluestein length.
            yield return new object[] { 32, 512 };
            yield return new object[] { 5, 210 };
            yield return new object[] { 3, 2 * 3 * 5 * 7 * 4 };
            yield return new object[] { 2, 1009 };
        }
    }

    /// <summary>(batch, h, w) cases by tier.</summary>
    public static IEnumerable<object[]> Cases2D(ShapeTier tier)
    {
        yield return [1, 1, 1];
        yield return [2, 3, 4];
        yield return [1, 5, 7];
        yield return [2, 4, 2];
        yield return [1, 8, 30];
        if (tier == ShapeTier.Full)
        {
            yield return [3, 16, 16];
            yield return [2, 17, 33];
            yield return [1, 85, 85];
            yield return [2, 64, 64];
            yield return [1, 21, 40];
        }
    }

    private static float[] Random(int seed, long n)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private DeviceBuffer<float> Upload(float[] data)
    {
        var b = K.Allocate(Math.Max(1, data.Length));
        b.CopyFromHost(data);
        return b;
    }

    private DeviceBuffer<float> Nans(long n)
    {
        var h = new float[Math.Max(1, n)];
        Array.Fill(h, float.NaN);
        return Upload(h);
    }

    private static void AssertClose(double[] expected, float[] actual, string what)
    {
        Assert.True(actual.Length >= expected.Length, $"{what}: {actual.Length} outputs, expected {expected.Length}");
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"{what}: output {i} is NaN (not written?)");
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        double rel = Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
        Assert.True(rel < RelTol, $"{what}: relative L2 error {rel:G3} ≥ {RelTol:G1}");
    }

    // ----- references (double precision, naive) -----

    /// <summary>Naive complex DFT of each row of [batch, n, 2], sign -1 forward, +1 inverse, times scale.</summary>
    public static double[] NaiveDft(float[] x, int batch, int n, int sign, double scale)
    {
        var y = new double[(long)batch * n * 2];
        for (int b = 0; b < batch; b++)
            for (int k = 0; k < n; k++)
            {
                double sr = 0, si = 0;
                for (int j = 0; j < n; j++)
                {
                    double a = sign * 2 * Math.PI * ((long)j * k % n) / n;
                    double c = Math.Cos(a), s = Math.Sin(a);
                    double xr = x[((long)b * n + j) * 2], xi = x[((long)b * n + j) * 2 + 1];
                    sr += xr * c - xi * s;
                    si += xr * s + xi * c;
                }
                y[((long)b * n + k) * 2] = sr * scale;
                y[((long)b * n + k) * 2 + 1] = si * scale;
            }
        return y;
    }

    /// <summary>Naive rfft of each row of [batch, n]: [batch, n/2 + 1, 2].</summary>
    public static double[] NaiveRfft(float[] x, int batch, int n)
    {
        int bins = n / 2 + 1;
        var y = new double[(long)batch * bins * 2];
        for (int b = 0; b < batch; b++)
            for (int k = 0; k < bins; k++)
            {
                double sr = 0, si = 0;
                for (int j = 0; j < n; j++)
                {
                    double a = -2 * Math.PI * ((long)j * k % n) / n;
                    sr += x[(long)b * n + j] * Math.Cos(a);
                    si += x[(long)b * n + j] * Math.Sin(a);
                }
                y[((long)b * bins + k) * 2] = sr;
                y[((long)b * bins + k) * 2 + 1] = si;
            }
        return y;
    }

    /// <summary>NumPy's irfft by its definition: Hermitian extension, imaginary parts of DC and Nyquist ignored, 1/n.</summary>
    public static double[] NaiveIrfft(float[] x, int batch, int n)
    {
        int bins = n / 2 + 1;
        var y = new double[(long)batch * n];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int k = 0; k < n; k++)
                {
                    int src = k < bins ? k : n - k;
                    double xr = x[((long)b * bins + src) * 2];
                    double xi = k < bins ? x[((long)b * bins + src) * 2 + 1] : -x[((long)b * bins + src) * 2 + 1];
                    if (k == 0 || 2 * k == n) xi = 0;
                    double a = 2 * Math.PI * ((long)j * k % n) / n;
                    acc += xr * Math.Cos(a) - xi * Math.Sin(a);
                }
                y[(long)b * n + j] = acc / n;
            }
        return y;
    }

    /// <summary>Naive 2-D DFT of real [batch, h, w], kept bins k2 ≤ w/2: [batch, h, w/2 + 1, 2].</summary>
    public static double[] NaiveRfft2(float[] x, int batch, int h, int w)
    {
        int m = w / 2 + 1;
        var y = new double[(long)batch * h * m * 2];
        for (int b = 0; b < batch; b++)
            for (int k1 = 0; k1 < h; k1++)
                for (int k2 = 0; k2 < m; k2++)
                {
                    double sr = 0, si = 0;
                    for (int j1 = 0; j1 < h; j1++)
                        for (int j2 = 0; j2 < w; j2++)
                        {
                            double a = -2 * Math.PI * ((double)((long)j1 * k1 % h) / h + (double)((long)j2 * k2 % w) / w);
                            double v = x[((long)b * h + j1) * w + j2];
                            sr += v * Math.Cos(a);
                            si += v * Math.Sin(a);
                        }
                    long o = (((long)b * h + k1) * m + k2) * 2;
                    y[o] = sr;
                    y[o + 1] = si;
                }
        return y;
    }

    /// <summary>NumPy's irfft2: inverse DFT along h (1/h), then irfft along w.</summary>
    public static double[] NaiveIrfft2(float[] x, int batch, int h, int w)
    {
        int m = w / 2 + 1;
        var mid = new float[(long)batch * h * m * 2];
        // Along h in double, rounded to float only for the irfft reference's input type; keep precision by scaling.
        var midD = new double[mid.Length];
        for (int b = 0; b < batch; b++)
            for (int j1 = 0; j1 < h; j1++)
                for (int k2 = 0; k2 < m; k2++)
                {
                    double sr = 0, si = 0;
                    for (int k1 = 0; k1 < h; k1++)
                    {
                        double a = 2 * Math.PI * ((long)j1 * k1 % h) / h;
                        long i = (((long)b * h + k1) * m + k2) * 2;
                        sr += x[i] * Math.Cos(a) - x[i + 1] * Math.Sin(a);
                        si += x[i] * Math.Sin(a) + x[i + 1] * Math.Cos(a);
                    }
                    long o = (((long)b * h + j1) * m + k2) * 2;
                    midD[o] = sr / h;
                    midD[o + 1] = si / h;
                }
        var y = new double[(long)batch * h * w];
        for (long r = 0; r < (long)batch * h; r++)
            for (int j = 0; j < w; j++)
            {
                double acc = 0;
                for (int k = 0; k < w; k++)
                {
                    int src = k < m ? k : w - k;
                    double xr = midD[(r * m + src) * 2];
                    double xi = k < m ? midD[(r * m + src) * 2 + 1] : -midD[(r * m + src) * 2 + 1];
                    if (k == 0 || 2 * k == w) xi = 0;
                    double a = 2 * Math.PI * ((long)j * k % w) / w;
                    acc += xr * Math.Cos(a) - xi * Math.Sin(a);
                }
                y[r * w + j] = acc / w;
            }
        return y;
    }

    // ----- tests -----

    /// <summary>Forward and inverse complex FFT against the naive DFT (inverse with scale 1/n, as NumPy's ifft).</summary>
    [Theory, KernelCases(nameof(Cases1D))]
    public void Fft_matches_naive_dft(int batch, int n)
    {
        var x = Random(n * 31 + batch, (long)batch * n * 2);
        using var xb = Upload(x);
        using var yb = Nans((long)batch * n * 2);
        F.Fft(xb, yb, batch, n, inverse: false, 1f);
        AssertClose(NaiveDft(x, batch, n, -1, 1), yb.ToArray(), $"fft batch {batch} n {n}");
        F.Fft(xb, yb, batch, n, inverse: true, 1f / n);
        AssertClose(NaiveDft(x, batch, n, +1, 1.0 / n), yb.ToArray(), $"ifft batch {batch} n {n}");
    }

    /// <summary>rfft against the naive DFT; DC and (even n) Nyquist imaginary parts are exactly 0.</summary>
    [Theory, KernelCases(nameof(Cases1D))]
    public void Rfft_matches_naive_dft(int batch, int n)
    {
        var x = Random(n * 7 + batch, (long)batch * n);
        int bins = n / 2 + 1;
        using var xb = Upload(x);
        using var yb = Nans((long)batch * bins * 2);
        F.Rfft(xb, yb, batch, n);
        var y = yb.ToArray();
        AssertClose(NaiveRfft(x, batch, n), y, $"rfft batch {batch} n {n}");
        for (int b = 0; b < batch; b++)
        {
            Assert.Equal(0f, y[(long)b * bins * 2 + 1]);
            if (n % 2 == 0) Assert.Equal(0f, y[((long)b * bins + n / 2) * 2 + 1]);
        }
    }

    /// <summary>irfft against NumPy's definition, with nonzero imaginary DC/Nyquist parts in the input (ignored).</summary>
    [Theory, KernelCases(nameof(Cases1D))]
    public void Irfft_matches_naive_definition(int batch, int n)
    {
        int bins = n / 2 + 1;
        var x = Random(n * 13 + batch, (long)batch * bins * 2);
        using var xb = Upload(x);
        using var yb = Nans((long)batch * n);
        F.Irfft(xb, yb, batch, n);
        AssertClose(NaiveIrfft(x, batch, n), yb.ToArray(), $"irfft batch {batch} n {n}");
    }

    /// <summary>irfft(rfft(x)) = x, and Parseval: Σ x² = (1/n) Σ_k c_k |X_k|² (c_k = 2 except DC and Nyquist).</summary>
    [Theory, KernelCases(nameof(Cases1D))]
    public void Rfft_round_trip_and_parseval(int batch, int n)
    {
        var x = Random(n * 17 + batch, (long)batch * n);
        int bins = n / 2 + 1;
        using var xb = Upload(x);
        using var fb = Nans((long)batch * bins * 2);
        using var yb = Nans((long)batch * n);
        F.Rfft(xb, fb, batch, n);
        F.Irfft(fb, yb, batch, n);
        AssertClose(Array.ConvertAll(x, v => (double)v), yb.ToArray(), $"irfft(rfft) batch {batch} n {n}");
        var f = fb.ToArray();
        for (int b = 0; b < batch; b++)
        {
            double energy = 0, spectral = 0;
            for (int j = 0; j < n; j++) energy += (double)x[(long)b * n + j] * x[(long)b * n + j];
            for (int k = 0; k < bins; k++)
            {
                double c = k == 0 || 2 * k == n ? 1 : 2;
                double re = f[((long)b * bins + k) * 2], im = f[((long)b * bins + k) * 2 + 1];
                spectral += c * (re * re + im * im);
            }
            spectral /= n;
            Assert.True(Math.Abs(energy - spectral) <= 1e-5 * energy + 1e-12, $"Parseval n {n} row {b}: Σx² {energy:R}, spectrum {spectral:R}");
        }
    }

    /// <summary>ifft(fft(z)) = z.</summary>
    [Theory, KernelCases(nameof(Cases1D))]
    public void Fft_inverse_round_trip(int batch, int n)
    {
        var x = Random(n * 5 + batch, (long)batch * n * 2);
        using var xb = Upload(x);
        using var fb = Nans((long)batch * n * 2);
        using var yb = Nans((long)batch * n * 2);
        F.Fft(xb, fb, batch, n, false, 1f);
        F.Fft(fb, yb, batch, n, true, 1f / n);
        AssertClose(Array.ConvertAll(x, v => (double)v), yb.ToArray(), $"ifft(fft) batch {batch} n {n}");
    }

    /// <summary>rfft2 against the naive 2-D DFT, irfft2 against NumPy's definition, and the round trip.</summary>
    [Theory, KernelCases(nameof(Cases2D))]
    public void Rfft2_and_irfft2_match_naive(int batch, int h, int w)
    {
        int m = w / 2 + 1;
        var x = Random(h * 100 + w, (long)batch * h * w);
        using var xb = Upload(x);
        using var fb = Nans((long)batch * h * m * 2);
        using var yb = Nans((long)batch * h * w);
        F.Rfft2(xb, fb, batch, h, w);
        AssertClose(NaiveRfft2(x, batch, h, w), fb.ToArray(), $"rfft2 [{batch},{h},{w}]");
        F.Irfft2(fb, yb, batch, h, w);
        AssertClose(Array.ConvertAll(x, v => (double)v), yb.ToArray(), $"irfft2(rfft2) [{batch},{h},{w}]");
        // An arbitrary (non-Hermitian) spectrum: irfft2 as NumPy defines it. The input must stay untouched.
        var s = Random(h * 7 + w, (long)batch * h * m * 2);
        using var sb = Upload(s);
        F.Irfft2(sb, yb, batch, h, w);
        AssertClose(NaiveIrfft2(s, batch, h, w), yb.ToArray(), $"irfft2 [{batch},{h},{w}]");
        KernelAssert.Bitwise(s, sb.ToArray()[..s.Length], "irfft2 leaves its input unchanged");
    }

    /// <summary>A zero length is an error naming the op, thrown before any work.</summary>
    [Fact]
    public void Zero_length_throws()
    {
        using var xb = Upload(new float[4]);
        using var yb = Upload(new float[4]);
        Assert.Contains("Rfft", Assert.ThrowsAny<ArgumentException>(() => F.Rfft(xb, yb, 1, 0)).Message);
        Assert.Contains("Fft", Assert.ThrowsAny<ArgumentException>(() => F.Fft(xb, yb, 1, 0, false, 1f)).Message);
        Assert.Contains("Irfft2", Assert.ThrowsAny<ArgumentException>(() => F.Irfft2(xb, yb, 1, 0, 2)).Message);
    }

    /// <summary>An output buffer too short for the shapes is an error.</summary>
    [Fact]
    public void Short_buffer_throws()
    {
        using var xb = Upload(new float[16]);
        using var yb = Upload(new float[8]);
        Assert.ThrowsAny<ArgumentException>(() => F.Rfft(xb, yb, 1, 16));
    }
}

/// <summary>The CPU kernel set on every length.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuFftKernelTests : FftKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>The documented algorithm per length.</summary>
    [Theory]
    [InlineData(1, "pow2")]
    [InlineData(1024, "pow2")]
    [InlineData(210, "mixed-radix")]
    [InlineData(12, "mixed-radix")]
    [InlineData(85, "bluestein")]
    [InlineData(141, "bluestein")]
    [InlineData(211, "bluestein")]
    [InlineData(421, "bluestein")]
    public void Plan_kind_per_length(int n, string kind) => Assert.Equal(kind, LanePlan.Kind(n));

    /// <summary>Rows processed on several cores give the same bits as one at a time (lane groups are independent).</summary>
    [Fact]
    public void Large_batch_matches_row_by_row()
    {
        const int batch = 200, n = 256;
        var k = Device.Kernels;
        var f = k.FftKernels();
        var x = new float[batch * n];
        var rng = new Random(3);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        using var xb = k.Allocate(x.Length);
        xb.CopyFromHost(x);
        using var yb = k.Allocate(batch * (n / 2 + 1) * 2);
        f.Rfft(xb, yb, batch, n);
        var all = yb.ToArray();
        using var one = k.Allocate(n);
        using var oy = k.Allocate((n / 2 + 1) * 2);
        foreach (int r in new[] { 0, 15, 16, 199 })
        {
            one.CopyFromHost(x.AsSpan(r * n, n));
            f.Rfft(one, oy, 1, n);
            KernelAssert.Bitwise(oy.ToArray(), all[(r * (n / 2 + 1) * 2)..((r + 1) * (n / 2 + 1) * 2)], $"row {r}");
        }
    }
}

/// <summary>The ILGPU kernel set on the CPU emulator, small lengths.</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuFftKernelTests : FftKernelTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;
}

/// <summary>
/// The composite FFTs (dense DFTs as GEMMs) over the CPU set's core ops, on the small lengths (the composite's
/// arithmetic is the same at every length; the CPU GEMM's own paths are tested by the kernel-set tests).
/// </summary>
[ShapeTier(ShapeTier.Small)]
public sealed class CpuCompositeFftKernelTests : FftKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override IFftKernels F => CoreOnlyKernelSet.Of(Device.Kernels).FftKernels();
}

/// <summary>The composite FFTs over the ILGPU set's core ops on the CPU emulator, small lengths.</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuCompositeFftKernelTests : FftKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override IFftKernels F => CoreOnlyKernelSet.Of(Device.Kernels).FftKernels();
}
