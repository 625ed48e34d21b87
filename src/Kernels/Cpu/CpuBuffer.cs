namespace Engine.Kernels.Cpu;

/// <summary>A buffer in host memory, pinned so SIMD kernels can take raw pointers to it.</summary>
public sealed class CpuBuffer<T> : DeviceBuffer<T> where T : unmanaged
{
    internal CpuBuffer(Device device, long length) : base(device, length)
    {
        if (length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), $"CpuBuffer: {length} elements exceed the largest array ({Array.MaxLength}).");
        Data = CpuArrayPool<T>.Rent((int)length, out bool poolHit);
        TrackAllocation(poolHit);
    }

    /// <summary>The backing array (pinned).</summary>
    public T[] Data { get; private set; }

    /// <summary>The data as a span.</summary>
    public Span<T> Span => Data;

    /// <inheritdoc />
    protected override void CopyFromHostCore(ReadOnlySpan<T> source) => source.CopyTo(Data);

    /// <inheritdoc />
    protected override void CopyToHostCore(Span<T> destination) => Data.AsSpan().CopyTo(destination);

    /// <inheritdoc />
    protected override void Release()
    {
        var a = Data;
        Data = [];
        CpuArrayPool<T>.Return(a);
    }
}
