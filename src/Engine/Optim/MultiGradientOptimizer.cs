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
/// with saved copies and restored by copying those back, bit for bit, even when a closure call throws.
/// </remarks>
public abstract class MultiGradientOptimizer : Optimizer
{
    /// <summary>Wraps <paramref name="inner"/> (its parameters and learning rate become this optimizer's).</summary>
    protected MultiGradientOptimizer(Optimizer inner)
        : base((inner ?? throw new ArgumentNullException(nameof(inner))).Parameters, inner.LearningRate)
    {
        if (inner is MultiGradientOptimizer)
            throw new ArgumentException($"{GetType().Name}: the base optimizer must take plain gradients (SGD, Adam, ...), not another {inner.GetType().Name}.", nameof(inner));
        Inner = inner;
    }

    /// <summary>The base optimizer whose update rule is applied to the combined gradient.</summary>
    public Optimizer Inner { get; }

    /// <summary>The base optimizer's learning rate (setting it sets the base's).</summary>
    public override float LearningRate
    {
        get => Inner.LearningRate;
        set => Inner.LearningRate = value;
    }

    /// <summary>Throws: these optimizers need the closure to re-evaluate the loss.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override void Step() =>
        throw new InvalidOperationException($"{GetType().Name}: this optimizer evaluates the gradient at more than one point per step; call Step(closure) with a closure that runs forward and backward and returns the loss.");

    /// <inheritdoc />
    protected override void Update(Tensor parameter, Tensor gradient) => Inner.UpdateParameter(parameter, gradient);

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
            var grads = ps.Select(p => p.Grad!.Buffer).ToList();
            var weights = weighted ? ps.Select(p => (DeviceBuffer<float>?)p.Buffer).ToList() : null;
            group.Key.Kernels.OptimizerKernels().SumOfSquares(grads, weights, Scalars(group.Key).SquaredNorm);
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
            device.Kernels.OptimizerKernels().PerturbationScale(s.SquaredNorm, radius, s.Scale);
            s.ConstantScale = null;
        }
    }

    /// <summary>Sets the perturbation scale to a constant on each device (uploaded only when it changes).</summary>
    protected void SetPerturbationScale(IReadOnlyList<Tensor> parameters, float scale)
    {
        foreach (var device in parameters.Select(p => p.Device).Distinct())
        {
            var s = Scalars(device);
            if (s.ConstantScale is { } held && BitConverter.SingleToInt32Bits(held) == BitConverter.SingleToInt32Bits(scale)) continue;
            s.Scale.Write(scale);
            s.ConstantScale = scale;
        }
    }

    /// <summary>
    /// Saves each parameter and moves it by s · g (s · θ² ⊙ g when <paramref name="squareParam"/>), s the device's
    /// perturbation scale (<see cref="ScaleFromGradientNorm"/> or <see cref="SetPerturbationScale"/>).
    /// </summary>
    protected void PerturbAll(IReadOnlyList<Tensor> parameters, bool squareParam)
    {
        foreach (var p in parameters)
            p.Device.Kernels.OptimizerKernels().Perturb(p.Buffer, p.Grad!.Buffer, Backup(p), Scalars(p.Device).Scale, squareParam);
    }

    /// <summary>Copies the saved values back into the parameters.</summary>
    protected void RestoreAll(IReadOnlyList<Tensor> parameters)
    {
        foreach (var p in parameters) p.Device.Kernels.OptimizerKernels().Restore(Backup(p), p.Buffer);
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
        public DeviceScalar Scale { get; } = new(device);
        /// <summary>The constant last uploaded into <see cref="Scale"/>, null when a kernel wrote it.</summary>
        public float? ConstantScale { get; set; }

        public void Dispose()
        {
            SquaredNorm.Dispose();
            Scale.Dispose();
        }
    }

    /// <summary>The buffer holding a parameter's saved values (allocated once, kept as optimizer state).</summary>
    private DeviceBuffer<float> Backup(Tensor p) => State(p, 1, out _)[0];

    /// <summary>
    /// Makes <paramref name="p"/>'s gradient a buffer the optimizer may overwrite: the engine-owned buffer a plain
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
        var copy = Tensor.Empty(g.Shape, g.Device, track: false);
        copy.Persistent = true;
        g.Device.Kernels.Copy(g.Buffer, 0, copy.Buffer, 0, g.Size);
        return copy;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        Inner.Dispose();
        foreach (var s in stepScalars.Values) s.Dispose();
        stepScalars.Clear();
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the optimizer unless <paramref name="value"/> is finite and at least <paramref name="min"/> (above it when <paramref name="strict"/>).</summary>
    protected void CheckHyper(float value, string name, float min, bool strict)
    {
        bool ok = float.IsFinite(value) && (strict ? value > min : value >= min);
        if (!ok)
            throw new ArgumentOutOfRangeException(name, value, $"{GetType().Name}: {name} must be a finite number {(strict ? ">" : ">=")} {min}, got {value}.");
    }
}
