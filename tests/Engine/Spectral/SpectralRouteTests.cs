using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The two routes of <see cref="SpectralTransform"/> (truncated-DFT GEMMs and the FFT ops plus bin gathers) give the
/// same values and the same gradients, on both kernel sets (the ILGPU one through its CPU emulator: tiny shapes).
/// </summary>
public abstract class SpectralRouteTestsBase
{
    /// <summary>The device under test.</summary>
    protected abstract Device D { get; }

    private static void Close(float[] a, float[] b, double tol, string what)
    {
        Assert.Equal(a.Length, b.Length);
        double scale = Math.Max(1.0, a.Max(v => Math.Abs((double)v)));
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(a[i] - b[i]) <= tol * scale, $"{what}[{i}]: gemm {a[i]} vs fft {b[i]} (scale {scale:G3})");
    }

    /// <summary>Output and the gradient of Σ y·r with respect to the input, on one route.</summary>
    private (float[] Y, float[] G) Run(int[] shape, Func<Tensor, SpectralRoute, Tensor> f, SpectralRoute route, int seed)
    {
        using var scope = new TensorScope();
        var x = Tensor.Normal(shape, (ulong)seed, device: D);
        x.RequiresGrad = true;
        var y = f(x, route);
        var r = Tensor.Normal(y.Shape, (ulong)seed + 100, device: D);
        (y * r).Sum().Backward();
        return (y.ToArray(), x.Grad!.ToArray());
    }

    private void Compare(int[] shape, Func<Tensor, SpectralRoute, Tensor> f, int seed)
    {
        var g = Run(shape, f, SpectralRoute.Gemm, seed);
        var h = Run(shape, f, SpectralRoute.Fft, seed);
        Close(g.Y, h.Y, 2e-5 * shape.Max(), "y");
        Close(g.G, h.G, 2e-5 * shape.Max(), "dx");
    }

    [Theory]
    [InlineData(new[] { 2, 8, 3 }, 1, 3)]
    [InlineData(new[] { 2, 8, 3 }, 1, 5)]   // all bins, even n (Nyquist kept)
    [InlineData(new[] { 3, 7 }, -1, 4)]     // all bins, odd n, axis last
    [InlineData(new[] { 1, 1, 2 }, 1, 1)]
    [InlineData(new[] { 2, 3, 11, 2 }, 2, 4)]
    [InlineData(new[] { 17, 2 }, 0, 6)]     // axis first
    public void RfftModesRoutesAgree(int[] shape, int axis, int modes) =>
        Compare(shape, (x, route) => SpectralTransform.RfftModes(x, modes, axis, route), 1);

    [Theory]
    [InlineData(new[] { 2, 6, 3 }, 1, 8)]
    [InlineData(new[] { 2, 10, 3 }, 1, 8)]  // all bins, even n: Im of DC and Nyquist ignored by both
    [InlineData(new[] { 3, 8 }, -1, 7)]     // all bins, odd n
    [InlineData(new[] { 1, 2, 2 }, 1, 1)]
    [InlineData(new[] { 2, 6, 2 }, 0, 13)]
    public void IrfftModesRoutesAgree(int[] shape, int axis, int n) =>
        Compare(shape, (x, route) => SpectralTransform.IrfftModes(x, n, axis, route), 2);

    [Theory]
    [InlineData(new[] { 2, 5, 6, 3 }, 2, 2)]
    [InlineData(new[] { 1, 4, 4, 2 }, 2, 3)]    // every row and column bin
    [InlineData(new[] { 2, 7, 5, 1 }, 3, 3)]    // odd sizes, all columns
    [InlineData(new[] { 3, 2, 9, 8, 2 }, 4, 2)] // two leading axes
    public void Rfft2ModesRoutesAgree(int[] shape, int modes1, int modes2) =>
        Compare(shape, (x, route) => SpectralTransform.Rfft2Modes(x, modes1, modes2, route), 3);

    [Theory]
    [InlineData(new[] { 2, 4, 2, 2, 3 }, 5, 6)]
    [InlineData(new[] { 1, 4, 2, 3, 2 }, 4, 4)] // every row and column bin
    [InlineData(new[] { 2, 6, 2, 3, 1 }, 7, 5)] // odd sizes, all columns
    [InlineData(new[] { 1, 2, 2, 2, 2, 2 }, 3, 9)]
    public void Irfft2ModesRoutesAgree(int[] shape, int h, int w) =>
        Compare(shape, (x, route) => SpectralTransform.Irfft2Modes(x, h, w, route), 4);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SpectralConvRoutesAgreeInOutputAndWeightGradients(bool twoD)
    {
        (float[] Y, float[] Gx, float[] Gr, float[] Gi) Go(SpectralRoute route)
        {
            using var scope = new TensorScope();
            using var forced = SpectralRoutePolicy.Force(route);
            Module conv = twoD ? new SpectralConv2d(2, 3, 2, 2, seed: 3, device: D) : new SpectralConv1d(2, 3, 3, seed: 3, device: D);
            using (conv)
            {
                var p = conv.Parameters();
                using (var t = Tensor.Normal(p[0].Shape, 4, device: D)) p[0].CopyFrom(t);
                using (var t = Tensor.Normal(p[1].Shape, 5, device: D)) p[1].CopyFrom(t);
                var x = Tensor.Normal(twoD ? [2, 5, 6, 2] : [2, 7, 2], 6, device: D);
                x.RequiresGrad = true;
                var y = conv.Forward(x);
                y.Square().Sum().Backward();
                return (y.ToArray(), x.Grad!.ToArray(), p[0].Grad!.ToArray(), p[1].Grad!.ToArray());
            }
        }
        var g = Go(SpectralRoute.Gemm);
        var f = Go(SpectralRoute.Fft);
        Close(g.Y, f.Y, 1e-4, "y");
        Close(g.Gx, f.Gx, 1e-4, "dx");
        Close(g.Gr, f.Gr, 1e-4, "dRe");
        Close(g.Gi, f.Gi, 1e-4, "dIm");
    }
}

