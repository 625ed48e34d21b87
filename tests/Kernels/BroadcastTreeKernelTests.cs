using Engine.Kernels;
using Engine.Kernels.Vectors;
using static Engine.Kernels.ElementwiseExpression;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="IFusedElementwiseKernels.ElementwiseTree"/> and <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/>
/// with inputs read through broadcasting: each input's shape broadcasts to the tree's (leading 1s, inner size-1 dims,
/// scalars, lower ranks, the compiled FNO's, SPN's and loss's patterns, and random ones), with and without a sum or
/// mean over random axes. Results match the host reference and, bit for bit, the tree's ops run one by one through
/// the set's own Binary, Unary and Affine kernels (each op rounds as its own kernel), followed by Reduce; outputs
/// pre-filled with NaN. Bad calls throw naming the method before anything is written. Written once, run per kernel set
/// and CPU width.
/// </summary>
public abstract class BroadcastTreeKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    private IFusedElementwiseKernels F => (IFusedElementwiseKernels)K;

    /// <summary>The trees: GELU's backward, the FNO's spectral weights (a·b + c·d), a one-op tree, and two over three and four inputs.</summary>
    private static readonly Dictionary<string, ElementwiseExpression> Trees = new()
    {
        ["gelu-backward"] = GeluBackward,
        ["spectral-weights"] = B(BinaryOp.Add, B(BinaryOp.Mul, X(0), X(1)), B(BinaryOp.Mul, X(2), X(3))),
        ["mul"] = B(BinaryOp.Mul, X(0), X(1)),
        ["spn-step"] = B(BinaryOp.Sub, X(0), B(BinaryOp.Mul, U(UnaryOp.Exp, X(1)), X(2))),
        ["four-inputs"] = B(BinaryOp.Add, B(BinaryOp.Mul, X(0), X(1)), B(BinaryOp.Div, U(UnaryOp.Sigmoid, X(2)), A(0.5f, 2f, U(UnaryOp.Abs, X(3))))),
    };

    private static object[] Row(params object[] v) => v;

    /// <summary>Fixed patterns: the compiled graphs' broadcasts, scaled down, and awkward ones.</summary>
    private static readonly (string Tree, int[] Shape, int[][] Inputs, int[]? Axes)[] Fixed =
    [
        ("spectral-weights", [4, 2, 5, 2, 7], [[4, 1, 5, 1, 7], [2, 1, 2, 1], [4, 1, 5, 1, 7], [2, 1, 2, 1]], null),
        ("mul", [4, 2, 5, 2, 7], [[4, 2, 5, 2, 7], [2, 1, 2, 1]], [1, 3]),
        ("mul", [5, 37], [[5, 1], [5, 37]], [0]),
        ("spn-step", [3, 4, 11], [[3, 4, 11], [3, 4, 11], [3, 4, 1]], null),
        ("gelu-backward", [6, 1, 9], [[1, 9], [6, 1, 1]], [0, 2]),
        ("four-inputs", [3, 1, 7], [[7], [], [3, 1, 1], [1, 1, 7]], null),
        ("mul", [13], [[1], [13]], [0]),
        ("spn-step", [2, 3, 5, 7], [[3, 1, 7], [2, 3, 5, 7], [5, 1]], [1, 2]),
    ];

    /// <summary>Shapes the random patterns are drawn over.</summary>
    private static readonly int[][] RandomShapes = [[7, 5], [2, 3, 5, 7], [1, 6, 1, 4], [3, 17, 2], [19], [2, 1, 3, 1, 5]];

    /// <summary>Shapes only the CPU set runs: long enough to split across threads, rows longer and shorter than a vector.</summary>
    private static readonly (string Tree, int[] Shape, int[][] Inputs, int[]? Axes)[] Large =
    [
        ("mul", [20, 1024], [[20, 1], [20, 1024]], [0]),
        ("spectral-weights", [16, 2, 64, 2, 64], [[16, 1, 64, 1, 64], [2, 1, 2, 1], [16, 1, 64, 1, 64], [2, 1, 2, 1]], null),
        ("mul", [16, 2, 64, 2, 64], [[16, 2, 64, 2, 64], [2, 1, 2, 1]], [1, 3]),
        ("spn-step", [97, 10, 100], [[97, 10, 100], [97, 10, 100], [97, 10, 1]], [2]),
        ("gelu-backward", [4099, 3], [[4099, 1], [3]], null),
        ("four-inputs", [40009, 5], [[5], [40009, 1], [40009, 5], []], [0]),
        ("spn-step", [690, 10, 2], [[690, 10, 2], [690, 10, 2], [690, 10, 1]], [2]),
        ("mul", [50, 30, 3], [[50, 1, 3], [50, 30, 3]], null),
        ("four-inputs", [3, 700, 1, 7], [[3, 1, 1, 7], [1, 700, 1, 1], [3, 700, 1, 7], []], [1]),
        ("spectral-weights", [50, 30, 3], [[50, 1, 3], [50, 30, 3], [50, 1, 3], [1, 30, 3]], null),
    ];

    /// <summary>The fixed patterns, each with a sum and (where it reduces) a mean; random patterns per seed; the large ones on the CPU set.</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        var all = tier == ShapeTier.Full ? Fixed.Concat(Large) : Fixed;
        foreach (var (tree, shape, inputs, axes) in all)
        {
            yield return Row(tree, shape, inputs, axes ?? [], axes != null, ReduceOp.Sum);
            if (axes != null) yield return Row(tree, shape, inputs, axes, true, ReduceOp.Mean);
        }
        var names = Trees.Keys.ToArray();
        for (int seed = 0; seed < 24; seed++)
        {
            var rng = new Random(seed);
            var shape = RandomShapes[seed % RandomShapes.Length];
            var name = names[seed % names.Length];
            var inputs = Enumerable.Range(0, Trees[name].Arity).Select(_ => RandomPattern(rng, shape)).ToArray();
            var axes = Enumerable.Range(0, shape.Length).Where(_ => rng.NextDouble() < 0.4).ToArray();
            yield return Row(name, shape, inputs, axes, seed % 3 != 0, seed % 2 == 0 ? ReduceOp.Sum : ReduceOp.Mean);
        }
    }

    /// <summary>A shape broadcasting to <paramref name="shape"/>: some leading dims dropped, each other dim kept or 1.</summary>
    internal static int[] RandomPattern(Random rng, int[] shape)
    {
        int rank = rng.Next(0, shape.Length + 1);
        return shape[(shape.Length - rank)..].Select(d => rng.NextDouble() < 0.5 ? 1 : d).ToArray();
    }

    [Theory, KernelCases(nameof(Cases))]
    public void TreeMatchesTheHostReferenceAndTheOpsOneByOne(string name, int[] shape, int[][] inputShapes, int[] axes, bool reduce, ReduceOp op)
    {
        var tree = Trees[name];
        long n = Count(shape);
        var rng = new Random((int)n * 31 + tree.Arity);
        var hosts = inputShapes.Select(s => Inputs.Uniform(rng, Count(s), -2, 2)).ToArray();
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        string what = $"{name} [{string.Join(", ", shape)}] inputs {string.Join(" ", inputShapes.Select(s => "[" + string.Join(",", s) + "]"))}"
                      + (reduce ? $" {op} axes [{string.Join(", ", axes)}]" : "");
        try
        {
            var sources = inputShapes.Select(s => HostReference.BroadcastSourceIndex(s, shape)).ToArray();
            var values = new float[n];
            for (long i = 0; i < n; i++)
                values[i] = (float)Reference(tree, Enumerable.Range(0, hosts.Length).Select(k => hosts[k][sources[k][i]]).ToArray());
            var oneByOne = OneByOne(tree, inputs, inputShapes, shape);
            using var y = DeviceData.Filled(K, n, float.NaN);
            if (!reduce)
            {
                F.ElementwiseTree(tree, inputs, inputShapes, y, shape);
                var actual = y.ToArray();
                KernelAssert.Close(values.Select(v => (double)v).ToArray(), actual, Tolerance.Transcendental.Twice, what);
                KernelAssert.Bitwise(oneByOne, actual, what + ": fused against one by one");
                return;
            }
            long outputs = Count(HostReference.ReducedShape(shape, axes));
            using var r = DeviceData.Filled(K, outputs, float.NaN);
            F.ElementwiseTreeReduce(tree, inputs, inputShapes, shape, y, op, axes, r);
            using var stored = DeviceData.Upload(K, oneByOne);
            using var reduced = DeviceData.Filled(K, outputs, float.NaN);
            K.Reduce(op, stored, shape, axes, reduced);
            KernelAssert.Bitwise(reduced.ToArray(), r.ToArray(), what + ": fused against one by one, then Reduce");
            KernelAssert.Bitwise(oneByOne, y.ToArray(), what + ": y against one by one");
            var expected = HostReference.Reduce(op, values, shape, axes, out var magnitude);
            long perOutput = outputs == 0 ? 0 : n / outputs;
            double treeAbs = Tolerance.Transcendental.Twice.Abs * (op == ReduceOp.Sum ? perOutput : 1);
            KernelAssert.Close(expected, r.ToArray(), i => Tolerance.SumAbs + treeAbs + (Tolerance.SumRel + Tolerance.Transcendental.Twice.Rel) * magnitude[i], what);
            // Not stored: the same reduction.
            using var r2 = DeviceData.Filled(K, outputs, float.NaN);
            F.ElementwiseTreeReduce(tree, inputs, inputShapes, shape, null, op, axes, r2);
            KernelAssert.Bitwise(r.ToArray(), r2.ToArray(), what + ": y not stored");
        }
        finally
        {
            foreach (var b in inputs) b.Dispose();
        }
    }

    /// <summary>Bad calls throw naming the method, the expected and the actual shapes, before anything is written.</summary>
    [Fact]
    public void BadInputThrowsBeforeAnyWork()
    {
        using var x35 = DeviceData.Filled(K, 35, 1f);
        using var x5 = DeviceData.Filled(K, 5, 1f);
        using var x7 = DeviceData.Filled(K, 7, 1f);
        using var y = DeviceData.Filled(K, 35, float.NaN);
        using var y34 = DeviceData.Filled(K, 34, float.NaN);
        using var r = DeviceData.Filled(K, 5, float.NaN);
        var add = Trees["mul"];
        int[] shape = [7, 5];
        void Throws(Action call, string method, string fragment)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Contains(method, e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var b in new[] { y, y34, r }) Assert.All(b.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        const string tree = nameof(IFusedElementwiseKernels.ElementwiseTree), reduce = nameof(IFusedElementwiseKernels.ElementwiseTreeReduce);
        Throws(() => F.ElementwiseTree(add, [x35, x7], [[7, 5], [7]], y, shape), tree, "input 1 of shape [7] does not broadcast to the tree's shape [7, 5]");
        Throws(() => F.ElementwiseTree(add, [x35, x5], [[7, 5], [1, 7, 5]], y, shape), tree, "input 1 holds 5 elements, its shape [1, 7, 5] has 35");
        Throws(() => F.ElementwiseTree(add, [x35, x5], [[7, 5], [5]], y34, shape), tree, "y holds 34 elements, expected shape [7, 5]'s 35");
        Throws(() => F.ElementwiseTree(add, [x35, x5], [[7, 5]], y, shape), tree, "1 input shapes for 2 inputs");
        Throws(() => F.ElementwiseTree(add, [x35, x5, x5, x5, x5], [[7, 5], [5], [5], [5], [5]], y, shape), tree, "5 inputs, expected 1 to 4");
        Throws(() => F.ElementwiseTree(add, [x35, x5], [[7, 5], [5]], y, [7, -5]), tree, "negative extent -5");
        Throws(() => F.ElementwiseTreeReduce(add, [x35, x7], [[7, 5], [7, 1, 1]], shape, y, ReduceOp.Sum, [0], r), reduce,
            "input 1 of shape [7, 1, 1] does not broadcast to the tree's shape [7, 5]");
        Throws(() => F.ElementwiseTreeReduce(add, [x35, x5], [[7, 5], [5]], shape, y34, ReduceOp.Sum, [0], r), reduce, "y holds 34 elements");
        Throws(() => F.ElementwiseTreeReduce(add, [x35, x5], [[7, 5], [5]], shape, y, ReduceOp.Sum, [0], x5), reduce, "r is input 1");
    }

    /// <summary>The element count of <paramref name="shape"/>.</summary>
    internal static long Count(int[] shape) => shape.Aggregate(1L, (p, d) => p * d);

    /// <summary>The tree's ops run one by one through the set's own kernels, each binary op broadcasting its operands, the root broadcast to the tree's shape at the end.</summary>
    private float[] OneByOne(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, int[][] inputShapes, int[] shape)
    {
        var temporaries = new List<DeviceBuffer<float>>();
        (DeviceBuffer<float> Buffer, int[] Shape) Eval(ElementwiseExpression node)
        {
            switch (node)
            {
                case Input leaf:
                    return (inputs[leaf.Index], inputShapes[leaf.Index]);
                case Unary u:
                {
                    var x = Eval(u.X);
                    var y = K.Allocate(x.Buffer.Length);
                    temporaries.Add(y);
                    if (u.Step.IsAffine) K.Affine(x.Buffer, y, u.Step.Scale, u.Step.Shift);
                    else K.Unary(u.Step.Op, x.Buffer, y);
                    return (y, x.Shape);
                }
                case Binary b:
                {
                    var (a, c) = (Eval(b.A), Eval(b.B));
                    var yShape = HostReference.BroadcastShape(a.Shape, c.Shape);
                    var y = K.Allocate(Count(yShape));
                    temporaries.Add(y);
                    K.Binary(b.Op, a.Buffer, a.Shape, c.Buffer, c.Shape, y, yShape);
                    return (y, yShape);
                }
                default:
                    throw new ArgumentException(node.ToString());
            }
        }
        try
        {
            var (root, rootShape) = Eval(tree);
            using var full = K.Allocate(Count(shape));
            K.BroadcastTo(root, rootShape, full, shape);
            return full.ToArray();
        }
        finally
        {
            foreach (var t in temporaries) t.Dispose();
        }
    }
}

/// <summary>Broadcasting trees on the CPU set at the machine's widest width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuBroadcastTreeKernelTests : BroadcastTreeKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Broadcasting trees on the ILGPU set (CPU emulator), small shapes.</summary>
[Collection("ilgpu")]
public sealed class IlgpuBroadcastTreeKernelTests : BroadcastTreeKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}

/// <summary>Broadcasting trees on the CPU set at one forced width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuBroadcastTreeWidthTests : BroadcastTreeKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuBroadcastTreeWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuBroadcastTreeTests512() : CpuBroadcastTreeWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuBroadcastTreeTests256() : CpuBroadcastTreeWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuBroadcastTreeTests128() : CpuBroadcastTreeWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuBroadcastTreeTestsScalar() : CpuBroadcastTreeWidthTests(SimdWidth.Scalar);
