using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Engine.Distributed;

/// <summary>
/// A collective operation in flight (as MPI's <c>MPI_Request</c>): <see cref="Test"/> asks whether it has finished
/// without blocking, <see cref="Wait()"/> polls until it has, within the communicator's <see cref="Communicator.Timeout"/>.
/// The buffers it works on must not be touched until it has completed.
/// </summary>
public sealed class CommRequest
{
    private readonly Communicator owner;
    private readonly Func<long> poll;
    private readonly List<Action> onComplete = new();
    private long completedAt;

    /// <summary>
    /// Creates a request whose <paramref name="poll"/> returns 0 while the operation runs and, once it has finished,
    /// the <see cref="Stopwatch"/> timestamp at which it did (it may throw). <paramref name="startedAt"/> is when the
    /// backend started it, taken before the operation could finish (0: now).
    /// </summary>
    internal CommRequest(Communicator owner, string operation, long bytes, Func<long> poll, long startedAt = 0)
    {
        this.owner = owner;
        this.poll = poll;
        Operation = operation;
        Bytes = bytes;
        StartedAt = startedAt != 0 ? startedAt : Stopwatch.GetTimestamp();
    }

    /// <summary>What the request does ("all-reduce of 1024 float32"), for messages.</summary>
    public string Operation { get; }

    /// <summary>Bytes each rank contributes.</summary>
    public long Bytes { get; }

    /// <summary>When the request was started (<see cref="Stopwatch.GetTimestamp"/> ticks).</summary>
    public long StartedAt { get; }

    /// <summary>When it finished, as far as the backend knows (<see cref="Stopwatch.GetTimestamp"/> ticks); 0 before.</summary>
    public long CompletedAt => completedAt;

    /// <summary>True once the operation has finished and its results are in place.</summary>
    public bool IsCompleted => completedAt != 0;

    /// <summary>Time from start to completion; null while in flight.</summary>
    public TimeSpan? Duration => IsCompleted ? Stopwatch.GetElapsedTime(StartedAt, completedAt) : null;

    /// <summary>
    /// True if the operation has finished (its results are then in place). Never blocks; lets the backend make
    /// progress.
    /// </summary>
    /// <exception cref="RankFailedException">Another rank aborted.</exception>
    public bool Test()
    {
        if (IsCompleted) return true;
        owner.Poll();
        long finished = poll();
        if (finished == 0) return false;
        foreach (var action in onComplete) action();
        completedAt = finished;
        return true;
    }

    /// <summary>Waits for the operation within the communicator's <see cref="Communicator.Timeout"/>.</summary>
    /// <exception cref="CommunicationTimeoutException">It did not finish in time.</exception>
    /// <exception cref="RankFailedException">Another rank aborted.</exception>
    public void Wait() => Wait(owner.Timeout);

    /// <summary>Waits for the operation, polling, for at most <paramref name="timeout"/>.</summary>
    /// <exception cref="CommunicationTimeoutException">It did not finish in time.</exception>
    /// <exception cref="RankFailedException">Another rank aborted.</exception>
    public void Wait(TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();
        var spinner = new SpinWait();
        while (!Test())
        {
            if (Stopwatch.GetElapsedTime(start) > timeout)
                throw new CommunicationTimeoutException(owner.Rank, Operation, timeout, owner.DescribeStall(this));
            // Spin briefly for fast completions, then sleep in short slices so a waiting rank leaves the core to
            // the others (two ranks share two cores here).
            if (spinner.Count < 20) spinner.SpinOnce(sleep1Threshold: -1);
            else Pause.Short();
        }
    }

    /// <summary>Waits for every request, in order.</summary>
    public static void WaitAll(IEnumerable<CommRequest> requests)
    {
        ArgumentNullException.ThrowIfNull(requests);
        foreach (var r in requests) r.Wait();
    }

    /// <summary>Adds work to run when the operation completes (before <see cref="IsCompleted"/> turns true); returns this request.</summary>
    internal CommRequest Then(Action action)
    {
        onComplete.Add(action);
        return this;
    }
}

/// <summary>Short sleeps for polling loops: about 50 µs on Linux (<c>usleep</c>), a yield elsewhere.</summary>
internal static partial class Pause
{
    private static readonly bool UseUsleep = OperatingSystem.IsLinux();

    /// <summary>Sleeps for a few tens of microseconds.</summary>
    public static void Short()
    {
        if (UseUsleep) usleep(50);
        else Thread.Sleep(0);
    }

    [LibraryImport("libc", EntryPoint = "usleep")]
    private static partial int usleep(uint microseconds);
}
