using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
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
    /// <summary>
    /// Groups sharing one output (group kernel): with Split &gt; 1 each writes a partial (no divisor) to
    /// y[output · Split + part], and a second launch reduces the partials.
    /// </summary>
    public int Split;
}

/// <summary>
/// Where a reduction kernel reads element i of the tensor it reduces: a view, or a tree computed from its inputs on
/// the spot. The kernels read every element exactly once, so a computed source reduces the same values, in the same
/// order, as the tree stored first and read back.
/// </summary>
internal interface IReduceSource
{
    /// <summary>Element <paramref name="i"/>.</summary>
    float Read(long i);
}

/// <summary>Elements read from a view.</summary>
internal struct ViewSource : IReduceSource
{
    public ArrayView<float> X;

    public readonly float Read(long i) => X[i];
}

/// <summary>
/// The four inputs of an elementwise tree as a reduction reads them at element i: element i of an input of Count
/// elements and the only element of a scalar, or, when some input broadcasts, the offsets of i through
/// <see cref="First"/> (inputs 0 and 1) and <see cref="Second"/> (inputs 2 and 3), as
/// <see cref="IlgpuKernels.BroadcastTree{TTree}"/> reads them.
/// </summary>
internal struct TreeInputs
{
    public ArrayView<float> X0, X1, X2, X3;
    /// <summary>Elements of the tree; an input of another length is a scalar.</summary>
    public long Count;
    /// <summary>1 when the inputs are read through <see cref="First"/> and <see cref="Second"/>, 0 when each is of Count elements or a scalar.</summary>
    public int Broadcast;
    /// <summary>The offsets of inputs 0 and 1 (A and B).</summary>
    public StridedLayout First;
    /// <summary>The offsets of inputs 2 and 3.</summary>
    public StridedLayout Second;

    /// <summary>The four inputs' elements at element <paramref name="i"/> of the tree.</summary>
    public readonly Vec4 At(long i)
    {
        long i0 = X0.Length == Count ? i : 0, i1 = X1.Length == Count ? i : 0, i2 = X2.Length == Count ? i : 0, i3 = X3.Length == Count ? i : 0;
        if (Broadcast != 0)
        {
            var o01 = IlgpuKernels.Offsets(i, First);
            var o23 = IlgpuKernels.Offsets(i, Second);
            i0 = o01.A;
            i1 = o01.B;
            i2 = o23.A;
            i3 = o23.B;
        }
        return new Vec4 { X = X0[i0], Y = X1[i1], Z = X2[i2], W = X3[i3] };
    }
}

/// <summary>
/// Elements of an elementwise tree (as <see cref="IlgpuKernels.Tree{TTree}"/> and
/// <see cref="IlgpuKernels.BroadcastTree{TTree}"/> compute them), stored into Y as they are read when Store is set.
/// </summary>
internal struct TreeSource<TTree> : IReduceSource where TTree : unmanaged, ITreeOp
{
    public TreeInputs Inputs;
    public ArrayView<float> Y;
    /// <summary>1 to store each element into Y.</summary>
    public int Store;
    public TTree Tree;

    public readonly float Read(long i)
    {
        var x = Inputs.At(i);
        float v = Tree.Scalar(x.X, x.Y, x.Z, x.W);
        if (Store != 0) Y[i] = v;
        return v;
    }
}

/// <summary>
/// Where a reduce-then-map kernel writes element i of its map: the map tree over its inputs at element i, as
/// <see cref="IlgpuKernels.Tree{TTree}"/> and <see cref="IlgpuKernels.BroadcastTree{TTree}"/> compute it, into Y.
/// </summary>
internal struct MapTarget<TTree> where TTree : unmanaged, ITreeOp
{
    public TreeInputs Inputs;
    public ArrayView<float> Y;
    public TTree Tree;

    public readonly void Write(long i)
    {
        var x = Inputs.At(i);
        Y[i] = Tree.Scalar(x.X, x.Y, x.Z, x.W);
    }
}

/// <summary>
/// Up to <see cref="SegmentTable.Capacity"/> softmaxes of one launch: per softmax its x (A) and y (B) and its end in the
/// joint range of lines (<see cref="Lines"/>), its axis length, inner extent and log flag.
/// </summary>
internal struct SoftmaxTable
{
    public SegmentTable Lines;
    public Octet<int> AxisLength, Inner, Log;
}

/// <summary>The elements at one index of two tensors of one shape that two sibling reductions reduce.</summary>
internal struct PairValue
{
    public float First, Second;
}

