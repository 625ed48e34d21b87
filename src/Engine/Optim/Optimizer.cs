using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Optim;

/// <summary>
/// Base of the optimizers: a fixed list of parameters and per-parameter state kept as raw device buffers
/// (freed by <see cref="Dispose()"/>). A parameter whose gradient is null after backward is skipped, as in PyTorch.
/// </summary>
/// <remarks>
/// Two ways to step: <see cref="Step()"/> after the caller's own zero-grad, forward and backward; or
/// <see cref="Step(Func{Tensor})"/> with a closure that runs forward and backward and returns the loss, which
/// optimizers needing several gradients per step (<see cref="Sam"/>, <see cref="FiniteDifferenceGr"/>) call more than once.
/// </remarks>
public abstract class Optimizer : IDisposable
{
    private readonly Dictionary<Tensor, DeviceBuffer<float>[]> state = new(ReferenceEqualityComparer.Instance);
    private float learningRate;

    /// <summary>Takes the parameters to update (for a module: <c>module.Parameters()</c>).</summary>
    protected Optimizer(IEnumerable<Tensor> parameters, float learningRate)
    {
        Parameters = parameters.ToList();
        if (Parameters.Count == 0) throw new ArgumentException($"{GetType().Name}: no parameters to optimize.");
        foreach (var p in Parameters)
            if (!p.RequiresGrad || !p.IsLeaf)
                throw new ArgumentException($"{GetType().Name}: parameter {p.Name ?? Shape.Format(p.Shape)} must be a leaf that requires gradients.");
        this.learningRate = CheckLearningRate(learningRate);
    }

    private float CheckLearningRate(float value) => float.IsFinite(value) && value >= 0
        ? value
        : throw new ArgumentOutOfRangeException(nameof(LearningRate), value, $"{GetType().Name}: learning rate must be a finite number >= 0, got {value}.");

    /// <summary>The parameters this optimizer updates.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>The learning rate (may be changed between steps, e.g. by a schedule).</summary>
    /// <exception cref="ArgumentOutOfRangeException">NaN, infinite or negative.</exception>
    public virtual float LearningRate
    {
        get => learningRate;
        set => learningRate = CheckLearningRate(value);
    }

    /// <summary>
    /// Number of steps taken: steps that updated at least one parameter. A <see cref="Step()"/> when no parameter has
    /// a gradient changes nothing and is not counted (PyTorch's optimizers skip parameters whose grad is None too).
    /// </summary>
    public int StepCount { get; private set; }

    /// <summary>Updates every parameter from its gradient.</summary>
    public virtual void Step() => ApplyGradients();

    /// <summary>
    /// Closure step: clears the gradients, calls <paramref name="closure"/>, which must run the forward pass, call
    /// <c>Backward()</c> on the loss and return the loss (calling <see cref="ZeroGrad"/> itself first is allowed
    /// and harmless), then updates the parameters. Returns the closure's loss. Optimizers that need gradients at
    /// several points override this and call the closure more than once.
    /// </summary>
    /// <exception cref="InvalidOperationException">The closure returned null or left no parameter with a gradient.</exception>
    public virtual Tensor Step(Func<Tensor?> closure)
    {
        var loss = EvaluateClosure(closure);
        ApplyGradients();
        return loss;
    }

    /// <summary>
    /// True (the default) if the closure given to <see cref="Step(Func{Tensor})"/> must run the backward pass itself;
    /// false for optimizers that take the gradients from the returned loss on their own
    /// (<see cref="DoubleBackpropGr"/>), whose closure should run only the forward pass. Training loops that want to
    /// work with every optimizer call <see cref="StepOnLoss"/>, which reads this.
    /// </summary>
    public virtual bool ClosureRunsBackward => true;

    /// <summary>
    /// One step on the loss that <paramref name="computeLoss"/> computes (the forward pass, returning a scalar loss):
    /// builds the closure this optimizer expects (forward, then <c>Backward()</c> unless
    /// <see cref="ClosureRunsBackward"/> is false) and calls <see cref="Step(Func{Tensor})"/> with it, so one training
    /// loop serves plain optimizers (one forward and backward per step, the same work as zero-grad, backward,
    /// <see cref="Step()"/>) and the multi-gradient ones (which call <paramref name="computeLoss"/> again at moved
    /// parameters). Returns the loss of the first call, at the unperturbed parameters.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loss is null or leaves no gradient.</exception>
    public Tensor StepOnLoss(Func<Tensor> computeLoss)
    {
        ArgumentNullException.ThrowIfNull(computeLoss);
        bool backward = ClosureRunsBackward;
        return Step(() =>
        {
            var loss = computeLoss();
            if (backward && loss != null) loss.Backward();
            return loss;
        });
    }

