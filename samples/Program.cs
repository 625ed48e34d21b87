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
        ["mixer-width"] = ("Mixers of several token/channel splits at one parameter budget (and RP twins) on optdigits; accuracy against effective width S·C", MixerWidthTask.Run),
    };

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        try
        {
            return Run(args, Console.Out);
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
        var options = new Options(args.Skip(1));
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
        }
        return 0;
    }

    private static void PrintHelp(TextWriter log)
    {
        log.WriteLine("usage: Engine.Samples <task> [--out DIR] [--device cpu|ilgpu-cpu|cuda|opencl] [--epochs N] [--batch-size N] [--lr X] [--seed N] [--optimizer sgd|adam|adamw]");
        log.WriteLine("  mixer:       [--patch 1|2|4|8] [--channels C] [--blocks N] [--token-hidden H] [--channel-hidden H]");
        log.WriteLine("  mixer-width: [--budget P] [--patches 4,2,1] [--blocks N] [--token-expansion X] [--channel-expansion X]");
        log.WriteLine("  gr-diagonal: [--quick] [--n N] [--d D] [--k K] [--alpha A] [--lr X] [--steps N] [--gamma G] [--eps E1,E2,...] [--beps E] [--batch B] [--rho R] [--noise S]");
        log.WriteLine("tasks:");
        foreach (var (name, t) in Tasks) log.WriteLine($"  {name,-11} {t.Help}");
        log.WriteLine("  all         every task in turn");
    }
}
