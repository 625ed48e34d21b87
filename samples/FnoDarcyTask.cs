using System.Diagnostics;
using Engine.Data.Pde;
using Engine.Nn;

namespace Engine.Samples;

/// <summary>
/// The `fno-darcy` task: the FNO paper's 2-D Darcy benchmark (thresholded random coefficient a ↦ solution u of
/// -∇·(a∇u) = 1) with generated data cached in the output folder and an <see cref="Fno2d"/>; reports the test relative
/// L2 error next to the paper's 1.08% (s = 85, 12 modes, width 32).
/// </summary>
public static class FnoDarcyTask
{
    /// <summary>The FNO paper's relative L2 error on Darcy at s = 85 (12 modes, width 32).</summary>
    public const double PaperError = 0.0108;

    private static readonly OperatorDefaults Full = new(Train: 1000, Test: 100, Resolution: 85, Modes: 12, Width: 32, Epochs: 30, HalveEvery: 6);
    // Quick: 100 pairs at s = 29, width 16 and 12 epochs at lr 3e-3 reach about 10 % test error; 60 pairs, width 8
    // and 3 epochs had stayed at 86 % (more pairs and a wider network helped more than more epochs).
    private static readonly OperatorDefaults QuickDefaults = new(Train: 100, Test: 20, Resolution: 29, Modes: 6, Width: 16, Epochs: 12, HalveEvery: 6, LearningRate: 3e-3f);

    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions = OperatorTask.Declare(Full, QuickDefaults);

    /// <summary>Runs the task; returns the metrics written to fno-darcy.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        var s = OperatorTask.Parse(o, "fno-darcy", Full, QuickDefaults);
        int n = s.Train + s.Test;
        var cache = Path.Combine(s.OutDir, $"darcy-n{n}-s{s.Resolution}-seed{s.Seed}.bin");
        log.WriteLine($"fno-darcy: {OperatorTask.Describe(s, "", device)}");
        var genWatch = Stopwatch.StartNew();
        var all = DataParallel.RankZeroFirst(s.Ranks, () =>
            Darcy.Generate(n, s.Resolution, (ulong)s.Seed, progress: new OperatorTask.ProgressLog(log, "darcy data"), cachePath: cache, log: log));
        double genSeconds = genWatch.Elapsed.TotalSeconds;
        log.WriteLine($"fno-darcy: data ready in {genSeconds:F1} s");
        var baseline = new OperatorBaseline("mean training field", all.Slice(s.Train, s.Test).MeanFieldBaselineError(all.Slice(0, s.Train)));
        var (train, test) = OperatorTask.Normalise(all, s.Train, s.Test, centreInputs: true);

        using var model = new Fno2d(s.Modes, s.Modes, s.Width, s.Blocks, init: s.Init, seed: (ulong)s.Seed, device: device, activation: s.Activation);
        // The paper solved at 421 and subsampled to 85; this generator solves at s, so the figure sits beside the
        // paper's with that difference stated in the JSON.
        var metrics = OperatorTask.TrainAndReport("fno-darcy", s, model, train, test, genSeconds,
            s.Train == 1000 && s.Test == 100 && s.Resolution == 85 ? PaperError : null, baseline, device, log);
        metrics["setting_note"] = "data solved at s (5-point finite differences, PCG), not at 421 and subsampled as the paper";
        return metrics;
    }
}
