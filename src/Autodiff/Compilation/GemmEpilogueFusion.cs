using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Residual and activation epilogues, on kernel sets that run them (<see cref="IGemmEpilogueKernels"/>). Both rules
/// start from a <see cref="IKernelSet.Gemm"/> that overwrites the whole buffer C with its matrices
/// (<see cref="GemmBiasFusion.StoresWholeBuffer"/>), its bias already folded or not, and take only the calls right
/// after it:
/// <list type="bullet">
/// <item><b>Residual</b>: the next call is a <see cref="BinaryOp.Add"/> of C and a buffer R of the same shape (no
/// broadcasting) into y, and C is a temporary only these two calls touch: the product adds R as it stores into y
/// (the Mixer's and the ResNets' skip connections).</item>
/// <item><b>Activation</b>: the next calls are a chain of <see cref="IKernelSet.Unary"/> and
/// <see cref="IKernelSet.Affine"/> calls over whole buffers, the first reading C, each next one reading the output of
/// the one before, every output but the last a temporary only its writer and its reader touch: the product applies
/// the chain as it stores and writes its result into the last output y. C keeps the pre-activation when anything
/// else reads it (the activation's backward does in training); when C is a temporary only the product and the chain
/// touch, the product writes y alone.</item>
/// </list>
/// The residual rule runs first, so a product followed by a skip connection and then an activation takes both. No
/// output may be a buffer the product reads (its operands, bias or residual). Each element is rounded as the separate
/// calls round it, so results keep eager's bits.
/// </summary>
internal static class GemmEpilogueFusion
{
    /// <summary><paramref name="ops"/> with every fold of the rules made; the counts say how many of each.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, Func<object, bool> isTemporary, out int residuals, out int activations)
    {
        residuals = activations = 0;
        if (kernels is not IGemmEpilogueKernels epilogues) return ops;
        var users = TraceBuffers.Users(ops);
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count;)
        {
            if (ops[i] is not KernelCallOp gemm || !gemm.IsCore(nameof(IKernelSet.Gemm))
                || !GemmBiasFusion.StoresWholeBuffer((GemmSize)gemm.Args[0]!, (GemmOutput)gemm.Args[3]!))
            {
                result.Add(ops[i++]);
                continue;
            }
            int next = i + 1;
            if (next < ops.Count && FoldResidual(gemm, ops[next], epilogues, isTemporary, users) is { } withResidual)
            {
                gemm = withResidual;
                residuals++;
                next++;
            }
            if (FoldActivation(gemm, ops, next, epilogues, isTemporary, users, out int taken) is { } withActivation)
            {
                gemm = withActivation;
                activations++;
                next += taken;
            }
            result.Add(gemm);
            i = next;
        }
        return result;
    }

    private static KernelCallOp? FoldResidual(KernelCallOp gemm, TraceOp second, IGemmEpilogueKernels epilogues, Func<object, bool> isTemporary,
        Dictionary<object, int> users)
    {
        var c = (GemmOutput)gemm.Args[3]!;
        if (second is not KernelCallOp add || !add.IsCore(nameof(IKernelSet.Binary)) || (BinaryOp)add.Args[0]! != BinaryOp.Add) return null;
        if (c.Epilogue.Residual != null || c.Epilogue.Activation != null || !isTemporary(c.Buffer) || users[c.Buffer] != 2) return null;
        if (!epilogues.RunsGemmEpilogue(bias: c.Epilogue.Bias != null, residual: true)) return null;
        bool isA = ReferenceEquals(add.Args[1], c.Buffer), isB = ReferenceEquals(add.Args[3], c.Buffer);
        if (isA == isB || add.Args[isA ? 3 : 1] is not DeviceBuffer<float> residual || add.Args[5] is not DeviceBuffer<float> y) return null;
        var (aShape, bShape, yShape) = ((int[])add.Args[2]!, (int[])add.Args[4]!, (int[])add.Args[6]!);
        if (!aShape.AsSpan().SequenceEqual(bShape) || !aShape.AsSpan().SequenceEqual(yShape)
            || residual.Length != c.Buffer.Length || y.Length != c.Buffer.Length || ReadsOf(gemm).Append(residual).Any(b => ReferenceEquals(b, y)))
            return null;
        return With(gemm, c with { Buffer = y, Epilogue = c.Epilogue with { Residual = residual } });
    }

    private static KernelCallOp? FoldActivation(KernelCallOp gemm, List<TraceOp> ops, int first, IGemmEpilogueKernels epilogues,
        Func<object, bool> isTemporary, Dictionary<object, int> users, out int taken)
    {
        taken = 0;
        var c = (GemmOutput)gemm.Args[3]!;
        if (c.Epilogue.Activation != null) return null;
        var steps = new List<UnaryStep>();
        object input = c.Buffer;
        DeviceBuffer<float>? output = null;
        for (int j = first; j < ops.Count && Step(ops[j]) is (UnaryStep step, object x, DeviceBuffer<float> y) && ReferenceEquals(x, input); j++)
        {
            // Every buffer of the chain is new: an output read back by the product or written twice cannot fold.
            bool fresh = y.Length == c.Buffer.Length && !ReferenceEquals(y, c.Buffer) && !ReadsOf(gemm).Any(b => ReferenceEquals(b, y));
            if (!fresh || (output != null && (!isTemporary(output) || users[output] != 2))) break;
            steps.Add(step);
            input = output = y;
        }
        if (output == null || !epilogues.RunsGemmEpilogue(bias: c.Epilogue.Bias != null, residual: c.Epilogue.Residual != null, activation: steps))
            return null;
        taken = steps.Count;
        bool preActivationRead = !isTemporary(c.Buffer) || users[c.Buffer] != 2;
        var epilogue = c.Epilogue with { Activation = steps.ToArray(), ActivationOutput = preActivationRead ? output : null };
        return With(gemm, c with { Buffer = preActivationRead ? c.Buffer : output, Epilogue = epilogue });
    }

    /// <summary>The step of a whole-buffer unary or affine call, with its input and output; null for any other call.</summary>
    private static (UnaryStep Step, object X, DeviceBuffer<float> Y)? Step(TraceOp op) => op switch
    {
        KernelCallOp u when u.IsCore(nameof(IKernelSet.Unary)) && u.Args[2] is DeviceBuffer<float> y && !ReferenceEquals(u.Args[1], y) =>
            ((UnaryOp)u.Args[0]!, u.Args[1]!, y),
        KernelCallOp a when a.IsCore(nameof(IKernelSet.Affine)) && a.Args[1] is DeviceBuffer<float> y && !ReferenceEquals(a.Args[0], y) =>
            (UnaryStep.Affine((float)a.Args[2]!, (float)a.Args[3]!), a.Args[0]!, y),
        _ => null,
    };

    /// <summary>The buffers the product reads: its operands (and their maps), its bias and its residual.</summary>
    internal static IEnumerable<object> ReadsOf(KernelCallOp gemm)
    {
        var (a, b, c) = ((GemmOperand)gemm.Args[1]!, (GemmOperand)gemm.Args[2]!, (GemmOutput)gemm.Args[3]!);
        return new object?[] { a.Buffer, a.Index, b.Buffer, b.Index, c.Epilogue.Bias, c.Epilogue.Residual }.OfType<object>();
    }

    internal static KernelCallOp With(KernelCallOp gemm, GemmOutput output) =>
        new(gemm.Method, [gemm.Args[0], gemm.Args[1], gemm.Args[2], output]) { ScratchAllocations = gemm.ScratchAllocations };
}

