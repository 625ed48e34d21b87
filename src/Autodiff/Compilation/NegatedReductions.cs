using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// A negated sum or mean computed as the sum or mean of the negated input, so that the negation fuses into the
/// reduction's launch (<see cref="Fusion"/>) instead of launching on its own. Rule: a <see cref="IKernelSet.Reduce"/>
/// with <see cref="ReduceOp.Sum"/> or <see cref="ReduceOp.Mean"/> directly followed by a
/// <see cref="IKernelSet.Unary"/> <see cref="UnaryOp.Neg"/> of its result, where the result is a planned temporary that
/// nothing else touches and the negation writes elsewhere, becomes the negation of the input into a new temporary and
/// the reduction of that into the negation's output. Exact: round-to-nearest is symmetric, so every partial sum of the
/// negated values, and the division of a mean, is the negation of the original's, bit for bit. A negative
/// log-likelihood's <c>-logp.Mean()</c> then runs as one launch.
/// </summary>
internal static class NegatedReductions
{
    private static readonly MethodInfo Unary = typeof(IKernelSet).GetMethod(nameof(IKernelSet.Unary))!;
    private static readonly MethodInfo Reduce = typeof(IKernelSet).GetMethod(nameof(IKernelSet.Reduce))!;

    /// <summary><paramref name="ops"/> with every pair the rule takes reordered; <paramref name="moved"/>: the negations moved.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, Func<object, bool> isPlanned, Func<DeviceBuffer<float>, DeviceBuffer<float>> newTemporary,
        out int moved)
    {
        var users = TraceBuffers.Users(ops);
        return AdjacentPairs.Rewrite(ops, (first, second) =>
        {
            if (first is not KernelCallOp reduce || second is not KernelCallOp negate || !Takes(reduce, negate, isPlanned, users)) return null;
            var x = (DeviceBuffer<float>)reduce.Args[1]!;
            var negated = newTemporary(x);
            return [new KernelCallOp(Unary, [UnaryOp.Neg, x, negated]),
                new KernelCallOp(Reduce, [reduce.Args[0], negated, reduce.Args[2], reduce.Args[3], negate.Args[2]])];
        }, out moved);
    }

    private static bool Takes(KernelCallOp reduce, KernelCallOp negate, Func<object, bool> isPlanned, Dictionary<object, int> users)
    {
        if (!reduce.IsCore(nameof(IKernelSet.Reduce)) || reduce.Args[0] is not (ReduceOp.Sum or ReduceOp.Mean)) return false;
        if (!negate.IsCore(nameof(IKernelSet.Unary)) || negate.Args[0] is not UnaryOp.Neg) return false;
        object r = reduce.Args[4]!, y = negate.Args[2]!;
        return ReferenceEquals(negate.Args[1], r) && !ReferenceEquals(y, r) && !ReferenceEquals(y, reduce.Args[1])
            && isPlanned(r) && users.GetValueOrDefault(r) == 2;
    }
}
