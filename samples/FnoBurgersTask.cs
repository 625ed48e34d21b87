using System.Diagnostics;
using Engine.Data;
using Engine.Data.Pde;
using Engine.Nn;
using Engine.Training;

namespace Engine.Samples;

/// <summary>
/// The `fno-burgers` task: the FNO paper's 1-D Burgers benchmark (ν = 0.1, u0 ↦ u(·, 1)) with generated data
/// (cached in the output folder), a <see cref="Fno1d"/>, Adam with weight decay and a halving learning rate; reports the
/// test relative L2 error next to the paper's 1.60% at s = 1024.
/// </summary>
public static class FnoBurgersTask
{
    /// <summary>Runs the task; returns the metrics written to fno-burgers.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Has("quick");
        int ntrain = o.Int("train", quick ? 100 : 1000);
        int ntest = o.Int("test", quick ? 20 : 100);
        int s = o.Int("resolution", quick ? 128 : 1024);
        int modes = o.Int("modes", quick ? 8 : 16);
        int width = o.Int("width", quick ? 16 : 64);
        int blocks = o.Int("blocks", 4);
        int epochs = o.Int("epochs", quick ? 3 : 20);
        int halveEvery = o.Int("halve-every", quick ? 50 : 5);
        int batch = o.Int("batch-size", 20);
        // Adam with L2 weight decay 1e-4 as the FNO paper, unless --optimizer / --weight-decay say otherwise.
        var optSettings = OptimizerChoice.Parse(o, 1e-3f, "fno-burgers", defaultWeightDecay: 1e-4f);
        if (optSettings.Flood != null)
            throw new ArgumentException("fno-burgers: --flood applies to the classifier tasks only (the operator loss is a relative L2 error).");
        float lr = optSettings.LearningRate, wd = optSettings.WeightDecay;
        int seed = o.Int("seed", 1);
        int solverGrid = o.Int("solver-grid", quick ? 256 : 512);
        int steps = o.Int("steps", quick ? 200 : 250);
        var init = o.Get("init", "scaled-uniform") switch
        {
            "scaled-uniform" => SpectralInit.ScaledUniform,
            "he" => SpectralInit.He,
            "he-gaussian" => SpectralInit.HeGaussian,
            var v => throw new ArgumentException($"fno-burgers: --init must be scaled-uniform, he or he-gaussian; got '{v}'."),
        };
        var outDir = o.Get("out", "out");
        var cache = Path.Combine(outDir, $"burgers-n{ntrain + ntest}-s{s}-seed{seed}.bin");
        log.WriteLine($"fno-burgers: {ntrain} train / {ntest} test at s = {s} (solver grid {solverGrid}, {steps} steps to t = 1, ν = 0.1), "
            + $"{modes} modes, width {width}, {blocks} blocks, batch {batch}, {OptimizerChoice.Describe(optSettings)}, lr halved every {halveEvery} epochs, {epochs} epochs, device {device.Name}");

        var genWatch = Stopwatch.StartNew();
        var all = Burgers.Generate(ntrain + ntest, s, (ulong)seed, 0.1, solverGrid, steps, new ProgressLog(log, "burgers data"), cache, log);
        double genSeconds = genWatch.Elapsed.TotalSeconds;
        log.WriteLine($"fno-burgers: data ready in {genSeconds:F1} s");
        var (train, test) = Normalise(all, ntrain, ntest, centreInputs: false);

        using var model = new Fno1d(modes, width, blocks, init: init, seed: (ulong)seed, device: device);
        log.WriteLine($"fno-burgers: {model.ParameterCount} parameters");
        using var optimizer = OptimizerChoice.Create(optSettings, model.Parameters());
        var records = OperatorTraining.Fit(model, optimizer, train, test, epochs, batch, halveEvery, seed, device,
            (e, r) => log.WriteLine($"fno-burgers epoch {e,3}  train rel L2 {r.TrainLoss:P3}  test rel L2 {r.TestError:P3}  lr {r.LearningRate:G3}  ({r.Seconds:F1} s)"));
        var last = records[^1];
        log.WriteLine($"fno-burgers: test relative L2 {last.TestError:P3} (paper at s = 1024: 1.60%), training {last.Seconds:F1} s, data {genSeconds:F1} s");
        return new Dictionary<string, object>
        {
            ["task"] = "fno-burgers",
            ["test_relative_l2"] = last.TestError,
            ["paper_test_relative_l2"] = 0.0160,
            ["train_relative_l2"] = last.TrainLoss,
            ["train_seconds"] = last.Seconds,
            ["data_seconds"] = genSeconds,
            ["parameters"] = model.ParameterCount,
            ["train"] = ntrain,
            ["test"] = ntest,
            ["resolution"] = s,
            ["modes"] = modes,
            ["width"] = width,
            ["blocks"] = blocks,
            ["epochs"] = epochs,
            ["batch_size"] = batch,
            ["optimizer"] = OptimizerChoice.Describe(optSettings),
            ["learning_rate"] = lr,
            ["weight_decay"] = wd,
            ["halve_every"] = halveEvery,
            ["init"] = init.ToString(),
            ["viscosity"] = 0.1,
            ["solver_grid"] = solverGrid,
            ["solver_steps"] = steps,
            ["seed"] = seed,
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
