using System.Text.Json;
using Engine.Kernels;

namespace Engine.Samples;

/// <summary>
/// The engine's command-line program: the first argument names a task; every task accepts --out DIR and writes its
/// final metrics to DIR/&lt;task&gt;.json.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string Help, Func<Options, Device, TextWriter, Dictionary<string, object>> Run)> Tasks = new()
    {
        ["mlp"] = ("train an MLP on optdigits (8x8 digits); prints per-epoch loss/accuracy and the test accuracy", MlpTask.Run),
        ["mixer"] = ("train an MLP-Mixer and its random-permuted twin (RP-Mixer) on optdigits; prints per-epoch progress, both test accuracies and parameter counts", MixerTask.Run),
        ["gr-diagonal"] = ("diagonal linear network w = u*u - v*v on sparse regression trained by GD, and SGD, SAM, forward F-GR at several ascent steps and backward F-GR on the same mini-batches; test error and l1 norm of each solution", GrDiagonalTask.Run),
        ["mixer-width"] = ("Mixers of several token/channel splits at one weight budget (and RP twins) on optdigits or Fashion-MNIST; accuracy against effective width S·C", MixerWidthTask.Run),
        ["spn"] = ("train a sum-product network (RAT-SPN style) on a binary density set (--dataset nltcs|plants|...; --search: RAT-SPN's structure grid); prints train/valid/test mean log-likelihoods", SpnTask.Run),
        ["fno-burgers"] = ("1-D FNO on generated viscous Burgers data (u0 -> u(1), cached in --out); test relative L2 vs the paper's 1.60%", FnoBurgersTask.Run),
        ["fno-darcy"] = ("2-D FNO on generated Darcy flow data (a -> u, cached in --out); test relative L2 vs the paper's 1.08%", FnoDarcyTask.Run),
        ["fno-depth"] = ("FNOs of 4-32 blocks with the default and the edge-of-chaos initialisation on Burgers (script-v1000 preset); test error against depth", FnoDepthTask.Run),
    };

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        try
        {
            // On a terminal, log lines go through Spectre.Console so live progress bars stay intact; redirected
            // output (CI, files) gets plain lines.
            return Run(args, ConsoleLog.IsInteractive ? new ConsoleLog() : Console.Out);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    /// <summary>Runs a task with output to <paramref name="log"/>; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter log)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            PrintHelp(log);
            return args.Length == 0 ? 2 : 0;
        }
        var names = args[0] == "all" ? Tasks.Keys.ToList() : [args[0]];
        foreach (var n in names)
            if (!Tasks.ContainsKey(n))
                throw new ArgumentException($"unknown task '{n}'; tasks: {string.Join(", ", Tasks.Keys)}, all.");
        // `all` runs every task with its tiny --quick settings (the README's smoke run); pass --quick false for full runs.
        var optionArgs = args.Skip(1).ToList();
        if (args[0] == "all" && !optionArgs.Contains("--quick") && !optionArgs.Any(a => a.StartsWith("--quick=", StringComparison.Ordinal)))
            optionArgs.Add("--quick");
        var options = new Options(optionArgs);
        var device = options.Has("device") ? Device.Parse(options.Get("device", "cpu")) : Device.Default;
        var outDir = options.Get("out", "out");
        Directory.CreateDirectory(outDir);
        foreach (var name in names)
        {
            var metrics = Tasks[name].Run(options, device, log);
            var path = Path.Combine(outDir, name + ".json");
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, path, overwrite: true);
            log.WriteLine($"{name}: wrote {path}");
            foreach (var png in TaskReport.PlotCurves(name, metrics, outDir)) log.WriteLine($"{name}: wrote {png}");
            TaskReport.PrintSummary(name, metrics, log);
        }
        return 0;
    }

    private static void PrintHelp(TextWriter log)
    {
        log.WriteLine("usage: Engine.Samples <task> [--out DIR] [--quick] [--device cpu|ilgpu-cpu|cuda|opencl] [--epochs N] [--batch-size N] [--lr X] [--seed N] [optimizer options]");
        log.WriteLine("  writes DIR/<task>.json, DIR/<task>-<curve>.png per-epoch plots and prints a summary; --quick: tiny settings (all uses them)");
        log.WriteLine("  optimizer options (mlp, mixer, mixer-width; the JSON's \"optimizer\" describes the choice):");
        log.WriteLine("    --optimizer sgd|adam|adamw|sam|fgr|dbgr   (default adam)");
        log.WriteLine("      sam: sharpness-aware minimisation, --rho R (0.05) [--adaptive: ASAM, rho default 2]");
        log.WriteLine("      fgr: finite-difference gradient regularization, --gamma G (0.05) --fd-eps E (0.05) --fd-direction forward|backward (forward)");
        log.WriteLine("      dbgr: exact gradient regularization by double backprop, --gamma G (0.05)");
        log.WriteLine("      sam/fgr/dbgr wrap --base sgd|adam|adamw (default adam) and cost 2 (dbgr ~3) gradient passes per step");
        log.WriteLine("    --momentum M (sgd: 0.9, Nesterov) --weight-decay W (sgd/adam L2: 0; adamw decoupled: 0.01)");
        log.WriteLine("    --flood B: flooding, train on |loss - B| + B (default: off)");
        log.WriteLine("  mixer:       [--patch 1|2|4|8] [--channels C] [--blocks N] [--token-hidden H] [--channel-hidden H]");
        log.WriteLine("  mixer-width: [--dataset optdigits|fashion-mnist] [--data DIR] [--budget P] [--budget-counts weights|parameters] [--tied-biases true|false]");
        log.WriteLine("               [--patches 4,2,1 (fashion-mnist: 14,7,4)] [--blocks N] [--token-expansion X] [--channel-expansion X] [--seeds N]");
        log.WriteLine("  spn:         [--dataset nltcs] [--depth D] [--repetitions R] [--leaves I] [--sums S] [--method adam|em] [--init data|random] [--patience N] [--em-step X] [--quick]");
        log.WriteLine("               [--search [--search-seconds T]]: RAT-SPN's structure grid, best validation log-likelihood, at most T s per structure");
        log.WriteLine("  gr-diagonal: [--quick] [--n N] [--d D] [--k K] [--alpha A] [--lr X] [--steps N] [--gamma G] [--eps E1,E2,...] [--beps E] [--batch B] [--rho R] [--noise S]");
        log.WriteLine("               [--batches 1,2,4,8,0 (0: full batch)] [--flood-level B (0: no flooding run)]");
        log.WriteLine("  fno-burgers, fno-darcy: [--quick] [--train N] [--test N] [--resolution S] [--modes K] [--width W] [--blocks L] [--halve-every E] [--weight-decay X]");
        log.WriteLine("  fno-burgers, fno-darcy: [--init default|edge-of-chaos|he|he-gaussian] [--activation gelu|relu] [--minutes M: as many epochs as fit in M minutes]");
        log.WriteLine("  fno-burgers: [--preset paper-text|script-v1000] [--solver-grid N] [--steps N]");
        log.WriteLine("  fno-depth:   [--quick] [--depths 4,8,16,32] [--inits default,edge-of-chaos] [--seeds N] [--epochs N] [--width W] [--resolution S] [--modes K] [--train N] [--test N] [--preset P] [--activation relu|gelu]");
        log.WriteLine("tasks:");
        foreach (var (name, t) in Tasks) log.WriteLine($"  {name,-11} {t.Help}");
        log.WriteLine("  all         every task in turn");
    }
}
