using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Permute folding, on kernel sets whose mapped products keep the plain product's bits (<see cref="IGemmGatherKernels"/>).
/// Rule: a <see cref="IKernelSet.Permute"/> of x into a temporary y that nothing touched before, where every later
/// call touching y is a <see cref="IKernelSet.Gemm"/> reading it only as operand A or B (without a map or prologue),
/// and no call from the permute up to the last such product writes x, is removed: each of those operands reads x in
/// place through an index map built here once (a buffer of the graph). Matrix p of an operand (offset O, batch stride
/// S, L elements) is the gather of x at src(O + p · S + o), src mapping an offset of y to the offset of x it copies;
/// it becomes the map J[o] = src(O + o) with batch stride S' = src(O + S) - src(O) when src(O + p · S + o) =
/// p · S' + J[o] for every p and o (checked here, element by element) and S' is not negative, else one map per
/// matrix, J[p · L + o] = src(O + p · S + o) (the map then as long as the operand). The FNO's spectral layers gather
/// their retained modes this way (the mode axes moved to the front for the per-mode products, and back for the
/// inverse transform; a 2-d mode grid is two strides of the input, so it takes the per-matrix form). Products of one
/// map share its buffer.
/// </summary>
internal static class PermuteFolding
{
    /// <summary>
    /// <paramref name="ops"/> with every permute of the rule folded into its readers; the maps built are added to
    /// <paramref name="maps"/> (the caller owns them) and <paramref name="folded"/> counts the permutes removed.
    /// </summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, Func<object, bool> isTemporary, List<DeviceBuffer<int>> maps, out int folded)
    {
        folded = 0;
        if (kernels is not IGemmGatherKernels gather) return ops;
        var result = new List<TraceOp>(ops);
        var shared = new Dictionary<string, DeviceBuffer<int>>();
        for (int i = 0; i < result.Count; i++)
        {
            if (result[i] is not KernelCallOp permute || !permute.IsCore(nameof(IKernelSet.Permute))) continue;
            if (Readers(result, i, gather, isTemporary) is not { } readers) continue;
            var gathers = readers.Select(r => Rewrite(permute, (KernelCallOp)result[r])).ToList();
            if (gathers.Any(g => g == null)) continue;
            for (int r = 0; r < readers.Count; r++)
                result[readers[r]] = Bind(gathers[r]!, kernels, shared, maps);
            result.RemoveAt(i);
            folded++;
            i--;
        }
        return result;
    }

    /// <summary>
    /// The positions of the products reading the output of the permute at <paramref name="at"/>, or null when the
    /// rule does not hold (see the class).
    /// </summary>
    private static List<int>? Readers(List<TraceOp> ops, int at, IGemmGatherKernels gather, Func<object, bool> isTemporary)
    {
        var permute = (KernelCallOp)ops[at];
        if (permute.Args[0] is not DeviceBuffer<float> x || permute.Args[3] is not DeviceBuffer<float> y
            || ReferenceEquals(x, y) || !isTemporary(y) || x.Length > int.MaxValue)
            return null;
        if (ops.Take(at).Any(op => TraceBuffers.Touches(op, y))) return null;
        var readers = new List<int>();
        for (int j = at + 1; j < ops.Count; j++)
            if (TraceBuffers.Touches(ops[j], y))
            {
                if (!ReadsOnlyAsOperand(ops[j], y, gather)) return null;
                readers.Add(j);
            }
        if (readers.Count == 0) return null;
        for (int j = at + 1; j <= readers[^1]; j++)
            if (MayWrite(ops[j], x)) return null;
        return readers;
    }

    /// <summary>True for a product that reads <paramref name="y"/> as A or B, plainly, and touches it nowhere else.</summary>
    private static bool ReadsOnlyAsOperand(TraceOp op, DeviceBuffer<float> y, IGemmGatherKernels gather)
    {
        if (op is not KernelCallOp gemm || !gemm.IsCore(nameof(IKernelSet.Gemm))) return false;
        var (size, a, b) = ((GemmSize)gemm.Args[0]!, (GemmOperand)gemm.Args[1]!, (GemmOperand)gemm.Args[2]!);
        bool readsA = ReferenceEquals(a.Buffer, y), readsB = ReferenceEquals(b.Buffer, y);
        int operandTouches = (readsA ? 1 : 0) + (readsB ? 1 : 0);
        return (!readsA || IsPlain(a)) && (!readsB || IsPlain(b))
            && gemm.Buffers.Count(buffer => ReferenceEquals(buffer, y)) == operandTouches
            && gather.GatherKeepsBits(size, a.Transposed, b.Transposed);
    }

    private static bool IsPlain(GemmOperand operand) => operand.Index == null && operand.Prologue.IsIdentity;

    /// <summary>Whether <paramref name="op"/> may write <paramref name="buffer"/> (a call of unknown effects writes all it touches; a host step anything).</summary>
    private static bool MayWrite(TraceOp op, object buffer) =>
        op is not (KernelCallOp or UploadOp) || TraceBuffers.Writes(op).Any(b => ReferenceEquals(b, buffer));

