using Engine.Kernels;
using Engine.Kernels.Ilgpu;
using Engine.Kernels.Vectors;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMap"/>: a tree reduced over some axes, then a tree
/// that reads the result back as the shape with the reduced axes of extent 1 (the softmax and log-softmax backwards of
/// the compiled SPN and Mixer steps, scaled down, and random pairs over random shapes with 1s and primes, inner and
/// outer axes, broadcasting inputs). r and y are bit for bit the set's own
/// <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/> followed by its
/// <see cref="IFusedElementwiseKernels.ElementwiseTree"/>, and close to the host reference; outputs are pre-filled with
/// NaN. y may overwrite a full-shape input of either tree. Bad calls throw naming the method before anything is
/// written. Written once, run per kernel set, CPU width and ILGPU launch shape.
/// </summary>
public abstract class ReduceThenMapKernelTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    private IFusedElementwiseKernels F => (IFusedElementwiseKernels)K;

    /// <summary>Reduced trees.</summary>
    private static readonly Dictionary<string, ElementwiseExpression> Reduced = new()
    {
        ["x0"] = X(0),
        ["mul01"] = B(BinaryOp.Mul, X(0), X(1)),
        ["square-sub"] = U(UnaryOp.Square, B(BinaryOp.Sub, X(0), X(1))),
        ["tanh2"] = U(UnaryOp.Tanh, X(2)),
    };

    /// <summary>Maps, each reading r as its input <see cref="RIndex"/>.</summary>
    private static readonly Dictionary<string, ElementwiseExpression> Maps = new()
    {
        ["log-softmax-backward"] = B(BinaryOp.Sub, X(0), B(BinaryOp.Mul, U(UnaryOp.Exp, X(1)), X(2))),
        ["softmax-backward"] = B(BinaryOp.Mul, X(1), B(BinaryOp.Sub, X(0), X(2))),
        ["center"] = A(0.5f, 1f, B(BinaryOp.Sub, X(0), X(2))),
        ["four-inputs"] = B(BinaryOp.Add, B(BinaryOp.Div, X(2), A(1f, 3f, U(UnaryOp.Abs, X(1)))), B(BinaryOp.Mul, X(0), X(3))),
    };

    /// <summary>The map input that is r.</summary>
    private const int RIndex = 2;

    private static object[] Row(params object[] v) => v;

    /// <summary>
    /// (reduced tree, map, shape, the reduced tree's input shapes, the map's input shapes (r's slot ignored), axes):
    /// the SPN's weight and leaf gradients, a Mixer-like softmax row, outer and middle axes, and awkward extents.
    /// </summary>
    private static readonly (string Reduced, string Map, int[] Shape, int[][] Inputs, int[][] MapInputs, int[] Axes)[] Fixed =
    [
        ("x0", "log-softmax-backward", [1, 1, 1000], [[1, 1, 1000]], [[1, 1, 1000], [1, 1, 1000], []], [2]),
        ("x0", "log-softmax-backward", [20, 10, 100], [[20, 10, 100]], [[20, 10, 100], [20, 10, 100], []], [2]),
        ("x0", "log-softmax-backward", [69, 10, 2], [[69, 10, 2]], [[69, 10, 2], [69, 10, 2], []], [2]),
        ("mul01", "softmax-backward", [7, 33], [[7, 33], [7, 33]], [[7, 33], [7, 33], []], [1]),
        ("mul01", "center", [5, 3], [[5, 3], [3]], [[5, 3], [], []], [0]),
        ("square-sub", "four-inputs", [2, 3, 5, 7], [[2, 3, 5, 7], [5, 1]], [[3, 1, 7], [2, 3, 5, 7], [], [7]], [1, 3]),
        ("x0", "center", [13], [[13]], [[13], [], []], [0]),
        ("tanh2", "softmax-backward", [6, 1], [[6, 1], [1], [6, 1]], [[6, 1], [1], []], [1]),
        ("x0", "center", [0, 5], [[0, 5]], [[0, 5], [], []], [1]),
        ("x0", "center", [3, 0], [[3, 0]], [[3, 0], [], []], [1]),
        ("mul01", "log-softmax-backward", [2, 1031], [[2, 1031], [1031]], [[2, 1031], [2, 1031], []], [1]),
        ("x0", "softmax-backward", [1, 4099], [[1, 4099]], [[1, 4099], [4099], []], [1]),
        ("square-sub", "center", [300, 7], [[300, 7], [300, 1]], [[300, 7], [], []], [1]),
    ];

    /// <summary>Shapes only the CPU set runs: many rows over threads, long rows, a full reduction past one block (the two-pass path).</summary>
    private static readonly (string Reduced, string Map, int[] Shape, int[][] Inputs, int[][] MapInputs, int[] Axes)[] Large =
    [
        ("x0", "log-softmax-backward", [690, 10, 2], [[690, 10, 2]], [[690, 10, 2], [690, 10, 2], []], [2]),
        ("mul01", "softmax-backward", [3, 70001], [[3, 70001], [3, 70001]], [[3, 70001], [3, 70001], []], [1]),
        ("mul01", "center", [64, 8192], [[64, 8192], [8192]], [[64, 8192], [], []], [1]),
        ("x0", "center", [200003], [[200003]], [[200003], [], []], [0]),
        ("square-sub", "four-inputs", [40000, 5], [[40000, 5], [5]], [[40000, 5], [40000, 5], [], [5]], [1]),
        ("x0", "softmax-backward", [512, 257], [[512, 257]], [[512, 257], [512, 257], []], [0]),
    ];

    private static readonly int[][] RandomShapes = [[7, 5], [2, 3, 5, 7], [1, 6, 1, 4], [3, 17, 2], [19], [2, 1, 3, 1, 5]];

    /// <summary>The fixed cases with a sum and a mean; random ones per seed; the large ones on the CPU set.</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        foreach (var (reduced, map, shape, inputs, mapInputs, axes) in tier == ShapeTier.Full ? Fixed.Concat(Large) : Fixed)
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Mean })
                yield return Row(reduced, map, shape, inputs, mapInputs, axes, op);
        var (reducedNames, mapNames) = (Reduced.Keys.ToArray(), Maps.Keys.ToArray());
        for (int seed = 0; seed < 16; seed++)
        {
            var rng = new Random(seed);
            var shape = RandomShapes[seed % RandomShapes.Length];
            var (reduced, map) = (reducedNames[rng.Next(reducedNames.Length)], mapNames[rng.Next(mapNames.Length)]);
            var inputs = Enumerable.Range(0, Reduced[reduced].Arity).Select(_ => BroadcastTreeKernelTests.RandomPattern(rng, shape)).ToArray();
            var mapInputs = Enumerable.Range(0, Maps[map].Arity).Select(_ => BroadcastTreeKernelTests.RandomPattern(rng, shape)).ToArray();
            var axes = Enumerable.Range(0, shape.Length).Where(_ => rng.NextDouble() < 0.5).ToArray();
            yield return Row(reduced, map, shape, inputs, mapInputs, axes, seed % 2 == 0 ? ReduceOp.Sum : ReduceOp.Mean);
        }
    }

    /// <summary>The shape with the reduced axes of extent 1: how the map reads r.</summary>
    private static int[] RowShape(int[] shape, int[] axes) => shape.Select((d, axis) => axes.Contains(axis) ? 1 : d).ToArray();

    /// <param name="reducedName">The reduced tree.</param>
    /// <param name="mapName">The map.</param>
    /// <param name="shape">The shape both trees are evaluated over.</param>
    /// <param name="inputShapes">The reduced tree's input shapes.</param>
    /// <param name="mapShapes">The map's input shapes (r's slot is replaced by the row shape).</param>
    /// <param name="axes">The reduced axes.</param>
    /// <param name="op">Sum or Mean.</param>
    [Theory, KernelCases(nameof(Cases))]
    public void RAndYAreTheTwoCallsOneAfterTheOther(string reducedName, string mapName, int[] shape, int[][] inputShapes, int[][] mapShapes, int[] axes, ReduceOp op)
    {
        var (reduced, map) = (Reduced[reducedName], Maps[mapName]);
        long n = BroadcastTreeKernelTests.Count(shape), outputs = BroadcastTreeKernelTests.Count(HostReference.ReducedShape(shape, axes));
        var rowShape = RowShape(shape, axes);
        mapShapes = mapShapes.Select((s, k) => k == RIndex ? rowShape : s).ToArray();
        var rng = new Random((int)n * 31 + reduced.Arity + 7 * map.Arity);
        var hosts = inputShapes.Select(s => Inputs.Uniform(rng, BroadcastTreeKernelTests.Count(s), -2, 2)).ToArray();
        var mapHosts = mapShapes.Select(s => Inputs.Uniform(rng, BroadcastTreeKernelTests.Count(s), -2, 2)).ToArray();
        var inputs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        var mapInputs = mapHosts.Select(h => DeviceData.Upload(K, h)).ToList();
        string what = $"{reducedName} then {mapName} {op} [{string.Join(", ", shape)}] inputs {string.Join(" ", inputShapes.Select(Fmt))} map inputs "
                      + $"{string.Join(" ", mapShapes.Select(Fmt))} axes [{string.Join(", ", axes)}]";
        try
        {
            using var expectedR = DeviceData.Filled(K, outputs, float.NaN);
            using var expectedY = DeviceData.Filled(K, n, float.NaN);
            F.ElementwiseTreeReduce(reduced, inputs, inputShapes, shape, null, op, axes, expectedR);
            F.ElementwiseTree(map, WithR(mapInputs, expectedR), mapShapes, expectedY, shape);
            using var r = DeviceData.Filled(K, outputs, float.NaN);
            using var y = DeviceData.Filled(K, n, float.NaN);
            F.ElementwiseTreeReduceThenMap(reduced, inputs, inputShapes, shape, op, axes, r, map, WithR(mapInputs, r), mapShapes, y);
            var (rValues, yValues) = (r.ToArray(), y.ToArray());
            KernelAssert.Bitwise(expectedR.ToArray(), rValues, $"{what}: r against the reduction alone");
            KernelAssert.Bitwise(expectedY.ToArray(), yValues, $"{what}: y against the map alone");

            // Host reference: the reduction from the inputs; the map from its inputs and the device's r (a sum's
            // rounding would otherwise carry into every element of its row).
            var sources = inputShapes.Select(s => HostReference.BroadcastSourceIndex(s, shape)).ToArray();
            var values = new float[n];
            for (long i = 0; i < n; i++) values[i] = (float)Reference(reduced, Enumerable.Range(0, hosts.Length).Select(k => hosts[k][sources[k][i]]).ToArray());
            var expected = HostReference.Reduce(op, values, shape, axes, out var magnitude);
            double treeAbs = Tolerance.Transcendental.Twice.Abs * (op == ReduceOp.Sum && outputs > 0 ? n / outputs : 1);
            KernelAssert.Close(expected, rValues, i => Tolerance.SumAbs + treeAbs + (Tolerance.SumRel + Tolerance.Transcendental.Twice.Rel) * magnitude[i], what + ": r");
            mapHosts[RIndex] = rValues;
            var mapSources = mapShapes.Select(s => HostReference.BroadcastSourceIndex(s, shape)).ToArray();
            var mapped = new double[n];
            for (long i = 0; i < n; i++) mapped[i] = Reference(map, Enumerable.Range(0, mapHosts.Length).Select(k => mapHosts[k][mapSources[k][i]]).ToArray());
            KernelAssert.Close(mapped, yValues, i => Tolerance.Transcendental.Twice.Abs + Tolerance.Transcendental.Twice.Rel * Math.Abs(mapped[i]), what + ": y");
        }
        finally
        {
            foreach (var x in inputs.Concat(mapInputs)) x.Dispose();
        }
    }

    private static string Fmt(int[] s) => "[" + string.Join(",", s) + "]";

    /// <summary>The map's inputs with r in its slot.</summary>
    private static List<DeviceBuffer<float>> WithR(List<DeviceBuffer<float>> mapInputs, DeviceBuffer<float> r) =>
        mapInputs.Select((b, k) => k == RIndex ? r : b).ToList();

    /// <summary>y may overwrite a full-shape input of the reduction or of the map (a gradient computed in place): every element is read before it is written.</summary>
    [Theory]
    [InlineData(false, new[] { 19, 23 }, new[] { 1 })]
    [InlineData(true, new[] { 19, 23 }, new[] { 1 })]
    [InlineData(false, new[] { 3, 1031 }, new[] { 1 })]
    [InlineData(true, new[] { 23, 19 }, new[] { 0 })]
    public void YMayOverwriteAFullInput(bool mapInput, int[] shape, int[] axes)
    {
        var (reduced, map) = (Reduced["mul01"], Maps["log-softmax-backward"]);
        long n = BroadcastTreeKernelTests.Count(shape), outputs = BroadcastTreeKernelTests.Count(HostReference.ReducedShape(shape, axes));
        int[][] shapes = [shape, shape, RowShape(shape, axes)];
        var rng = new Random(11);
        var hosts = Enumerable.Range(0, 4).Select(_ => Inputs.Uniform(rng, n, -2, 2)).ToArray();
        var buffers = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        try
        {
            using var expectedR = DeviceData.Filled(K, outputs, float.NaN);
            using var expectedY = DeviceData.Filled(K, n, float.NaN);
            F.ElementwiseTreeReduce(reduced, [buffers[0], buffers[1]], [shape, shape], shape, null, ReduceOp.Sum, axes, expectedR);
            F.ElementwiseTree(map, [buffers[2], buffers[3], expectedR], shapes, expectedY, shape);
            using var r = DeviceData.Filled(K, outputs, float.NaN);
            // In place over the map's first input, or over the reduction's first.
            var y = mapInput ? buffers[2] : buffers[0];
            F.ElementwiseTreeReduceThenMap(reduced, [buffers[0], buffers[1]], [shape, shape], shape, ReduceOp.Sum, axes, r, map, [buffers[2], buffers[3], r], shapes, y);
            KernelAssert.Bitwise(expectedR.ToArray(), r.ToArray(), $"y = {(mapInput ? "map" : "reduction")} input 0: r");
            KernelAssert.Bitwise(expectedY.ToArray(), y.ToArray(), $"y = {(mapInput ? "map" : "reduction")} input 0: y");
        }
        finally
        {
            foreach (var b in buffers) b.Dispose();
        }
    }

    /// <summary>Batches of fixed cases (indices into the fixed and large cases, the large ones on the CPU set only).</summary>
    public static IEnumerable<object[]> Batches(ShapeTier tier)
    {
        // The SPN's weight and leaf-table gradients, together.
        yield return [new[] { 0, 1, 2 }];
        yield return [new[] { 3, 4, 5, 6, 7 }];
        yield return [new[] { 8, 10, 11, 12 }];
        yield return [new[] { 2 }];
        if (tier == ShapeTier.Full)
        {
            yield return [new[] { 0, 1, 13 }];
            yield return [new[] { 13, 14, 15, 16, 17, 18, 4 }];
        }
        for (int seed = 0; seed < 4; seed++)
        {
            var rng = new Random(seed);
            yield return [Enumerable.Range(0, rng.Next(2, 6)).Select(_ => rng.Next(Fixed.Length)).ToArray()];
        }
    }

    /// <summary>
    /// Independent reductions with their maps in one call: each call's r and y are bit for bit the same call made alone
    /// (every other call's map writing its result over its own first input, where that is of the full shape).
    /// </summary>
    [Theory, KernelCases(nameof(Batches))]
    public void EachCallOfABatchIsTheCallAlone(int[] cases)
    {
        var all = Fixed.Concat(Large).ToArray();
        var calls = new List<ReduceThenMapCall>();
        var expected = new List<(float[] R, float[] Y)>();
        var buffers = new List<DeviceBuffer<float>>();
        DeviceBuffer<float> Own(DeviceBuffer<float> b)
        {
            buffers.Add(b);
            return b;
        }
        try
        {
            for (int c = 0; c < cases.Length; c++)
            {
                var (reducedName, mapName, shape, inputShapes, mapShapeSpec, axes) = all[cases[c]];
                var (reduced, map) = (Reduced[reducedName], Maps[mapName]);
                var op = c % 2 == 0 ? ReduceOp.Sum : ReduceOp.Mean;
                long n = BroadcastTreeKernelTests.Count(shape), outputs = BroadcastTreeKernelTests.Count(HostReference.ReducedShape(shape, axes));
                var mapShapes = mapShapeSpec.Select((sh, k) => k == RIndex ? RowShape(shape, axes) : sh).ToArray();
                var rng = new Random(c * 101 + cases[c]);
                var hosts = inputShapes.Select(sh => Inputs.Uniform(rng, BroadcastTreeKernelTests.Count(sh), -2, 2)).ToArray();
                var mapHosts = mapShapes.Select(sh => Inputs.Uniform(rng, BroadcastTreeKernelTests.Count(sh), -2, 2)).ToArray();
                var inputs = hosts.Select(h => Own(DeviceData.Upload(K, h))).ToList();
                var mapInputs = mapHosts.Select(h => Own(DeviceData.Upload(K, h))).ToList();
                using (var aloneR = DeviceData.Filled(K, outputs, float.NaN))
                using (var aloneY = DeviceData.Filled(K, n, float.NaN))
                {
                    F.ElementwiseTreeReduceThenMap(reduced, inputs, inputShapes, shape, op, axes, aloneR, map, WithR(mapInputs, aloneR), mapShapes, aloneY);
                    expected.Add((aloneR.ToArray(), aloneY.ToArray()));
                }
                var r = Own(DeviceData.Filled(K, outputs, float.NaN));
                bool inPlace = c % 2 == 1 && n > 0 && BroadcastTreeKernelTests.Count(mapShapes[0]) == n && map.Reads(0);
                var y = inPlace ? mapInputs[0] : Own(DeviceData.Filled(K, n, float.NaN));
                calls.Add(new ReduceThenMapCall(reduced, inputs, inputShapes, shape, op, axes, r, map, WithR(mapInputs, r), mapShapes, y));
            }
            F.ElementwiseTreeReduceThenMaps(calls);
            for (int c = 0; c < calls.Count; c++)
            {
                string what = $"call {c} of {calls.Count} (case {cases[c]}: {all[cases[c]].Reduced} then {all[cases[c]].Map} over {Fmt(all[cases[c]].Shape)})";
                KernelAssert.Bitwise(expected[c].R, calls[c].R.ToArray(), what + ": r");
                KernelAssert.Bitwise(expected[c].Y, calls[c].Y.ToArray(), what + ": y");
            }
        }
        finally
        {
            foreach (var b in buffers.Distinct()) b.Dispose();
        }
    }

    /// <summary>Bad batches throw naming the method and the call, before any call of the batch writes anything.</summary>
    [Fact]
    public void BadBatchesThrowBeforeAnyWork()
    {
        using var x = DeviceData.Filled(K, 35, 1f);
        using var x2 = DeviceData.Filled(K, 35, 2f);
        using var y = DeviceData.Filled(K, 35, float.NaN);
        using var y2 = DeviceData.Filled(K, 35, float.NaN);
        using var r = DeviceData.Filled(K, 7, float.NaN);
        using var r2 = DeviceData.Filled(K, 7, float.NaN);
        var (mul, center) = (Reduced["mul01"], Maps["center"]);
        int[] shape = [7, 5];
        ReduceThenMapCall Call(DeviceBuffer<float> input, DeviceBuffer<float> result, DeviceBuffer<float> output) =>
            new(mul, [input, input], [shape, shape], shape, ReduceOp.Sum, [1], result, center, [input, input, result], [shape, shape, [7, 1]], output);
        void Throws(IReadOnlyList<ReduceThenMapCall> calls, string fragment)
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => F.ElementwiseTreeReduceThenMaps(calls));
            Assert.Contains(nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps), e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var b in new[] { y, y2, r, r2 }) Assert.All(b.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        Throws([], "no calls");
        Throws([Call(x, r, y), Call(x2, r2, r2)], "call 1: ElementwiseTreeReduceThenMap: y holds 7 elements");
        Throws([Call(x, r, y), Call(y, r2, y2)], "call 0's y is read or written by call 1");
        Throws([Call(x, r, y), Call(x2, r, y2)], "call 0's r is read or written by call 1");
        Throws([Call(x, r, y), Call(x2, r2, y)], "call 0's y is read or written by call 1");
    }

    /// <summary>Bad calls throw naming the method, the expected and the actual values, before anything is written.</summary>
    [Fact]
    public void BadInputThrowsBeforeAnyWork()
    {
        using var x35 = DeviceData.Filled(K, 35, 1f);
        using var w5 = DeviceData.Filled(K, 5, 1f);
        using var y = DeviceData.Filled(K, 35, float.NaN);
        using var y34 = DeviceData.Filled(K, 34, float.NaN);
        using var r = DeviceData.Filled(K, 7, float.NaN);
        using var r5 = DeviceData.Filled(K, 5, float.NaN);
        var (mul, center) = (Reduced["mul01"], Maps["center"]);
        int[] shape = [7, 5];
        int[][] shapes = [[7, 5], [5]];
        void Throws(Action call, string fragment)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Contains(nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMap), e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var b in new[] { y, y34, r, r5 }) Assert.All(b.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        // Row sums of [7, 7] read back along the other axis.
        using var x49 = DeviceData.Filled(K, 49, 1f);
        using var y49 = DeviceData.Filled(K, 49, float.NaN);
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x49, x49], [[7, 7], [7, 7]], [7, 7], ReduceOp.Sum, [1], r, center, [x49, x49, r], [[7, 7], [7, 7], [7]], y49),
            "reads r (input 2) as shape [7], expected [7, 1]");
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x49, x49], [[7, 7], [7, 7]], [7, 7], ReduceOp.Sum, [1], r, center, [x49, x49, r], [[7, 7], [7, 7], [1, 7]], y49),
            "reads r (input 2) as shape [1, 7], expected [7, 1]");
        Assert.All(y49.ToArray(), v => Assert.True(float.IsNaN(v)));
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x35, w5], shapes, shape, ReduceOp.Sum, [1], r, center, [x35, x35, x35], [[7, 5], [7, 5], [7, 5]], y),
            "does not read r");
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x35, w5], shapes, shape, ReduceOp.Sum, [1], r, center, [x35, x35, r], [[7, 5], [7, 5], [7, 1]], y34),
            "y holds 34 elements, expected shape [7, 5]'s 35");
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x35, w5], shapes, shape, ReduceOp.Sum, [0], r5, center, [x35, x35, r5], [[7, 5], [7, 5], [1, 5]], w5),
            "y holds 5 elements");
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x35, w5], shapes, shape, ReduceOp.Sum, [1], r, center, [x35, x35, r], [[7, 5], [7, 5], [7, 1]], r),
            "y holds 7 elements");
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x35, w5], shapes, shape, ReduceOp.Max, [1], r, center, [x35, x35, r], [[7, 5], [7, 5], [7, 1]], y),
            "must be Sum or Mean");
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [x35, w5], shapes, shape, ReduceOp.Sum, [1], r5, center, [x35, x35, r5], [[7, 5], [7, 5], [7, 1]], y),
            "r holds 5 elements, expected 7");
        // Only extent-1 axes reduced: r has y's length, but is not y.
        using var column = DeviceData.Filled(K, 7, 1f);
        Throws(() => F.ElementwiseTreeReduceThenMap(mul, [column, column], [[7, 1], [7, 1]], [7, 1], ReduceOp.Sum, [1], r, center, [column, column, r],
            [[7, 1], [7, 1], [7, 1]], r), "y is r");
    }
}

/// <summary>The CPU set at the machine's widest width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuReduceThenMapKernelTests : ReduceThenMapKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;
}

/// <summary>The ILGPU set on the CPU emulator, its default launch shapes (thread and group kernels, split reductions).</summary>
[Collection("ilgpu")]
public sealed class IlgpuReduceThenMapKernelTests : ReduceThenMapKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;
}

/// <summary>The ILGPU set with a GPU's launch shapes (256-thread groups, warp shuffles).</summary>
[Collection("ilgpu")]
public sealed class IlgpuGpuShapeReduceThenMapKernelTests : ReduceThenMapKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => IlgpuGpuShapeTests.GpuShapes.Value;
}

/// <summary>The CPU set at one forced width, with the large shapes.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuReduceThenMapWidthTests : ReduceThenMapKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuReduceThenMapWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuReduceThenMapTests512() : CpuReduceThenMapWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuReduceThenMapTests256() : CpuReduceThenMapWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuReduceThenMapTests128() : CpuReduceThenMapWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuReduceThenMapTestsScalar() : CpuReduceThenMapWidthTests(SimdWidth.Scalar);
