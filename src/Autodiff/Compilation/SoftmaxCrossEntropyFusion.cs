using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Softmax cross-entropy with its gradient in one launch. Rule: a <see cref="IKernelSet.CrossEntropy"/> of logits L and
/// labels Y into loss rows R, followed (in either order, at any distance) by a <see cref="IKernelSet.OneHot"/> of Y
/// into H and a <see cref="IKernelSet.Softmax"/> of L over its last axis (not in log space) into P, and then by the
/// <see cref="BinaryOp.Sub"/> P - H into D at the full [rows, classes] shape, becomes one
/// <see cref="ISoftmaxCrossEntropyKernels.SoftmaxCrossEntropy"/> of L and Y into R and D at the cross-entropy's place,
/// on kernel sets that implement it. H and P (unless P is D) must be temporaries only those calls touch; between the
/// cross-entropy and the difference no call may write L or Y or touch D, and no host step may run, so moving D's
/// value to the cross-entropy's place changes nothing any call sees. This is the composite gradient of
/// <see cref="Ops.CrossEntropy(Tensor, IndexTensor)"/> on sets without a fused one (the CPU set's backward runs one-hot,
/// softmax and the difference as three passes): a training step launches two kernels fewer and reads the logits once,
/// with the same bits (the capability's contract).
/// </summary>
internal static class SoftmaxCrossEntropyFusion
{
    private static readonly MethodInfo Fused = typeof(ISoftmaxCrossEntropyKernels).GetMethod(nameof(ISoftmaxCrossEntropyKernels.SoftmaxCrossEntropy))!;

    /// <summary><paramref name="ops"/> with every match of the rule merged; <paramref name="fused"/> counts the matches.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, Func<object, bool> isTemporary, out int fused)
    {
        fused = 0;
        if (!KernelSetDecorator.Implements<ISoftmaxCrossEntropyKernels>(kernels)) return ops;
        var users = TraceBuffers.Users(ops);
        var result = new List<TraceOp>(ops);
        for (int i = 0; i < result.Count; i++)
        {
            if (result[i] is not KernelCallOp ce || !ce.IsCore(nameof(IKernelSet.CrossEntropy)) || Match(result, i, isTemporary, users) is not { } m)
                continue;
            var a = ce.Args;
            result[i] = new KernelCallOp(Fused, [a[0], a[1], a[2], a[3], a[4], m.Gradient]);
            // Later indices first, so the earlier ones stay valid.
            foreach (int index in new[] { m.OneHot, m.Softmax, m.Difference }.OrderDescending()) result.RemoveAt(index);
            fused++;
        }
        return result;
    }

    /// <summary>Where a cross-entropy's one-hot, softmax and difference are, and the difference's output.</summary>
    private readonly record struct Found(int OneHot, int Softmax, int Difference, object Gradient);

    /// <summary>The calls the rule merges into the cross-entropy at <paramref name="at"/>, or null.</summary>
    private static Found? Match(List<TraceOp> ops, int at, Func<object, bool> isTemporary, Dictionary<object, int> users)
    {
        var ce = (KernelCallOp)ops[at];
        object logits = ce.Args[0]!, labels = ce.Args[1]!;
        int rows = (int)ce.Args[2]!, classes = (int)ce.Args[3]!;
        int[] full = [rows, classes];
        int oneHot = -1, softmax = -1;
        object? h = null, p = null;
        var between = new List<TraceOp>();
        for (int j = at + 1; j < ops.Count; j++)
        {
            var op = ops[j];
            if (op is HostStepOp) return null;
            if (op is KernelCallOp call)
            {
                var a = call.Args;
                if (oneHot < 0 && call.IsCore(nameof(IKernelSet.OneHot)) && ReferenceEquals(a[0], labels) && (int)a[1]! == rows && (int)a[2]! == classes)
                {
                    oneHot = j;
                    h = a[3];
                    continue;
                }
                if (softmax < 0 && call.IsCore(nameof(IKernelSet.Softmax)) && ReferenceEquals(a[0], logits) && !ReferenceEquals(a[1], logits)
                    && (int)a[2]! == rows && (int)a[3]! == classes && (int)a[4]! == 1 && !(bool)a[5]!)
                {
                    softmax = j;
                    p = a[1];
                    continue;
                }
                if (h != null && p != null && call.IsCore(nameof(IKernelSet.Binary)) && (BinaryOp)a[0]! == BinaryOp.Sub
                    && ReferenceEquals(a[1], p) && ReferenceEquals(a[3], h)
                    && Shape.Equal((int[])a[2]!, full) && Shape.Equal((int[])a[4]!, full) && Shape.Equal((int[])a[6]!, full))
                {
                    var d = a[5]!;
                    bool valuesPrivate = isTemporary(h) && users[h] == 2 && !ReferenceEquals(h, d)
                        && (ReferenceEquals(p, d) || (isTemporary(p) && users[p] == 2));
                    // D's value now exists from the cross-entropy's place on: nothing in between may see the buffer, and it
                    // may be neither input (the calls between read L) nor the loss rows.
                    if (!valuesPrivate || between.Any(o => TraceBuffers.Touches(o, d))
                        || ReferenceEquals(d, logits) || ReferenceEquals(d, ce.Args[4])) return null;
                    return new Found(oneHot, softmax, j, d);
                }
            }
            var writes = TraceBuffers.Writes(op);
            if (writes.Any(b => ReferenceEquals(b, logits) || ReferenceEquals(b, labels))) return null;
            between.Add(op);
        }
        return null;
    }
}