/// <summary>
/// Where a paired reduction kernel reads element i of the two tensors it reduces: two trees over the same inputs, or
/// two views (the partials of a split reduction). Read once per element, as <see cref="IReduceSource"/>.
/// </summary>
internal interface IReducePairSource
{
    /// <summary>Element <paramref name="i"/> of both tensors.</summary>
    PairValue Read(long i);
}

/// <summary>Elements of two views.</summary>
internal struct PairViewSource : IReducePairSource
{
    public ArrayView<float> X0, X1;

    public readonly PairValue Read(long i) => new() { First = X0[i], Second = X1[i] };
}

/// <summary>
/// Elements of two elementwise trees over the same inputs, each as <see cref="TreeSource{TTree}"/> computes it, from
/// one load of each input; stored into Y0 (Y1) as they are read when Store0 (Store1) is set.
/// </summary>
internal struct TreePairSource<TFirst, TSecond> : IReducePairSource where TFirst : unmanaged, ITreeOp where TSecond : unmanaged, ITreeOp
{
    public TreeInputs Inputs;
    public ArrayView<float> Y0, Y1;
    /// <summary>1 to store the first tree's (the second's) elements.</summary>
    public int Store0, Store1;
    public TFirst Tree0;
    public TSecond Tree1;

    public readonly PairValue Read(long i)
    {
        var x = Inputs.At(i);
        var v = new PairValue { First = Tree0.Scalar(x.X, x.Y, x.Z, x.W), Second = Tree1.Scalar(x.X, x.Y, x.Z, x.W) };
        if (Store0 != 0) Y0[i] = v.First;
        if (Store1 != 0) Y1[i] = v.Second;
        return v;
    }
}

/// <summary>A reduction's combining operation (a compile-time switch of the tree helpers).</summary>
internal interface IReduceOp
{
    float Identity { get; }
    float Combine(float a, float b);
}

/// <summary>Sum.</summary>
internal struct SumOp : IReduceOp
{
    public float Identity => 0f;
    public float Combine(float a, float b) => a + b;
}

/// <summary>Max that propagates NaN.</summary>
internal struct MaxOp : IReduceOp
{
    public float Identity => float.NegativeInfinity;
    public float Combine(float a, float b) => IlgpuKernels.MaxNaN(a, b);
}

internal static partial class IlgpuKernels
{
    /// <summary>The largest group size of the tree kernels (their shared arrays have this many slots).</summary>
    internal const int MaxTreeGroup = 1024;

    /// <summary>max that propagates NaN (once a NaN is seen it stays).</summary>
    internal static float MaxNaN(float m, float v) => v > m || float.IsNaN(v) ? v : m;

    /// <summary>Reduction, one thread per output element (<see cref="ReduceOutput{TSource}"/>).</summary>
    internal static void ReduceThread<TSource>(TSource x, ArrayView<float> y, StridedLayout outLayout, StridedLayout redOuter, ReduceParams p)
        where TSource : struct, IReduceSource
    {
        for (long o = GlobalStart; o < p.OutCount; o += GlobalStride) y[o] = ReduceOutput(x, Offsets(o, outLayout).A, redOuter, p);
    }

    /// <summary>
    /// One output of a reduction by one thread: its elements from <paramref name="baseOff"/> in walk order, the max, or
    /// the Kahan-compensated float sum divided by the divisor.
    /// </summary>
    private static float ReduceOutput<TSource>(TSource x, long baseOff, StridedLayout redOuter, ReduceParams p) where TSource : struct, IReduceSource
    {
        if (p.Op == (int)ReduceOp.Max)
        {
            float m = float.NegativeInfinity;
            for (long q = 0; q < p.OuterCount; q++)
            {
                long b = baseOff + Offsets(q, redOuter).A;
                for (long j = 0; j < p.InnerCount; j++) m = MaxNaN(m, x.Read(b + j * p.InnerStride));
            }
            return m;
        }
        float sum = 0f, comp = 0f;
        for (long q = 0; q < p.OuterCount; q++)
        {
            long b = baseOff + Offsets(q, redOuter).A;
            for (long j = 0; j < p.InnerCount; j++)
            {
                float t = x.Read(b + j * p.InnerStride) - comp;
                float s = sum + t;
                comp = (s - sum) - t;
                sum = s;
            }
        }
        return sum / p.Divisor;
    }

