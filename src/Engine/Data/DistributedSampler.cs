using Engine.Distributed;

namespace Engine.Data;

/// <summary>
/// Which part of every global batch one rank of data-parallel training takes (as PyTorch's
/// <c>DistributedSampler</c>): given to a <see cref="DataLoader"/>, whose batch size is then the global batch and
/// whose shuffled order, drawn from the same seed on every rank, is the same everywhere. Each global batch of B samples
/// is split into <see cref="Ranks"/> contiguous shares of B / ranks (the first B mod ranks shares one larger), so the
/// set of samples in a step does not depend on the number of ranks, and a run can resume with another rank count.
/// </summary>
/// <remarks>
/// The gradients are averaged with equal weight per rank, so a final global batch that does not divide evenly is
/// weighted per rank rather than per sample (as with PyTorch's DistributedDataParallel); a final batch with fewer
/// samples than ranks is skipped on every rank. Choose a global batch divisible by the rank count, or
/// <c>dropLast</c>, for steps exactly equal to one process's.
/// </remarks>
public sealed class DistributedSampler
{
    /// <summary>The share of rank <paramref name="rank"/> of <paramref name="ranks"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">ranks below 1, or rank outside [0, ranks).</exception>
    public DistributedSampler(int rank, int ranks)
    {
        if (ranks < 1) throw new ArgumentOutOfRangeException(nameof(ranks), ranks, "DistributedSampler: there must be at least one rank.");
        if (rank < 0 || rank >= ranks) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"DistributedSampler: rank {rank} is not in [0, {ranks}).");
        Rank = rank;
        Ranks = ranks;
    }

    /// <summary>This process's share in <paramref name="communicator"/>'s group.</summary>
    public DistributedSampler(Communicator communicator) : this(communicator.Rank, communicator.Size) { }

    /// <summary>This rank.</summary>
    public int Rank { get; }

    /// <summary>Number of ranks sharing each batch.</summary>
    public int Ranks { get; }

    /// <summary>
    /// This rank's positions within a global batch of <paramref name="batchSize"/> samples: the first and the count
    /// (0 when the batch has fewer samples than ranks).
    /// </summary>
    public (int Start, int Count) Share(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchSize);
        if (batchSize < Ranks) return (0, 0);
        int share = batchSize / Ranks, extra = batchSize % Ranks;
        return (Rank * share + Math.Min(Rank, extra), share + (Rank < extra ? 1 : 0));
    }
}
