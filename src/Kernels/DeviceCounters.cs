using System.Diagnostics;

namespace Engine.Kernels;

/// <summary>
/// Running totals of what one <see cref="Device"/> did: buffers handed out, bytes held, kernel launches and copies
/// between host and device. Every member is thread-safe (updated with <see cref="Interlocked"/>). For before/after
/// measurements take a <see cref="Snapshot"/> on each side and subtract them with
/// <see cref="DeviceCounterSnapshot.Minus"/>.
/// </summary>
/// <remarks>
/// What counts:
/// <list type="bullet">
/// <item><see cref="Allocations"/>: every buffer a kernel set hands out (through <see cref="IKernelSet.Allocate"/>,
/// <see cref="IKernelSet.AllocateInt"/> or internally as scratch), pool hits included.</item>
/// <item><see cref="BytesInUse"/>: bytes of the buffers handed out and not yet disposed (a buffer's logical size,
/// length times element size); <see cref="PeakBytes"/> is its maximum since creation or the last
/// <see cref="ResetPeak"/>.</item>
/// <item><see cref="PoolHits"/> and <see cref="CachedBytes"/>: allocations served from a pool of freed memory and
/// the bytes such a pool holds for reuse (the CPU set's pool of pinned arrays, the ILGPU set's caching allocator of
/// device memory, whose bytes are those of its rounded size classes; 0 on a set without a pool).</item>
/// <item><see cref="KernelLaunches"/>: on the CPU set one per call of a kernel-set entry point (core or
/// capability), on the ILGPU set one per kernel launch or device-side copy (an entry point may launch several).</item>
/// <item><see cref="DeviceToHostCopies"/> and <see cref="HostToDeviceCopies"/>: calls of
/// <see cref="DeviceBuffer{T}.CopyToHost"/> and <see cref="DeviceBuffer{T}.CopyFromHost"/> (a read of a
/// <see cref="DeviceScalar"/> is one), also on the CPU set, where they are plain memory copies.</item>
/// <item><see cref="KernelLoads"/> and <see cref="KernelLoadTime"/>: kernels a kernel set compiled and loaded, and the
/// wall time that took (the ILGPU set: once per kernel and type argument per accelerator, on first use; 0 on the CPU
/// set, whose kernels are .NET code the runtime's JIT compiles).</item>
/// </list>
/// </remarks>
public sealed class DeviceCounters
{
    private long allocations;
    private long poolHits;
    private long bytesInUse;
    private long peakBytes;
    private long cachedBytes;
    private long kernelLaunches;
    private long deviceToHostCopies;
    private long hostToDeviceCopies;
    private long kernelLoads;
    private long kernelLoadTicks;
    private Func<long>? cachedBytesSource;

    /// <summary>Buffers handed out, pool hits included.</summary>
    public long Allocations => Interlocked.Read(ref allocations);

    /// <summary>Allocations served from a pool of freed memory (0 on a kernel set without a pool).</summary>
    public long PoolHits => Interlocked.Read(ref poolHits);

    /// <summary>Bytes of the buffers handed out and not yet disposed.</summary>
    public long BytesInUse => Interlocked.Read(ref bytesInUse);

    /// <summary>The largest <see cref="BytesInUse"/> seen since the device was created or <see cref="ResetPeak"/> ran.</summary>
    public long PeakBytes => Interlocked.Read(ref peakBytes);

    /// <summary>Bytes a pool keeps for reuse, not counted in <see cref="BytesInUse"/> (0 on a kernel set without a pool).</summary>
    public long CachedBytes => cachedBytesSource?.Invoke() ?? Interlocked.Read(ref cachedBytes);

    /// <summary>Kernel launches (CPU set: entry-point calls).</summary>
    public long KernelLaunches => Interlocked.Read(ref kernelLaunches);

    /// <summary>Copies from device memory to the host (<see cref="DeviceBuffer{T}.CopyToHost"/> calls).</summary>
    public long DeviceToHostCopies => Interlocked.Read(ref deviceToHostCopies);

    /// <summary>Copies from the host to device memory (<see cref="DeviceBuffer{T}.CopyFromHost"/> calls).</summary>
    public long HostToDeviceCopies => Interlocked.Read(ref hostToDeviceCopies);

    /// <summary>Kernels the kernel set compiled and loaded (0 on the CPU set).</summary>
    public long KernelLoads => Interlocked.Read(ref kernelLoads);

