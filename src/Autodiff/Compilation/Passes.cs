using System.Collections.Concurrent;
using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// What a recorded core call reads and writes, for the passes that move or drop calls. Only the pure core entry
/// points are described (each writes one output in full and reads only its inputs); any other call (a GEMM, a
/// capability, an accumulating call, a partial copy) has unknown effects (null): the passes treat every buffer it touches
/// as read and written.
/// </summary>
internal readonly record struct OpEffects(object[] Reads, object Writes)
{
    /// <summary>The effects of <paramref name="op"/>, or null when they are not known exactly.</summary>
    public static OpEffects? Of(TraceOp op)
    {
        if (op is not KernelCallOp call || call.Method.DeclaringType != typeof(IKernelSet)) return null;
        var a = call.Args;
        return call.Method.Name switch
        {
            nameof(IKernelSet.Fill) => new OpEffects([], a[0]!),
            nameof(IKernelSet.Unary) => new OpEffects([a[1]!], a[2]!),
            nameof(IKernelSet.Affine) => new OpEffects([a[0]!], a[1]!),
            nameof(IKernelSet.Binary) => new OpEffects([a[1]!, a[3]!], a[5]!),
            nameof(IKernelSet.BroadcastTo) => new OpEffects([a[0]!], a[2]!),
            nameof(IKernelSet.Reduce) => new OpEffects([a[1]!], a[4]!),
            nameof(IKernelSet.Permute) => new OpEffects([a[0]!], a[3]!),
            nameof(IKernelSet.Copy) when IsWholeCopy(call) => new OpEffects([a[0]!], a[2]!),
            _ => null,
        };
    }

    /// <summary>True for a copy of one whole buffer into another of the same length (offsets 0).</summary>
    public static bool IsWholeCopy(KernelCallOp call) =>
        call.IsCore(nameof(IKernelSet.Copy)) && call.Args[0] is DeviceBuffer<float> src && call.Args[2] is DeviceBuffer<float> dst
        && (long)call.Args[1]! == 0 && (long)call.Args[3]! == 0
        && (long)call.Args[4]! == src.Length && src.Length == dst.Length;
}

/// <summary>Rewrites the buffers a recorded operation touches, and counts who touches them.</summary>
internal static class TraceBuffers
{
    /// <summary>The elements of a traced buffer (a float or an int buffer).</summary>
    public static long Length(object buffer) => buffer is DeviceBuffer<float> f ? f.Length : ((DeviceBuffer<int>)buffer).Length;

    /// <summary>The bytes of a traced buffer (four per element, float or int).</summary>
    public static long Bytes(object buffer) => Length(buffer) * 4;

    /// <summary>For every buffer of <paramref name="ops"/>, how many operations touch it (each at most once).</summary>
    public static Dictionary<object, int> Users(List<TraceOp> ops)
    {
        var users = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        foreach (var op in ops)
            foreach (var b in op.Buffers.Distinct(ReferenceEqualityComparer.Instance))
                users[b!] = users.GetValueOrDefault(b!) + 1;
        return users;
    }

    /// <summary>True when <paramref name="op"/> touches <paramref name="buffer"/>.</summary>
    public static bool Touches(TraceOp op, object buffer) => op.Buffers.Any(b => ReferenceEquals(b, buffer));

    /// <summary>
    /// The buffers a launch of a fused program writes: a fused group's (<see cref="FusedOp.Written"/>), else as
    /// <see cref="Writes"/> says.
    /// </summary>
    public static IEnumerable<object> WrittenByLaunch(TraceOp op) => op is FusedOp group ? group.Written : Writes(op);

