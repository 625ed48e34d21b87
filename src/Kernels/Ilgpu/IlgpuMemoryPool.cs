using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// The caching allocator of one ILGPU accelerator. A freed buffer's device memory is kept in a pool of its size class
/// and handed to the next allocation of that class instead of going back to the driver, so an eager training step,
/// which allocates and frees the same activation and gradient sizes every time, calls the driver's malloc and free
/// only in its first step (the idea of PyTorch's CUDA caching allocator).
/// </summary>
/// <remarks>
/// <para>Size classes (<see cref="SizeClass"/>): up to 1 MiB a request is rounded up to a multiple of 512 bytes; above,
/// to a multiple of a quarter of its power of two, so a block is at most 25% larger than asked. Blocks are raw bytes,
/// viewed as the element type of the buffer that holds them (a float buffer's block can serve an int buffer next), and
/// a buffer's view is exactly as long as it asked for.</para>
/// <para>Reuse is stream-ordered by construction: the kernel set queues every launch and copy on the accelerator's one
/// default stream, so whatever was queued on a block before it was freed runs before anything its next owner queues.
/// A block therefore goes back to the pool at once, with no event and no synchronisation (with several streams it
/// would need per-stream pools or events, as PyTorch has).</para>
/// <para>Bounded: the pool keeps at most <see cref="MaxCachedBytes"/>; a freed block that does not fit goes back to
/// the driver. When the driver is out of memory the pool is emptied and the allocation tried once more.
/// <see cref="Trim"/> (<see cref="Device.TrimCache"/>) empties it; <see cref="Dispose"/> frees every cached block, and
/// blocks freed afterwards go straight back to the driver. The pool reports its bytes and hits through the device's
/// <see cref="DeviceCounters"/> (<see cref="DeviceCounters.CachedBytes"/>, <see cref="DeviceCounters.PoolHits"/>).</para>
/// </remarks>
internal sealed class IlgpuMemoryPool : IDisposable
{
    /// <summary>Granularity of the small size classes, and the smallest block.</summary>
    public const long SmallStep = 512;

    /// <summary>Largest size rounded to a multiple of <see cref="SmallStep"/>.</summary>
    public const long SmallLimit = 1L << 20;

    private readonly object gate = new();
    private readonly Accelerator accelerator;
    private readonly DeviceCounters counters;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> free = new();
    private long cachedBytes;
    private bool disposed;

    /// <summary>A pool for <paramref name="accelerator"/> reporting to <paramref name="counters"/>, keeping at most <paramref name="maxCachedBytes"/>.</summary>
    public IlgpuMemoryPool(Accelerator accelerator, DeviceCounters counters, long maxCachedBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCachedBytes);
        this.accelerator = accelerator;
        this.counters = counters;
        MaxCachedBytes = maxCachedBytes;
    }

    /// <summary>The most bytes the pool keeps for reuse.</summary>
    public long MaxCachedBytes { get; }

    /// <summary>Bytes of the freed blocks the pool holds now.</summary>
    public long CachedBytes
    {
        get
        {
            lock (gate) return cachedBytes;
        }
    }

    /// <summary>
    /// The default bound: half the device memory on a GPU; on the CPU emulator, whose memory is the host's, a quarter of
    /// what the garbage collector may use, at least 1 GiB.
    /// </summary>
    public static long DefaultLimit(Accelerator accelerator, DeviceKind kind) => kind == DeviceKind.IlgpuCpu
        ? Math.Max(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4)
        : accelerator.MemorySize / 2;

    /// <summary>The block size that serves a request of <paramref name="bytes"/> (at least <see cref="SmallStep"/>).</summary>
    public static long SizeClass(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes <= SmallLimit) return Math.Max(SmallStep, RoundUp(bytes, SmallStep));
        long step = (1L << (63 - (int)long.LeadingZeroCount(bytes - 1))) / 4;
        return RoundUp(bytes, step);
    }

    private static long RoundUp(long value, long step) => (value + step - 1) / step * step;

    /// <summary>
    /// A block of <see cref="SizeClass"/>(<paramref name="bytes"/>) bytes: a cached one when the pool has one
    /// (<paramref name="poolHit"/>), else a new one from the driver.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes, out bool poolHit)
    {
        long size = SizeClass(bytes);
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                var block = stack.Pop();
                Uncache(size);
                poolHit = true;
                return block;
            }
        }
        poolHit = false;
        try
        {
            return accelerator.Allocate1D<byte>(size);
        }
        catch (Exception e) when (e is AcceleratorException or OutOfMemoryException && Trim() > 0)
        {
            return accelerator.Allocate1D<byte>(size);
        }
    }

    /// <summary>Takes a block back for reuse, or frees it when the pool is full or disposed.</summary>
    public void Return(MemoryBuffer1D<byte, Stride1D.Dense> block)
    {
        long size = block.LengthInBytes;
        lock (gate)
        {
            if (!disposed && !block.IsDisposed && cachedBytes + size <= MaxCachedBytes)
            {
                if (!free.TryGetValue(size, out var stack)) free[size] = stack = new Stack<MemoryBuffer1D<byte, Stride1D.Dense>>();
                stack.Push(block);
                cachedBytes += size;
                counters.RecordCached(size);
                return;
            }
        }
        block.Dispose();
    }

    /// <summary>Frees every cached block; returns the bytes given back to the driver.</summary>
    public long Trim()
    {
        List<MemoryBuffer1D<byte, Stride1D.Dense>> blocks = [];
        long released;
        lock (gate)
        {
            foreach (var stack in free.Values)
                while (stack.Count > 0) blocks.Add(stack.Pop());
            free.Clear();
            released = cachedBytes;
            Uncache(released);
        }
        foreach (var b in blocks) b.Dispose();
        return released;
    }

    /// <summary>Frees every cached block; blocks returned later are freed at once.</summary>
    public void Dispose()
    {
        lock (gate) disposed = true;
        Trim();
    }

    private void Uncache(long bytes)
    {
        cachedBytes -= bytes;
        counters.RecordCached(-bytes);
    }
}
