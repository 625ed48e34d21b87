namespace Engine.Kernels.Ilgpu;

// Fused elementwise chains: one composed op struct, compiled by ILGPU into one kernel per chain type and cached.
public sealed partial class IlgpuKernelSet : IFusedElementwiseKernels
{
    void IFusedElementwiseKernels.UnaryChain(IReadOnlyList<UnaryOp> ops, DeviceBuffer<float> x, DeviceBuffer<float> y) =>
        ElementwiseChains.Run(this, nameof(Unary), ElementwiseChains.Unary(ops), x, y);

    void IFusedElementwiseKernels.BinaryChain(BinaryOp head, IReadOnlyList<UnaryOp> tail, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b,
        int[] bShape, DeviceBuffer<float> y, int[] yShape) =>
        ElementwiseChains.Run(this, nameof(Binary), ElementwiseChains.Binary(head, tail), a, aShape, b, bShape, y, yShape);
}
