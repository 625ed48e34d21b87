using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Step decay, as PyTorch's <c>StepLR</c>: lr = base · γ^⌊epoch / stepSize⌋ (every <c>stepSize</c>
/// epochs the rate is multiplied by γ).
/// </summary>
public sealed class StepLr : LrScheduler
{
    /// <summary>Attaches the schedule to <paramref name="optimizer"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">stepSize not positive, or γ negative or not finite.</exception>
    public StepLr(Optimizer optimizer, int stepSize, float gamma = 0.1f) : base(optimizer)
    {
        Schedules.Check(stepSize > 0, "StepLr", nameof(stepSize), stepSize, "positive");
        Schedules.CheckFactor(gamma, nameof(gamma), "StepLr");
        StepSize = stepSize;
        Gamma = gamma;
        Start();
    }

    /// <summary>Epochs between decays.</summary>
    public int StepSize { get; }

    /// <summary>Decay factor.</summary>
    public float Gamma { get; }

    /// <inheritdoc />
    protected override double RateAt(int group, long epoch) => BaseLearningRates[group] * Math.Pow(Gamma, epoch / StepSize);

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("step_size", (long)StepSize);
        config.Add("gamma", (double)Gamma);
    }
}

/// <summary>
/// Decay at milestones, as PyTorch's <c>MultiStepLR</c>: lr = base · γ^k with k the number of milestones ≤ epoch
/// (a milestone listed twice counts twice).
/// </summary>
public sealed class MultiStepLr : LrScheduler
{
    private readonly int[] milestones;

    /// <summary>Attaches the schedule to <paramref name="optimizer"/>.</summary>
    /// <exception cref="ArgumentException">No milestones, or a negative one.</exception>
    /// <exception cref="ArgumentOutOfRangeException">γ negative or not finite.</exception>
    public MultiStepLr(Optimizer optimizer, IEnumerable<int> milestones, float gamma = 0.1f) : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(milestones);
        this.milestones = milestones.Order().ToArray();
        if (this.milestones.Length == 0 || this.milestones[0] < 0)
            throw new ArgumentException($"MultiStepLr: milestones must be a non-empty list of epochs >= 0, got [{string.Join(", ", this.milestones)}].", nameof(milestones));
        Schedules.CheckFactor(gamma, nameof(gamma), "MultiStepLr");
        Gamma = gamma;
        Start();
    }

    /// <summary>The epochs at which the rate decays, sorted.</summary>
    public IReadOnlyList<int> Milestones => milestones;

    /// <summary>Decay factor.</summary>
    public float Gamma { get; }

    /// <inheritdoc />
    protected override double RateAt(int group, long epoch) =>
        BaseLearningRates[group] * Math.Pow(Gamma, milestones.Count(m => m <= epoch));

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("milestones", milestones);
        config.Add("gamma", (double)Gamma);
    }
}

