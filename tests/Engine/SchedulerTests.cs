using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Learning-rate schedulers: the rates of every epoch against PyTorch's closed forms (computed by hand or, for the
/// cosine and one-cycle shapes, by PyTorch's formulas in Python double precision and rounded to float), per group,
/// through the multi-gradient wrappers, their state dictionaries and their errors.
/// </summary>
public class SchedulerTests
{
    private static readonly Device D = Device.Cpu;

    private static Tensor Param(int n = 3) => Tensor.Full([n], 1f, D).Also(t => t.RequiresGrad = true);

    /// <summary>The group rates after construction (epoch 0), then after each of <paramref name="steps"/> Step calls.</summary>
    private static float[] Rates(LrScheduler s, int steps, int group = 0)
    {
        var r = new List<float> { s.Optimizer.ParamGroups[group].LearningRate };
        for (int i = 0; i < steps; i++)
        {
            s.Step();
            r.Add(s.Optimizer.ParamGroups[group].LearningRate);
        }
        return r.ToArray();
    }

    [Fact]
    public void StepLrMultipliesByGammaEveryStepSizeEpochs()
    {
        using var opt = new Sgd([Param()], 0.8f);
        var s = new StepLr(opt, stepSize: 3, gamma: 0.5f);
        // 0.8 · 0.5^⌊e/3⌋, exact in binary.
        Assert.Equal([0.8f, 0.8f, 0.8f, 0.4f, 0.4f, 0.4f, 0.2f, 0.2f, 0.2f, 0.1f], Rates(s, 9));
        Assert.Equal(9, s.LastEpoch);
    }

    [Fact]
    public void MultiStepLrCountsMilestonesPassedIncludingRepeats()
    {
        using var opt = new Sgd([Param()], 1f);
        var s = new MultiStepLr(opt, [5, 2, 5], gamma: 0.5f);
        // k(e) = #milestones <= e: 0,0,1,1,1,3,3 (5 is listed twice).
        Assert.Equal([1f, 1f, 0.5f, 0.5f, 0.5f, 0.125f, 0.125f], Rates(s, 6));
    }

    [Fact]
    public void WarmupCosineFollowsLinearWarmupThenCosineAnnealing()
    {
        using var opt = new Adam([Param()], 0.1f);
        var s = new WarmupCosineLr(opt, warmupSteps: 3, totalSteps: 10, minLearningRate: 0.01f, warmupStartFactor: 0.1f);
        // Python: t < 3: b·(f + (1 − f)·t/3); then min + (b − min)(1 + cos(π (t − 3)/7))/2; min after t = 10.
        float[] expected =
        [
            0.0100000007f, 0.0399999991f, 0.0700000003f, 0.100000001f, 0.0955436006f, 0.0830570459f, 0.0650134459f,
            0.0449865572f, 0.0269429591f, 0.0144564006f, 0.00999999978f, 0.00999999978f, 0.00999999978f,
        ];
        Assert.Equal(expected, Rates(s, 12));
    }

    [Fact]
    public void WarmupCosineWithoutWarmupIsCosineAnnealing()
    {
        using var opt = new Sgd([Param()], 1f);
        var s = new WarmupCosineLr(opt, warmupSteps: 0, totalSteps: 4);
        // (1 + cos(π t / 4)) / 2
        var rates = Rates(s, 4);
        for (int t = 0; t <= 4; t++) Assert.Equal((float)((1 + Math.Cos(Math.PI * t / 4)) / 2), rates[t]);
    }

    public static TheoryData<bool, bool, float, int, float[]> OneCycleCases => new()
    {
        // Python, PyTorch's OneCycleLR formulas: max 1, 10 steps, pct_start 0.3, div 25, final_div 1e4.
        {
            true, false, 1f, 10,
            [0.0399999991f, 0.519999981f, 1f, 0.950484633f, 0.811745644f, 0.611262023f, 0.38874197f, 0.18825835f, 0.0495193675f, 3.99999999e-06f]
        },
        {
            false, false, 1f, 10,
            [0.0399999991f, 0.519999981f, 1f, 0.857143402f, 0.714286864f, 0.571430266f, 0.428573728f, 0.28571713f, 0.142860577f, 3.99999999e-06f]
        },
        {
            true, true, 0.5f, 12,
            [0.0199999996f, 0.174894825f, 0.439642578f, 0.472509444f, 0.231071204f, 0.0269739646f, 0.0190758463f, 0.0156123098f,
             0.010542335f, 0.00531738391f, 0.00143328507f, 1.99999999e-06f]
        },
    };

