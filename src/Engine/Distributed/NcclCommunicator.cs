using System.Runtime.InteropServices;
using Engine.Kernels;
using Engine.Kernels.Ilgpu;
using ILGPU.Runtime;
using Device = Engine.Kernels.Device;
using ILGPU.Runtime.Cuda;

namespace Engine.Distributed;

/// <summary>
/// Gradient collectives on CUDA device memory through NCCL (libnccl.so.2), one rank per GPU, over a bootstrap
/// communicator (MPI) that distributes NCCL's unique id and carries the host-memory collectives (metrics, barriers).
/// Device buffers go to <c>ncclAllReduce</c> / <c>ncclBroadcast</c> as raw device pointers, enqueued on the
/// accelerator's default stream so they run after the kernels that wrote them; completion is an event recorded
/// behind them and polled with <c>cuEventQuery</c> against the deadline, while <c>ncclCommGetAsyncError</c> reports
/// a failed peer (the communicator is then aborted with <c>ncclCommAbort</c>).
/// </summary>
/// <remarks>
/// Chosen by <see cref="Communicators.ForDevice"/> only when the device is a CUDA GPU and libnccl.so.2 loads. This
/// binding compiles everywhere but has not run: the development machines have no GPU. See the README's distributed
/// section for what remains to be done before it can.
/// </remarks>
public sealed class NcclCommunicator : Communicator
{
    private readonly Communicator bootstrap;
    private readonly Device device;
    private nint comm;

    private NcclCommunicator(Communicator bootstrap, Device device, nint comm)
    {
        this.bootstrap = bootstrap;
        this.device = device;
        this.comm = comm;
    }

    /// <summary>True when <paramref name="device"/> is a CUDA GPU and NCCL (libnccl.so.2) can be loaded.</summary>
    public static bool IsAvailable(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.Kind != DeviceKind.Cuda) return false;
        if (!NativeLibrary.TryLoad(NcclNative.Library, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }

    /// <summary>
    /// Creates the NCCL communicator of the ranks of <paramref name="bootstrap"/>, each on its CUDA
    /// <paramref name="device"/>: rank 0 draws NCCL's unique id and broadcasts it through the bootstrap, then every
    /// rank joins with <c>ncclCommInitRank</c>.
    /// </summary>
    /// <exception cref="NotSupportedException">The device is not CUDA or NCCL is missing.</exception>
    public static NcclCommunicator Create(Communicator bootstrap, Device device)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        if (!IsAvailable(device))
            throw new NotSupportedException($"NcclCommunicator: needs a CUDA device and {NcclNative.Library}; got device '{device.Name}'.");
        var id = new NcclNative.UniqueId();
        if (bootstrap.Rank == 0) NcclNative.Check(NcclNative.ncclGetUniqueId(ref id), "ncclGetUniqueId");
        var words = MemoryMarshal.Cast<NcclNative.UniqueId, long>(MemoryMarshal.CreateSpan(ref id, 1));
        bootstrap.Broadcast(words, 0);
        NcclNative.Check(NcclNative.ncclCommInitRank(out var comm, bootstrap.Size, id, bootstrap.Rank), "ncclCommInitRank");
        return new NcclCommunicator(bootstrap, device, comm) { Timeout = bootstrap.Timeout };
    }

    /// <inheritdoc />
    public override int Rank => bootstrap.Rank;

    /// <inheritdoc />
    public override int Size => bootstrap.Size;

    /// <inheritdoc />
    public override string Backend => "nccl";

    /// <inheritdoc />
    public override bool SupportsDeviceMemory(Device d) => ReferenceEquals(d, device);

    /// <inheritdoc />
    protected override CommRequest StartAllReduceDevice(DeviceBuffer<float> buffer, ReduceOperation op)
    {
        var (pointer, stream) = Locate(buffer);
        int ncclOp = op switch { ReduceOperation.Sum => NcclNative.Sum, ReduceOperation.Max => NcclNative.Max, _ => NcclNative.Min };
        NcclNative.Check(NcclNative.ncclAllReduce(pointer, pointer, (nuint)buffer.Length, NcclNative.Float32, ncclOp, comm, stream), "ncclAllReduce");
        return Completion(stream, $"nccl all-reduce of {buffer.Length} float32", buffer.Length * 4);
    }

    /// <inheritdoc />
    protected override CommRequest StartBroadcastDevice(DeviceBuffer<float> buffer, int root)
    {
        var (pointer, stream) = Locate(buffer);
        NcclNative.Check(NcclNative.ncclBroadcast(pointer, pointer, (nuint)buffer.Length, NcclNative.Float32, root, comm, stream), "ncclBroadcast");
        return Completion(stream, $"nccl broadcast of {buffer.Length} float32 from rank {root}", buffer.Length * 4);
    }

    /// <summary>The device pointer of a CUDA buffer and the stream its kernels run on.</summary>
    private static (nint Pointer, nint Stream) Locate(DeviceBuffer<float> buffer)
    {
        if (buffer is not IlgpuBuffer<float> gpu)
            throw new ArgumentException($"NcclCommunicator: the buffer lives on {buffer.Device.Name}, not on a CUDA device.");
        var view = gpu.View;
        var accelerator = view.GetAccelerator();
        if (accelerator.DefaultStream is not CudaStream stream)
            throw new ArgumentException($"NcclCommunicator: the buffer's accelerator is {accelerator.AcceleratorType}, not CUDA.");
        return (view.LoadEffectiveAddressAsPtr(), stream.StreamPtr);
    }

