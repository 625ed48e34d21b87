using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.Compilation;

/// <summary>
/// Gradients of a compiled function's arguments (an input gradient: saliency, adversarial steps): every call's
/// argument gets the gradient an eager call gives it, in its own tensor, and an argument that already holds a
/// gradient accumulates into it, bit for bit as eager, on every replay. Written once, run per kernel set.
/// </summary>
public abstract class ArgumentGradientTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    private const int Calls = 6;

    private sealed class Problem : IDisposable
    {
        private readonly Sequential model;

        public Problem(Device device) =>
            model = new Sequential(new Linear(5, 4, seed: 1, device: device), new GELU(), new Linear(4, 3, seed: 2, device: device));

        /// <summary>Zeroes the parameters' gradients, then the mean square of the output, differentiated.</summary>
        public Tensor Step(Tensor x)
        {
            model.ZeroGrad();
            var loss = model.Forward(x).Square().Mean();
            loss.Backward();
            return loss;
        }

        public IReadOnlyList<Tensor> Parameters => model.Parameters().ToList();

        public void Dispose() => model.Dispose();
    }

    private Tensor Input(int call)
    {
        var x = Tensor.Uniform([4, 5], seed: (ulong)(100 + call), low: -1, high: 1, device: Device);
        x.RequiresGrad = true;
        return x;
    }

    /// <summary>Gives <paramref name="x"/> a gradient of its own before the call (as an earlier eager backward leaves one).</summary>
    private static void SeedGradient(Tensor x)
    {
        using var seed = (x * x).Sum();
        seed.Backward();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryCallsArgumentGetsTheGradientAnEagerCallGivesIt(bool withEarlierGradient)
    {
        using var eager = new Problem(Device);
        using var compiled = new Problem(Device);
        using var step = Compiler.Compile(compiled.Step);
        var eagerInputs = new List<Tensor>();
        var compiledInputs = new List<Tensor>();
        var gradientsWhenMade = new List<float[]>();
        try
        {
            for (int c = 0; c < Calls; c++)
            {
                var xe = Input(c);
                var xc = Input(c);
                eagerInputs.Add(xe);
                compiledInputs.Add(xc);
                if (withEarlierGradient)
                {
                    SeedGradient(xe);
                    SeedGradient(xc);
                }
                using var expected = eager.Step(xe);
                using var got = step.Invoke(xc);
                string when = $"call {c} ({(step.Replays > 0 ? "replays" : "traced")})";
                AssertBits(expected.ToArray(), got.ToArray(), $"loss at {when}");
                Assert.NotNull(xc.Grad);
                AssertBits(xe.Grad!.ToArray(), xc.Grad!.ToArray(), $"argument gradient at {when}");
                for (int i = 0; i < eager.Parameters.Count; i++)
                    AssertBits(eager.Parameters[i].Grad!.ToArray(), compiled.Parameters[i].Grad!.ToArray(), $"parameter {i} gradient at {when}");
                gradientsWhenMade.Add(xc.Grad!.ToArray());
            }
            Assert.Equal(1, step.VariantCount);
            Assert.True(step.Replays >= 3, $"{step.Replays} replays: {string.Join("; ", step.Messages)}");
            // Each argument keeps its own gradient: later replays did not write into an earlier argument's.
            for (int c = 0; c < Calls; c++)
                AssertBits(gradientsWhenMade[c], compiledInputs[c].Grad!.ToArray(), $"argument {c}'s gradient after all calls");
        }
        finally
        {
            foreach (var x in eagerInputs.Concat(compiledInputs))
            {
                x.Grad?.Dispose();
                x.Dispose();
            }
        }
    }

    [Fact]
    public void AnArgumentWithAndWithoutAGradientCompileSeparateVariants()
    {
        using var compiled = new Problem(Device);
        using var step = Compiler.Compile(compiled.Step);
        var inputs = new List<Tensor>();
        try
        {
            for (int c = 0; c < 8; c++)
            {
                var x = Input(c);
                inputs.Add(x);
                if (c % 2 == 1) SeedGradient(x);
                step.Invoke(x).Dispose();
            }
            Assert.Equal(2, step.VariantCount);
            Assert.Equal(2, step.Compilations);
        }
        finally
        {
            foreach (var x in inputs)
            {
                x.Grad?.Dispose();
                x.Dispose();
            }
        }
    }

    private static void AssertBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, eager gives {expected[i]:R}");
    }
}

/// <summary>Argument gradients on the CPU SIMD set.</summary>
public sealed class CpuArgumentGradientTests : ArgumentGradientTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Argument gradients on the ILGPU set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuArgumentGradientTests : ArgumentGradientTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
