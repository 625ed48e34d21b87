using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using static Engine.Distributed.MpiNative;

namespace Engine.Distributed;

/// <summary>
/// The ranks of an <c>mpirun</c> job as a <see cref="Communicator"/>, on Open MPI through a thin binding of its C
/// library (libmpi.so.40): non-blocking collectives (<c>MPI_Iallreduce</c>, <c>MPI_Ibcast</c>,
/// <c>MPI_Iallgather</c>, <c>MPI_Ibarrier</c>) on a private duplicate of <c>MPI_COMM_WORLD</c>, completed by polling
/// <c>MPI_Test</c> against a deadline, never by a blocking MPI call. <see cref="World"/> initialises MPI once per
/// process.
/// </summary>
/// <remarks>
/// <para>Progress: Open MPI advances a non-blocking collective only inside MPI calls, so a background thread polls the
/// requests in flight every few tens of microseconds while there are any (and sleeps otherwise); that is what lets a
/// gradient all-reduce proceed while the backward pass computes. Every MPI call is made under one lock
/// (<c>MPI_THREAD_SERIALIZED</c>).</para>
/// <para>Failures: errors return codes (<c>MPI_ERRORS_RETURN</c>) that become <see cref="DistributedException"/>s
/// rather than killing the job. <see cref="Abort"/> sends a notice to every other rank on a point-to-point control
/// channel (a receive each rank keeps posted), whose next wait then throws <see cref="RankFailedException"/> naming
/// the failed rank; the aborting rank waits up to two seconds for their acknowledgements so they can report before
/// it exits. A rank that is killed is detected by Open MPI's runtime, which ends the job naming it; a rank that hangs
/// makes the others' waits time out.</para>
/// </remarks>
public sealed class MpiCommunicator : Communicator
{
    private const int ControlTag = 0x7e01;
    private const int AckTag = 0x7e02;
    private const int PingTag = 0x7e03;
    private const int PongTag = 0x7e04;
    private const int ControlBytes = 1024;
    private static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(2);
    private static readonly object WorldGate = new();
    private static MpiCommunicator? world;
    private static bool finalized;

    private readonly object gate = new();
    private readonly List<Operation> inFlight = new();
    private readonly AutoResetEvent wake = new(false);
    private readonly Thread? progress;
    private readonly nint floatType, doubleType, intType, longType, byteType, sumOp, maxOp, minOp;
    private readonly byte[] controlBuffer = GC.AllocateArray<byte>(ControlBytes, pinned: true);
    private readonly byte[] ackBuffer = GC.AllocateArray<byte>(4, pinned: true);
    private nint comm;
    private readonly long[] pingBuffer = GC.AllocateArray<long>(1, pinned: true);
    private readonly long[] queryBuffer = GC.AllocateArray<long>(1, pinned: true);
    private readonly List<(nint Request, long[] Buffer)> pongsInFlight = new();
    private nint controlRequest;
    private nint pingRequest;
    private long started;
    private volatile bool stopping;
    private (int Rank, string Reason)? failure;
    private bool aborted;

    private MpiCommunicator(bool progressThread)
    {
        Load();
        Check(MPI_Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0)
        {
            Check(MPI_Init_thread(0, 0, ThreadSerialized, out int provided), "MPI_Init_thread");
            if (provided < ThreadSerialized)
                throw new DistributedException(-1, $"MpiCommunicator: this MPI provides thread level {provided}; MPI_THREAD_SERIALIZED ({ThreadSerialized}) is needed.");
        }
        var worldComm = Global("ompi_mpi_comm_world");
        Check(MPI_Comm_set_errhandler(worldComm, Global("ompi_mpi_errors_return")), "MPI_Comm_set_errhandler");
        Check(MPI_Comm_dup(worldComm, out comm), "MPI_Comm_dup");
        Check(MPI_Comm_rank(comm, out int r), "MPI_Comm_rank");
        Check(MPI_Comm_size(comm, out int s), "MPI_Comm_size");
        Rank = r;
        Size = s;
        floatType = Global("ompi_mpi_float");
        doubleType = Global("ompi_mpi_double");
        intType = Global("ompi_mpi_int");
        longType = Global("ompi_mpi_long");
        byteType = Global("ompi_mpi_byte");
        sumOp = Global("ompi_mpi_op_sum");
        maxOp = Global("ompi_mpi_op_max");
        minOp = Global("ompi_mpi_op_min");
        Check(MPI_Irecv(Address(controlBuffer), ControlBytes, byteType, AnySource, ControlTag, comm, out controlRequest), "MPI_Irecv");
        Check(MPI_Irecv(Address(pingBuffer), 8, byteType, AnySource, PingTag, comm, out pingRequest), "MPI_Irecv");
        if (progressThread)
        {
            progress = new Thread(ProgressLoop) { IsBackground = true, Name = $"mpi-progress-{Rank}" };
            progress.Start();
        }
    }

