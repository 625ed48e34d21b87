using Engine.Kernels;
using Engine.Kernels.Vectors;
using static Engine.Kernels.ElementwiseExpression;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/> against the host reference (the tree per element,
/// each op rounded to float, then the reduction in double) and, bit for bit, against the same set's
/// <see cref="IFusedElementwiseKernels.ElementwiseTree"/> followed by <see cref="IKernelSet.Reduce"/>: sums and means
/// over the first, last, middle and several axes, size-1 dims, primes, every input full and one a scalar, with y
/// stored and not, y and r pre-filled with NaN. On the CPU set the large shapes take every partition of the
/// reduction (rows, kept-dim splits, the fixed row blocks, the full-reduction blocks); on the ILGPU emulator the
/// small ones take the thread, group and split-group kernels. Written once, run per kernel set and CPU width.
/// </summary>
public abstract class ElementwiseTreeReduceKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    private IFusedElementwiseKernels F => (IFusedElementwiseKernels)K;

    /// <summary>
    /// The trees: GELU's backward (the bias gradient's input), the loss backward's (x0 - x1) · x2, a residual
    /// gradient's sum of two, a one-node tree (one plain call), and a tree over four inputs.
    /// </summary>
    private static readonly Dictionary<string, ElementwiseExpression> Trees = new()
    {
        ["gelu-backward"] = GeluBackward,
        ["loss-backward"] = B(BinaryOp.Mul, B(BinaryOp.Sub, X(0), X(1)), X(2)),
        ["add"] = B(BinaryOp.Add, X(0), X(1)),
        ["relu"] = U(UnaryOp.Relu, X(0)),
        ["four-inputs"] = B(BinaryOp.Add, B(BinaryOp.Mul, X(0), X(1)), B(BinaryOp.Div, U(UnaryOp.Sigmoid, X(2)), A(0.5f, 2f, U(UnaryOp.Abs, X(3))))),
    };

    private static readonly string[] Names = [.. Trees.Keys];

    private static object[] Row(params object[] v) => v;

    /// <summary>Shapes and axes on every set: tiny, primes, size-1 dims, empty, and lines long enough for the ILGPU group kernels.</summary>
    private static readonly (int[] Shape, int[] Axes)[] SmallShapes =
    [
        ([7, 5], [0]),
        ([7, 5], [1]),
        ([13], [0]),
        ([3, 1, 5, 2], [1, 2]),
        ([2, 3, 5, 7], [0, 2]),
        ([2, 3, 5, 7], [1, 2, 3]),
        ([1, 11], [0]),
        ([6, 4], []),
        ([0, 5], [0]),
        ([5, 0], [0]),
        ([2, 301], [1]),
        ([131, 3], [0]),
        ([17, 31], [0, 1]),
    ];

    /// <summary>Shapes only the CPU set runs: each crosses a partition of the CPU reduction.</summary>
    private static readonly (int[] Shape, int[] Axes)[] LargeShapes =
    [
        ([64, 8192], [0]), // bias gradient: innermost kept, the fixed row blocks
        ([131072, 3], [0]), // R = 128K, three columns: row blocks over a short kept dim
        ([200003], [0]), // full reduction in 64K blocks
        ([5, 70001], [1]), // long contiguous rows
        ([3, 40009, 5], [1]), // a middle axis
        ([9, 8192, 7], [0, 2]), // several axes around a long kept one
    ];

    /// <summary>Every shape with a Sum and a Mean, y stored and not, the trees in turn; each tree with a scalar last input once.</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        var shapes = tier == ShapeTier.Full ? SmallShapes.Concat(LargeShapes) : SmallShapes;
        int i = 0;
        foreach (var (shape, axes) in shapes)
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Mean })
                foreach (var storeY in new[] { false, true })
                {
                    var name = Names[i++ % Names.Length];
                    yield return Row(name, shape, axes, op, storeY, Trees[name].Arity > 1 && i % 3 == 0);
                }
    }

    [Theory, KernelCases(nameof(Cases))]
    public void FusedMatchesTheHostReferenceAndTheTreeThenReduce(string name, int[] shape, int[] axes, ReduceOp op, bool storeY, bool lastIsScalar)
    {
        var tree = Trees[name];
        long n = shape.Aggregate(1L, (a, d) => a * d);
        var rng = new Random((int)n * 31 + tree.Arity);
        var hosts = Enumerable.Range(0, tree.Arity)
            .Select(k => Inputs.Uniform(rng, lastIsScalar && k == tree.Arity - 1 ? 1 : n, -2, 2)).ToArray();
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        long outputs = HostReference.ReducedShape(shape, axes).Aggregate(1L, (a, d) => a * d);
        string what = $"{name} {op} [{string.Join(", ", shape)}] axes [{string.Join(", ", axes)}] y={storeY} scalar={lastIsScalar}";
        try
        {
            using var y = storeY ? DeviceData.Filled(K, n, float.NaN) : null;
            using var r = DeviceData.Filled(K, outputs, float.NaN);
            F.ElementwiseTreeReduce(tree, inputs, shape, y, op, axes, r);
            var actual = r.ToArray();

            var values = new float[n];
            for (long i = 0; i < n; i++) values[i] = (float)Reference(tree, hosts.Select(h => h[h.Length == 1 ? 0 : i]).ToArray());
            var expected = HostReference.Reduce(op, values, shape, axes, out var magnitude);
            long perOutput = outputs == 0 ? 0 : n / outputs;
            // The tree's transcendental steps may each be a few ulps off the reference: that error, summed, on top of the sum's own.
            double treeAbs = Tolerance.Transcendental.Twice.Abs * (op == ReduceOp.Sum ? perOutput : 1);
            KernelAssert.Close(expected, actual, i => Tolerance.SumAbs + treeAbs + (Tolerance.SumRel + Tolerance.Transcendental.Twice.Rel) * magnitude[i], what);

            using var stored = K.Allocate(n);
            using var reduced = DeviceData.Filled(K, outputs, float.NaN);
            if (n > 0) F.ElementwiseTree(tree, inputs, stored);
            K.Reduce(op, stored, shape, axes, reduced);
            KernelAssert.Bitwise(reduced.ToArray(), actual, what + ": fused against the tree, then Reduce");
            if (y != null && n > 0) KernelAssert.Bitwise(stored.ToArray(), y.ToArray(), what + ": y against the tree");
        }
        finally
        {
            foreach (var b in inputs) b.Dispose();
        }
    }

    /// <summary>y may be one of the inputs (an in-place step): every element is read before it is written.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void StoredValuesMayOverwriteAnInput(int aliased)
    {
        int[] shape = [19, 23];
        var tree = Trees["gelu-backward"];
        var rng = new Random(7);
        var hosts = new[] { Inputs.Uniform(rng, 19 * 23, -2, 2), Inputs.Uniform(rng, 19 * 23, -1, 1) };
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        try
        {
            using var stored = K.Allocate(19 * 23);
            using var expected = DeviceData.Filled(K, 23, float.NaN);
            F.ElementwiseTree(tree, inputs, stored);
            K.Reduce(ReduceOp.Sum, stored, shape, [0], expected);
            using var r = DeviceData.Filled(K, 23, float.NaN);
            F.ElementwiseTreeReduce(tree, inputs, shape, inputs[aliased], ReduceOp.Sum, [0], r);
            KernelAssert.Bitwise(expected.ToArray(), r.ToArray(), $"y = input {aliased}: r");
            KernelAssert.Bitwise(stored.ToArray(), inputs[aliased].ToArray(), $"y = input {aliased}: y");
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
        using var x35 = DeviceData.Filled(K, 35, 1f);
        using var x34 = DeviceData.Filled(K, 34, 1f);
        using var y = DeviceData.Filled(K, 35, float.NaN);
        using var y34 = DeviceData.Filled(K, 34, float.NaN);
        using var r = DeviceData.Filled(K, 5, float.NaN);
        using var r7 = DeviceData.Filled(K, 7, float.NaN);
        var tree = Trees["add"];
        int[] shape = [7, 5];
        void Throws<TException>(Action call, string fragment) where TException : ArgumentException
        {
            var e = Assert.ThrowsAny<TException>(call);
            Assert.Contains(nameof(IFusedElementwiseKernels.ElementwiseTreeReduce), e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var b in new[] { y, y34, r, r7 }) Assert.All(b.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x34], shape, y, ReduceOp.Sum, [0], r), "input 1 holds 34 elements, expected shape [7, 5]'s 35 or 1");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35], shape, y, ReduceOp.Sum, [0], r), "reads input 1, but 1 inputs were given");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], shape, y34, ReduceOp.Sum, [0], r), "y holds 34 elements, expected shape [7, 5]'s 35");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], shape, y, ReduceOp.Sum, [0], r7), "r holds 7 elements, expected 5");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], shape, y, ReduceOp.Sum, [1, 0], r7), "axes [1, 0] must be sorted");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], shape, y, ReduceOp.Sum, [2], r), "below rank 2");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], [35], y, ReduceOp.Sum, [], x35), "r is input 0");
        Throws<ArgumentException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], [35], y, ReduceOp.Sum, [], y), "r is y");
        Throws<ArgumentOutOfRangeException>(() => F.ElementwiseTreeReduce(tree, [x35, x35], shape, y, ReduceOp.Max, [0], r), "must be Sum or Mean");
    }
}

/// <summary>The fused reduction on the CPU set at the machine's widest width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuElementwiseTreeReduceKernelTests : ElementwiseTreeReduceKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>The fused reduction on the ILGPU set (CPU emulator), small shapes.</summary>
[Collection("ilgpu")]
public sealed class IlgpuElementwiseTreeReduceKernelTests : ElementwiseTreeReduceKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}

/// <summary>The fused reduction on the CPU set at one forced width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuElementwiseTreeReduceWidthTests : ElementwiseTreeReduceKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuElementwiseTreeReduceWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeReduceTests512() : CpuElementwiseTreeReduceWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeReduceTests256() : CpuElementwiseTreeReduceWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeReduceTests128() : CpuElementwiseTreeReduceWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuElementwiseTreeReduceTestsScalar() : CpuElementwiseTreeReduceWidthTests(SimdWidth.Scalar);
