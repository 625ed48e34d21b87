using System.Diagnostics;
using Engine.Data;
using Engine.Data.Pde;
using Engine.Nn;
using Engine.Training;

namespace Engine.Samples;

/// <summary>Settings shared by the operator-learning tasks (fno-burgers, fno-darcy), after defaults and options.</summary>
/// <param name="Init">Block initialisation (--init).</param>
/// <param name="Activation">Nonlinearity (--activation).</param>
/// <param name="Minutes">Training time budget in minutes (--minutes; 0: train <paramref name="Epochs"/> epochs instead).</param>
/// <param name="Ranks">The data-parallel ranks (--distributed), or null for one process.</param>
/// <param name="Compile">Compile each training step (--compile; see <see cref="CompiledSteps"/>).</param>
public sealed record OperatorSettings(int Train, int Test, int Resolution, int Modes, int Width, int Blocks, int Epochs,
    int HalveEvery, int BatchSize, OptimizerSettings Optimizer, int Seed, string OutDir,
    SpectralInit Init = SpectralInit.ScaledUniform, FnoActivation Activation = FnoActivation.Gelu, double Minutes = 0,
    Distributed.Communicator? Ranks = null, bool Compile = false);

/// <summary>A baseline prediction's error on the test pairs, reported beside the model's.</summary>
/// <param name="Name">What the baseline predicts ("heat equation", "mean training field").</param>
/// <param name="TestRelativeL2">Its mean relative L2 error on the test pairs.</param>
public sealed record OperatorBaseline(string Name, double TestRelativeL2);

/// <summary>A task's defaults for <see cref="OperatorSettings"/> (one set for full runs, one for --quick).</summary>
public readonly record struct OperatorDefaults(int Train, int Test, int Resolution, int Modes, int Width, int Epochs, int HalveEvery,
    float LearningRate = 1e-3f);

/// <summary>
/// What the FNO tasks share: option parsing, data scaling, the training run through <see cref="OperatorTraining"/> with
/// the shared optimizer options, the log lines and the common JSON fields.
/// </summary>
public static class OperatorTask
{
    /// <summary>The options <see cref="Parse"/> reads; <paramref name="full"/> and <paramref name="quick"/> give the help's defaults.</summary>
    public static IReadOnlyList<OptionSpec> Declare(OperatorDefaults full, OperatorDefaults quick) =>
    [
        Opt.Int("train", "training pairs", 1, @default: $"{full.Train}; --quick {quick.Train}"),
        Opt.Int("test", "test pairs", 1, @default: $"{full.Test}; --quick {quick.Test}"),
        Opt.Int("resolution", "grid points per axis", 2, @default: $"{full.Resolution}; --quick {quick.Resolution}"),
        Opt.Int("modes", "Fourier modes kept per axis", 1, @default: $"{full.Modes}; --quick {quick.Modes}"),
        Opt.Int("width", "channels of the FNO blocks", 1, @default: $"{full.Width}; --quick {quick.Width}"),
        Opt.Int("blocks", "FNO blocks", 1, @default: "4"),
        CommonOptions.Epochs($"{full.Epochs}; --quick {quick.Epochs}"),
        Opt.Int("halve-every", "halve the learning rate every N epochs", 1, @default: $"{full.HalveEvery}; --quick {quick.HalveEvery}"),
        CommonOptions.BatchSize("20"), CommonOptions.Seed,
        .. OptimizerChoice.Declare("1e-3", "1e-4"),
        InitOption, ActivationOption("gelu"),
        Opt.Float("minutes", "train as many epochs as fit in this many minutes (lr halved 10 times over them); 0: --epochs", 0, @default: "0"),
        DataParallel.Option,
        CompiledSteps.Option(),
    ];

    /// <summary>The command-line names of the initialisations (<see cref="ParseInit"/>).</summary>
    public static readonly IReadOnlyList<string> InitNames = ["default", "edge-of-chaos", "he", "he-gaussian"];

    /// <summary><c>--init</c>: the FNO blocks' initialisation.</summary>
    public static readonly OptionSpec InitOption = Opt.Choice("init",
        "block initialisation: default (the reference code's scaled-uniform rule), edge-of-chaos (mean-field), he, he-gaussian", InitNames, "default");

    /// <summary><c>--activation</c> with the task's default.</summary>
    public static OptionSpec ActivationOption(string @default) =>
        Opt.Choice("activation", "nonlinearity between the FNO blocks and in the head", ["gelu", "relu"], @default);

