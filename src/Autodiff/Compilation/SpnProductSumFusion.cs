using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// An SPN product layer and the sum layer that reads it in one launch, on kernel sets that implement
/// <see cref="ISpnProductSumKernels"/>. Rule: an <see cref="ISpnKernels.SpnProduct"/> directly followed by an
/// <see cref="ISpnKernels.SpnSum"/> whose input is the product's output, over the same batch, with the sum's inputs
/// whole partitions of the product (its KIn a multiple of k1·k2, the product's regions the sum's times
/// KIn / (k1·k2)), its output none of the products, children and weights, and the products none of the children and
/// weights, becomes one
/// <see cref="ISpnProductSumKernels.SpnProductSum"/> call, with the bits of the two (the capability's contract). The
/// products are still stored when anything else reads them (a training step's sum backward does); when they are a
/// planned temporary only the sum reads (a forward pass), they are not stored at all.
/// </summary>
internal static class SpnProductSumFusion
{
    private static readonly MethodInfo Fused = typeof(ISpnProductSumKernels).GetMethod(nameof(ISpnProductSumKernels.SpnProductSum))!;

    /// <summary><paramref name="ops"/> with every pair the rule takes as one call; <paramref name="fused"/>: the pairs taken.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, Func<object, bool> isPlanned, out int fused)
    {
        fused = 0;
        if (!KernelSetDecorator.Implements<ISpnProductSumKernels>(kernels)) return ops;
        var users = TraceBuffers.Users(ops);
        return AdjacentPairs.Rewrite(ops, (first, second) => Combine(first, second, isPlanned, users) is { } combined ? [combined] : null, out fused);
    }

    private static KernelCallOp? Combine(TraceOp first, TraceOp second, Func<object, bool> isPlanned, Dictionary<object, int> users)
    {
        if (!IsSpn(first, nameof(ISpnKernels.SpnProduct), out var product) || !IsSpn(second, nameof(ISpnKernels.SpnSum), out var sum)) return null;
        var (a, k1, b, k2, batch, map, products) = (product.Args[0]!, (int)product.Args[1]!, product.Args[2]!, (int)product.Args[3]!, (int)product.Args[4]!,
            (SpnProductMap)product.Args[5]!, product.Args[6]!);
        var (x, logW, size, max, y) = (sum.Args[0]!, sum.Args[1]!, (SpnSumSize)sum.Args[2]!, (bool)sum.Args[3]!, sum.Args[4]!);
        long kk = (long)k1 * k2;
        if (!ReferenceEquals(x, products) || size.Batch != batch || k1 < 1 || k2 < 1 || size.KIn % kk != 0 || (long)map.Regions * kk != (long)size.Regions * size.KIn)
            return null;
        // The fused call's aliasing rules (SpnProductSumCall.Check): y and the products each need a buffer of their own.
        if (new[] { products, a, b, logW }.Any(other => ReferenceEquals(y, other)) || new[] { a, b, logW }.Any(other => ReferenceEquals(products, other)))
            return null;
        bool stored = !isPlanned(products) || users.GetValueOrDefault(products) > 2;
        return new KernelCallOp(Fused, [a, k1, b, k2, map, logW, size, max, stored ? products : null, y]);
    }

    private static bool IsSpn(TraceOp op, string name, out KernelCallOp call)
    {
        call = (op as KernelCallOp)!;
        return call != null && call.Method.DeclaringType == typeof(ISpnKernels) && call.Method.Name == name;
    }
}
