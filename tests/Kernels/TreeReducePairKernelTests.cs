using Engine.Kernels;
using Engine.Kernels.Vectors;
using static Engine.Kernels.ElementwiseExpression;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="IFusedElementwiseKernels.ElementwiseTreeReducePair"/>: two trees over shared inputs (read through
/// broadcasting: the compiled FNO's and loss's sibling reductions, scaled down, and random pairs over random shapes
/// with 1s and primes), reduced with a sum or a mean over the same axes. Each output, and each stored tree, is bit for
/// bit the set's own <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/> of that tree alone; outputs are
/// pre-filled with NaN; the first result also matches the host reference. Bad calls throw naming the method before
/// anything is written. Written once, run per kernel set and CPU width.
/// </summary>
public abstract class TreeReducePairKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    private IFusedElementwiseKernels F => (IFusedElementwiseKernels)K;

    /// <summary>Trees the pairs are drawn from: each reads some of inputs 0 to 3, several share input 0 or 1.</summary>
    private static readonly Dictionary<string, ElementwiseExpression> Trees = new()
    {
        ["mul01"] = B(BinaryOp.Mul, X(0), X(1)),
        ["mul02"] = B(BinaryOp.Mul, X(0), X(2)),
        ["square-sub"] = U(UnaryOp.Square, B(BinaryOp.Sub, X(0), X(1))),
        ["square1"] = U(UnaryOp.Square, X(1)),
        ["gelu-backward"] = GeluBackward,
        ["spn-step"] = B(BinaryOp.Sub, X(0), B(BinaryOp.Mul, U(UnaryOp.Exp, X(1)), X(2))),
        ["four-inputs"] = B(BinaryOp.Add, B(BinaryOp.Mul, X(0), X(1)), B(BinaryOp.Div, U(UnaryOp.Sigmoid, X(2)), A(0.5f, 2f, U(UnaryOp.Abs, X(3))))),
        ["relu2"] = U(UnaryOp.Relu, X(2)),
    };

    private static object[] Row(params object[] v) => v;

    /// <summary>The compiled graphs' pairs, scaled down, and awkward ones.</summary>
    private static readonly (string First, string Second, int[] Shape, int[][] Inputs, int[] Axes)[] Fixed =
    [
        ("mul01", "mul02", [4, 2, 5, 2, 7], [[4, 2, 5, 2, 7], [2, 1, 2, 1], [2, 1, 2, 1]], [1, 3]), // the FNO's two weight gradients
        ("square-sub", "square1", [5, 37], [[5, 37], [5, 37]], [1]), // the relative-L2 loss
        ("mul01", "square1", [13], [[1], [13]], [0]),
        ("gelu-backward", "relu2", [3, 1, 7], [[3, 1, 7], [7], [3, 1, 1]], [0, 2]),
        ("four-inputs", "spn-step", [2, 3, 5, 7], [[3, 1, 7], [2, 3, 5, 7], [5, 1], []], [1, 2]),
        ("mul02", "mul01", [6, 4], [[6, 4], [6, 4], [4]], []),
        ("square1", "square-sub", [0, 5], [[0, 5], [0, 5]], [0]),
        ("mul01", "square-sub", [131, 3], [[131, 3], [131, 3]], [0]),
        ("spn-step", "mul01", [2, 301], [[2, 301], [2, 1], [2, 301]], [1]),
    ];

    /// <summary>Shapes only the CPU set runs: each crosses a partition of the CPU reduction (rows, kept splits, row blocks, full-reduction blocks).</summary>
    private static readonly (string First, string Second, int[] Shape, int[][] Inputs, int[] Axes)[] Large =
    [
        ("mul01", "mul02", [16, 2, 64, 2, 64], [[16, 2, 64, 2, 64], [2, 1, 2, 1], [2, 1, 2, 1]], [1, 3]),
        ("square-sub", "square1", [20, 1024], [[20, 1024], [20, 1024]], [1]),
        ("gelu-backward", "mul01", [64, 8192], [[64, 8192], [8192]], [0]),
        ("square1", "mul01", [200003], [[200003], [200003]], [0]),
        ("spn-step", "relu2", [5, 70001], [[5, 70001], [5, 1], [70001]], [1]),
        ("mul02", "four-inputs", [3, 40009, 5], [[3, 40009, 5], [5], [3, 40009, 5], [40009, 1]], [1]),
        ("square-sub", "mul01", [131072, 3], [[131072, 3], [3]], [0]),
    ];

    /// <summary>Shapes the random pairs are drawn over.</summary>
    private static readonly int[][] RandomShapes = [[7, 5], [2, 3, 5, 7], [1, 6, 1, 4], [3, 17, 2], [19], [2, 1, 3, 1, 5]];

    /// <summary>The fixed pairs with a sum and a mean; random pairs, patterns and axes per seed; the large ones on the CPU set.</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        var all = tier == ShapeTier.Full ? Fixed.Concat(Large) : Fixed;
        int i = 0;
        foreach (var (first, second, shape, inputs, axes) in all)
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Mean })
                yield return Row(first, second, shape, inputs, axes, op, i++ % 4);
        var names = Trees.Keys.ToArray();
        for (int seed = 0; seed < 20; seed++)
        {
            var rng = new Random(seed);
            var shape = RandomShapes[seed % RandomShapes.Length];
            var (first, second) = (names[rng.Next(names.Length)], names[rng.Next(names.Length)]);
            int arity = Math.Max(Trees[first].Arity, Trees[second].Arity);
            var inputs = Enumerable.Range(0, arity).Select(_ => BroadcastTreeKernelTests.RandomPattern(rng, shape)).ToArray();
            var axes = Enumerable.Range(0, shape.Length).Where(_ => rng.NextDouble() < 0.4).ToArray();
            yield return Row(first, second, shape, inputs, axes, seed % 2 == 0 ? ReduceOp.Sum : ReduceOp.Mean, seed % 4);
        }
    }

    /// <param name="first">The first tree's name.</param>
    /// <param name="second">The second tree's name.</param>
    /// <param name="shape">The shape both trees are evaluated over.</param>
    /// <param name="inputShapes">Each input's shape, broadcasting to it.</param>
    /// <param name="axes">The reduced axes.</param>
    /// <param name="op">Sum or Mean.</param>
    /// <param name="stores">Bit 0: the first tree's values are stored; bit 1: the second's.</param>
    [Theory, KernelCases(nameof(Cases))]
    public void EachOutputIsItsTreeReducedAlone(string first, string second, int[] shape, int[][] inputShapes, int[] axes, ReduceOp op, int stores)
    {
        var (a, b) = (Trees[first], Trees[second]);
        long n = BroadcastTreeKernelTests.Count(shape), outputs = BroadcastTreeKernelTests.Count(HostReference.ReducedShape(shape, axes));
        var rng = new Random((int)n * 31 + a.Arity + 7 * b.Arity);
        var hosts = inputShapes.Select(s => Inputs.Uniform(rng, BroadcastTreeKernelTests.Count(s), -2, 2)).ToArray();
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        string what = $"{first} / {second} {op} [{string.Join(", ", shape)}] inputs {string.Join(" ", inputShapes.Select(s => "[" + string.Join(",", s) + "]"))}"
                      + $" axes [{string.Join(", ", axes)}] stores {stores}";
        try
        {
            using var y0 = (stores & 1) != 0 ? DeviceData.Filled(K, n, float.NaN) : null;
            using var y1 = (stores & 2) != 0 ? DeviceData.Filled(K, n, float.NaN) : null;
            using var r0 = DeviceData.Filled(K, outputs, float.NaN);
            using var r1 = DeviceData.Filled(K, outputs, float.NaN);
            F.ElementwiseTreeReducePair(a, b, inputs, inputShapes, shape, y0, y1, op, axes, r0, r1);
            foreach (var (tree, y, r, which) in new[] { (a, y0, r0, "first"), (b, y1, r1, "second") })
            {
                using var aloneY = DeviceData.Filled(K, n, float.NaN);
                using var aloneR = DeviceData.Filled(K, outputs, float.NaN);
                F.ElementwiseTreeReduce(tree, inputs, inputShapes, shape, aloneY, op, axes, aloneR);
                KernelAssert.Bitwise(aloneR.ToArray(), r.ToArray(), $"{what}: the {which} reduction against its tree alone");
                if (y != null) KernelAssert.Bitwise(aloneY.ToArray(), y.ToArray(), $"{what}: the {which} stored values against its tree alone");
            }
            var sources = inputShapes.Select(s => HostReference.BroadcastSourceIndex(s, shape)).ToArray();
            var values = new float[n];
            for (long i = 0; i < n; i++) values[i] = (float)Reference(a, Enumerable.Range(0, hosts.Length).Select(k => hosts[k][sources[k][i]]).ToArray());
            var expected = HostReference.Reduce(op, values, shape, axes, out var magnitude);
            double treeAbs = Tolerance.Transcendental.Twice.Abs * (op == ReduceOp.Sum && outputs > 0 ? n / outputs : 1);
            KernelAssert.Close(expected, r0.ToArray(), i => Tolerance.SumAbs + treeAbs + (Tolerance.SumRel + Tolerance.Transcendental.Twice.Rel) * magnitude[i], what);
        }
        finally
        {
            foreach (var x in inputs) x.Dispose();
        }
    }

    /// <summary>Each tree's values may overwrite an input only that tree reads (an in-place step): every element is read before it is written.</summary>
    [Fact]
    public void StoredValuesMayOverwriteAnInputOnlyTheirTreeReads()
    {
        int[] shape = [19, 23];
        var (a, b) = (Trees["square-sub"], Trees["relu2"]);
        var rng = new Random(11);
        var hosts = Enumerable.Range(0, 3).Select(_ => Inputs.Uniform(rng, 19 * 23, -2, 2)).ToArray();
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        int[][] shapes = [shape, shape, shape];
        try
        {
            using var expected0 = DeviceData.Filled(K, 23, float.NaN);
            using var expected1 = DeviceData.Filled(K, 23, float.NaN);
            using var stored0 = DeviceData.Filled(K, 19 * 23, float.NaN);
            using var stored1 = DeviceData.Filled(K, 19 * 23, float.NaN);
            F.ElementwiseTreeReduce(a, inputs, shapes, shape, stored0, ReduceOp.Sum, [0], expected0);
            F.ElementwiseTreeReduce(b, inputs, shapes, shape, stored1, ReduceOp.Sum, [0], expected1);
            using var r0 = DeviceData.Filled(K, 23, float.NaN);
            using var r1 = DeviceData.Filled(K, 23, float.NaN);
            F.ElementwiseTreeReducePair(a, b, inputs, shapes, shape, inputs[1], inputs[2], ReduceOp.Sum, [0], r0, r1);
            KernelAssert.Bitwise(expected0.ToArray(), r0.ToArray(), "y0 = input 1: r0");
            KernelAssert.Bitwise(expected1.ToArray(), r1.ToArray(), "y1 = input 2: r1");
            KernelAssert.Bitwise(stored0.ToArray(), inputs[1].ToArray(), "y0 = input 1: y0");
            KernelAssert.Bitwise(stored1.ToArray(), inputs[2].ToArray(), "y1 = input 2: y1");
        }
        finally
        {
            foreach (var x in inputs) x.Dispose();
        }
    }

    /// <summary>Bad calls throw naming the method, the expected and the actual values, before anything is written.</summary>
    [Fact]
    public void BadInputThrowsBeforeAnyWork()
    {
        using var x35 = DeviceData.Filled(K, 35, 1f);
        using var x5 = DeviceData.Filled(K, 5, 1f);
        using var x7 = DeviceData.Filled(K, 7, 1f);
        using var y = DeviceData.Filled(K, 35, float.NaN);
        using var y2 = DeviceData.Filled(K, 35, float.NaN);
        using var y34 = DeviceData.Filled(K, 34, float.NaN);
        using var r = DeviceData.Filled(K, 5, float.NaN);
        using var r2 = DeviceData.Filled(K, 5, float.NaN);
        using var r7 = DeviceData.Filled(K, 7, float.NaN);
        using var r35 = DeviceData.Filled(K, 35, float.NaN);
        var (mul, square) = (Trees["mul01"], Trees["square1"]);
        int[] shape = [7, 5];
        int[][] shapes = [[7, 5], [5]];
        void Throws(Action call, string fragment)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Contains(nameof(IFusedElementwiseKernels.ElementwiseTreeReducePair), e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var b in new[] { y, y2, y34, r, r2, r7, r35 }) Assert.All(b.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x7], [[7, 5], [7]], shape, y, y2, ReduceOp.Sum, [0], r, r2),
            "input 1 of shape [7] does not broadcast to the tree's shape [7, 5]");
        Throws(() => F.ElementwiseTreeReducePair(mul, Trees["relu2"], [x35, x5], shapes, shape, y, y2, ReduceOp.Sum, [0], r, r2), "reads input 2, but 2 inputs were given");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y34, ReduceOp.Sum, [0], r, r2), "y holds 34 elements, expected shape [7, 5]'s 35");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y2, ReduceOp.Sum, [0], r, r7), "r holds 7 elements, expected 5");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y2, ReduceOp.Sum, [1, 0], r, r2), "axes [1, 0] must be sorted");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y2, ReduceOp.Sum, [0], r, r), "r0 is r1");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y, ReduceOp.Sum, [0], r, r2), "y0 is y1");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y2, ReduceOp.Sum, [], y2, r35), "r0 is y1");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y2, ReduceOp.Sum, [0], r, x5), "r is input 1");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x35], [shape, shape], shape, x35, y2, ReduceOp.Sum, [0], r, r2),
            "y0 is input 1, which the second tree");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5, x5, x5, x5], [[7, 5], [5], [5], [5], [5]], shape, y, y2, ReduceOp.Sum, [0], r, r2),
            "5 inputs, expected 1 to 4");
        Throws(() => F.ElementwiseTreeReducePair(mul, square, [x35, x5], shapes, shape, y, y2, ReduceOp.Max, [0], r, r2), "must be Sum or Mean");
    }
}

/// <summary>Paired reductions on the CPU set at the machine's widest width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuTreeReducePairKernelTests : TreeReducePairKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Paired reductions on the ILGPU set (CPU emulator), small shapes.</summary>
[Collection("ilgpu")]
public sealed class IlgpuTreeReducePairKernelTests : TreeReducePairKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}

/// <summary>Paired reductions on the CPU set at one forced width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuTreeReducePairWidthTests : TreeReducePairKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuTreeReducePairWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuTreeReducePairTests512() : CpuTreeReducePairWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuTreeReducePairTests256() : CpuTreeReducePairWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuTreeReducePairTests128() : CpuTreeReducePairWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuTreeReducePairTestsScalar() : CpuTreeReducePairWidthTests(SimdWidth.Scalar);
