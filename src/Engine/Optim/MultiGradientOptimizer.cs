using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Optim;

/// <summary>
/// Base of the optimizers that take several gradients per step (<see cref="Sam"/>, <see cref="FiniteDifferenceGr"/>,
/// <see cref="DoubleBackpropGr"/>): they compute a gradient of their own and hand it to a wrapped base optimizer
/// (<see cref="Sgd"/>, <see cref="Adam"/>, ...) whose update rule, state and learning rate they use. Build one in
/// one line, e.g. <c>new Sam(new Sgd(model.Parameters(), 0.1f), rho: 0.05f)</c>; the wrapper owns the base
/// optimizer and disposes it.
/// </summary>
/// <remarks>
/// Only <see cref="Optimizer.Step(Func{Tensor})"/> works: the plain <see cref="Optimizer.Step()"/> throws, since these optimizers must
/// re-evaluate the loss. The extra closure calls run inside a <see cref="TensorScope"/> that frees their tensors when
/// they return; the loss returned is that of the first call, at the unperturbed parameters. Parameters are moved
/// with saved copies and restored by copying those back, bit for bit, even when a closure call throws. The squared
/// gradient norm and the perturbation scale are <see cref="DeviceScalar"/>s (one pair per device), so on one device a
/// step copies nothing back to the host.
/// </remarks>
public abstract class MultiGradientOptimizer : Optimizer
{
    private readonly Dictionary<Tensor, Tensor> backups = new(ReferenceEqualityComparer.Instance);

    /// <summary>Wraps <paramref name="inner"/>, whose parameters, groups, learning rates and state become this optimizer's.</summary>
    protected MultiGradientOptimizer(Optimizer inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (inner is MultiGradientOptimizer)
            throw new ArgumentException($"{GetType().Name}: the base optimizer must take plain gradients (SGD, Adam, ...), not another {inner.GetType().Name}.", nameof(inner));
        Inner = inner;
    }

    /// <summary>The base optimizer whose update rule is applied to the combined gradient.</summary>
    public Optimizer Inner { get; }

    /// <summary>The base optimizer's parameters.</summary>
    public override IReadOnlyList<Tensor> Parameters => Inner.Parameters;

    /// <summary>The base optimizer's groups: setting a group's rate (or <see cref="Optimizer.LearningRate"/>) sets the base's.</summary>
    public override IReadOnlyList<ParamGroup> ParamGroups => Inner.ParamGroups;

    /// <summary>The base optimizer's step count (each step of this optimizer is one step of the base).</summary>
    public override int StepCount => Inner.StepCount;

    private protected override Optimizer SchedulerHolder => Inner;

    /// <summary>Throws: these optimizers need the closure to re-evaluate the loss.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override void Step() =>
        throw new InvalidOperationException($"{GetType().Name}: this optimizer evaluates the gradient at more than one point per step; call Step(closure) with a closure that runs forward and backward and returns the loss.");

    /// <summary>Lets the base optimizer step with the gradients this optimizer left on the parameters.</summary>
    protected void ApplyGradients() => Inner.Step();

    /// <summary>
    /// Adds the hyper-parameters fixed at construction (ρ, γ, ε, ...) to <paramref name="config"/>; the state
    /// dictionary records them under "wrapper." and loads only into a wrapper with the same values.
    /// </summary>
    protected abstract void DescribeConfig(StateDict config);

    private const string TypeKey = "type";
    private const string WrapperPrefix = "wrapper.";

    private string TypeName(string innerType) => $"{GetType().Name}({innerType})";

    /// <summary>
    /// The base optimizer's state dictionary (all the state there is: the saved copies of the parameters are
    /// scratch), with "type" naming both ("Sam(Adam)") and this wrapper's hyper-parameters under "wrapper.".
    /// </summary>
    public override StateDict StateDict()
    {
        var inner = Inner.StateDict();
        var s = new StateDict();
        foreach (var (key, value) in inner)
            s.Add(key, key == TypeKey ? StateValue.Of(TypeName(value.Text)) : value);
        var config = new StateDict();
        DescribeConfig(config);
        s.AddAll(WrapperPrefix, config);
        return s;
    }

    /// <summary>
    /// Checks the type (this wrapper around the same base optimizer) and this wrapper's hyper-parameters, then lets
    /// the base optimizer check and load the rest.
    /// </summary>
    public override Action PrepareLoadStateDict(StateDict state, bool allowNonFinite = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var innerType = Inner.StateDict()[TypeKey].Text;
        var r = new StateReader(state, $"{GetType().Name}.LoadStateDict");
        string saved = r.Text(TypeKey), expected = TypeName(innerType);
        if (saved != expected)
            throw r.Error($"the state was saved from {saved}; this optimizer is {expected}.");
        var config = new StateDict();
        DescribeConfig(config);
        r.Matching(WrapperPrefix, config, "hyper-parameter");
        var inner = new StateDict();
        foreach (var (key, value) in state)
        {
            if (key.StartsWith(WrapperPrefix, StringComparison.Ordinal)) continue;
            inner.Add(key, key == TypeKey ? StateValue.Of(innerType) : value);
        }
        return Inner.PrepareLoadStateDict(inner, allowNonFinite);
    }

    /// <summary>The parameters that currently have a gradient.</summary>
    protected List<Tensor> WithGradients() => Parameters.Where(p => p.Grad != null).ToList();

    /// <summary>
    /// Calls the closure again (gradients cleared first) inside a scope that frees its tensors; throws if it returns
    /// no loss or leaves no gradient.
    /// </summary>
    protected void EvaluateAgain(Func<Tensor?> closure)
    {
        using var scope = new TensorScope();
        EvaluateClosure(closure);
    }

