using System.Diagnostics;
using System.Globalization;
using Engine.Autodiff;
using Engine.Data;
using Engine.Data.Pde;
using Engine.Nn;
using Engine.Training;

namespace Engine.Samples;

/// <summary>
/// The `fno-depth` task: the claim of Koshizuka et al. (arXiv 2310.06379) that FNOs initialised at the edge of chaos
/// train stably when deep (32 blocks, no skip connections) while the usual initialisation degrades. Trains Fno1d of
/// several depths with each initialisation and several seeds on one Burgers preset (default script-v1000) for a
/// fixed number of epochs, and reports the test error against depth, with each network's per-block pre-activation
/// variance and gradient norm at initialisation.
/// </summary>
public static class FnoDepthTask
{
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        Opt.Text("depths", "comma-separated numbers of FNO blocks", "4,8,16,32; --quick 2,4"),
        Opt.Text("inits", $"comma-separated initialisations from {string.Join(", ", OperatorTask.InitNames)}", "default,edge-of-chaos"),
        Opt.Int("seeds", "seeds per configuration (seed, seed + 1, ...)", 1, @default: "2; --quick 1"),
        CommonOptions.Seed,
        Opt.Int("width", "channels of the FNO blocks", 1, @default: "32; --quick 8"),
        Opt.Int("resolution", "grid points", 2, @default: "256; --quick 64"),
        Opt.Int("modes", "Fourier modes kept", 1, @default: "16; --quick 8"),
        Opt.Int("train", "training pairs", 1, @default: "200; --quick 40"),
        Opt.Int("test", "test pairs", 1, @default: "100; --quick 20"),
        CommonOptions.Epochs("100; --quick 2"),
        CommonOptions.BatchSize("20"),
        Opt.Int("halve-every", "halve the learning rate every N epochs", 1, @default: "epochs / 10"),
        OperatorTask.ActivationOption("relu"),
        FnoBurgersTask.PresetOption(BurgersPreset.ScriptV1000),
        .. OptimizerChoice.Declare("1e-3", "1e-4"),
        CompiledSteps.Option(),
    ];

    /// <summary>Runs the task; returns the metrics written to fno-depth.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        int[] depths = IntList(o.Get("depths", quick ? "2,4" : "4,8,16,32"), "depths");
        var inits = o.Get("inits", "default,edge-of-chaos").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(v => OperatorTask.ParseInit(v, "fno-depth")).ToArray();
        int seeds = o.Int("seeds", quick ? 1 : 2);
        int seed0 = o.Int("seed", 1);
        int width = o.Int("width", quick ? 8 : 32);
        int resolution = o.Int("resolution", quick ? 64 : 256);
        int modes = o.Int("modes", quick ? 8 : 16);
        int ntrain = o.Int("train", quick ? 40 : 200), ntest = o.Int("test", quick ? 20 : 100);
        int epochs = o.Int("epochs", quick ? 2 : 100);
        int batch = o.Int("batch-size", 20);
        int halveEvery = o.Int("halve-every", Math.Max(1, epochs / 10));
        var activation = OperatorTask.ParseActivation(o.Get("activation", "relu"), "fno-depth");
        var optimizer = OptimizerChoice.Parse(o, 1e-3f, "fno-depth", defaultWeightDecay: 1e-4f);
        if (optimizer.Flood != null)
            throw new ArgumentException("fno-depth: --flood applies to the classifier tasks only (the operator loss is a relative L2 error).");
        bool compile = CompiledSteps.Requested(o, "fno-depth");
        StepReport? firstStep = null;
        var preset = BurgersPreset.Parse(o.Get("preset", BurgersPreset.ScriptV1000.Name));
        // --quick (a smoke run) solves on at most 512 points with half the steps: cheap, not converged for script-v1000.
        if (quick) preset = preset.WithSolver(Math.Min(preset.SolverGrid, 512), preset.Steps / 2);
        string outDir = o.Get("out", "out");
        if (seeds < 1 || depths.Length == 0 || inits.Length == 0)
            throw new ArgumentException($"fno-depth: need at least one depth, one initialisation and one seed; got {depths.Length}, {inits.Length}, {seeds}.");
        int steps = epochs * ((ntrain + batch - 1) / batch);
        log.WriteLine($"fno-depth: Burgers preset {preset.Name}, {ntrain}/{ntest} pairs at s = {resolution}, width {width}, {modes} modes, "
            + $"{activation.ToString().ToLowerInvariant()}, depths {string.Join(",", depths)}, inits {string.Join(",", inits.Select(OperatorTask.InitName))}, "
            + $"{seeds} seed(s), {epochs} epochs ({steps} steps) of batch {batch}, {OptimizerChoice.Describe(optimizer)}, lr halved every {halveEvery}, device {device.Name}");

        var watch = Stopwatch.StartNew();
        var cache = Path.Combine(outDir, $"burgers-{preset.Name}-n{ntrain + ntest}-s{resolution}-seed{seed0}.bin");
        var all = Burgers.Generate(ntrain + ntest, resolution, (ulong)seed0, preset, new OperatorTask.ProgressLog(log, "burgers data"), cache, log);
        double dataSeconds = watch.Elapsed.TotalSeconds;
        double heat = Burgers.HeatBaselineError(all.Slice(ntrain, ntest), preset.Viscosity);
        var (train, test) = OperatorTask.Normalise(all, ntrain, ntest, centreInputs: false);
        log.WriteLine($"fno-depth: data ready in {dataSeconds:F1} s; heat-equation baseline test relative L2 {heat:P2}");

        var rows = new List<Dictionary<string, object>>();
        var curves = new Dictionary<string, double[]>();
        foreach (int depth in depths)
            foreach (var init in inits)
                for (int k = 0; k < seeds; k++)
                {
                    int seed = seed0 + k;
                    string label = $"depth {depth} {OperatorTask.InitName(init)} seed {seed}";
                    using var model = new Fno1d(modes, width, depth, init: init, seed: (ulong)seed, device: device, activation: activation);
                    var (forward, gradient) = InitialBlockStatistics(model, train, batch, device);
                    double initialError = OperatorTraining.Evaluate(model, test, device: device);
                    using var opt = OptimizerChoice.Create(optimizer, model.Parameters());
                    using var step = TrainingStep.Create(OperatorTraining.Step(model, opt), compile, log);
                    var records = OperatorTraining.Fit(model, opt, train, test, epochs, batch, halveEvery, seed, device,
                        (e, r) => { if (e == 1 || e % Math.Max(1, epochs / 5) == 0) log.WriteLine($"{label} epoch {e,3}  train {r.TrainLoss:P3}  test {r.TestError:P3}  ({r.Seconds:F1} s)"); },
                        step);
                    var report = step.Report();
                    firstStep ??= report;
                    var last = records[^1];
                    bool diverged = !double.IsFinite(last.TestError);
                    log.WriteLine($"{label}: test relative L2 {Show(last.TestError)} (at init {Show(initialError)}), {last.Seconds:F1} s; "
                        + $"gradient norm block 1 / block {depth} at init: {gradient[0]:G3} / {gradient[^1]:G3}; {CompiledSteps.Describe(report)}");
                    var row = new Dictionary<string, object>
                    {
                        ["depth"] = depth,
                        ["init"] = OperatorTask.InitName(init),
                        ["seed"] = seed,
                        ["test_relative_l2"] = Finite(last.TestError),
                        ["train_relative_l2"] = Finite(last.TrainLoss),
                        ["best_test_relative_l2"] = Finite(records.Select(r => r.TestError).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Min()),
                        ["initial_test_relative_l2"] = Finite(initialError),
                        ["diverged"] = diverged,
                        ["train_seconds"] = last.Seconds,
                        ["initial_preactivation_variance"] = forward.Select(Finite).ToArray(),
                        ["initial_gradient_norm"] = gradient.Select(Finite).ToArray(),
                    };
                    CompiledSteps.AddToRow(row, report);
                    rows.Add(row);
                    if (k == 0 && !diverged) curves[$"depth{depth}_{OperatorTask.InitName(init)}_test_error"] = records.Select(r => r.TestError).ToArray();
                }

        var summary = depths.SelectMany(d => inits.Select(i => Summarise(rows, d, OperatorTask.InitName(i)))).ToList();
        log.WriteLine("fno-depth: depth  init            test rel L2 (mean over seeds)   each seed");
        foreach (var s in summary)
            log.WriteLine($"fno-depth: {s["depth"],5}  {s["init"],-14}  {Show((double)s["test_relative_l2_mean"]),12}   {string.Join(" ", ((double[])s["test_relative_l2_seeds"]).Select(Show))}");
        var metrics = new Dictionary<string, object>
        {
            ["task"] = "fno-depth",
            ["claim"] = "Koshizuka et al. (arXiv 2310.06379): the edge-of-chaos (FNO He) initialisation lets deep FNOs (up to 32 layers, no skip connections) train stably without significant degradation",
            ["heat_baseline_test_relative_l2"] = heat,
            ["train"] = ntrain,
            ["test"] = ntest,
            ["resolution"] = resolution,
            ["width"] = width,
            ["modes"] = modes,
            ["activation"] = activation.ToString().ToLowerInvariant(),
            ["depths"] = depths,
            ["inits"] = inits.Select(OperatorTask.InitName).ToArray(),
            ["seeds"] = seeds,
            ["epochs"] = epochs,
            ["steps"] = steps,
            ["batch_size"] = batch,
            ["halve_every"] = halveEvery,
            ["optimizer"] = OptimizerChoice.Describe(optimizer),
            ["learning_rate"] = optimizer.LearningRate,
            ["weight_decay"] = optimizer.WeightDecay,
            ["data_seconds"] = dataSeconds,
            ["wall_seconds"] = watch.Elapsed.TotalSeconds,
            ["device"] = device.Name,
            ["rows"] = rows,
            ["summary"] = summary,
            ["curves"] = curves,
        };
        FnoBurgersTask.AddPreset(metrics, preset);
        if (firstStep != null) CompiledSteps.AddForRows(metrics, firstStep, rows);
        return metrics;
    }

    /// <summary>
    /// Each block's pre-activation mean square E[z_ℓ²] and gradient norm ||∂L/∂z_ℓ|| (the relative L2 loss of the first
    /// training batch) at initialisation: the per-layer quantities of the paper's forward and backward analysis.
    /// </summary>
    public static (double[] Forward, double[] Gradient) InitialBlockStatistics(Fno1d model, Dataset train, int batch, Kernels.Device device)
    {
        var loader = new DataLoader(train, batch, shuffle: false, device: device);
        using var first = loader.NextEpoch().First();
        using var scope = new TensorScope();
        var pre = new List<Tensor>();
        var loss = OperatorTraining.RelativeL2(model.Forward(first.X, pre), first.Targets!);
        var grads = Autograd.Grad(loss, pre);
        double MeanSquare(Tensor t) => t.ToArray().Average(v => (double)v * v);
        double Norm(Tensor? t) => t == null ? 0 : Math.Sqrt(t.ToArray().Sum(v => (double)v * v));
        return (pre.Select(MeanSquare).ToArray(), grads.Select(Norm).ToArray());
    }

    private static Dictionary<string, object> Summarise(List<Dictionary<string, object>> rows, int depth, string init)
    {
        var mine = rows.Where(r => (int)r["depth"] == depth && (string)r["init"] == init).ToList();
        var errors = mine.Select(r => r["test_relative_l2"] is double d ? d : double.NaN).ToArray();
        var finite = errors.Where(double.IsFinite).ToArray();
        return new Dictionary<string, object>
        {
            ["depth"] = depth,
            ["init"] = init,
            ["test_relative_l2_mean"] = finite.Length == 0 ? double.NaN : finite.Average(),
            ["test_relative_l2_seeds"] = errors,
            ["diverged_runs"] = errors.Length - finite.Length,
        };
    }

    /// <summary>The value, or the string "NaN"/"Infinity" (JSON has no non-finite numbers).</summary>
    private static object Finite(double v) => double.IsFinite(v) ? v : v.ToString(CultureInfo.InvariantCulture);

    private static string Show(double v) => double.IsFinite(v) ? v.ToString("P3", CultureInfo.InvariantCulture) : "diverged";

    private static int[] IntList(string text, string name) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v : throw new ArgumentException($"fno-depth: --{name} takes positive integers separated by commas, got '{p}'.")).ToArray();
}
