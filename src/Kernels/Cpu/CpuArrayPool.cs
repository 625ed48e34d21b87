using System.Collections.Concurrent;

namespace Engine.Kernels.Cpu;

/// <summary>
/// Recycles the pinned arrays behind large CPU buffers. A training step allocates the same activation and
/// gradient sizes every time; once a <c>TensorScope</c> disposes them, the next step reuses the arrays instead of
/// making the garbage collector clear and pin fresh ones. Arrays are matched by exact length; the pool holds at
/// most <see cref="CpuArrayPools.MaxPooledBytes"/>, and gives everything back when it has been idle for
/// <see cref="CpuArrayPools.IdleAfter"/> or on <see cref="CpuArrayPools.Trim"/> (<see cref="Device.TrimCache"/>).
/// </summary>
internal static class CpuArrayPool<T> where T : unmanaged
{
    /// <summary>Buffers smaller than this many elements are not pooled (allocation is cheap there).</summary>
    public const int MinPooledLength = 4096;

    private static readonly ConcurrentDictionary<int, ConcurrentBag<T[]>> Free = new();
    private static long pooledBytes;

    static CpuArrayPool() => CpuArrayPools.Register(() => Interlocked.Read(ref pooledBytes), TrimAll);

    /// <summary>An array of exactly <paramref name="length"/> elements, from the pool when one is free (<paramref name="poolHit"/>).</summary>
    public static unsafe T[] Rent(int length, out bool poolHit)
    {
        CpuArrayPools.Touch();
        if (length >= MinPooledLength && Free.TryGetValue(length, out var bag) && bag.TryTake(out var a))
        {
            long bytes = (long)length * sizeof(T);
            Interlocked.Add(ref pooledBytes, -bytes);
            CpuArrayPools.Unreserve(bytes);
            poolHit = true;
            return a;
        }
        poolHit = false;
        return GC.AllocateUninitializedArray<T>(length, pinned: true);
    }

    /// <summary>An array of exactly <paramref name="length"/> elements (see the other overload).</summary>
    public static T[] Rent(int length) => Rent(length, out _);

    public static unsafe void Return(T[] array)
    {
        if (array.Length < MinPooledLength) return;
        CpuArrayPools.Touch();
        long bytes = (long)array.Length * sizeof(T);
        if (CpuArrayPools.Reserve(bytes) is false) return;
        Interlocked.Add(ref pooledBytes, bytes);
        Free.GetOrAdd(array.Length, _ => new ConcurrentBag<T[]>()).Add(array);
    }

    /// <summary>Drops every pooled array (the garbage collector reclaims them); returns the bytes dropped.</summary>
    private static unsafe long TrimAll()
    {
        long dropped = 0;
        foreach (var bag in Free.Values)
            while (bag.TryTake(out var a))
            {
                long bytes = (long)a.Length * sizeof(T);
                Interlocked.Add(ref pooledBytes, -bytes);
                CpuArrayPools.Unreserve(bytes);
                dropped += bytes;
            }
        return dropped;
    }
}

/// <summary>What the CPU array pools of every element type share: the cap, the total, trimming and the idle timer.</summary>
internal static class CpuArrayPools
{
    /// <summary>
    /// Upper bound on the bytes the pools keep alive: a quarter of the memory the GC may use, at least 1 GB. A step
    /// that frees more than the cap allocates the rest afresh every step; with a fixed 1 GB, an fno-darcy step
    /// (s = 85, batch 20, about 2.5 GB of activations and gradients) took a median 6.1 s and peaked at 10.5 GB working
    /// set, and with an 8 GB cap 0.58 s and 2.7 GB (bench `fno-route darcy gemm 6`, 2-core machine). The cap only
    /// holds while the pools are in use: idle, they are emptied (<see cref="IdleAfter"/>).
    /// </summary>
    public static readonly long MaxPooledBytes = Math.Max(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    /// <summary>The pools are emptied when no array was rented or returned for this long (checked every second).</summary>
    public static TimeSpan IdleAfter { get; set; } = TimeSpan.FromSeconds(10);

    private static readonly List<(Func<long> Bytes, Func<long> Trim)> Pools = [];
    private static long reservedBytes;
    private static long lastUse;
    private static Timer? idleTimer;

    public static void Register(Func<long> bytes, Func<long> trim)
    {
        lock (Pools) Pools.Add((bytes, trim));
    }

    /// <summary>Bytes held by every pool.</summary>
    public static long PooledBytes
    {
        get
        {
            lock (Pools) return Pools.Sum(p => p.Bytes());
        }
    }

    /// <summary>Empties every pool; returns the bytes released to the garbage collector.</summary>
    public static long Trim()
    {
        List<(Func<long> Bytes, Func<long> Trim)> pools;
        lock (Pools) pools = [.. Pools];
        return pools.Sum(p => p.Trim());
    }

    /// <summary>Claims room for <paramref name="bytes"/> under the cap; false when they do not fit.</summary>
    public static bool Reserve(long bytes)
    {
        if (Interlocked.Add(ref reservedBytes, bytes) <= MaxPooledBytes) return true;
        Interlocked.Add(ref reservedBytes, -bytes);
        return false;
    }

    public static void Unreserve(long bytes) => Interlocked.Add(ref reservedBytes, -bytes);

    /// <summary>Notes a use of the pools and makes sure the idle timer runs.</summary>
    public static void Touch()
    {
        Volatile.Write(ref lastUse, Environment.TickCount64);
        if (Volatile.Read(ref idleTimer) != null) return;
        var period = TimeSpan.FromSeconds(1);
        var timer = new Timer(_ => TrimIfIdle(), null, period, period);
        if (Interlocked.CompareExchange(ref idleTimer, timer, null) != null) timer.Dispose();
    }

    private static void TrimIfIdle()
    {
        if (Environment.TickCount64 - Volatile.Read(ref lastUse) >= (long)IdleAfter.TotalMilliseconds && PooledBytes > 0) Trim();
    }
}
