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
    private static IEnumerable<object> ReadsOf(KernelCallOp gemm)
    {
        var (a, b, c) = ((GemmOperand)gemm.Args[1]!, (GemmOperand)gemm.Args[2]!, (GemmOutput)gemm.Args[3]!);
        return new object?[] { a.Buffer, a.Index, b.Buffer, b.Index, c.Epilogue.Bias, c.Epilogue.Residual }.OfType<object>();
    }

    private static KernelCallOp With(KernelCallOp gemm, GemmOutput output) =>
        new(gemm.Method, [gemm.Args[0], gemm.Args[1], gemm.Args[2], output]) { ScratchAllocations = gemm.ScratchAllocations };
}
