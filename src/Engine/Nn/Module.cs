using System.Reflection;
using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>
/// A building block with named parameters and named sub-modules, both registered explicitly. Registration is
/// checked: a <see cref="Tensor"/> field that requires gradients, or a <see cref="Module"/> field, that was not
/// registered makes <see cref="NamedParameters"/> throw, so a parameter can never silently drop out of the
/// optimizer or a checkpoint.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Value)> parameters = new();
    private readonly List<(string Name, Module Value)> children = new();
    private readonly List<(string Name, IndexBuffer Value)> buffers = new();
    private bool disposed;

    /// <summary>True in training mode (the default); layers such as dropout read it.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Computes the module's output.</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>Registers <paramref name="value"/> as a trainable parameter called <paramref name="name"/>.</summary>
    protected Tensor RegisterParameter(string name, Tensor value)
    {
        CheckName(name);
        if (!value.IsLeaf)
            throw new ArgumentException($"{GetType().Name}.RegisterParameter: '{name}' must be a leaf tensor (create it, don't compute it).");
        value.RequiresGrad = true;
        value.Persistent = true;
        value.Name = name;
        parameters.Add((name, value));
        return value;
    }

    /// <summary>Registers <paramref name="module"/> as a sub-module called <paramref name="name"/>.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        children.Add((name, module));
        return module;
    }

    /// <summary>
    /// Registers an integer state array (e.g. a permutation) called <paramref name="name"/>: not trained, but saved
    /// and restored by checkpoints.
    /// </summary>
    protected IndexBuffer RegisterBuffer(string name, IndexBuffer buffer)
    {
        CheckName(name);
        buffers.Add((name, buffer));
        return buffer;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains('.'))
            throw new ArgumentException($"{GetType().Name}: '{name}' is not a valid name (non-empty, no dots).");
        if (parameters.Any(p => p.Name == name) || children.Any(c => c.Name == name) || buffers.Any(b => b.Name == name))
            throw new ArgumentException($"{GetType().Name}: the name '{name}' is registered twice.");
    }

    /// <summary>Every parameter with its dotted path ("0.weight"), depth first, in registration order.</summary>
    /// <exception cref="InvalidOperationException">A field holds an unregistered trainable tensor or module.</exception>
    public IReadOnlyList<(string Name, Tensor Value)> NamedParameters()
    {
        var list = new List<(string, Tensor)>();
        Collect("", list);
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (n, t) in list)
            if (!seen.Add(t)) throw new InvalidOperationException($"Module: parameter '{n}' is registered in two places.");
        return list;
    }

    /// <summary>Every registered index buffer with its dotted path ("blocks.0.token1.input_permutation"), depth first.</summary>
    public IReadOnlyList<(string Name, IndexBuffer Value)> NamedBuffers()
    {
        var list = new List<(string, IndexBuffer)>();
        CollectBuffers("", list);
        return list;
    }

    private void CollectBuffers(string prefix, List<(string, IndexBuffer)> list)
    {
        foreach (var (n, b) in buffers) list.Add((prefix + n, b));
        foreach (var (n, m) in children) m.CollectBuffers(prefix + n + ".", list);
    }

    /// <summary>Every parameter, in the order of <see cref="NamedParameters"/>.</summary>
    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Value).ToList();

    /// <summary>The registered sub-modules with their names.</summary>
    public IReadOnlyList<(string Name, Module Value)> Children => children;

    /// <summary>Total number of trainable scalars.</summary>
    public long ParameterCount => Parameters().Sum(p => p.Size);

    private void Collect(string prefix, List<(string, Tensor)> list)
    {
        CheckRegistration();
        foreach (var (n, t) in parameters) list.Add((prefix + n, t));
        foreach (var (n, m) in children) m.Collect(prefix + n + ".", list);
    }

    private void CheckRegistration()
    {
        for (var type = GetType(); type != null && type != typeof(Module); type = type.BaseType)
        {
            foreach (var f in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                var v = f.GetValue(this);
                if (v is Tensor t && t.RequiresGrad && t.IsLeaf && !parameters.Any(p => ReferenceEquals(p.Value, t)))
                    throw new InvalidOperationException(
                        $"{GetType().Name}: field '{f.Name}' holds a trainable tensor {Shape.Format(t.Shape)} that was never registered; call RegisterParameter so the optimizer and checkpoints see it.");
                if (v is Module m && !children.Any(c => ReferenceEquals(c.Value, m)))
                    throw new InvalidOperationException(
                        $"{GetType().Name}: field '{f.Name}' holds a {m.GetType().Name} module that was never registered; call RegisterModule.");
            }
        }
    }

    /// <summary>
    /// The module's state, as PyTorch's <c>state_dict()</c>: every parameter under its dotted path ("0.weight", a
    /// live tensor reference) and every index buffer under its path (an integer array read from the device).
    /// </summary>
    public StateDict StateDict()
    {
        var state = new StateDict();
        foreach (var (name, p) in NamedParameters()) state.Add(name, p);
        foreach (var (name, b) in NamedBuffers()) state.Add(name, b.Read());
        return state;
    }

    /// <summary>
    /// Checks <paramref name="state"/> completely against this module (every parameter present with its shape and
    /// finite unless <paramref name="allowNonFinite"/>, every buffer present with its length and valid, no unknown
    /// entries) and returns the action that copies it in; nothing changes until the action runs.
    /// </summary>
    /// <exception cref="ArgumentException">The state does not fit; the message names the entry and what was expected.</exception>
    public Action PrepareLoadStateDict(StateDict state, bool allowNonFinite = false)
    {
        string owner = GetType().Name;
        var r = new StateReader(state, $"{owner}.LoadStateDict");
        var apply = new List<Action>();
        foreach (var (name, p) in NamedParameters())
        {
            var source = r.Tensor(name, p.Shape, allowNonFinite, $"parameter '{name}'");
            apply.Add(() => StateReader.CopyInto(source, p));
        }
        foreach (var (name, b) in NamedBuffers())
        {
            var values = r.Int32s(name);
            if (values.Length != b.Length)
                throw r.Error($"buffer '{name}' has {values.Length} elements, expected {b.Length}.");
            try
            {
                b.Validate(values);
            }
            catch (ArgumentException e)
            {
                throw r.Error($"buffer '{name}' is not valid: {e.Message}");
            }
            apply.Add(() => b.Write(values));
        }
        r.RejectUnread($"parameters or buffers of the {owner}");
        return () =>
        {
            using var _ = GradMode.NoGrad();
            foreach (var a in apply) a();
        };
    }

    /// <summary>Loads <paramref name="state"/> all or nothing (see <see cref="PrepareLoadStateDict"/>).</summary>
    /// <exception cref="ArgumentException">The state does not fit; nothing was changed.</exception>
    public void LoadStateDict(StateDict state, bool allowNonFinite = false) => PrepareLoadStateDict(state, allowNonFinite)();

    /// <summary>Clears the gradients of every parameter.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <summary>Switches this module and its children to training mode.</summary>
    public Module Train(bool on = true)
    {
        Training = on;
        foreach (var (_, m) in children) m.Train(on);
        return this;
    }

    /// <summary>Switches to evaluation mode.</summary>
    public Module Eval() => Train(false);

    /// <summary>
    /// One line of settings shown after the module's type name by <see cref="ToString"/> (PyTorch's extra_repr): a
    /// layer overrides it with its sizes ("64 → 128"). Empty by default.
    /// </summary>
    protected virtual string ExtraRepr() => "";

    /// <summary>
    /// The module tree: each module's name, type and settings, its parameters' shapes and counts, and the total of
    /// every subtree, e.g.
    /// <code>
    /// Sequential (8,650 parameters)
    ///   (0): Linear(64 → 128) (8,320 parameters)
    ///     weight [128, 64]
    ///     bias [128]
    ///   (1): ReLU
    ///   (2): Linear(128 → 2) (258 parameters)
    ///     ...
    /// </code>
    /// </summary>
    public override string ToString()
    {
        var text = new System.Text.StringBuilder();
        Describe(text, null, 0);
        return text.ToString().TrimEnd('\n');
    }

    private void Describe(System.Text.StringBuilder text, string? name, int depth)
    {
        var indent = new string(' ', 2 * depth);
        var extra = ExtraRepr();
        text.Append(indent);
        if (name != null) text.Append('(').Append(name).Append("): ");
        text.Append(GetType().Name);
        if (extra.Length > 0) text.Append('(').Append(extra).Append(')');
        long count = parameters.Sum(p => p.Value.Size) + children.Sum(c => c.Value.SafeParameterCount());
        if (count > 0) text.Append(" (").Append(count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)).Append(count == 1 ? " parameter)" : " parameters)");
        text.Append('\n');
        foreach (var (n, t) in parameters)
            text.Append(indent).Append("  ").Append(n).Append(' ').Append(Shape.Format(t.IsDisposed ? [] : t.Shape)).Append(t.IsDisposed ? " (disposed)" : "").Append('\n');
        foreach (var (n, b) in buffers)
            text.Append(indent).Append("  ").Append(n).Append(" (index buffer, ").Append(b.Length).Append(" entries)").Append('\n');
        foreach (var (n, m) in children) m.Describe(text, n, depth + 1);
    }

    /// <summary>The subtree's parameter count without the registration check (printing must not throw).</summary>
    private long SafeParameterCount() => parameters.Sum(p => p.Value.Size) + children.Sum(c => c.Value.SafeParameterCount());

    /// <summary>Frees the parameters' device memory (and whatever a subclass holds, through <see cref="Dispose(bool)"/>).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Frees the parameters and the child modules; a subclass holding device memory of its own overrides this, frees
    /// it, and calls the base. Runs once, however often <see cref="Dispose()"/> is called.
    /// </summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing) return;
        foreach (var (_, t) in parameters)
        {
            t.ZeroGrad();
            t.Dispose();
        }
        foreach (var (_, m) in children) m.Dispose();
    }
}