    [Theory]
    [MemberData(nameof(OneCycleCases))]
    public void OneCycleMatchesPyTorchsFormulas(bool cosine, bool threePhase, float max, int total, float[] expected)
    {
        using var opt = new Adam([Param()], 123f); // OneCycle ignores the optimizer's own rate
        var s = new OneCycleLr(opt, max, total, cosine: cosine, threePhase: threePhase);
        var rates = Rates(s, total);
        Assert.Equal(expected, rates[..total]);
        Assert.Equal(expected[^1], rates[total]); // the call after the last batch keeps the final rate
        var e = Assert.Throws<InvalidOperationException>(s.Step);
        Assert.Contains($"the cycle has {total} steps", e.Message);
        Assert.Equal(total, s.LastEpoch);
    }

    [Fact]
    public void ReduceOnPlateauCutsAfterPatienceAndWaitsOutTheCooldown()
    {
        using var opt = new Sgd([Param()], 1f);
        var s = new ReduceLrOnPlateau(opt, factor: 0.5f, patience: 1, cooldown: 1, threshold: 0.1);
        // Hand trace (min mode, relative threshold 0.1: better means < 0.9·best).
        (double Metric, float Rate)[] trace =
        [
            (10, 1f),     // best 10
            (9.5, 1f),    // not < 9: bad 1
            (9.5, 0.5f),  // bad 2 > patience 1: cut, cooldown 1, bad 0
            (9.5, 0.5f),  // bad 1, cooldown running: reset to 0
            (9.5, 0.5f),  // bad 1
            (9.5, 0.25f), // bad 2: cut
            (1, 0.25f),   // best 1 (cooldown also ends here)
        ];
        foreach (var (metric, rate) in trace)
        {
            s.Step(metric);
            Assert.Equal(rate, opt.LearningRate);
        }
        Assert.Equal(1, s.Best);
        Assert.Equal(trace.Length, s.LastEpoch);
        Assert.Throws<InvalidOperationException>(s.Step);
    }

    [Fact]
    public void ReduceOnPlateauMaxModeAbsoluteThresholdAndFloor()
    {
        using var opt = new Sgd([Param()], 1f);
        var s = new ReduceLrOnPlateau(opt, PlateauMode.Max, factor: 0.1f, patience: 0, threshold: 0.5, thresholdMode: ThresholdMode.Absolute,
            minLearningRate: 0.05f);
        s.Step(1.0);   // best 1
        Assert.Equal(1f, opt.LearningRate);
        s.Step(1.4);   // not > 1.5: bad 1 > 0: cut to 0.1
        Assert.Equal((float)(1.0 * 0.1f), opt.LearningRate);
        s.Step(1.4);   // cut to max(0.01, 0.05) = 0.05
        Assert.Equal(0.05f, opt.LearningRate);
        s.Step(1.4);   // 0.05 - 0.05 is not > eps: unchanged
        Assert.Equal(0.05f, opt.LearningRate);
    }

    [Fact]
    public void EveryGroupFollowsTheScheduleFromItsOwnBaseRate()
    {
        using var opt = new Adam([new ParamGroup([Param()]), new ParamGroup([Param()], learningRate: 0.25f)], 1f);
        var s = new StepLr(opt, 1, 0.5f);
        s.Step();
        s.Step();
        Assert.Equal([1f, 0.25f], s.BaseLearningRates);
        Assert.Equal([0.25f, 0.0625f], s.LastLearningRates);
        using var opt2 = new Sgd([new ParamGroup([Param()]), new ParamGroup([Param()])], 1f);
        var one = new OneCycleLr(opt2, [1f, 0.5f], 10);
        Assert.Equal([0.04f, 0.02f], one.LastLearningRates);
    }