    /// <summary>A product whose operands reading the permute's output are to read its input, with the maps they need (null: that operand stays).</summary>
    private sealed record Gather(KernelCallOp Gemm, OperandGather? A, OperandGather? B);

    /// <summary>One operand's map into the permute's input, its batch stride, and the entries between the maps of consecutive matrices (0: one map).</summary>
    private sealed record OperandGather(DeviceBuffer<float> X, int[] Map, int Length, long BatchStride, long MapStride, string Key);

    /// <summary>The maps of the operands of <paramref name="gemm"/> that read the permute's output, or null when one cannot be built.</summary>
    private static Gather? Rewrite(KernelCallOp permute, KernelCallOp gemm)
    {
        var (size, a, b) = ((GemmSize)gemm.Args[0]!, (GemmOperand)gemm.Args[1]!, (GemmOperand)gemm.Args[2]!);
        var y = permute.Args[3]!;
        OperandGather? ga = null, gb = null;
        if (ReferenceEquals(a.Buffer, y) && (ga = Operand(permute, size, a, (long)size.M * size.K)) == null) return null;
        if (ReferenceEquals(b.Buffer, y) && (gb = Operand(permute, size, b, (long)size.K * size.N)) == null) return null;
        return new Gather(gemm, ga, gb);
    }

    /// <summary>
    /// The map of <paramref name="operand"/> (matrices of <paramref name="matrix"/> elements in the permute's output)
    /// into the permute's input: one map and a batch stride when the matrices are one gather shifted by a fixed
    /// stride, else one map per matrix; null when a map would not fit an int buffer.
    /// </summary>
    private static OperandGather? Operand(KernelCallOp permute, GemmSize size, GemmOperand operand, long matrix)
    {
        int count = operand.BatchStride == 0 ? 1 : size.Batch;
        if (matrix <= 0 || size.Batch <= 0 || count * matrix > int.MaxValue) return null;
        var (x, xShape, perm) = ((DeviceBuffer<float>)permute.Args[0]!, (int[])permute.Args[1]!, (int[])permute.Args[2]!);
        var source = Source(xShape, perm);
        long origin = operand.Offset;
        var maps = new int[count * matrix];
        for (int p = 0; p < count; p++)
            for (long o = 0; o < matrix; o++)
                maps[p * matrix + o] = (int)source(origin + p * operand.BatchStride + o);
        string key = $"{string.Join(",", xShape)}|{string.Join(",", perm)}|{origin}|{operand.BatchStride}|{matrix}|{count}";
        long stride = count > 1 ? maps[matrix] - maps[0] : 0;
        bool shifted = stride >= 0;
        for (long e = matrix; shifted && e < maps.Length; e++)
            shifted = maps[e] == e / matrix * stride + maps[e % matrix];
        return shifted
            ? new OperandGather(x, maps[..(int)matrix], (int)matrix, stride, 0, key)
            : new OperandGather(x, maps, (int)matrix, 0, matrix, key + "|per matrix");
    }

    /// <summary>src: the offset of the input element that a permute of <paramref name="xShape"/> by <paramref name="perm"/> copies to output offset q.</summary>
    private static Func<long, long> Source(int[] xShape, int[] perm)
    {
        int rank = xShape.Length;
        var xStrides = new long[rank];
        for (int d = rank - 1, s = 1; d >= 0; s *= xShape[d], d--) xStrides[d] = s;
        var yShape = perm.Select(axis => (long)xShape[axis]).ToArray();
        var yStrideInX = perm.Select(axis => xStrides[axis]).ToArray();
        return q =>
        {
            long src = 0;
            for (int d = rank - 1; d >= 0; d--)
            {
                src += q % yShape[d] * yStrideInX[d];
                q /= yShape[d];
            }
            return src;
        };
    }

    /// <summary>The product of <paramref name="gather"/> with its maps uploaded (one buffer per distinct map).</summary>
    private static KernelCallOp Bind(Gather gather, IKernelSet kernels, Dictionary<string, DeviceBuffer<int>> shared, List<DeviceBuffer<int>> maps)
    {
        GemmOperand Through(GemmOperand operand, OperandGather? g)
        {
            if (g == null) return operand;
            if (!shared.TryGetValue(g.Key, out var buffer))
            {
                buffer = kernels.AllocateInt(g.Map.Length);
                buffer.CopyFromHost(g.Map);
                shared[g.Key] = buffer;
                maps.Add(buffer);
            }
            return (operand with { Buffer = g.X, Offset = 0, BatchStride = g.BatchStride })
                .WithIndex(buffer, g.Length, (long)g.Map.Max() + 1, g.MapStride);
        }
        var args = gather.Gemm.Args;
        var a = Through((GemmOperand)args[1]!, gather.A);
        var b = Through((GemmOperand)args[2]!, gather.B);
        return new KernelCallOp(gather.Gemm.Method, [args[0], a, b, args[3]]) { ScratchAllocations = gather.Gemm.ScratchAllocations };
    }
}