    /// <summary>Reads the shared options over <paramref name="full"/> (or <paramref name="quick"/> with --quick).</summary>
    public static OperatorSettings Parse(Options o, string task, OperatorDefaults full, OperatorDefaults quick)
    {
        var d = o.Quick ? quick : full;
        // Adam with L2 weight decay 1e-4 as the FNO paper, unless --optimizer / --weight-decay say otherwise.
        var opt = OptimizerChoice.Parse(o, d.LearningRate, task, defaultWeightDecay: 1e-4f);
        if (opt.Flood != null)
            throw new ArgumentException($"{task}: --flood applies to the classifier tasks only (the operator loss is a relative L2 error).");
        double minutes = o.Float("minutes", 0f);
        return new OperatorSettings(o.Int("train", d.Train), o.Int("test", d.Test), o.Int("resolution", d.Resolution),
            o.Int("modes", d.Modes), o.Int("width", d.Width), o.Int("blocks", 4), o.Int("epochs", d.Epochs),
            o.Int("halve-every", d.HalveEvery), o.Int("batch-size", 20), opt, o.Int("seed", 1), o.Get("out", "out"),
            ParseInit(o.Get("init", "default"), task), ParseActivation(o.Get("activation", "gelu"), task), minutes, DataParallel.For(o),
            CompiledSteps.Requested(o, task));
    }

    /// <summary>
    /// An --init value: default|edge-of-chaos|he|he-gaussian (default: the reference code's scaled-uniform rule, also
    /// accepted as scaled-uniform; edge-of-chaos: <see cref="FnoInit.EdgeOfChaos(SpectralConv1d, Linear, ulong?, double)"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static SpectralInit ParseInit(string value, string task) => value.ToLowerInvariant() switch
    {
        "default" or "scaled-uniform" => SpectralInit.ScaledUniform,
        "edge-of-chaos" => SpectralInit.EdgeOfChaos,
        "he" => SpectralInit.He,
        "he-gaussian" => SpectralInit.HeGaussian,
        var v => throw new ArgumentException($"{task}: --init must be default, edge-of-chaos, he or he-gaussian; got '{v}'."),
    };

    /// <summary>The command-line name of an initialisation.</summary>
    public static string InitName(SpectralInit init) => init switch
    {
        SpectralInit.ScaledUniform => "default",
        SpectralInit.EdgeOfChaos => "edge-of-chaos",
        SpectralInit.He => "he",
        _ => "he-gaussian",
    };

    /// <summary>An --activation value: gelu|relu.</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static FnoActivation ParseActivation(string value, string task) => value.ToLowerInvariant() switch
    {
        "gelu" => FnoActivation.Gelu,
        "relu" => FnoActivation.Relu,
        var v => throw new ArgumentException($"{task}: --activation must be gelu or relu; got '{v}'."),
    };

    /// <summary>One log line with the settings (and the task's own <paramref name="extra"/>).</summary>
    public static string Describe(OperatorSettings s, string extra, Kernels.Device device) =>
        $"{s.Train} train / {s.Test} test at s = {s.Resolution}{extra}, {s.Modes} modes, width {s.Width}, {s.Blocks} blocks, "
        + $"batch {s.BatchSize}, {OptimizerChoice.Describe(s.Optimizer)}, "
        + (s.Minutes > 0 ? $"as many epochs as fit in {s.Minutes} min of training (lr halved 10 times over them)" : $"lr halved every {s.HalveEvery} epochs, {s.Epochs} epochs")
        + $", init {InitName(s.Init)}, activation {s.Activation.ToString().ToLowerInvariant()}, device {device.Name}";

