namespace Engine.Kernels.Cpu;

// Fused elementwise chains: one composed op struct through the set's generic elementwise kernels, one launch.
public sealed partial class CpuKernelSet : IFusedElementwiseKernels
{
    void IFusedElementwiseKernels.UnaryChain(IReadOnlyList<UnaryOp> ops, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        ElementwiseChains.Run(this, nameof(Unary), ElementwiseChains.Unary(ops), x, y);
        Launched();
    }

    void IFusedElementwiseKernels.BinaryChain(BinaryOp head, IReadOnlyList<UnaryOp> tail, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b,
        int[] bShape, DeviceBuffer<float> y, int[] yShape)
    {
        ElementwiseChains.Run(this, nameof(Binary), ElementwiseChains.Binary(head, tail), a, aShape, b, bShape, y, yShape);
        Launched();
    }
}
