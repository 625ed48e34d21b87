using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>A unit of parallel work: <see cref="Execute"/> runs once per participating thread.</summary>
internal abstract class GemmJob
{
    private ExceptionDispatchInfo? error;

    /// <summary>Runs part <paramref name="part"/> of <paramref name="parts"/>.</summary>
    public abstract void Execute(int part, int parts);

    internal void Fail(Exception e) => Interlocked.CompareExchange(ref error, ExceptionDispatchInfo.Capture(e), null);

    internal void ThrowIfFailed()
    {
        ExceptionDispatchInfo? e = error;
        error = null;
        e?.Throw();
    }
}

/// <summary>
/// A tiny fork-join pool for GEMM: <see cref="Environment.ProcessorCount"/> - 1 dedicated background threads that
/// spin briefly after each job (so back-to-back GEMMs dispatch in well under a microsecond) and then sleep on an
/// event. The calling thread always runs part 0. One job at a time: a caller that finds the pool busy (another thread
/// is in a GEMM) gets <c>false</c> from <see cref="TryAcquire"/> and runs single-threaded instead.
/// </summary>
internal static class GemmWorkers
{
    private sealed class Worker
    {
        public volatile GemmJob? Job;
        public int Parts;
        public int Index;
        public readonly ManualResetEventSlim Wake = new(false, 0);
    }

    private static readonly object InitGate = new();
    private static Worker[]? workers;
    private static int busy;
    private static int pending;

    /// <summary>How long an idle worker spins before it sleeps.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    /// <summary>The most threads a job can use (the calling thread included).</summary>
    public static int MaxThreads { get; } = Math.Clamp(Environment.ProcessorCount, 1, 256);

    /// <summary>Takes the pool for one job; false when another thread holds it.</summary>
    public static bool TryAcquire() => MaxThreads > 1 && Interlocked.CompareExchange(ref busy, 1, 0) == 0;

    /// <summary>Returns the pool taken by <see cref="TryAcquire"/>.</summary>
    public static void Release() => Volatile.Write(ref busy, 0);

    /// <summary>
    /// Runs <paramref name="job"/> on <paramref name="parts"/> threads (the caller is part 0) and waits for all.
    /// The pool must be held (<see cref="TryAcquire"/>).
    /// </summary>
    public static void Run(GemmJob job, int parts)
    {
        parts = Math.Clamp(parts, 1, MaxThreads);
        if (parts > 1)
        {
            Worker[] ws = workers ?? Start();
            Volatile.Write(ref pending, parts - 1);
            for (int t = 1; t < parts; t++)
            {
                Worker w = ws[t - 1];
                w.Parts = parts;
                w.Job = job;
                w.Wake.Set();
            }
        }

        try
        {
            job.Execute(0, parts);
        }
        catch (Exception e)
        {
            job.Fail(e);
        }

        if (parts > 1)
        {
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

            var ws = new Worker[MaxThreads - 1];
            for (int i = 0; i < ws.Length; i++)
            {
                Worker w = ws[i] = new Worker { Index = i + 1 };
                var thread = new Thread(() => Loop(w))
                {
                    IsBackground = true,
                    Name = $"gemm-worker-{i + 1}",
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
            GemmJob? job = w.Job;
            if (job is null)
            {
                long start = Stopwatch.GetTimestamp();
                while ((job = w.Job) is null && Stopwatch.GetTimestamp() - start < SpinTicks)
                {
                    Thread.SpinWait(16);
                }

                if (job is null)
                {
                    // The job slot is re-read after Reset, so a Set that races with Reset is never lost.
                    w.Wake.Wait();
                    w.Wake.Reset();
                    continue;
                }
            }

            w.Job = null;
            try
            {
                job.Execute(w.Index, w.Parts);
            }
            catch (Exception e)
            {
                job.Fail(e);
            }
            Interlocked.Decrement(ref pending);
        }
    }
}
