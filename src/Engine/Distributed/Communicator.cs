using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Kernels.Cpu;

namespace Engine.Distributed;

/// <summary>How <see cref="Communicator.StartAllReduce(DeviceBuffer{float}, ReduceOperation)"/> combines the ranks' values.</summary>
public enum ReduceOperation
{
    /// <summary>Element-wise sum.</summary>
    Sum,
    /// <summary>Element-wise maximum.</summary>
    Max,
    /// <summary>Element-wise minimum.</summary>
    Min,
}

/// <summary>The element types a <see cref="Communicator"/> moves.</summary>
public enum ElementType
{
    /// <summary>32-bit float (tensors, gradients).</summary>
    Float32,
    /// <summary>64-bit float (metrics).</summary>
    Float64,
    /// <summary>32-bit integer (index buffers).</summary>
    Int32,
    /// <summary>64-bit integer (counts).</summary>
    Int64,
}

/// <summary>
/// A group of <see cref="Size"/> processes (ranks) that exchange data with collective operations, as
/// <c>torch.distributed</c>'s process group: all-reduce, broadcast, all-gather and barrier, each started
/// non-blocking (<see cref="CommRequest"/>) or run to completion. Every rank must call the same collectives in the
/// same order with matching sizes. Waits never block without bound: a wait that passes <see cref="Timeout"/> throws
/// <see cref="CommunicationTimeoutException"/>, and a rank that fails and calls <see cref="Abort"/> (or runs its
/// work under <see cref="RunOrAbort"/>) makes every other rank's next wait throw <see cref="RankFailedException"/>
/// naming it.
/// </summary>
/// <remarks>
/// Implementations: <see cref="MpiCommunicator"/> (processes started by <c>mpirun</c>, host memory through Open MPI),
/// <see cref="InProcessCommunicator"/> (threads as ranks, for tests, with injectable latency and bandwidth) and
/// <see cref="NcclCommunicator"/> (CUDA device memory through NCCL). The CPU device's buffers are pinned host memory
/// and go to the backend directly; so do a GPU's when <see cref="SupportsDeviceMemory"/> says the backend reads them
/// (NCCL); any other device's buffer is staged through pinned host memory.
/// </remarks>
public abstract class Communicator : IDisposable
{
    private bool disposed;

    /// <summary>The default wait limit: <c>ENGINE_DIST_TIMEOUT</c> seconds if set, else 300 s.</summary>
    public static TimeSpan DefaultTimeout
    {
        get
        {
            var text = Environment.GetEnvironmentVariable("ENGINE_DIST_TIMEOUT");
            return double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
                ? TimeSpan.FromSeconds(s)
                : TimeSpan.FromMinutes(5);
        }
    }

    /// <summary>This process's index in the group, 0 to <see cref="Size"/> - 1.</summary>
    public abstract int Rank { get; }

    /// <summary>Number of ranks in the group.</summary>
    public abstract int Size { get; }

    /// <summary>The backend's name: "mpi", "in-process", "nccl".</summary>
    public abstract string Backend { get; }

    /// <summary>How long a wait may take before it throws <see cref="CommunicationTimeoutException"/>.</summary>
    public TimeSpan Timeout { get; set; } = DefaultTimeout;

    /// <summary>
    /// True if buffers on <paramref name="device"/>, a device other than the CPU, go to the backend directly (NCCL and
    /// CUDA memory); false if they are staged through host memory. The CPU device's buffers are host memory and always
    /// go directly.
    /// </summary>
    public virtual bool SupportsDeviceMemory(Device device) => false;

    // ---------- non-blocking collectives on device buffers ----------

