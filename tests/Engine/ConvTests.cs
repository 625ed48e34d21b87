using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Tests.Autodiff;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Convolutions (<see cref="Ops.Conv2d"/>, <see cref="Ops.Conv1d"/>, the <see cref="Conv2d"/> and <see cref="Conv1d"/>
/// layers) against a plain-loop host reference in double precision, gradchecked in input, weight and bias, on awkward
/// geometries (primes, stride, padding, dilation, groups, depthwise, a 1x1 kernel, kernels as large as the padded
/// input), on both kernel sets.
/// </summary>
public abstract class ConvTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>Gradcheck probes per input (fewer on the ILGPU emulator).</summary>
    protected virtual int Probes => 24;

    /// <summary>One geometry: batch, in channels, h, w, out channels, kernel, stride, padding, dilation, groups, bias.</summary>
    public sealed record Case(int B, int Cin, int H, int W, int Cout, int Kh, int Kw, int Sh = 1, int Sw = 1, int Ph = 0, int Pw = 0,
        int Dh = 1, int Dw = 1, int Groups = 1, bool Bias = true)
    {
        /// <inheritdoc />
        public override string ToString() =>
            $"x[{B},{Cin},{H},{W}] k{Kh}x{Kw} out {Cout} s({Sh},{Sw}) p({Ph},{Pw}) d({Dh},{Dw}) g{Groups}{(Bias ? "" : " no bias")}";
    }

    private static readonly Case[] Cases =
    [
        new(2, 3, 5, 7, 4, 3, 3),
        new(1, 2, 6, 5, 3, 3, 2, Sh: 2, Sw: 1, Ph: 1, Pw: 1),
        new(2, 4, 7, 7, 6, 3, 3, Ph: 2, Pw: 2, Dh: 2, Dw: 2, Groups: 2),
        new(1, 3, 5, 4, 3, 3, 3, Ph: 1, Pw: 1, Groups: 3, Bias: false),   // depthwise
        new(3, 2, 4, 4, 5, 1, 1),                                        // 1x1: the columns are the input itself
        new(1, 1, 3, 3, 2, 5, 5, Ph: 1, Pw: 1),                           // kernel as large as the padded input
        new(2, 2, 11, 13, 3, 2, 3, Sh: 3, Sw: 2, Ph: 0, Pw: 2),
        new(1, 2, 1, 9, 2, 1, 3, Sw: 2, Pw: 1),                           // a 1-D signal as a 2-D one
    ];

    public static TheoryData<int> CaseIndices => new(Enumerable.Range(0, Cases.Length));

    /// <summary>Cross-correlation in double: y[b, o, i, j] = bias[o] + Σ_c,u,v x[b, g·cg + c, i·s + u·d − p, ...] w[o, c, u, v].</summary>
    internal static (double[] Y, int[] Shape) Reference(float[] x, float[] w, float[]? bias, Case c)
    {
        int oh = (c.H + 2 * c.Ph - c.Dh * (c.Kh - 1) - 1) / c.Sh + 1, ow = (c.W + 2 * c.Pw - c.Dw * (c.Kw - 1) - 1) / c.Sw + 1;
        int cg = c.Cin / c.Groups, og = c.Cout / c.Groups;
        var y = new double[c.B * c.Cout * oh * ow];
        for (int b = 0; b < c.B; b++)
            for (int o = 0; o < c.Cout; o++)
            {
                int g = o / og;
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double s = bias?[o] ?? 0;
                        for (int ci = 0; ci < cg; ci++)
                            for (int u = 0; u < c.Kh; u++)
                                for (int v = 0; v < c.Kw; v++)
                                {
                                    int iy = i * c.Sh - c.Ph + u * c.Dh, ix = j * c.Sw - c.Pw + v * c.Dw;
                                    if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
                                    s += (double)x[((b * c.Cin + g * cg + ci) * c.H + iy) * c.W + ix] * w[((o * cg + ci) * c.Kh + u) * c.Kw + v];
                                }
                        y[((b * c.Cout + o) * oh + i) * ow + j] = s;
                    }
            }
        return (y, [c.B, c.Cout, oh, ow]);
    }

    private Tensor[] Inputs(Case c, int seed)
    {
        var rng = new Random(seed);
        var gen = Gens.Normal();
        var list = new List<Tensor>
        {
            Tensor.FromArray(gen(rng, c.B * c.Cin * c.H * c.W), [c.B, c.Cin, c.H, c.W], Device, requiresGrad: true),
            Tensor.FromArray(gen(rng, c.Cout * (c.Cin / c.Groups) * c.Kh * c.Kw), [c.Cout, c.Cin / c.Groups, c.Kh, c.Kw], Device, requiresGrad: true),
        };
        if (c.Bias) list.Add(Tensor.FromArray(gen(rng, c.Cout), [c.Cout], Device, requiresGrad: true));
        return list.ToArray();
    }

    private static Tensor Apply(Tensor[] xs, Case c) =>
        xs[0].Conv2d(xs[1], c.Bias ? xs[2] : null, (c.Sh, c.Sw), (c.Ph, c.Pw), (c.Dh, c.Dw), c.Groups);

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Conv2d_matches_host_reference(int index)
    {
        var c = Cases[index];
        using var scope = new TensorScope();
        var xs = Inputs(c, 10 + index);
        var y = Apply(xs, c);
        var (expected, shape) = Reference(xs[0].ToArray(), xs[1].ToArray(), c.Bias ? xs[2].ToArray() : null, c);
        Assert.Equal(shape, y.Shape);
        var actual = y.ToArray();
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 + 1e-4 * Math.Abs(expected[i]), $"{c} on {Device.Name}: y[{i}] = {actual[i]}, reference {expected[i]}");
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Conv2d_gradient_matches_central_differences(int index)
    {
        var c = Cases[index];
        using var scope = new TensorScope();
        var xs = Inputs(c, 20 + index);
        var r = GradCheck.Check(a => Apply(a, c), xs, maxEntriesPerInput: Probes);
        Assert.True(r.Passed, $"{c} on {Device.Name}: {r.Report}");
    }

    [Fact]
    public void Conv2d_gradient_is_differentiable_again()
    {
        var c = Cases[1];
        using var scope = new TensorScope();
        var xs = Inputs(c, 5);
        // d/dw of Σ v ⊙ tanh(conv(x, w)) depends on x and w: gradcheck that gradient.
        GradCheck.Assert(a => AutodiffOpTests.GradOf(b => Apply(b, c).Tanh(), a, 1), xs, maxEntriesPerInput: Probes / 2);
    }

    [Theory]
    [InlineData(2, 3, 11, 4, 3, 1, 0, 1, 1)]
    [InlineData(1, 4, 8, 2, 3, 2, 2, 1, 2)]
    [InlineData(3, 2, 7, 5, 2, 1, 1, 3, 1)]
    public void Conv1d_layer_matches_host_reference_and_gradchecks(int b, int cin, int length, int cout, int k, int stride, int padding, int dilation, int groups)
    {
        using var scope = new TensorScope();
        using var layer = new Conv1d(cin, cout, k, stride, padding, dilation, groups, seed: 3, device: Device);
        var x = Tensor.Normal([b, cin, length], 8, device: Device);
        x.RequiresGrad = true;
        var y = layer.Forward(x);
        var c = new Case(b, cin, 1, length, cout, 1, k, 1, stride, 0, padding, 1, dilation, groups);
        var (expected, shape) = Reference(x.ToArray(), layer.Weight.ToArray(), layer.Bias!.ToArray(), c);
        Assert.Equal(new[] { b, cout, shape[3] }, y.Shape);
        var actual = y.ToArray();
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 + 1e-4 * Math.Abs(expected[i]), $"y[{i}] = {actual[i]}, reference {expected[i]}");
        GradCheck.Assert(_ => layer.Forward(x), [x, layer.Weight, layer.Bias], maxEntriesPerInput: Probes);
    }

    [Fact]
    public void Conv2d_layer_trains_and_shows_its_settings()
    {
        using var scope = new TensorScope();
        using var layer = new Conv2d(2, 3, (3, 2), stride: (2, 1), padding: 1, groups: 1, seed: 4, device: Device);
        Assert.Equal([3, 2, 3, 2], layer.Weight.Shape);
        Assert.Contains("Conv2d(2 → 3, kernel 3x2, stride (2, 1), padding 1) (39 parameters)", layer.ToString());
        var x = Tensor.Normal([2, 2, 5, 4], 1, device: Device);
        var y = layer.Forward(x);
        Assert.Equal([2, 3, 3, 5], y.Shape);
        y.Square().Mean().Backward();
        Assert.Equal(layer.Weight.Shape, layer.Weight.Grad!.Shape);
        Assert.True(layer.Weight.Grad!.Abs().Any());
    }

    public static TheoryData<string> BadConvolutions => new() { "channels", "groups", "kernel", "bias", "rank", "stride" };

    [Theory]
    [MemberData(nameof(BadConvolutions))]
    public void Bad_convolutions_name_the_op_and_both_shapes(string which)
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([2, 3, 5, 5], Device);
        var w = Tensor.Zeros([4, 3, 3, 3], Device);
        Action act = which switch
        {
            "channels" => () => x.Conv2d(Tensor.Zeros([4, 2, 3, 3], Device)),
            "groups" => () => x.Conv2d(w, groups: 2),
            "kernel" => () => x.Conv2d(Tensor.Zeros([4, 3, 7, 3], Device)),
            "bias" => () => x.Conv2d(w, Tensor.Zeros([3], Device)),
            "rank" => () => Tensor.Zeros([3, 5, 5], Device).Conv2d(w),
            _ => () => x.Conv2d(w, stride: 0),
        };
        var e = Assert.Throws<ArgumentException>(act);
        Assert.Contains("conv2d", e.Message);
        Assert.Contains(which == "rank" ? "[3, 5, 5]" : "[2, 3, 5, 5]", e.Message);
        Assert.Contains(which switch { "channels" => "[4, 2, 3, 3]", "kernel" => "[4, 3, 7, 3]", _ => "[4, 3, 3, 3]" }, e.Message);
    }
}

/// <summary>Convolutions on the CPU SIMD kernel set.</summary>
public sealed class CpuConvTests : ConvTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Convolutions on the ILGPU kernel set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuConvTests : ConvTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override int Probes => 8;
}
