using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// How one reduction walks its input: the reduced elements of an output are an outer strided part
/// (<c>RedOuter</c> layout, <see cref="OuterCount"/> elements) times a contiguous-or-strided innermost run
/// (<see cref="InnerCount"/> elements, <see cref="InnerStride"/> apart).
/// </summary>
internal struct ReduceParams
{
    public long OutCount;
    public long OuterCount;
    public long InnerCount;
    public long InnerStride;
    /// <summary><see cref="ReduceOp"/> as an int.</summary>
    public int Op;
    /// <summary>Divisor applied to a sum (n for the mean, 1 for the sum).</summary>
    public float Divisor;
}

internal static partial class IlgpuKernels
{
    /// <summary>The largest group size of the tree kernels (their shared arrays have this many slots).</summary>
    internal const int MaxTreeGroup = 1024;

    /// <summary>max that propagates NaN (once a NaN is seen it stays).</summary>
    internal static float MaxNaN(float m, float v) => v > m || float.IsNaN(v) ? v : m;

    /// <summary>Reduction, one thread per output element; sums use Kahan-compensated float accumulation.</summary>
    internal static void ReduceThread(ArrayView<float> x, ArrayView<float> y, StridedLayout outLayout, StridedLayout redOuter, ReduceParams p)
    {
        for (long o = GlobalStart; o < p.OutCount; o += GlobalStride)
        {
            long baseOff = Offsets(o, outLayout).A;
            if (p.Op == (int)ReduceOp.Max)
            {
                float m = float.NegativeInfinity;
                for (long q = 0; q < p.OuterCount; q++)
                {
                    long b = baseOff + Offsets(q, redOuter).A;
                    for (long j = 0; j < p.InnerCount; j++) m = MaxNaN(m, x[b + j * p.InnerStride]);
                }
                y[o] = m;
            }
            else
            {
                float sum = 0f, comp = 0f;
                for (long q = 0; q < p.OuterCount; q++)
                {
                    long b = baseOff + Offsets(q, redOuter).A;
                    for (long j = 0; j < p.InnerCount; j++)
                    {
                        float t = x[b + j * p.InnerStride] - comp;
                        float s = sum + t;
                        comp = (s - sum) - t;
                        sum = s;
                    }
                }
                y[o] = sum / p.Divisor;
            }
        }
    }

