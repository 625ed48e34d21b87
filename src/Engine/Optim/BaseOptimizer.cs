using System.Globalization;
using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Optim;

/// <summary>
/// An optimizer defined by a per-parameter update rule (<see cref="Sgd"/>, <see cref="Adam"/>): parameter groups,
/// per-parameter state tensors created on a parameter's first update, per-parameter step counts, and the state
/// dictionary of all of it. The base optimizer that <see cref="MultiGradientOptimizer"/>s wrap.
/// </summary>
/// <remarks>
/// A subclass names its per-parameter tensors (<see cref="StateNames"/>), applies its rule in
/// <see cref="Update"/>, and lists the hyper-parameters fixed at construction in <see cref="DescribeConfig"/>;
/// the state dictionary, its checks and loading come from here. The learning rates reach the kernels as
/// <see cref="DeviceScalar"/>s (<see cref="LearningRateOn"/>), uploaded only when a group's rate changes, so a step
/// copies nothing between host and device.
/// </remarks>
public abstract class BaseOptimizer : Optimizer
{
    private readonly List<ParamGroup> groups;
    private readonly List<Tensor> parameters = new();
    private readonly Dictionary<Tensor, ParameterState> perParameter = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<(Device Device, ParamGroup Group), MirroredScalar> learningRates = new();
    private int stepCount;

    /// <summary>One group holding <paramref name="parameters"/> (for a module: <c>module.Parameters()</c>).</summary>
    protected BaseOptimizer(IEnumerable<Tensor> parameters, float learningRate, float weightDecay)
        : this(SingleGroup(parameters), learningRate, weightDecay) { }

