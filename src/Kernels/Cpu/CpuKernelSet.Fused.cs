using System.Buffers;
using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

// Fused elementwise chains and trees: one composed op struct through the set's generic elementwise kernels, one launch.
public sealed partial class CpuKernelSet : IFusedElementwiseKernels
{
    /// <summary>
    /// 16 MB, half the 32 MB last-level cache of the machine this was measured on. A launch costs microseconds here,
    /// while a sum that reads a few megabytes back from memory costs a millisecond: on the Mixer's training step every
    /// paired bias gradient had 26-108 MB of other work pass between, and not pairing them saved 2-3 % of the step.
    /// </summary>
    long IFusedElementwiseKernels.SiblingPairReach => 16L << 20;

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

    void IFusedElementwiseKernels.ElementwiseTree(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes,
        DeviceBuffer<float> y, int[] shape)
    {
        var layout = TreeBroadcast.CheckTree(tree, inputs, inputShapes, y, shape);
        ElementwiseChains.Run(this, nameof(ElementwiseTree), ElementwiseChains.Tree(tree), inputs, layout, y);
        Launched();
    }

    void IFusedElementwiseKernels.ElementwiseTreeReduce(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes,
        int[] shape, DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r)
    {
        var plan = TreeReduction.Check(tree, inputs, inputShapes, shape, y, op, axes, r);
        ElementwiseChains.Run(this, nameof(ElementwiseTreeReduce), ElementwiseChains.Tree(tree), inputs, shape, y, op == ReduceOp.Mean, plan, r);
        Launched();
    }

    void IFusedElementwiseKernels.ElementwiseTreeReducePair(ElementwiseExpression first, ElementwiseExpression second, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, DeviceBuffer<float>? y0, DeviceBuffer<float>? y1, ReduceOp op, int[] axes, DeviceBuffer<float> r0,
        DeviceBuffer<float> r1)
    {
        var plan = TreeReduction.CheckPair(first, second, inputs, inputShapes, shape, y0, y1, op, axes, r0, r1);
        ElementwiseChains.RunPair(this, nameof(ElementwiseTreeReducePair), ElementwiseChains.Tree(first), ElementwiseChains.Tree(second), inputs, shape, y0, y1,
            op == ReduceOp.Mean, plan, r0, r1);
        Launched();
    }

    void IFusedElementwiseKernels.ElementwiseTreeReduceThenMap(ElementwiseExpression reduced, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, ReduceOp op, int[] axes, DeviceBuffer<float> r, ElementwiseExpression map,
        IReadOnlyList<DeviceBuffer<float>> mapInputs, IReadOnlyList<int[]> mapInputShapes, DeviceBuffer<float> y)
    {
        var (plan, mapLayout) = TreeReduction.CheckThenMap(reduced, inputs, inputShapes, shape, op, axes, r, map, mapInputs, mapInputShapes, y);
        ElementwiseChains.RunPair(this, nameof(ElementwiseTreeReduceThenMap), ElementwiseChains.Tree(reduced), ElementwiseChains.Tree(map), inputs, shape,
            op == ReduceOp.Mean, plan, r, mapInputs, mapLayout, y, null);
        Launched();
    }

    void IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps(IReadOnlyList<ReduceThenMapCall> calls)
    {
        var plans = ReduceThenMapCall.CheckAll(calls);
        var jobs = new List<RunsJob>(calls.Count);
        for (int i = 0; i < calls.Count; i++)
        {
            var c = calls[i];
            ElementwiseChains.RunPair(this, nameof(ElementwiseTreeReduceThenMap), ElementwiseChains.Tree(c.Reduced), ElementwiseChains.Tree(c.Map), c.Inputs,
                c.Shape, c.Op == ReduceOp.Mean, plans[i].Plan, c.R, c.MapInputs, plans[i].MapLayout, c.Y, jobs);
        }
        RunJobs(jobs);
        Launched();
    }

    /// <summary>
    /// One call's runs of a batch of reductions with their maps: <paramref name="Outputs"/> runs of
    /// <paramref name="Length"/> values, <paramref name="Body"/> computing a range of them, at most
    /// <paramref name="Grain"/> values a chunk.
    /// </summary>
    internal sealed record RunsJob(long Outputs, long Length, long Grain, Action<long, long> Body);