    /// <summary>
    /// Writes the squared global norm Σ‖g‖² of the parameters' gradients (Σ‖|θ| ⊙ g‖² when <paramref name="weighted"/>)
    /// into each of their devices' <see cref="SquaredNormOn"/> scalar, on the device. A model spread over several
    /// devices needs each device's part on the host to form the global sum (one read per device); one device needs none.
    /// </summary>
    protected void ComputeSquaredGradientNorm(IReadOnlyList<Tensor> parameters, bool weighted)
    {
        var groups = parameters.GroupBy(p => p.Device).ToList();
        foreach (var group in groups)
        {
            var ps = group.ToList();
            InPlace.SumOfSquares(ps.Select(p => p.Grad!).ToList(), weighted ? ps.Select(p => (Tensor?)p).ToList() : null,
                Scalars(group.Key).SquaredNorm);
        }
        if (groups.Count < 2) return;
        double total = 0;
        foreach (var group in groups) total += Scalars(group.Key).SquaredNorm.Read();
        foreach (var group in groups) Scalars(group.Key).SquaredNorm.Write(total);
    }

    /// <summary>SAM's scale ρ / (‖g‖ + 1e-12) from <see cref="ComputeSquaredGradientNorm"/>'s result, on each device.</summary>
    protected void ScaleFromGradientNorm(IReadOnlyList<Tensor> parameters, float radius)
    {
        foreach (var device in parameters.Select(p => p.Device).Distinct())
        {
            var s = Scalars(device);
            InPlace.PerturbationScale(s.SquaredNorm, radius, s.Scale.Scalar);
            s.Scale.Forget();
        }
    }

    /// <summary>Sets the perturbation scale to a constant on each device (uploaded only when it changes, bit for bit).</summary>
    protected void SetPerturbationScale(IReadOnlyList<Tensor> parameters, float scale)
    {
        foreach (var device in parameters.Select(p => p.Device).Distinct()) Scalars(device).Scale.Holding(scale);
    }

    /// <summary>
    /// Saves each parameter and moves it by s · g (s · θ² ⊙ g when <paramref name="squareParam"/>), s the device's
    /// perturbation scale (<see cref="ScaleFromGradientNorm"/> or <see cref="SetPerturbationScale"/>).
    /// </summary>
    protected void PerturbAll(IReadOnlyList<Tensor> parameters, bool squareParam)
    {
        foreach (var p in parameters) InPlace.Perturb(p, p.Grad!, Backup(p), Scalars(p.Device).Scale.Scalar, squareParam);
    }

    /// <summary>Copies the saved values back into the parameters.</summary>
    protected void RestoreAll(IReadOnlyList<Tensor> parameters)
    {
        foreach (var p in parameters) InPlace.Restore(Backup(p), p);
    }

    /// <summary>The device scalar holding the last squared gradient norm on <paramref name="device"/>, or null before any.</summary>
    protected DeviceScalar? SquaredNormOn(Device device) => stepScalars.TryGetValue(device, out var s) ? s.SquaredNorm : null;

    private readonly Dictionary<Device, StepScalars> stepScalars = new();

    private StepScalars Scalars(Device device)
    {
        if (!stepScalars.TryGetValue(device, out var s))
        {
            s = new StepScalars(device);
            stepScalars[device] = s;
        }
        return s;
    }

    /// <summary>The device scalars of one step on one device: the squared gradient norm and the perturbation scale.</summary>
    private sealed class StepScalars(Device device) : IDisposable
    {
        public DeviceScalar SquaredNorm { get; } = new(device);
        public MirroredScalar Scale { get; } = new(device, 0);

        public void Dispose()
        {
            SquaredNorm.Dispose();
            Scale.Dispose();
        }
    }

    /// <summary>The scratch tensor holding a parameter's saved values (allocated once; not part of the state).</summary>
    private Tensor Backup(Tensor p)
    {
        if (!backups.TryGetValue(p, out var b))
        {
            b = Tensor.Empty(p.Shape, p.Device);
            b.Persistent = true;
            backups[p] = b;
        }
        return b;
    }

    /// <summary>
    /// Makes <paramref name="p"/>'s gradient a tensor the optimizer may overwrite: the engine-owned tensor a plain
    /// backward pass leaves, or else (a gradient that is part of a recorded graph) a fresh copy of it.
    /// </summary>
    protected static Tensor OwnedGradient(Tensor p)
    {
        var g = p.Grad!;
        if (g.IsLeaf && g.Persistent) return g;
        p.Grad = OwnedCopy(g);
        return p.Grad;
    }

    /// <summary>An engine-owned (persistent, untracked) copy of <paramref name="g"/>, suitable as a parameter's Grad.</summary>
    protected static Tensor OwnedCopy(Tensor g)
    {
        var copy = Tensor.Empty(g.Shape, g.Device);
        copy.Persistent = true;
        InPlace.Copy(g, copy);
        return copy;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        foreach (var b in backups.Values) b.Dispose();
        backups.Clear();
        foreach (var s in stepScalars.Values) s.Dispose();
        stepScalars.Clear();
        Inner.Dispose();
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the optimizer unless <paramref name="value"/> is finite and at least <paramref name="min"/> (above it when <paramref name="strict"/>).</summary>
    protected void CheckHyper(float value, string name, float min, bool strict)
    {
        bool ok = float.IsFinite(value) && (strict ? value > min : value >= min);
        if (!ok)
            throw new ArgumentOutOfRangeException(name, value, $"{GetType().Name}: {name} must be a finite number {(strict ? ">" : ">=")} {min}, got {value}.");
    }
}