    /// <summary>
    /// Clears the gradients and runs <paramref name="closure"/>; throws a clear error when it returns no loss or
    /// leaves no parameter with a gradient.
    /// </summary>
    protected Tensor EvaluateClosure(Func<Tensor?> closure)
    {
        ArgumentNullException.ThrowIfNull(closure);
        ZeroGrad();
        var loss = closure()
            ?? throw new InvalidOperationException($"{GetType().Name}: the closure returned no loss (null); it must run the forward pass, call loss.Backward() and return the loss.");
        if (!Parameters.Any(p => p.Grad != null))
            throw new InvalidOperationException($"{GetType().Name}: the closure left no gradient on any of the {Parameters.Count} parameters; it must call loss.Backward() on a loss that depends on them.");
        return loss;
    }

    /// <summary>
    /// Applies <see cref="Update"/> to every parameter that has a gradient and counts the step; with no gradient at
    /// all it does nothing (no update, no count).
    /// </summary>
    protected void ApplyGradients()
    {
        if (!Parameters.Any(p => p.Grad != null)) return;
        StepCount++;
        using (GradMode.NoGrad())
            foreach (var p in Parameters)
            {
                if (p.Grad == null) continue;
                if (!Shape.Equal(p.Grad.Shape, p.Shape))
                    throw new InvalidOperationException($"{GetType().Name}: gradient {Shape.Format(p.Grad.Shape)} does not match parameter {p.Name} {Shape.Format(p.Shape)}.");
                Update(p, p.Grad);
            }
        LeakDetector.OnStep(Parameters[0].Device);
    }

    /// <summary>Applies the update rule to one parameter.</summary>
    protected abstract void Update(Tensor parameter, Tensor gradient);

    /// <summary>Runs this optimizer's update rule on one parameter (for wrappers that compute the gradient themselves).</summary>
    internal void UpdateParameter(Tensor parameter, Tensor gradient) => Update(parameter, gradient);

    /// <summary>Zeroed state buffers for a parameter, created on first use.</summary>
    protected DeviceBuffer<float>[] State(Tensor parameter, int count, out bool created)
    {
        created = false;
        if (state.TryGetValue(parameter, out var s)) return s;
        s = new DeviceBuffer<float>[count];
        for (int i = 0; i < count; i++)
        {
            s[i] = parameter.Device.Kernels.Allocate(parameter.Size);
            parameter.Device.Kernels.Fill(s[i], 0f);
        }
        state[parameter] = s;
        created = true;
        return s;
    }

    // ---------- checkpoint access (Engine.Checkpoints) ----------

    /// <summary>
    /// Names of the per-parameter state buffers in the order <see cref="State"/> creates them (checkpoint keys
    /// "optimizer.&lt;parameter&gt;.&lt;name&gt;"); empty for a stateless optimizer.
    /// </summary>
    protected virtual IReadOnlyList<string> StateNames => [];

    /// <summary>See <see cref="StateNames"/>.</summary>
    internal IReadOnlyList<string> CheckpointStateNames => StateNames;

    /// <summary>The state buffers of <paramref name="parameter"/>, or null if it has none yet.</summary>
    internal DeviceBuffer<float>[]? PeekState(Tensor parameter) => state.TryGetValue(parameter, out var s) ? s : null;

    /// <summary>The state buffers of <paramref name="parameter"/>, created (zeroed) if missing.</summary>
    internal DeviceBuffer<float>[] GetOrCreateState(Tensor parameter) => State(parameter, StateNames.Count, out _);

    /// <summary>Forgets the state of <paramref name="parameter"/> (as if it was never updated).</summary>
    internal void ClearState(Tensor parameter)
    {
        if (state.Remove(parameter, out var s))
            foreach (var b in s) b.Dispose();
    }

    /// <summary>True if the optimizer counts updates per parameter (<see cref="GetParameterStep"/>).</summary>
    internal virtual bool HasParameterSteps => false;

    /// <summary>The number of updates <paramref name="parameter"/> received (0 if none), where counted.</summary>
    internal virtual int GetParameterStep(Tensor parameter) => 0;

    /// <summary>Sets the update count of <paramref name="parameter"/> (0 forgets it), where counted.</summary>
    internal virtual void SetParameterStep(Tensor parameter, int step) { }

    /// <summary>Restores <see cref="StepCount"/> from a checkpoint.</summary>
    internal void SetStepCount(int steps) => StepCount = steps;

    /// <summary>Clears every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.ZeroGrad();
    }

    /// <summary>Frees the optimizer state.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the state buffers; subclasses holding more (a wrapped optimizer) extend this.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing) return;
        foreach (var s in state.Values)
            foreach (var b in s) b.Dispose();
        state.Clear();
    }
}
