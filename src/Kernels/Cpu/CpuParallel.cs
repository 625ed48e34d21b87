using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Kernels.Cpu;

/// <summary>
/// How many threads the CPU kernel set (<see cref="DeviceKind.Cpu"/>) may use at once: the elementwise, reduction,
/// layout, FFT and SPN kernels and GEMM split their work over at most <see cref="Count"/> threads (capped by the
/// processor count, the size of their thread pool, <see cref="CpuWorkers"/>). Process-wide; change it between
/// steps, not while kernels run on other threads. Results do not depend on it except for the order of some float
/// reductions.
/// </summary>
public static class CpuThreads
{
    /// <summary>Environment variable read once at start-up: <c>ENGINE_CPU_THREADS=N</c> (default: the processor count).</summary>
    public const string EnvironmentVariable = "ENGINE_CPU_THREADS";

    private static int count; // 0 until first read: then the environment variable or the default

    /// <summary>The thread limit, at least 1 (1 runs every kernel on the calling thread).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set below 1.</exception>
    public static int Count
    {
        get
        {
            int n = Volatile.Read(ref count);
            if (n > 0) return n;
            Interlocked.CompareExchange(ref count, Initial(), 0);
            return Volatile.Read(ref count);
        }
        set
        {
            if (value < 1)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"CpuThreads.Count: the CPU kernel set needs at least 1 thread, got {value}.");
            Volatile.Write(ref count, value);
        }
    }

    /// <summary>The processor count, the default.</summary>
    public static int Default => Math.Max(1, Environment.ProcessorCount);

    private static int Initial()
    {
        var text = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(text)) return Default;
        if (int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1) return n;
        throw new InvalidOperationException($"{EnvironmentVariable}='{text}' is not a thread count (a whole number >= 1).");
    }
}

/// <summary>
/// Splits a range of work items over cores in contiguous chunks, on the pool the GEMMs use (<see cref="CpuWorkers"/>;
/// the ThreadPool when another thread holds it). Small ranges run on the calling thread: below a few tens of thousands
/// of elements the cost of waking a worker exceeds the work.
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

    /// <summary>Worker count used to size chunks (<see cref="CpuThreads.Count"/>).</summary>
    internal static int Workers => CpuThreads.Count;

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
        var job = new ChunkJob(body, per, count);
        if (CpuWorkers.TryAcquire())
        {
            try
            {
                CpuWorkers.Run(job, chunks, Workers);
            }
            finally
            {
                CpuWorkers.Release();
            }
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Workers }, job.Chunk);
    }

    /// <summary>The chunks of <see cref="For"/>, as parts of a pool job or as ThreadPool items.</summary>
    private sealed class ChunkJob(Action<long, long> body, long per, long count) : CpuJob
    {
        /// <summary>Runs chunk <paramref name="c"/>.</summary>
        public void Chunk(int c)
        {
            long s = c * per;
            long e = Math.Min(count, s + per);
            if (s < e) body(s, e);
        }

        protected override void RunPart(int part) => Chunk(part);
    }

    /// <summary>A raw pointer to the first element of a pinned array (CpuBuffer arrays are allocated pinned).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe T* Ptr<T>(T[] array) where T : unmanaged =>
        (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
}