    /// <summary>
    /// Reduction, one group per output element (grid-stride over outputs): each thread folds a strided share of the
    /// reduced elements, then a shared-memory tree combines the partials. Group size must be a power of two.
    /// </summary>
    internal static void ReduceGroup(ArrayView<float> x, ArrayView<float> y, StridedLayout outLayout, StridedLayout redOuter, ReduceParams p)
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        long total = p.OuterCount * p.InnerCount;
        bool isMax = p.Op == (int)ReduceOp.Max;
        for (long o = Grid.IdxX; o < p.OutCount; o += Grid.DimX)
        {
            long baseOff = Offsets(o, outLayout).A;
            float acc = isMax ? float.NegativeInfinity : 0f;
            for (long r = tid; r < total; r += groupSize)
            {
                long q = r / p.InnerCount;
                long j = r - q * p.InnerCount;
                float v = x[baseOff + Offsets(q, redOuter).A + j * p.InnerStride];
                acc = isMax ? MaxNaN(acc, v) : acc + v;
            }
            shared[tid] = acc;
            Group.Barrier();
            for (int s = groupSize / 2; s > 0; s >>= 1)
            {
                if (tid < s) shared[tid] = isMax ? MaxNaN(shared[tid], shared[tid + s]) : shared[tid] + shared[tid + s];
                Group.Barrier();
            }
            if (tid == 0) y[o] = isMax ? shared[0] : shared[0] / p.Divisor;
            Group.Barrier();
        }
    }

    /// <summary>Softmax / log-softmax over [outer, axis, inner], one thread per (outer, inner) line.</summary>
    internal static void Softmax(ArrayView<float> x, ArrayView<float> y, int axisLength, int inner, long lines, int log)
    {
        for (long l = GlobalStart; l < lines; l += GlobalStride)
        {
            long o = l / inner;
            long baseOff = o * axisLength * inner + (l - o * inner);
            float m = float.NegativeInfinity;
            for (int j = 0; j < axisLength; j++) m = MaxNaN(m, x[baseOff + (long)j * inner]);
            float sum = 0f;
            for (int j = 0; j < axisLength; j++) sum += MathF.Exp(x[baseOff + (long)j * inner] - m);
            if (log != 0)
            {
                float lse = m + MathF.Log(sum);
                for (int j = 0; j < axisLength; j++)
                {
                    long k = baseOff + (long)j * inner;
                    y[k] = x[k] - lse;
                }
            }
            else
            {
                float inv = 1f / sum;
                for (int j = 0; j < axisLength; j++)
                {
                    long k = baseOff + (long)j * inner;
                    y[k] = MathF.Exp(x[k] - m) * inv;
                }
            }
        }
    }

    /// <summary>
    /// Softmax / log-softmax, one group per line (grid-stride over lines) with shared-memory trees for the max and
    /// the sum: for few long lines. Group size must be a power of two.
    /// </summary>
    internal static void SoftmaxGroup(ArrayView<float> x, ArrayView<float> y, int axisLength, int inner, long lines, int log)
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long l = Grid.IdxX; l < lines; l += Grid.DimX)
        {
            long o = l / inner;
            long baseOff = o * axisLength * inner + (l - o * inner);
            var (m, sum) = GroupMaxExpSum(x, baseOff, inner, axisLength, shared, tid, groupSize);
            float lse = m + MathF.Log(sum);
            float inv = 1f / sum;
            for (int j = tid; j < axisLength; j += groupSize)
            {
                long k = baseOff + (long)j * inner;
                y[k] = log != 0 ? x[k] - lse : MathF.Exp(x[k] - m) * inv;
            }
        }
    }

    /// <summary>loss[r] = logsumexp(logits[r, :]) - logits[r, labels[r]], one thread per row.</summary>
    internal static void CrossEntropy(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss, int rows, int classes)
    {
        for (long r = GlobalStart; r < rows; r += GlobalStride)
        {
            long baseOff = r * classes;
            float m = float.NegativeInfinity;
            for (int c = 0; c < classes; c++) m = MaxNaN(m, logits[baseOff + c]);
            float sum = 0f;
            for (int c = 0; c < classes; c++) sum += MathF.Exp(logits[baseOff + c] - m);
            loss[r] = m + MathF.Log(sum) - logits[baseOff + labels[r]];
        }
    }

    /// <summary>Cross-entropy, one group per row with shared-memory trees: for few rows with many classes.</summary>
    internal static void CrossEntropyGroup(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss, int rows, int classes)
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long baseOff = r * classes;
            var (m, sum) = GroupMaxExpSum(logits, baseOff, 1, classes, shared, tid, groupSize);
            if (tid == 0) loss[r] = m + MathF.Log(sum) - logits[baseOff + labels[r]];
        }
    }

    /// <summary>
    /// The max and Σ exp(v - max) of the strided line v[j] = x[baseOff + j·stride], j &lt; length, computed by the
    /// whole group with shared-memory trees (group size a power of two); every thread gets both. Ends with a barrier,
    /// so the caller may reuse <paramref name="shared"/> right away.
    /// </summary>
    private static (float Max, float Sum) GroupMaxExpSum(ArrayView<float> x, long baseOff, long stride, int length,
        ArrayView<float> shared, int tid, int groupSize)
    {
        float m = float.NegativeInfinity;
        for (int j = tid; j < length; j += groupSize) m = MaxNaN(m, x[baseOff + j * stride]);
        shared[tid] = m;
        Group.Barrier();
        for (int s = groupSize / 2; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] = MaxNaN(shared[tid], shared[tid + s]);
            Group.Barrier();
        }
        m = shared[0];
        Group.Barrier();
        float sum = 0f;
        for (int j = tid; j < length; j += groupSize) sum += MathF.Exp(x[baseOff + j * stride] - m);
        shared[tid] = sum;
        Group.Barrier();
        for (int s = groupSize / 2; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] += shared[tid + s];
            Group.Barrier();
        }
        sum = shared[0];
        Group.Barrier();
        return (m, sum);
    }
}
