using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Compilation;

/// <summary>
/// The fusion rule on hand-written call lists, where in-place writes and buffers outside the temporaries (which
/// traced tensor programs rarely show in a small test) decide: what a group may move past, and when a value written in
/// place or into a kept buffer is private.
/// </summary>
public sealed class FusionRuleTests : IDisposable
{
    private readonly IKernelSet k = Device.Get(DeviceKind.Cpu).Kernels;
    private readonly List<DeviceBuffer<float>> buffers = [];

    private DeviceBuffer<float> Buffer(long n = 6)
    {
        var b = k.Allocate(n);
        buffers.Add(b);
        return b;
    }

    private static KernelCallOp Call(string name, params object?[] args) =>
        new(typeof(IKernelSet).GetMethod(name)!, args);

    private static KernelCallOp Unary(UnaryOp op, object x, object y) => Call(nameof(IKernelSet.Unary), op, x, y);

    private static KernelCallOp Affine(object x, object y) => Call(nameof(IKernelSet.Affine), x, y, 2f, 1f);

    private static KernelCallOp Binary(BinaryOp op, object a, object b, object y, int bLength = 6) =>
        Call(nameof(IKernelSet.Binary), op, a, new[] { 6 }, b, new[] { bLength }, y, new[] { 6 });

    private static KernelCallOp Reduce(ReduceOp op, object x, int[] shape, int[] axes, object r) => Call(nameof(IKernelSet.Reduce), op, x, shape, axes, r);

    private static KernelCallOp Binary(BinaryOp op, object a, int[] aShape, object b, int[] bShape, object y, int[] yShape) =>
        Call(nameof(IKernelSet.Binary), op, a, aShape, b, bShape, y, yShape);

    private static KernelCallOp BroadcastTo(object x, int[] xShape, object y, int[] yShape) => Call(nameof(IKernelSet.BroadcastTo), x, xShape, y, yShape);

    /// <summary>Fuses <paramref name="ops"/> with <paramref name="kept"/> the buffers that are not temporaries; returns the names of the result.</summary>
    private static List<string> Fuse(List<TraceOp> ops, params object[] kept) =>
        Fusion.Fuse(ops, b => !kept.Contains(b)).Select(o => o.Name).ToList();

    [Fact]
    public void AGroupDoesNotMovePastAWriteOfItsInput()
    {
        var (x, t, y) = (Buffer(), Buffer(), Buffer());
        Assert.Equal(["Unary", "Affine", "Unary"], Fuse([Unary(UnaryOp.Tanh, x, t), Affine(x, x), Unary(UnaryOp.Sigmoid, t, y)], x, y));
        var z = Buffer();
        Assert.Equal(["Affine", "Fused[Tanh -> Sigmoid]"], Fuse([Unary(UnaryOp.Tanh, x, t), Affine(x, z), Unary(UnaryOp.Sigmoid, t, y)], x, y, z));
    }

    [Fact]
    public void AGroupDoesNotMovePastACallTouchingWhatItWrites()
    {
        // The intermediate's buffer t is written again in between (an older value, read by nobody): still no move.
        var (x, t, u, y) = (Buffer(), Buffer(), Buffer(), Buffer());
        var ops = new List<TraceOp> { Unary(UnaryOp.Tanh, x, t), Unary(UnaryOp.Exp, t, u), Affine(x, t), Binary(BinaryOp.Mul, u, t, y) };
        Assert.Equal(["Fused[Tanh -> Exp]", "Fused[Binary Mul b=Affine(2,1)]"], Fuse(ops, x, y));
    }