    /// <summary>
    /// A reduction, then the map that reads it back, one thread per output element: the output as
    /// <see cref="ReduceThread{TSource}"/> computes it, then the map of each element the output reduced, in the same
    /// walk. The thread reads its own result back through the map's inputs (nothing else writes it).
    /// </summary>
    internal static void ReduceThenMapThread<TSource, TMap>(TSource x, MapTarget<TMap> target, ArrayView<float> y, StridedLayout outLayout, StridedLayout redOuter,
        ReduceParams p) where TSource : struct, IReduceSource where TMap : unmanaged, ITreeOp
    {
        for (long o = GlobalStart; o < p.OutCount; o += GlobalStride)
        {
            long baseOff = Offsets(o, outLayout).A;
            y[o] = ReduceOutput(x, baseOff, redOuter, p);
            for (long q = 0; q < p.OuterCount; q++)
            {
                long b = baseOff + Offsets(q, redOuter).A;
                for (long j = 0; j < p.InnerCount; j++) target.Write(b + j * p.InnerStride);
            }
        }
    }

    /// <summary>
    /// A reduction, then the map that reads it back, one group per output element (grid-stride over the outputs): the
    /// output as <see cref="ReduceGroup{TShuffle, TSource}"/> computes it with one part, written by thread 0; a barrier
    /// (which also makes the write visible to the group); then each thread maps the elements of its strided share.
    /// Every element of the output is read before the barrier, so y may be a full-shape input.
    /// </summary>
    internal static void ReduceThenMapGroup<TShuffle, TSource, TMap>(TSource x, MapTarget<TMap> target, ArrayView<float> y, StridedLayout outLayout,
        StridedLayout redOuter, ReduceParams p) where TShuffle : struct, IKernelSwitch where TSource : struct, IReduceSource where TMap : unmanaged, ITreeOp
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        long total = p.OuterCount * p.InnerCount;
        bool isMax = p.Op == (int)ReduceOp.Max;
        for (long o = Grid.IdxX; o < p.OutCount; o += Grid.DimX)
        {
            long baseOff = Offsets(o, outLayout).A;
            float acc = GroupShare(x, baseOff, tid, groupSize, total, redOuter, p, isMax);
            acc = isMax ? GroupAllReduce<TShuffle, MaxOp>(acc, shared, tid, groupSize) : GroupAllReduce<TShuffle, SumOp>(acc, shared, tid, groupSize);
            if (tid == 0) y[o] = isMax ? acc : acc / p.Divisor;
            Group.Barrier();
            for (long r = tid; r < total; r += groupSize)
            {
                long q = r / p.InnerCount;
                long j = r - q * p.InnerCount;
                target.Write(baseOff + Offsets(q, redOuter).A + j * p.InnerStride);
            }
        }
    }

    /// <summary>
    /// Two sibling sums (or means), one thread per output element: <see cref="ReduceThread{TSource}"/>'s walk and
    /// Kahan-compensated float accumulation, once per tensor of the pair, each into its own accumulator.
    /// </summary>
    internal static void ReducePairThread<TSource>(TSource x, ArrayView<float> y0, ArrayView<float> y1, StridedLayout outLayout, StridedLayout redOuter,
        ReduceParams p) where TSource : struct, IReducePairSource
    {
        for (long o = GlobalStart; o < p.OutCount; o += GlobalStride)
        {
            long baseOff = Offsets(o, outLayout).A;
            float sum0 = 0f, comp0 = 0f, sum1 = 0f, comp1 = 0f;
            for (long q = 0; q < p.OuterCount; q++)
            {
                long b = baseOff + Offsets(q, redOuter).A;
                for (long j = 0; j < p.InnerCount; j++)
                {
                    var v = x.Read(b + j * p.InnerStride);
                    float t0 = v.First - comp0;
                    float s0 = sum0 + t0;
                    comp0 = (s0 - sum0) - t0;
                    sum0 = s0;
                    float t1 = v.Second - comp1;
                    float s1 = sum1 + t1;
                    comp1 = (s1 - sum1) - t1;
                    sum1 = s1;
                }
            }
            y0[o] = sum0 / p.Divisor;
            y1[o] = sum1 / p.Divisor;
        }
    }

    /// <summary>
    /// Two sibling sums (or means) by groups: <see cref="ReduceGroup{TShuffle, TSource}"/>'s walk and combining order,
    /// once per tensor of the pair, each into its own accumulator, partials or outputs.
    /// </summary>
    internal static void ReducePairGroup<TShuffle, TSource>(TSource x, ArrayView<float> y0, ArrayView<float> y1, StridedLayout outLayout, StridedLayout redOuter,
        ReduceParams p) where TShuffle : struct, IKernelSwitch where TSource : struct, IReducePairSource
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        long total = p.OuterCount * p.InnerCount;
        long stride = (long)p.Split * groupSize;
        for (long gi = Grid.IdxX; gi < p.OutCount * p.Split; gi += Grid.DimX)
        {
            long o = gi / p.Split;
            long part = gi - o * p.Split;
            long baseOff = Offsets(o, outLayout).A;
            float acc0 = 0f, acc1 = 0f;
            for (long r = part * groupSize + tid; r < total; r += stride)
            {
                long q = r / p.InnerCount;
                long j = r - q * p.InnerCount;
                var v = x.Read(baseOff + Offsets(q, redOuter).A + j * p.InnerStride);
                acc0 += v.First;
                acc1 += v.Second;
            }
            acc0 = GroupAllReduce<TShuffle, SumOp>(acc0, shared, tid, groupSize);
            acc1 = GroupAllReduce<TShuffle, SumOp>(acc1, shared, tid, groupSize);
            if (tid == 0)
            {
                y0[gi] = p.Split > 1 ? acc0 : acc0 / p.Divisor;
                y1[gi] = p.Split > 1 ? acc1 : acc1 / p.Divisor;
            }
        }
    }

    /// <summary>
    /// Reduction by groups: p.Split groups per output element (grid-stride over the (output, part) pairs). Each thread
    /// folds a strided share of its part's elements in float, then the group combines its threads (warp shuffles where
    /// <typeparamref name="TShuffle"/> is on, else a shared-memory tree). With Split = 1 the group writes the output
    /// (divided by the divisor); with Split &gt; 1 it writes a partial for a second launch. Group size: a power of two.
    /// </summary>
    internal static void ReduceGroup<TShuffle, TSource>(TSource x, ArrayView<float> y, StridedLayout outLayout, StridedLayout redOuter, ReduceParams p)
        where TShuffle : struct, IKernelSwitch where TSource : struct, IReduceSource
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        long total = p.OuterCount * p.InnerCount;
        bool isMax = p.Op == (int)ReduceOp.Max;
        long stride = (long)p.Split * groupSize;
        for (long gi = Grid.IdxX; gi < p.OutCount * p.Split; gi += Grid.DimX)
        {
            long o = gi / p.Split;
            long part = gi - o * p.Split;
            float acc = GroupShare(x, Offsets(o, outLayout).A, part * groupSize + tid, stride, total, redOuter, p, isMax);
            acc = isMax ? GroupAllReduce<TShuffle, MaxOp>(acc, shared, tid, groupSize) : GroupAllReduce<TShuffle, SumOp>(acc, shared, tid, groupSize);
            if (tid == 0) y[gi] = isMax || p.Split > 1 ? acc : acc / p.Divisor;
        }
    }

    /// <summary>
    /// One thread's fold, in float, of the elements of the output at <paramref name="baseOff"/> from walk position
    /// <paramref name="first"/> on, every <paramref name="stride"/>-th (a group reduction's strided share).
    /// </summary>
    private static float GroupShare<TSource>(TSource x, long baseOff, long first, long stride, long total, StridedLayout redOuter, ReduceParams p, bool isMax)
        where TSource : struct, IReduceSource
    {
        float acc = isMax ? float.NegativeInfinity : 0f;
        for (long r = first; r < total; r += stride)
        {
            long q = r / p.InnerCount;
            long j = r - q * p.InnerCount;
            float v = x.Read(baseOff + Offsets(q, redOuter).A + j * p.InnerStride);
            acc = isMax ? MaxNaN(acc, v) : acc + v;
        }
        return acc;
    }

    /// <summary>
    /// The group-wide reduction of one value per thread; every thread gets the result. With
    /// <typeparamref name="TShuffle"/> on and a group that is a whole number of warps: each warp folds its lanes with
    /// <c>shfl.down</c>, one shared slot per warp, the first warp folds those. Otherwise a shared-memory tree. Starts
    /// and ends with a barrier-consistent use of <paramref name="shared"/> (the caller may reuse it right away).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float GroupAllReduce<TShuffle, TOp>(float v, ArrayView<float> shared, int tid, int groupSize)
        where TShuffle : struct, IKernelSwitch where TOp : struct, IReduceOp
    {
        var op = default(TOp);
        int ws = Warp.WarpSize;
        if (default(TShuffle).On && groupSize % ws == 0)
        {
            for (int o = ws / 2; o > 0; o >>= 1) v = op.Combine(v, Warp.ShuffleDown(v, o));
            int lane = tid & (ws - 1), warp = tid / ws;
            if (lane == 0) shared[warp] = v;
            Group.Barrier();
            if (warp == 0)
            {
                v = lane < groupSize / ws ? shared[lane] : op.Identity;
                for (int o = ws / 2; o > 0; o >>= 1) v = op.Combine(v, Warp.ShuffleDown(v, o));
                if (lane == 0) shared[0] = v;
            }
            Group.Barrier();
            v = shared[0];
            Group.Barrier();
            return v;
        }
        shared[tid] = v;
        Group.Barrier();
        for (int s = groupSize / 2; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] = op.Combine(shared[tid], shared[tid + s]);
            Group.Barrier();
        }
        v = shared[0];
        Group.Barrier();
        return v;
    }

    /// <summary>Softmax / log-softmax over [outer, axis, inner], one thread per (outer, inner) line.</summary>
    internal static void Softmax(ArrayView<float> x, ArrayView<float> y, int axisLength, int inner, long lines, int log)
    {
        for (long l = GlobalStart; l < lines; l += GlobalStride) SoftmaxLine(x, y, axisLength, inner, l, log);
    }

    /// <summary>
    /// Independent softmaxes, one thread per line of any of them: line i of the joint range is line i - start of its
    /// segment's softmax, computed as <see cref="Softmax"/> computes it.
    /// </summary>
    internal static void SoftmaxSegments(SoftmaxTable table, long total)
    {
        for (long i = GlobalStart; i < total; i += GlobalStride)
        {
            int k = table.Lines.SegmentOf(i);
            SoftmaxLine(table.Lines.A[k], table.Lines.B[k], table.AxisLength[k], table.Inner[k], i - table.Lines.StartOf(k), table.Log[k]);
        }
    }

    /// <summary>Line <paramref name="l"/> (outer index and inner position) of a softmax over [outer, axis, inner].</summary>
    private static void SoftmaxLine(ArrayView<float> x, ArrayView<float> y, int axisLength, int inner, long l, int log)
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

    /// <summary>
    /// Softmax / log-softmax, one group per line (grid-stride over lines) with shared-memory trees for the max and
    /// the sum: for few long lines. Group size must be a power of two.
    /// </summary>
    internal static void SoftmaxGroup<TShuffle>(ArrayView<float> x, ArrayView<float> y, int axisLength, int inner, long lines, int log)
        where TShuffle : struct, IKernelSwitch
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long l = Grid.IdxX; l < lines; l += Grid.DimX)
        {
            long o = l / inner;
            long baseOff = o * axisLength * inner + (l - o * inner);
            var (m, sum) = GroupMaxExpSum<TShuffle>(x, baseOff, inner, axisLength, shared, tid, groupSize);
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
            var (m, sum) = RowMaxExpSum(logits, baseOff, classes);
            loss[r] = m + MathF.Log(sum) - logits[baseOff + labels[r]];
        }
    }

    /// <summary>The max and Σ exp(v - max) of the row v = x[baseOff .. baseOff + length), by one thread.</summary>
    private static (float Max, float Sum) RowMaxExpSum(ArrayView<float> x, long baseOff, int length)
    {
        float m = float.NegativeInfinity;
        for (int c = 0; c < length; c++) m = MaxNaN(m, x[baseOff + c]);
        float sum = 0f;
        for (int c = 0; c < length; c++) sum += MathF.Exp(x[baseOff + c] - m);
        return (m, sum);
    }

    /// <summary>Cross-entropy, one group per row with shared-memory trees: for few rows with many classes.</summary>
    internal static void CrossEntropyGroup<TShuffle>(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss, int rows, int classes)
        where TShuffle : struct, IKernelSwitch
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long baseOff = r * classes;
            var (m, sum) = GroupMaxExpSum<TShuffle>(logits, baseOff, 1, classes, shared, tid, groupSize);
            if (tid == 0) loss[r] = m + MathF.Log(sum) - logits[baseOff + labels[r]];
        }
    }

    /// <summary>
    /// dLogits[r, c] = (softmax(logits[r])[c] - [c == labels[r]]) · dLoss[0] · scale, one thread per row: the whole
    /// cross-entropy backward in one launch.
    /// </summary>
    internal static void CrossEntropyBackward(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> dLoss, ArrayView<float> dLogits,
        int rows, int classes, float scale)
    {
        float g = dLoss[0] * scale;
        for (long r = GlobalStart; r < rows; r += GlobalStride)
        {
            long baseOff = r * classes;
            var (m, sum) = RowMaxExpSum(logits, baseOff, classes);
            WriteCrossEntropyGradient(logits, dLogits, baseOff, labels[r], m, 1f / sum, g, 0, classes, 1);
        }
    }

    /// <summary>Cross-entropy backward, one group per row with shared-memory trees: for few rows with many classes.</summary>
    internal static void CrossEntropyBackwardGroup<TShuffle>(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> dLoss,
        ArrayView<float> dLogits, int rows, int classes, float scale) where TShuffle : struct, IKernelSwitch
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        float g = dLoss[0] * scale;
        for (long r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long baseOff = r * classes;
            var (m, sum) = GroupMaxExpSum<TShuffle>(logits, baseOff, 1, classes, shared, tid, groupSize);
            WriteCrossEntropyGradient(logits, dLogits, baseOff, labels[r], m, 1f / sum, g, tid, classes, groupSize);
        }
    }

    /// <summary>
    /// loss[r] as <see cref="CrossEntropy"/> writes it and gradient[r, c] = softmax(logits[r])[c] - [c == labels[r]] as
    /// <see cref="Softmax"/>, a one-hot and a difference write it, one thread per row; the gradient may be the logits.
    /// </summary>
    internal static void SoftmaxCrossEntropy(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss, ArrayView<float> gradient,
        int rows, int classes)
    {
        for (long r = GlobalStart; r < rows; r += GlobalStride)
        {
            long baseOff = r * classes;
            var (m, sum) = RowMaxExpSum(logits, baseOff, classes);
            int label = labels[r];
            loss[r] = m + MathF.Log(sum) - logits[baseOff + label];
            WriteCrossEntropyGradient(logits, gradient, baseOff, label, m, 1f / sum, 1f, 0, classes, 1);
        }
    }

    /// <summary>
    /// <see cref="SoftmaxCrossEntropy"/> with one group per row and shared-memory trees, as <see cref="CrossEntropyGroup"/>
    /// and <see cref="SoftmaxGroup"/> compute the row's max and sum.
    /// </summary>
    internal static void SoftmaxCrossEntropyGroup<TShuffle>(ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss,
        ArrayView<float> gradient, int rows, int classes) where TShuffle : struct, IKernelSwitch
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long baseOff = r * classes;
            var (m, sum) = GroupMaxExpSum<TShuffle>(logits, baseOff, 1, classes, shared, tid, groupSize);
            int label = labels[r];
            if (tid == 0) loss[r] = m + MathF.Log(sum) - logits[baseOff + label];
            // The label's logit is read before any thread overwrites the row (the gradient may be the logits).
            Group.Barrier();
            WriteCrossEntropyGradient(logits, gradient, baseOff, label, m, 1f / sum, 1f, tid, classes, groupSize);
        }
    }

    /// <summary>Columns first, first + step, ... of one row of the cross-entropy gradient (softmax as in <see cref="SoftmaxGroup"/>).</summary>
    private static void WriteCrossEntropyGradient(ArrayView<float> logits, ArrayView<float> dLogits, long baseOff, int label, float m,
        float inv, float g, int first, int classes, int step)
    {
        for (int c = first; c < classes; c += step)
        {
            float p = MathF.Exp(logits[baseOff + c] - m) * inv;
            dLogits[baseOff + c] = (p - (c == label ? 1f : 0f)) * g;
        }
    }

    /// <summary>
    /// The max and Σ exp(v - max) of the strided line v[j] = x[baseOff + j·stride], j &lt; length, computed by the
    /// whole group (<see cref="GroupAllReduce"/>); every thread gets both, and <paramref name="shared"/> is free again.
    /// </summary>
    private static (float Max, float Sum) GroupMaxExpSum<TShuffle>(ArrayView<float> x, long baseOff, long stride, int length,
        ArrayView<float> shared, int tid, int groupSize) where TShuffle : struct, IKernelSwitch
    {
        float m = float.NegativeInfinity;
        for (int j = tid; j < length; j += groupSize) m = MaxNaN(m, x[baseOff + j * stride]);
        m = GroupAllReduce<TShuffle, MaxOp>(m, shared, tid, groupSize);
        float sum = 0f;
        for (int j = tid; j < length; j += groupSize) sum += MathF.Exp(x[baseOff + j * stride] - m);
        sum = GroupAllReduce<TShuffle, SumOp>(sum, shared, tid, groupSize);
        return (m, sum);
    }
}
