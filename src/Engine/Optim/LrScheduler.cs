using System.Globalization;
using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Base of the learning-rate schedulers, as PyTorch's <c>torch.optim.lr_scheduler</c>: a scheduler sets the learning
/// rate of every parameter group of its optimizer (a multi-gradient wrapper's groups are its base optimizer's) from
/// the group's base rate (its rate when the scheduler was created) and the number of <see cref="Step()"/> calls
/// (<see cref="LastEpoch"/>). Creating one sets the rates for epoch 0 and attaches it to the optimizer, so that the
/// optimizer's state dictionary carries the scheduler's state and a checkpoint resumes both.
/// </summary>
/// <remarks>
/// Rates follow PyTorch's closed forms, computed in double from the base rates and rounded to float once, so a
/// rate never drifts with the number of steps and a resumed run sets the same bits. Call <see cref="Step()"/> once
/// per epoch, or once per optimizer step for per-step schedules such as <see cref="OneCycleLr"/>.
/// A subclass validates its settings, then calls <see cref="Start"/> at the end of its constructor.
/// </remarks>
public abstract class LrScheduler
{
    private float[] baseRates;

    /// <summary>Records <paramref name="optimizer"/>'s current rates as the base rates.</summary>
    protected LrScheduler(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        baseRates = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
    }

    /// <summary>The optimizer whose rates this scheduler sets.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Each group's base rate (PyTorch's <c>base_lrs</c>).</summary>
    public IReadOnlyList<float> BaseLearningRates => baseRates;

    /// <summary>How many times <see cref="Step()"/> ran (0 after construction), PyTorch's <c>last_epoch</c>.</summary>
    public long LastEpoch { get; private set; }

    /// <summary>The rates the groups have now (PyTorch's <c>get_last_lr()</c>).</summary>
    public IReadOnlyList<float> LastLearningRates => Optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();

    /// <summary>Advances one epoch (or step) and sets every group's rate.</summary>
    public virtual void Step()
    {
        LastEpoch++;
        ApplyRates();
    }

    /// <summary>Group <paramref name="group"/>'s rate at <paramref name="epoch"/> (the closed form of the schedule).</summary>
    protected abstract double RateAt(int group, long epoch);

    /// <summary>Attaches the scheduler to its optimizer and sets the rates of epoch 0; the last line of a subclass's constructor.</summary>
    /// <exception cref="InvalidOperationException">The optimizer already has a scheduler.</exception>
    protected void Start()
    {
        Optimizer.Attach(this);
        ApplyRates();
    }

    /// <summary>
    /// Detaches the scheduler from its optimizer (to switch to another schedule): the rates stay as they are and the
    /// optimizer's state dictionary no longer holds this scheduler's state.
    /// </summary>
    public void Detach() => Optimizer.Detach(this);

    /// <summary>Sets every group's rate to <see cref="RateAt"/> of <see cref="LastEpoch"/>.</summary>
    protected void ApplyRates()
    {
        var groups = Optimizer.ParamGroups;
        for (int g = 0; g < groups.Count; g++) groups[g].LearningRate = (float)RateAt(g, LastEpoch);
    }

    /// <summary>Adds the settings fixed at construction to <paramref name="config"/> (saved under "config.", checked on load).</summary>
    protected virtual void DescribeConfig(StateDict config) { }

    /// <summary>Adds state beyond the epoch and base rates (saved under "state.") to <paramref name="state"/>.</summary>
    protected virtual void AddExtraState(StateDict state) { }

    /// <summary>
    /// Checks <paramref name="state"/> (entries of the kinds <see cref="AddExtraState"/> writes) and returns the
    /// action that restores it.
    /// </summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    protected virtual Action PrepareLoadExtraState(StateDict state) => () => { };

    private const string TypeKey = "type";
    private const string EpochKey = "last_epoch";
    private const string ConfigPrefix = "config.";
    private const string ExtraPrefix = "state.";

    private static string BaseKey(int g) => "base_lrs." + g.ToString(CultureInfo.InvariantCulture);

    private StateDict Config()
    {
        var config = new StateDict();
        DescribeConfig(config);
        return config;
    }

    /// <summary>
    /// The scheduler's state: "type", "last_epoch", "base_lrs.&lt;group&gt;", the fixed settings under "config." and
    /// any further state under "state." (e.g. <see cref="ReduceLrOnPlateau"/>'s best metric).
    /// </summary>
    public StateDict StateDict()
    {
        var s = new StateDict();
        s.Add(TypeKey, GetType().Name);
        s.Add(EpochKey, LastEpoch);
        for (int g = 0; g < baseRates.Length; g++) s.Add(BaseKey(g), (double)baseRates[g]);
        s.AddAll(ConfigPrefix, Config());
        var extra = new StateDict();
        AddExtraState(extra);
        s.AddAll(ExtraPrefix, extra);
        return s;
    }

    /// <summary>
    /// Checks <paramref name="state"/> completely (type, settings, one base rate per group, no unknown entries) and
    /// returns the action that restores it; nothing changes until the action runs. The groups' current rates are
    /// the optimizer's state and load with it.
    /// </summary>
    /// <exception cref="ArgumentException">The state does not fit this scheduler.</exception>
    public Action PrepareLoadStateDict(StateDict state)
    {
        string type = GetType().Name;
        var r = new StateReader(state, $"{type}.LoadStateDict");
        string saved = r.Text(TypeKey);
        if (saved != type) throw r.Error($"the state was saved from {saved}; this scheduler is {type}.");
        long epoch = r.Int64(EpochKey, 0);
        r.Matching(ConfigPrefix, Config(), "setting");
        var rates = new float[Optimizer.ParamGroups.Count];
        for (int g = 0; g < rates.Length; g++) rates[g] = r.NonNegativeFloat(BaseKey(g));
        var mine = new StateDict();
        AddExtraState(mine);
        var theirs = new StateDict();
        foreach (var (key, value) in mine) theirs.Add(key, r.Entry(ExtraPrefix + key, value.Kind));
        r.RejectUnread($"part of a {type}'s state (it has {rates.Length} base rate(s), one per parameter group)");
        Action loadExtra;
        try
        {
            loadExtra = PrepareLoadExtraState(theirs);
        }
        catch (ArgumentException e)
        {
            throw r.Error(e.Message);
        }
        return () =>
        {
            LastEpoch = epoch;
            baseRates = rates;
            loadExtra();
        };
    }

    /// <summary>Restores the scheduler's state (see <see cref="PrepareLoadStateDict"/>).</summary>
    public void LoadStateDict(StateDict state) => PrepareLoadStateDict(state)();
}