/// <summary>
/// Linear warm-up, then cosine annealing, as PyTorch's <c>LinearLR</c> followed by <c>CosineAnnealingLR</c> (and
/// Hugging Face's <c>get_cosine_schedule_with_warmup</c> with the defaults): for t &lt; warmup,
/// lr = base · (f + (1 − f) · t / warmup) with f = <c>warmupStartFactor</c>; then
/// lr = min + (base − min) · (1 + cos(π (t − warmup) / (total − warmup))) / 2 up to t = total, and min after.
/// </summary>
public sealed class WarmupCosineLr : LrScheduler
{
    /// <summary>Attaches the schedule to <paramref name="optimizer"/>; t counts <see cref="LrScheduler.Step()"/> calls.</summary>
    /// <exception cref="ArgumentOutOfRangeException">warmupSteps negative or not below totalSteps, minLearningRate
    /// negative, or the start factor outside [0, 1].</exception>
    public WarmupCosineLr(Optimizer optimizer, int warmupSteps, int totalSteps, float minLearningRate = 0f, float warmupStartFactor = 0f)
        : base(optimizer)
    {
        if (warmupSteps < 0 || totalSteps <= warmupSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), $"WarmupCosineLr: need 0 <= warmupSteps < totalSteps, got warm-up {warmupSteps}, total {totalSteps}.");
        Schedules.CheckFactor(minLearningRate, nameof(minLearningRate), "WarmupCosineLr");
        Schedules.Check(warmupStartFactor >= 0 && warmupStartFactor <= 1, "WarmupCosineLr", nameof(warmupStartFactor), warmupStartFactor, "in [0, 1]");
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLearningRate = minLearningRate;
        WarmupStartFactor = warmupStartFactor;
        Start();
    }

    /// <summary>Steps of linear warm-up.</summary>
    public int WarmupSteps { get; }

    /// <summary>The step at which the cosine reaches <see cref="MinLearningRate"/>.</summary>
    public int TotalSteps { get; }

    /// <summary>The rate at the end of the cosine (PyTorch's <c>eta_min</c>).</summary>
    public float MinLearningRate { get; }

    /// <summary>Fraction of the base rate at step 0 of the warm-up (PyTorch's <c>LinearLR</c> start factor).</summary>
    public float WarmupStartFactor { get; }

    /// <inheritdoc />
    protected override double RateAt(int group, long epoch)
    {
        double b = BaseLearningRates[group];
        if (epoch < WarmupSteps)
            return b * (WarmupStartFactor + (1.0 - WarmupStartFactor) * epoch / WarmupSteps);
        if (epoch >= TotalSteps) return MinLearningRate;
        double progress = (double)(epoch - WarmupSteps) / (TotalSteps - WarmupSteps);
        return MinLearningRate + (b - MinLearningRate) * (1 + Math.Cos(Math.PI * progress)) / 2;
    }

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("warmup_steps", (long)WarmupSteps);
        config.Add("total_steps", (long)TotalSteps);
        config.Add("min_lr", (double)MinLearningRate);
        config.Add("warmup_start_factor", (double)WarmupStartFactor);
    }
}

/// <summary>
/// The one-cycle policy (Smith and Topin 2018), as PyTorch's <c>OneCycleLR</c> without momentum cycling: from
/// max/divFactor up to max over the first pctStart of <c>totalSteps</c> steps, then down to
/// max/(divFactor·finalDivFactor); with <c>threePhase</c>, up, back down to max/divFactor, then to the minimum.
/// Annealed by cosine (or linearly). Step it once per optimizer step; more than totalSteps steps throw. Step
/// totalSteps itself (the call after the last batch, which PyTorch allows and extrapolates) keeps the final rate.
/// </summary>
public sealed class OneCycleLr : LrScheduler
{
    private readonly float[] maxRates;

    /// <summary>Attaches the schedule with one maximum rate for every group.</summary>
    public OneCycleLr(Optimizer optimizer, float maxLearningRate, int totalSteps, double pctStart = 0.3, bool cosine = true,
        float divFactor = 25f, float finalDivFactor = 1e4f, bool threePhase = false)
        : this(optimizer, Enumerable.Repeat(maxLearningRate, (optimizer ?? throw new ArgumentNullException(nameof(optimizer))).ParamGroups.Count).ToArray(),
            totalSteps, pctStart, cosine, divFactor, finalDivFactor, threePhase) { }

