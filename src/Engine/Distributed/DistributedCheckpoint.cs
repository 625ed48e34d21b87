using System.Runtime.InteropServices;
using Engine.Checkpoints;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Distributed;

/// <summary>
/// Checkpoints of data-parallel training. The replicas are identical, so one file holds the state of all of them:
/// rank 0 writes it (the same file a single process writes) and any number of ranks can resume from it.
/// </summary>
public static class DistributedCheckpoint
{
    /// <summary>
    /// Collective: waits until every rank has finished its step (a barrier), lets rank 0 write
    /// <paramref name="module"/> (the wrapped module, not the <see cref="DistributedDataParallel"/>) and
    /// <paramref name="optimizer"/> with <see cref="Checkpoint.Save"/>, and returns on every rank once the file is
    /// complete.
    /// </summary>
    /// <exception cref="IOException">Rank 0 could not write the file (on every rank).</exception>
    public static void Save(Communicator communicator, Module module, string path, Optimizer? optimizer = null,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        ArgumentNullException.ThrowIfNull(module);
        communicator.Barrier();
        Exception? error = null;
        if (communicator.Rank == 0)
        {
            try
            {
                Checkpoint.Save(module, path, optimizer, metadata);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = e;
            }
        }
        var written = new[] { error == null ? 1 : 0 };
        communicator.Broadcast<int>(written, 0);
        if (written[0] == 0)
            throw new IOException($"DistributedCheckpoint.Save: rank 0 could not write '{path}'{(error != null ? ": " + error.Message : "")}.", error);
    }

    /// <summary>
    /// Collective: rank 0 reads the checkpoint at <paramref name="path"/> and broadcasts its bytes, and every rank
    /// loads them into <paramref name="module"/> and <paramref name="optimizer"/> with <see cref="Checkpoint.Read"/>
    /// (so only rank 0 needs the file). The rank count may differ from the run that wrote it. Returns the metadata.
    /// </summary>
    /// <exception cref="FileNotFoundException">Rank 0 could not read the file (on every rank).</exception>
    /// <exception cref="ArgumentException">The checkpoint does not fit the module or optimizer; nothing was changed.</exception>
    public static IReadOnlyDictionary<string, string> Load(Communicator communicator, Module module, string path, Optimizer? optimizer = null)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        ArgumentNullException.ThrowIfNull(module);
        byte[] bytes = [];
        string? problem = null;
        if (communicator.Rank == 0)
        {
            try
            {
                bytes = File.ReadAllBytes(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problem = e.Message;
            }
        }
        var length = new[] { problem == null ? (long)bytes.Length : -1L };
        communicator.Broadcast<long>(length, 0);
        if (length[0] < 0)
            throw new FileNotFoundException($"DistributedCheckpoint.Load: rank 0 could not read '{path}'{(problem != null ? ": " + problem : "")}.", path);
        var padded = new byte[(length[0] + 7) / 8 * 8];
        bytes.CopyTo(padded, 0);
        communicator.Broadcast(MemoryMarshal.Cast<byte, long>(padded.AsSpan()), 0);
        return Checkpoint.Read(module, padded.AsMemory(0, (int)length[0]), optimizer);
    }
}
