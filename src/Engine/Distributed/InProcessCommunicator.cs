using System.Diagnostics;
using System.Numerics;

namespace Engine.Distributed;

/// <summary>
/// Threads of one process as the ranks of a group, for tests: <see cref="CreateGroup"/> returns one communicator per
/// rank, each to be used by its own thread. Collectives are matched by their order on each rank, reduced in rank
/// order (rank 0's values, plus rank 1's, plus rank 2's, ... in float for float data), and complete after a simulated
/// network time: <c>latency + bytes / bandwidth</c> (the bytes times the ring factor 2(N−1)/N for all-reduce), counted
/// from when the last rank joined or the previous collective finished, whichever is later (one link, one message at a
/// time), so that tests can show communication hidden behind computation.
/// </summary>
/// <remarks>
/// A rank that disposes its communicator has left the group: the others' waits for it throw
/// <see cref="RankFailedException"/> at once, as a killed process is reported by an MPI runtime. A rank that just
/// stops calling makes the others time out, with a message naming the ranks that did not join.
/// </remarks>
public sealed class InProcessCommunicator : Communicator
{
    private readonly Group group;
    private readonly int rank;
    private readonly Dictionary<CommRequest, long> pending = new(ReferenceEqualityComparer.Instance);
    private long sequence;
    private bool aborted;

    private InProcessCommunicator(Group group, int rank)
    {
        this.group = group;
        this.rank = rank;
    }