/// <summary>
/// Tree epilogues, after fusion, on kernel sets that run them (<see cref="IGemmEpilogueKernels.RunsGemmTree"/>). Rule:
/// a <see cref="IKernelSet.Gemm"/> that overwrites the whole buffer C (<see cref="GemmBiasFusion.StoresWholeBuffer"/>),
/// with no activation output and no tree step yet, whose C is a temporary that only the product and one later fused
/// elementwise tree touch, takes that tree as its epilogue's last step when each of the tree's other inputs holds C's
/// element count (read at C's element's position) or one element (a scalar), its output y holds C's element count and
/// is neither one of the product's reads (operands, maps, bias, residual) nor one of the tree's other inputs (the
/// product accumulates into its output before the step reads them), and no call between the two touches y, writes
/// one of the tree's inputs, or is a host step. The product then writes y, and the tree's launch is gone. A tree with
/// its reduction (not a sibling pair) folds the same way and leaves the reduction, a <see cref="IKernelSet.Reduce"/>
/// of y in its place (of C, when the group did not store y), one launch as before but with the tree's inputs no longer
/// read back from memory. So the gradient of an activation is applied as the backward product that computes the
/// gradient it scales stores its blocks, while they are in cache. Each element is rounded as the separate calls round
/// it, and the reduction reads the values the fused group reduced in the same order, so results keep their bits.
/// </summary>
internal static class GemmTreeFusion
{
    private static readonly System.Reflection.MethodInfo Reduce = typeof(IKernelSet).GetMethod(nameof(IKernelSet.Reduce))!;

