using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// A zero fill and the index-add into it in one launch, on kernel sets that implement <see cref="IIndexScatterKernels"/>.
/// Rule: a <see cref="IKernelSet.Fill"/> with +0 directly followed by an <see cref="IKernelSet.IndexAdd"/> whose y is
/// the filled buffer, whole (its shape holds the buffer's length), and whose source and index are other buffers,
/// becomes one <see cref="IIndexScatterKernels.IndexScatter"/> call with the same bits (the capability's contract).
/// Every index-add op of the autodiff layer starts so: an SPN's categorical leaf table with a fixed logit, an
/// operator's zero-padded spectrum, the backward of a gather.
/// </summary>
internal static class IndexScatterFusion
{
    private static readonly MethodInfo Scatter = typeof(IIndexScatterKernels).GetMethod(nameof(IIndexScatterKernels.IndexScatter))!;

    /// <summary><paramref name="ops"/> with every pair the rule takes as one call; <paramref name="fused"/>: the pairs taken.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, out int fused)
    {
        fused = 0;
        if (!KernelSetDecorator.Implements<IIndexScatterKernels>(kernels)) return ops;
        return AdjacentPairs.Rewrite(ops, (first, second) =>
            first is KernelCallOp fill && second is KernelCallOp add && Takes(fill, add) ? [new KernelCallOp(Scatter, add.Args)] : null, out fused);
    }

    private static bool Takes(KernelCallOp fill, KernelCallOp add)
    {
        if (!fill.IsCore(nameof(IKernelSet.Fill)) || !add.IsCore(nameof(IKernelSet.IndexAdd))) return false;
        if (fill.Args[1] is not float value || BitConverter.SingleToInt32Bits(value) != 0) return false;
        var (src, index, y, yShape) = (add.Args[0]!, add.Args[3]!, add.Args[4]!, (int[])add.Args[5]!);
        return ReferenceEquals(y, fill.Args[0]) && !ReferenceEquals(src, y) && !ReferenceEquals(index, y)
            && yShape.Aggregate(1L, (p, d) => p * d) == ((DeviceBuffer<float>)y).Length;
    }
}