    /// <summary>
    /// Every job's runs in one parallel loop over all their values: a chunk of the loop computes the runs whose first
    /// value falls in it, so each run is computed once, by one worker, as its own call would compute it.
    /// </summary>
    private static void RunJobs(List<RunsJob> jobs)
    {
        if (jobs.Count == 0) return;
        var starts = new long[jobs.Count + 1];
        for (int j = 0; j < jobs.Count; j++) starts[j + 1] = starts[j] + jobs[j].Outputs * jobs[j].Length;
        long total = starts[^1], grain = jobs.Min(j => j.Grain);
        void Chunk(long a, long b)
        {
            for (int j = 0; j < jobs.Count; j++)
            {
                long from = Math.Max(a, starts[j]) - starts[j], to = Math.Min(b, starts[j + 1]) - starts[j];
                if (from >= to) continue;
                long len = jobs[j].Length, k0 = (from + len - 1) / len, k1 = (to + len - 1) / len;
                if (k0 < k1) jobs[j].Body(k0, k1);
            }
        }
        if (total < 2 * grain) Chunk(0, total);
        else For(total, grain, Chunk, 1);
    }

    /// <summary>
    /// The reduction of <paramref name="reduced"/> into r, then <paramref name="map"/> into y, for any tree structs.
    /// When each output reduces one contiguous run (the reduced axes are the innermost, or all of them within
    /// <see cref="ReduceAll{TV, TD, TSource}"/>'s one-block size), where <see cref="ReduceCore{TV, TD, TSource}"/>
    /// sums each run whole, every run is summed so and then mapped while it is in cache; otherwise the whole
    /// reduction, then the whole map. Checked by the caller.
    /// </summary>
    internal unsafe void ElementwiseTreeReduceThenMap<TReduced, TMap>(TReduced reduced, TMap map, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, bool mean,
        TreeReduction plan, DeviceBuffer<float> r, IReadOnlyList<DeviceBuffer<float>> mapInputs, TreeBroadcast mapLayout, DeviceBuffer<float> y,
        List<RunsJob>? batch)
        where TReduced : unmanaged, ITreeOp where TMap : unmanaged, ITreeOp
    {
        const string op = nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMap);
        long n = plan.Count, outCount = plan.Outputs;
        var (ext, red) = Collapse(shape, plan.Reduced);
        bool runs = n > outCount && outCount > 0 && (ext.Length == 2 && red[1] || ext.Length == 1 && red[0] && n <= 2 * FullReduceBlock);
        if (!runs)
        {
            // Two passes, each parallel on its own: a call of a batch runs so at once (the batch's calls are independent).
            ReduceTrees(new OneTree<TReduced>(reduced), inputs, shape, null, null, mean, plan, r, null, op);
            ElementwiseTree(map, mapInputs, mapLayout, y);
            return;
        }
        var ra = Data(r, outCount, op);
        var ya = Data(y, n, op);
        var source = new TreeRange<OneTree<TReduced>>(new(reduced), TreeInputsOf(inputs, plan.Layout, op), plan.Layout.Extents, plan.Layout.Strides);
        var target = new TreeRange<OneTree<TMap>>(new(map), TreeInputsOf(mapInputs, mapLayout, op), mapLayout.Extents, mapLayout.Strides);
        Simd.Run(new ReduceThenMapRuns<TReduced, TMap>(source, target, Ptr(ra), Ptr(ya), outCount, n / outCount, mean, batch));
    }

    /// <summary>
    /// Each of <paramref name="outputs"/> runs of <paramref name="length"/> values: the reduced tree computed into a
    /// scratch run and summed as <see cref="ReduceCore{TV, TD, TSource}"/> sums a whole run, then the map over the
    /// run's elements (which reads the sum just stored). Short runs go a block of them at a time (each tree computed
    /// over the block's runs in one pass, each run summed alone), so that a row of two values does not pay for a call.
    /// With a batch, the runs are handed to it instead, to run in the batch's one parallel loop.
    /// </summary>
    private readonly unsafe struct ReduceThenMapRuns<TReduced, TMap>(TreeRange<OneTree<TReduced>> source, TreeRange<OneTree<TMap>> target, float* r, float* y,
        long outputs, long length, bool mean, List<RunsJob>? batch) : IWidthAction where TReduced : unmanaged, ITreeOp where TMap : unmanaged, ITreeOp
    {
        /// <summary>Values a block of short runs spans at most: its scratch stays in the first-level cache.</summary>
        private const long BlockValues = 4096;

        void IWidthAction.Run<TV, TD>()
        {
            var (from, to, len, average) = (source, target, length, mean);
            float* pr = r, py = y;
            long perBlock = Math.Max(1, BlockValues / len);
            Action<long, long> body = (k0, k1) =>
            {
                var scratch = ArrayPool<float>.Shared.Rent(checked((int)(Math.Min(perBlock, k1 - k0) * len)));
                try
                {
                    fixed (float* ps = scratch)
                        for (long b0 = k0; b0 < k1; b0 += perBlock)
                        {
                            long b1 = Math.Min(k1, b0 + perBlock);
                            from.Compute<TV>(b0 * len, (b1 - b0) * len, ps, null);
                            for (long i = b0; i < b1; i++) pr[i] = Whole<TV, TD>(ps + (i - b0) * len, len, false, average, len);
                            to.Compute<TV>(b0 * len, (b1 - b0) * len, py + b0 * len, null);
                        }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(scratch);
                }
            };
            long grain = CheapGrain / Math.Max(1, TReduced.Cost + TMap.Cost);
            if (batch != null) batch.Add(new RunsJob(outputs, len, grain, body));
            else if (outputs * len < 2 * grain) body(0, outputs);
            else For(outputs, Math.Max(1, grain / len), body, 1);
        }
    }

    /// <summary>y = tree(inputs) over the checked <paramref name="layout"/> for any tree struct, as one kernel; the inputs are checked by the caller.</summary>
    internal unsafe void ElementwiseTree<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, TreeBroadcast layout, DeviceBuffer<float> y)
        where TTree : unmanaged, ITreeOp
    {
        const string op = nameof(ElementwiseTree);
        var ya = Data(y, layout.Count, op);
        long n = layout.Count;
        if (n == 0) return;
        Simd.Run(new TreeKernel<OneTree<TTree>>(new TreeRange<OneTree<TTree>>(new(tree), TreeInputsOf(inputs, layout, op), layout.Extents, layout.Strides),
            Ptr(ya), null, n));
    }

    /// <summary>
    /// The tree over <paramref name="shape"/> reduced into r (and stored into y unless null) for any tree struct, in
    /// one pass: the reduction's own walk (<see cref="ReduceCore{TV, TD, TSource}"/>) computes each contiguous run it
    /// reads into y, or into a scratch run, right before reducing it. The call is checked by the caller.
    /// </summary>
    internal void ElementwiseTreeReduce<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, DeviceBuffer<float>? y,
        bool mean, TreeReduction plan, DeviceBuffer<float> r) where TTree : unmanaged, ITreeOp =>
        ReduceTrees(new OneTree<TTree>(tree), inputs, shape, y, null, mean, plan, r, null, nameof(IFusedElementwiseKernels.ElementwiseTreeReduce));

    /// <summary>
    /// Two trees over <paramref name="shape"/> reduced into r0 and r1 (and stored into y0 and y1 unless null) for any
    /// tree structs, in one pass: as <see cref="ElementwiseTreeReduce{TTree}"/>, each run of the walk computes both
    /// trees from the same loaded inputs and each is reduced into its own accumulators. The call is checked by the caller.
    /// </summary>
    internal void ElementwiseTreeReducePair<TFirst, TSecond>(TFirst first, TSecond second, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape,
        DeviceBuffer<float>? y0, DeviceBuffer<float>? y1, bool mean, TreeReduction plan, DeviceBuffer<float> r0, DeviceBuffer<float> r1)
        where TFirst : unmanaged, ITreeOp where TSecond : unmanaged, ITreeOp =>
        ReduceTrees(new TwoTrees<TFirst, TSecond>(first, second), inputs, shape, y0, y1, mean, plan, r0, r1,
            nameof(IFusedElementwiseKernels.ElementwiseTreeReducePair));

    /// <summary>
    /// The tree (or pair of trees) of <paramref name="trees"/> reduced into r0 (and r1 for a pair), stored into y0 (and
    /// y1) unless null: the reduction's own walk (<see cref="ReduceCore{TV, TD, TSource}"/>) computes each contiguous
    /// run it reads into y, or into a scratch run, right before reducing it.
    /// </summary>
    private unsafe void ReduceTrees<TOut>(TOut trees, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, DeviceBuffer<float>? y0, DeviceBuffer<float>? y1,
        bool mean, TreeReduction plan, DeviceBuffer<float> r0, DeviceBuffer<float>? r1, string op) where TOut : unmanaged, ITreeOutputs
    {
        long n = plan.Count, outCount = plan.Outputs;
        var ra0 = Data(r0, outCount, op);
        var ra1 = r1 == null ? null : Data(r1, outCount, op);
        var ya0 = y0 == null ? null : Data(y0, n, op);
        var ya1 = y1 == null ? null : Data(y1, n, op);
        if (outCount == 0) return;
        float* pr0 = Ptr(ra0), pr1 = ra1 == null ? null : Ptr(ra1);
        if (n == 0)
        {
            // Empty reduction, as Reduce: the sum of nothing is 0, its mean 0/0.
            SimdLoops.Fill(pr0, outCount, mean ? float.NaN : 0f);
            if (pr1 != null) SimdLoops.Fill(pr1, outCount, mean ? float.NaN : 0f);
            return;
        }
        var range = new TreeRange<TOut>(trees, TreeInputsOf(inputs, plan.Layout, op), plan.Layout.Extents, plan.Layout.Strides);
        float* py0 = ya0 == null ? null : Ptr(ya0), py1 = ya1 == null ? null : Ptr(ya1);
        if (n == outCount)
        {
            // Only size-1 axes reduced: r holds the tree's values.
            Simd.Run(new TreeKernel<TOut>(range, py0 == null ? pr0 : py0, py1 == null ? pr1 : py1, n));
            if (ya0 != null) MapPar(new IdentityOp(), ya0, ra0, n);
            if (ya1 != null) MapPar(new IdentityOp(), ya1, ra1!, n);
            return;
        }
        var (ext, red) = Collapse(shape, plan.Reduced);
        Simd.Run(new ReduceKernel<TreeRuns<TOut>>(new TreeRuns<TOut>(range, py0, py1), pr0, pr1, n, n / outCount, outCount, ext, red, false, mean));
    }

    /// <summary>
    /// Runs of a tree's values (of both trees' for a pair), computed when the reduction reads them: into y0 (y1) at the
    /// run's place, or into the scratch run (its second half for the second tree) when that y is null.
    /// </summary>
    private readonly unsafe struct TreeRuns<TOut>(TreeRange<TOut> range, float* y0, float* y1) : IRunSource where TOut : unmanaged, ITreeOutputs
    {
        public bool NeedsScratch => y0 == null || (TOut.Paired && y1 == null);

        public bool Paired => TOut.Paired;

        public float* Run<TV>(long start, long length, float* scratch) where TV : unmanaged, IFloatVector<TV>
        {
            float* into = y0 == null ? scratch : y0 + start;
            range.Compute<TV>(start, length, into, Second(start, length, scratch));
            return into;
        }

        public float* Second(long start, long length, float* scratch) => !TOut.Paired ? null : y1 == null ? scratch + length : y1 + start;
    }

    /// <summary>
    /// What a tree kernel computes from one element (or vector) of each input: one tree's value, or two trees' values
    /// from the same loaded inputs.
    /// </summary>
    private unsafe interface ITreeOutputs
    {
        /// <summary>Work per element relative to an add (see <see cref="ITreeOp.Cost"/>).</summary>
        static abstract int Cost { get; }

        /// <summary>True when there is a second tree, stored through the second pointer.</summary>
        static abstract bool Paired { get; }

        /// <summary>The trees on one vector of each input, stored at <paramref name="y0"/> (and <paramref name="y1"/> for a pair).</summary>
        void Store<TV, TLeaves>(in TLeaves x, float* y0, float* y1) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves;
    }

    private readonly unsafe struct OneTree<TTree>(TTree tree) : ITreeOutputs where TTree : unmanaged, ITreeOp
    {
        public static int Cost => TTree.Cost;

        public static bool Paired => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store<TV, TLeaves>(in TLeaves x, float* y0, float* y1) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves =>
            TV.Store(tree.Vector<TV, TLeaves>(in x), y0);
    }

    private readonly unsafe struct TwoTrees<TFirst, TSecond>(TFirst first, TSecond second) : ITreeOutputs
        where TFirst : unmanaged, ITreeOp where TSecond : unmanaged, ITreeOp
    {
        public static int Cost => TFirst.Cost + TSecond.Cost;

        public static bool Paired => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store<TV, TLeaves>(in TLeaves x, float* y0, float* y1) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves
        {
            // Both values before either store: y0 or y1 may be an input.
            var a = first.Vector<TV, TLeaves>(in x);
            var b = second.Vector<TV, TLeaves>(in x);
            TV.Store(a, y0);
            TV.Store(b, y1);
        }
    }

    /// <summary>
    /// A tree over a collapsed broadcast space (<see cref="TreeBroadcast"/>): any flat range of its values, computed
    /// one inner row at a time. Along the innermost collapsed dim each input is contiguous (stride 1) or constant
    /// (stride 0), so every row is a <see cref="TreeLoop{TOut, TV}"/> with vector loads or a broadcast vector per input.
    /// </summary>
    private readonly unsafe struct TreeRange<TOut>(TOut tree, TreeInputs x, long[] ext, long[][] strides) where TOut : unmanaged, ITreeOutputs
    {
        /// <summary>Values [start, start + length) into <paramref name="into"/> (a pair's second tree's into <paramref name="into2"/>).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Compute<TV>(long start, long length, float* into, float* into2) where TV : unmanaged, IFloatVector<TV>
        {
            int m = ext.Length;
            if (m == 1)
            {
                TreeLoop<TOut, TV>(tree, x.From(start), into, into2, length);
                return;
            }
            long inner = ext[m - 1];
            // A reduction asks for runs in order, most of them short: carry on from where this thread's last run ended
            // rather than finding the row again (m - 1 divisions per run).
            var at = RowCursor.Current;
            if (!at.Continues(ext, start)) at.Seek(ext, strides, start);
            at.Next = start + length;
            if (inner < 2 * TV.Count)
            {
                ComputeShortRows<TV>(at, start, length, into, into2);
                return;
            }
            var rows = new TreeRows<TV>(tree, x, into, into2);
            WalkRows(at, length, ref rows);
        }

        /// <summary>
        /// Hands <paramref name="runs"/> the next <paramref name="length"/> values from the cursor's place, a row's run at
        /// a time, and leaves the cursor after them. The row odometer is in registers: the innermost outer dim steps
        /// each input by its stride there; a wrap carries into the outer dims through the cursor.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void WalkRows<TRuns>(RowCursor at, long length, ref TRuns runs) where TRuns : struct, IRowRuns
        {
            int m = ext.Length, last = m - 2;
            long inner = ext[m - 1], lastExt = ext[last], li = at.Index[last], col = at.Column;
            long o0 = at.Offset[0], o1 = at.Offset[1], o2 = at.Offset[2], o3 = at.Offset[3];
            long t0 = strides[0][last], t1 = strides[1][last], t2 = strides[2][last], t3 = strides[3][last];
            while (length > 0)
            {
                if (col == inner)
                {
                    col = 0;
                    if (++li < lastExt)
                    {
                        o0 += t0;
                        o1 += t1;
                        o2 += t2;
                        o3 += t3;
                    }
                    else
                    {
                        li = 0;
                        at.Index[last] = lastExt - 1;
                        (at.Offset[0], at.Offset[1], at.Offset[2], at.Offset[3]) = (o0, o1, o2, o3);
                        at.NextRow(ext, strides);
                        (o0, o1, o2, o3) = (at.Offset[0], at.Offset[1], at.Offset[2], at.Offset[3]);
                    }
                }
                long run = Math.Min(inner - col, length);
                runs.Run(o0, o1, o2, o3, col, run);
                length -= run;
                col += run;
            }
            at.Index[last] = li;
            at.Column = col;
            (at.Offset[0], at.Offset[1], at.Offset[2], at.Offset[3]) = (o0, o1, o2, o3);
        }

        /// <summary>Each row's run computed by the tree in place: every input read at its row offset (plus the column unless scalar per row).</summary>
        private struct TreeRows<TV>(TOut tree, TreeInputs x, float* into, float* into2) : IRowRuns where TV : unmanaged, IFloatVector<TV>
        {
            private float* into = into, into2 = into2;

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public void Run(long o0, long o1, long o2, long o3, long col, long run)
            {
                TreeSpan<TOut, TV>(tree, x.S0 ? x.X0 + o0 : x.X0 + o0 + col, x.S1 ? x.X1 + o1 : x.X1 + o1 + col, x.S2 ? x.X2 + o2 : x.X2 + o2 + col,
                    x.S3 ? x.X3 + o3 : x.X3 + o3 + col, x.S0, x.S1, x.S2, x.S3, into, into2, run);
                into += run;
                into2 += run;
            }
        }

        /// <summary>
        /// Each row's run of the inputs marked to gather, copied into that input's scratch block one after another (an
        /// input scalar per row repeated over the run).
        /// </summary>
        private struct GatheredRows(TreeInputs x, float* scratch, bool g0, bool g1, bool g2, bool g3) : IRowRuns
        {
            private long at;

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public void Run(long o0, long o1, long o2, long o3, long col, long run)
            {
                if (g0) Copy(x.S0 ? x.X0 + o0 : x.X0 + o0 + col, x.S0, scratch + at, run);
                if (g1) Copy(x.S1 ? x.X1 + o1 : x.X1 + o1 + col, x.S1, scratch + ShortRowScratch.Block + at, run);
                if (g2) Copy(x.S2 ? x.X2 + o2 : x.X2 + o2 + col, x.S2, scratch + 2 * ShortRowScratch.Block + at, run);
                if (g3) Copy(x.S3 ? x.X3 + o3 : x.X3 + o3 + col, x.S3, scratch + 3 * ShortRowScratch.Block + at, run);
                at += run;
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            private static void Copy(float* src, bool scalar, float* dst, long run)
            {
                if (scalar)
                {
                    float v = *src;
                    for (long c = 0; c < run; c++) dst[c] = v;
                }
                else
                {
                    for (long c = 0; c < run; c++) dst[c] = src[c];
                }
            }
        }

        /// <summary>
        /// <see cref="Compute{TV}"/> over rows shorter than two vectors, from the cursor's place: a block at a time, each
        /// input that is neither constant nor laid out flat (where value i is element i) is gathered into a scratch
        /// run, and the tree runs over the block with full vectors: the same operations on the same values as row by
        /// row, without a call and a scalar tail per row.
        /// </summary>
        private void ComputeShortRows<TV>(RowCursor at, long start, long length, float* into, float* into2) where TV : unmanaged, IFloatVector<TV>
        {
            const int inputs = ElementwiseExpression.MaxInputs;
            int m = ext.Length;
            // Flat: strides are those of the contiguous space; constant: every stride 0 (read as a scalar).
            Span<bool> flat = stackalloc bool[inputs], constant = stackalloc bool[inputs];
            for (int k = 0; k < inputs; k++)
            {
                bool f = true, c = true;
                long expected = 1;
                for (int d = m - 1; d >= 0; d--)
                {
                    f &= strides[k][d] == expected;
                    c &= strides[k][d] == 0;
                    expected *= ext[d];
                }
                (flat[k], constant[k]) = (f, c);
            }
            float* scratch = ShortRowScratch.Of(inputs * ShortRowScratch.Block);
            // Where the tree reads input k over the block from start: in place, or its gathered scratch block.
            static float* Block(bool constant, bool flat, float* input, long start, float* gathered) =>
                constant ? input : flat ? input + start : gathered;
            while (length > 0)
            {
                long n = Math.Min(length, ShortRowScratch.Block);
                var gathered = new GatheredRows(x, scratch, !(constant[0] || flat[0]), !(constant[1] || flat[1]), !(constant[2] || flat[2]),
                    !(constant[3] || flat[3]));
                WalkRows(at, n, ref gathered);
                const int b = ShortRowScratch.Block;
                TreeSpan<TOut, TV>(tree, Block(constant[0], flat[0], x.X0, start, scratch), Block(constant[1], flat[1], x.X1, start, scratch + b),
                    Block(constant[2], flat[2], x.X2, start, scratch + 2 * b), Block(constant[3], flat[3], x.X3, start, scratch + 3 * b),
                    constant[0], constant[1], constant[2], constant[3], into, into2, n);
                into += n;
                into2 += n;
                start += n;
                length -= n;
            }
        }
    }

    /// <summary>A consumer of <see cref="TreeRange{TOut}"/>'s row walk: each input's offset at the row's start, the column the run starts at, its length.</summary>
    private interface IRowRuns
    {
        /// <summary>One run of a row, in walk order.</summary>
        void Run(long o0, long o1, long o2, long o3, long col, long run);
    }

    /// <summary>Per-thread scratch of <see cref="TreeRange{TOut}.ComputeShortRows{TV}"/>: one block per input.</summary>
    private static unsafe class ShortRowScratch
    {
        /// <summary>Values per block: four inputs' blocks stay in the first-level cache.</summary>
        public const int Block = 1024;

        [ThreadStatic] private static float[]? scratch;

        /// <summary>This thread's scratch of at least <paramref name="length"/> floats (pinned).</summary>
        public static float* Of(int length)
        {
            if (scratch == null || scratch.Length < length) scratch = GC.AllocateUninitializedArray<float>(length, pinned: true);
            return Ptr(scratch);
        }
    }

    /// <summary>
    /// Where a thread's last run of a broadcast tree ended: the row's index along each outer collapsed dim, each
    /// input's element offset at the row's start, and the column within it. One per thread.
    /// </summary>
    private sealed class RowCursor
    {
        [ThreadStatic] private static RowCursor? current;

        private long[]? space;

        /// <summary>This thread's cursor.</summary>
        public static RowCursor Current => current ??= new RowCursor();

        /// <summary>The current row's index along each outer collapsed dim.</summary>
        public long[] Index { get; private set; } = new long[8];

        /// <summary>Each input's element offset at the start of the current row.</summary>
        public long[] Offset { get; } = new long[ElementwiseExpression.MaxInputs];

        /// <summary>The position within the current row.</summary>
        public long Column;

        /// <summary>The flat index after the last run.</summary>
        public long Next = -1;

        /// <summary>True when the last run was over the space <paramref name="ext"/> (the same call) and ended at <paramref name="start"/>.</summary>
        public bool Continues(long[] ext, long start) => ReferenceEquals(space, ext) && Next == start;

        /// <summary>Moves to flat index <paramref name="start"/> of the space.</summary>
        public void Seek(long[] ext, long[][] strides, long start)
        {
            int m = ext.Length;
            if (Index.Length < m) Index = new long[m];
            space = ext;
            long inner = ext[m - 1], row = start / inner;
            Column = start - row * inner;
            Array.Clear(Offset);
            for (int d = m - 2; d >= 0; d--)
            {
                long i = row % ext[d];
                row /= ext[d];
                Index[d] = i;
                for (int k = 0; k < Offset.Length; k++) Offset[k] += i * strides[k][d];
            }
        }

        /// <summary>Moves to the start of the next row.</summary>
        public void NextRow(long[] ext, long[][] strides)
        {
            Column = 0;
            for (int d = ext.Length - 2; d >= 0; d--)
            {
                for (int k = 0; k < Offset.Length; k++) Offset[k] += strides[k][d];
                if (++Index[d] < ext[d]) return;
                for (int k = 0; k < Offset.Length; k++) Offset[k] -= strides[k][d] * ext[d];
                Index[d] = 0;
            }
        }
    }

    /// <summary>
    /// The input pointers of a tree over a collapsed space; inputs the tree does not read alias input 0, so every
    /// pointer is valid. An input constant along the innermost dim is read as a scalar per row.
    /// </summary>
    private static unsafe TreeInputs TreeInputsOf(IReadOnlyList<DeviceBuffer<float>> inputs, TreeBroadcast layout, string op)
    {
        float* Input(int k, out bool scalar)
        {
            var a = Data(inputs[k < inputs.Count ? k : 0], 1, op);
            scalar = layout.Strides[k][^1] == 0;
            return Ptr(a);
        }
        return new TreeInputs(Input(0, out bool s0), Input(1, out bool s1), Input(2, out bool s2), Input(3, out bool s3), s0, s1, s2, s3);
    }

    /// <summary>A tree kernel's input pointers, each read at element i or, for a scalar, at element 0.</summary>
    internal readonly unsafe struct TreeInputs(float* x0, float* x1, float* x2, float* x3, bool s0, bool s1, bool s2, bool s3)
    {
        public readonly float* X0 = x0, X1 = x1, X2 = x2, X3 = x3;
        public readonly bool S0 = s0, S1 = s1, S2 = s2, S3 = s3;

        /// <summary>The inputs from element <paramref name="start"/> on (scalars stay put).</summary>
        public TreeInputs From(long start) =>
            new(S0 ? X0 : X0 + start, S1 ? X1 : X1 + start, S2 ? X2 : X2 + start, S3 ? X3 : X3 + start, S0, S1, S2, S3);

        /// <summary>The inputs moved by the given element offsets, scalars included (a broadcast row's start).</summary>
        public TreeInputs At(long o0, long o1, long o2, long o3) => new(X0 + o0, X1 + o1, X2 + o2, X3 + o3, S0, S1, S2, S3);
    }

    private readonly unsafe struct TreeKernel<TOut>(TreeRange<TOut> range, float* y, float* y2, long n) : IWidthAction where TOut : unmanaged, ITreeOutputs
    {
        void IWidthAction.Run<TV, TD>() => TreePar<TOut, TV>(range, y, y2, n);
    }

    private static unsafe void TreePar<TOut, TV>(TreeRange<TOut> range, float* y, float* y2, long n)
        where TOut : unmanaged, ITreeOutputs where TV : unmanaged, IFloatVector<TV>
    {
        long grain = CheapGrain / Math.Max(1, TOut.Cost);
        if (n < 2 * grain) range.Compute<TV>(0, n, y, y2);
        else For(n, grain, (s, e) => range.Compute<TV>(s, e - s, y + s, y2 == null ? null : y2 + s));
    }

    /// <summary>
    /// A GEMM's tree step (<see cref="Gemm.GemmTree"/>) over <paramref name="runs"/> runs of <paramref name="length"/>
    /// values starting <paramref name="stride"/> apart from <paramref name="z"/>, each stored in place and read from
    /// <paramref name="inputs"/> at the run's offset from C's buffer start <paramref name="c"/>: the loop of
    /// <see cref="ElementwiseTree"/>, so the values have its bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void TreeOverRuns<TTree, TV>(TTree tree, float* z, in TreeInputs inputs, float* c, int runs, int length, nint stride)
        where TTree : unmanaged, ITreeOp where TV : unmanaged, IFloatVector<TV>
    {
        var one = new OneTree<TTree>(tree);
        for (int r = 0; r < runs; r++)
        {
            float* run = z + r * stride;
            var x = inputs.From(run - c);
            TreeSpan<OneTree<TTree>, TV>(one, x.X0, x.X1, x.X2, x.X3, x.S0, x.S1, x.S2, x.S3, run, null, length);
        }
    }

    /// <summary>
    /// The inputs of a GEMM's tree step for C's buffer starting at <paramref name="c"/>: each buffer laid out as C at
    /// its own start (element i of C reads element i of it), a one-element buffer as a scalar, and the value input (and
    /// inputs the tree does not read) at C itself.
    /// </summary>
    internal static unsafe TreeInputs GemmTreeInputs(GemmTreeStep step, float* c)
    {
        float* Input(int k, out bool scalar)
        {
            var input = k < step.Inputs.Count ? step.Inputs[k] : null;
            scalar = input is { Length: 1 };
            return input == null ? c : Ptr(Arr(input));
        }
        return new TreeInputs(Input(0, out bool s0), Input(1, out bool s1), Input(2, out bool s2), Input(3, out bool s3), s0, s1, s2, s3);
    }

    /// <summary>
    /// The tree over n elements: full vectors, then a scalar tail computed as <see cref="Vec1"/> lanes (the bits of a
    /// vector lane). Each leaf reads its input where it stands in the tree (<see cref="ITreeLeaves"/>); y may alias an
    /// input, since every value of an element is read before its store. Not inlined: the inlining budget of one copy
    /// of a long tree is all a method has.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TreeLoop<TOut, TV>(TOut tree, TreeInputs x, float* y, float* y2, long n)
        where TOut : unmanaged, ITreeOutputs where TV : unmanaged, IFloatVector<TV> =>
        TreeSpan<TOut, TV>(tree, x.X0, x.X1, x.X2, x.X3, x.S0, x.S1, x.S2, x.S3, y, y2, n);

    /// <summary><see cref="TreeLoop{TOut, TV}"/> on raw pointers, inlined into the row loop of a broadcast tree (one call per row costs more than a short row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TreeSpan<TOut, TV>(TOut tree, float* x0, float* x1, float* x2, float* x3, bool s0, bool s1, bool s2, bool s3, float* y,
        float* y2, long n)
        where TOut : unmanaged, ITreeOutputs where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        if (TV.Count > 1)
        {
            int w = TV.Count;
            for (; i <= n - w; i += w)
            {
                var at = new LeavesAt(x0, x1, x2, x3, s0, s1, s2, s3, i);
                tree.Store<TV, LeavesAt>(in at, y + i, y2 + i);
            }
        }
        if (i < n) TreeTail(tree, x0, x1, x2, x3, s0, s1, s2, s3, y, y2, i, n);
    }

    /// <summary>
    /// Elements [i, n) of <see cref="TreeSpan{TOut, TV}"/> as <see cref="Vec1"/> lanes: a method of its own, so that the
    /// inlining budget of the loop it ends goes to the vector body.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TreeTail<TOut>(TOut tree, float* x0, float* x1, float* x2, float* x3, bool s0, bool s1, bool s2, bool s3, float* y,
        float* y2, long i, long n) where TOut : unmanaged, ITreeOutputs
    {
        for (; i < n; i++)
        {
            var at = new LeavesAt(x0, x1, x2, x3, s0, s1, s2, s3, i);
            tree.Store<Vec1, LeavesAt>(in at, y + i, y2 + i);
        }
    }

    /// <summary>
    /// The inputs of <see cref="TreeSpan{TOut, TV}"/> at element <paramref name="i"/>: a vector from there, or the
    /// input's one value in every lane when it is a scalar (<paramref name="s0"/>..<paramref name="s3"/>).
    /// </summary>
    private readonly unsafe struct LeavesAt(float* x0, float* x1, float* x2, float* x3, bool s0, bool s1, bool s2, bool s3, long i) : ITreeLeaves
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TV Read0<TV>() where TV : unmanaged, IFloatVector<TV> => s0 ? TV.Create(*x0) : TV.Load(x0 + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TV Read1<TV>() where TV : unmanaged, IFloatVector<TV> => s1 ? TV.Create(*x1) : TV.Load(x1 + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TV Read2<TV>() where TV : unmanaged, IFloatVector<TV> => s2 ? TV.Create(*x2) : TV.Load(x2 + i);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TV Read3<TV>() where TV : unmanaged, IFloatVector<TV> => s3 ? TV.Create(*x3) : TV.Load(x3 + i);
    }
}
