using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Rematerialisation of cheap values before fusion. The fusion rule absorbs a value into the group that reads it only
/// when that group is its one reader, so a value read by two groups is stored by one launch and loaded by two more.
/// Rule: an elementwise call (unary, affine, binary or broadcast) P that writes a temporary value v read by 2 to
/// <see cref="MaxReaders"/> later calls is repeated right before each reader after the first, into a new temporary that
/// only that reader reads, when
/// <list type="bullet">
/// <item>no call from P up to the last reader writes a buffer P reads (each repeat computes the bits P computed),</item>
/// <item>P does not read v itself, no reader writes v, no host step lies between P and the last reader, and</item>
/// <item>the fusion pass then leaves fewer calls than without the repeats (each reader absorbs its own copy; the
/// repeats cost arithmetic, never a launch or a buffer).</item>
/// </list>
/// Candidates are tried in program order, each against the program the accepted ones left. A loss whose difference
/// feeds both its norm and its gradient, or a norm's square root read by the loss and by its backward, is recomputed
/// in each reader instead of stored once and read twice.
/// </summary>
internal static class Rematerialization
{
    /// <summary>Most readers a value is recomputed for.</summary>
    public const int MaxReaders = 4;

    /// <summary>
    /// <paramref name="ops"/> with every accepted value recomputed before each of its readers;
    /// <paramref name="launches"/> gives the calls the fusion pass leaves of a program; <paramref name="recomputed"/>:
    /// the repeated calls added.
    /// </summary>
    /// <paramref name="newTemporary"/> makes a temporary of a buffer's length for the memory plan.
    public static List<TraceOp> Run(List<TraceOp> ops, Func<object, bool> isTemporary, Func<List<TraceOp>, int> launches,
        Func<DeviceBuffer<float>, DeviceBuffer<float>> newTemporary, out int recomputed)
    {
        recomputed = 0;
        int best = -1;
        for (int p = 0; p < ops.Count; p++)
        {
            if (!IsCandidate(ops[p], isTemporary, out var effects) || Readers(ops, p, effects) is not { Count: >= 2 and <= MaxReaders } readers) continue;
            if (!readers.All(r => CanFuseInto(ops[r]))) continue;
            var repeated = WithRepeats(ops, p, effects.Writes, readers, newTemporary);
            if (best < 0) best = launches(ops);
            int count = launches(repeated);
            if (count >= best) continue;
            ops = repeated;
            best = count;
            recomputed += readers.Count - 1;
        }
        return ops;
    }

    /// <summary>True for a unary, affine or binary core call, or one of <paramref name="also"/>.</summary>
    private static bool IsElementwise(KernelCallOp call, string also) =>
        call.IsCore(nameof(IKernelSet.Unary)) || call.IsCore(nameof(IKernelSet.Affine)) || call.IsCore(nameof(IKernelSet.Binary)) || call.IsCore(also);

    /// <summary>True for the calls the fusion pass can fuse a value into: elementwise calls and reductions.</summary>
    private static bool CanFuseInto(TraceOp op) => op is KernelCallOp call && IsElementwise(call, nameof(IKernelSet.Reduce));

    private static bool IsCandidate(TraceOp op, Func<object, bool> isTemporary, out OpEffects effects)
    {
        effects = default;
        if (op is not KernelCallOp call || OpEffects.Of(call) is not { } known) return false;
        effects = known;
        return IsElementwise(call, nameof(IKernelSet.BroadcastTo)) && known.Writes is DeviceBuffer<float> && isTemporary(known.Writes)
               && !known.Reads.Any(r => ReferenceEquals(r, known.Writes));
    }

    /// <summary>
    /// The calls that read the value call <paramref name="producer"/> writes, in order, up to the call that writes its
    /// buffer again; null when a reader writes the value, or a host step or a call that writes what the producer reads
    /// comes before the last reader.
    /// </summary>
    private static List<int>? Readers(List<TraceOp> ops, int producer, OpEffects effects)
    {
        var value = effects.Writes;
        var readers = new List<int>();
        var inputsWritten = new List<int>();
        int barrier = int.MaxValue;
        for (int i = producer + 1; i < ops.Count; i++)
        {
            var op = ops[i];
            if (op is not KernelCallOp)
            {
                // A host step may write any buffer: the value may be recomputed only before it.
                barrier = Math.Min(barrier, i);
                continue;
            }
            var writes = TraceBuffers.Writes(op);
            bool reads = OpEffects.Of(op) is { } e ? e.Reads.Any(r => ReferenceEquals(r, value)) : TraceBuffers.Touches(op, value);
            if (reads) readers.Add(i);
            if (reads && writes.Any(w => ReferenceEquals(w, value))) return null;
            if (writes.Any(w => effects.Reads.Any(r => ReferenceEquals(r, w)))) inputsWritten.Add(i);
            if (writes.Any(w => ReferenceEquals(w, value))) break;
        }
        if (readers.Count == 0) return readers;
        int last = readers[^1];
        return inputsWritten.Any(i => i < last) || barrier < last ? null : readers;
    }

    /// <summary>
    /// The program with call <paramref name="producer"/> repeated right before every reader after the first, each
    /// repeat writing a new temporary that its reader reads instead of <paramref name="value"/>.
    /// </summary>
    private static List<TraceOp> WithRepeats(List<TraceOp> ops, int producer, object value, List<int> readers,
        Func<DeviceBuffer<float>, DeviceBuffer<float>> newTemporary)
    {
        var result = new List<TraceOp>(ops.Count + readers.Count - 1);
        int next = 1;
        for (int i = 0; i < ops.Count; i++)
        {
            if (next < readers.Count && i == readers[next])
            {
                var copy = newTemporary((DeviceBuffer<float>)value);
                object Redirect(object b) => ReferenceEquals(b, value) ? copy : b;
                result.Add(TraceBuffers.Rebind(ops[producer], Redirect));
                result.Add(TraceBuffers.Rebind(ops[i], Redirect));
                next++;
                continue;
            }
            result.Add(ops[i]);
        }
        return result;
    }
}

/// <summary>
/// A temporary a compiler pass adds: no memory of its own (it is born disposed, as every traced temporary is by the time
/// the graph is built); the memory plan gives it a slot like any other.
/// </summary>
internal sealed class PlannedTemporary : DeviceBuffer<float>
{
    /// <summary>A temporary of <paramref name="length"/> floats on <paramref name="device"/>.</summary>
    public PlannedTemporary(Device device, long length) : base(device, length) => Dispose();

    protected override void CopyFromHostCore(ReadOnlySpan<float> source) => throw new InvalidOperationException("a planned temporary holds no data.");

    protected override void CopyToHostCore(Span<float> destination) => throw new InvalidOperationException("a planned temporary holds no data.");

    protected override void Release() { }
}