/// <summary>Route agreement on the CPU kernel set, plus gradchecks of the FFT route and the route rule.</summary>
public class SpectralRouteCpuTests : SpectralRouteTestsBase
{
    /// <inheritdoc />
    protected override Device D => Device.Cpu;

    [Fact]
    public void SpectralConv1dFftRouteGradCheck()
    {
        using var conv = new SpectralConv1d(3, 2, 3, seed: 4, device: D);
        using (var t = Tensor.Normal(conv.WeightRe.Shape, 11, device: D)) conv.WeightRe.CopyFrom(t);
        using (var t = Tensor.Normal(conv.WeightIm.Shape, 12, device: D)) conv.WeightIm.CopyFrom(t);
        var x = Tensor.Normal([2, 7, 3], 5, device: D);
        x.RequiresGrad = true;
        using var forced = SpectralRoutePolicy.Force(SpectralRoute.Fft);
        GradCheck.Assert(_ => conv.Forward(x), [x, conv.WeightRe, conv.WeightIm], maxEntriesPerInput: 24);
    }

    [Fact]
    public void SpectralConv2dFftRouteGradCheck()
    {
        using var conv = new SpectralConv2d(2, 3, 2, 2, seed: 6, device: D);
        using (var t = Tensor.Normal(conv.WeightRe.Shape, 11, device: D)) conv.WeightRe.CopyFrom(t);
        using (var t = Tensor.Normal(conv.WeightIm.Shape, 12, device: D)) conv.WeightIm.CopyFrom(t);
        var x = Tensor.Normal([2, 5, 4, 2], 7, device: D);
        x.RequiresGrad = true;
        using var forced = SpectralRoutePolicy.Force(SpectralRoute.Fft);
        GradCheck.Assert(_ => conv.Forward(x), [x, conv.WeightRe, conv.WeightIm], maxEntriesPerInput: 24);
    }

