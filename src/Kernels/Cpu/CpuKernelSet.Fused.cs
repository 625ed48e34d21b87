using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

// Fused elementwise chains and trees: one composed op struct through the set's generic elementwise kernels, one launch.
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

    /// <summary>y = tree(inputs) over the checked <paramref name="layout"/> for any tree struct, as one kernel; the inputs are checked by the caller.</summary>
    internal unsafe void ElementwiseTree<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, TreeBroadcast layout, DeviceBuffer<float> y)
        where TTree : unmanaged, ITreeOp
    {
        const string op = nameof(ElementwiseTree);
        var ya = Data(y, layout.Count, op);
        long n = layout.Count;
        if (n == 0) return;
        Simd.Run(new TreeKernel<TTree>(new TreeRange<TTree>(tree, TreeInputsOf(inputs, layout, op), layout.Extents, layout.Strides), Ptr(ya), n));
    }

    /// <summary>
    /// The tree over <paramref name="shape"/> reduced into r (and stored into y unless null) for any tree struct, in
    /// one pass: the reduction's own walk (<see cref="ReduceCore{TV, TD, TSource}"/>) computes each contiguous run it
    /// reads into y, or into a scratch run, right before reducing it. The call is checked by the caller.
    /// </summary>
    internal unsafe void ElementwiseTreeReduce<TTree>(TTree tree, IReadOnlyList<DeviceBuffer<float>> inputs, int[] shape, DeviceBuffer<float>? y,
        bool mean, TreeReduction plan, DeviceBuffer<float> r) where TTree : unmanaged, ITreeOp
    {
        const string op = nameof(IFusedElementwiseKernels.ElementwiseTreeReduce);
        long n = plan.Count, outCount = plan.Outputs;
        var ra = Data(r, outCount, op);
        var ya = y == null ? null : Data(y, n, op);
        if (outCount == 0) return;
        float* pr = Ptr(ra);
        if (n == 0)
        {
            // Empty reduction, as Reduce: the sum of nothing is 0, its mean 0/0.
            SimdLoops.Fill(pr, outCount, mean ? float.NaN : 0f);
            return;
        }
        var range = new TreeRange<TTree>(tree, TreeInputsOf(inputs, plan.Layout, op), plan.Layout.Extents, plan.Layout.Strides);
        float* py = ya == null ? null : Ptr(ya);
        if (n == outCount)
        {
            // Only size-1 axes reduced: r holds the tree's values.
            Simd.Run(new TreeKernel<TTree>(range, py == null ? pr : py, n));
            if (ya != null) MapPar(new IdentityOp(), ya, ra, n);
            return;
        }
        var (ext, red) = Collapse(shape, plan.Reduced);
        Simd.Run(new ReduceKernel<TreeRuns<TTree>>(new TreeRuns<TTree>(range, py), pr, n, n / outCount, outCount, ext, red, false, mean));
    }

    /// <summary>Runs of a tree's values, computed when the reduction reads them: into y at the run's place, or into the scratch run when y is null.</summary>
    private readonly unsafe struct TreeRuns<TTree>(TreeRange<TTree> range, float* y) : IRunSource where TTree : unmanaged, ITreeOp
    {
        public bool NeedsScratch => y == null;

        public float* Run<TV>(long start, long length, float* scratch) where TV : unmanaged, IFloatVector<TV>
        {
            float* into = y == null ? scratch : y + start;
            range.Compute<TV>(start, length, into);
            return into;
        }
    }

    /// <summary>
    /// A tree over a collapsed broadcast space (<see cref="TreeBroadcast"/>): any flat range of its values, computed
    /// one inner row at a time. Along the innermost collapsed dim each input is contiguous (stride 1) or constant
    /// (stride 0), so every row is a <see cref="TreeLoop{TTree, TV}"/> with vector loads or a broadcast vector per input.
    /// </summary>
    private readonly unsafe struct TreeRange<TTree>(TTree tree, TreeInputs x, long[] ext, long[][] strides) where TTree : unmanaged, ITreeOp
    {
        /// <summary>Values [start, start + length) into <paramref name="into"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Compute<TV>(long start, long length, float* into) where TV : unmanaged, IFloatVector<TV>
        {
            int m = ext.Length;
            if (m == 1)
            {
                TreeLoop<TTree, TV>(tree, x.From(start), into, length);
                return;
            }
            long inner = ext[m - 1];
            // A reduction asks for runs in order, most of them short: carry on from where this thread's last run ended
            // rather than finding the row again (m - 1 divisions per run).
            var at = RowCursor.Current;
            if (!at.Continues(ext, start)) at.Seek(ext, strides, start);
            at.Next = start + length;
            // The row odometer in registers: the innermost outer dim steps each input by its stride there; a wrap
            // carries into the outer dims through the cursor.
            int last = m - 2;
            long lastExt = ext[last], li = at.Index[last], col = at.Column;
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
                TreeSpan<TTree, TV>(tree, x.S0 ? x.X0 + o0 : x.X0 + o0 + col, x.S1 ? x.X1 + o1 : x.X1 + o1 + col, x.S2 ? x.X2 + o2 : x.X2 + o2 + col,
                    x.S3 ? x.X3 + o3 : x.X3 + o3 + col, x.S0, x.S1, x.S2, x.S3, into, run);
                into += run;
                length -= run;
                col += run;
            }
            at.Index[last] = li;
            at.Column = col;
            (at.Offset[0], at.Offset[1], at.Offset[2], at.Offset[3]) = (o0, o1, o2, o3);
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
    private readonly unsafe struct TreeInputs(float* x0, float* x1, float* x2, float* x3, bool s0, bool s1, bool s2, bool s3)
    {
        public readonly float* X0 = x0, X1 = x1, X2 = x2, X3 = x3;
        public readonly bool S0 = s0, S1 = s1, S2 = s2, S3 = s3;

        /// <summary>The inputs from element <paramref name="start"/> on (scalars stay put).</summary>
        public TreeInputs From(long start) =>
            new(S0 ? X0 : X0 + start, S1 ? X1 : X1 + start, S2 ? X2 : X2 + start, S3 ? X3 : X3 + start, S0, S1, S2, S3);

        /// <summary>The inputs moved by the given element offsets, scalars included (a broadcast row's start).</summary>
        public TreeInputs At(long o0, long o1, long o2, long o3) => new(X0 + o0, X1 + o1, X2 + o2, X3 + o3, S0, S1, S2, S3);
    }

    private readonly unsafe struct TreeKernel<TTree>(TreeRange<TTree> range, float* y, long n) : IWidthAction where TTree : unmanaged, ITreeOp
    {
        void IWidthAction.Run<TV, TD>() => TreePar<TTree, TV>(range, y, n);
    }

    private static unsafe void TreePar<TTree, TV>(TreeRange<TTree> range, float* y, long n)
        where TTree : unmanaged, ITreeOp where TV : unmanaged, IFloatVector<TV>
    {
        long grain = CheapGrain / Math.Max(1, TTree.Cost);
        if (n < 2 * grain) range.Compute<TV>(0, n, y);
        else For(n, grain, (s, e) => range.Compute<TV>(s, e - s, y + s));
    }

    /// <summary>
    /// The tree over n elements: full vectors, then a scalar tail computed as <see cref="Vec1"/> lanes (the bits of a
    /// vector lane). Each input is loaded once per element however many leaves read it; y may alias an input.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TreeLoop<TTree, TV>(TTree tree, TreeInputs x, float* y, long n)
        where TTree : unmanaged, ITreeOp where TV : unmanaged, IFloatVector<TV> =>
        TreeSpan<TTree, TV>(tree, x.X0, x.X1, x.X2, x.X3, x.S0, x.S1, x.S2, x.S3, y, n);

    /// <summary><see cref="TreeLoop{TTree, TV}"/> on raw pointers, inlined into the row loop of a broadcast tree (one call per row costs more than a short row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TreeSpan<TTree, TV>(TTree tree, float* x0, float* x1, float* x2, float* x3, bool s0, bool s1, bool s2, bool s3, float* y, long n)
        where TTree : unmanaged, ITreeOp where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        if (TV.Count > 1)
        {
            int w = TV.Count;
            TV c0 = TV.Create(*x0), c1 = TV.Create(*x1), c2 = TV.Create(*x2), c3 = TV.Create(*x3);
            for (; i <= n - w; i += w)
            {
                var v0 = s0 ? c0 : TV.Load(x0 + i);
                var v1 = s1 ? c1 : TV.Load(x1 + i);
                var v2 = s2 ? c2 : TV.Load(x2 + i);
                var v3 = s3 ? c3 : TV.Load(x3 + i);
                TV.Store(tree.Vector(v0, v1, v2, v3), y + i);
            }
        }
        for (; i < n; i++)
        {
            Vec1 v0 = s0 ? *x0 : x0[i];
            Vec1 v1 = s1 ? *x1 : x1[i];
            Vec1 v2 = s2 ? *x2 : x2[i];
            Vec1 v3 = s3 ? *x3 : x3[i];
            y[i] = tree.Vector(v0, v1, v2, v3);
        }
    }
}
