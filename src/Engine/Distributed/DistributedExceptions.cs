namespace Engine.Distributed;

/// <summary>A collective operation could not complete; <see cref="Rank"/> is the rank that reports it.</summary>
public class DistributedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DistributedException(int rank, string message, Exception? inner = null) : base(message, inner) => Rank = rank;

    /// <summary>The rank that raised the error.</summary>
    public int Rank { get; }
}

/// <summary>A wait passed the communicator's timeout: some rank stopped taking part (hung, killed, or out of step).</summary>
public sealed class CommunicationTimeoutException : DistributedException
{
    /// <summary>Creates the exception; <paramref name="stall"/> says which ranks the operation waits for, if known.</summary>
    public CommunicationTimeoutException(int rank, string operation, TimeSpan timeout, string stall)
        : base(rank, $"rank {rank}: {operation} did not complete within {timeout.TotalSeconds:0.###} s{(stall.Length > 0 ? ": " + stall : "; a rank stopped taking part (hung, killed, or calling collectives in another order)")}.")
    {
        Operation = operation;
        Timeout = timeout;
    }

    /// <summary>The operation that timed out.</summary>
    public string Operation { get; }

    /// <summary>The limit that passed.</summary>
    public TimeSpan Timeout { get; }
}

/// <summary>Another rank failed and aborted the group; <see cref="FailedRank"/> names it.</summary>
public sealed class RankFailedException : DistributedException
{
    /// <summary>Creates the exception, raised on <paramref name="rank"/> because <paramref name="failedRank"/> aborted.</summary>
    public RankFailedException(int rank, int failedRank, string reason)
        : base(rank, $"rank {rank}: rank {failedRank} failed and aborted the group: {reason}")
    {
        FailedRank = failedRank;
        Reason = reason;
    }

    /// <summary>The rank that failed.</summary>
    public int FailedRank { get; }

    /// <summary>The failed rank's reason (its exception's type and message).</summary>
    public string Reason { get; }
}