    [Fact]
    public void InPlaceStepsFuseWhenTheirValuesAreReadOnce()
    {
        var (a, b, c, y) = (Buffer(), Buffer(), Buffer(1), Buffer());
        // tanh((a - b) * c), the first two in place in a temporary: one tree.
        Assert.Equal(["Fused[Tanh(Mul(Sub(x0, x1), x2))]"],
            Fuse([Binary(BinaryOp.Sub, a, b, a), Binary(BinaryOp.Mul, a, c, a, bLength: 1), Unary(UnaryOp.Tanh, a, y)], b, c, y));
        // The same into a kept buffer: the difference is overwritten, so it is private there too.
        Assert.Equal(["Fused[Mul(Sub(x0, x1), x2)]"], Fuse([Binary(BinaryOp.Sub, a, b, a), Binary(BinaryOp.Mul, a, c, a, bLength: 1)], a, b, c));
        // A reader of the difference in between makes it shared.
        Assert.Equal(["Binary", "Unary", "Binary"],
            Fuse([Binary(BinaryOp.Sub, a, b, a), Unary(UnaryOp.Tanh, a, y), Binary(BinaryOp.Mul, a, c, a, bLength: 1)], a, b, c, y));
    }

    [Fact]
    public void AValueLeftInAKeptBufferIsNotFused()
    {
        var (x, kept, y) = (Buffer(), Buffer(), Buffer());
        Assert.Equal(["Unary", "Unary"], Fuse([Unary(UnaryOp.Tanh, x, kept), Unary(UnaryOp.Sigmoid, kept, y)], x, kept, y));
    }

    [Fact]
    public void ATreeReadsAtMostFourBuffers()
    {
        var (a, b, c, d, e, t, u, v, y) = (Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer());
        // (a * b) + (c * d) reads four: one tree; times e would read five, so the last product stays apart.
        var ops = new List<TraceOp>
        {
            Binary(BinaryOp.Mul, a, b, t), Binary(BinaryOp.Mul, c, d, u), Binary(BinaryOp.Add, t, u, v), Binary(BinaryOp.Mul, v, e, y),
        };
        Assert.Equal(["Fused[Add(Mul(x0, x1), Mul(x2, x3))]", "Binary"], Fuse(ops, a, b, c, d, e, y));
    }