    /// <summary>
    /// <paramref name="ops"/> with every fold of the rule made; <paramref name="folded"/> counts them,
    /// <paramref name="calls"/> the calls of the folded groups that no longer launch, and <paramref name="reductionsLeft"/>
    /// the folded groups whose reduction stays as a plain reduce (one that no longer computes its input's tree).
    /// </summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, Func<object, bool> isTemporary, out int folded, out int calls,
        out int reductionsLeft)
    {
        folded = calls = reductionsLeft = 0;
        if (kernels is not IGemmEpilogueKernels epilogues) return ops;
        var users = TraceBuffers.Users(ops);
        var result = new List<TraceOp?>(ops);
        for (int i = 0; i < result.Count; i++)
        {
            if (result[i] is not KernelCallOp gemm || !gemm.IsCore(nameof(IKernelSet.Gemm))) continue;
            var (size, c) = ((GemmSize)gemm.Args[0]!, (GemmOutput)gemm.Args[3]!);
            if (!GemmBiasFusion.StoresWholeBuffer(size, c) || c.Epilogue.ActivationOutput != null || c.Epilogue.Tree != null
                || !isTemporary(c.Buffer) || users[c.Buffer] != 2)
                continue;
            int j = i + 1;
            while (j < result.Count && (result[j] is not { } op || !TraceBuffers.Touches(op, c.Buffer))) j++;
            if (j == result.Count || result[j] is not FusedOp group || Step(group, c.Buffer, epilogues) is not { } fold) continue;
            var (step, y, reduction) = fold;
            var treeInputs = step.Inputs.OfType<DeviceBuffer<float>>().ToList();
            if (GemmEpilogueFusion.ReadsOf(gemm).Concat(treeInputs).Any(b => ReferenceEquals(b, y))) continue;
            bool Blocks(TraceOp? between) => between is HostStepOp
                || between != null && (TraceBuffers.Touches(between, y) || TraceBuffers.Writes(between).Any(w => treeInputs.Any(t => ReferenceEquals(t, w))));
            if (result.Skip(i + 1).Take(j - i - 1).Any(Blocks)) continue;
            result[i] = GemmEpilogueFusion.With(gemm, c with { Buffer = y, Epilogue = c.Epilogue with { Tree = step } });
            result[j] = reduction;
            folded++;
            calls += group.Calls - (reduction == null ? 0 : 1);
            if (reduction != null) reductionsLeft++;
        }
        return result.OfType<TraceOp>().ToList();
    }

    /// <summary>
    /// The tree step of <paramref name="group"/> with <paramref name="c"/> as its value input, where it stores (its y,
    /// or C for a reduced tree that stores nothing), and the reduction left in its place (null for a plain tree); null
    /// when the group is not one the rule takes or the set does not run its tree.
    /// </summary>
    private static (GemmTreeStep Step, DeviceBuffer<float> Y, KernelCallOp? Reduction)? Step(FusedOp group, DeviceBuffer<float> c, IGemmEpilogueKernels epilogues)
    {
        var (tree, inputs, y) = group.Head != null ? BinaryChainTree(group) : (group.Expression, ArgumentsBeforeOutputs(group), OutputOf(group, c));
        if (tree == null || group.SecondExpression != null || group.MapExpression != null || !epilogues.RunsGemmTree(tree)) return null;
        bool reduces = group.Reduction != null;
        int value = Array.FindIndex(inputs, b => ReferenceEquals(b, c));
        if (y == null || y.Length != c.Length || value < 0 || inputs.Length != tree.Arity
            || inputs.Any(b => b == null || (b.Length != c.Length && b.Length != 1)))
            return null;
        inputs[value] = null;
        var reduction = reduces ? new KernelCallOp(Reduce, [group.Reduction, y, group.ReduceShape, group.ReduceAxes, group.Args[^1]]) : null;
        return (new GemmTreeStep(tree, value, inputs), y, reduction);
    }

    /// <summary>A tree group's (or tree-and-reduction group's) input buffers.</summary>
    private static DeviceBuffer<float>?[] ArgumentsBeforeOutputs(FusedOp group) =>
        group.Args[..(group.Reduction != null ? ^2 : ^1)].Select(a => a as DeviceBuffer<float>).ToArray();

    /// <summary>Where a tree group stores: its y, or C for a reduced tree that stores nothing.</summary>
    private static DeviceBuffer<float>? OutputOf(FusedOp group, DeviceBuffer<float> c) =>
        group.Reduction != null ? group.Args[^2] as DeviceBuffer<float> ?? c : group.Args[^1] as DeviceBuffer<float>;

    /// <summary>A binary chain group as the tree of the same ops in the same order (the same bits), its inputs and its output.</summary>
    private static (ElementwiseExpression Tree, DeviceBuffer<float>?[] Inputs, DeviceBuffer<float>? Y) BinaryChainTree(FusedOp group)
    {
        var (tree, inputs, _) = group.ChainTree();
        return (tree, inputs.Select(b => b as DeviceBuffer<float>).ToArray(), group.Args[4] as DeviceBuffer<float>);
    }
}
