using Engine.Kernels.Elementwise;
using ILGPU;

namespace Engine.Kernels.Ilgpu;

internal static partial class IlgpuKernels
{
    internal static void Fill(ArrayView<float> dst, float value)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride) dst[i] = value;
    }

    internal static void RandomUniform(ArrayView<float> dst, ulong seed, float low, float high)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride)
            dst[i] = CounterRng.Uniform(seed, (ulong)i, low, high);
    }

    internal static void RandomNormal(ArrayView<float> dst, ulong seed, float mean, float std)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride)
            dst[i] = CounterRng.Normal(seed, (ulong)i, mean, std);
    }

    /// <summary>y[i] = op(x[i]): one kernel per op struct type (ILGPU specialises the generic method per type argument).</summary>
    internal static void Unary<TOp>(ArrayView<float> x, ArrayView<float> y, TOp op) where TOp : unmanaged, IUnaryOp
    {
        for (long i = GlobalStart; i < x.Length; i += GlobalStride) y[i] = op.Scalar(x[i]);
    }

    /// <summary>y[i] = op(a[i], b[i]) over same-shape operands (y may be a or b).</summary>
    internal static void Zip<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, TOp op) where TOp : unmanaged, IBinaryOp
    {
        for (long i = GlobalStart; i < a.Length; i += GlobalStride) y[i] = op.Scalar(a[i], b[i]);
    }

    /// <summary>y[i] = op(a[offA(i)], b[offB(i)]) over <paramref name="count"/> outputs.</summary>
    internal static void Binary<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, long count, StridedLayout layout, TOp op)
        where TOp : unmanaged, IBinaryOp
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
        {
            var o = Offsets(i, layout);
            y[i] = op.Scalar(a[o.A], b[o.B]);
        }
    }

    /// <summary>
    /// y[i] = tree(x0, x1, x2, x3 at i), each input of y's length or of length 1 (a scalar, read at 0); one kernel per
    /// tree struct type. Inputs the tree does not read may be any views.
    /// </summary>
    internal static void Tree<TTree>(ArrayView<float> x0, ArrayView<float> x1, ArrayView<float> x2, ArrayView<float> x3, ArrayView<float> y, TTree tree)
        where TTree : unmanaged, ITreeOp
    {
        for (long i = GlobalStart; i < y.Length; i += GlobalStride)
            y[i] = tree.Scalar(x0[x0.Length == y.Length ? i : 0], x1[x1.Length == y.Length ? i : 0], x2[x2.Length == y.Length ? i : 0],
                x3[x3.Length == y.Length ? i : 0]);
    }

    /// <summary>
    /// y[i] = tree(x0, x1, x2, x3 at their offsets of i), each input read through broadcasting: inputs 0 and 1 at the
    /// A and B offsets of <paramref name="first"/>, inputs 2 and 3 at those of <paramref name="second"/> (stride 0 on a
    /// broadcast dim); one kernel per tree struct type.
    /// </summary>
    internal static void BroadcastTree<TTree>(ArrayView<float> x0, ArrayView<float> x1, ArrayView<float> x2, ArrayView<float> x3, ArrayView<float> y,
        StridedLayout first, StridedLayout second, TTree tree) where TTree : unmanaged, ITreeOp
    {
        for (long i = GlobalStart; i < y.Length; i += GlobalStride) y[i] = BroadcastTreeAt(x0, x1, x2, x3, first, second, tree, i);
    }

    /// <summary>The tree's value at element <paramref name="i"/>, its inputs read through the two layouts (see <see cref="BroadcastTree{TTree}"/>).</summary>
    internal static float BroadcastTreeAt<TTree>(ArrayView<float> x0, ArrayView<float> x1, ArrayView<float> x2, ArrayView<float> x3,
        StridedLayout first, StridedLayout second, TTree tree, long i) where TTree : unmanaged, ITreeOp
    {
        var o01 = Offsets(i, first);
        var o23 = Offsets(i, second);
        return tree.Scalar(x0[o01.A], x1[o01.B], x2[o23.A], x3[o23.B]);
    }

    /// <summary>y[i] = x[offA(i)]: broadcasting and permutation.</summary>
    internal static void Gather(ArrayView<float> x, ArrayView<float> y, long count, StridedLayout layout)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
            y[i] = x[Offsets(i, layout).A];
    }

    /// <summary>y[r, c] = labels[r] == c, over rows * classes outputs.</summary>
    internal static void OneHot(ArrayView<int> labels, ArrayView<float> y, int classes, long count)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
        {
            long r = i / classes;
            int c = (int)(i - r * classes);
            y[i] = labels[r] == c ? 1f : 0f;
        }
    }
}