    /// <summary>True when this process was started by Open MPI's <c>mpirun</c> (its environment names the job's size).</summary>
    public static bool IsLaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") != null;

    /// <summary>
    /// The job's ranks, initialising MPI on first use (with a background progress thread). Disposing it finalises MPI,
    /// after which MPI cannot be used again in this process.
    /// </summary>
    /// <exception cref="DllNotFoundException">Open MPI is not installed.</exception>
    /// <exception cref="ObjectDisposedException">MPI was already finalised.</exception>
    public static MpiCommunicator World
    {
        get
        {
            lock (WorldGate)
            {
                if (finalized) throw new ObjectDisposedException(nameof(MpiCommunicator), "MpiCommunicator: MPI was finalized in this process and cannot start again.");
                return world ??= new MpiCommunicator(progressThread: true);
            }
        }
    }

    /// <inheritdoc />
    public override int Rank { get; }

    /// <inheritdoc />
    public override int Size { get; }

    /// <inheritdoc />
    public override string Backend => "mpi";

    /// <inheritdoc />
    protected internal override CommRequest StartAllReduce(nint data, long count, ElementType type, ReduceOperation op)
    {
        var mpiOp = op switch { ReduceOperation.Sum => sumOp, ReduceOperation.Max => maxOp, _ => minOp };
        return Start("all-reduce", count, type, (dt, n) =>
        {
            Check(MPI_Iallreduce(InPlace, data, n, dt, mpiOp, comm, out var request), "MPI_Iallreduce");
            return request;
        });
    }

    /// <inheritdoc />
    protected internal override CommRequest StartBroadcast(nint data, long count, ElementType type, int root) =>
        Start($"broadcast from rank {root}", count, type, (dt, n) =>
        {
            Check(MPI_Ibcast(data, n, dt, root, comm, out var request), "MPI_Ibcast");
            return request;
        });

    /// <inheritdoc />
    protected internal override CommRequest StartAllGather(nint send, nint receive, long count, ElementType type) =>
        Start("all-gather", count, type, (dt, n) =>
        {
            Check(MPI_Iallgather(send, n, dt, receive, n, dt, comm, out var request), "MPI_Iallgather");
            return request;
        });

    /// <inheritdoc />
    protected internal override CommRequest StartBarrier() =>
        Start("barrier", 0, ElementType.Float32, (_, _) =>
        {
            Check(MPI_Ibarrier(comm, out var request), "MPI_Ibarrier");
            return request;
        });

    private CommRequest Start(string kind, long count, ElementType type, Func<nint, int, nint> post)
    {
        if (aborted) throw new InvalidOperationException($"MpiCommunicator: rank {Rank} has aborted; it cannot start a {kind}.");
        if (count > int.MaxValue)
            throw new ArgumentException($"MpiCommunicator.{kind}: {count} elements exceed one MPI message ({int.MaxValue}); split the buffer.");
        Poll();
        var datatype = type switch
        {
            ElementType.Float32 => floatType,
            ElementType.Float64 => doubleType,
            ElementType.Int32 => intType,
            _ => longType,
        };
        var operation = new Operation();
        // Taken before posting: the progress thread may complete the operation before the request below exists.
        long startedAt = Stopwatch.GetTimestamp();
        lock (gate)
        {
            operation.Request = post(datatype, (int)count);
            inFlight.Add(operation);
            started++;
        }
        wake.Set();
        return new CommRequest(this, count == 0 ? kind : $"{kind} of {count} {type}", count * SizeOf(type),
            () => operation.Done ? operation.CompletedAt : TestNow(operation), startedAt);
    }

