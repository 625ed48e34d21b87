using Engine.Kernels.Cpu;

namespace Engine.Tests.Kernels;

/// <summary>
/// The CPU kernels' chunked loops (<see cref="CpuParallel.For"/>) on the pool the GEMMs use (<see cref="CpuWorkers"/>),
/// and on the ThreadPool when another thread holds it. They run alone (the serial collection), so the pool is free
/// unless a test holds it on purpose.
/// </summary>
[Collection("serial")]
public sealed class CpuParallelTests
{
    private const int Items = 1_000_003;

    /// <summary>Every item is visited exactly once, in chunks that start on the alignment, whichever path runs.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryItemIsVisitedOnce(bool poolHeldElsewhere)
    {
        var visits = new int[Items];
        var starts = new System.Collections.Concurrent.ConcurrentBag<long>();
        using (poolHeldElsewhere ? HoldPool() : null)
        {
            CpuParallel.For(Items, 1000, (s, e) =>
            {
                starts.Add(s);
                for (long i = s; i < e; i++) Interlocked.Increment(ref visits[i]);
            });
        }
        Assert.All(visits, v => Assert.Equal(1, v));
        Assert.True(starts.Count > 1 || CpuThreads.Count == 1, $"{starts.Count} chunks");
        Assert.All(starts, s => Assert.Equal(0, s % 16));
    }

    /// <summary>On the pool a failing chunk throws its own exception, and the pool is free again afterwards.</summary>
    [Fact]
    public void AFailingChunkThrowsItsExceptionAndFreesThePool()
    {
        if (CpuWorkers.MaxThreads < 2) return; // one thread: nothing runs on the pool
        var e = Assert.Throws<InvalidOperationException>(() => CpuParallel.For(Items, 1000, (s, _) =>
        {
            if (s == 0) throw new InvalidOperationException("chunk 0 failed");
        }));
        Assert.Equal("chunk 0 failed", e.Message);
        Assert.True(CpuWorkers.TryAcquire(), "the pool is still held after a failed job");
        CpuWorkers.Release();
    }

    /// <summary>A loop inside a loop's chunk, and loops from two threads at once, all complete with every item visited.</summary>
    [Fact]
    public void NestedAndConcurrentLoopsComplete()
    {
        const int outer = 64, inner = 100_000;
        var sums = new long[outer];
        CpuParallel.For(outer, 1, (s, e) =>
        {
            for (long o = s; o < e; o++)
            {
                long o1 = o;
                CpuParallel.For(inner, 1000, (a, b) => Interlocked.Add(ref sums[o1], b - a));
            }
        });
        Assert.All(sums, v => Assert.Equal(inner, v));

        var counts = new long[2];
        Parallel.For(0, 2, t => CpuParallel.For(Items, 1000, (s, e) => Interlocked.Add(ref counts[t], e - s)));
        Assert.All(counts, v => Assert.Equal(Items, v));
    }

    /// <summary>Takes the pool for the caller's scope, as another thread's kernel would.</summary>
    private static IDisposable? HoldPool()
    {
        if (CpuWorkers.MaxThreads < 2) return null;
        Assert.True(CpuWorkers.TryAcquire(), "the pool is busy in a serial test");
        return new Releaser();
    }

    private sealed class Releaser : IDisposable
    {
        public void Dispose() => CpuWorkers.Release();
    }
}
