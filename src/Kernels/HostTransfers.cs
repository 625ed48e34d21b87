namespace Engine.Kernels;

/// <summary>
/// Sees every copy between the host and a device made from the current execution flow while it is installed with
/// <see cref="HostTransfers.Observe"/>: a compiler tracing a function uses it to record uploads as graph operations
/// and to notice host reads, which a replayed graph could not reproduce.
/// </summary>
public interface IHostTransferObserver
{
    /// <summary>Called before <paramref name="data"/> is copied into <paramref name="buffer"/>.</summary>
    void Uploading<T>(DeviceBuffer<T> buffer, ReadOnlySpan<T> data) where T : unmanaged;

    /// <summary>Called before <paramref name="buffer"/> is copied to the host; may throw to forbid the read.</summary>
    void Downloading<T>(DeviceBuffer<T> buffer) where T : unmanaged;
}

/// <summary>The observer of host-device copies in force for the current execution flow (see <see cref="IHostTransferObserver"/>).</summary>
public static class HostTransfers
{
    private static readonly AsyncLocal<IHostTransferObserver?> Installed = new();

    /// <summary>The observer in force for the current execution flow, or null.</summary>
    public static IHostTransferObserver? Current => Installed.Value;

    /// <summary>
    /// Installs <paramref name="observer"/> for the current execution flow (or none, with null) until the returned
    /// scope is disposed, which puts the previous one back.
    /// </summary>
    public static IDisposable Observe(IHostTransferObserver? observer)
    {
        var previous = Installed.Value;
        Installed.Value = observer;
        return new Scope(previous);
    }

    private sealed class Scope(IHostTransferObserver? previous) : IDisposable
    {
        private bool done;

        public void Dispose()
        {
            if (done) return;
            done = true;
            Installed.Value = previous;
        }
    }
}