    [Fact]
    public void AReductionAbsorbsTheGroupThatWroteItsInput()
    {
        var (a, b, t, u, r) = (Buffer(), Buffer(), Buffer(), Buffer(), Buffer(3));
        // tanh(a - b) summed over the first axis of [2, 3]: one launch, the value never stored.
        var fused = Fusion.Fuse([Binary(BinaryOp.Sub, a, b, t), Unary(UnaryOp.Tanh, t, u), Reduce(ReduceOp.Sum, u, [2, 3], [0], r)], x => x != a && x != b && x != r);
        Assert.Equal("Fused[Tanh(Sub(x0, x1))] + Reduce(Sum, axes [0])", Assert.Single(fused).Name);
        var group = (FusedOp)fused[0];
        Assert.Equal(3, group.Calls);
        Assert.Equal([a, b, null, r], group.Args);
        // One plain call, a scalar operand, a mean over the last axis.
        var (s, m) = (Buffer(1), Buffer(2));
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Mean, axes [1])"],
            Fuse([Binary(BinaryOp.Mul, a, s, t, bLength: 1), Reduce(ReduceOp.Mean, t, [2, 3], [1], m)], a, s, m));
    }

    [Fact]
    public void AReductionStoresTheValueWhenAnythingElseReadsIt()
    {
        var (a, b, t, r, y) = (Buffer(), Buffer(), Buffer(), Buffer(3), Buffer());
        // Read again after the reduction: stored into its buffer by the same launch.
        var fused = Fusion.Fuse([Binary(BinaryOp.Add, a, b, t), Reduce(ReduceOp.Sum, t, [2, 3], [0], r), Unary(UnaryOp.Tanh, t, y)], x => x == t);
        Assert.Equal(["Fused[Add(x0, x1)] + Reduce(Sum, axes [0])", "Unary"], fused.Select(o => o.Name));
        Assert.Same(t, ((FusedOp)fused[0]).Args[^2]);
        // Left in a kept buffer: stored too.
        fused = Fusion.Fuse([Binary(BinaryOp.Add, a, b, t), Reduce(ReduceOp.Sum, t, [2, 3], [0], r)], x => false);
        Assert.Same(t, ((FusedOp)Assert.Single(fused)).Args[^2]);
    }

    [Fact]
    public void AReductionDoesNotAbsorbWhatItCannotReadAsOneTree()
    {
        var (a, b, w, t, r, y) = (Buffer(), Buffer(), Buffer(3), Buffer(), Buffer(3), Buffer());
        // A write of the group's input in between.
        Assert.Equal(["Binary", "Affine", "Reduce"], Fuse([Binary(BinaryOp.Add, a, b, t), Affine(a, a), Reduce(ReduceOp.Sum, t, [2, 3], [0], r)], a, b, r));
        // A reader of the value in between.
        Assert.Equal(["Binary", "Unary", "Reduce"],
            Fuse([Binary(BinaryOp.Add, a, b, t), Unary(UnaryOp.Tanh, t, y), Reduce(ReduceOp.Sum, t, [2, 3], [0], r)], a, b, r, y));
        // A broadcasting group whose shape the reduction's does not regroup onto ([6] read as [3], over [3, 2]).
        Assert.Equal(["Binary", "Reduce"], Fuse([Binary(BinaryOp.Add, a, [6], w, [3], t, [6]), Reduce(ReduceOp.Sum, t, [3, 2], [1], r)], a, w, r));
        // A reduction over fewer elements than its input buffer holds.
        var r2 = Buffer(2);
        Assert.Equal(["Binary", "Reduce"], Fuse([Binary(BinaryOp.Add, a, b, t), Reduce(ReduceOp.Sum, t, [2, 2], [0], r2)], a, b, r2));
        // Max is not an epilogue; neither is a reduction writing what the group reads.
        Assert.Equal(["Binary", "Reduce"], Fuse([Binary(BinaryOp.Add, a, b, t), Reduce(ReduceOp.Max, t, [2, 3], [0], r)], a, b, r));
        Assert.Equal(["Binary", "Reduce"], Fuse([Binary(BinaryOp.Add, a, b, t), Reduce(ReduceOp.Sum, t, [6], [], a)], a, b));
    }

    [Fact]
    public void AReductionRunsWithTheLaunchRightAfterItThatReadsItBack()
    {
        // A softmax's backward y·(dy - sum(y·dy)) over the rows of [2, 3]: the product summed, then the tree that reads
        // the row sums back as [2, 1]: one launch.
        var (y, dy, t, r, d, g) = (Buffer(), Buffer(), Buffer(), Buffer(2), Buffer(), Buffer());
        var ops = new List<TraceOp>
        {
            Binary(BinaryOp.Mul, y, [2, 3], dy, [2, 3], t, [2, 3]), Reduce(ReduceOp.Sum, t, [2, 3], [1], r),
            Binary(BinaryOp.Sub, dy, [2, 3], r, [2, 1], d, [2, 3]), Binary(BinaryOp.Mul, y, [2, 3], d, [2, 3], g, [2, 3]),
        };
        var fused = (FusedOp)Assert.Single(Fusion.Fuse(ops, z => z == t || z == d));
        Assert.Equal("Fused[Mul(x0, x1)] + Reduce(Sum, axes [1]) then [Mul(x0, Sub(x1, x2))]", fused.Name);
        Assert.Equal(4, fused.Calls);
        Assert.Equal([y, dy, r, y, dy, r, g], fused.Args);
        Assert.Equal([[2, 3], [2, 3], [2, 1]], fused.MapInputShapes);
        Assert.Equal([r, g], fused.Written);
        // A plain sum over all of a flat value, read back as a scalar by one call.
        var s = Buffer(1);
        Assert.Equal(["Fused[x0] + Reduce(Mean, axes [0]) then [Sub(x0, x1)]"],
            Fuse([Reduce(ReduceOp.Mean, y, [6], [0], s), Binary(BinaryOp.Sub, y, s, g, bLength: 1)], y, s, g));
        // Not right after it; the reduced value stored for another reader; the sums read back along the other axis.
        Assert.Equal(["Reduce", "Affine", "Binary"],
            Fuse([Reduce(ReduceOp.Sum, y, [6], [0], s), Affine(dy, t), Binary(BinaryOp.Sub, y, s, g, bLength: 1)], y, dy, t, s, g));
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [1])", "Binary", "Binary"], Fuse(ops, y, dy, t, r, d, g));
        var (x9, r3, y9) = (Buffer(9), Buffer(3), Buffer(9));
        Assert.Equal(["Reduce", "Binary"], Fuse([Reduce(ReduceOp.Sum, x9, [3, 3], [1], r3), Binary(BinaryOp.Sub, x9, [3, 3], r3, [3], y9, [3, 3])], x9, r3, y9));
        Assert.Equal(["Fused[x0] + Reduce(Sum, axes [1]) then [Sub(x0, x1)]"],
            Fuse([Reduce(ReduceOp.Sum, x9, [3, 3], [1], r3), Binary(BinaryOp.Sub, x9, [3, 3], r3, [3, 1], y9, [3, 3])], x9, r3, y9));
    }

    [Fact]
    public void BroadcastOperandsAreLeavesOfOneTree()
    {
        // The FNO's spectral weights a·p + b·q, p and q broadcast: one tree over four inputs, each with its shape.
        var (a, b, p, q, s, t, y) = (Buffer(12), Buffer(12), Buffer(4), Buffer(4), Buffer(48), Buffer(48), Buffer(48));
        int[] full = [3, 2, 4, 2], half = [3, 1, 4, 1], small = [2, 1, 2, 1];
        var fused = Fusion.Fuse([Binary(BinaryOp.Mul, a, half, p, small, s, full), Binary(BinaryOp.Mul, b, half, q, small, t, full),
            Binary(BinaryOp.Add, s, full, t, full, y, full)], x => x == s || x == t);
        var tree = (FusedOp)Assert.Single(fused);
        Assert.Equal("Fused[Add(Mul(x0, x1), Mul(x2, x3))]", tree.Name);
        Assert.Equal([a, p, b, q, y], tree.Args);
        Assert.Equal(full, tree.TreeShape);
        Assert.Equal([half, small, half, small], tree.InputShapes!);
        // An SPN's x - exp(u)·w, w broadcast along the last axis: one tree where a binary chain stopped at the broadcast.
        var (x, u, w, e, m, d) = (Buffer(6), Buffer(6), Buffer(2), Buffer(6), Buffer(6), Buffer(6));
        Assert.Equal(["Fused[Sub(x0, Mul(Exp(x1), x2))]"], Fuse([Unary(UnaryOp.Exp, u, e), Binary(BinaryOp.Mul, e, [2, 3], w, [2, 1], m, [2, 3]),
            Binary(BinaryOp.Sub, x, [2, 3], m, [2, 3], d, [2, 3])], x, u, w, d));
    }

    [Fact]
    public void ABroadcastToIsALeafReadThroughBroadcasting()
    {
        // g broadcast to [2, 3], then 2·(g·x): one tree reading g as [2, 1]; summed over axis 0 as well: one launch.
        var (g, x, b, m, y, r) = (Buffer(2), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(3));
        var ops = new List<TraceOp> { BroadcastTo(g, [2, 1], b, [2, 3]), Binary(BinaryOp.Mul, b, [2, 3], x, [2, 3], m, [2, 3]), Affine(m, y) };
        var tree = (FusedOp)Assert.Single(Fusion.Fuse(ops, z => z == b || z == m));
        Assert.Equal("Fused[Affine(2,1)(Mul(x0, x1))]", tree.Name);
        Assert.Equal(3, tree.Calls);
        Assert.Equal([[2, 1], [2, 3]], tree.InputShapes!);
        var reduced = (FusedOp)Assert.Single(Fusion.Fuse([.. ops, Reduce(ReduceOp.Sum, y, [2, 3], [0], r)], z => z == b || z == m || z == y));
        Assert.Equal("Fused[Affine(2,1)(Mul(x0, x1))] + Reduce(Sum, axes [0])", reduced.Name);
        Assert.Equal([g, x, null, r], reduced.Args);
        // A lone BroadcastTo stays a call; one whose value is read twice stays apart.
        Assert.Equal(["BroadcastTo"], Fuse([BroadcastTo(g, [2, 1], b, [2, 3])], g, b));
        Assert.Equal(["BroadcastTo", "Binary"], Fuse([BroadcastTo(g, [2, 1], b, [2, 3]), Binary(BinaryOp.Mul, b, [2, 3], b, [2, 3], m, [2, 3])], g, m));
    }

    [Fact]
    public void AGroupJoinsOnlyWhereItsShapeAgrees()
    {
        // A value broadcast over [2, 3] read as the full operand of a [3, 2] result that broadcasts another: same count,
        // other shape, no fusion.
        var (a, w, t, c, y, v) = (Buffer(), Buffer(3), Buffer(), Buffer(), Buffer(), Buffer(2));
        Assert.Equal(["Binary", "Binary"], Fuse([Binary(BinaryOp.Mul, a, [2, 3], w, [3], t, [2, 3]), Binary(BinaryOp.Add, t, [3, 2], v, [2], y, [3, 2])], a, w, v, y));
        // Leading 1s do not matter.
        Assert.Equal(["Fused[Add(Mul(x0, x1), x2)]"],
            Fuse([Binary(BinaryOp.Mul, a, [2, 3], w, [3], t, [2, 3]), Binary(BinaryOp.Add, t, [1, 2, 3], c, [1, 2, 3], y, [1, 2, 3])], a, w, c, y));
        // Agreeing shapes of different ranks: the tree runs over the higher rank, so every leaf broadcasts to it; so does
        // a reduction over the lower one.
        var (u, r) = (Buffer(), Buffer(3));
        var ops = new List<TraceOp> { Binary(BinaryOp.Mul, a, [1, 2, 3], w, [1, 1, 3], t, [1, 2, 3]), Binary(BinaryOp.Add, t, [2, 3], v, [2, 1], u, [2, 3]) };
        var tree = (FusedOp)Assert.Single(Fusion.Fuse(ops, z => z == t));
        Assert.Equal([1, 2, 3], tree.TreeShape!);
        Assert.Equal([[1, 2, 3], [1, 1, 3], [2, 1]], tree.InputShapes!);
        var reduced = (FusedOp)Assert.Single(Fusion.Fuse([.. ops, Reduce(ReduceOp.Sum, u, [2, 3], [0], r)], z => z == t || z == u));
        Assert.Equal([1, 2, 3], reduced.ReduceShape);
        Assert.Equal([1], reduced.ReduceAxes);
        // A plain root takes the group's shape, whatever its own: its other leaves are full or scalars, read in flat order.
        Assert.Equal(["Fused[Add(Mul(x0, x1), x2)]"], Fuse([Binary(BinaryOp.Mul, a, [2, 3], w, [3], t, [2, 3]), Binary(BinaryOp.Add, t, [3, 2], c, [3, 2], y, [3, 2])], a, w, c, y));
        var s = Buffer(1);
        Assert.Equal(["Fused[Mul(Mul(x0, x1), x2)]"],
            Fuse([Binary(BinaryOp.Mul, a, [2, 3], w, [3], t, [2, 3]), Binary(BinaryOp.Mul, t, [6], s, [1], y, [6])], a, w, s, y));
    }

    [Fact]
    public void ABufferReadWithTwoShapesIsTwoInputs()
    {
        // w read as [3] and as [3, 1]: two inputs, so with a, b and c the tree would read five and the last add stays apart.
        var (a, b, c, w, t, u, v, y) = (Buffer(9), Buffer(9), Buffer(9), Buffer(3), Buffer(9), Buffer(9), Buffer(9), Buffer(9));
        int[] sq = [3, 3];
        var ops = new List<TraceOp>
        {
            Binary(BinaryOp.Mul, a, sq, w, [3], t, sq), Binary(BinaryOp.Mul, b, sq, w, [3, 1], u, sq), Binary(BinaryOp.Add, t, sq, u, sq, v, sq),
            Binary(BinaryOp.Add, v, sq, c, sq, y, sq),
        };
        var fused = Fusion.Fuse(ops, z => z == t || z == u || z == v);
        Assert.Equal(["Fused[Add(Mul(x0, x1), Mul(x2, x3))]", "Binary"], fused.Select(o => o.Name));
        Assert.Equal([[3, 3], [3], [3, 3], [3, 1]], ((FusedOp)fused[0]).InputShapes!);
    }

    [Fact]
    public void AReductionRegroupsOntoItsGroupsShape()
    {
        // A [2, 3] tree summed as [6, 1] over axis 0 (the same single run): one launch over [2, 3], axes 0 and 1.
        var (a, w, t, r) = (Buffer(), Buffer(2), Buffer(), Buffer(1));
        var fused = (FusedOp)Assert.Single(Fusion.Fuse([Binary(BinaryOp.Mul, a, [2, 3], w, [2, 1], t, [2, 3]), Reduce(ReduceOp.Sum, t, [6, 1], [0], r)],
            z => z == t));
        Assert.Equal([2, 3], fused.ReduceShape);
        Assert.Equal([0, 1], fused.ReduceAxes);
        // [3, 2] over axis 1 runs across the tree's rows: no regrouping.
        var r3 = Buffer(3);
        Assert.Equal(["Binary", "Reduce"], Fuse([Binary(BinaryOp.Mul, a, [2, 3], w, [2, 1], t, [2, 3]), Reduce(ReduceOp.Sum, t, [3, 2], [1], r3)], a, w, r3));
    }

    [Fact]
    public void SiblingReductionsPairOnlyWithinTheSetsReach()
    {
        // Two sums of [2, 3] with a launch between that touches 48 bytes (c and d, six floats each).
        var (a, b, c, d, e, r0, r1) = (Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(3), Buffer(3));
        List<TraceOp> Program(params TraceOp[] between) =>
            [Reduce(ReduceOp.Sum, a, [2, 3], [0], r0), .. between, Reduce(ReduceOp.Sum, b, [2, 3], [0], r1)];
        int Pairs(List<TraceOp> ops, long reach)
        {
            Fusion.PairSiblings(ops, out int paired, reach, out int leftApart);
            Assert.Equal(paired == 0 ? 1 : 0, leftApart);
            return paired / 2;
        }
        var apart = Program(Unary(UnaryOp.Tanh, c, d));
        Assert.Equal(1, Pairs(apart, long.MaxValue));
        Assert.Equal(1, Pairs(apart, 48));
        Assert.Equal(0, Pairs(apart, 47));
        // Counted from the last launch between that touches the earlier sum's input: a was just read again.
        Assert.Equal(1, Pairs(Program(Unary(UnaryOp.Tanh, c, d), Unary(UnaryOp.Exp, a, e)), 0));
        Assert.Equal(0, Pairs(Program(Unary(UnaryOp.Exp, a, e), Unary(UnaryOp.Tanh, c, d)), 0));
        // The CPU set re-reads from memory past its reach; a launch-bound set has none.
        Assert.Equal(16L << 20, ((IFusedElementwiseKernels)Device.Get(DeviceKind.Cpu).Kernels).SiblingPairReach);
        Assert.Equal(long.MaxValue, ((IFusedElementwiseKernels)Device.Get(DeviceKind.IlgpuCpu).Kernels).SiblingPairReach);
    }

    [Fact]
    public void SiblingReductionsOverASharedInputPair()
    {
        // The FNO's two weight gradients, s·p and s·q summed over the broadcast axes: one launch, s loaded once.
        var (s, p, q, t, u, r0, r1) = (Buffer(48), Buffer(4), Buffer(4), Buffer(48), Buffer(48), Buffer(4), Buffer(4));
        int[] full = [3, 2, 4, 2], small = [2, 1, 2, 1];
        var ops = new List<TraceOp>
        {
            Binary(BinaryOp.Mul, s, full, p, small, t, full), Reduce(ReduceOp.Sum, t, full, [0, 2], r0),
            Binary(BinaryOp.Mul, s, full, q, small, u, full), Reduce(ReduceOp.Sum, u, full, [0, 2], r1),
        };
        var pair = (FusedOp)Assert.Single(Fusion.PairSiblings(Fusion.Fuse(ops, z => z == t || z == u, out int epilogues), out int paired));
        Assert.Equal("Fused pair[Mul(x0, x1); Mul(x0, x2)] + Reduce(Sum, axes [0, 2])", pair.Name);
        Assert.Equal((2, 2, 4), (epilogues, paired, pair.Calls));
        Assert.Equal([s, p, q, null, null, r0, r1], pair.Args);
        Assert.Equal([full, small, small], pair.InputShapes!);
        // The loss's two sums: (x - y)² and y², the first's square stored because it is read after both.
        var (x, y, d, e, f, n0, n1, g) = (Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(2), Buffer(2), Buffer());
        var loss = new List<TraceOp>
        {
            Binary(BinaryOp.Sub, x, y, d), Unary(UnaryOp.Square, d, e), Reduce(ReduceOp.Sum, e, [2, 3], [1], n0),
            Unary(UnaryOp.Square, y, f), Reduce(ReduceOp.Sum, f, [2, 3], [1], n1), Unary(UnaryOp.Tanh, e, g),
        };
        var fused = Fusion.Fuse(loss, z => z == d || z == e || z == f);
        Assert.Equal(["Fused pair[Square(Sub(x0, x1)); Square(x1)] + Reduce(Sum, axes [1])", "Unary"], fused.Select(o => o.Name));
        Assert.Equal([x, y, e, null, n0, n1], ((FusedOp)fused[0]).Args);
        // A plain sum beside a tree over its input.
        var (r, w) = (Buffer(3), Buffer(3));
        var plain = (FusedOp)Assert.Single(Fusion.Fuse([Reduce(ReduceOp.Mean, x, [2, 3], [0], r), Unary(UnaryOp.Square, x, e), Reduce(ReduceOp.Mean, e, [2, 3], [0], w)],
            z => z == e));
        Assert.Equal("Fused pair[x0; Square(x0)] + Reduce(Mean, axes [0])", plain.Name);
        Assert.Equal([x, null, null, r, w], plain.Args);
    }

    [Fact]
    public void SiblingReductionsPairOnlyWhenNothingStopsTheMove()
    {
        var (a, b, c, d, e, t, u, r0, r1, r2, y) = (Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(), Buffer(3), Buffer(3), Buffer(2), Buffer());
        List<TraceOp> Siblings(TraceOp between, ReduceOp secondOp = ReduceOp.Sum, int[]? secondAxes = null, object? shared = null) =>
        [
            Binary(BinaryOp.Mul, a, b, t), Reduce(ReduceOp.Sum, t, [2, 3], [0], r0), between,
            Binary(BinaryOp.Add, shared ?? a, c, u), Reduce(secondOp, u, [2, 3], secondAxes ?? [0], secondAxes is [1] ? r2 : r1),
        ];
        string[] pairs = ["Fused pair[Mul(x0, x1); Add(x0, x2)] + Reduce(Sum, axes [0])", "Unary"];
        object[] kept = [a, b, c, d, e, r0, r1, r2, y];
        Assert.Equal(pairs.Reverse(), Fuse(Siblings(Unary(UnaryOp.Exp, d, y)), kept));
        // Other axes, another op.
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [0])", "Unary", "Fused[Add(x0, x1)] + Reduce(Sum, axes [1])"],
            Fuse(Siblings(Unary(UnaryOp.Exp, d, y), secondAxes: [1]), kept));
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [0])", "Unary", "Fused[Add(x0, x1)] + Reduce(Mean, axes [0])"],
            Fuse(Siblings(Unary(UnaryOp.Exp, d, y), ReduceOp.Mean), kept));
        // No shared input: the pair reads four.
        Assert.Equal(["Unary", "Fused pair[Mul(x0, x1); Add(x2, x3)] + Reduce(Sum, axes [0])"],
            Fuse(Siblings(Unary(UnaryOp.Exp, d, y), shared: e), kept));
        // A call between writes what the first reads, or reads what it writes.
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [0])", "Unary", "Fused[Add(x0, x1)] + Reduce(Sum, axes [0])"],
            Fuse(Siblings(Unary(UnaryOp.Exp, d, b)), kept));
        var z = Buffer(3);
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [0])", "Unary", "Fused[Add(x0, x1)] + Reduce(Sum, axes [0])"],
            Fuse(Siblings(Unary(UnaryOp.Exp, r0, z)), [.. kept, z]));
        // (A reader of the first's result over its shape runs with it instead.)
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [0]) then [Mul(x0, x1)]", "Fused[Add(x0, x1)] + Reduce(Sum, axes [0])"],
            Fuse(Siblings(Binary(BinaryOp.Mul, d, [2, 3], r0, [3], y, [2, 3])), kept));
        // The second reads the first's result.
        var readsResult = new List<TraceOp>
        {
            Binary(BinaryOp.Mul, a, b, t), Reduce(ReduceOp.Sum, t, [2, 3], [0], r0), Binary(BinaryOp.Mul, a, [2, 3], r0, [3], u, [2, 3]),
            Reduce(ReduceOp.Sum, u, [2, 3], [0], r1),
        };
        Assert.Equal(["Fused[Mul(x0, x1)] + Reduce(Sum, axes [0])", "Fused[Mul(x0, x1)] + Reduce(Sum, axes [0])"], Fuse(readsResult, kept));
        // Five inputs together: a·b + c and a·d + e.
        var (v, w) = (Buffer(), Buffer());
        var five = new List<TraceOp>
        {
            Binary(BinaryOp.Mul, a, b, t), Binary(BinaryOp.Add, t, c, v), Reduce(ReduceOp.Sum, v, [2, 3], [0], r0),
            Binary(BinaryOp.Mul, a, d, u), Binary(BinaryOp.Add, u, e, w), Reduce(ReduceOp.Sum, w, [2, 3], [0], r1),
        };
        Assert.Equal(["Fused[Add(Mul(x0, x1), x2)] + Reduce(Sum, axes [0])", "Fused[Add(Mul(x0, x1), x2)] + Reduce(Sum, axes [0])"],
            Fusion.Fuse(five, z => z == t || z == u || z == v || z == w).Select(o => o.Name));
        // A third sibling pairs with nobody: each launch holds two.
        var (r3, x3) = (Buffer(3), Buffer());
        var three = Siblings(Unary(UnaryOp.Exp, d, y)).Concat([Binary(BinaryOp.Sub, a, c, x3), Reduce(ReduceOp.Sum, x3, [2, 3], [0], r3)]).ToList();
        Assert.Equal([.. pairs.Reverse(), "Fused[Sub(x0, x1)] + Reduce(Sum, axes [0])"], Fuse(three, [.. kept, r3]));
    }

    public void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
    }
}
