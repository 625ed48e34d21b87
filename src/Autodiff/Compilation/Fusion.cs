using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>A fused group of elementwise calls, replayed as one <see cref="IFusedElementwiseKernels"/> launch.</summary>
internal sealed class FusedOp : TraceOp
{
    public FusedOp(KernelCallOp head, List<KernelCallOp> tail)
    {
        Head = head;
        Tail = tail.Select(t => (UnaryOp)t.Args[0]!).ToList();
        // Inputs of the head and the last call's output: the intermediates vanish with the group.
        var last = tail[^1];
        Args = head.Method.Name == nameof(IKernelSet.Unary)
            ? [head.Args[1], last.Args[2]]
            : [head.Args[1], head.Args[2], head.Args[3], head.Args[4], last.Args[2], head.Args[6]];
        foreach (var a in Args) ArgWalker.Collect(a, Buffers);
    }

    public KernelCallOp Head { get; }

    public List<UnaryOp> Tail { get; }

    /// <summary>(x, y) for a unary head, (a, aShape, b, bShape, y, yShape) for a binary one.</summary>
    public object?[] Args { get; }

    public bool BinaryHead => Head.Method.Name == nameof(IKernelSet.Binary);

    public override string Name => "Fused[" + Head.Name + " " + Head.Args[0] + " -> " + string.Join(" -> ", Tail) + "]";

    /// <summary>Runs the group with <paramref name="args"/> (this group's <see cref="Args"/>, rebound) as one launch.</summary>
    public void Run(IFusedElementwiseKernels kernels, object?[] args)
    {
        if (BinaryHead)
            kernels.BinaryChain((BinaryOp)Head.Args[0]!, Tail, (DeviceBuffer<float>)args[0]!, (int[])args[1]!, (DeviceBuffer<float>)args[2]!, (int[])args[3]!,
                (DeviceBuffer<float>)args[4]!, (int[])args[5]!);
        else
            kernels.UnaryChain([(UnaryOp)Head.Args[0]!, .. Tail], (DeviceBuffer<float>)args[0]!, (DeviceBuffer<float>)args[1]!);
    }
}

/// <summary>
/// The fusion pass. Rule: a group is a <see cref="IKernelSet.Unary"/> or <see cref="IKernelSet.Binary"/> call followed
/// by the <see cref="IKernelSet.Unary"/> calls that come right after it in program order, each reading the output of
/// the call before it, where that output is a temporary of the traced call that no other operation touches and the
/// next call does not write into one of the group's inputs. A group of two or more calls becomes one launch of the
/// composed op (the head's binary op, then the unary ops in order); every intermediate disappears from the memory
/// plan. Affine, reductions, GEMMs, copies and capability calls end a group.
/// </summary>
internal static class Fusion
{
    /// <summary><paramref name="ops"/> with every group of the rule replaced by one <see cref="FusedOp"/>.</summary>
    public static List<TraceOp> Fuse(List<TraceOp> ops, Func<object, bool> isTemporary)
    {
        var users = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        foreach (var op in ops)
            foreach (var b in op.Buffers.Distinct(ReferenceEqualityComparer.Instance))
                users[b!] = users.GetValueOrDefault(b!) + 1;
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            if (ops[i] is not KernelCallOp head || !IsElementwise(head))
            {
                result.Add(ops[i]);
                continue;
            }
            var inputs = head.Buffers.Take(head.Buffers.Count - 1).ToList();
            var tail = new List<KernelCallOp>();
            var output = Output(head);
            while (i + 1 + tail.Count < ops.Count && ops[i + 1 + tail.Count] is KernelCallOp next && IsUnary(next)
                   && ReferenceEquals(next.Args[1], output) && isTemporary(output) && users[output] == 2
                   && !inputs.Any(b => ReferenceEquals(b, next.Args[2])))
            {
                tail.Add(next);
                output = Output(next);
            }
            if (tail.Count == 0) result.Add(head);
            else result.Add(new FusedOp(head, tail));
            i += tail.Count;
        }
        return result;
    }

    private static bool IsUnary(KernelCallOp op) => op.Method.DeclaringType == typeof(IKernelSet) && op.Method.Name == nameof(IKernelSet.Unary);

    private static bool IsElementwise(KernelCallOp op) =>
        IsUnary(op) || (op.Method.DeclaringType == typeof(IKernelSet) && op.Method.Name == nameof(IKernelSet.Binary));

    private static object Output(KernelCallOp op) => IsUnary(op) ? op.Args[2]! : op.Args[5]!;
}
