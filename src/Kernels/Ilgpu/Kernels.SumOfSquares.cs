using ILGPU;

namespace Engine.Kernels.Ilgpu;

// The global squared norm in the order SumOfSquaresOrder fixes (the CPU set follows it too, so the two agree
// bitwise): one launch per buffer fills the 32 lanes of each of its blocks, one single-group launch combines them.
internal static partial class IlgpuKernels
{
    /// <summary>
    /// Lane sums of one buffer: work item q = block · 32 + lane adds (w·x)² (or x² when weighted == 0) over the block's
    /// elements i ≡ lane (mod 32), in increasing i, in double, into lanes[laneOffset + q]. Consecutive threads take
    /// consecutive lanes, so their loads are consecutive.
    /// </summary>
    internal static void SquaresLanes(ArrayView<float> x, ArrayView<float> w, ArrayView<double> lanes, long n, int weighted, long laneOffset)
    {
        const int block = SumOfSquaresOrder.Block, width = SumOfSquaresOrder.Lanes;
        long items = (n + block - 1) / block * width;
        for (long q = GlobalStart; q < items; q += GlobalStride)
        {
            long b = q / width;
            long end = Math.Min(n, (b + 1) * block);
            double s = 0;
            for (long i = b * block + q % width; i < end; i += width)
            {
                float v = weighted != 0 ? x[i] * w[i] : x[i];
                double d = v;
                s += d * d;
            }
            lanes[laneOffset + q] = s;
        }
    }

    /// <summary>
    /// One group: each block's 32 lanes combined by halving (in place, result in its lane 0), then the block
    /// partials (lane 0 of each block) combined by doubling strides; thread 0 stores the total as a (hi, lo) pair.
    /// </summary>
    internal static void SquaresCombine(ArrayView<double> lanes, ArrayView<float> result, int blocks)
    {
        const int width = SumOfSquaresOrder.Lanes;
        int tid = Group.IdxX, size = Group.DimX;
        for (int p = tid; p < blocks; p += size)
        {
            long at = (long)p * width;
            for (int s = width / 2; s > 0; s >>= 1)
                for (int j = 0; j < s; j++) lanes[at + j] += lanes[at + j + s];
        }
        Group.Barrier();
        for (int s = 1; s < blocks; s *= 2)
        {
            for (long i = (long)tid * 2 * s; i + s < blocks; i += (long)size * 2 * s) lanes[i * width] += lanes[(i + s) * width];
            Group.Barrier();
        }
        if (tid == 0)
        {
            double total = blocks == 0 ? 0 : lanes[0];
            float hi = (float)total;
            result[0] = hi;
            result[1] = hi - hi == 0f ? (float)(total - hi) : 0f;
        }
    }

    /// <summary><see cref="SquaresLanes"/> in two-float arithmetic: lane q is the pair lanes[2q], lanes[2q + 1].</summary>
    internal static void SquaresLanesDoubleFloat(ArrayView<float> x, ArrayView<float> w, ArrayView<float> lanes, long n, int weighted, long laneOffset)
    {
        const int block = SumOfSquaresOrder.Block, width = SumOfSquaresOrder.Lanes;
        long items = (n + block - 1) / block * width;
        for (long q = GlobalStart; q < items; q += GlobalStride)
        {
            long b = q / width;
            long end = Math.Min(n, (b + 1) * block);
            float hi = 0f, lo = 0f;
            for (long i = b * block + q % width; i < end; i += width)
                DoubleFloat.AddSquare(ref hi, ref lo, weighted != 0 ? x[i] * w[i] : x[i]);
            lanes[2 * (laneOffset + q)] = hi;
            lanes[2 * (laneOffset + q) + 1] = lo;
        }
    }

    /// <summary><see cref="SquaresCombine"/> in two-float arithmetic.</summary>
    internal static void SquaresCombineDoubleFloat(ArrayView<float> lanes, ArrayView<float> result, int blocks)
    {
        const int width = SumOfSquaresOrder.Lanes;
        int tid = Group.IdxX, size = Group.DimX;
        for (int p = tid; p < blocks; p += size)
        {
            long at = (long)p * width;
            for (int s = width / 2; s > 0; s >>= 1)
                for (int j = 0; j < s; j++) AddPair(lanes, at + j, at + j + s);
        }
        Group.Barrier();
        for (int s = 1; s < blocks; s *= 2)
        {
            for (long i = (long)tid * 2 * s; i + s < blocks; i += (long)size * 2 * s) AddPair(lanes, i * width, (i + s) * width);
            Group.Barrier();
        }
        if (tid == 0)
        {
            result[0] = blocks == 0 ? 0f : lanes[0];
            result[1] = blocks == 0 ? 0f : lanes[1];
        }
    }

    /// <summary>Pair a += pair b, pairs at lanes[2a], lanes[2a + 1].</summary>
    private static void AddPair(ArrayView<float> lanes, long a, long b)
    {
        float hi = lanes[2 * a], lo = lanes[2 * a + 1];
        DoubleFloat.Add(ref hi, ref lo, lanes[2 * b], lanes[2 * b + 1]);
        lanes[2 * a] = hi;
        lanes[2 * a + 1] = lo;
    }
}
