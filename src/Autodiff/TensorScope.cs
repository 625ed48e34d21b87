namespace Engine.Autodiff;

/// <summary>
/// Frees the temporaries of a block of work (a training step) deterministically: every tensor created while the
/// scope is the innermost one on this thread is disposed with the scope, except those passed to <see cref="Keep"/>.
/// Matters on GPUs, where device memory is scarce and the garbage collector does not see it.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? current;
    private readonly TensorScope? parent;
    private readonly List<Tensor> owned = new();
    private readonly HashSet<Tensor> kept = new(ReferenceEqualityComparer.Instance);
    private bool disposed;

    /// <summary>Opens a scope nested in the current one.</summary>
    public TensorScope()
    {
        parent = current;
        current = this;
    }

    internal static void Track(Tensor t) => current?.owned.Add(t);

    /// <summary>Keeps <paramref name="t"/> alive past this scope (it moves to the enclosing scope, if any).</summary>
    public Tensor Keep(Tensor t)
    {
        kept.Add(t);
        return t;
    }

    /// <summary>Disposes every tensor created in the scope that was not kept.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        current = parent;
        foreach (var t in owned)
        {
            if (t.Persistent) continue;
            if (kept.Contains(t)) parent?.owned.Add(t);
            else t.Dispose();
        }
        owned.Clear();
    }
}
