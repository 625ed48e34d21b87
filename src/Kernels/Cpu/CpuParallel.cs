using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Kernels.Cpu;

/// <summary>
/// Splits a range of work items over cores in contiguous chunks. Small ranges run on the calling thread:
/// below a few tens of thousands of elements the cost of waking a worker exceeds the work.
/// </summary>
internal static class CpuParallel
{
    /// <summary>Elements below which a cheap (memory-bound) elementwise op stays single-threaded.</summary>
    internal const long CheapGrain = 32 * 1024;

    /// <summary>Elements below which a transcendental elementwise op stays single-threaded.</summary>
    internal const long MathGrain = 8 * 1024;

    /// <summary>
    /// Output elements from which same-shape elementwise kernels store with non-temporal (streaming) stores: an output
    /// this large (16 MB) does not stay in cache anyway, and streaming skips the read-for-ownership of every line.
    /// </summary>
    internal const long StreamingThreshold = 4L * 1024 * 1024;

    /// <summary>Worker count used to size chunks.</summary>
    internal static readonly int Workers = Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over disjoint chunks covering [0, <paramref name="count"/>).
    /// Every chunk has at least <paramref name="grain"/> items (except when the whole range is smaller, in which
    /// case it runs inline), and chunk boundaries are multiples of <paramref name="align"/>.
    /// </summary>
    internal static void For(long count, long grain, Action<long, long> body, long align = 16)
    {
        if (count <= 0) return;
        grain = Math.Max(1, grain);
        long maxChunks = count / grain;
        int chunks = (int)Math.Min(maxChunks, Workers * 4L);
        if (chunks <= 1 || Workers == 1)
        {
            body(0, count);
            return;
        }
        long per = (count + chunks - 1) / chunks;
        if (align > 1) per = (per + align - 1) / align * align;
        chunks = (int)((count + per - 1) / per);
        if (chunks <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, c =>
        {
            long s = c * per;
            long e = Math.Min(count, s + per);
            if (s < e) body(s, e);
        });
    }

    /// <summary>A raw pointer to the first element of a pinned array (CpuBuffer arrays are allocated pinned).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe T* Ptr<T>(T[] array) where T : unmanaged =>
        (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
}
