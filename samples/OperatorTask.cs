using System.Diagnostics;
using Engine.Data;
using Engine.Data.Pde;
using Engine.Nn;
using Engine.Training;

namespace Engine.Samples;

/// <summary>Settings shared by the operator-learning tasks (fno-burgers, fno-darcy), after defaults and options.</summary>
public sealed record OperatorSettings(int Train, int Test, int Resolution, int Modes, int Width, int Blocks, int Epochs,
    int HalveEvery, int BatchSize, OptimizerSettings Optimizer, int Seed, string OutDir);

/// <summary>A task's defaults for <see cref="OperatorSettings"/> (one set for full runs, one for --quick).</summary>
public readonly record struct OperatorDefaults(int Train, int Test, int Resolution, int Modes, int Width, int Epochs, int HalveEvery);

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
    ];

    /// <summary>Reads the shared options over <paramref name="full"/> (or <paramref name="quick"/> with --quick).</summary>
    public static OperatorSettings Parse(Options o, string task, OperatorDefaults full, OperatorDefaults quick)
    {
        var d = o.Quick ? quick : full;
        // Adam with L2 weight decay 1e-4 as the FNO paper, unless --optimizer / --weight-decay say otherwise.
        var opt = OptimizerChoice.Parse(o, 1e-3f, task, defaultWeightDecay: 1e-4f);
        if (opt.Flood != null)
            throw new ArgumentException($"{task}: --flood applies to the classifier tasks only (the operator loss is a relative L2 error).");
        return new OperatorSettings(o.Int("train", d.Train), o.Int("test", d.Test), o.Int("resolution", d.Resolution),
            o.Int("modes", d.Modes), o.Int("width", d.Width), o.Int("blocks", 4), o.Int("epochs", d.Epochs),
            o.Int("halve-every", d.HalveEvery), o.Int("batch-size", 20), opt, o.Int("seed", 1), o.Get("out", "out"));
    }

    /// <summary>One log line with the settings (and the task's own <paramref name="extra"/>).</summary>
    public static string Describe(OperatorSettings s, string extra, Kernels.Device device) =>
        $"{s.Train} train / {s.Test} test at s = {s.Resolution}{extra}, {s.Modes} modes, width {s.Width}, {s.Blocks} blocks, "
        + $"batch {s.BatchSize}, {OptimizerChoice.Describe(s.Optimizer)}, lr halved every {s.HalveEvery} epochs, {s.Epochs} epochs, device {device.Name}";

    /// <summary>
    /// Trains <paramref name="model"/> on the scaled data, logs each epoch, and returns the JSON fields every operator
    /// task writes (the caller adds its own).
    /// </summary>
    public static Dictionary<string, object> TrainAndReport(string task, OperatorSettings s, Module model, Dataset train, Dataset test,
        double dataSeconds, double paperError, Kernels.Device device, TextWriter log)
    {
        log.WriteLine($"{task}: {model.ParameterCount} parameters");
        using var optimizer = OptimizerChoice.Create(s.Optimizer, model.Parameters());
        var records = OperatorTraining.Fit(model, optimizer, train, test, s.Epochs, s.BatchSize, s.HalveEvery, s.Seed, device,
            (e, r) => log.WriteLine($"{task} epoch {e,3}  train rel L2 {r.TrainLoss:P3}  test rel L2 {r.TestError:P3}  lr {r.LearningRate:G3}  ({r.Seconds:F1} s)"));
        var last = records[^1];
        log.WriteLine($"{task}: test relative L2 {last.TestError:P3} (paper at s = {s.Resolution}: {paperError:P2}), training {last.Seconds:F1} s, data {dataSeconds:F1} s");
        return new Dictionary<string, object>
        {
            ["task"] = task,
            ["test_relative_l2"] = last.TestError,
            ["paper_test_relative_l2"] = paperError,
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
            ["epochs"] = s.Epochs,
            ["batch_size"] = s.BatchSize,
            ["optimizer"] = OptimizerChoice.Describe(s.Optimizer),
            ["learning_rate"] = s.Optimizer.LearningRate,
            ["weight_decay"] = s.Optimizer.WeightDecay,
            ["halve_every"] = s.HalveEvery,
            ["seed"] = s.Seed,
            ["device"] = device.Name,
            ["curves"] = Curves(records),
        };
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
