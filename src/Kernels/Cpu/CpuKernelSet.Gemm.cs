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

    /// <inheritdoc />
    /// <remarks>
    /// The packed GEMM of <see cref="Gemm"/> with the gathers folded into operand packing (each mapped row segment is
    /// gathered into a per-thread staging buffer, AVX2 gathers, before the usual interleave) and the C scatter
    /// folded into the tile merge.
    /// </remarks>
    public unsafe void GemmIndexed(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA, DeviceBuffer<int>? aIndex, int aIndexLength,
        DeviceBuffer<float> b, long strideB, bool transB, DeviceBuffer<int>? bIndex, int bIndexLength,
        float beta, DeviceBuffer<float> c, long strideC, DeviceBuffer<int>? cIndex, int cIndexLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        float[] aa = Arr(a), ba = Arr(b), ca = Arr(c);
        int[] ai = IndexArray(aIndex, aIndexLength, nameof(aIndex));
        int[] bi = IndexArray(bIndex, bIndexLength, nameof(bIndex));
        int[] ci = IndexArray(cIndex, cIndexLength, nameof(cIndex));
        if (batch == 0 || m == 0 || n == 0)
        {
            return;
        }

        // A mapped offset stays inside the block of len elements holding the unmapped one, so the extent checks of
        // the unmapped operands cover the mapped reads when len divides the matrix size.
        CheckMapped(nameof(c), cIndex, cIndexLength, (long)m * n);
        CheckExtent(nameof(c), ca.Length, batch, strideC, (long)m * n);
        bool readsAb = k > 0 && alpha != 0f;
        if (readsAb)
        {
            CheckMapped(nameof(a), aIndex, aIndexLength, (long)m * k);
            CheckMapped(nameof(b), bIndex, bIndexLength, (long)k * n);
            CheckExtent(nameof(a), aa.Length, batch, strideA, (long)m * k);
            CheckExtent(nameof(b), ba.Length, batch, strideB, (long)k * n);
        }

        fixed (float* pa = aa, pb = ba, pc = ca)
        fixed (int* pai = ai, pbi = bi, pci = ci)
        {
            SgemmPacked.GemmIndexed(batch, m, n, k, alpha,
                pa, strideA, transA, aIndex == null ? null : pai, aIndexLength,
                pb, strideB, transB, bIndex == null ? null : pbi, bIndexLength,
                beta, pc, strideC, cIndex == null ? null : pci, cIndexLength);
        }
    }

    private static int[] IndexArray(DeviceBuffer<int>? index, int length, string name)
    {
        if (index == null)
        {
            return [0];
        }
        int[] data = Arr(index);
        if (length <= 0 || length > data.Length)
        {
            throw new ArgumentException($"GemmIndexed: {name} length {length} must be in [1, {data.Length}] (its buffer's size).", name);
        }
        for (int i = 0; i < length; i++)
        {
            if ((uint)data[i] >= (uint)length)
            {
                throw new ArgumentException($"GemmIndexed: {name}[{i}] = {data[i]} is out of range [0, {length}).", name);
            }
        }
        return data;
    }

    private static void CheckMapped(string name, DeviceBuffer<int>? index, int length, long size)
    {
        if (index != null && size % length != 0)
        {
            throw new ArgumentException($"GemmIndexed: the map of {name} has length {length}, which does not divide the matrix size {size}.", name);
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
