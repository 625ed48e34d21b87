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

    /// <summary>y[i] = tree(inputs at i) for any tree struct, as one kernel; the inputs are checked by the caller.</summary>
    internal void ElementwiseTree<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, DeviceBuffer<float> y) where TTree : unmanaged, ITreeOp
    {
        const string op = nameof(ElementwiseTree);
        var yv = View(y, 0, op, nameof(y));
        if (yv.Length == 0) return;
        // Inputs the tree does not read are input 0 again.
        var x = new ArrayView<float>[ElementwiseExpression.MaxInputs];
        for (int k = 0; k < x.Length; k++) x[k] = View(inputs[k < inputs.Count ? k : 0], 1, op, nameof(inputs));
        var kernel = Specialised<TTree, Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TTree>>(
            ElementwiseKernel.Tree,
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TTree>(IlgpuKernels.Tree));
        Launch(op, () => kernel(Config1D(yv.Length), x[0], x[1], x[2], x[3], yv, tree), inputs, y);
    }
}
