using System.Collections.Concurrent;

namespace Engine.Kernels.Cpu;

/// <summary>
/// Recycles the pinned arrays behind large CPU buffers. A training step allocates the same activation and
/// gradient sizes every time; once a <c>TensorScope</c> disposes them, the next step reuses the arrays instead of
/// making the garbage collector clear and pin fresh ones. Arrays are matched by exact length; the pool holds at
/// most <see cref="MaxPooledBytes"/>.
/// </summary>
internal static class CpuArrayPool<T> where T : unmanaged
{
    /// <summary>Buffers smaller than this many elements are not pooled (allocation is cheap there).</summary>
    public const int MinPooledLength = 4096;

    /// <summary>
    /// Upper bound on the bytes the pool keeps alive: a quarter of the memory the GC may use, at least 1 GB. A step
    /// that frees more than the cap allocates the rest afresh every step; with the former fixed 1 GB, an fno-darcy
    /// step (s = 85, batch 20, about 2.5 GB of activations and gradients) took a median 6.1 s and peaked at 10.5 GB
    /// working set, and with an 8 GB cap 0.58 s and 2.7 GB (bench `fno-route darcy gemm 6`, 2-core machine).
    /// </summary>
    public static readonly long MaxPooledBytes = Math.Max(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    private static readonly ConcurrentDictionary<int, ConcurrentBag<T[]>> Free = new();
    private static long pooledBytes;

    /// <summary>Bytes the pool holds for reuse now (the CPU device's <see cref="DeviceCounters.CachedBytes"/>).</summary>
    public static long PooledBytes => Interlocked.Read(ref pooledBytes);

    public static unsafe T[] Rent(int length, out bool poolHit)
    {
        poolHit = false;
        if (length >= MinPooledLength && Free.TryGetValue(length, out var bag) && bag.TryTake(out var a))
        {
            Interlocked.Add(ref pooledBytes, -(long)length * sizeof(T));
            poolHit = true;
            return a;
        }
        return GC.AllocateUninitializedArray<T>(length, pinned: true);
    }

    public static unsafe void Return(T[] array)
    {
        if (array.Length < MinPooledLength) return;
        long bytes = (long)array.Length * sizeof(T);
        if (Interlocked.Add(ref pooledBytes, bytes) > MaxPooledBytes)
        {
            Interlocked.Add(ref pooledBytes, -bytes);
            return;
        }
        Free.GetOrAdd(array.Length, _ => new ConcurrentBag<T[]>()).Add(array);
    }
}