    /// <summary>
    /// The buffers <paramref name="op"/> writes: its output when its effects are known; C and the activation output of a
    /// core product (it reads everything else it is given); a core softmax's result; every buffer it touches otherwise
    /// (a host step, which touches none, may write any: callers treat it apart).
    /// </summary>
    public static List<object> Writes(TraceOp op)
    {
        if (OpEffects.Of(op) is { } e) return [e.Writes];
        if (op is KernelCallOp softmax && softmax.IsCore(nameof(IKernelSet.Softmax))) return [softmax.Args[1]!];
        if (op is KernelCallOp call && call.IsCore(nameof(IKernelSet.Gemm)) && call.Args[3] is GemmOutput c)
            return c.Epilogue.ActivationOutput is { } activation ? [c.Buffer, activation] : [c.Buffer];
        if (op is KernelCallOp capability && WrittenParameters(capability.Method) is { Length: > 0 } marked)
        {
            var written = new List<object>();
            foreach (int i in marked) ArgWalker.Collect(capability.Args[i], written);
            return written.Distinct(ReferenceEqualityComparer.Instance).Select(b => b!).ToList();
        }
        return op.Buffers.Distinct(ReferenceEqualityComparer.Instance).Select(b => b!).ToList();
    }

    private static readonly ConcurrentDictionary<MethodInfo, int[]> MarkedWrites = new();

    /// <summary>The positions of a capability entry point's parameters marked <see cref="WritesAttribute"/> (none for a core entry point).</summary>
    private static int[] WrittenParameters(MethodInfo method) =>
        method.DeclaringType == typeof(IKernelSet) ? [] : MarkedWrites.GetOrAdd(method, m => m.GetParameters()
            .Where(p => p.GetCustomAttribute<WritesAttribute>() != null).Select(p => p.Position).ToArray());

    /// <summary><paramref name="op"/> with every buffer (and device scalar over one) passed through <paramref name="map"/>.</summary>
    public static TraceOp Rebind(TraceOp op, Func<object, object> map)
    {
        object MapValue(object v) => v is DeviceScalar s
            ? map(s.Buffer) is var b && !ReferenceEquals(b, s.Buffer) ? DeviceScalar.Over((DeviceBuffer<float>)b) : s
            : map(v);
        return op switch
        {
            KernelCallOp call => new KernelCallOp(call.Method, call.Args.Select(a => ArgWalker.Map(a, MapValue)).ToArray())
            {
                ScratchAllocations = call.ScratchAllocations,
            },
            UploadOp upload => new UploadOp(map(upload.Buffers[0]), upload.Data, upload.Origin),
            _ => op,
        };
    }
}

/// <summary>
/// Copy elimination. Rule: a copy of a whole temporary into a buffer of the same length, where the copy is the
/// temporary's last use and no operation from the temporary's first use up to the copy touches the destination, is
/// removed, and every operation on the temporary writes and reads the destination instead. Backward passes end this
/// way (a gradient computed into a temporary, then copied into the parameter's gradient buffer), so the product or
/// reduction then writes the gradient directly.
/// </summary>
internal static class CopyElimination
{
    /// <summary><paramref name="ops"/> with every copy of the rule removed; <paramref name="removed"/> counts them.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, Func<object, bool> isTemporary, Func<object, bool> isInput, out int removed)
    {
        removed = 0;
        var result = new List<TraceOp>(ops);
        for (int i = 0; i < result.Count; i++)
        {
            if (result[i] is not KernelCallOp copy || !OpEffects.IsWholeCopy(copy)) continue;
            object src = copy.Args[0]!, dst = copy.Args[2]!;
            if (ReferenceEquals(src, dst) || !isTemporary(src) || isInput(dst)) continue;
            int first = result.FindIndex(op => TraceBuffers.Touches(op, src));
            bool srcLater = result.Skip(i + 1).Any(op => TraceBuffers.Touches(op, src));
            bool dstBetween = result.Skip(first).Take(i - first).Any(op => TraceBuffers.Touches(op, dst));
            if (first < 0 || srcLater || dstBetween) continue;
            for (int j = first; j < i; j++)
                if (TraceBuffers.Touches(result[j], src))
                    result[j] = TraceBuffers.Rebind(result[j], b => ReferenceEquals(b, src) ? dst : b);
            result.RemoveAt(i);
            removed++;
            i--;
        }
        return result;
    }

}