    /// <summary>
    /// Trains <paramref name="model"/> on the scaled data (for <see cref="OperatorSettings.Minutes"/> of training when
    /// set, else for the set epochs), logs each epoch, and returns the JSON fields every operator task writes (the
    /// caller adds its own). <paramref name="paperError"/> is the published figure in the same setting, or null when
    /// this run's setting differs from the paper's (the JSON then says so instead of setting the two side by side).
    /// </summary>
    public static Dictionary<string, object> TrainAndReport(string task, OperatorSettings s, Module model, Dataset train, Dataset test,
        double dataSeconds, double? paperError, OperatorBaseline baseline, Kernels.Device device, TextWriter log)
    {
        log.WriteLine($"{task}: {model.ParameterCount} parameters; baseline ({baseline.Name}) test relative L2 {baseline.TestRelativeL2:P3}");
        using var optimizer = OptimizerChoice.Create(s.Optimizer, model.Parameters());
        void OnEpoch(int e, OperatorTraining.EpochRecord r) =>
            log.WriteLine($"{task} epoch {e,3}  train rel L2 {r.TrainLoss:P3}  test rel L2 {r.TestError:P3}  lr {r.LearningRate:G3}  ({r.Seconds:F1} s)");
        using var replica = DataParallel.Wrap(model, optimizer, s.Ranks);
        using var step = TrainingStep.Create(OperatorTraining.Step(replica.Model, optimizer), s.Compile, log);
        List<OperatorTraining.EpochRecord> records;
        int halveEvery = s.HalveEvery, plannedEpochs = s.Epochs;
        if (s.Minutes > 0)
        {
            (records, var plan) = OperatorTraining.FitForTime(replica.Model, optimizer, train, test, s.Minutes * 60, halvings: 10, s.BatchSize, s.Seed, device, OnEpoch, step);
            (halveEvery, plannedEpochs) = (plan.HalveEvery, plan.PlannedEpochs);
            log.WriteLine($"{task}: {s.Minutes} min budget: planned {plan.PlannedEpochs} epochs (lr halved every {plan.HalveEvery}), ran {records.Count}");
        }
        else records = OperatorTraining.Fit(replica.Model, optimizer, train, test, s.Epochs, s.BatchSize, s.HalveEvery, s.Seed, device, OnEpoch, step);
        var last = records[^1];
        string paper = paperError is double p ? $"paper in this setting: {p:P2}" : "setting differs from the paper's";
        log.WriteLine($"{task}: test relative L2 {last.TestError:P3} ({paper}; {baseline.Name} baseline {baseline.TestRelativeL2:P3}), training {last.Seconds:F1} s, data {dataSeconds:F1} s");
        var metrics = new Dictionary<string, object>
        {
            ["task"] = task,
            ["test_relative_l2"] = last.TestError,
            ["baseline"] = baseline.Name,
            ["baseline_test_relative_l2"] = baseline.TestRelativeL2,
            ["train_relative_l2"] = last.TrainLoss,
            ["train_seconds"] = last.Seconds,
            ["data_seconds"] = dataSeconds,
            ["parameters"] = model.ParameterCount,
            ["train"] = s.Train,
            ["test"] = s.Test,
            ["resolution"] = s.Resolution,
            ["modes"] = s.Modes,
            ["width"] = s.Width,
            ["blocks"] = s.Blocks,
            ["epochs"] = records.Count,
            ["planned_epochs"] = plannedEpochs,
            ["time_budget_minutes"] = s.Minutes,
            ["batch_size"] = s.BatchSize,
            ["optimizer"] = OptimizerChoice.Describe(s.Optimizer),
            ["learning_rate"] = s.Optimizer.LearningRate,
            ["weight_decay"] = s.Optimizer.WeightDecay,
            ["halve_every"] = halveEvery,
            ["init"] = InitName(s.Init),
            ["activation"] = s.Activation.ToString().ToLowerInvariant(),
            ["seed"] = s.Seed,
            ["device"] = device.Name,
            ["curves"] = Curves(records),
        };
        var report = step.Report();
        log.WriteLine($"{task}: {CompiledSteps.Describe(report)}");
        CompiledSteps.Add(metrics, report);
        if (paperError is double pe) metrics["paper_test_relative_l2"] = pe;
        else metrics["paper_comparison"] = "none: this run's setting differs from the paper's (see the task's setting fields)";
        return metrics;
    }

    /// <summary>Per-epoch curves for the JSON.</summary>
    public static Dictionary<string, double[]> Curves(List<OperatorTraining.EpochRecord> records) => new()
    {
        ["train_loss"] = records.Select(r => r.TrainLoss).ToArray(),
        ["test_error"] = records.Select(r => r.TestError).ToArray(),
        ["learning_rate"] = records.Select(r => r.LearningRate).ToArray(),
    };

    /// <summary>
    /// Splits into train and test and scales with training statistics: inputs to unit second moment (or to zero mean
    /// and unit variance with <paramref name="centreInputs"/>), targets to unit second moment. The relative L2 error is
    /// invariant to the target scale.
    /// </summary>
    public static (Dataset Train, Dataset Test) Normalise(PdeData all, int ntrain, int ntest, bool centreInputs)
    {
        var tr = all.Slice(0, ntrain);
        var te = all.Slice(ntrain, ntest);
        double mean = centreInputs ? tr.Inputs.Average(v => (double)v) : 0;
        double xs = Math.Sqrt(tr.Inputs.Average(v => (v - mean) * (v - mean)));
        double ys = Math.Sqrt(tr.Targets.Average(v => (double)v * v));
        Dataset Scale(PdeData d) => new(d.Inputs.Select(v => (float)((v - mean) / xs)).ToArray(), d.SampleShape,
            targets: d.Targets.Select(v => (float)(v / ys)).ToArray(), targetShape: d.SampleShape);
        return (Scale(tr), Scale(te));
    }

    /// <summary>Logs a generator's progress every 10%.</summary>
    public sealed class ProgressLog(TextWriter log, string what) : IProgress<double>
    {
        private int lastDecile = -1;
        private readonly Stopwatch watch = Stopwatch.StartNew();

        /// <inheritdoc />
        public void Report(double value)
        {
            int d = (int)(value * 10);
            lock (this)
            {
                if (d <= lastDecile) return;
                lastDecile = d;
                log.WriteLine($"{what}: {value:P0} ({watch.Elapsed.TotalSeconds:F1} s)");
            }
        }
    }
}
