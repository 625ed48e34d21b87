using Engine.Autodiff;
using Engine.Kernels;
using Engine.Optim;
using Engine.Tests.Kernels;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Gradient clipping by global norm and by value, per kernel set, against a host computation (double precision,
/// PyTorch's rule: factor min(1, max / (norm + 1e-6))).
/// </summary>
public abstract class GradientClippingTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private static object[] Row(params object[] v) => v;

    /// <summary>Norm types 1, 2, 3 and ∞, each with a bound that clips and one that does not.</summary>
    public static IEnumerable<object[]> Norms(ShapeTier tier)
    {
        foreach (var p in new[] { 1f, 2f, 3f, float.PositiveInfinity })
            foreach (var clips in new[] { true, false })
                yield return Row(p, clips);
    }

    /// <summary>Three parameters with gradients of awkward shapes, and one without.</summary>
    private (Tensor[] Parameters, float[][] Grads) Setup(int seed)
    {
        var rng = new Random(seed);
        int[][] shapes = [[3, 5], [7], [1]];
        var ps = new List<Tensor>();
        var gs = new List<float[]>();
        foreach (var s in shapes)
        {
            var p = Tensor.Zeros(s, Device);
            p.RequiresGrad = true;
            var g = Inputs.Uniform(rng, Shape.Size(s), -2, 2);
            p.Grad = Tensor.FromArray(g, s, Device);
            ps.Add(p);
            gs.Add(g);
        }
        var unused = Tensor.Zeros([4], Device);
        unused.RequiresGrad = true;
        ps.Add(unused);
        return (ps.ToArray(), gs.ToArray());
    }

    private static double HostNorm(float[][] grads, float p)
    {
        var all = grads.SelectMany(g => g).Select(v => Math.Abs((double)v)).ToList();
        return float.IsPositiveInfinity(p) ? all.Max() : Math.Pow(all.Sum(v => Math.Pow(v, p)), 1.0 / p);
    }

    [Theory, KernelCases(nameof(Norms))]
    public void ClipGradNormScalesAllGradientsTogether(float p, bool clips)
    {
        var (ps, grads) = Setup(p.GetHashCode() + (clips ? 1 : 0));
        double norm = HostNorm(grads, p);
        float maxNorm = clips ? (float)(norm / 3) : (float)(norm * 2);
        using var total = GradientClipping.ClipGradNorm(ps, maxNorm, p);
        Assert.Equal([], total.Shape);
        Assert.Same(Device, total.Device);
        Assert.True(Math.Abs(total.Item() - norm) <= 3e-5 * norm, $"norm {total.Item()}, host {norm}");
        double factor = Math.Min(1.0, maxNorm / (norm + 1e-6));
        for (int k = 0; k < grads.Length; k++)
        {
            var actual = ps[k].Grad!.ToArray();
            for (int i = 0; i < actual.Length; i++)
            {
                if (!clips) Assert.Equal(grads[k][i], actual[i]); // factor exactly 1: untouched
                else Assert.True(Math.Abs(actual[i] - grads[k][i] * factor) <= 3e-5 * Math.Abs(grads[k][i] * factor) + 1e-7,
                    $"p={p}: gradient {k}[{i}] is {actual[i]}, expected {grads[k][i] * factor}");
            }
        }
        Assert.Null(ps[^1].Grad);
        if (clips) Assert.True(Math.Abs(HostNorm(ps[..^1].Select(q => q.Grad!.ToArray()).ToArray(), p) - maxNorm) <= 1e-4 * maxNorm);
        foreach (var q in ps) q.Dispose();
    }

    [Fact]
    public void ClipGradValueClampsEveryElement()
    {
        var (ps, grads) = Setup(11);
        GradientClipping.ClipGradValue(ps, 0.75f);
        for (int k = 0; k < grads.Length; k++)
            Assert.Equal(grads[k].Select(v => Math.Clamp(v, -0.75f, 0.75f)), ps[k].Grad!.ToArray());
        foreach (var q in ps) q.Dispose();
    }

    [Fact]
    public void NoGradientsGiveAZeroNormAndBadInputIsRefused()
    {
        using var p = Tensor.Zeros([3], Device);
        p.RequiresGrad = true;
        using var zero = GradientClipping.ClipGradNorm([p], 1f);
        Assert.Equal(0f, zero.Item());
        Assert.Contains("maxNorm", Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradNorm([p], -1f)).Message);
        Assert.Contains("normType", Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradNorm([p], 1f, 0f)).Message);
        Assert.Contains("clipValue", Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradValue([p], float.NaN)).Message);
        // A gradient recorded with createGraph belongs to a graph: it cannot change in place.
        var loss = (p * p).Sum();
        loss.Backward(createGraph: true);
        Assert.Contains("recorded graph", Assert.Throws<InvalidOperationException>(() => GradientClipping.ClipGradNorm([p], 1f)).Message);
    }
}

/// <summary>The CPU SIMD set.</summary>
public sealed class CpuGradientClippingTests : GradientClippingTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Cpu;
}

/// <summary>The ILGPU set on its CPU emulator.</summary>
[Collection("ilgpu")]
public sealed class IlgpuGradientClippingTests : GradientClippingTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