    /// <summary>Attaches the schedule with a maximum rate per group.</summary>
    /// <exception cref="ArgumentException">The number of maximum rates differs from the number of groups.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A rate, factor or fraction out of range.</exception>
    public OneCycleLr(Optimizer optimizer, float[] maxLearningRates, int totalSteps, double pctStart = 0.3, bool cosine = true,
        float divFactor = 25f, float finalDivFactor = 1e4f, bool threePhase = false)
        : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(maxLearningRates);
        if (maxLearningRates.Length != optimizer.ParamGroups.Count)
            throw new ArgumentException($"OneCycleLr: {maxLearningRates.Length} maximum rate(s) for {optimizer.ParamGroups.Count} parameter group(s).", nameof(maxLearningRates));
        foreach (var m in maxLearningRates) Schedules.CheckFactor(m, nameof(maxLearningRates), "OneCycleLr");
        Schedules.Check(totalSteps > 0, "OneCycleLr", nameof(totalSteps), totalSteps, "positive");
        Schedules.Check(pctStart > 0 && pctStart < 1, "OneCycleLr", nameof(pctStart), pctStart, "in (0, 1)");
        Schedules.Check(float.IsFinite(divFactor) && divFactor > 0, "OneCycleLr", nameof(divFactor), divFactor, "a finite number > 0");
        Schedules.Check(float.IsFinite(finalDivFactor) && finalDivFactor > 0, "OneCycleLr", nameof(finalDivFactor), finalDivFactor, "a finite number > 0");
        maxRates = (float[])maxLearningRates.Clone();
        TotalSteps = totalSteps;
        PctStart = pctStart;
        Cosine = cosine;
        DivFactor = divFactor;
        FinalDivFactor = finalDivFactor;
        ThreePhase = threePhase;
        Start();
    }

    /// <summary>Each group's peak rate.</summary>
    public IReadOnlyList<float> MaxLearningRates => maxRates;

    /// <summary>Steps in the cycle.</summary>
    public int TotalSteps { get; }

    /// <summary>Fraction of the cycle spent increasing the rate.</summary>
    public double PctStart { get; }

    /// <summary>True for cosine annealing, false for linear.</summary>
    public bool Cosine { get; }

    /// <summary>The initial rate is max / divFactor.</summary>
    public float DivFactor { get; }

    /// <summary>The final rate is the initial rate / finalDivFactor.</summary>
    public float FinalDivFactor { get; }

    /// <summary>True for the three-phase variant.</summary>
    public bool ThreePhase { get; }

    /// <summary>Advances one step.</summary>
    /// <exception cref="InvalidOperationException">The cycle is over (more than <see cref="TotalSteps"/> steps).</exception>
    public override void Step()
    {
        if (LastEpoch + 1 > TotalSteps)
            throw new InvalidOperationException($"OneCycleLr: tried to step {LastEpoch + 1} times; the cycle has {TotalSteps} steps.");
        base.Step();
    }

    /// <inheritdoc />
    protected override double RateAt(int group, long epoch)
    {
        double max = maxRates[group], initial = max / DivFactor, min = initial / FinalDivFactor;
        var phases = ThreePhase
            ? new (double End, double From, double To)[]
            {
                (PctStart * TotalSteps - 1, initial, max),
                (2 * PctStart * TotalSteps - 2, max, initial),
                (TotalSteps - 1, initial, min),
            }
            : [(PctStart * TotalSteps - 1, initial, max), (TotalSteps - 1, max, min)];
        double start = 0;
        epoch = Math.Min(epoch, TotalSteps - 1);
        for (int i = 0; ; i++)
        {
            var (end, from, to) = phases[i];
            if (epoch <= end || i == phases.Length - 1)
            {
                double pct = (epoch - start) / (end - start);
                return Cosine ? to + (from - to) / 2 * (Math.Cos(Math.PI * pct) + 1) : (to - from) * pct + from;
            }
            start = end;
        }
    }

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        for (int g = 0; g < maxRates.Length; g++) config.Add($"max_lr.{g}", (double)maxRates[g]);
        config.Add("total_steps", (long)TotalSteps);
        config.Add("pct_start", PctStart);
        config.Add("anneal", Cosine ? "cos" : "linear");
        config.Add("div_factor", (double)DivFactor);
        config.Add("final_div_factor", (double)FinalDivFactor);
        config.Add("three_phase", ThreePhase);
    }
}

/// <summary>Whether <see cref="ReduceLrOnPlateau"/> waits for the metric to fall (a loss) or to rise (an accuracy).</summary>
public enum PlateauMode
{
    /// <summary>Lower is better.</summary>
    Min,
    /// <summary>Higher is better.</summary>
    Max,
}

