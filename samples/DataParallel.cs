using Engine.Data;
using Engine.Distributed;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Samples;

/// <summary>
/// <c>--distributed</c>: data-parallel training over MPI for the tasks that declare <see cref="Option"/> (mlp, mixer,
/// spn, fno-burgers, fno-darcy). Launched as <c>mpirun -np N dotnet Engine.Samples.dll TASK --distributed</c>, every
/// process is one rank: it trains a replica on its share of every batch (<see cref="DistributedSampler"/>), the
/// gradients are averaged by <see cref="DistributedDataParallel"/>, and only rank 0 logs and writes the task's JSON,
/// which then carries <c>"ranks": N</c>. Without mpirun it runs as one rank.
/// </summary>
public static class DataParallel
{
    /// <summary>The option, declared by each task that supports it.</summary>
    public static readonly OptionSpec Option = Opt.Flag("distributed",
        "data-parallel over MPI: launch with mpirun -np N; each rank trains on its share of every batch, rank 0 writes the results", "false");

    /// <summary>True when <paramref name="task"/> declares <see cref="Option"/> and <paramref name="o"/> sets it.</summary>
    public static bool Requested(SampleTask task, Options o) => task.OptionSpecs.Any(s => s.Name == Option.Name) && o.Flag(Option.Name);

    /// <summary>The ranks of a <c>--distributed</c> run (MPI's world, started on first use), or null without the flag.</summary>
    /// <exception cref="DllNotFoundException">Open MPI is not installed.</exception>
    public static Communicator? For(Options o) => o.Flag(Option.Name) ? world ??= MpiCommunicator.World : null;

    private static MpiCommunicator? world;

    /// <summary>Finalises MPI if a task started it (every rank must, before it exits); does nothing otherwise.</summary>
    public static void Shutdown()
    {
        world?.Dispose();
        world = null;
    }

    /// <summary>
    /// What a task trains through: <paramref name="model"/> itself for one process, or a
    /// <see cref="DistributedDataParallel"/> around it (registered on <paramref name="optimizer"/>, so gradients taken
    /// without a backward pass are averaged too). Dispose the returned scope after training.
    /// </summary>
    public static Replica Wrap(Module model, Optimizer optimizer, Communicator? communicator)
    {
        if (communicator == null) return new Replica(model, null, null);
        var ddp = new DistributedDataParallel(model, communicator);
        return new Replica(ddp, ddp, ddp.RegisterOptimizer(optimizer));
    }

    /// <summary>A loader over <paramref name="data"/> that yields this rank's share of every global batch.</summary>
    public static DataLoader Loader(IDataset data, int batchSize, int seed, Kernels.Device device, Communicator? communicator) =>
        new(data, batchSize, shuffle: true, seed: seed, device: device, sampler: communicator == null ? null : new DistributedSampler(communicator));

    /// <summary>
    /// Runs <paramref name="prepare"/> on rank 0 first and on the other ranks after it finished (a shared file cache
    /// written once, then read by the others); just runs it without ranks. The others wait up to
    /// <see cref="PreparationLimit"/> (data generation can outlast the communicator's usual timeout); a rank 0 that
    /// fails stops them at once.
    /// </summary>
    public static T RankZeroFirst<T>(Communicator? communicator, Func<T> prepare)
    {
        if (communicator == null) return prepare();
        T value = default!;
        if (communicator.Rank == 0) communicator.RunOrAbort(() => value = prepare());
        var timeout = communicator.Timeout;
        communicator.Timeout = PreparationLimit;
        try
        {
            communicator.Barrier();
        }
        finally
        {
            communicator.Timeout = timeout;
        }
        if (communicator.Rank != 0) value = prepare();
        return value;
    }

    /// <summary>How long <see cref="RankZeroFirst"/>'s other ranks wait for rank 0.</summary>
    public static readonly TimeSpan PreparationLimit = TimeSpan.FromHours(2);

    /// <summary>The module a task trains through, and the wrapper's resources to release after training.</summary>
    public sealed class Replica(Module model, DistributedDataParallel? wrapper, IDisposable? hook) : IDisposable
    {
        /// <summary>The module to call Forward on: the wrapper, or the model itself.</summary>
        public Module Model { get; } = model;

        /// <inheritdoc />
        public void Dispose()
        {
            hook?.Dispose();
            wrapper?.Dispose();
        }
    }
}
