using Engine.Kernels.Elementwise;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

// Fused elementwise chains and trees: one composed op struct, compiled by ILGPU into one kernel per chain or tree type and cached.
public sealed partial class IlgpuKernelSet : IFusedElementwiseKernels
{
    void IFusedElementwiseKernels.UnaryChain(IReadOnlyList<UnaryStep> steps, DeviceBuffer<float> x, DeviceBuffer<float> y) =>
        ElementwiseChains.Run(this, nameof(Unary), ElementwiseChains.Unary(steps), x, y);

    void IFusedElementwiseKernels.BinaryChain(IReadOnlyList<UnaryStep> aSteps, BinaryOp head, IReadOnlyList<UnaryStep> bSteps, IReadOnlyList<UnaryStep> tail,
        DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b,
        int[] bShape, DeviceBuffer<float> y, int[] yShape) =>
        ElementwiseChains.Run(this, nameof(Binary), ElementwiseChains.Binary(aSteps, head, bSteps, tail), a, aShape, b, bShape, y, yShape);

    void IFusedElementwiseKernels.ElementwiseTree(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes,
        DeviceBuffer<float> y, int[] shape)
    {
        var layout = TreeBroadcast.CheckTree(tree, inputs, inputShapes, y, shape);
        var strided = TreeLayouts(layout, nameof(IFusedElementwiseKernels.ElementwiseTree), shape);
        ElementwiseChains.Run(this, nameof(ElementwiseTree), ElementwiseChains.Tree(tree), inputs, layout, strided, y);
    }

    void IFusedElementwiseKernels.ElementwiseTreeReduce(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes,
        int[] shape, DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r)
    {
        var plan = TreeReduction.Check(tree, inputs, inputShapes, shape, y, op, axes, r);
        var strided = TreeLayouts(plan.Layout, nameof(IFusedElementwiseKernels.ElementwiseTreeReduce), shape);
        ElementwiseChains.Run(this, nameof(ElementwiseTreeReduce), ElementwiseChains.Tree(tree), inputs, shape, y, op, axes, plan.Layout, strided, r);
    }

    void IFusedElementwiseKernels.ElementwiseTreeReducePair(ElementwiseExpression first, ElementwiseExpression second, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, DeviceBuffer<float>? y0, DeviceBuffer<float>? y1, ReduceOp op, int[] axes, DeviceBuffer<float> r0,
        DeviceBuffer<float> r1)
    {
        var plan = TreeReduction.CheckPair(first, second, inputs, inputShapes, shape, y0, y1, op, axes, r0, r1);
        var strided = TreeLayouts(plan.Layout, nameof(IFusedElementwiseKernels.ElementwiseTreeReducePair), shape);
        ElementwiseChains.RunPair(this, nameof(ElementwiseTreeReducePair), ElementwiseChains.Tree(first), ElementwiseChains.Tree(second), inputs, shape, y0, y1, op,
            axes, plan.Layout, strided, r0, r1);
    }