/// <summary>
/// Common-subexpression elimination. Rule: two pure core calls with inputs (see <see cref="OpEffects"/>; neither
/// reading its own output; a fill is a constant, left to <see cref="ConstantFolding"/>) of the same method with equal
/// non-buffer arguments (op codes, shapes, axes, scalars, compared by value) that read the same buffers in the same
/// versions (no call between them writes a buffer the first reads, nor the first's output) compute the same value.
/// The second is dropped and every later reader of its output reads the first's output instead, provided the
/// second's output is a temporary that the second call defines (nothing touches it before) and nothing writes after
/// it (never an output, persistent buffer or gradient), and no call up to the last reader of the second's output
/// writes the first's output again. A call of unknown effects writes every buffer it touches (a product only its C
/// and activation output); a host step may write any. When the graph fuses, repeated elementwise calls (unary,
/// affine, binary) stay: a fused group recomputes them in registers for free, while one shared result read by two
/// groups would be stored and launched on its own.
/// </summary>
internal static class CommonSubexpressionElimination
{
    /// <summary><paramref name="ops"/> without repeated computations; <paramref name="removed"/> counts them.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, Func<object, bool> isTemporary, bool fuses, out int removed)
    {
        removed = 0;
        var writes = ops.Select(TraceBuffers.Writes).ToArray();
        var firstTouch = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        var lastTouch = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        var laterWriters = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < ops.Count; i++)
        {
            foreach (var b in ops[i].Buffers)
            {
                firstTouch.TryAdd(b, i);
                lastTouch[b] = i;
            }
            foreach (var b in writes[i]) laterWriters[b] = laterWriters.GetValueOrDefault(b) + 1;
        }

        // The version of a buffer counts the writes to it so far; a computation is its method, its non-buffer
        // arguments and the versions of the buffers it reads.
        var versions = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        var ids = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        var computed = new Dictionary<string, (object Output, int Version)>();
        var renamed = new Dictionary<object, object>(ReferenceEqualityComparer.Instance);
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            var op = renamed.Count > 0 && ops[i].Buffers.Any(renamed.ContainsKey)
                ? TraceBuffers.Rebind(ops[i], b => renamed.GetValueOrDefault(b, b))
                : ops[i];
            if (op is HostStepOp) computed.Clear();
            if (OpEffects.Of(op) is { Reads.Length: > 0 } e && !e.Reads.Any(r => ReferenceEquals(r, e.Writes)) && !(fuses && IsFusable(op)))
            {
                var key = Key((KernelCallOp)op, e.Writes, versions, ids);
                if (computed.TryGetValue(key, out var first) && versions.GetValueOrDefault(first.Output) == first.Version
                    && CanTakeOver(ops, writes, i, e.Writes, first.Output, isTemporary, firstTouch, lastTouch, laterWriters))
                {
                    renamed[e.Writes] = first.Output;
                    removed++;
                    continue;
                }
                Written(versions, e.Writes);
                computed[key] = (e.Writes, versions[e.Writes]);
            }
            else
            {
                foreach (var b in writes[i]) Written(versions, renamed.GetValueOrDefault(b, b));
            }
            result.Add(op);
        }
        return result;
    }

    /// <summary>
    /// True when call <paramref name="second"/>'s output may be replaced by <paramref name="first"/>: a temporary the
    /// call defines and nothing writes later, and no call up to its last reader writes the first output.
    /// </summary>
    private static bool CanTakeOver(List<TraceOp> ops, List<object>[] writes, int second, object output, object first, Func<object, bool> isTemporary,
        Dictionary<object, int> firstTouch, Dictionary<object, int> lastTouch, Dictionary<object, int> writers)
    {
        if (ReferenceEquals(output, first) || !isTemporary(output) || firstTouch[output] != second || writers[output] != 1) return false;
        for (int j = second + 1; j <= lastTouch[output]; j++)
            if (writes[j].Any(b => ReferenceEquals(b, first)) || ops[j] is HostStepOp) return false;
        return true;
    }

    private static bool IsFusable(TraceOp op) =>
        op is KernelCallOp call && (call.IsCore(nameof(IKernelSet.Unary)) || call.IsCore(nameof(IKernelSet.Affine)) || call.IsCore(nameof(IKernelSet.Binary)));

    private static void Written(Dictionary<object, int> versions, object buffer) => versions[buffer] = versions.GetValueOrDefault(buffer) + 1;

    /// <summary>The computation of <paramref name="call"/>: its method and arguments, each buffer read as its identity and version.</summary>
    private static string Key(KernelCallOp call, object output, Dictionary<object, int> versions, Dictionary<object, int> ids) =>
        call.Method.Name + "(" + string.Join(";", call.Args.Select(a => ArgWalker.Describe(a, b => ReferenceEquals(b, output) ? "out"
            : "b" + (ids.TryGetValue(b, out var id) ? id : ids[b] = ids.Count) + "v" + versions.GetValueOrDefault(b)))) + ")";
}

