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

    void IFusedElementwiseKernels.ElementwiseTree(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, DeviceBuffer<float> y)
    {
        ElementwiseExpression.Check(tree, inputs, y);
        ElementwiseChains.Run(this, nameof(ElementwiseTree), ElementwiseChains.Tree(tree), inputs, y);
    }

    void IFusedElementwiseKernels.ElementwiseTreeReduce(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape,
        DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r)
    {
        TreeReduction.Check(tree, inputs, shape, y, op, axes, r);
        ElementwiseChains.Run(this, nameof(ElementwiseTreeReduce), ElementwiseChains.Tree(tree), inputs, shape, y, op, axes, r);
    }

    /// <summary>
    /// The tree over <paramref name="shape"/> reduced into r (and stored into y unless null) for any tree struct: the
    /// reduction kernels of <see cref="Reduce"/>, reading each element from the tree as they go. Checked by the caller.
    /// </summary>
    internal void ElementwiseTreeReduce<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, DeviceBuffer<float>? y,
        ReduceOp op, int[] axes, DeviceBuffer<float> r) where TTree : unmanaged, ITreeOp
    {
        const string opName = nameof(IFusedElementwiseKernels.ElementwiseTreeReduce);
        var plan = PlanReduce(opName, op, shape, axes);
        long n = plan.OutCount * plan.RedCount;
        var rv = View(r, plan.OutCount, opName, nameof(r));
        var x = TreeViews(inputs, opName);
        var source = new TreeSource<TTree>
        {
            X0 = x[0], X1 = x[1], X2 = x[2], X3 = x[3],
            Y = y == null ? x[0] : View(y, n, opName, nameof(y)),
            Count = n,
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

    /// <summary>y[i] = tree(inputs at i) for any tree struct, as one kernel; the inputs are checked by the caller.</summary>
    internal void ElementwiseTree<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, DeviceBuffer<float> y) where TTree : unmanaged, ITreeOp
    {
        const string op = nameof(ElementwiseTree);
        var yv = View(y, 0, op, nameof(y));
        if (yv.Length == 0) return;
        var x = TreeViews(inputs, op);
        var kernel = Specialised<TTree, Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TTree>>(
            ElementwiseKernel.Tree,
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TTree>(IlgpuKernels.Tree));
        Launch(op, () => kernel(Config1D(yv.Length), x[0], x[1], x[2], x[3], yv, tree), inputs, y);
    }
}
