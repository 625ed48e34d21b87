using Engine.Distributed;

namespace Engine.Tests.Distributed;

/// <summary>Runs one thread per rank of an in-process group and collects each rank's result or exception.</summary>
internal static class RankThreads
{
    /// <summary>Every rank's outcome; a rank still running after <paramref name="limitSeconds"/> fails the test.</summary>
    public static (T? Value, Exception? Error)[] Run<T>(InProcessCommunicator[] group, Func<Communicator, T> body, double limitSeconds = 120)
    {
        var results = new (T? Value, Exception? Error)[group.Length];
        var threads = group.Select((c, r) => new Thread(() =>
        {
            try
            {
                results[r] = (body(c), null);
            }
            catch (Exception e)
            {
                results[r] = (default, e);
            }
        }) { IsBackground = true, Name = $"rank-{r}" }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var (t, r) in threads.Select((t, r) => (t, r)))
            Assert.True(t.Join(TimeSpan.FromSeconds(limitSeconds)), $"rank {r} still ran after {limitSeconds} s");
        return results;
    }

    /// <summary>Every rank's result; rethrows the first rank's exception, if any.</summary>
    public static T[] RunAll<T>(InProcessCommunicator[] group, Func<Communicator, T> body)
    {
        var results = Run(group, body);
        foreach (var (_, error) in results)
            if (error != null) throw new InvalidOperationException($"a rank failed: {error.Message}", error);
        return results.Select(r => r.Value!).ToArray();
    }
}
