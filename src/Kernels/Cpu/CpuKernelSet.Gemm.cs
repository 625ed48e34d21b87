using Engine.Kernels.Cpu.Gemm;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <inheritdoc />
    /// <remarks>
    /// Packed, cache-blocked GEMM with an AVX-512 8x32 micro-kernel (AVX2 6x16 and scalar fallbacks), split over
    /// cores; see <see cref="SgemmPacked"/>.
    /// </remarks>
    public unsafe void Gemm(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA,
        DeviceBuffer<float> b, long strideB, bool transB,
        float beta, DeviceBuffer<float> c, long strideC)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        float[] aa = Arr(a), ba = Arr(b), ca = Arr(c);
        if (batch == 0 || m == 0 || n == 0)
        {
            return;
        }

        // The engine works on raw pointers: check every batch item lies inside its buffer.
        CheckExtent(nameof(c), ca.Length, batch, strideC, (long)m * n);
        bool readsAb = k > 0 && alpha != 0f;
        if (readsAb)
        {
            CheckExtent(nameof(a), aa.Length, batch, strideA, (long)m * k);
            CheckExtent(nameof(b), ba.Length, batch, strideB, (long)k * n);
        }

        fixed (float* pa = aa, pb = ba, pc = ca)
        {
            SgemmPacked.Gemm(batch, m, n, k, alpha, pa, strideA, transA, pb, strideB, transB, beta, pc, strideC);
        }
    }

    private static void CheckExtent(string name, long length, int batch, long stride, long size)
    {
        if (stride < 0)
        {
            throw new ArgumentOutOfRangeException(name, $"Gemm: negative batch stride {stride} for {name}.");
        }
        long needed = (batch - 1) * stride + size;
        if (needed > length)
        {
            throw new ArgumentException($"Gemm: {name} needs {needed} elements for the batch, but its buffer holds {length}.", name);
        }
    }
}
