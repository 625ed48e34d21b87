using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// What every optimizer offers: its parameters in groups (<see cref="ParamGroups"/>, each with its own learning rate
/// and weight decay), a step, and its state as a <see cref="Autodiff.StateDict"/> (step count, hyper-parameters,
/// per-parameter tensors, an attached scheduler's state) that <see cref="LoadStateDict"/> restores all or nothing.
/// <see cref="BaseOptimizer"/> holds the update rules (<see cref="Sgd"/>, <see cref="Adam"/>, <see cref="AdamW"/>);
/// <see cref="MultiGradientOptimizer"/> wraps one of them and delegates its groups and state to it.
/// </summary>
/// <remarks>
/// Two ways to step: <see cref="Step()"/> after the caller's own zero-grad, forward and backward; or
/// <see cref="Step(Func{Tensor})"/> with a closure that runs forward and backward and returns the loss, which
/// optimizers needing several gradients per step (<see cref="Sam"/>, <see cref="FiniteDifferenceGr"/>) call more than
/// once. A parameter whose gradient is null after backward is skipped, as in PyTorch.
/// </remarks>
public abstract class Optimizer : IDisposable
{
    private bool disposed;

    /// <summary>Every parameter this optimizer updates, group after group.</summary>
    public abstract IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>The parameter groups (one unless the optimizer was built from <see cref="ParamGroup"/>s).</summary>
    public abstract IReadOnlyList<ParamGroup> ParamGroups { get; }

    /// <summary>
    /// The learning rate of the first group; setting it sets every group's (as a hand-written schedule would). With
    /// several groups at different rates, use <see cref="ParamGroups"/> or a scheduler, which keep their ratios.
    /// </summary>
    public float LearningRate
    {
        get => ParamGroups[0].LearningRate;
        set
        {
            foreach (var g in ParamGroups) g.LearningRate = value;
        }
    }

    /// <summary>Number of steps taken.</summary>
    public abstract int StepCount { get; }

    /// <summary>The learning-rate scheduler attached to this optimizer (its state is saved with the optimizer's), or null.</summary>
    public LrScheduler? Scheduler => SchedulerHolder.attached;

    private LrScheduler? attached;

    /// <summary>The optimizer whose state dictionary holds the scheduler (the wrapped one, for a wrapper).</summary>
    private protected virtual Optimizer SchedulerHolder => this;

    /// <summary>Detaches <paramref name="scheduler"/> if it is the one attached.</summary>
    internal void Detach(LrScheduler scheduler)
    {
        var holder = SchedulerHolder;
        if (ReferenceEquals(holder.attached, scheduler)) holder.attached = null;
    }

    /// <summary>Attaches <paramref name="scheduler"/> (called by <see cref="LrScheduler"/>'s constructor).</summary>
    internal void Attach(LrScheduler scheduler)
    {
        var holder = SchedulerHolder;
        if (holder.attached != null)
            throw new InvalidOperationException($"{GetType().Name}: a {holder.attached.GetType().Name} is already attached; one scheduler per optimizer.");
        holder.attached = scheduler;
    }

    /// <summary>Updates every parameter from its gradient.</summary>
    public abstract void Step();

    private List<Action<Optimizer>>? stepPreHooks;

    /// <summary>
    /// Registers <paramref name="hook"/> to run at the start of every update, before the update rule reads the
    /// gradients (PyTorch's <c>register_step_pre_hook</c>): a data-parallel wrapper all-reduces there the gradients no
    /// backward hook saw. On a <see cref="MultiGradientOptimizer"/> it is registered on the base optimizer, whose
    /// update the wrapper's step ends with. The hook gets the optimizer whose update is about to run. Dispose the
    /// returned handle to remove it.
    /// </summary>
    public IDisposable RegisterStepPreHook(Action<Optimizer> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        var holder = SchedulerHolder;
        var hooks = holder.stepPreHooks ??= new List<Action<Optimizer>>();
        hooks.Add(hook);
        return new HookHandle(() => hooks.Remove(hook));
    }

    /// <summary>Runs the step pre-hooks; an update rule calls this before it reads the gradients.</summary>
    protected void RunStepPreHooks()
    {
        if (stepPreHooks is not { Count: > 0 } hooks) return;
        foreach (var hook in hooks.ToArray()) hook(this);
    }

    private sealed class HookHandle(Action remove) : IDisposable
    {
        private Action? remove = remove;

        public void Dispose()
        {
            remove?.Invoke();
            remove = null;
        }
    }

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
        Step();
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

    /// <summary>Clears every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.ZeroGrad();
    }

    /// <summary>
    /// The optimizer's state, as PyTorch's <c>optimizer.state_dict()</c>: its type, step count, the hyper-parameters
    /// fixed at construction ("config.*"), each group's parameter indices, learning rate and weight decay
    /// ("param_groups.*"), each updated parameter's tensors and step ("state.*", keyed by the parameter's index in
    /// <see cref="Parameters"/>) and an attached scheduler's state ("scheduler.*"). Tensors are live references.
    /// </summary>
    public abstract StateDict StateDict();

    /// <summary>
    /// Checks <paramref name="state"/> completely against this optimizer (type, fixed hyper-parameters, groups, every
    /// per-parameter entry present with the parameter's shape, finite unless <paramref name="allowNonFinite"/>, an
    /// attached scheduler's state, no unknown entries) and returns the action that loads it. Nothing changes until
    /// the action runs, so a caller can check several dictionaries before applying any.
    /// </summary>
    /// <exception cref="ArgumentException">The state does not fit this optimizer; the message names the entry.</exception>
    public abstract Action PrepareLoadStateDict(StateDict state, bool allowNonFinite = false);

    /// <summary>
    /// Loads <paramref name="state"/> (as <see cref="StateDict"/> writes it), all or nothing: the learning rates and
    /// weight decays of the groups, the step counts and per-parameter tensors, and an attached scheduler's state.
    /// Hyper-parameters fixed at construction (betas, momentum, SAM's ρ, ...) must match this optimizer's.
    /// </summary>
    /// <exception cref="ArgumentException">The state does not fit; nothing was changed.</exception>
    public void LoadStateDict(StateDict state, bool allowNonFinite = false) => PrepareLoadStateDict(state, allowNonFinite)();

    /// <summary>Frees the optimizer state.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees what the optimizer holds on the device; subclasses extend this.</summary>
    protected virtual void Dispose(bool disposing) { }
}