    /// <summary>
    /// Starts an in-place all-reduce of <paramref name="buffer"/> (every element combined over the ranks with
    /// <paramref name="op"/>; all ranks end with the result). The buffer must not be touched until the request
    /// completes.
    /// </summary>
    public CommRequest StartAllReduce(DeviceBuffer<float> buffer, ReduceOperation op = ReduceOperation.Sum)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ThrowIfDisposed("all-reduce");
        buffer.ThrowIfDisposed("all-reduce");
        if (buffer is not CpuBuffer<float> && SupportsDeviceMemory(buffer.Device))
            return StartAllReduceDevice(buffer, op);
        return Staged(buffer, "all-reduce", ptr => StartAllReduce(ptr, buffer.Length, ElementType.Float32, op), copyIn: true);
    }

    /// <summary>Starts a broadcast of <paramref name="buffer"/> from <paramref name="root"/> to every rank (in place).</summary>
    public CommRequest StartBroadcast(DeviceBuffer<float> buffer, int root)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ThrowIfDisposed("broadcast");
        buffer.ThrowIfDisposed("broadcast");
        CheckRoot(root, "broadcast");
        if (buffer is not CpuBuffer<float> && SupportsDeviceMemory(buffer.Device))
            return StartBroadcastDevice(buffer, root);
        return Staged(buffer, "broadcast", ptr => StartBroadcast(ptr, buffer.Length, ElementType.Float32, root), copyIn: Rank == root);
    }

    // ---------- blocking collectives ----------

    /// <summary>All-reduces <paramref name="buffer"/> in place and waits for the result.</summary>
    public void AllReduce(DeviceBuffer<float> buffer, ReduceOperation op = ReduceOperation.Sum) => StartAllReduce(buffer, op).Wait();

    /// <summary>All-reduces a tensor's data in place (outside the tape) and waits.</summary>
    public void AllReduce(Tensor tensor, ReduceOperation op = ReduceOperation.Sum)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        AllReduce(tensor.Buffer, op);
    }

    /// <summary>Broadcasts <paramref name="buffer"/> from <paramref name="root"/> and waits.</summary>
    public void Broadcast(DeviceBuffer<float> buffer, int root) => StartBroadcast(buffer, root).Wait();

    /// <summary>Broadcasts a tensor's data from <paramref name="root"/> (outside the tape) and waits.</summary>
    public void Broadcast(Tensor tensor, int root)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        Broadcast(tensor.Buffer, root);
    }

    /// <summary>
    /// Gathers every rank's <paramref name="send"/> into <paramref name="receive"/>, rank after rank
    /// (<paramref name="receive"/> holds <see cref="Size"/> times as many elements), and waits.
    /// </summary>
    /// <exception cref="ArgumentException">The receive buffer's length is not <see cref="Size"/> times the send buffer's.</exception>
    public void AllGather(DeviceBuffer<float> send, DeviceBuffer<float> receive)
    {
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(receive);
        if (receive.Length != send.Length * Size)
            throw new ArgumentException($"{GetType().Name}.AllGather: the receive buffer holds {receive.Length} elements; {Size} ranks of {send.Length} need {send.Length * Size}.");
        var sendHost = send.ToArray();
        var receiveHost = new float[receive.Length];
        AllGather<float>(sendHost, receiveHost);
        receive.CopyFromHost(receiveHost);
    }

    /// <summary>All-reduces host values in place (metrics, counts) and waits.</summary>
    public unsafe void AllReduce<T>(Span<T> values, ReduceOperation op = ReduceOperation.Sum) where T : unmanaged
    {
        ThrowIfDisposed("all-reduce");
        var type = TypeOf<T>();
        if (values.IsEmpty) return;
        fixed (T* p = values) StartAllReduce((nint)p, values.Length, type, op).Wait();
    }

    /// <summary>Broadcasts host values from <paramref name="root"/> in place and waits.</summary>
    public unsafe void Broadcast<T>(Span<T> values, int root) where T : unmanaged
    {
        ThrowIfDisposed("broadcast");
        CheckRoot(root, "broadcast");
        var type = TypeOf<T>();
        if (values.IsEmpty) return;
        fixed (T* p = values) StartBroadcast((nint)p, values.Length, type, root).Wait();
    }

    /// <summary>Gathers every rank's <paramref name="send"/> into <paramref name="receive"/> (rank after rank) and waits.</summary>
    /// <exception cref="ArgumentException">The receive span's length is not <see cref="Size"/> times the send span's.</exception>
    public unsafe void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged
    {
        ThrowIfDisposed("all-gather");
        if (receive.Length != (long)send.Length * Size)
            throw new ArgumentException($"{GetType().Name}.AllGather: the receive span holds {receive.Length} elements; {Size} ranks of {send.Length} need {(long)send.Length * Size}.");
        var type = TypeOf<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
            StartAllGather((nint)s, (nint)r, send.Length, type).Wait();
    }

    /// <summary>Waits until every rank has reached the barrier.</summary>
    public void Barrier()
    {
        ThrowIfDisposed("barrier");
        StartBarrier().Wait();
    }

    /// <summary>
    /// Runs <paramref name="body"/>; if it throws, tells every other rank that this one failed (<see cref="Abort"/>,
    /// with the exception's message) and rethrows, so the others stop with a <see cref="RankFailedException"/> naming
    /// this rank instead of waiting for it. A <see cref="RankFailedException"/> (another rank failed first) is
    /// rethrown as it is.
    /// </summary>
    public void RunOrAbort(Action body)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            body();
        }
        catch (RankFailedException)
        {
            throw;
        }
        catch (Exception e)
        {
            Abort($"{e.GetType().Name}: {e.Message}");
            throw;
        }
    }

    /// <summary>
    /// Tells every other rank that this rank has failed, giving <paramref name="reason"/>: their current or next wait
    /// throws <see cref="RankFailedException"/> naming this rank. Returns after the notices were delivered or a short
    /// grace period passed; the communicator cannot be used afterwards. Callable once; later calls do nothing.
    /// </summary>
    public abstract void Abort(string reason);

    // ---------- what a backend implements ----------

    /// <summary>Starts an in-place all-reduce of <paramref name="count"/> elements at <paramref name="data"/> (pinned until the request completes).</summary>
    protected internal abstract CommRequest StartAllReduce(nint data, long count, ElementType type, ReduceOperation op);

    /// <summary>Starts an in-place broadcast of <paramref name="count"/> elements at <paramref name="data"/> from <paramref name="root"/>.</summary>
    protected internal abstract CommRequest StartBroadcast(nint data, long count, ElementType type, int root);

    /// <summary>Starts an all-gather of <paramref name="count"/> elements per rank from <paramref name="send"/> into <paramref name="receive"/>.</summary>
    protected internal abstract CommRequest StartAllGather(nint send, nint receive, long count, ElementType type);

    /// <summary>Starts a barrier.</summary>
    protected internal abstract CommRequest StartBarrier();

    /// <summary>All-reduce on a device buffer the backend reads directly (<see cref="SupportsDeviceMemory"/> true, not host memory).</summary>
    protected virtual CommRequest StartAllReduceDevice(DeviceBuffer<float> buffer, ReduceOperation op) =>
        throw new NotSupportedException($"{GetType().Name}: device buffers on {buffer.Device.Name} are not supported.");

    /// <summary>Broadcast on a device buffer the backend reads directly.</summary>
    protected virtual CommRequest StartBroadcastDevice(DeviceBuffer<float> buffer, int root) =>
        throw new NotSupportedException($"{GetType().Name}: device buffers on {buffer.Device.Name} are not supported.");

    /// <summary>
    /// Called by waits while they poll: throws <see cref="RankFailedException"/> if another rank has aborted, and lets
    /// the backend make progress. Called under no lock; cheap.
    /// </summary>
    protected internal virtual void Poll() { }

    /// <summary>Describes, for a timeout message, which ranks a pending collective is waiting for (empty when unknown).</summary>
    protected internal virtual string DescribeStall(CommRequest request) => "";

    // ---------- helpers for backends ----------

    /// <summary>Size in bytes of one element of <paramref name="type"/>.</summary>
    public static int SizeOf(ElementType type) => type switch
    {
        ElementType.Float32 or ElementType.Int32 => 4,
        _ => 8,
    };

    /// <summary>The <see cref="ElementType"/> of <typeparamref name="T"/>.</summary>
    /// <exception cref="NotSupportedException">T is none of float, double, int, long.</exception>
    public static ElementType TypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? ElementType.Float32
        : typeof(T) == typeof(double) ? ElementType.Float64
        : typeof(T) == typeof(int) ? ElementType.Int32
        : typeof(T) == typeof(long) ? ElementType.Int64
        : throw new NotSupportedException($"Communicator: element type {typeof(T).Name} is not supported (float, double, int, long).");

    /// <summary>Throws unless <paramref name="root"/> is a rank of this group.</summary>
    protected void CheckRoot(int root, string op)
    {
        if (root < 0 || root >= Size)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"{GetType().Name}.{op}: root {root} is not a rank of this group of {Size}.");
    }

    /// <summary>Throws if the communicator was disposed.</summary>
    protected void ThrowIfDisposed(string op)
    {
        if (disposed) throw new ObjectDisposedException(GetType().Name, $"{GetType().Name}.{op}: the communicator was disposed.");
    }

    /// <summary>
    /// Runs a collective on a device buffer through host memory: the CPU device's own pinned array directly, any
    /// other device's data through a pinned host copy that is written back when the request completes.
    /// </summary>
    private CommRequest Staged(DeviceBuffer<float> buffer, string op, Func<nint, CommRequest> start, bool copyIn)
    {
        if (buffer.Length > int.MaxValue)
            throw new ArgumentException($"{GetType().Name}.{op}: {buffer.Length} elements exceed one message ({int.MaxValue}); split the buffer.");
        if (buffer is CpuBuffer<float> cpu) return start(Address(cpu.Data));
        var host = GC.AllocateUninitializedArray<float>((int)buffer.Length, pinned: true);
        if (copyIn) buffer.CopyToHost(host);
        var inner = start(Address(host));
        return inner.Then(() => buffer.CopyFromHost(host));
    }

    /// <summary>The address of a pinned array's first element.</summary>
    internal static unsafe nint Address<T>(T[] pinned) where T : unmanaged =>
        (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));

    /// <summary>Frees the backend's resources. After this, every call throws.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the backend's resources; runs once.</summary>
    protected virtual void Dispose(bool disposing) { }
}
