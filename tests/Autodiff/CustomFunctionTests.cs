using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// User-defined ops (<see cref="CustomFunction"/>): gradcheck of a backward in tensor ops (first and second order,
/// checked against the same function built from built-in ops) and of one in host code, and the errors a wrong
/// backward gets. Written once, run per kernel set.
/// </summary>
public abstract class CustomFunctionTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>x·y² with its backward in tensor ops: [g·y², 2·g·x·y].</summary>
    internal static readonly CustomFunction XTimesYSquared = new("x_times_y_squared",
        xs => xs[0] * xs[1].Square(),
        b => [Ops.SumTo(b.GradOutput * b.Inputs[1].Square(), b.Inputs[0].Shape), Ops.SumTo(b.GradOutput * b.Inputs[0] * b.Inputs[1] * 2f, b.Inputs[1].Shape)]);

    /// <summary>softplus log(1 + e^x) computed and differentiated on the host (a "plain code" function).</summary>
    internal static readonly CustomFunction HostSoftplus = new("host_softplus",
        xs => Tensor.FromArray(xs[0].ToArray().Select(v => (float)Math.Log(1 + Math.Exp(v))).ToArray(), xs[0].Shape, xs[0].Device),
        b =>
        {
            var x = b.Inputs[0].ToArray();
            var g = b.GradOutput.ToArray();
            return [Tensor.FromArray(x.Select((v, i) => (float)(g[i] / (1 + Math.Exp(-v)))).ToArray(), b.Inputs[0].Shape, b.Inputs[0].Device)];
        }, differentiableBackward: false);

    private Tensor[] Inputs(int seed, params int[][] shapes)
    {
        var rng = new Random(seed);
        return shapes.Select(s => Tensor.FromArray(Gens.Normal()(rng, (int)Shape.Size(s)), s, Device, requiresGrad: true)).ToArray();
    }

    [Fact]
    public void Tensor_op_backward_passes_gradcheck_with_broadcasting()
    {
        using var scope = new TensorScope();
        var xs = Inputs(1, [3, 4], [4]);
        GradCheck.Assert(a => XTimesYSquared.Apply(a[0], a[1]).Tanh(), xs);
    }

    [Fact]
    public void Tensor_op_backward_is_differentiable_again()
    {
        using var scope = new TensorScope();
        var xs = Inputs(2, [2, 3], [2, 3]);
        // Second order: the gradient with respect to y, itself gradchecked.
        GradCheck.Assert(a => AutodiffOpTests.GradOf(b => XTimesYSquared.Apply(b[0], b[1]), a, 1), xs);
        // And equal to the same function built from built-in ops (Hessian-vector product).
        var v = Inputs(3, [2, 3], [2, 3]);
        var custom = Autograd.Hvp(XTimesYSquared.Apply(xs[0], xs[1]).Sum(), xs, v);
        var builtin = Autograd.Hvp((xs[0] * xs[1].Square()).Sum(), xs, v);
        for (int i = 0; i < 2; i++) Assert.True(custom[i].AllClose(builtin[i], 1e-5, 1e-6), $"Hvp input {i}");
    }

    [Fact]
    public void Host_code_backward_passes_gradcheck()
    {
        using var scope = new TensorScope();
        var xs = Inputs(4, [5, 3]);
        GradCheck.Assert(a => HostSoftplus.Apply(a[0]) * a[0], xs);
        var y = HostSoftplus.Apply(xs[0]);
        Assert.Equal("host_softplus", y.ToString().Split("grad_fn=<")[1].TrimEnd(')', '>'));
    }

    [Fact]
    public void Host_code_backward_refuses_a_second_differentiation()
    {
        using var scope = new TensorScope();
        var xs = Inputs(5, [4]);
        var g = Autograd.Grad(HostSoftplus.Apply(xs[0]).Sum(), xs, createGraph: true)[0]!;
        Assert.True(g.RequiresGrad);
        var e = Assert.Throws<InvalidOperationException>(() => g.Sum().Backward());
        Assert.Contains("host_softplus", e.Message);
        Assert.Contains("differentiableBackward", e.Message);
    }

    [Fact]
    public void Forward_runs_unrecorded_and_inputs_without_gradients_stay_off_the_tape()
    {
        using var scope = new TensorScope();
        Tensor? inside = null;
        var f = new CustomFunction("peek", xs => (inside = xs[0] * 1f).Exp(), b => [b.GradOutput * b.Output]);
        var x = Tensor.FromArray([0f, 1f], [2], Device, requiresGrad: true);
        var y = f.Apply(x);
        Assert.True(inside!.IsLeaf);        // the inner exp was not recorded
        Assert.False(y.IsLeaf);
        Assert.False(f.Apply(Tensor.FromArray([0f], [1], Device)).RequiresGrad);
        y.Sum().Backward();
        Assert.True(x.Grad!.AllClose(Tensor.FromArray([1f, MathF.E], [2], Device)));
        // A function returning its input unchanged still becomes a node of its own.
        var identity = new CustomFunction("identity", xs => xs[0], b => [b.GradOutput * 2f]);
        var z = identity.Apply(x);
        Assert.NotSame(x, z);
        x.ZeroGrad();
        z.Sum().Backward();
        Assert.Equal([2f, 2f], x.Grad!.ToArray());
    }

    public static TheoryData<string> BadBackwards => new() { "count", "shape" };

    [Theory]
    [MemberData(nameof(BadBackwards))]
    public void A_wrong_backward_is_named_with_the_shapes(string which)
    {
        using var scope = new TensorScope();
        var f = new CustomFunction("broken", xs => xs[0] * 2f,
            b => which == "count" ? [b.GradOutput, b.GradOutput] : [b.GradOutput.Sum()]);
        var x = Tensor.FromArray([1f, 2f, 3f], [3], Device, requiresGrad: true);
        var e = Assert.Throws<InvalidOperationException>(() => f.Apply(x).Sum().Backward());
        Assert.Contains("broken", e.Message);
        Assert.Contains(which == "count" ? "2 gradients for 1 inputs" : "[3]", e.Message);
    }

    [Fact]
    public void Bad_arguments_are_rejected_on_the_host()
    {
        Assert.Throws<ArgumentException>(() => new CustomFunction(" ", xs => xs[0], b => [b.GradOutput]));
        var f = new CustomFunction("nothing", xs => null!, b => [b.GradOutput]);
        using var scope = new TensorScope();
        var e = Assert.Throws<InvalidOperationException>(() => f.Apply(Tensor.Zeros([2], Device)));
        Assert.Contains("nothing", e.Message);
        Assert.Throws<ArgumentException>(() => XTimesYSquared.Apply());
    }
}

/// <summary>Custom functions on the CPU SIMD kernel set.</summary>
public sealed class CpuCustomFunctionTests : CustomFunctionTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Custom functions on the ILGPU kernel set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuCustomFunctionTests : CustomFunctionTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
