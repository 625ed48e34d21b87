namespace Engine.Kernels.Cpu;

// Fused elementwise chains: one composed op struct through the set's generic elementwise kernels, one launch.
public sealed partial class CpuKernelSet : IFusedElementwiseKernels
{
    void IFusedElementwiseKernels.UnaryChain(IReadOnlyList<UnaryStep> steps, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        ElementwiseChains.Run(this, nameof(Unary), ElementwiseChains.Unary(steps), x, y);
        Launched();
    }

    void IFusedElementwiseKernels.BinaryChain(IReadOnlyList<UnaryStep> aSteps, BinaryOp head, IReadOnlyList<UnaryStep> bSteps, IReadOnlyList<UnaryStep> tail,
        DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b,
        int[] bShape, DeviceBuffer<float> y, int[] yShape)
    {
        ElementwiseChains.Run(this, nameof(Binary), ElementwiseChains.Binary(aSteps, head, bSteps, tail), a, aShape, b, bShape, y, yShape);
        Launched();
    }
}