/// <summary>
/// Constant folding. Rule: a pure core call (see <see cref="OpEffects"/>) whose inputs are all constants (or which has
/// none, as a fill) and whose output is a temporary that no other operation writes defines a constant: it runs once
/// when the graph is built, into a buffer of its own that lives as long as the graph, and never in a replay. The
/// seed of a backward pass (a fill of ones, scaled by 1/n for a mean) is such a chain.
/// </summary>
internal static class ConstantFolding
{
    /// <summary>Splits <paramref name="ops"/> into the calls that replay and those that fold; <paramref name="constants"/> gets their outputs.</summary>
    public static (List<TraceOp> Replayed, List<TraceOp> Folded) Run(List<TraceOp> ops, Func<object, bool> isTemporary, HashSet<object> constants)
    {
        var writers = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        foreach (var op in ops)
        {
            foreach (var b in TraceBuffers.Writes(op)) writers[b] = writers.GetValueOrDefault(b) + 1;
        }
        var replayed = new List<TraceOp>();
        var folded = new List<TraceOp>();
        foreach (var op in ops)
        {
            if (OpEffects.Of(op) is { } e && isTemporary(e.Writes) && writers[e.Writes] == 1
                && e.Reads.All(constants.Contains) && !e.Reads.Any(r => ReferenceEquals(r, e.Writes)))
            {
                constants.Add(e.Writes);
                folded.Add(op);
            }
            else
            {
                replayed.Add(op);
            }
        }
        return (replayed, folded);
    }
}

/// <summary>
/// Dead-code elimination. Rule: a pure core call (see <see cref="OpEffects"/>) whose output is a temporary that no
/// later operation touches computes a value nobody reads, and is removed; repeated until nothing changes, so a chain
/// feeding only dead calls goes too.
/// </summary>
internal static class DeadCodeElimination
{
    /// <summary><paramref name="ops"/> without dead calls; <paramref name="removed"/> counts them.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, Func<object, bool> isTemporary, out int removed)
    {
        removed = 0;
        var result = new List<TraceOp>(ops);
        for (bool changed = true; changed;)
        {
            changed = false;
            var touchedLater = new HashSet<object>(ReferenceEqualityComparer.Instance);
            for (int i = result.Count - 1; i >= 0; i--)
            {
                if (OpEffects.Of(result[i]) is { } e && isTemporary(e.Writes) && !touchedLater.Contains(e.Writes))
                {
                    result.RemoveAt(i);
                    removed++;
                    changed = true;
                    continue;
                }
                foreach (var b in result[i].Buffers) touchedLater.Add(b);
            }
        }
        return result;
    }
}

/// <summary>
/// Multi-tensor optimizer updates. Rule: consecutive <see cref="IOptimizerKernels.AdamStep"/> calls with equal
/// hyper-parameters and one learning-rate scalar, whose buffers (parameters, gradients, moments, step counts) are all
/// distinct, become one <see cref="IOptimizerKernels.AdamSteps"/> call; likewise consecutive
/// <see cref="IOptimizerKernels.SgdStep"/> calls with equal hyper-parameters, learning rate and first-step flag become
/// one <see cref="IOptimizerKernels.SgdSteps"/>: one launch on a set that runs it as one.
/// </summary>
internal static class MultiTensorUpdates
{
    private static readonly System.Reflection.MethodInfo AdamStep = typeof(IOptimizerKernels).GetMethod(nameof(IOptimizerKernels.AdamStep))!;
    private static readonly System.Reflection.MethodInfo AdamSteps = typeof(IOptimizerKernels).GetMethod(nameof(IOptimizerKernels.AdamSteps))!;
    private static readonly System.Reflection.MethodInfo SgdStep = typeof(IOptimizerKernels).GetMethod(nameof(IOptimizerKernels.SgdStep))!;
    private static readonly System.Reflection.MethodInfo SgdSteps = typeof(IOptimizerKernels).GetMethod(nameof(IOptimizerKernels.SgdSteps))!;

