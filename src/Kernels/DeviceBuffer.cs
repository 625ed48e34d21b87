using System.Runtime.CompilerServices;

namespace Engine.Kernels;

/// <summary>
/// A contiguous array of <typeparamref name="T"/> owned by one <see cref="Device"/>.
/// Kernels take buffers and shapes, never tensors. Disposing frees the memory; any later use throws.
/// </summary>
public abstract class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    /// <summary>Creates the bookkeeping for a buffer of <paramref name="length"/> elements on <paramref name="device"/>.</summary>
    protected DeviceBuffer(Device device, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Device = device;
        Length = length;
    }

    /// <summary>The device whose memory holds the data.</summary>
    public Device Device { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>True once <see cref="Dispose()"/> ran.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>True once the derived constructor reported the allocation to the device's counters.</summary>
    private bool tracked;

    /// <summary>Bytes the buffer holds for <see cref="DeviceCounters.BytesInUse"/>: length times element size.</summary>
    private long Bytes => Length * Unsafe.SizeOf<T>();

    /// <summary>
    /// Reports the allocation to <see cref="Device"/>'s <see cref="DeviceCounters"/>: called by a derived constructor
    /// once its memory exists (<paramref name="poolHit"/>: the memory came from a pool), so a failed allocation
    /// counts nothing; <see cref="Dispose()"/> reports the release.
    /// </summary>
    protected void TrackAllocation(bool poolHit)
    {
        if (tracked) return;
        tracked = true;
        Device.Counters.RecordAllocation(Bytes, poolHit);
    }

    /// <summary>Copies <paramref name="source"/> (exactly <see cref="Length"/> elements) to the device.</summary>
    public void CopyFromHost(ReadOnlySpan<T> source)
    {
        ThrowIfDisposed("CopyFromHost");
        if (source.Length != Length)
            throw new ArgumentException($"CopyFromHost: buffer holds {Length} elements, source has {source.Length}.");
        HostTransfers.Current?.Uploading(this, source);
        Device.Counters.RecordHostToDevice();
        CopyFromHostCore(source);
    }

    /// <summary>Copies the device data (exactly <see cref="Length"/> elements) into <paramref name="destination"/>.</summary>
    public void CopyToHost(Span<T> destination)
    {
        ThrowIfDisposed("CopyToHost");
        if (destination.Length != Length)
            throw new ArgumentException($"CopyToHost: buffer holds {Length} elements, destination has {destination.Length}.");
        HostTransfers.Current?.Downloading(this);
        Device.Counters.RecordDeviceToHost();
        CopyToHostCore(destination);
    }

    /// <summary>Returns a new host array with the buffer's contents.</summary>
    public T[] ToArray()
    {
        var a = new T[Length];
        CopyToHost(a);
        return a;
    }

    /// <summary>Device-specific upload.</summary>
    protected abstract void CopyFromHostCore(ReadOnlySpan<T> source);

    /// <summary>Device-specific download.</summary>
    protected abstract void CopyToHostCore(Span<T> destination);

    /// <summary>Device-specific release of memory.</summary>
    protected abstract void Release();

    /// <summary>Throws <see cref="ObjectDisposedException"/> naming <paramref name="op"/> if the buffer was disposed.</summary>
    public void ThrowIfDisposed(string op)
    {
        if (IsDisposed)
            throw new ObjectDisposedException(nameof(DeviceBuffer<T>), $"{op}: the buffer ({Length} elements on {Device.Name}) was used after it was disposed.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        if (tracked) Device.Counters.RecordRelease(Bytes);
        GC.SuppressFinalize(this);
    }
}