    private long TestNow(Operation operation)
    {
        lock (gate)
        {
            TestLocked(operation);
            return operation.Done ? operation.CompletedAt : 0;
        }
    }

    private void TestLocked(Operation operation)
    {
        if (operation.Done) return;
        Check(MPI_Test(ref operation.Request, out int flag, out _), "MPI_Test");
        if (flag == 0) return;
        operation.CompletedAt = Stopwatch.GetTimestamp();
        operation.Done = true;
        inFlight.Remove(operation);
    }

    /// <inheritdoc />
    protected internal override void Poll()
    {
        lock (gate) CheckControlLocked();
        if (failure is { } f) throw new RankFailedException(Rank, f.Rank, f.Reason);
    }

    /// <summary>
    /// Asks every other rank, on the control channel, how many collectives it has started (their progress threads
    /// answer even while their training thread is stuck), and says which ranks are behind or silent.
    /// </summary>
    protected internal override string DescribeStall(CommRequest request)
    {
        var answers = GC.AllocateArray<long>(Size, pinned: true);
        var receives = new nint[Size];
        long mine;
        lock (gate)
        {
            mine = started;
            for (int r = 0; r < Size; r++)
            {
                if (r == Rank) continue;
                if (MPI_Isend(Address(queryBuffer), 8, byteType, r, PingTag, comm, out var send) == Success) MPI_Request_free(ref send);
                if (MPI_Irecv(Address(answers) + 8 * r, 8, byteType, r, PongTag, comm, out receives[r]) != Success) receives[r] = 0;
            }
        }
        var answered = new bool[Size];
        long start = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1) && Enumerable.Range(0, Size).Any(r => r != Rank && receives[r] != 0 && !answered[r]))
        {
            lock (gate)
            {
                for (int r = 0; r < Size; r++)
                    if (r != Rank && receives[r] != 0 && !answered[r] && MPI_Test(ref receives[r], out int flag, out _) == Success && flag != 0)
                        answered[r] = true;
            }
            Pause.Short();
        }
        var parts = new List<string>();
        for (int r = 0; r < Size; r++)
        {
            if (r == Rank) continue;
            if (!answered[r]) parts.Add($"rank {r} does not answer (dead, or stuck inside MPI)");
            else if (answers[r] < mine) parts.Add($"rank {r} is alive but has started {answers[r]} collectives to this rank's {mine} (hung or slow in its own work, or out of step)");
        }
        GC.KeepAlive(answers);
        return string.Join("; ", parts);
    }

    /// <summary>Answers a peer's query about how many collectives this rank has started.</summary>
    private void AnswerPingLocked()
    {
        for (int i = pongsInFlight.Count - 1; i >= 0; i--)
        {
            var (request, buffer) = pongsInFlight[i];
            if (MPI_Test(ref request, out int done, out _) != Success || done != 0) pongsInFlight.RemoveAt(i);
            else pongsInFlight[i] = (request, buffer);
        }
        if (pingRequest == 0) return;
        Check(MPI_Test(ref pingRequest, out int flag, out var status), "MPI_Test");
        if (flag == 0) return;
        var reply = GC.AllocateArray<long>(1, pinned: true);
        reply[0] = started;
        if (MPI_Isend(Address(reply), 8, byteType, status.Source, PongTag, comm, out var send) == Success) pongsInFlight.Add((send, reply));
        Check(MPI_Irecv(Address(pingBuffer), 8, byteType, AnySource, PingTag, comm, out pingRequest), "MPI_Irecv");
    }

    /// <summary>Looks for an abort notice; on one, records it and acknowledges it to its sender.</summary>
    private void CheckControlLocked()
    {
        AnswerPingLocked();
        if (controlRequest == 0 || failure != null) return;
        Check(MPI_Test(ref controlRequest, out int flag, out var status), "MPI_Test");
        if (flag == 0) return;
        controlRequest = 0;
        int length = Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(controlBuffer), 0, ControlBytes - 4);
        failure = (status.Source, Encoding.UTF8.GetString(controlBuffer, 4, length));
        if (MPI_Isend(Address(ackBuffer), 4, byteType, status.Source, AckTag, comm, out var ack) == Success)
            MPI_Request_free(ref ack);
    }

    private void ProgressLoop()
    {
        while (!stopping)
        {
            bool busy;
            lock (gate)
            {
                if (stopping) return;
                foreach (var operation in inFlight.ToArray()) TestLocked(operation);
                CheckControlLocked();
                busy = inFlight.Count > 0;
            }
            if (busy) Pause.Short();
            else wake.WaitOne(50);
        }
    }

    /// <inheritdoc />
    public override void Abort(string reason)
    {
        lock (gate)
        {
            if (aborted) return;
            aborted = true;
        }
        var text = Encoding.UTF8.GetBytes(reason ?? "");
        int length = Math.Min(text.Length, ControlBytes - 4);
        var notice = GC.AllocateArray<byte>(4 + length, pinned: true);
        BinaryPrimitives.WriteInt32LittleEndian(notice, length);
        Array.Copy(text, 0, notice, 4, length);
        var acks = GC.AllocateArray<byte>(4 * Size, pinned: true);
        var pending = new List<nint>();
        lock (gate)
        {
            for (int r = 0; r < Size; r++)
            {
                if (r == Rank) continue;
                if (MPI_Isend(Address(notice), notice.Length, byteType, r, ControlTag, comm, out var send) == Success) pending.Add(send);
                if (MPI_Irecv(Address(acks) + 4 * r, 4, byteType, r, AckTag, comm, out var receive) == Success) pending.Add(receive);
            }
        }
        // Let the others see the notice and report it before this process goes (and the runtime ends the job).
        long start = Stopwatch.GetTimestamp();
        var handles = pending.ToArray();
        while (Stopwatch.GetElapsedTime(start) < AbortGrace)
        {
            bool all = true;
            lock (gate)
            {
                for (int i = 0; i < handles.Length; i++)
                {
                    if (handles[i] == 0) continue;
                    if (MPI_Test(ref handles[i], out int flag, out _) != Success || flag != 0) handles[i] = 0;
                    else all = false;
                }
            }
            if (all) break;
            Pause.Short();
        }
        GC.KeepAlive(notice);
        GC.KeepAlive(acks);
    }

    /// <summary>
    /// Ends the whole job at once through <c>MPI_Abort</c> (the runtime kills every rank): the last resort when a
    /// rank cannot go on and must not leave the others waiting.
    /// </summary>
    public void AbortJob(int errorCode)
    {
        lock (gate) MPI_Abort(comm, errorCode);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        stopping = true;
        wake.Set();
        progress?.Join();
        lock (gate)
        {
            CancelLocked(ref controlRequest);
            CancelLocked(ref pingRequest);
            MPI_Comm_free(ref comm);
            lock (WorldGate)
            {
                if (ReferenceEquals(world, this)) world = null;
                finalized = true;
            }
            MPI_Finalize();
        }
        wake.Dispose();
    }

    private static void CancelLocked(ref nint request)
    {
        if (request == 0) return;
        MPI_Cancel(ref request);
        long start = Stopwatch.GetTimestamp();
        while (request != 0 && Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1))
            if (MPI_Test(ref request, out int flag, out _) != Success || flag != 0) request = 0;
    }

    private void Check(int code, string call)
    {
        if (code != Success)
            throw new DistributedException(RankOrUnknown, $"rank {RankOrUnknown}: {call} failed: {ErrorString(code)}");
    }

    private int RankOrUnknown => Size > 0 ? Rank : -1;

    private sealed class Operation
    {
        public nint Request;
        public long CompletedAt;
        public volatile bool Done;
    }
}
