using ILGPU;

namespace Engine.Kernels.Ilgpu;

internal static partial class IlgpuKernels
{
    /// <summary>
    /// x viewed as [outer, xAxis, inner], y as [outer, indexLength, inner]:
    /// y[o, j, i] = x[o, index[j], i], one thread per output element.
    /// </summary>
    internal static void IndexSelect(ArrayView<float> x, ArrayView<int> index, ArrayView<float> y, long count, int xAxis, int indexLength, int inner)
    {
        for (long e = GlobalStart; e < count; e += GlobalStride)
        {
            long line = e / inner;
            long i = e - line * inner;
            long o = line / indexLength;
            long j = line - o * indexLength;
            y[e] = x[(o * xAxis + index[j]) * inner + i];
        }
    }

    /// <summary>
    /// Scatter-add, the adjoint of <see cref="IndexSelect"/>: y[o, index[j], i] += src[o, j, i]. One thread owns each
    /// (o, i) line and walks j in order, so repeated indices accumulate without atomics and the result is
    /// deterministic.
    /// </summary>
    internal static void IndexAdd(ArrayView<float> src, ArrayView<int> index, ArrayView<float> y, long lines, int yAxis, int indexLength, int inner, int clear)
    {
        for (long l = GlobalStart; l < lines; l += GlobalStride)
        {
            long o = l / inner;
            long i = l - o * inner;
            long srcBase = o * indexLength * inner + i;
            long dstBase = o * yAxis * inner + i;
            if (clear != 0)
                for (int t = 0; t < yAxis; t++) y[dstBase + (long)t * inner] = 0f;
            for (int j = 0; j < indexLength; j++)
                y[dstBase + (long)index[j] * inner] += src[srcBase + (long)j * inner];
        }
    }
}
