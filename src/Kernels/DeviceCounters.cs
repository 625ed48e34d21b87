namespace Engine.Kernels;

/// <summary>
/// Live memory and work counters of one <see cref="Device"/> (<see cref="Device.Counters"/>): buffers allocated, how
/// many came from the device's cache, the bytes held by live buffers and their peak, the bytes the cache keeps for
/// reuse, and kernel launches. Thread-safe; read a consistent copy with <see cref="Snapshot"/>.
/// </summary>
public sealed class DeviceCounters
{
    private long allocations, poolHits, bytesInUse, peakBytes, kernelLaunches;
    private readonly Func<long> cachedBytes;

    /// <summary>Counters whose <see cref="CachedBytes"/> reads <paramref name="cachedBytes"/>.</summary>
    internal DeviceCounters(Func<long> cachedBytes) => this.cachedBytes = cachedBytes;

    /// <summary>Buffers allocated so far (from the cache or fresh).</summary>
    public long Allocations => Interlocked.Read(ref allocations);

    /// <summary>Allocations served from the device's cache of freed buffers.</summary>
    public long PoolHits => Interlocked.Read(ref poolHits);

    /// <summary>Bytes held by buffers that were allocated and not yet disposed.</summary>
    public long BytesInUse => Interlocked.Read(ref bytesInUse);

    /// <summary>The largest <see cref="BytesInUse"/> since the device was created or <see cref="ResetPeak"/>.</summary>
    public long PeakBytes => Interlocked.Read(ref peakBytes);

    /// <summary>Bytes of freed buffers the device keeps for reuse (returned to the system by <see cref="Device.TrimCache"/>).</summary>
    public long CachedBytes => cachedBytes();

    /// <summary>Kernels launched (where the kernel set counts them).</summary>
    public long KernelLaunches => Interlocked.Read(ref kernelLaunches);

    /// <summary>Sets <see cref="PeakBytes"/> to the bytes in use now.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref peakBytes, BytesInUse);

    /// <summary>An immutable copy of every counter.</summary>
    public DeviceCountersSnapshot Snapshot() =>
        new(Allocations, PoolHits, BytesInUse, PeakBytes, CachedBytes, KernelLaunches);

    internal void OnPoolHit() => Interlocked.Increment(ref poolHits);

    internal void OnAllocate(long bytes)
    {
        Interlocked.Increment(ref allocations);
        long now = Interlocked.Add(ref bytesInUse, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref peakBytes)) && Interlocked.CompareExchange(ref peakBytes, now, peak) != peak)
        {
        }
    }

    internal void OnFree(long bytes) => Interlocked.Add(ref bytesInUse, -bytes);

    internal void OnKernelLaunch() => Interlocked.Increment(ref kernelLaunches);
}

/// <summary>The counters of a device at one moment (<see cref="DeviceCounters.Snapshot"/>).</summary>
/// <param name="Allocations">Buffers allocated.</param>
/// <param name="PoolHits">Allocations served from the cache.</param>
/// <param name="BytesInUse">Bytes held by live buffers.</param>
/// <param name="PeakBytes">Peak of <paramref name="BytesInUse"/>.</param>
/// <param name="CachedBytes">Bytes kept for reuse.</param>
/// <param name="KernelLaunches">Kernels launched.</param>
public sealed record DeviceCountersSnapshot(long Allocations, long PoolHits, long BytesInUse, long PeakBytes, long CachedBytes, long KernelLaunches)
{
    /// <summary>This snapshot minus an earlier one: what happened in between (gauges as differences too).</summary>
    public DeviceCountersSnapshot Since(DeviceCountersSnapshot earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        return new(Allocations - earlier.Allocations, PoolHits - earlier.PoolHits, BytesInUse - earlier.BytesInUse,
            PeakBytes - earlier.PeakBytes, CachedBytes - earlier.CachedBytes, KernelLaunches - earlier.KernelLaunches);
    }
}