    /// <summary>A request completed by an event recorded on the stream behind the collective.</summary>
    private CommRequest Completion(nint stream, string operation, long bytes)
    {
        NcclNative.CheckCuda(NcclNative.cuEventCreate(out var cudaEvent, NcclNative.EventDisableTiming), "cuEventCreate");
        NcclNative.CheckCuda(NcclNative.cuEventRecord(cudaEvent, stream), "cuEventRecord");
        return new CommRequest(this, operation, bytes, () =>
        {
            int status = NcclNative.cuEventQuery(cudaEvent);
            if (status == NcclNative.CudaNotReady) return 0L;
            NcclNative.cuEventDestroy_v2(cudaEvent);
            NcclNative.CheckCuda(status, "cuEventQuery");
            return System.Diagnostics.Stopwatch.GetTimestamp();
        });
    }

    /// <inheritdoc />
    protected internal override void Poll()
    {
        bootstrap.Poll();
        if (comm == 0) return;
        NcclNative.Check(NcclNative.ncclCommGetAsyncError(comm, out int asyncError), "ncclCommGetAsyncError");
        if (asyncError != NcclNative.Success && asyncError != NcclNative.InProgress)
        {
            NcclNative.ncclCommAbort(comm);
            comm = 0;
            throw new DistributedException(Rank, $"rank {Rank}: NCCL failed asynchronously: {NcclNative.ErrorString(asyncError)}");
        }
    }

    /// <inheritdoc />
    protected internal override CommRequest StartAllReduce(nint data, long count, ElementType type, ReduceOperation op) =>
        bootstrap.StartAllReduce(data, count, type, op);

    /// <inheritdoc />
    protected internal override CommRequest StartBroadcast(nint data, long count, ElementType type, int root) =>
        bootstrap.StartBroadcast(data, count, type, root);

    /// <inheritdoc />
    protected internal override CommRequest StartAllGather(nint send, nint receive, long count, ElementType type) =>
        bootstrap.StartAllGather(send, receive, count, type);

    /// <inheritdoc />
    protected internal override CommRequest StartBarrier() => bootstrap.StartBarrier();

    /// <inheritdoc />
    public override void Abort(string reason)
    {
        if (comm != 0) NcclNative.ncclCommAbort(comm);
        comm = 0;
        bootstrap.Abort(reason);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (comm != 0) NcclNative.ncclCommDestroy(comm);
        comm = 0;
    }
}

/// <summary>NCCL's and the CUDA driver's C functions that <see cref="NcclCommunicator"/> calls.</summary>
internal static partial class NcclNative
{
    public const string Library = "libnccl.so.2";
    private const string Cuda = "libcuda.so.1";

    public const int Success = 0;
    public const int InProgress = 7;
    public const int Float32 = 7;
    public const int Sum = 0;
    public const int Max = 2;
    public const int Min = 3;
    public const int CudaNotReady = 600;
    public const uint EventDisableTiming = 2;

    /// <summary>NCCL's <c>ncclUniqueId</c>: 128 opaque bytes, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 128)]
    public struct UniqueId
    {
        private long first;
    }

    [LibraryImport(Library)] public static partial int ncclGetUniqueId(ref UniqueId id);
    [LibraryImport(Library)] public static partial int ncclCommInitRank(out nint comm, int ranks, UniqueId id, int rank);
    [LibraryImport(Library)] public static partial int ncclAllReduce(nint send, nint receive, nuint count, int datatype, int op, nint comm, nint stream);
    [LibraryImport(Library)] public static partial int ncclBroadcast(nint send, nint receive, nuint count, int datatype, int root, nint comm, nint stream);
    [LibraryImport(Library)] public static partial int ncclCommGetAsyncError(nint comm, out int asyncError);
    [LibraryImport(Library)] public static partial int ncclCommAbort(nint comm);
    [LibraryImport(Library)] public static partial int ncclCommDestroy(nint comm);
    [LibraryImport(Library)] private static partial nint ncclGetErrorString(int result);
    [LibraryImport(Cuda)] public static partial int cuEventCreate(out nint cudaEvent, uint flags);
    [LibraryImport(Cuda)] public static partial int cuEventRecord(nint cudaEvent, nint stream);
    [LibraryImport(Cuda)] public static partial int cuEventQuery(nint cudaEvent);
    [LibraryImport(Cuda)] public static partial int cuEventDestroy_v2(nint cudaEvent);

    public static string ErrorString(int result) => Marshal.PtrToStringUTF8(ncclGetErrorString(result)) ?? $"NCCL error {result}";

    public static void Check(int result, string call)
    {
        if (result != Success && result != InProgress)
            throw new DistributedException(-1, $"{call} failed: {ErrorString(result)}");
    }

    public static void CheckCuda(int result, string call)
    {
        if (result != 0) throw new DistributedException(-1, $"{call} failed: CUDA error {result}");
    }
}
