using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Reductions with the tree that reads them back, over a fused program (after <see cref="Fusion"/> and
/// <see cref="GemmTreeFusion"/>, before sibling reductions pair). Rule: a reduction launch R (a plain Sum or Mean, or a
/// tree with its reduction that stores nothing; not a pair) directly followed by an elementwise launch G (a tree, a
/// chain, or one unary, affine or binary call) become one launch
/// (<see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMap"/>) when G computes R's shape (the same element
/// count, G's shape agreeing with R's where G has one), reads R's result r, and reads it only as R's shape with the
/// reduced axes of extent 1 (each element reads the result of the reduction it took part in), and G's output is not r
/// (it may be a full-shape input of either). Since the two launches are adjacent, nothing runs
/// between them, and the kernel can reduce each output's elements and map them at once. A log-softmax's backward (a
/// row sum of the incoming gradient, then dy - exp(y)·sum, the SPN's weight and leaf gradients) and a softmax's
/// (y·(dy - sum(y·dy))) each become one launch.
/// </summary>
internal static class ReduceThenMapFusion
{
    /// <summary><paramref name="ops"/> with every pair the rule takes as one launch; <paramref name="fused"/>: the pairs taken.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, out int fused) =>
        AdjacentPairs.Rewrite(ops, (first, second) =>
            Fusion.ReductionLaunch.Of(first) is { Y: null } reduction && MapLaunch.Of(second) is { } map && Combine(reduction, map) is { } combined
                ? [combined] : null, out fused);

    /// <summary>The reduction and the map as one launch, or null unless the rule takes them.</summary>
    private static FusedOp? Combine(Fusion.ReductionLaunch reduction, MapLaunch map)
    {
        var shape = reduction.Shape;
        long count = shape.Aggregate(1L, (p, d) => p * d);
        if (((DeviceBuffer<float>)map.Y).Length != count || !Fusion.Agree(map.Shape, shape)) return null;
        // A flat map reads each input whole (of the reduction's count) or as one element.
        var mapShapes = map.Shapes ?? map.Inputs.Select(b => ((DeviceBuffer<float>)b).Length == count ? shape : []).ToArray();
        var rowShape = shape.Select((d, axis) => reduction.Axes.Contains(axis) ? 1 : d).ToArray();
        bool readsR = false;
        for (int k = 0; k < map.Inputs.Count; k++)
        {
            if (!ReferenceEquals(map.Inputs[k], reduction.R)) continue;
            if (!Fusion.Agree(mapShapes[k], rowShape)) return null;
            readsR = true;
        }
        if (!readsR || ReferenceEquals(map.Y, reduction.R)) return null;
        return FusedOp.ReduceThenMap(reduction.Calls + map.Calls, reduction.Tree, reduction.Inputs, reduction.Shapes, reduction.Op, shape, reduction.Axes,
            reduction.R, map.Tree, map.Inputs, mapShapes, map.Y);
    }

    /// <summary>
    /// An elementwise launch as a tree over its inputs: each input k read as <paramref name="Shapes"/>[k] broadcast to
    /// <paramref name="Shape"/>, or, when both are null, whole or as one element.
    /// </summary>
    private sealed record MapLaunch(int Calls, ElementwiseExpression Tree, List<object> Inputs, int[][]? Shapes, int[]? Shape, object Y)
    {
        /// <summary>The elementwise launch <paramref name="op"/> is (the same ops in the same order: the same bits), or null.</summary>
        public static MapLaunch? Of(TraceOp op)
        {
            var x0 = new ElementwiseExpression.Input(0);
            switch (op)
            {
                case FusedOp { Expression: { } tree, Reduction: null, SecondExpression: null } group:
                    return new MapLaunch(group.Calls, tree, group.Args[..^1].Select(a => a!).ToList(), group.InputShapes, group.TreeShape, group.Args[^1]!);
                case FusedOp { Head: not null } chain:
                    var (chainTree, inputs, shapes) = chain.ChainTree();
                    return new MapLaunch(chain.Calls, chainTree, [.. inputs], shapes, (int[])chain.Args[5]!, chain.Args[4]!);
                case FusedOp { Expression: null, Head: null } unaryChain:
                    return new MapLaunch(unaryChain.Calls, FusedOp.Chain(unaryChain.Steps, x0), [unaryChain.Args[0]!], null, null, unaryChain.Args[1]!);
                case KernelCallOp call when call.IsCore(nameof(IKernelSet.Unary)) || call.IsCore(nameof(IKernelSet.Affine)):
                    return new MapLaunch(1, new ElementwiseExpression.Unary(Fusion.StepOf(call), x0), [Fusion.InputOf(call)], null, null, Fusion.OutputOf(call));
                case KernelCallOp call when call.IsCore(nameof(IKernelSet.Binary)):
                    var (left, right) = (call.Args[1]!, call.Args[3]!);
                    var (leftShape, rightShape) = ((int[])call.Args[2]!, (int[])call.Args[4]!);
                    bool one = ReferenceEquals(left, right) && leftShape.SequenceEqual(rightShape);
                    return new MapLaunch(1, new ElementwiseExpression.Binary((BinaryOp)call.Args[0]!, x0, new ElementwiseExpression.Input(one ? 0 : 1)),
                        one ? [left] : [left, right], one ? [leftShape] : [leftShape, rightShape], (int[])call.Args[6]!, call.Args[5]!);
                default:
                    return null;
            }
        }
    }
}
