namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <inheritdoc />
    public void Gemm(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA,
        DeviceBuffer<float> b, long strideB, bool transB,
        float beta, DeviceBuffer<float> c, long strideC) => throw new NotImplementedException("stub: CPU GEMM");
}
