using Engine.Kernels;
using Engine.Kernels.Vectors;
using static Engine.Kernels.ElementwiseExpression;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="IFusedElementwiseKernels.ElementwiseTree"/> against the host reference (per element, the ops in order,
/// each rounded to float) and, bit for bit, against the same ops run one by one through the set's own Unary, Affine
/// and Binary kernels: trees of 1 to 4 inputs, inputs read by several leaves, a scalar (one-element) input, y
/// aliasing an input, outputs pre-filled with NaN, awkward lengths. Written once, run per kernel set (and on the CPU
/// set at every vector width).
/// </summary>
public abstract class ElementwiseTreeKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    private IFusedElementwiseKernels F => (IFusedElementwiseKernels)K;

    /// <summary>The trees under test, by name: GELU's backward (x read by three leaves), and trees over 1 to 4 inputs.</summary>
    private static readonly Dictionary<string, ElementwiseExpression> Trees = new()
    {
        ["gelu-backward"] = GeluBackward,
        ["one-input"] = B(BinaryOp.Mul, X(0), A(0.5f, 0.25f, U(UnaryOp.Tanh, X(0)))),
        ["three-inputs"] = U(UnaryOp.Sigmoid, B(BinaryOp.Sub, B(BinaryOp.Mul, X(0), X(1)), U(UnaryOp.Tanh, X(2)))),
        ["four-inputs"] = B(BinaryOp.Add, B(BinaryOp.Mul, X(0), X(1)), B(BinaryOp.Div, U(UnaryOp.Sigmoid, X(2)), A(0.5f, 2f, U(UnaryOp.Abs, X(3))))),
        ["maximum-of-two"] = B(BinaryOp.Maximum, U(UnaryOp.Relu, X(1)), B(BinaryOp.Mul, X(0), X(0))),
    };

    private static object[] Row(params object[] v) => v;

    /// <summary>Every tree at lengths 1, 7, 33 and 32K + 5, with every input full, and with its last input a scalar.</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        foreach (var name in Trees.Keys)
            foreach (var n in new[] { 1, 7, 33, 32 * 1024 + 5 })
                foreach (var scalar in new[] { false, true })
                    if (!scalar || Trees[name].Arity > 1)
                        yield return Row(name, n, scalar);
    }

    [Theory, KernelCases(nameof(Cases))]
    public void TreeMatchesTheHostReferenceAndTheOpsOneByOne(string name, int n, bool lastIsScalar)
    {
        var tree = Trees[name];
        var rng = new Random(n * 31 + tree.Arity);
        var hosts = Enumerable.Range(0, tree.Arity)
            .Select(k => Inputs.Uniform(rng, lastIsScalar && k == tree.Arity - 1 ? 1 : n, -2, 2)).ToArray();
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        try
        {
            using var y = DeviceData.Filled(K, n, float.NaN);
            F.ElementwiseTree(tree, inputs, y);
            var actual = y.ToArray();
            var expected = new double[n];
            for (int i = 0; i < n; i++)
                expected[i] = Reference(tree, hosts.Select(h => h[h.Length == 1 ? 0 : i]).ToArray());
            KernelAssert.Close(expected, actual, Tolerance.Transcendental.Twice, $"{name} n={n} scalar={lastIsScalar}");
            KernelAssert.Bitwise(OneByOne(tree, inputs, n), actual, $"{name} n={n} scalar={lastIsScalar}: fused against one by one");
        }
        finally
        {
            foreach (var b in inputs) b.Dispose();
        }
    }

    /// <summary>y may be one of the inputs: every element reads its inputs before it is written.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void OutputMayAliasAnInput(int aliased)
    {
        const int n = 133;
        var tree = Trees["gelu-backward"];
        var rng = new Random(5);
        var hosts = new[] { Inputs.Uniform(rng, n, -2, 2), Inputs.Uniform(rng, n, -1, 1) };
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        try
        {
            var expected = OneByOne(tree, inputs, n);
            F.ElementwiseTree(tree, inputs, inputs[aliased]);
            KernelAssert.Bitwise(expected, inputs[aliased].ToArray(), $"y = input {aliased}");
        }
        finally
        {
            foreach (var b in inputs) b.Dispose();
        }
    }

    /// <summary>Bad calls throw naming the method before anything is written.</summary>
    [Fact]
    public void BadInputThrowsBeforeAnyWork()
    {
        using var x7 = DeviceData.Filled(K, 7, 1f);
        using var x5 = DeviceData.Filled(K, 5, 1f);
        using var y = DeviceData.Filled(K, 7, float.NaN);
        var tree = Trees["three-inputs"];
        void Throws(Action call, string fragment)
        {
            var e = Assert.Throws<ArgumentException>(call);
            Assert.Contains(nameof(IFusedElementwiseKernels.ElementwiseTree), e.Message);
            Assert.Contains(fragment, e.Message);
            Assert.All(y.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        Throws(() => F.ElementwiseTree(tree, [x7, x5, x7], y), "input 1 holds 5 elements, expected y's 7 or 1");
        Throws(() => F.ElementwiseTree(tree, [x7, x7], y), "reads input 2, but 2 inputs were given");
        Throws(() => F.ElementwiseTree(tree, [x7, x7, x7, x7, x7], y), "5 inputs, expected 1 to 4");
        Throws(() => F.ElementwiseTree(tree, [], y), "0 inputs");
    }

    /// <summary>The tree's ops run one by one through the set's own kernels (a scalar input broadcast by Binary).</summary>
    private float[] OneByOne(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, int n)
    {
        var temporaries = new List<DeviceBuffer<float>>();
        DeviceBuffer<float> Eval(ElementwiseExpression node)
        {
            switch (node)
            {
                case Input leaf:
                    return inputs[leaf.Index];
                case Unary u:
                {
                    var x = Eval(u.X);
                    var y = K.Allocate(x.Length);
                    temporaries.Add(y);
                    if (u.Step.IsAffine) K.Affine(x, y, u.Step.Scale, u.Step.Shift);
                    else K.Unary(u.Step.Op, x, y);
                    return y;
                }
                case Binary b:
                {
                    var (a, c) = (Eval(b.A), Eval(b.B));
                    long length = Math.Max(a.Length, c.Length);
                    var y = K.Allocate(length);
                    temporaries.Add(y);
                    K.Binary(b.Op, a, [(int)a.Length], c, [(int)c.Length], y, [(int)length]);
                    return y;
                }
                default:
                    throw new ArgumentException(node.ToString());
            }
        }
        try
        {
            var result = Eval(tree).ToArray();
            // A tree whose every leaf is a scalar computes one value; the fused kernel writes it to every element.
            return result.Length == n ? result : Enumerable.Repeat(result[0], n).ToArray();
        }
        finally
        {
            foreach (var t in temporaries) t.Dispose();
        }
    }
}

/// <summary>The tree kernel on the CPU set at the machine's widest width.</summary>
public sealed class CpuElementwiseTreeKernelTests : ElementwiseTreeKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>The tree kernel on the ILGPU set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuElementwiseTreeKernelTests : ElementwiseTreeKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}

/// <summary>The tree kernel on the CPU set at one forced width.</summary>
public abstract class CpuElementwiseTreeWidthTests : ElementwiseTreeKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuElementwiseTreeWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeTests512() : CpuElementwiseTreeWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeTests256() : CpuElementwiseTreeWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeTests128() : CpuElementwiseTreeWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeTestsScalar() : CpuElementwiseTreeWidthTests(SimdWidth.Scalar);