    [Fact]
    public void FftRouteSecondOrderGradCheck()
    {
        // Gradient of Σ irfft(rfft(x))² along a middle axis, differentiated again through the FFT ops and gathers.
        var x = Tensor.Normal([2, 6, 2], 9, device: D);
        x.RequiresGrad = true;
        GradCheck.Assert(a =>
        {
            using var mode = GradMode.EnableGrad();
            var saved = a[0].Grad;
            a[0].Grad = null;
            var y = SpectralTransform.IrfftModes(SpectralTransform.RfftModes(a[0], 3, 1, SpectralRoute.Fft), 6, 1, SpectralRoute.Fft);
            y.Square().Sum().Backward(createGraph: true);
            var g = a[0].Grad!;
            a[0].Grad = saved;
            return g;
        }, [x], maxEntriesPerInput: 12);
    }

    [Fact]
    public void RouteRuleFollowsTheMeasuredCrossover()
    {
        var cpu = Device.Cpu;
        Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose1d(cpu, 1024, 16));  // Burgers
        Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose1d(cpu, 1024, 64));
        Assert.Equal(SpectralRoute.Fft, SpectralRoutePolicy.Choose1d(cpu, 1024, 128));
        Assert.Equal(SpectralRoute.Fft, SpectralRoutePolicy.Choose1d(cpu, 4096, 256));
        Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose2d(cpu, 85, 85, 12, 12)); // Darcy
        Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose2d(cpu, 64, 64, 32, 32));
        Assert.Equal(SpectralRoute.Fft, SpectralRoutePolicy.Choose2d(cpu, 512, 512, 64, 128));
    }

    [Fact]
    public void ForceScopeOverridesAutoAndRestores()
    {
        // Under Force(Fft) a layer's auto route runs the FFT ops: its graph holds an index_select (the bin gather).
        using var conv = new SpectralConv1d(1, 1, 2, seed: 3, device: D);
        var x = Tensor.Normal([2, 8, 1], 1, device: D);
        x.RequiresGrad = true;
        using (SpectralRoutePolicy.Force(SpectralRoute.Fft))
            Assert.Contains("index_select", OpNames(conv.Forward(x)));
        Assert.DoesNotContain("index_select", OpNames(conv.Forward(x)));
        conv.Route = SpectralRoute.Fft; // an explicit route wins over the policy
        Assert.Contains("index_select", OpNames(conv.Forward(x)));
    }

    [Fact]
    public void TransformsRejectAutoAsARoute()
    {
        var x = Tensor.Normal([2, 8], 1, device: D);
        var e = Assert.Throws<ArgumentException>(() => SpectralTransform.RfftModes(x, 2, route: SpectralRoute.Auto));
        Assert.Contains("rfft_modes", e.Message);
        Assert.Contains("SpectralRoutePolicy", e.Message);
    }

    private static string OpNames(Tensor t) => t.Node is null ? "" : t.Node.Op + " " + string.Join(" ", t.Node.Inputs.Select(OpNames));
}

/// <summary>Route agreement on the ILGPU kernel set (Stockham FFT for powers of two, DFT otherwise; tiny shapes on the emulator).</summary>
[Collection("ilgpu")]
public class SpectralRouteIlgpuTests : SpectralRouteTestsBase
{
    /// <inheritdoc />
    protected override Device D => TestDevices.Ilgpu;

    /// <summary>Until the crossover is measured on a GPU, ILGPU devices take the GEMM route; never the FFT route for lengths that are not powers of two.</summary>
    [Fact]
    public void PolicyPerDeviceKind()
    {
        Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose1d(D, 1024, 512));
        double saved = SpectralRoutePolicy.FftModesFactor(D.Kind);
        try
        {
            SpectralRoutePolicy.SetFftModesFactor(D.Kind, 1.0);
            Assert.Equal(SpectralRoute.Fft, SpectralRoutePolicy.Choose1d(D, 1024, 16));
            Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose1d(D, 1000, 16)); // ILGPU's DFT path
            Assert.Equal(SpectralRoute.Gemm, SpectralRoutePolicy.Choose2d(D, 85, 85, 12, 12));
        }
        finally
        {
            SpectralRoutePolicy.SetFftModesFactor(D.Kind, saved);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => SpectralRoutePolicy.SetFftModesFactor(D.Kind, 0));
    }
}