    /// <summary><paramref name="ops"/> with every run of the rule merged; <paramref name="merged"/> counts the calls merged.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, out int merged)
    {
        merged = 0;
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count;)
        {
            if (ops[i] is not KernelCallOp first || (first.Method != AdamStep && first.Method != SgdStep))
            {
                result.Add(ops[i++]);
                continue;
            }
            bool adam = first.Method == AdamStep;
            // The arguments besides the buffers that must agree: hyper-parameters, learning rate (and SGD's first-step flag).
            int lrIndex = adam ? 2 : 4;
            var lr = ((DeviceScalar)first.Args[lrIndex]!).Buffer;
            var run = new List<KernelCallOp> { first };
            var seen = new HashSet<object>(first.Buffers, ReferenceEqualityComparer.Instance);
            seen.Remove(lr);
            while (i + run.Count < ops.Count && ops[i + run.Count] is KernelCallOp next && next.Method == first.Method
                   && Equals(next.Args[adam ? 1 : 3], first.Args[adam ? 1 : 3]) && ReferenceEquals(((DeviceScalar)next.Args[lrIndex]!).Buffer, lr)
                   && (adam || Equals(next.Args[5], first.Args[5]))
                   && next.Buffers.Where(b => !ReferenceEquals(b, lr)).All(seen.Add))
                run.Add(next);
            if (run.Count == 1)
            {
                result.Add(first);
            }
            else
            {
                object?[] args = adam
                    ? [run.Select(c => (AdamBuffers)c.Args[0]!).ToArray(), first.Args[1], first.Args[2], run.Select(c => (DeviceScalar)c.Args[3]!).ToArray()]
                    : [run.Select(c => new SgdBuffers((DeviceBuffer<float>)c.Args[0]!, (DeviceBuffer<float>)c.Args[1]!, (DeviceBuffer<float>?)c.Args[2])).ToArray(),
                        first.Args[3], first.Args[4], first.Args[5]];
                result.Add(new KernelCallOp(adam ? AdamSteps : SgdSteps, args) { ScratchAllocations = run.Sum(c => c.ScratchAllocations) });
                merged += run.Count;
            }
            i += run.Count;
        }
        return result;
    }
}

/// <summary>
/// Bias epilogues. Rule: a <see cref="IKernelSet.Gemm"/> with beta 0, no C map and contiguous C (offset 0, batch
/// stride M·N) writing a whole temporary that only the next call reads, where the next call is a
/// <see cref="BinaryOp.Add"/> of that temporary (unbroadcast) and a bias whose shape is the result's trailing
/// dimensions (its length a multiple of N), becomes one product that adds the bias as it stores into the addition's
/// output (<see cref="GemmEpilogue"/>), on kernel sets that run it (<see cref="IGemmEpilogueKernels"/>). The linear
/// layers' bias additions go this way.
/// </summary>
internal static class GemmBiasFusion
{
    /// <summary><paramref name="ops"/> with every pair of the rule merged; <paramref name="fused"/> counts them.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, IKernelSet kernels, Func<object, bool> isTemporary, out int fused)
    {
        fused = 0;
        var result = new List<TraceOp>(ops.Count);
        if (kernels is not IGemmEpilogueKernels epilogues || !epilogues.RunsGemmEpilogue(bias: true, activation: null))
            return ops;
        var users = TraceBuffers.Users(ops);
        for (int i = 0; i < ops.Count; i++)
        {
            if (i + 1 < ops.Count && Merge(ops[i], ops[i + 1], isTemporary, users) is { } merged)
            {
                result.Add(merged);
                fused++;
                i++;
                continue;
            }
            result.Add(ops[i]);
        }
        return result;
    }