    [Fact]
    public void ASchedulerOnAWrapperSetsTheBaseOptimizersRates()
    {
        using var m = new Sequential(new Linear(3, 2, seed: 1, device: D));
        var inner = new Sgd(m.Parameters(), 0.4f);
        using var sam = new Sam(inner, 0.05f);
        var s = new StepLr(sam, 1, 0.5f);
        Assert.Same(s, sam.Scheduler);
        Assert.Same(s, inner.Scheduler);
        s.Step();
        Assert.Equal(0.2f, inner.LearningRate);
        Assert.Equal(0.2f, sam.LearningRate);
        Assert.Contains("already attached", Assert.Throws<InvalidOperationException>(() => new StepLr(inner, 2)).Message);
        s.Detach();
        Assert.Null(sam.Scheduler);
        var next = new MultiStepLr(sam, [1]);
        Assert.Same(next, inner.Scheduler);
        Assert.Equal(0.2f, next.BaseLearningRates[0]);
    }

    [Fact]
    public void StateDictRestoresEpochBaseRatesAndPlateauCounters()
    {
        using var a = new Sgd([Param()], 1f);
        var sa = new ReduceLrOnPlateau(a, patience: 3);
        sa.Step(5);
        sa.Step(6);
        var state = sa.StateDict();
        Assert.Equal("ReduceLrOnPlateau", state["type"].Text);
        Assert.Equal(2, state["last_epoch"].Int64);
        Assert.Equal(1.0, state["base_lrs.0"].Float64);
        Assert.Equal(5.0, state["state.best"].Float64);
        Assert.Equal(1, state["state.num_bad_epochs"].Int64);

        using var b = new Sgd([Param()], 1f);
        var sb = new ReduceLrOnPlateau(b, patience: 3);
        sb.LoadStateDict(state);
        Assert.Equal(2, sb.LastEpoch);
        Assert.Equal(5.0, sb.Best);
        Assert.Equal(1, sb.BadEpochs);

        // Different settings, another type and unknown entries are refused before anything changes.
        using var c = new Sgd([Param()], 1f);
        var sc = new ReduceLrOnPlateau(c, patience: 4);
        Assert.Contains("setting 'patience' is 3 in the state but 4 here", Assert.Throws<ArgumentException>(() => sc.LoadStateDict(state)).Message);
        Assert.Equal(0, sc.LastEpoch);
        using var d = new Sgd([Param()], 1f);
        var sd = new StepLr(d, 2);
        Assert.Contains("saved from ReduceLrOnPlateau; this scheduler is StepLr", Assert.Throws<ArgumentException>(() => sd.LoadStateDict(state)).Message);
        var extra = sb.StateDict();
        extra.Add("surprise", 1L);
        Assert.Contains("'surprise'", Assert.Throws<ArgumentException>(() => sb.LoadStateDict(extra)).Message);
    }

    [Fact]
    public void BadSettingsAreClearErrors()
    {
        using var opt = new Sgd([Param()], 1f);
        Assert.Contains("stepSize", Assert.Throws<ArgumentOutOfRangeException>(() => new StepLr(opt, 0)).Message);
        Assert.Contains("milestones", Assert.Throws<ArgumentException>(() => new MultiStepLr(opt, [])).Message);
        Assert.Contains("warmupSteps < totalSteps", Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineLr(opt, 5, 5)).Message);
        Assert.Contains("pctStart", Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLr(opt, 1f, 10, pctStart: 1.5)).Message);
        Assert.Contains("2 maximum rate(s) for 1", Assert.Throws<ArgumentException>(() => new OneCycleLr(opt, [1f, 2f], 10)).Message);
        Assert.Contains("factor", Assert.Throws<ArgumentOutOfRangeException>(() => new ReduceLrOnPlateau(opt, factor: 1f)).Message);
        // None of the failed constructions attached itself.
        Assert.Null(opt.Scheduler);
        Assert.Equal(1f, opt.LearningRate);
    }
}
