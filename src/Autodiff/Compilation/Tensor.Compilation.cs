namespace Engine.Autodiff;

public sealed partial class Tensor
{
    /// <summary>The reference-counted storage behind this tensor, for a compiled graph that keeps an output alive.</summary>
    internal Storage SharedStorage => storage;

    /// <summary>
    /// A new persistent, untracked tensor over <paramref name="storage"/> (one more reference to it), for a compiled
    /// graph that hands its own gradient buffer back to a parameter.
    /// </summary>
    internal static Tensor Over(Storage storage, int[] shape, string? name)
    {
        storage.AddRef();
        return new Tensor(storage, (int[])shape.Clone(), track: false) { Persistent = true, Name = name };
    }
}
