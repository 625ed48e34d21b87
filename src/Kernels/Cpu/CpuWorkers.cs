using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Engine.Kernels.Cpu;

/// <summary>
/// A unit of parallel work cut into independent parts; every participating thread takes parts from a shared counter
/// until none are left, so a thread that starts late (or not at all) only costs the parts it took.
/// </summary>
internal abstract class CpuJob
{
    private ExceptionDispatchInfo? error;
    private int parts;
    private int next;

    /// <summary>Runs part <paramref name="part"/>.</summary>
    protected abstract void RunPart(int part);

    /// <summary>Arms the job for <paramref name="count"/> parts.</summary>
    internal void Reset(int count)
    {
        parts = count;
        Volatile.Write(ref next, 0);
    }

    /// <summary>Takes and runs parts until none are left.</summary>
    internal void Work()
    {
        try
        {
            int p;
            while ((p = Interlocked.Increment(ref next) - 1) < parts)
            {
                RunPart(p);
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    internal void Fail(Exception e) => Interlocked.CompareExchange(ref error, ExceptionDispatchInfo.Capture(e), null);

    internal void ThrowIfFailed()
    {
        ExceptionDispatchInfo? e = error;
        error = null;
        e?.Throw();
    }
}

/// <summary>
/// A tiny fork-join pool for the CPU kernels (the GEMMs and <see cref="CpuParallel.For"/>):
/// <see cref="Environment.ProcessorCount"/> - 1 dedicated background threads that spin briefly after each job (so
/// back-to-back kernels dispatch in well under a microsecond) and then sleep on an event. The calling thread works
/// too; when it runs out of parts it revokes the job from workers that have not picked it up yet (busy machine: they
/// were not scheduled) instead of waiting for them. One job at a time: a caller that finds the pool busy (another
/// thread is in a kernel) gets <c>false</c> from <see cref="TryAcquire"/> and runs single-threaded (a GEMM) or on the
/// ThreadPool (<see cref="CpuParallel.For"/>) instead. One pool for every kernel, because on few cores a second one
/// competes with this one's spinning workers: an elementwise pass on the ThreadPool right after a GEMM ran 40-50 %
/// slower than the same pass after another elementwise pass.
/// </summary>
internal static class CpuWorkers
{
    private sealed class Worker
    {
        public CpuJob? Job;
        public readonly ManualResetEventSlim Wake = new(false, 0);
    }

    private static readonly object InitGate = new();
    private static Worker[]? workers;
    private static int busy;
    private static int pending;

    /// <summary>How long an idle worker spins before it sleeps.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    /// <summary>Threads of the pool, the calling thread included (the processor count).</summary>
    private static readonly int PoolThreads = Math.Clamp(Environment.ProcessorCount, 1, 256);

    /// <summary>The most threads a job can use (the calling thread included): <see cref="CpuThreads.Count"/>, capped by the pool.</summary>
    public static int MaxThreads => Math.Min(PoolThreads, CpuThreads.Count);

    /// <summary>Takes the pool for one job; false when another thread holds it.</summary>
    public static bool TryAcquire() => MaxThreads > 1 && Interlocked.CompareExchange(ref busy, 1, 0) == 0;

    /// <summary>Returns the pool taken by <see cref="TryAcquire"/>.</summary>
    public static void Release() => Volatile.Write(ref busy, 0);

    /// <summary>
    /// Runs the <paramref name="parts"/> parts of <paramref name="job"/> on up to <paramref name="threads"/> threads
    /// (the caller included) and returns when all are done. The pool must be held (<see cref="TryAcquire"/>).
    /// </summary>
    public static void Run(CpuJob job, int parts, int threads)
    {
        job.Reset(parts);
        int helpers = Math.Clamp(Math.Min(threads, parts), 1, MaxThreads) - 1;
        Worker[]? ws = null;
        if (helpers > 0)
        {
            ws = workers ?? Start();
            Volatile.Write(ref pending, helpers);
            for (int t = 0; t < helpers; t++)
            {
                Volatile.Write(ref ws[t].Job, job);
                ws[t].Wake.Set();
            }
        }

        job.Work();

        if (ws is not null)
        {
            // Workers that have not claimed the job yet never will: all parts are taken.
            for (int t = 0; t < helpers; t++)
            {
                if (Interlocked.CompareExchange(ref ws[t].Job, null, job) == job)
                {
                    Interlocked.Decrement(ref pending);
                }
            }
            SpinWait spin = default;
            while (Volatile.Read(ref pending) != 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
        job.ThrowIfFailed();
    }

    private static Worker[] Start()
    {
        lock (InitGate)
        {
            if (workers is not null)
            {
                return workers;
            }

            var ws = new Worker[PoolThreads - 1];
            for (int i = 0; i < ws.Length; i++)
            {
                Worker w = ws[i] = new Worker();
                var thread = new Thread(() => Loop(w))
                {
                    IsBackground = true,
                    Name = $"cpu-worker-{i + 1}",
                };
                thread.Start();
            }
            workers = ws;
            return ws;
        }
    }

    private static void Loop(Worker w)
    {
        while (true)
        {
            if (Volatile.Read(ref w.Job) is null)
            {
                long start = Stopwatch.GetTimestamp();
                while (Volatile.Read(ref w.Job) is null && Stopwatch.GetTimestamp() - start < SpinTicks)
                {
                    Thread.SpinWait(16);
                }

                if (Volatile.Read(ref w.Job) is null)
                {
                    // The job slot is re-read after Reset, so a Set that races with Reset is never lost.
                    w.Wake.Wait();
                    w.Wake.Reset();
                    continue;
                }
            }

            // Claim the job; the caller may have revoked it meanwhile (then it did our share and does not wait).
            CpuJob? job = Interlocked.Exchange(ref w.Job, null);
            if (job is not null)
            {
                job.Work();
                Interlocked.Decrement(ref pending);
            }
        }
    }
}
