using Engine.Kernels.Elementwise;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, float>? kFill;
    private Action<KernelConfig, ArrayView<float>, ulong, float, float>? kUniform;
    private Action<KernelConfig, ArrayView<float>, ulong, float, float>? kNormal;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, long, StridedLayout>? kGather;
    private Action<KernelConfig, ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>? kReduceThread;
    private Action<KernelConfig, ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>? kReduceGroup;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, long, int>? kSoftmax;
    private Action<KernelConfig, SoftmaxTable, long>? kSoftmaxSegments;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, long, int>? kSoftmaxGroup;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>? kCrossEntropy;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>? kCrossEntropyGroup;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float>? kCrossEntropyBackward;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float>? kCrossEntropyBackwardGroup;
    private Action<KernelConfig, ArrayView<int>, ArrayView<float>, int, long>? kOneHot;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>? kSoftmaxCrossEntropy;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>? kSoftmaxCrossEntropyGroup;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, long, int, int, int>? kIndexSelect;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, long, int, int, int, int>? kIndexAdd;

    /// <inheritdoc />
    public void Fill(DeviceBuffer<float> dst, float value)
    {
        var d = View(dst, 0, "Fill", nameof(dst));
        FillView(d, value, "Fill", dst);
    }

    private void FillView(ArrayView<float> d, float value, string op, object keep)
    {
        if (d.Length == 0) return;
        var k = Kernel(ref kFill, a => a.LoadStreamKernel<ArrayView<float>, float>(IlgpuKernels.Fill));
        Launch(op, () => k(Config1D(d.Length), d, value), keep);
    }

    /// <inheritdoc />
    public void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count)
    {
        if (srcOffset < 0 || dstOffset < 0 || count < 0)
            throw new ArgumentException($"{Name}.Copy: offsets ({srcOffset}, {dstOffset}) and count ({count}) must be non-negative.");
        var s = View(src, srcOffset + count, "Copy", nameof(src));
        var d = View(dst, dstOffset + count, "Copy", nameof(dst));
        if (count == 0) return;
        var from = s.SubView(srcOffset, count);
        var to = d.SubView(dstOffset, count);
        bool overlap = ReferenceEquals(src, dst) && srcOffset != dstOffset &&
                       srcOffset < dstOffset + count && dstOffset < srcOffset + count;
        if (!overlap)
        {
            Launch("Copy", () => from.CopyTo(to), src, dst);
            return;
        }
        // Overlapping ranges of one buffer: stage through a temporary so the result is a true move.
        using var tmp = (IlgpuBuffer<float>)Allocate(count);
        Launch("Copy", () =>
        {
            from.CopyTo(tmp.View);
            tmp.View.CopyTo(to);
            accelerator.Synchronize();
        }, src);
    }

    /// <inheritdoc />
    public void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high)
    {
        var d = View(dst, 0, "RandomUniform", nameof(dst));
        if (d.Length == 0) return;
        var k = Kernel(ref kUniform, a => a.LoadStreamKernel<ArrayView<float>, ulong, float, float>(IlgpuKernels.RandomUniform));
        Launch("RandomUniform", () => k(Config1D(d.Length), d, seed, low, high), dst);
    }

    /// <inheritdoc />
    public void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std)
    {
        var d = View(dst, 0, "RandomNormal", nameof(dst));
        if (d.Length == 0) return;
        var k = Kernel(ref kNormal, a => a.LoadStreamKernel<ArrayView<float>, ulong, float, float>(IlgpuKernels.RandomNormal));
        Launch("RandomNormal", () => k(Config1D(d.Length), d, seed, mean, std), dst);
    }

    /// <inheritdoc />
    public void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) =>
        ElementwiseOps.Visit<UnaryVisitor, bool>(op, new UnaryVisitor(this, x, y));

    /// <summary>y[i] = op(x[i]) for any op struct (composed ones included), as one kernel.</summary>
    internal void Unary<TOp>(TOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) where TOp : unmanaged, IUnaryOp
    {
        var xv = View(x, 0, "Unary", nameof(x));
        var yv = View(y, x.Length, "Unary", nameof(y));
        if (xv.Length == 0) return;
        var k = Specialised<TOp, Action<KernelConfig, ArrayView<float>, ArrayView<float>, TOp>>(ElementwiseKernel.Unary,
            a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, TOp>(IlgpuKernels.Unary));
        Launch("Unary", () => k(Config1D(xv.Length), xv, yv, op), x, y);
    }

    private readonly struct UnaryVisitor(IlgpuKernelSet set, DeviceBuffer<float> x, DeviceBuffer<float> y) : IUnaryOpVisitor<bool>
    {
        bool IUnaryOpVisitor<bool>.Visit<TOp>(TOp op)
        {
            set.Unary(op, x, y);
            return true;
        }
    }

    /// <inheritdoc />
    public void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift) => Unary(new AffineOp(scale, shift), x, y);

    /// <inheritdoc />
    public void Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape) =>
        ElementwiseOps.Visit<BinaryVisitor, bool>(op, new BinaryVisitor(this, a, aShape, b, bShape, y, yShape));

    /// <summary>y = op(a, b) with NumPy broadcasting for any op struct (composed ones included), as one kernel.</summary>
    internal void Binary<TOp>(TOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape)
        where TOp : unmanaged, IBinaryOp
    {
        const string opName = "Binary";
        CheckShape(aShape, opName, nameof(aShape));
        CheckShape(bShape, opName, nameof(bShape));
        CheckShape(yShape, opName, nameof(yShape));
        long count = Layout.Product(yShape);
        var av = View(a, Layout.Product(aShape), opName, nameof(a));
        var bv = View(b, Layout.Product(bShape), opName, nameof(b));
        var yv = View(y, count, opName, nameof(y));
        var sa = Layout.BroadcastStrides(aShape, yShape, $"{Name}.{opName}");
        var sb = Layout.BroadcastStrides(bShape, yShape, $"{Name}.{opName}");
        if (count == 0) return;
        var layout = Layout.Coalesce(yShape, sa, sb, $"{Name}.{opName}");
        var k = Specialised<TOp, Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, StridedLayout, TOp>>(
            ElementwiseKernel.Binary,
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, long, StridedLayout, TOp>(IlgpuKernels.Binary));
        Launch(opName, () => k(Config1D(count), av, bv, yv, count, layout, op), a, b, y);
    }

    private readonly struct BinaryVisitor(IlgpuKernelSet set, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape,
        DeviceBuffer<float> y, int[] yShape) : IBinaryOpVisitor<bool>
    {
        bool IBinaryOpVisitor<bool>.Visit<TOp>(TOp op)
        {
            set.Binary(op, a, aShape, b, bShape, y, yShape);
            return true;
        }
    }

    /// <summary>y[i] = op(a[i], b[i]) over same-shape buffers of a.Length elements (y may be a or b).</summary>
    internal void Zip<TOp>(TOp op, DeviceBuffer<float> a, DeviceBuffer<float> b, DeviceBuffer<float> y, string opName)
        where TOp : unmanaged, IBinaryOp
    {
        var av = View(a, 0, opName, nameof(a));
        var bv = View(b, a.Length, opName, nameof(b));
        var yv = View(y, a.Length, opName, nameof(y));
        if (av.Length == 0) return;
        var k = Specialised<TOp, Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp>>(ElementwiseKernel.Zip,
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp>(IlgpuKernels.Zip));
        Launch(opName, () => k(Config1D(av.Length), av, bv, yv, op), a, b, y);
    }

    /// <inheritdoc />
    public void BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape)
    {
        const string opName = "BroadcastTo";
        CheckShape(xShape, opName, nameof(xShape));
        CheckShape(yShape, opName, nameof(yShape));
        long count = Layout.Product(yShape);
        var xv = View(x, Layout.Product(xShape), opName, nameof(x));
        var yv = View(y, count, opName, nameof(y));
        var sx = Layout.BroadcastStrides(xShape, yShape, $"{Name}.{opName}");
        if (count == 0) return;
        Gather(xv, yv, count, Layout.Coalesce(yShape, sx, null, $"{Name}.{opName}"), opName, x, y);
    }

    /// <inheritdoc />
    public void Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y)
    {
        const string opName = "Permute";
        CheckShape(xShape, opName, nameof(xShape));
        ArgumentNullException.ThrowIfNull(perm);
        int rank = xShape.Length;
        if (perm.Length != rank)
            throw new ArgumentException($"{Name}.{opName}: permutation of length {perm.Length} for rank {rank}.", nameof(perm));
        var seen = new bool[rank];
        foreach (var p in perm)
        {
            if ((uint)p >= (uint)rank || seen[p])
                throw new ArgumentException($"{Name}.{opName}: [{string.Join(", ", perm)}] is not a permutation of 0..{rank - 1}.", nameof(perm));
            seen[p] = true;
        }
        long count = Layout.Product(xShape);
        var xv = View(x, count, opName, nameof(x));
        var yv = View(y, count, opName, nameof(y));
        if (count == 0) return;
        var xs = Layout.ContiguousStrides(xShape);
        var yShape = new int[rank];
        var st = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            yShape[i] = xShape[perm[i]];
            st[i] = xs[perm[i]];
        }
        Gather(xv, yv, count, Layout.Coalesce(yShape, st, null, $"{Name}.{opName}"), opName, x, y);
    }

    private void Gather(ArrayView<float> x, ArrayView<float> y, long count, StridedLayout layout, string op, object xBuffer, object yBuffer)
    {
        var k = Kernel(ref kGather, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, long, StridedLayout>(IlgpuKernels.Gather));
        Launch(op, () => k(Config1D(count), x, y, count, layout), xBuffer, yBuffer);
    }

    /// <inheritdoc />
    public void Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y)
    {
        const string opName = "Reduce";
        if (!Enum.IsDefined(op)) throw new ArgumentOutOfRangeException(nameof(op), op, $"{Name}.Reduce: unknown op.");
        CheckShape(xShape, opName, nameof(xShape));
        ArgumentNullException.ThrowIfNull(axes);
        var plan = PlanReduce(opName, op, xShape, axes);
        var xv = View(x, plan.OutCount * plan.RedCount, opName, nameof(x));
        var yv = View(y, plan.OutCount, opName, nameof(y));
        RunReduce(opName, new ViewSource { X = xv }, yv, plan, ViewReduceThread, ViewReduceGroup, [x, y]);
    }

    /// <summary>How a reduction walks its input: outputs and their layout, reduced elements per output and their layout.</summary>
    private readonly record struct ReducePlan(ReduceOp Op, long OutCount, long RedCount, StridedLayout OutLayout, StridedLayout RedOuter, ReduceParams Params);

    /// <summary>The walk of a reduction of a contiguous tensor of <paramref name="xShape"/> over <paramref name="axes"/> (checked: sorted, distinct, in range).</summary>
    private ReducePlan PlanReduce(string opName, ReduceOp op, int[] xShape, int[] axes)
    {
        int rank = xShape.Length;
        var reduced = new bool[rank];
        int prev = -1;
        foreach (var ax in axes)
        {
            if (ax <= prev || ax >= rank)
                throw new ArgumentException($"{Name}.{opName}: axes [{string.Join(", ", axes)}] must be sorted, distinct and below rank {rank}.", nameof(axes));
            reduced[ax] = true;
            prev = ax;
        }
        var xs = Layout.ContiguousStrides(xShape);
        var keptShape = new List<int>();
        var keptStride = new List<long>();
        var redShape = new List<int>();
        var redStride = new List<long>();
        for (int d = 0; d < rank; d++)
        {
            (reduced[d] ? redShape : keptShape).Add(xShape[d]);
            (reduced[d] ? redStride : keptStride).Add(xs[d]);
        }
        long outCount = 1, redCount = 1;
        foreach (var s in keptShape) outCount *= s;
        foreach (var s in redShape) redCount *= s;
        var p = new ReduceParams
        {
            OutCount = outCount,
            Op = (int)op,
            Divisor = op == ReduceOp.Mean ? redCount : 1f,
        };
        if (outCount == 0 || redCount == 0) return new ReducePlan(op, outCount, redCount, default, default, p);
        var outLayout = Layout.Coalesce(keptShape, keptStride, null, $"{Name}.{opName}");
        var (rs, rst, rsb) = Layout.Merge(redShape, redStride, null);
        StridedLayout redOuter;
        if (rs.Count == 0)
        {
            p.InnerCount = 1;
            p.InnerStride = 0;
            p.OuterCount = 1;
            redOuter = default;
        }
        else
        {
            p.InnerCount = rs[^1];
            p.InnerStride = rst[^1];
            p.OuterCount = redCount / p.InnerCount;
            redOuter = Layout.Pack(rs, rst, rsb, rs.Count - 1, $"{Name}.{opName}", redShape);
        }
        return new ReducePlan(op, outCount, redCount, outLayout, redOuter, p);
    }

    private Action<KernelConfig, ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams> ViewReduceThread() =>
        Kernel(ref kReduceThread, a => a.LoadStreamKernel<ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReduceThread));

    private Action<KernelConfig, ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams> ViewReduceGroup() =>
        Kernel(ref kReduceGroup, a => shuffles
            ? a.LoadStreamKernel<ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReduceGroup<SwitchOn, ViewSource>)
            : a.LoadStreamKernel<ViewSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>(IlgpuKernels.ReduceGroup<SwitchOff, ViewSource>));

    /// <summary>
    /// Runs a planned reduction of the elements <paramref name="source"/> reads into <paramref name="yv"/>: a thread per
    /// output, or groups per output (<see cref="ReduceByGroups"/>). <paramref name="keep"/>: the buffers the launches
    /// read and write, y last.
    /// </summary>
    private void RunReduce<TSource>(string opName, TSource source, ArrayView<float> yv, ReducePlan plan,
        Func<Action<KernelConfig, TSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>> thread,
        Func<Action<KernelConfig, TSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams>> group, object?[] keep)
        where TSource : struct, IReduceSource
    {
        if (plan.OutCount == 0) return;
        if (plan.RedCount == 0)
        {
            // Empty reduction: the sum of nothing is 0, its mean 0/0, its max -inf.
            FillView(yv.SubView(0, plan.OutCount), plan.Op switch { ReduceOp.Sum => 0f, ReduceOp.Mean => float.NaN, _ => float.NegativeInfinity }, opName, keep[^1]!);
            return;
        }
        var (p, outLayout, redOuter) = (plan.Params, plan.OutLayout, plan.RedOuter);
        if (PreferTree(plan.OutCount, plan.RedCount))
        {
            ReduceByGroups(opName, source, group(), yv, outLayout, redOuter, p, plan.RedCount, keep);
        }
        else
        {
            var k = thread();
            Launch(opName, () => k(Config1D(plan.OutCount), source, yv, outLayout, redOuter, p), keep);
        }
    }

    /// <summary>
    /// Few long reductions: groups per output. When there are fewer outputs than the device has groups to keep busy,
    /// each output is split over several groups (up to <see cref="ReduceSplitCap"/> groups in all, at least 16 elements
    /// per thread each) that write partials, and a second launch folds the partials (the mean's divisor is applied
    /// there). Summation order on ILGPU: per thread in float over a strided share, then the group (warp shuffles or a
    /// tree), then the partials of an output in a second group.
    /// </summary>
    private void ReduceByGroups<TSource>(string opName, TSource source, Action<KernelConfig, TSource, ArrayView<float>, StridedLayout, StridedLayout, ReduceParams> k,
        ArrayView<float> yv, StridedLayout outLayout, StridedLayout redOuter, ReduceParams p, long redCount, object?[] keep)
        where TSource : struct, IReduceSource
    {
        int split = ReduceSplit(p.OutCount, redCount);
        if (split == 1)
        {
            p.Split = 1;
            Launch(opName, () => k(ConfigTree(p.OutCount, redCount), source, yv, outLayout, redOuter, p), keep);
            return;
        }
        using var partials = (IlgpuBuffer<float>)Allocate(p.OutCount * split);
        var pv = partials.View;
        var first = p;
        first.Split = split;
        Launch(opName, () => k(ConfigTree(p.OutCount * split, redCount / split), source, pv, outLayout, redOuter, first), [.. keep, partials]);
        var (second, rows) = FoldPass(opName, p, split);
        var fold = ViewReduceGroup();
        Launch(opName, () => fold(ConfigTree(p.OutCount, split), new ViewSource { X = pv }, yv, rows, default, second), partials, keep[^1]);
    }

    /// <summary>Groups per output of a reduction by groups (<see cref="ReduceByGroups"/>): 1, or more for few long reductions.</summary>
    private int ReduceSplit(long outCount, long redCount) => (int)Math.Clamp(redCount / (16L * treeGroupSize), 1, Math.Max(1, ReduceSplitCap / outCount));

    /// <summary>The second pass of a split reduction: partials [outCount, split] folded along the split axis.</summary>
    private (ReduceParams Params, StridedLayout Rows) FoldPass(string opName, ReduceParams p, int split) =>
        (new ReduceParams { OutCount = p.OutCount, OuterCount = 1, InnerCount = split, InnerStride = 1, Op = p.Op, Divisor = p.Divisor, Split = 1 },
            Layout.Coalesce([(int)p.OutCount], [split], null, $"{Name}.{opName}"));

    /// <summary>Upper bound on the groups of a split reduction's first pass.</summary>
    private int ReduceSplitCap => Kind == DeviceKind.IlgpuCpu ? 16 : 4 * maxGroups;

    /// <inheritdoc />
    public void IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y)
    {
        const string opName = "IndexSelect";
        CheckShape(xShape, opName, nameof(xShape));
        if ((uint)axis >= (uint)xShape.Length)
            throw new ArgumentOutOfRangeException(nameof(axis), axis, $"{Name}.{opName}: axis out of range for shape {Layout.Fmt(xShape)}.");
        ArgumentOutOfRangeException.ThrowIfNegative(indexLength);
        var (outer, xAxis, inner) = Split(xShape, axis);
        long count = outer * indexLength * inner;
        var xv = View(x, outer * xAxis * inner, opName, nameof(x));
        var iv = View(index, indexLength, opName, nameof(index));
        var yv = View(y, count, opName, nameof(y));
        if (count == 0) return;
        CheckInt(xAxis, inner, opName);
        var k = Kernel(ref kIndexSelect, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, long, int, int, int>(IlgpuKernels.IndexSelect));
        Launch(opName, () => k(Config1D(count), xv, iv, yv, count, (int)xAxis, indexLength, (int)inner), x, index, y);
    }

    /// <inheritdoc />
    public void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape) =>
        IndexAdd(src, srcShape, axis, index, y, yShape, false, "IndexAdd");

    void IIndexScatterKernels.IndexScatter(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape) =>
        IndexAdd(src, srcShape, axis, index, y, yShape, true, nameof(IIndexScatterKernels.IndexScatter));

    /// <summary>The index-add, with y first zeroed when <paramref name="clear"/> (each thread zeroes the line it then adds into).</summary>
    private void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape, bool clear, string opName)
    {
        CheckShape(srcShape, opName, nameof(srcShape));
        CheckShape(yShape, opName, nameof(yShape));
        if ((uint)axis >= (uint)yShape.Length || srcShape.Length != yShape.Length)
            throw new ArgumentException($"{Name}.{opName}: axis {axis} with shapes {Layout.Fmt(srcShape)} and {Layout.Fmt(yShape)}.", nameof(axis));
        var (outer, yAxis, inner) = Split(yShape, axis);
        var (srcOuter, indexLength, srcInner) = Split(srcShape, axis);
        if (srcOuter != outer || srcInner != inner)
            throw new ArgumentException($"{Name}.{opName}: shapes {Layout.Fmt(srcShape)} and {Layout.Fmt(yShape)} differ outside axis {axis}.");
        var sv = View(src, outer * indexLength * inner, opName, nameof(src));
        var iv = View(index, indexLength, opName, nameof(index));
        var yv = View(y, outer * yAxis * inner, opName, nameof(y));
        long lines = outer * inner;
        if (lines == 0 || indexLength == 0 && !clear) return;
        CheckInt(yAxis, inner, opName);
        var k = Kernel(ref kIndexAdd, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, long, int, int, int, int>(IlgpuKernels.IndexAdd));
        Launch(opName, () => k(Config1D(lines), sv, iv, yv, lines, (int)yAxis, (int)indexLength, (int)inner, clear ? 1 : 0), src, index, y);
    }

    private static (long Outer, long Axis, long Inner) Split(int[] shape, int axis)
    {
        long outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < shape.Length; d++) inner *= shape[d];
        return (outer, shape[axis], inner);
    }

    private void CheckInt(long axisLength, long inner, string op)
    {
        if (inner > int.MaxValue || axisLength > int.MaxValue)
            throw new ArgumentException($"{Name}.{op}: inner extent {inner} exceeds the kernel's int range.");
    }

    /// <inheritdoc />
    public void Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log)
    {
        const string opName = "Softmax";
        if (outer < 0 || axisLength < 0 || inner < 0)
            throw new ArgumentException($"{Name}.{opName}: negative extent in [{outer}, {axisLength}, {inner}].");
        long count = (long)outer * axisLength * inner;
        var xv = View(x, count, opName, nameof(x));
        var yv = View(y, count, opName, nameof(y));
        long lines = (long)outer * inner;
        if (count == 0) return;
        if (PreferTree(lines, axisLength))
        {
            var k = Kernel(ref kSoftmaxGroup, a => shuffles
                ? a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, long, int>(IlgpuKernels.SoftmaxGroup<SwitchOn>)
                : a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, long, int>(IlgpuKernels.SoftmaxGroup<SwitchOff>));
            Launch(opName, () => k(ConfigTree(lines, axisLength), xv, yv, axisLength, inner, lines, log ? 1 : 0), x, y);
        }
        else
        {
            var k = Kernel(ref kSoftmax, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, long, int>(IlgpuKernels.Softmax));
            Launch(opName, () => k(Config1D(lines), xv, yv, axisLength, inner, lines, log ? 1 : 0), x, y);
        }
    }

    /// <summary>
    /// Independent softmaxes: the ones <see cref="Softmax"/> runs a thread per line share launches of
    /// <see cref="IlgpuKernels.SoftmaxSegments"/> (up to <see cref="SegmentTable.Capacity"/> softmaxes each, every line
    /// computed as <see cref="Softmax"/> computes it); the ones it runs a group per line (few long lines) run as it
    /// runs them, one launch each.
    /// </summary>
    void ISoftmaxBatchKernels.Softmaxes(IReadOnlyList<SoftmaxCall> calls)
    {
        const string opName = nameof(ISoftmaxBatchKernels.Softmaxes);
        SoftmaxBatch.Check(calls);
        var threads = new List<(ArrayView<float> X, ArrayView<float> Y, SoftmaxCall Call, long Lines)>();
        var groups = new List<SoftmaxCall>();
        foreach (var c in calls)
        {
            long count = (long)c.Outer * c.AxisLength * c.Inner, lines = (long)c.Outer * c.Inner;
            var (xv, yv) = (View(c.X, count, opName, "x"), View(c.Y, count, opName, "y"));
            if (count == 0) continue;
            if (PreferTree(lines, c.AxisLength)) groups.Add(c);
            else threads.Add((xv, yv, c, lines));
        }
        foreach (var c in groups) Softmax(c.X, c.Y, c.Outer, c.AxisLength, c.Inner, c.Log);
        var k = Kernel(ref kSoftmaxSegments, a => a.LoadStreamKernel<SoftmaxTable, long>(IlgpuKernels.SoftmaxSegments));
        for (int first = 0; first < threads.Count; first += SegmentTable.Capacity)
        {
            var table = new SoftmaxTable { Lines = new SegmentTable { Count = Math.Min(SegmentTable.Capacity, threads.Count - first) } };
            long total = 0;
            for (int s = 0; s < table.Lines.Count; s++)
            {
                var (xv, yv, c, lines) = threads[first + s];
                total += lines;
                table.Lines.A.Set(s, xv);
                table.Lines.B.Set(s, yv);
                table.Lines.End.Set(s, total);
                table.AxisLength.Set(s, c.AxisLength);
                table.Inner.Set(s, c.Inner);
                table.Log.Set(s, c.Log ? 1 : 0);
            }
            Launch(opName, () => k(Config1D(total), table, total), calls);
        }
    }

    /// <inheritdoc />
    public void CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss)
    {
        const string opName = "CrossEntropy";
        if (rows < 0 || classes < 0) throw new ArgumentException($"{Name}.{opName}: negative extent [{rows}, {classes}].");
        var lv = View(logits, (long)rows * classes, opName, nameof(logits));
        var labv = View(labels, rows, opName, nameof(labels));
        var outv = View(loss, rows, opName, nameof(loss));
        if (rows == 0) return;
        if (PreferTree(rows, classes))
        {
            var k = Kernel(ref kCrossEntropyGroup, a => shuffles
                ? a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>(IlgpuKernels.CrossEntropyGroup<SwitchOn>)
                : a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>(IlgpuKernels.CrossEntropyGroup<SwitchOff>));
            Launch(opName, () => k(ConfigTree(rows, classes), lv, labv, outv, rows, classes), logits, labels, loss);
        }
        else
        {
            var k = Kernel(ref kCrossEntropy, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>(IlgpuKernels.CrossEntropy));
            Launch(opName, () => k(Config1D(rows), lv, labv, outv, rows, classes), logits, labels, loss);
        }
    }

    /// <inheritdoc />
    void ILossKernels.CrossEntropyBackward(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> dLoss,
        float scale, DeviceBuffer<float> dLogits)
    {
        const string opName = "CrossEntropyBackward";
        if (rows < 0 || classes < 0) throw new ArgumentException($"{Name}.{opName}: negative extent [{rows}, {classes}].");
        var lv = View(logits, (long)rows * classes, opName, nameof(logits));
        var labv = View(labels, rows, opName, nameof(labels));
        var gv = View(dLoss, 1, opName, nameof(dLoss));
        var dv = View(dLogits, (long)rows * classes, opName, nameof(dLogits));
        if (rows == 0 || classes == 0) return;
        if (PreferTree(rows, classes))
        {
            var k = Kernel(ref kCrossEntropyBackwardGroup, a => shuffles
                ? a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float>(IlgpuKernels.CrossEntropyBackwardGroup<SwitchOn>)
                : a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float>(IlgpuKernels.CrossEntropyBackwardGroup<SwitchOff>));
            Launch(opName, () => k(ConfigTree(rows, classes), lv, labv, gv, dv, rows, classes, scale), logits, labels, dLoss, dLogits);
        }
        else
        {
            var k = Kernel(ref kCrossEntropyBackward, a =>
                a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float>(IlgpuKernels.CrossEntropyBackward));
            Launch(opName, () => k(Config1D(rows), lv, labv, gv, dv, rows, classes, scale), logits, labels, dLoss, dLogits);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The loss and the gradient come from the kernel variant <see cref="CrossEntropy"/> and <see cref="Softmax"/> pick
    /// for the same extents (a thread or a group per row), with their arithmetic. Labels are not read back to be
    /// checked: as for <see cref="CrossEntropy"/> and <see cref="OneHot"/>, the op layer checks their range first.
    /// </remarks>
    void ISoftmaxCrossEntropyKernels.SoftmaxCrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes,
        DeviceBuffer<float> loss, DeviceBuffer<float> gradient)
    {
        const string opName = "SoftmaxCrossEntropy";
        if (rows < 0 || classes < 0) throw new ArgumentException($"{Name}.{opName}: negative extent [{rows}, {classes}].");
        if (rows > 0 && classes == 0) throw new ArgumentException($"{Name}.{opName}: {rows} rows of 0 classes have no label in range.");
        long count = (long)rows * classes;
        var lv = View(logits, count, opName, nameof(logits));
        var labv = View(labels, rows, opName, nameof(labels));
        var outv = View(loss, rows, opName, nameof(loss));
        var gv = View(gradient, count, opName, nameof(gradient));
        if (ReferenceEquals(loss, logits) || ReferenceEquals(loss, gradient))
            throw new ArgumentException($"{Name}.{opName}: the loss buffer must not be the logits' or the gradient's.");
        if (rows == 0) return;
        if (PreferTree(rows, classes))
        {
            var k = Kernel(ref kSoftmaxCrossEntropyGroup, a => shuffles
                ? a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.SoftmaxCrossEntropyGroup<SwitchOn>)
                : a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.SoftmaxCrossEntropyGroup<SwitchOff>));
            Launch(opName, () => k(ConfigTree(rows, classes), lv, labv, outv, gv, rows, classes), logits, labels, loss, gradient);
        }
        else
        {
            var k = Kernel(ref kSoftmaxCrossEntropy, a =>
                a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.SoftmaxCrossEntropy));
            Launch(opName, () => k(Config1D(rows), lv, labv, outv, gv, rows, classes), logits, labels, loss, gradient);
        }
    }

    /// <inheritdoc />
    public void OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y)
    {
        const string opName = "OneHot";
        if (rows < 0 || classes < 0) throw new ArgumentException($"{Name}.{opName}: negative extent [{rows}, {classes}].");
        long count = (long)rows * classes;
        var labv = View(labels, rows, opName, nameof(labels));
        var yv = View(y, count, opName, nameof(y));
        if (count == 0) return;
        var k = Kernel(ref kOneHot, a => a.LoadStreamKernel<ArrayView<int>, ArrayView<float>, int, long>(IlgpuKernels.OneHot));
        Launch(opName, () => k(Config1D(count), labv, yv, classes, count), labels, y);
    }

    /// <inheritdoc />
    public void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y) => Zip(new AxpyOp(alpha), x, y, y, "Axpy");
}
