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
        ["mixer-width"] = ("Mixers of several token/channel splits at one parameter budget (and RP twins) on optdigits; accuracy against effective width S·C", MixerWidthTask.Run),
        ["fno-burgers"] = ("1-D FNO on generated viscous Burgers data (u0 -> u(1), cached in --out); test relative L2 vs the paper's 1.60%", FnoBurgersTask.Run),
        ["fno-darcy"] = ("2-D FNO on generated Darcy flow data (a -> u, cached in --out); test relative L2 vs the paper's 1.08%", FnoDarcyTask.Run),
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
        log.WriteLine("  fno-burgers, fno-darcy: [--quick] [--train N] [--test N] [--resolution S] [--modes K] [--width W] [--blocks L] [--halve-every E] [--weight-decay X]");
        log.WriteLine("  fno-burgers: [--init scaled-uniform|he|he-gaussian] [--solver-grid N] [--steps N]");
        log.WriteLine("tasks:");
        foreach (var (name, t) in Tasks) log.WriteLine($"  {name,-11} {t.Help}");
        log.WriteLine("  all         every task in turn");
    }
}
