using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>A fused group of elementwise calls, replayed as one <see cref="IFusedElementwiseKernels"/> launch.</summary>
internal sealed class FusedOp : TraceOp
{
    /// <summary>A group of unary steps only: x in, y out.</summary>
    public FusedOp(List<KernelCallOp> calls)
    {
        Calls = calls.Count;
        Steps = calls.Select(Fusion.StepOf).ToList();
        Args = [Fusion.InputOf(calls[0]), Fusion.OutputOf(calls[^1])];
        foreach (var a in Args) ArgWalker.Collect(a, Buffers);
    }

    /// <summary>
    /// A group headed by a binary call: <paramref name="operandChain"/> (possibly empty) computes the operand
    /// <paramref name="operandIsA"/> names, the head combines, <paramref name="tail"/> continues.
    /// </summary>
    public FusedOp(List<KernelCallOp> operandChain, bool operandIsA, KernelCallOp head, List<KernelCallOp> tail)
    {
        Calls = operandChain.Count + 1 + tail.Count;
        Head = (BinaryOp)head.Args[0]!;
        var chain = operandChain.Select(Fusion.StepOf).ToList();
        ASteps = operandIsA ? chain : [];
        BSteps = operandIsA ? [] : chain;
        Steps = tail.Select(Fusion.StepOf).ToList();
        object? a = head.Args[1], b = head.Args[3];
        if (operandChain.Count > 0)
        {
            if (operandIsA) a = Fusion.InputOf(operandChain[0]);
            else b = Fusion.InputOf(operandChain[0]);
        }
        Args = [a, head.Args[2], b, head.Args[4], tail.Count > 0 ? Fusion.OutputOf(tail[^1]) : head.Args[5], head.Args[6]];
        foreach (var arg in Args) ArgWalker.Collect(arg, Buffers);
    }

    /// <summary>The binary op of a binary-headed group, or null for a unary group.</summary>
    public BinaryOp? Head { get; }

    /// <summary>The unary group's steps, or the binary group's tail.</summary>
    public List<UnaryStep> Steps { get; }

    /// <summary>Steps applied to operand a (b) as it is read, in a binary group.</summary>
    public List<UnaryStep> ASteps { get; } = [];

    /// <inheritdoc cref="ASteps"/>
    public List<UnaryStep> BSteps { get; } = [];

    /// <summary>Kernel calls the group replaces.</summary>
    public int Calls { get; }

    /// <summary>(x, y) for a unary group, (a, aShape, b, bShape, y, yShape) for a binary one.</summary>
    public object?[] Args { get; }

    public override string Name
    {
        get
        {
            if (Head is not { } head) return "Fused[" + string.Join(" -> ", Steps) + "]";
            string Operand(string name, List<UnaryStep> steps) => steps.Count == 0 ? "" : $" {name}={string.Join(" -> ", steps)}";
            return "Fused[Binary " + head + Operand("a", ASteps) + Operand("b", BSteps) + string.Concat(Steps.Select(s => " -> " + s)) + "]";
        }
    }

    /// <summary>Runs the group with <paramref name="args"/> (this group's <see cref="Args"/>, rebound) as one launch.</summary>
    public void Run(IFusedElementwiseKernels kernels, object?[] args)
    {
        if (Head is { } head)
            kernels.BinaryChain(ASteps, head, BSteps, Steps, (DeviceBuffer<float>)args[0]!, (int[])args[1]!, (DeviceBuffer<float>)args[2]!, (int[])args[3]!,
                (DeviceBuffer<float>)args[4]!, (int[])args[5]!);
        else
            kernels.UnaryChain(Steps, (DeviceBuffer<float>)args[0]!, (DeviceBuffer<float>)args[1]!);
    }
}

