using System.Diagnostics;
using Engine.Data.Pde;
using Engine.Nn;
using Engine.Training;

namespace Engine.Samples;

/// <summary>
/// The `fno-darcy` task: the FNO paper's 2-D Darcy benchmark (thresholded random coefficient a ↦ solution u of
/// -∇·(a∇u) = 1) with generated data cached in the output folder and an <see cref="Fno2d"/>; reports the test relative
/// L2 error next to the paper's 1.08% (s = 85, 12 modes, width 32).
/// </summary>
public static class FnoDarcyTask
{
    /// <summary>Runs the task; returns the metrics written to fno-darcy.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Has("quick");
        int ntrain = o.Int("train", quick ? 60 : 1000);
        int ntest = o.Int("test", quick ? 20 : 100);
        int s = o.Int("resolution", quick ? 29 : 85);
        int modes = o.Int("modes", quick ? 6 : 12);
        int width = o.Int("width", quick ? 8 : 32);
        int blocks = o.Int("blocks", 4);
        int epochs = o.Int("epochs", quick ? 3 : 30);
        int halveEvery = o.Int("halve-every", quick ? 50 : 6);
        int batch = o.Int("batch-size", 20);
        // Adam with L2 weight decay 1e-4 as the FNO paper, unless --optimizer / --weight-decay say otherwise.
        var optSettings = OptimizerChoice.Parse(o, 1e-3f, "fno-darcy", defaultWeightDecay: 1e-4f);
        if (optSettings.Flood != null)
            throw new ArgumentException("fno-darcy: --flood applies to the classifier tasks only (the operator loss is a relative L2 error).");
        float lr = optSettings.LearningRate, wd = optSettings.WeightDecay;
        int seed = o.Int("seed", 1);
        var outDir = o.Get("out", "out");
        var cache = Path.Combine(outDir, $"darcy-n{ntrain + ntest}-s{s}-seed{seed}.bin");
        log.WriteLine($"fno-darcy: {ntrain} train / {ntest} test at s = {s}, {modes} modes, width {width}, {blocks} blocks, batch {batch}, "
            + $"{OptimizerChoice.Describe(optSettings)}, lr halved every {halveEvery} epochs, {epochs} epochs, device {device.Name}");
        var genWatch = Stopwatch.StartNew();
        var all = Darcy.Generate(ntrain + ntest, s, (ulong)seed, progress: new FnoBurgersTask.ProgressLog(log, "darcy data"), cachePath: cache, log: log);
        double genSeconds = genWatch.Elapsed.TotalSeconds;
        log.WriteLine($"fno-darcy: data ready in {genSeconds:F1} s");
        var (train, test) = FnoBurgersTask.Normalise(all, ntrain, ntest, centreInputs: true);

        using var model = new Fno2d(modes, modes, width, blocks, seed: (ulong)seed, device: device);
        log.WriteLine($"fno-darcy: {model.ParameterCount} parameters");
        using var optimizer = OptimizerChoice.Create(optSettings, model.Parameters());
        var records = OperatorTraining.Fit(model, optimizer, train, test, epochs, batch, halveEvery, seed, device,
            (e, r) => log.WriteLine($"fno-darcy epoch {e,3}  train rel L2 {r.TrainLoss:P3}  test rel L2 {r.TestError:P3}  lr {r.LearningRate:G3}  ({r.Seconds:F1} s)"));
        var last = records[^1];
        log.WriteLine($"fno-darcy: test relative L2 {last.TestError:P3} (paper at s = 85: 1.08%), training {last.Seconds:F1} s, data {genSeconds:F1} s");
        return new Dictionary<string, object>
        {
            ["task"] = "fno-darcy",
            ["test_relative_l2"] = last.TestError,
            ["paper_test_relative_l2"] = 0.0108,
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
            ["seed"] = seed,
            ["device"] = device.Name,
            ["curves"] = FnoBurgersTask.Curves(records),
        };
    }
}