    /// <summary>
    /// True when a product of <paramref name="size"/> overwrites the whole buffer of <paramref name="c"/> with its
    /// matrices, packed from its start (beta 0, no map, offset 0, batch stride M·N): what an elementwise call reading
    /// that buffer whole sees as one tensor of the product's shape.
    /// </summary>
    public static bool StoresWholeBuffer(GemmSize size, GemmOutput c)
    {
        long matrix = (long)size.M * size.N;
        return c.Beta == 0f && c.Index == null && c.Offset == 0 && (size.Batch <= 1 || c.BatchStride == matrix)
            && c.Buffer.Length == size.Batch * matrix && size.N > 0;
    }

    private static KernelCallOp? Merge(TraceOp first, TraceOp second, Func<object, bool> isTemporary, Dictionary<object, int> users)
    {
        if (first is not KernelCallOp gemm || !gemm.IsCore(nameof(IKernelSet.Gemm))) return null;
        if (second is not KernelCallOp add || !add.IsCore(nameof(IKernelSet.Binary)) || (BinaryOp)add.Args[0]! != BinaryOp.Add) return null;
        var (size, c) = ((GemmSize)gemm.Args[0]!, (GemmOutput)gemm.Args[3]!);
        if (!StoresWholeBuffer(size, c) || !c.Epilogue.IsIdentity || !isTemporary(c.Buffer) || users[c.Buffer] != 2)
            return null;
        bool isA = ReferenceEquals(add.Args[1], c.Buffer), isB = ReferenceEquals(add.Args[3], c.Buffer);
        if (isA == isB) return null;
        var productShape = (int[])add.Args[isA ? 2 : 4]!;
        var biasShape = (int[])add.Args[isA ? 4 : 2]!;
        var yShape = (int[])add.Args[6]!;
        // The product must not write over what it reads: the addition's output may not be an operand of the product.
        var (a, b) = ((GemmOperand)gemm.Args[1]!, (GemmOperand)gemm.Args[2]!);
        if (add.Args[isA ? 3 : 1] is not DeviceBuffer<float> bias || add.Args[5] is not DeviceBuffer<float> y
            || ReferenceEquals(y, bias) || ReferenceEquals(y, a.Buffer) || ReferenceEquals(y, b.Buffer)
            || !productShape.AsSpan().SequenceEqual(yShape) || y.Length != c.Buffer.Length) return null;
        // The bias broadcasts as a block repeated down the result: its shape (leading ones aside) is the result's tail.
        var trimmed = biasShape.SkipWhile(d => d == 1).ToArray();
        if (trimmed.Length > yShape.Length || !yShape.AsSpan(yShape.Length - trimmed.Length).SequenceEqual(trimmed)) return null;
        if (bias.Length == 0 || bias.Length % size.N != 0 || y.Length % bias.Length != 0) return null;
        var output = c with { Buffer = y, Epilogue = new GemmEpilogue(Bias: bias) };
        return new KernelCallOp(gemm.Method, [size, gemm.Args[1], gemm.Args[2], output]) { ScratchAllocations = gemm.ScratchAllocations };
    }
}

/// <summary>The walk of the passes that rewrite two adjacent ops: each pair a rule takes is replaced, in order, by what the rule returns.</summary>
internal static class AdjacentPairs
{
    /// <summary>
    /// <paramref name="ops"/> with every pair (ops[i], ops[i + 1]) for which <paramref name="rewrite"/> returns ops
    /// replaced by them (the walk then goes on after the pair); <paramref name="taken"/>: the pairs replaced.
    /// </summary>
    public static List<TraceOp> Rewrite(List<TraceOp> ops, Func<TraceOp, TraceOp, TraceOp[]?> rewrite, out int taken)
    {
        taken = 0;
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            if (i + 1 < ops.Count && rewrite(ops[i], ops[i + 1]) is { } replacement)
            {
                result.AddRange(replacement);
                taken++;
                i++;
                continue;
            }
            result.Add(ops[i]);
        }
        return result;
    }
}