    /// <summary>
    /// The given groups; a group's learning rate or weight decay left null takes <paramref name="learningRate"/> or
    /// <paramref name="weightDecay"/>.
    /// </summary>
    /// <exception cref="ArgumentException">No parameters, a parameter listed twice, one that is not a leaf requiring
    /// gradients, or a group that already belongs to another optimizer.</exception>
    protected BaseOptimizer(IEnumerable<ParamGroup> groups, float learningRate, float weightDecay)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (!(float.IsFinite(learningRate) && learningRate >= 0))
            throw new ArgumentOutOfRangeException(nameof(learningRate), $"{GetType().Name}: learning rate must be a finite number >= 0, got {learningRate}.");
        if (!(float.IsFinite(weightDecay) && weightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), $"{GetType().Name}: weight decay must be a finite number >= 0, got {weightDecay}.");
        this.groups = groups.ToList();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var g in this.groups)
        {
            ArgumentNullException.ThrowIfNull(g, nameof(groups));
            foreach (var p in g.Parameters)
            {
                if (p == null || !p.RequiresGrad || !p.IsLeaf)
                    throw new ArgumentException($"{GetType().Name}: parameter {p?.Name ?? (p == null ? "null" : Shape.Format(p.Shape))} must be a leaf that requires gradients.");
                if (!seen.Add(p))
                    throw new ArgumentException($"{GetType().Name}: parameter {p.Name ?? Shape.Format(p.Shape)} appears more than once (in one group or in two).");
                parameters.Add(p);
            }
        }
        if (parameters.Count == 0) throw new ArgumentException($"{GetType().Name}: no parameters to optimize.");
        foreach (var g in this.groups) g.Adopt(this, learningRate, weightDecay);
    }

    private static IEnumerable<ParamGroup> SingleGroup(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var list = parameters.ToList();
        // An empty list reaches the "no parameters" check, which names the optimizer.
        return list.Count == 0 ? [] : [new ParamGroup(list)];
    }

    /// <inheritdoc />
    public override IReadOnlyList<Tensor> Parameters => parameters;

    /// <inheritdoc />
    public override IReadOnlyList<ParamGroup> ParamGroups => groups;

    /// <inheritdoc />
    public override int StepCount => stepCount;

    /// <summary>
    /// Names of the per-parameter state tensors ("exp_avg", "momentum_buffer", ...), in the order <see cref="Update"/>
    /// receives them; empty for a rule without such state.
    /// </summary>
    protected abstract IReadOnlyList<string> StateNames { get; }

    /// <summary>
    /// Applies the update rule to one parameter in place. <paramref name="state"/> holds the tensors named by
    /// <see cref="StateNames"/> (zeros before the first update); <paramref name="step"/> counts this parameter's
    /// updates, this one included (1 on the first).
    /// </summary>
    protected abstract void Update(Tensor parameter, Tensor gradient, ParamGroup group, IReadOnlyList<Tensor> state, long step);

    /// <summary>
    /// Adds the hyper-parameters fixed at construction (betas, momentum, ...) to <paramref name="config"/>; a state
    /// dictionary records them under "config." and loads only into an optimizer with the same values.
    /// </summary>
    protected virtual void DescribeConfig(StateDict config) { }

    /// <summary>
    /// Updates every parameter that has a gradient, group by group, and counts the step. With no gradient on any
    /// parameter it does nothing: no update and no count (PyTorch skips parameters whose grad is None the same way).
    /// </summary>
    public override void Step()
    {
        RunStepPreHooks();
        if (!groups.Any(g => g.Parameters.Any(p => p.Grad != null))) return;
        var updates = new List<(ParamGroup Group, Tensor Parameter, ParameterState State)>();
        foreach (var g in groups)
            foreach (var p in g.Parameters)
            {
                if (p.Grad == null) continue;
                if (!Shape.Equal(p.Grad.Shape, p.Shape))
                    throw new InvalidOperationException($"{GetType().Name}: gradient {Shape.Format(p.Grad.Shape)} does not match parameter {p.Name} {Shape.Format(p.Shape)}.");
                updates.Add((g, p, StateOf(p)));
            }
        // The counts and the uploads of this step's scalars are host work a compiled training step repeats on every
        // replay; the updates themselves are kernels it records.
        Compiler.RunOnEveryCall(() =>
        {
            stepCount++;
            foreach (var (g, p, s) in updates) PrepareUpdate(p, g, ++s.Step);
        });
        using (GradMode.NoGrad())
            foreach (var (g, p, s) in updates) Update(p, p.Grad!, g, s.Tensors, s.Step);
        LeakDetector.StepCompleted(Parameters[0].Device);
    }

    /// <summary>
    /// The host side of one parameter's update, run before <see cref="Update"/> and, in a compiled training step, on
    /// every replay instead of it: puts the device scalars the update reads in their state for update
    /// <paramref name="step"/> (the base uploads the group's learning rate when it changed; see
    /// <see cref="LearningRateOn"/>). It must not launch kernels.
    /// </summary>
    protected virtual void PrepareUpdate(Tensor parameter, ParamGroup group, long step) => LearningRateOn(group, parameter.Device);

    /// <summary>
    /// <paramref name="group"/>'s learning rate as a device scalar on <paramref name="device"/>, for the fused
    /// kernels: uploaded when first needed and again only when the group's rate changed since (compared bit for bit;
    /// one host-to-device copy, never a read back). Freed with the optimizer.
    /// </summary>
    protected DeviceScalar LearningRateOn(ParamGroup group, Device device)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(device);
        float lr = group.LearningRate;
        if (!learningRates.TryGetValue((device, group), out var rate))
        {
            rate = new MirroredScalar(device, lr);
            learningRates[(device, group)] = rate;
        }
        return rate.Holding(lr);
    }

    private ParameterState StateOf(Tensor p)
    {
        if (perParameter.TryGetValue(p, out var s)) return s;
        s = new ParameterState(StateNames.Select(_ => Persistent(Tensor.Zeros(p.Shape, p.Device))).ToArray());
        perParameter[p] = s;
        return s;
    }

    private static Tensor Persistent(Tensor t)
    {
        t.Persistent = true;
        return t;
    }

    private const string TypeKey = "type";
    private const string StepCountKey = "step_count";
    private const string ConfigPrefix = "config.";
    private const string GroupCountKey = "param_groups.count";
    private const string StatefulKey = "state.params";
    private const string SchedulerPrefix = "scheduler.";

    private static string GroupKey(int g, string name) => $"param_groups.{g.ToString(CultureInfo.InvariantCulture)}.{name}";

    private static string StateKey(int i, string name) => $"state.{i.ToString(CultureInfo.InvariantCulture)}.{name}";

    private StateDict Config()
    {
        var config = new StateDict();
        DescribeConfig(config);
        return config;
    }

    /// <inheritdoc />
    public override StateDict StateDict()
    {
        var s = new StateDict();
        s.Add(TypeKey, GetType().Name);
        s.Add(StepCountKey, (long)stepCount);
        s.AddAll(ConfigPrefix, Config());
        s.Add(GroupCountKey, (long)groups.Count);
        int first = 0;
        for (int g = 0; g < groups.Count; g++)
        {
            int n = groups[g].Parameters.Count;
            s.Add(GroupKey(g, "params"), Enumerable.Range(first, n).ToArray());
            s.Add(GroupKey(g, "lr"), (double)groups[g].LearningRate);
            s.Add(GroupKey(g, "weight_decay"), (double)groups[g].WeightDecay);
            first += n;
        }
        var stateful = Enumerable.Range(0, parameters.Count).Where(i => perParameter.ContainsKey(parameters[i])).ToArray();
        s.Add(StatefulKey, stateful);
        foreach (int i in stateful)
        {
            var ps = perParameter[parameters[i]];
            for (int k = 0; k < StateNames.Count; k++) s.Add(StateKey(i, StateNames[k]), ps.Tensors[k]);
            s.Add(StateKey(i, "step"), ps.Step);
        }
        if (Scheduler != null) s.AddAll(SchedulerPrefix, Scheduler.StateDict());
        return s;
    }

    /// <inheritdoc />
    public override Action PrepareLoadStateDict(StateDict state, bool allowNonFinite = false)
    {
        string type = GetType().Name;
        var r = new StateReader(state, $"{type}.LoadStateDict");
        string savedType = r.Text(TypeKey);
        if (savedType != type)
            throw r.Error($"the state was saved from {savedType}; this optimizer is {type}.");
        int steps = (int)r.Int64(StepCountKey, 0, int.MaxValue);
        r.Matching(ConfigPrefix, Config(), "hyper-parameter");

        long groupCount = r.Int64(GroupCountKey, 0);
        if (groupCount != groups.Count)
            throw r.Error($"the state has {groupCount} parameter group(s), this optimizer {groups.Count}.");
        var rates = new float[groups.Count];
        var decays = new float[groups.Count];
        int first = 0;
        for (int g = 0; g < groups.Count; g++)
        {
            int n = groups[g].Parameters.Count;
            var ids = r.Int32s(GroupKey(g, "params"));
            if (!ids.AsSpan().SequenceEqual(Enumerable.Range(first, n).ToArray()))
                throw r.Error($"parameter group {g} holds parameters [{string.Join(", ", ids)}] in the state but {n} parameter(s) from index {first} here.");
            rates[g] = r.NonNegativeFloat(GroupKey(g, "lr"));
            decays[g] = r.NonNegativeFloat(GroupKey(g, "weight_decay"));
            first += n;
        }

        var stateful = r.Int32s(StatefulKey);
        for (int j = 0; j < stateful.Length; j++)
            if (stateful[j] < 0 || stateful[j] >= parameters.Count || (j > 0 && stateful[j] <= stateful[j - 1]))
                throw r.Error($"'{StatefulKey}' must list increasing parameter indices below {parameters.Count}, got [{string.Join(", ", stateful)}].");
        var loaded = new Dictionary<Tensor, (Tensor[] Tensors, long Step)>(ReferenceEqualityComparer.Instance);
        foreach (int i in stateful)
        {
            var p = parameters[i];
            var tensors = StateNames.Select(name =>
                r.Tensor(StateKey(i, name), p.Shape, allowNonFinite, $"state '{StateKey(i, name)}' of parameter {i} ({p.Name ?? "unnamed"} {Shape.Format(p.Shape)})")).ToArray();
            long step = r.Int64(StateKey(i, "step"), 1);
            loaded[p] = (tensors, step);
        }

        Action? loadScheduler = null;
        bool savedScheduler = r.Has(SchedulerPrefix + "type");
        if (Scheduler is { } scheduler)
        {
            if (!savedScheduler)
                throw r.Error($"a {scheduler.GetType().Name} is attached to this optimizer, but the state holds no scheduler state.");
            loadScheduler = scheduler.PrepareLoadStateDict(state.WithPrefix(SchedulerPrefix));
            r.Delegate(SchedulerPrefix);
        }
        else if (savedScheduler)
            throw r.Error($"the state holds a {r.Text(SchedulerPrefix + "type")} scheduler's state; attach the same scheduler to this optimizer before loading.");

        r.RejectUnread($"part of a {type}'s state");

        return () =>
        {
            for (int g = 0; g < groups.Count; g++)
            {
                groups[g].LearningRate = rates[g];
                groups[g].WeightDecay = decays[g];
            }
            foreach (var p in parameters)
            {
                if (loaded.TryGetValue(p, out var l))
                {
                    var mine = StateOf(p);
                    for (int k = 0; k < l.Tensors.Length; k++) StateReader.CopyInto(l.Tensors[k], mine.Tensors[k]);
                    mine.Step = l.Step;
                }
                else if (perParameter.Remove(p, out var dropped)) dropped.Dispose();
            }
            stepCount = steps;
            loadScheduler?.Invoke();
        };
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        foreach (var s in perParameter.Values) s.Dispose();
        perParameter.Clear();
        foreach (var r in learningRates.Values) r.Dispose();
        learningRates.Clear();
    }

    /// <summary>A parameter's state tensors and its update count.</summary>
    private sealed class ParameterState(Tensor[] tensors) : IDisposable
    {
        public Tensor[] Tensors { get; } = tensors;
        public long Step { get; set; }

        public void Dispose()
        {
            foreach (var t in Tensors) t.Dispose();
        }
    }
}