    void IFusedElementwiseKernels.ElementwiseTreeReduceThenMap(ElementwiseExpression reduced, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, ReduceOp op, int[] axes, DeviceBuffer<float> r, ElementwiseExpression map,
        IReadOnlyList<DeviceBuffer<float>> mapInputs, IReadOnlyList<int[]> mapInputShapes, DeviceBuffer<float> y)
    {
        const string opName = nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMap);
        var (plan, mapLayout) = TreeReduction.CheckThenMap(reduced, inputs, inputShapes, shape, op, axes, r, map, mapInputs, mapInputShapes, y);
        var strided = TreeLayouts(plan.Layout, opName, shape);
        var mapStrided = TreeLayouts(mapLayout, opName, shape);
        ElementwiseChains.RunPair(this, nameof(ElementwiseTreeReduceThenMap), ElementwiseChains.Tree(reduced), ElementwiseChains.Tree(map), inputs, shape, op, axes,
            plan.Layout, strided, r, mapInputs, mapLayout, mapStrided, y);
    }

    /// <summary>
    /// Every call checked, then each launched as <see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMap"/>
    /// launches it alone: one kernel's parameters hold one call's trees and layouts.
    /// </summary>
    void IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps(IReadOnlyList<ReduceThenMapCall> calls)
    {
        const string opName = nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps);
        var plans = ReduceThenMapCall.CheckAll(calls);
        for (int i = 0; i < calls.Count; i++)
        {
            var (c, (plan, mapLayout)) = (calls[i], plans[i]);
            ElementwiseChains.RunPair(this, nameof(ElementwiseTreeReduceThenMap), ElementwiseChains.Tree(c.Reduced), ElementwiseChains.Tree(c.Map), c.Inputs,
                c.Shape, c.Op, c.Axes, plan.Layout, TreeLayouts(plan.Layout, opName, c.Shape), c.R, c.MapInputs, mapLayout,
                TreeLayouts(mapLayout, opName, c.Shape), c.Y);
        }
    }

    /// <summary>
    /// The reduction of <paramref name="reduced"/> into r, then <paramref name="map"/> into y, for any tree structs:
    /// one launch that walks as <see cref="Reduce"/>'s thread or group kernel and maps each output's elements right
    /// after reducing them. Few long reductions, which <see cref="Reduce"/> splits over groups and folds in a second
    /// launch, run as the two calls one after the other. Checked by the caller.
    /// </summary>
    internal void ElementwiseTreeReduceThenMap<TReduced, TMap>(TReduced reduced, TMap map, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, ReduceOp op,
        int[] axes, TreeBroadcast layout, (StridedLayout First, StridedLayout Second) strided, DeviceBuffer<float> r, IReadOnlyList<DeviceBuffer<float>> mapInputs,
        TreeBroadcast mapLayout, (StridedLayout First, StridedLayout Second) mapStrided, DeviceBuffer<float> y)
        where TReduced : unmanaged, ITreeOp where TMap : unmanaged, ITreeOp
    {
        const string opName = nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMap);
        var plan = PlanReduce(opName, op, shape, axes);
        bool byGroups = PreferTree(plan.OutCount, plan.RedCount);
        if (plan.OutCount == 0 || plan.RedCount == 0 || (byGroups && ReduceSplit(plan.OutCount, plan.RedCount) > 1))
        {
            // Nothing to map, or partials that only a second launch can fold.
            ElementwiseTreeReduce(reduced, inputs, shape, null, op, axes, layout, strided, r);
            ElementwiseTree(map, mapInputs, mapLayout, mapStrided, y);
            return;
        }
        long n = plan.OutCount * plan.RedCount;
        var rv = View(r, plan.OutCount, opName, nameof(r));
        var x = TreeInputsOf(inputs, n, layout, strided, opName);
        var source = new TreeSource<TReduced> { Inputs = x, Y = x.X0, Store = 0, Tree = reduced };
        var target = new MapTarget<TMap> { Inputs = TreeInputsOf(mapInputs, n, mapLayout, mapStrided, opName), Y = View(y, n, opName, nameof(y)), Tree = map };
        var (p, outLayout, redOuter) = (plan.Params, plan.OutLayout, plan.RedOuter);
        object?[] keep = [.. inputs, .. mapInputs, r, y];
        if (!byGroups)
        {
            var thread = Specialised<(TReduced, TMap), Action<KernelConfig, TreeSource<TReduced>, MapTarget<TMap>, ArrayView<float>, StridedLayout, StridedLayout,
                ReduceParams>>(ElementwiseKernel.ReduceThenMapThread,
                acc => acc.LoadStreamKernel<TreeSource<TReduced>, MapTarget<TMap>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(
                    IlgpuKernels.ReduceThenMapThread));
            Launch(opName, () => thread(Config1D(plan.OutCount), source, target, rv, outLayout, redOuter, p), keep);
            return;
        }
        var group = Specialised<(TReduced, TMap), Action<KernelConfig, TreeSource<TReduced>, MapTarget<TMap>, ArrayView<float>, StridedLayout, StridedLayout,
            ReduceParams>>(ElementwiseKernel.ReduceThenMapGroup,
            acc => shuffles
                ? acc.LoadStreamKernel<TreeSource<TReduced>, MapTarget<TMap>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(
                    IlgpuKernels.ReduceThenMapGroup<SwitchOn, TreeSource<TReduced>, TMap>)
                : acc.LoadStreamKernel<TreeSource<TReduced>, MapTarget<TMap>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(
                    IlgpuKernels.ReduceThenMapGroup<SwitchOff, TreeSource<TReduced>, TMap>));
        p.Split = 1;
        Launch(opName, () => group(ConfigTree(p.OutCount, plan.RedCount), source, target, rv, outLayout, redOuter, p), keep);
    }

    /// <summary>
    /// Two trees over <paramref name="shape"/> reduced into r0 and r1 (and stored into y0 and y1 unless null) for any
    /// tree structs: the paired reduction kernels, which walk as <see cref="Reduce"/>'s and read both trees' elements
    /// from one load of the inputs, each into its own accumulators. Checked by the caller.
    /// </summary>
    internal void ElementwiseTreeReducePair<TFirst, TSecond>(TFirst first, TSecond second, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape,
        DeviceBuffer<float>? y0, DeviceBuffer<float>? y1, ReduceOp op, int[] axes, TreeBroadcast layout, (StridedLayout First, StridedLayout Second) strided,
        DeviceBuffer<float> r0, DeviceBuffer<float> r1) where TFirst : unmanaged, ITreeOp where TSecond : unmanaged, ITreeOp
    {
        const string opName = nameof(IFusedElementwiseKernels.ElementwiseTreeReducePair);
        var plan = PlanReduce(opName, op, shape, axes);
        long n = plan.OutCount * plan.RedCount;
        var (rv0, rv1) = (View(r0, plan.OutCount, opName, nameof(r0)), View(r1, plan.OutCount, opName, nameof(r1)));
        var x = TreeInputsOf(inputs, n, layout, strided, opName);
        var source = new TreePairSource<TFirst, TSecond>
        {
            Inputs = x,
            Y0 = y0 == null ? x.X0 : View(y0, n, opName, nameof(y0)),
            Y1 = y1 == null ? x.X0 : View(y1, n, opName, nameof(y1)),
            Store0 = y0 == null ? 0 : 1,
            Store1 = y1 == null ? 0 : 1,
            Tree0 = first,
            Tree1 = second,
        };
        object?[] keep = [.. inputs, y0, y1, r0, r1];
        if (plan.OutCount == 0) return;
        if (plan.RedCount == 0)
        {
            // Empty reductions, as Reduce: the sum of nothing is 0, its mean 0/0.
            float empty = op == ReduceOp.Mean ? float.NaN : 0f;
            FillView(rv0.SubView(0, plan.OutCount), empty, opName, r0);
            FillView(rv1.SubView(0, plan.OutCount), empty, opName, r1);
            return;
        }
        var (p, outLayout, redOuter) = (plan.Params, plan.OutLayout, plan.RedOuter);
        if (!PreferTree(plan.OutCount, plan.RedCount))
        {
            var thread = Specialised<TreePairSource<TFirst, TSecond>, Action<KernelConfig, TreePairSource<TFirst, TSecond>, ArrayView<float>, ArrayView<float>,
                StridedLayout, StridedLayout, ReduceParams>>(ElementwiseKernel.TreeReducePairThread,
                acc => acc.LoadStreamKernel<TreePairSource<TFirst, TSecond>, ArrayView<float>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(
                    IlgpuKernels.ReducePairThread));
            Launch(opName, () => thread(Config1D(plan.OutCount), source, rv0, rv1, outLayout, redOuter, p), keep);
            return;
        }
        var group = PairGroupKernel<TreePairSource<TFirst, TSecond>>();
        int split = ReduceSplit(p.OutCount, plan.RedCount);
        if (split == 1)
        {
            p.Split = 1;
            Launch(opName, () => group(ConfigTree(p.OutCount, plan.RedCount), source, rv0, rv1, outLayout, redOuter, p), keep);
            return;
        }
        // Split as ReduceByGroups splits: both trees' partials in one buffer, folded by one paired launch.
        using var partials = (IlgpuBuffer<float>)Allocate(2 * p.OutCount * split);
        var (pv0, pv1) = (partials.View.SubView(0, p.OutCount * split), partials.View.SubView(p.OutCount * split, p.OutCount * split));
        var firstPass = p;
        firstPass.Split = split;
        Launch(opName, () => group(ConfigTree(p.OutCount * split, plan.RedCount / split), source, pv0, pv1, outLayout, redOuter, firstPass), [.. keep, partials]);
        var (secondPass, rows) = FoldPass(opName, p, split);
        var fold = PairGroupKernel<PairViewSource>();
        Launch(opName, () => fold(ConfigTree(p.OutCount, split), new PairViewSource { X0 = pv0, X1 = pv1 }, rv0, rv1, rows, default, secondPass), partials, r0, r1);
    }

    /// <summary>The paired group reduction kernel over <typeparamref name="TSource"/>, with or without warp shuffles.</summary>
    private Action<KernelConfig, TSource, ArrayView<float>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams> PairGroupKernel<TSource>()
        where TSource : struct, IReducePairSource =>
        Specialised<TSource, Action<KernelConfig, TSource, ArrayView<float>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>>(
            ElementwiseKernel.TreeReducePairGroup,
            acc => shuffles
                ? acc.LoadStreamKernel<TSource, ArrayView<float>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReducePairGroup<SwitchOn, TSource>)
                : acc.LoadStreamKernel<TSource, ArrayView<float>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReducePairGroup<SwitchOff, TSource>));

    /// <summary>The inputs of a tree of <paramref name="count"/> elements as the reduction sources read them (see <see cref="TreeInputs"/>).</summary>
    private TreeInputs TreeInputsOf(IReadOnlyList<DeviceBuffer<float>> inputs, long count, TreeBroadcast layout,
        (StridedLayout First, StridedLayout Second) strided, string op)
    {
        var x = TreeViews(inputs, op);
        return new TreeInputs
        {
            X0 = x[0], X1 = x[1], X2 = x[2], X3 = x[3], Count = count, Broadcast = layout.Flat ? 0 : 1, First = strided.First, Second = strided.Second,
        };
    }

    /// <summary>
    /// A tree's input offsets as two kernel layouts over the collapsed space: inputs 0 and 1 (A, B strides of the
    /// first), inputs 2 and 3 (of the second). Throws naming <paramref name="op"/> when the space has more dims than a
    /// kernel layout holds.
    /// </summary>
    private static (StridedLayout First, StridedLayout Second) TreeLayouts(TreeBroadcast layout, string op, int[] shape)
    {
        var size = layout.Extents.ToList();
        StridedLayout Pack(int a, int b) =>
            Layout.Pack(size, [.. layout.Strides[a]], [.. layout.Strides[b]], size.Count, $"{nameof(IlgpuKernelSet)}.{op}", shape);
        return (Pack(0, 1), Pack(2, 3));
    }

    /// <summary>
    /// The tree over <paramref name="shape"/> reduced into r (and stored into y unless null) for any tree struct: the
    /// reduction kernels of <see cref="Reduce"/>, reading each element from the tree as they go. Checked by the caller.
    /// </summary>
    internal void ElementwiseTreeReduce<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, DeviceBuffer<float>? y,
        ReduceOp op, int[] axes, TreeBroadcast layout, (StridedLayout First, StridedLayout Second) strided, DeviceBuffer<float> r) where TTree : unmanaged, ITreeOp
    {
        const string opName = nameof(IFusedElementwiseKernels.ElementwiseTreeReduce);
        var plan = PlanReduce(opName, op, shape, axes);
        long n = plan.OutCount * plan.RedCount;
        var rv = View(r, plan.OutCount, opName, nameof(r));
        var x = TreeInputsOf(inputs, n, layout, strided, opName);
        var source = new TreeSource<TTree>
        {
            Inputs = x,
            Y = y == null ? x.X0 : View(y, n, opName, nameof(y)),
            Store = y == null ? 0 : 1,
            Tree = tree,
        };
        RunReduce(opName, source, rv, plan,
            () => Specialised<TTree, Action<KernelConfig, TreeSource<TTree>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>>(
                ElementwiseKernel.TreeReduceThread,
                acc => acc.LoadStreamKernel<TreeSource<TTree>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReduceThread)),
            () => Specialised<TTree, Action<KernelConfig, TreeSource<TTree>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>>(
                ElementwiseKernel.TreeReduceGroup,
                acc => shuffles
                    ? acc.LoadStreamKernel<TreeSource<TTree>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReduceGroup<SwitchOn, TreeSource<TTree>>)
                    : acc.LoadStreamKernel<TreeSource<TTree>, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReduceGroup<SwitchOff, TreeSource<TTree>>)),
            [.. inputs, y, r]);
    }

    /// <summary>The views of a tree's inputs, <see cref="ElementwiseExpression.MaxInputs"/> of them: inputs the tree does not read are input 0 again.</summary>
    private ArrayView<float>[] TreeViews(IReadOnlyList<DeviceBuffer<float>> inputs, string op)
    {
        var x = new ArrayView<float>[ElementwiseExpression.MaxInputs];
        for (int k = 0; k < x.Length; k++) x[k] = View(inputs[k < inputs.Count ? k : 0], 0, op, nameof(inputs));
        return x;
    }

    /// <summary>y = tree(inputs) over the checked <paramref name="layout"/> for any tree struct, as one kernel; the inputs are checked by the caller.</summary>
    internal void ElementwiseTree<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, TreeBroadcast layout,
        (StridedLayout First, StridedLayout Second) strided, DeviceBuffer<float> y) where TTree : unmanaged, ITreeOp
    {
        const string op = nameof(ElementwiseTree);
        var yv = View(y, layout.Count, op, nameof(y));
        if (yv.Length == 0) return;
        var x = TreeViews(inputs, op);
        if (layout.Flat)
        {
            // Every input contiguous or a scalar: no offsets to compute.
            var flat = Specialised<TTree, Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TTree>>(
                ElementwiseKernel.Tree,
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TTree>(IlgpuKernels.Tree));
            Launch(op, () => flat(Config1D(yv.Length), x[0], x[1], x[2], x[3], yv, tree), inputs, y);
            return;
        }
        var kernel = Specialised<TTree, Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            StridedLayout, StridedLayout, TTree>>(
            ElementwiseKernel.BroadcastTree,
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, StridedLayout, StridedLayout, TTree>(
                IlgpuKernels.BroadcastTree));
        Launch(op, () => kernel(Config1D(yv.Length), x[0], x[1], x[2], x[3], yv, strided.First, strided.Second, tree), inputs, y);
    }
}