/// <summary>How <see cref="ReduceLrOnPlateau"/> decides that a metric improved.</summary>
public enum ThresholdMode
{
    /// <summary>Better than best · (1 ∓ threshold).</summary>
    Relative,
    /// <summary>Better than best ∓ threshold.</summary>
    Absolute,
}

/// <summary>
/// Cuts the rates when a metric stops improving, as PyTorch's <c>ReduceLROnPlateau</c>: after more than
/// <c>patience</c> epochs without improvement, every group's rate becomes max(rate · factor, minLearningRate)
/// (unless that changes it by no more than eps), followed by <c>cooldown</c> epochs in which bad epochs are not
/// counted. Call <see cref="Step(double)"/> with the metric once per epoch.
/// </summary>
public sealed class ReduceLrOnPlateau : LrScheduler
{
    private readonly float[] minRates;
    private double best;
    private long badEpochs;
    private long cooldownLeft;

    /// <summary>Attaches the scheduler to <paramref name="optimizer"/>; <paramref name="minLearningRate"/> applies to every group.</summary>
    /// <exception cref="ArgumentOutOfRangeException">factor not in [0, 1), a negative count, threshold, eps or minimum rate.</exception>
    public ReduceLrOnPlateau(Optimizer optimizer, PlateauMode mode = PlateauMode.Min, float factor = 0.1f, int patience = 10,
        double threshold = 1e-4, ThresholdMode thresholdMode = ThresholdMode.Relative, int cooldown = 0, float minLearningRate = 0f,
        double eps = 1e-8) : base(optimizer)
    {
        Schedules.Check(factor >= 0 && factor < 1, "ReduceLrOnPlateau", nameof(factor), factor, "in [0, 1)");
        Schedules.Check(patience >= 0, "ReduceLrOnPlateau", nameof(patience), patience, ">= 0");
        Schedules.Check(cooldown >= 0, "ReduceLrOnPlateau", nameof(cooldown), cooldown, ">= 0");
        Schedules.Check(double.IsFinite(threshold) && threshold >= 0, "ReduceLrOnPlateau", nameof(threshold), threshold, "a finite number >= 0");
        Schedules.Check(double.IsFinite(eps) && eps >= 0, "ReduceLrOnPlateau", nameof(eps), eps, "a finite number >= 0");
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "ReduceLrOnPlateau: unknown mode.");
        if (!Enum.IsDefined(thresholdMode)) throw new ArgumentOutOfRangeException(nameof(thresholdMode), thresholdMode, "ReduceLrOnPlateau: unknown threshold mode.");
        Schedules.CheckFactor(minLearningRate, nameof(minLearningRate), "ReduceLrOnPlateau");
        Mode = mode;
        Factor = factor;
        Patience = patience;
        Threshold = threshold;
        ThresholdMode = thresholdMode;
        Cooldown = cooldown;
        Eps = eps;
        minRates = Enumerable.Repeat(minLearningRate, optimizer.ParamGroups.Count).ToArray();
        best = Worst;
        Start();
    }

    /// <summary>Whether lower or higher metrics are better.</summary>
    public PlateauMode Mode { get; }
    /// <summary>Multiplier of the rates at a plateau.</summary>
    public float Factor { get; }
    /// <summary>Epochs without improvement tolerated before a cut.</summary>
    public int Patience { get; }
    /// <summary>The least change that counts as an improvement.</summary>
    public double Threshold { get; }
    /// <summary>Relative or absolute threshold.</summary>
    public ThresholdMode ThresholdMode { get; }
    /// <summary>Epochs after a cut during which bad epochs are not counted.</summary>
    public int Cooldown { get; }
    /// <summary>A cut smaller than this is skipped.</summary>
    public double Eps { get; }
    /// <summary>The best metric seen (+∞ or −∞ before the first).</summary>
    public double Best => best;
    /// <summary>Consecutive epochs without improvement.</summary>
    public long BadEpochs => badEpochs;

    private double Worst => Mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity;

    /// <summary>Throws: this scheduler needs the metric.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override void Step() =>
        throw new InvalidOperationException("ReduceLrOnPlateau: call Step(metric) with the epoch's validation metric.");

    /// <summary>Records one epoch's metric and cuts the rates after a plateau.</summary>
    /// <exception cref="ArgumentException">The metric is NaN.</exception>
    public void Step(double metric)
    {
        if (double.IsNaN(metric)) throw new ArgumentException("ReduceLrOnPlateau: the metric is NaN.", nameof(metric));
        BumpEpoch();
        if (IsBetter(metric))
        {
            best = metric;
            badEpochs = 0;
        }
        else badEpochs++;
        if (cooldownLeft > 0)
        {
            cooldownLeft--;
            badEpochs = 0;
        }
        if (badEpochs > Patience)
        {
            var groups = Optimizer.ParamGroups;
            for (int g = 0; g < groups.Count; g++)
            {
                double old = groups[g].LearningRate;
                double cut = Math.Max(old * Factor, minRates[g]);
                if (old - cut > Eps) groups[g].LearningRate = (float)cut;
            }
            cooldownLeft = Cooldown;
            badEpochs = 0;
        }
    }

    /// <summary>Records one epoch's metric (a one-element tensor, read back to the host).</summary>
    public void Step(Tensor metric)
    {
        ArgumentNullException.ThrowIfNull(metric);
        Step(metric.Item());
    }

    private void BumpEpoch() => base.Step();

    private bool IsBetter(double a) => (Mode, ThresholdMode) switch
    {
        (PlateauMode.Min, ThresholdMode.Relative) => a < best * (1 - Threshold),
        (PlateauMode.Min, ThresholdMode.Absolute) => a < best - Threshold,
        (PlateauMode.Max, ThresholdMode.Relative) => a > best * (1 + Threshold),
        _ => a > best + Threshold,
    };

    /// <summary>The group's current rate: this schedule moves rates only in <see cref="Step(double)"/>.</summary>
    protected override double RateAt(int group, long epoch) => Optimizer.ParamGroups[group].LearningRate;

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("mode", Mode == PlateauMode.Min ? "min" : "max");
        config.Add("factor", (double)Factor);
        config.Add("patience", (long)Patience);
        config.Add("threshold", Threshold);
        config.Add("threshold_mode", ThresholdMode == ThresholdMode.Relative ? "rel" : "abs");
        config.Add("cooldown", (long)Cooldown);
        for (int g = 0; g < minRates.Length; g++) config.Add($"min_lr.{g}", (double)minRates[g]);
        config.Add("eps", Eps);
    }

    /// <inheritdoc />
    protected override void AddExtraState(StateDict state)
    {
        state.Add("best", best);
        state.Add("num_bad_epochs", badEpochs);
        state.Add("cooldown_counter", cooldownLeft);
    }

    /// <inheritdoc />
    protected override Action PrepareLoadExtraState(StateDict state)
    {
        double b = state["best"].Float64;
        long bad = state["num_bad_epochs"].Int64, left = state["cooldown_counter"].Int64;
        if (double.IsNaN(b) || bad < 0 || left < 0)
            throw new ArgumentException($"best {b}, num_bad_epochs {bad} and cooldown_counter {left} must be a number and two counts >= 0.");
        return () =>
        {
            best = b;
            badEpochs = bad;
            cooldownLeft = left;
        };
    }
}

/// <summary>Checks shared by the schedulers.</summary>
internal static class Schedules
{
    /// <summary>Throws unless <paramref name="value"/> is a finite number >= 0.</summary>
    public static void CheckFactor(float value, string name, string owner) =>
        Check(float.IsFinite(value) && value >= 0, owner, name, value, "a finite number >= 0");

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> "owner: name must be rule, got value" unless <paramref name="ok"/>.</summary>
    public static void Check(bool ok, string owner, string name, object value, string rule)
    {
        if (!ok) throw new ArgumentOutOfRangeException(name, value, $"{owner}: {name} must be {rule}, got {value}.");
    }
}
