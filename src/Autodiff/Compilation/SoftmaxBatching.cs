using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Independent softmaxes in one launch (a horizontal fusion), on kernel sets that implement
/// <see cref="ISoftmaxBatchKernels"/>. Rule, over the program in order: a <see cref="IKernelSet.Softmax"/> call joins
/// the batch of the first softmax since the last host step when it can run at that softmax's place: no call from there
/// to it (the batch's members included) writes its input or touches its output. A batch of two or more becomes one
/// <see cref="ISoftmaxBatchKernels.Softmaxes"/> call at its first member's place, each result with the bits of its own
/// call (the capability's contract); a softmax that cannot join starts the next batch. The log-normalisations of an
/// SPN's sum-layer weights and of its leaf table, which read parameters and nothing the step computes before them,
/// become one launch.
/// </summary>
internal static class SoftmaxBatching
{
    private static readonly MethodInfo Batched = typeof(ISoftmaxBatchKernels).GetMethod(nameof(ISoftmaxBatchKernels.Softmaxes))!;

    /// <summary><paramref name="ops"/> with every batch of the rule as one call; <paramref name="batched"/>: the softmaxes in batches.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, out int batched)
    {
        batched = 0;
        if (!KernelSetDecorator.Implements<ISoftmaxBatchKernels>(kernels)) return ops;
        var batches = new Dictionary<int, List<int>>();
        var joined = new bool[ops.Count];
        int open = -1;
        for (int i = 0; i < ops.Count; i++)
        {
            if (ops[i] is HostStepOp) open = -1;
            if (!IsSoftmax(ops[i])) continue;
            if (open >= 0 && CanRunAt(ops, open, i))
            {
                batches[open].Add(i);
                joined[i] = true;
                continue;
            }
            open = i;
            batches[i] = [i];
        }
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            if (joined[i]) continue;
            if (batches.TryGetValue(i, out var members) && members.Count > 1)
            {
                var calls = members.Select(m => ((KernelCallOp)ops[m]).Args).Select(a =>
                    new SoftmaxCall((DeviceBuffer<float>)a[0]!, (DeviceBuffer<float>)a[1]!, (int)a[2]!, (int)a[3]!, (int)a[4]!, (bool)a[5]!)).ToList();
                result.Add(new KernelCallOp(Batched, [calls]));
                batched += members.Count;
                continue;
            }
            result.Add(ops[i]);
        }
        return result;
    }

    private static bool IsSoftmax(TraceOp op) => op is KernelCallOp call && call.IsCore(nameof(IKernelSet.Softmax));

    /// <summary>True when nothing from <paramref name="at"/> up to the softmax at <paramref name="softmax"/> writes its input or touches its output.</summary>
    private static bool CanRunAt(List<TraceOp> ops, int at, int softmax)
    {
        var call = (KernelCallOp)ops[softmax];
        object x = call.Args[0]!, y = call.Args[1]!;
        for (int j = at; j < softmax; j++)
            if (TraceBuffers.Touches(ops[j], y) || TraceBuffers.Writes(ops[j]).Any(b => ReferenceEquals(b, x))) return false;
        return true;
    }
}
