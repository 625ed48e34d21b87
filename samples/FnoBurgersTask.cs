using System.Diagnostics;
using Engine.Data.Pde;
using Engine.Nn;

namespace Engine.Samples;

/// <summary>
/// The `fno-burgers` task: the FNO paper's 1-D Burgers benchmark (ν = 0.1, u0 ↦ u(·, 1)) with generated data
/// (cached in the output folder), a <see cref="Fno1d"/>, Adam with weight decay and a halving learning rate; reports the
/// test relative L2 error next to the paper's 1.60% at s = 1024.
/// </summary>
public static class FnoBurgersTask
{
    private static readonly OperatorDefaults Full = new(Train: 1000, Test: 100, Resolution: 1024, Modes: 16, Width: 64, Epochs: 20, HalveEvery: 5);
    private static readonly OperatorDefaults QuickDefaults = new(Train: 100, Test: 20, Resolution: 128, Modes: 8, Width: 16, Epochs: 3, HalveEvery: 50);

    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        .. OperatorTask.Declare(Full, QuickDefaults),
        Opt.Int("solver-grid", "grid of the data's Burgers solver", 8, @default: "512; --quick 256"),
        Opt.Int("steps", "solver time steps to t = 1", 1, @default: "250; --quick 200"),
        Opt.Choice("init", "spectral weight initialisation", ["scaled-uniform", "he", "he-gaussian"], "scaled-uniform"),
    ];

    /// <summary>Runs the task; returns the metrics written to fno-burgers.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        var s = OperatorTask.Parse(o, "fno-burgers", Full, QuickDefaults);
        int solverGrid = o.Int("solver-grid", quick ? 256 : 512);
        int steps = o.Int("steps", quick ? 200 : 250);
        var init = o.Get("init", "scaled-uniform").ToLowerInvariant() switch
        {
            "scaled-uniform" => SpectralInit.ScaledUniform,
            "he" => SpectralInit.He,
            "he-gaussian" => SpectralInit.HeGaussian,
            var v => throw new ArgumentException($"fno-burgers: --init must be scaled-uniform, he or he-gaussian; got '{v}'."),
        };
        int n = s.Train + s.Test;
        var cache = Path.Combine(s.OutDir, $"burgers-n{n}-s{s.Resolution}-seed{s.Seed}.bin");
        log.WriteLine($"fno-burgers: {OperatorTask.Describe(s, $" (solver grid {solverGrid}, {steps} steps to t = 1, ν = 0.1)", device)}");

        var genWatch = Stopwatch.StartNew();
        var all = Burgers.Generate(n, s.Resolution, (ulong)s.Seed, 0.1, solverGrid, steps, new OperatorTask.ProgressLog(log, "burgers data"), cache, log);
        double genSeconds = genWatch.Elapsed.TotalSeconds;
        log.WriteLine($"fno-burgers: data ready in {genSeconds:F1} s");
        var (train, test) = OperatorTask.Normalise(all, s.Train, s.Test, centreInputs: false);

        using var model = new Fno1d(s.Modes, s.Width, s.Blocks, init: init, seed: (ulong)s.Seed, device: device);
        var metrics = OperatorTask.TrainAndReport("fno-burgers", s, model, train, test, genSeconds, 0.0160, device, log);
        metrics["init"] = init.ToString();
        metrics["viscosity"] = 0.1;
        metrics["solver_grid"] = solverGrid;
        metrics["solver_steps"] = steps;
        return metrics;
    }
}