    /// <summary>
    /// A group of <paramref name="size"/> ranks. Each collective completes no earlier than
    /// <paramref name="latency"/> plus its bytes over <paramref name="bytesPerSecond"/> (infinite by default) after the
    /// last rank joined.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Size below 1, negative latency, or a bandwidth that is not positive.</exception>
    public static InProcessCommunicator[] CreateGroup(int size, TimeSpan latency = default, double bytesPerSecond = double.PositiveInfinity)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "InProcessCommunicator: a group needs at least one rank.");
        if (latency < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(latency), latency, "InProcessCommunicator: latency must not be negative.");
        if (!(bytesPerSecond > 0)) throw new ArgumentOutOfRangeException(nameof(bytesPerSecond), bytesPerSecond, "InProcessCommunicator: bandwidth must be positive.");
        var group = new Group(size, latency, bytesPerSecond);
        return Enumerable.Range(0, size).Select(r => new InProcessCommunicator(group, r)).ToArray();
    }

    /// <inheritdoc />
    public override int Rank => rank;

    /// <inheritdoc />
    public override int Size => group.Size;

    /// <inheritdoc />
    public override string Backend => "in-process";

    /// <summary>Simulated latency of every collective.</summary>
    public TimeSpan Latency => group.Latency;

    /// <inheritdoc />
    public override void Abort(string reason)
    {
        if (aborted) return;
        aborted = true;
        lock (group.Gate) group.Failure ??= (rank, reason ?? "");
    }

    /// <inheritdoc />
    protected internal override void Poll()
    {
        (int Rank, string Reason)? failure;
        lock (group.Gate) failure = group.Failure;
        if (failure is { } f && f.Rank != rank) throw new RankFailedException(rank, f.Rank, f.Reason);
    }

    /// <inheritdoc />
    protected internal override string DescribeStall(CommRequest request)
    {
        lock (group.Gate)
        {
            if (!pending.TryGetValue(request, out var seq) || !group.Slots.TryGetValue(seq, out var slot)) return "";
            var missing = Enumerable.Range(0, Size).Where(r => !slot.Joined[r]).ToList();
            return missing.Count == 0
                ? $"every rank joined collective #{seq}"
                : $"rank{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} did not join collective #{seq}";
        }
    }

    /// <inheritdoc />
    protected internal override CommRequest StartAllReduce(nint data, long count, ElementType type, ReduceOperation op) =>
        Join(new Signature("all-reduce", type, count, -1, op), data, data, ring: true);

    /// <inheritdoc />
    protected internal override CommRequest StartBroadcast(nint data, long count, ElementType type, int root) =>
        Join(new Signature("broadcast", type, count, root, ReduceOperation.Sum), data, data, ring: false);

    /// <inheritdoc />
    protected internal override CommRequest StartAllGather(nint send, nint receive, long count, ElementType type) =>
        Join(new Signature("all-gather", type, count, -1, ReduceOperation.Sum), send, receive, ring: false);

    /// <inheritdoc />
    protected internal override CommRequest StartBarrier() =>
        Join(new Signature("barrier", ElementType.Float32, 0, -1, ReduceOperation.Sum), 0, 0, ring: false);

    /// <summary>Joins this rank's next collective; the last rank to join computes every rank's result.</summary>
    private CommRequest Join(Signature signature, nint send, nint receive, bool ring)
    {
        if (aborted) throw new InvalidOperationException($"InProcessCommunicator: rank {rank} has aborted; it cannot start a {signature.Kind}.");
        Poll();
        // The start is taken before joining: the last rank to join completes the collective inside the lock, so a
        // timestamp taken after it could follow the completion.
        long startedAt = Stopwatch.GetTimestamp();
        long seq = sequence++;
        Slot slot;
        lock (group.Gate)
        {
            if (!group.Slots.TryGetValue(seq, out slot!))
            {
                slot = new Slot(signature, Size);
                group.Slots[seq] = slot;
            }
            else if (slot.Signature != signature)
            {
                throw new InvalidOperationException(
                    $"InProcessCommunicator: collective #{seq} differs between ranks: rank {rank} called {signature}, another rank {slot.Signature}.");
            }
            slot.Joined[rank] = true;
            slot.Send[rank] = send;
            slot.Receive[rank] = receive;
            if (++slot.Arrived == Size)
            {
                Execute(slot);
                double bytes = signature.Count * (double)SizeOf(signature.Type);
                double factor = ring ? 2.0 * (Size - 1) / Size : 1.0;
                double seconds = group.Latency.TotalSeconds + factor * bytes / group.BytesPerSecond;
                long begin = Math.Max(Stopwatch.GetTimestamp(), group.LinkFreeAt);
                slot.ReadyAt = begin + (long)(seconds * Stopwatch.Frequency);
                group.LinkFreeAt = slot.ReadyAt;
                slot.Done = true;
            }
        }
        var request = new CommRequest(this, $"{signature.Kind} #{seq} of {signature.Count} {signature.Type}", signature.Count * SizeOf(signature.Type),
            () => Finished(seq), startedAt);
        pending[request] = seq;
        return request.Then(() => pending.Remove(request));
    }

    private long Finished(long seq)
    {
        lock (group.Gate)
        {
            var slot = group.Slots[seq];
            if (!slot.Done)
            {
                if (group.Departed.FirstOrDefault(r => !slot.Joined[r], -1) is var gone and >= 0)
                    throw new RankFailedException(rank, gone, $"rank {gone} left the group (its communicator was disposed) before joining collective #{seq}");
                return 0;
            }
            if (Stopwatch.GetTimestamp() < slot.ReadyAt) return 0;
            if (++slot.Collected == Size) group.Slots.Remove(seq);
            return slot.ReadyAt;
        }
    }

    /// <summary>Computes the collective for every rank, reducing in rank order.</summary>
    private static void Execute(Slot slot)
    {
        var s = slot.Signature;
        switch (s.Kind)
        {
            case "all-reduce":
                switch (s.Type)
                {
                    case ElementType.Float32: Reduce<float>(slot, s.Op); break;
                    case ElementType.Float64: Reduce<double>(slot, s.Op); break;
                    case ElementType.Int32: Reduce<int>(slot, s.Op); break;
                    default: Reduce<long>(slot, s.Op); break;
                }
                break;
            case "broadcast":
                for (int r = 0; r < slot.Send.Length; r++)
                    if (r != s.Root) Copy(slot.Send[s.Root], slot.Receive[r], s.Count * SizeOf(s.Type));
                break;
            case "all-gather":
                long bytes = s.Count * SizeOf(s.Type);
                for (int src = 0; src < slot.Send.Length; src++)
                    for (int dst = 0; dst < slot.Send.Length; dst++)
                        Copy(slot.Send[src], slot.Receive[dst] + (nint)(src * bytes), bytes);
                break;
        }
    }

    private static unsafe void Reduce<T>(Slot slot, ReduceOperation op) where T : unmanaged, INumber<T>
    {
        long n = slot.Signature.Count;
        var acc = new T[n];
        new ReadOnlySpan<T>((void*)slot.Send[0], (int)n).CopyTo(acc);
        for (int r = 1; r < slot.Send.Length; r++)
        {
            var x = new ReadOnlySpan<T>((void*)slot.Send[r], (int)n);
            for (int i = 0; i < n; i++)
                acc[i] = op switch
                {
                    ReduceOperation.Sum => acc[i] + x[i],
                    ReduceOperation.Max => T.Max(acc[i], x[i]),
                    _ => T.Min(acc[i], x[i]),
                };
        }
        foreach (var dst in slot.Receive) acc.AsSpan().CopyTo(new Span<T>((void*)dst, (int)n));
    }

    private static unsafe void Copy(nint source, nint destination, long bytes)
    {
        if (source == destination || bytes == 0) return;
        Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        lock (group.Gate) group.Departed.Add(rank);
    }

    private readonly record struct Signature(string Kind, ElementType Type, long Count, int Root, ReduceOperation Op)
    {
        public override string ToString() => Kind == "barrier" ? "barrier" : $"{Kind} of {Count} {Type}{(Root >= 0 ? $" from rank {Root}" : "")}";
    }

    private sealed class Slot(Signature signature, int size)
    {
        public Signature Signature { get; } = signature;
        public bool[] Joined { get; } = new bool[size];
        public nint[] Send { get; } = new nint[size];
        public nint[] Receive { get; } = new nint[size];
        public int Arrived { get; set; }
        public int Collected { get; set; }
        public bool Done { get; set; }
        public long ReadyAt { get; set; }
    }

    private sealed class Group(int size, TimeSpan latency, double bytesPerSecond)
    {
        public object Gate { get; } = new();
        public int Size { get; } = size;
        public TimeSpan Latency { get; } = latency;
        public double BytesPerSecond { get; } = bytesPerSecond;
        public Dictionary<long, Slot> Slots { get; } = new();
        public long LinkFreeAt { get; set; }
        public List<int> Departed { get; } = new();
        public (int Rank, string Reason)? Failure { get; set; }
    }
}
