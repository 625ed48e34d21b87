using System.Runtime.CompilerServices;
using System.Buffers;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <summary>Block size of the fixed (thread-count independent) partition of a full reduction.</summary>
    private const long FullReduceBlock = 64 * 1024;

    /// <inheritdoc />
    internal unsafe void Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y)
    {
        if (op is not (ReduceOp.Sum or ReduceOp.Mean or ReduceOp.Max))
            throw new ArgumentOutOfRangeException(nameof(op), op, "Reduce: unknown op.");
        int rank = xShape.Length;
        var reduced = new bool[rank];
        foreach (var ax in axes)
        {
            if ((uint)ax >= (uint)rank)
                throw new ArgumentOutOfRangeException(nameof(axes), $"Reduce: axis {ax} out of range for rank {rank}.");
            reduced[ax] = true;
        }
        long n = Prod(xShape);
        long outCount = 1, count = 1;
        for (int i = 0; i < rank; i++)
        {
            if (reduced[i]) count *= xShape[i];
            else outCount *= xShape[i];
        }
        var xa = Data(x, n, "Reduce");
        var ya = Data(y, outCount, "Reduce");
        if (outCount == 0) return;
        float* px = Ptr(xa), py = Ptr(ya);
        if (count == 0)
        {
            // Empty reduction: the identity of the op (sum 0, mean 0/0 = NaN, max -inf).
            float v = op == ReduceOp.Sum ? 0f : op == ReduceOp.Mean ? float.NaN : float.NegativeInfinity;
            SimdLoops.Fill(py, outCount, v);
            return;
        }
        if (count == 1)
        {
            // Only size-1 axes reduced: the data is unchanged.
            MapPar(new IdentityOp(), xa, ya, n);
            return;
        }

        var (ext, red) = Collapse(xShape, reduced);
        Simd.Run(new ReduceKernel<MemoryRuns>(new MemoryRuns(px), py, null, n, count, outCount, ext, red, op == ReduceOp.Max, op == ReduceOp.Mean));
    }

    /// <summary>
    /// The dims of a reduction collapsed: size-1 dims dropped, neighbours of the same kind merged, so reduced and kept
    /// dims alternate. The partition of the work, and so the summation order, depends on these only.
    /// </summary>
    private static (long[] Ext, bool[] Red) Collapse(int[] shape, bool[] reduced)
    {
        var ext = new List<long>(shape.Length);
        var red = new List<bool>(shape.Length);
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1) continue;
            if (ext.Count > 0 && red[^1] == reduced[i]) ext[^1] *= shape[i];
            else
            {
                ext.Add(shape[i]);
                red.Add(reduced[i]);
            }
        }
        return (ext.ToArray(), red.ToArray());
    }

    /// <summary>
    /// Where a reduction reads its values: every read is a contiguous run [start, start + length) of the reduced
    /// tensor, taken from memory or computed into memory right before it is reduced. A paired source has a second
    /// tensor of the same shape (a sibling reduction's), whose run at the same place comes with each run.
    /// </summary>
    private unsafe interface IRunSource
    {
        /// <summary>True when <see cref="Run{TV}"/> needs a scratch run to compute into: the run's length, twice that when <see cref="Paired"/>.</summary>
        bool NeedsScratch { get; }

        /// <summary>True when each run has a second run, reduced into a second output with its own accumulators.</summary>
        bool Paired { get; }

        /// <summary>A pointer to the run's values; <paramref name="scratch"/> (null unless <see cref="NeedsScratch"/>) holds the scratch run.</summary>
        float* Run<TV>(long start, long length, float* scratch) where TV : unmanaged, IFloatVector<TV>;

        /// <summary>A pointer to the second run of the run <see cref="Run{TV}"/> just read at <paramref name="start"/> (paired sources only).</summary>
        float* Second(long start, long length, float* scratch);
    }

    /// <summary>Runs read from a buffer.</summary>
    private readonly unsafe struct MemoryRuns(float* x) : IRunSource
    {
        public bool NeedsScratch => false;

        public bool Paired => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* Run<TV>(long start, long length, float* scratch) where TV : unmanaged, IFloatVector<TV> => x + start;

        public float* Second(long start, long length, float* scratch) => null;
    }

    /// <summary>Rents a scratch run for <paramref name="source"/> when it needs one (return it with <see cref="ReturnScratch"/>).</summary>
    private static float[]? RentScratch<TSource>(TSource source, long length) where TSource : struct, IRunSource =>
        source.NeedsScratch ? ArrayPool<float>.Shared.Rent(checked((int)Math.Max(1, (source.Paired ? 2 : 1) * length))) : null;

    private static void ReturnScratch(float[]? scratch)
    {
        if (scratch != null) ArrayPool<float>.Shared.Return(scratch);
    }

    private readonly unsafe struct ReduceKernel<TSource>(TSource x, float* y, float* y2, long n, long count, long outCount, long[] ext, bool[] red, bool max,
        bool mean) : IWidthAction where TSource : struct, IRunSource
    {
        void IWidthAction.Run<TV, TD>() => ReduceCore<TV, TD, TSource>(x, y, y2, n, count, outCount, ext, red, max, mean);
    }

    /// <summary>
    /// Reduces x, whose dims are collapsed into <paramref name="ext"/> (neighbours merged, size-1 dims dropped, so
    /// reduced and kept dims alternate), into y. Every value is read once, as part of a contiguous run of
    /// <paramref name="px"/>, so a source that computes its runs gives the bits of the same source stored first. A
    /// paired source's second runs are reduced into <paramref name="py2"/> by the same walk, with accumulators of their
    /// own, so each output has the bits of its source reduced alone (sums and means only).
    /// </summary>
    private static unsafe void ReduceCore<TV, TD, TSource>(TSource px, float* py, float* py2, long n, long count, long outCount, long[] ext, bool[] red, bool max,
        bool mean)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD> where TSource : struct, IRunSource
    {
        int m = ext.Length;
        if (m == 1)
        {
            ReduceAll<TV, TD, TSource>(px, n, max, mean, count, py, py2);
            return;
        }
        if (m == 2 && red[1])
        {
            // [K, R]: each output is one contiguous run.
            long k = ext[0], r = ext[1];
            Action<long, long> rowsBody = (k0, k1) =>
            {
                var scratch = RentScratch(px, r);
                try
                {
                    fixed (float* ps = scratch)
                        for (long i = k0; i < k1; i++)
                        {
                            float* xr = px.Run<TV>(i * r, r, ps);
                            py[i] = Whole<TV, TD>(xr, r, max, mean, count);
                            if (px.Paired) py2[i] = Whole<TV, TD>(px.Second(i * r, r, ps), r, max, mean, count);
                        }
                }
                finally
                {
                    ReturnScratch(scratch);
                }
            };
            if (n < 2 * CheapGrain) rowsBody(0, k);
            else For(k, Math.Max(1, CheapGrain / r), rowsBody, 1);
            return;
        }

        // General: every input row (all dims but the innermost) either sums a contiguous run into one output
        // (innermost reduced) or accumulates a run of outputs (innermost kept). Work is split along one kept dim,
        // so every output is owned by one chunk and the summation order does not depend on the thread count.
        var istr = new long[m];
        var ostr = new long[m];
        long si = 1, so = 1;
        for (int d = m - 1; d >= 0; d--)
        {
            istr[d] = si;
            si *= ext[d];
            if (!red[d])
            {
                ostr[d] = so;
                so *= ext[d];
            }
        }
        int split = Array.IndexOf(red, false);
        if (ext[split] < 4 * Workers && split != m - 1 && !red[m - 1] && ext[m - 1] >= 64) split = m - 1;
        long perIndex = n / ext[split];

        // When the outermost dim is reduced and a split along a kept dim would either stride through memory (the
        // innermost dim) or be too coarse, split the outermost dim into blocks with private accumulators instead.
        // The block count depends on the shape only, so results do not depend on the number of threads.
        // (A split of a long innermost dim still streams long contiguous runs, so it stays a kept split.)
        int blocks = 1;
        bool stridedSplit = split == m - 1 ? ext[m - 1] < 64 * 1024 : ext[split] < 4 * Workers;
        if (red[0] && n >= 2 * CheapGrain && stridedSplit)
            blocks = (int)Math.Min(Math.Min(Math.Min(8, ext[0]), n / FullReduceBlock), (1L << 22) / outCount);
        if (blocks < 1) blocks = 1;

        long slots = blocks * outCount;
        // A paired source's accumulators follow the first's.
        double[]? accD = max ? null : ArrayPool<double>.Shared.Rent(checked((int)((px.Paired ? 2 : 1) * slots)));
        float[]? accF = max && blocks > 1 ? ArrayPool<float>.Shared.Rent(checked((int)slots)) : null;
        try
        {
            if (accD != null) Array.Clear(accD, 0, (int)((px.Paired ? 2 : 1) * slots));
            if (accF != null) accF.AsSpan(0, (int)slots).Fill(float.NegativeInfinity);
            if (max && blocks == 1) SimdLoops.Fill(py, outCount, float.NegativeInfinity);
            fixed (double* pd = accD)
            fixed (float* pf = accF)
            {
                double* accL = pd, accL2 = px.Paired ? pd + slots : null;
                float* accM = blocks > 1 ? pf : py;
                if (blocks > 1)
                {
                    long e0 = ext[0];
                    int nb = blocks;
                    For(nb, 1, (b0, b1) =>
                    {
                        for (long b = b0; b < b1; b++)
                            ReduceRows<TV, TD, TSource>(max, px, accL == null ? null : accL + b * outCount, accL2 == null ? null : accL2 + b * outCount,
                                accM == null ? null : accM + b * outCount, m, ext, red, istr, ostr, 0, b * e0 / nb, (b + 1) * e0 / nb);
                    }, 1);
                }
                else
                {
                    Action<long, long> body = (lo, hi) => ReduceRows<TV, TD, TSource>(max, px, accL, accL2, py, m, ext, red, istr, ostr, split, lo, hi);
                    if (n < 2 * CheapGrain) body(0, ext[split]);
                    else For(ext[split], Math.Max(1, CheapGrain / perIndex), body, split == m - 1 ? 16 : 1);
                }
                if (!max || blocks > 1)
                {
                    int nb = blocks;
                    Action<long, long> fin = !max && GroupedColumnSums
                        ? (s, e) =>
                        {
                            FinishSums<TV, TD>(accL, py, s, e, nb, outCount, mean, count);
                            if (accL2 != null) FinishSums<TV, TD>(accL2, py2, s, e, nb, outCount, mean, count);
                        }
                        : (s, e) =>
                        {
                            for (long i = s; i < e; i++)
                            {
                                if (max)
                                {
                                    float v = accM[i];
                                    for (long b = 1; b < nb; b++) v = SimdLoops.MaxNaN(v, accM[b * outCount + i]);
                                    py[i] = v;
                                }
                                else
                                {
                                    py[i] = Total(accL, i, nb, outCount, mean, count);
                                    if (accL2 != null) py2[i] = Total(accL2, i, nb, outCount, mean, count);
                                }
                            }
                        };
                    if (outCount * blocks < 2 * CheapGrain) fin(0, outCount);
                    else For(outCount, CheapGrain, fin);
                }
            }
        }
        finally
        {
            if (accD != null) ArrayPool<double>.Shared.Return(accD);
            if (accF != null) ArrayPool<float>.Shared.Return(accF);
        }
    }

    /// <summary>The sum (mean, max) of one whole run of <paramref name="r"/> values.</summary>
    private static unsafe float Whole<TV, TD>(float* x, long r, bool max, bool mean, long count)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD> =>
        max ? SimdLoops<TV, TD>.Max(x, r, float.NegativeInfinity) : mean ? (float)(SimdLoops<TV, TD>.Sum(x, r) / count) : (float)SimdLoops<TV, TD>.Sum(x, r);

    /// <summary>Output <paramref name="i"/> of a sum (mean) from its <paramref name="blocks"/> block accumulators, combined in block order.</summary>
    private static unsafe float Total(double* acc, long i, long blocks, long outCount, bool mean, long count)
    {
        double v = acc[i];
        for (long b = 1; b < blocks; b++) v += acc[b * outCount + i];
        return mean ? (float)(v / count) : (float)v;
    }

    /// <summary>
    /// Outputs [s, e) of a sum (mean) from its <paramref name="blocks"/> block accumulators: the blocks added into the
    /// first in block order, a vector of outputs at a time, then rounded to float (<see cref="Total"/>'s additions).
    /// </summary>
    private static unsafe void FinishSums<TV, TD>(double* acc, float* y, long s, long e, long blocks, long outCount, bool mean, long count)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        for (long b = 1; b < blocks; b++) SimdLoops<TV, TD>.AddDouble(acc + s, acc + b * outCount + s, e - s);
        if (mean)
            for (long i = s; i < e; i++) y[i] = (float)(acc[i] / count);
        else
            for (long i = s; i < e; i++) y[i] = (float)acc[i];
    }

    /// <summary>Reduces all n elements to y[0] (a paired source's second values to y2[0]): fixed 64K blocks, partial results combined in block order.</summary>
    private static unsafe void ReduceAll<TV, TD, TSource>(TSource source, long n, bool max, bool mean, long count, float* y, float* y2)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD> where TSource : struct, IRunSource
    {
        long blocks = (n + FullReduceBlock - 1) / FullReduceBlock;
        if (blocks <= 2)
        {
            var whole = RentScratch(source, n);
            try
            {
                fixed (float* ps = whole)
                {
                    float* x = source.Run<TV>(0, n, ps);
                    y[0] = Whole<TV, TD>(x, n, max, mean, count);
                    if (source.Paired) y2[0] = Whole<TV, TD>(source.Second(0, n, ps), n, max, mean, count);
                }
            }
            finally
            {
                ReturnScratch(whole);
            }
            return;
        }
        var partD = new double[blocks];
        var partD2 = source.Paired ? new double[blocks] : null;
        var partF = new float[blocks];
        For(blocks, 1, (b0, b1) =>
        {
            var scratch = RentScratch(source, FullReduceBlock);
            try
            {
                fixed (float* ps = scratch)
                    for (long b = b0; b < b1; b++)
                    {
                        long s = b * FullReduceBlock, len = Math.Min(FullReduceBlock, n - s);
                        float* x = source.Run<TV>(s, len, ps);
                        if (max) partF[b] = SimdLoops<TV, TD>.Max(x, len, float.NegativeInfinity);
                        else partD[b] = SimdLoops<TV, TD>.Sum(x, len);
                        if (partD2 != null) partD2[b] = SimdLoops<TV, TD>.Sum(source.Second(s, len, ps), len);
                    }
            }
            finally
            {
                ReturnScratch(scratch);
            }
        }, 1);
        if (max)
        {
            float m = float.NegativeInfinity;
            foreach (var v in partF) m = SimdLoops.MaxNaN(m, v);
            y[0] = m;
        }
        else
        {
            y[0] = BlockTotal(partD, mean, count);
            if (partD2 != null) y2[0] = BlockTotal(partD2, mean, count);
        }
    }

    /// <summary>The sum (mean) of a full reduction's block partials, added in block order.</summary>
    private static float BlockTotal(double[] parts, bool mean, long count)
    {
        double s = 0;
        foreach (var v in parts) s += v;
        return mean ? (float)(s / count) : (float)s;
    }

    /// <summary>
    /// Accumulates the rows of x whose index along collapsed dim <paramref name="split"/> lies in [lo, hi) into
    /// acc (sums, double) or accMax (max, float), and a paired source's second rows into acc2. Dims are collapsed and
    /// alternate between reduced and kept.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ReduceRows<TV, TD, TSource>(bool max, TSource x, double* acc, double* acc2, float* accMax, int m, long[] ext, bool[] red,
        long[] istr, long[] ostr, int split, long lo, long hi)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD> where TSource : struct, IRunSource
    {
        int outer = m - 1;
        long inner = ext[outer];
        bool innerRed = red[outer];
        long innerLo = 0, innerHi = inner;
        if (split == outer)
        {
            innerLo = lo;
            innerHi = hi;
        }
        long len = innerHi - innerLo;
        Span<long> idx = stackalloc long[16];
        Span<long> start = stackalloc long[16];
        Span<long> end = stackalloc long[16];
        if (outer > 16)
        {
            idx = new long[outer];
            start = new long[outer];
            end = new long[outer];
        }
        long rows = 1, ix = innerLo, oo = innerRed ? 0 : innerLo;
        for (int d = 0; d < outer; d++)
        {
            start[d] = d == split ? lo : 0;
            end[d] = d == split ? hi : ext[d];
            idx[d] = start[d];
            rows *= end[d] - start[d];
            ix += idx[d] * istr[d];
            oo += idx[d] * ostr[d];
        }
        // Sums whose innermost dim is kept under a reduced dim: the rows along that dim add into the same outputs, so
        // they are added a group at a time (see SumRowGroup), computed rows a block of whole rows at a time.
        bool grouped = !innerRed && !max && outer >= 1 && red[outer - 1] && GroupedColumnSums;
        var scratch = RentScratch(x, grouped ? RowGroupScratch(len) : len);
        try
        {
            fixed (float* ps = scratch)
            {
                if (grouped)
                {
                    int g = outer - 1;
                    long groupRows = end[g] - start[g];
                    for (long q = rows / groupRows; q > 0; q--)
                    {
                        SumRowGroup<TV, TD, TSource>(x, acc, acc2, ix, (nint)istr[g], groupRows, oo, len, ps);
                        NextRow(g - 1, idx, start, end, istr, ostr, ref ix, ref oo);
                    }
                    return;
                }
                for (long r = 0; r < rows; r++)
                {
                    float* xr = x.Run<TV>(ix, len, ps);
                    if (innerRed)
                    {
                        if (max) accMax[oo] = SimdLoops<TV, TD>.Max(xr, len, accMax[oo]);
                        else acc[oo] += SimdLoops<TV, TD>.Sum(xr, len);
                    }
                    else
                    {
                        if (max) SimdLoops<TV, TD>.AccumulateMax(accMax + oo, xr, len);
                        else SimdLoops<TV, TD>.AccumulateDouble(acc + oo, xr, len);
                    }
                    if (x.Paired)
                    {
                        float* xr2 = x.Second(ix, len, ps);
                        if (innerRed) acc2[oo] += SimdLoops<TV, TD>.Sum(xr2, len);
                        else SimdLoops<TV, TD>.AccumulateDouble(acc2 + oo, xr2, len);
                    }
                    NextRow(outer - 1, idx, start, end, istr, ostr, ref ix, ref oo);
                }
            }
        }
        finally
        {
            ReturnScratch(scratch);
        }
    }

    /// <summary>
    /// Steps the row odometer over dims <paramref name="last"/> down to 0 (each from its start to its end, the last
    /// fastest), moving the input offset <paramref name="ix"/> and the output offset <paramref name="oo"/> with it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NextRow(int last, Span<long> idx, Span<long> start, Span<long> end, long[] istr, long[] ostr, ref long ix, ref long oo)
    {
        for (int d = last; d >= 0; d--)
        {
            ix += istr[d];
            oo += ostr[d];
            if (++idx[d] < end[d]) break;
            long span = end[d] - start[d];
            ix -= istr[d] * span;
            oo -= ostr[d] * span;
            idx[d] = start[d];
        }
    }

    /// <summary>
    /// False sums every row of a reduction with a kept innermost dim into its outputs in turn (the baseline of the
    /// benchmarks and the tests); true adds the rows that share their outputs a strip of columns at a time. The
    /// additions, and so the bits, are the same.
    /// </summary>
    internal static bool GroupedColumnSums = true;

    /// <summary>Columns of a row group summed per pass when its rows are computed into scratch (their accumulators stay in L1).</summary>
    private const long RowGroupStrip = 1024;

    /// <summary>Values of a row group computed per call when its rows follow each other in memory (whole rows, 64 kB).</summary>
    private const long RowGroupBlock = 16 * 1024;

    /// <summary>The scratch run a row group of rows of <paramref name="len"/> values computes into: a block of whole rows, or one row.</summary>
    private static long RowGroupScratch(long len) => len <= RowGroupBlock ? RowGroupBlock / len * len : len;

    /// <summary>
    /// Adds <paramref name="rows"/> rows of <paramref name="len"/> values, starting at <paramref name="ix"/> and
    /// <paramref name="stride"/> apart, into acc[oo ..] (a paired source's second rows into acc2), each accumulator
    /// receiving the rows in order as one row at a time would add them. Rows read from memory keep a strip of columns
    /// in registers over all the rows; computed whole rows that follow each other are computed a block at a time and
    /// summed so; other computed rows go a strip of <see cref="RowGroupStrip"/> columns at a time. (One row at a time,
    /// a 64 x 32768 sum, a Mixer's token-bias gradient, loads and stores 256 kB of accumulators per row, and a
    /// 20480 x 64 sum makes a call per row of 64 values.) <paramref name="scratch"/>: at least
    /// <see cref="RowGroupScratch"/> values (twice that for a paired source) where the source needs scratch.
    /// </summary>
    private static unsafe void SumRowGroup<TV, TD, TSource>(TSource x, double* acc, double* acc2, long ix, nint stride, long rows, long oo, long len,
        float* scratch)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD> where TSource : struct, IRunSource
    {
        if (!x.NeedsScratch && !x.Paired && typeof(TSource) == typeof(MemoryRuns))
        {
            SimdLoops<TV, TD>.AccumulateDoubleRows(acc + oo, x.Run<TV>(ix, len, scratch), stride, rows, len);
            return;
        }
        if (stride == len && len <= RowGroupBlock)
        {
            // Whole rows one after another: a block of them is computed in one call, then summed as rows in memory.
            long blockRows = RowGroupBlock / len;
            for (long r0 = 0; r0 < rows; r0 += blockRows)
            {
                long count = Math.Min(blockRows, rows - r0), at = ix + r0 * len;
                SimdLoops<TV, TD>.AccumulateDoubleRows(acc + oo, x.Run<TV>(at, count * len, scratch), (nint)len, count, len);
                if (x.Paired) SimdLoops<TV, TD>.AccumulateDoubleRows(acc2 + oo, x.Second(at, count * len, scratch), (nint)len, count, len);
            }
            return;
        }
        for (long c0 = 0; c0 < len; c0 += RowGroupStrip)
        {
            long w = Math.Min(RowGroupStrip, len - c0);
            for (long r = 0; r < rows; r++)
            {
                long at = ix + r * stride + c0;
                SimdLoops<TV, TD>.AccumulateDouble(acc + oo + c0, x.Run<TV>(at, w, scratch), w);
                if (x.Paired) SimdLoops<TV, TD>.AccumulateDouble(acc2 + oo + c0, x.Second(at, w, scratch), w);
            }
        }
    }
}