/// <summary>
/// The fusion pass. Unary steps are <see cref="IKernelSet.Unary"/> and <see cref="IKernelSet.Affine"/> calls. Rule, over
/// the calls in program order: a call <i>continues</i> the group before it when it is a unary step reading the group's
/// output, that output is a temporary of the traced call touched by no other operation (its writer and this reader
/// only), and the call does not write into one of the group's inputs. A group starts at a unary step or a
/// <see cref="IKernelSet.Binary"/> call and takes every call that continues it. A group of unary steps only that is
/// followed by a binary call reading its output as exactly one operand, unbroadcast (the operand's shape is the
/// result's), under the same conditions, becomes that operand's chain: the binary call heads the group, which
/// continues with the unary steps after it. A group of two or more calls becomes one launch of the composed op
/// (operand chain, binary op, unary steps), and its intermediates disappear from the memory plan. GEMMs, reductions,
/// copies and capability calls end a group.
/// </summary>
internal static class Fusion
{
    /// <summary><paramref name="ops"/> with every group of the rule replaced by one <see cref="FusedOp"/>.</summary>
    public static List<TraceOp> Fuse(List<TraceOp> ops, Func<object, bool> isTemporary)
    {
        var users = TraceBuffers.Users(ops);
        bool Private(object output) => isTemporary(output) && users[output] == 2;

        var result = new List<TraceOp>(ops.Count);
        int i = 0;
        while (i < ops.Count)
        {
            if (ops[i] is not KernelCallOp first || !(IsUnaryStep(first) || IsBinary(first)))
            {
                result.Add(ops[i++]);
                continue;
            }
            var chain = new List<KernelCallOp>();
            KernelCallOp? head = null;
            bool operandIsA = false;
            if (IsUnaryStep(first))
            {
                chain.Add(first);
                chain.AddRange(Continuation(ops, i + 1, OutputOf(first), [InputOf(first)], Private));
                int next = i + chain.Count;
                var output = OutputOf(chain[^1]);
                if (next < ops.Count && ops[next] is KernelCallOp binary && IsBinary(binary) && Private(output)
                    && OperandSlot(binary, output) is { } isA)
                {
                    head = binary;
                    operandIsA = isA;
                }
            }
            else
            {
                head = first;
            }
            if (head == null)
            {
                result.Add(chain.Count == 1 ? chain[0] : new FusedOp(chain));
                i += chain.Count;
                continue;
            }
            int at = i + chain.Count + 1;
            var inputs = new List<object> { head.Args[1]!, head.Args[3]! };
            if (chain.Count > 0) inputs.Add(InputOf(chain[0]));
            var tail = Continuation(ops, at, head.Args[5]!, inputs, Private);
            result.Add(chain.Count + tail.Count == 0 ? head : new FusedOp(chain, operandIsA, head, tail));
            i = at + tail.Count;
        }
        return result;
    }

    /// <summary>The unary steps from <paramref name="start"/> on that continue a group whose output is <paramref name="output"/>.</summary>
    private static List<KernelCallOp> Continuation(List<TraceOp> ops, int start, object output, List<object> inputs, Func<object, bool> isPrivate)
    {
        var taken = new List<KernelCallOp>();
        while (start + taken.Count < ops.Count && ops[start + taken.Count] is KernelCallOp next && IsUnaryStep(next)
               && ReferenceEquals(InputOf(next), output) && isPrivate(output) && !inputs.Any(b => ReferenceEquals(b, OutputOf(next))))
        {
            taken.Add(next);
            output = OutputOf(next);
        }
        return taken;
    }

    /// <summary>True when <paramref name="operand"/> is a (not b), false when b, null when neither, both, or broadcast.</summary>
    private static bool? OperandSlot(KernelCallOp binary, object operand)
    {
        bool isA = ReferenceEquals(binary.Args[1], operand), isB = ReferenceEquals(binary.Args[3], operand);
        if (isA == isB) return null;
        var shape = (int[])binary.Args[isA ? 2 : 4]!;
        return shape.AsSpan().SequenceEqual((int[])binary.Args[6]!) ? isA : null;
    }

    private static bool IsUnaryStep(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Unary)) || op.IsCore(nameof(IKernelSet.Affine));

    private static bool IsBinary(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Binary));

    /// <summary>The step a unary or affine call applies.</summary>
    public static UnaryStep StepOf(KernelCallOp op) =>
        op.IsCore(nameof(IKernelSet.Affine)) ? UnaryStep.Affine((float)op.Args[2]!, (float)op.Args[3]!) : (UnaryStep)(UnaryOp)op.Args[0]!;

    /// <summary>The buffer a unary step reads.</summary>
    public static object InputOf(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Affine)) ? op.Args[0]! : op.Args[1]!;

    /// <summary>The buffer a unary step writes.</summary>
    public static object OutputOf(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Affine)) ? op.Args[1]! : op.Args[2]!;
}