    /// <summary>Wall time the kernel set spent compiling and loading <see cref="KernelLoads"/> kernels.</summary>
    public TimeSpan KernelLoadTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref kernelLoadTicks));

    /// <summary>Starts a new peak: <see cref="PeakBytes"/> becomes the current <see cref="BytesInUse"/>.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref peakBytes, Interlocked.Read(ref bytesInUse));

    /// <summary>An immutable copy of every counter now.</summary>
    public DeviceCounterSnapshot Snapshot() => new(Allocations, PoolHits, BytesInUse, PeakBytes, CachedBytes, KernelLaunches,
        DeviceToHostCopies, HostToDeviceCopies, KernelLoads, KernelLoadTime);

    /// <inheritdoc />
    public override string ToString() => Snapshot().ToString();

    // ---- recording, by the kernel sets and buffers of this assembly ----

    internal void RecordAllocation(long bytes, bool poolHit)
    {
        Interlocked.Increment(ref allocations);
        if (poolHit) Interlocked.Increment(ref poolHits);
        long now = Interlocked.Add(ref bytesInUse, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref peakBytes)) && Interlocked.CompareExchange(ref peakBytes, now, peak) != peak)
        {
        }
    }

    internal void RecordRelease(long bytes) => Interlocked.Add(ref bytesInUse, -bytes);

    internal void RecordLaunch() => Interlocked.Increment(ref kernelLaunches);

    internal void RecordDeviceToHost() => Interlocked.Increment(ref deviceToHostCopies);

    internal void RecordHostToDevice() => Interlocked.Increment(ref hostToDeviceCopies);

    /// <summary>Counts one kernel load that took <paramref name="stopwatchTicks"/> (<see cref="Stopwatch"/> ticks).</summary>
    internal void RecordKernelLoad(long stopwatchTicks)
    {
        Interlocked.Increment(ref kernelLoads);
        Interlocked.Add(ref kernelLoadTicks, stopwatchTicks);
    }

    /// <summary>Adds <paramref name="deltaBytes"/> to <see cref="CachedBytes"/> (a pool that keeps its own count uses <see cref="UseCachedBytesSource"/>).</summary>
    internal void RecordCached(long deltaBytes) => Interlocked.Add(ref cachedBytes, deltaBytes);

    /// <summary>Makes <see cref="CachedBytes"/> read <paramref name="source"/> (a pool shared beyond this device's counters).</summary>
    internal void UseCachedBytesSource(Func<long> source) => cachedBytesSource = source;
}

/// <summary>The counters of a device at one moment (<see cref="DeviceCounters.Snapshot"/>).</summary>
/// <param name="Allocations">Buffers handed out, pool hits included.</param>
/// <param name="PoolHits">Allocations served from a pool.</param>
/// <param name="BytesInUse">Bytes of live buffers.</param>
/// <param name="PeakBytes">Largest <paramref name="BytesInUse"/> since creation or the last reset.</param>
/// <param name="CachedBytes">Bytes a pool keeps for reuse.</param>
/// <param name="KernelLaunches">Kernel launches (CPU set: entry-point calls).</param>
/// <param name="DeviceToHostCopies">Copies from device memory to the host.</param>
/// <param name="HostToDeviceCopies">Copies from the host to device memory.</param>
/// <param name="KernelLoads">Kernels the kernel set compiled and loaded.</param>
/// <param name="KernelLoadTime">Wall time those loads took.</param>
public sealed record DeviceCounterSnapshot(long Allocations, long PoolHits, long BytesInUse, long PeakBytes, long CachedBytes,
    long KernelLaunches, long DeviceToHostCopies, long HostToDeviceCopies, long KernelLoads = 0, TimeSpan KernelLoadTime = default)
{
    /// <summary>
    /// This snapshot minus an <paramref name="earlier"/> one, counter by counter: what happened in between (for the
    /// gauges <see cref="BytesInUse"/>, <see cref="PeakBytes"/> and <see cref="CachedBytes"/>, the change).
    /// </summary>
    public DeviceCounterSnapshot Minus(DeviceCounterSnapshot earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        return new(Allocations - earlier.Allocations, PoolHits - earlier.PoolHits, BytesInUse - earlier.BytesInUse,
            PeakBytes - earlier.PeakBytes, CachedBytes - earlier.CachedBytes, KernelLaunches - earlier.KernelLaunches,
            DeviceToHostCopies - earlier.DeviceToHostCopies, HostToDeviceCopies - earlier.HostToDeviceCopies,
            KernelLoads - earlier.KernelLoads, KernelLoadTime - earlier.KernelLoadTime);
    }
}
