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

    /// <summary>Upper bound on the bytes the pool keeps alive.</summary>
    public const long MaxPooledBytes = 1L << 30;

    private static readonly ConcurrentDictionary<int, ConcurrentBag<T[]>> Free = new();
    private static long pooledBytes;

    public static unsafe T[] Rent(int length)
    {
        if (length >= MinPooledLength && Free.TryGetValue(length, out var bag) && bag.TryTake(out var a))
        {
            Interlocked.Add(ref pooledBytes, -(long)length * sizeof(T));
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
