using Engine.Kernels;

namespace Engine.Samples;

/// <summary>
/// The engine's command-line program: the first argument names a task (or <c>all</c>); every task accepts --out DIR
/// and writes its final metrics to DIR/&lt;task&gt;.json. Exit codes: 0 success, 1 a task failed or diverged, 2 a usage
/// error (unknown task or option, a value out of range, an unusable --out).
/// </summary>
/// <remarks>
/// A task with its own options declares them beside its code, as
/// <c>public static readonly IReadOnlyList&lt;OptionSpec&gt; OwnOptions = [Opt.Int("depth", "...", min: 1), ...]</c>,
/// reads them in its Run with <c>o.Int("depth", fallback)</c>, and is listed once in <see cref="Tasks"/>.
/// </remarks>
public static class Program
{
    /// <summary>Exit code of a run where every task succeeded.</summary>
    public const int Success = 0;
    /// <summary>Exit code when a task failed (an exception, or non-finite results).</summary>
    public const int TaskFailed = 1;
    /// <summary>Exit code of a usage error.</summary>
    public const int UsageError = 2;

    /// <summary>Every task, in the order <c>all</c> runs them; each gets <see cref="CommonOptions.Global"/> besides its own options.</summary>
    public static readonly IReadOnlyList<SampleTask> Tasks = new SampleTask[]
    {
        new("mlp", "train an MLP on optdigits (8x8 digits); prints per-epoch loss/accuracy and the test accuracy", MlpTask.OwnOptions, MlpTask.Run),
        new("mixer", "train an MLP-Mixer and its random-permuted twin (RP-Mixer) on optdigits; prints per-epoch progress, both test accuracies and parameter counts", MixerTask.OwnOptions, MixerTask.Run),
        new("gr-diagonal", "diagonal linear network w = u*u - v*v on sparse regression trained by GD, and SGD, SAM, forward F-GR at several ascent steps and backward F-GR on the same mini-batches; test error and l1 norm of each solution", GrDiagonalTask.OwnOptions, GrDiagonalTask.Run),
        new("mixer-width", "Mixers of several token/channel splits at one weight budget (and RP twins) on optdigits or Fashion-MNIST; accuracy against effective width S·C", MixerWidthTask.OwnOptions, MixerWidthTask.Run),
        new("spn", "train a sum-product network (RAT-SPN style) on a binary density set (--dataset nltcs|plants|...; --search: RAT-SPN's structure grid); prints train/valid/test mean log-likelihoods", SpnTask.OwnOptions, SpnTask.Run),
        new("fno-burgers", "1-D FNO on generated viscous Burgers data (u0 -> u(1), cached in --out); test relative L2 beside the heat-equation baseline (and the paper's 1.60% in its setting, --preset paper-text)", FnoBurgersTask.OwnOptions, FnoBurgersTask.Run),
        new("fno-darcy", "2-D FNO on generated Darcy flow data (a -> u, cached in --out); test relative L2 vs the paper's 1.08%", FnoDarcyTask.OwnOptions, FnoDarcyTask.Run),
        new("fno-depth", "FNOs of 4-32 blocks with the default and the edge-of-chaos initialisation on Burgers (script-v1000 preset); test error against depth", FnoDepthTask.OwnOptions, FnoDepthTask.Run),
    }.Select(t => t with { OptionSpecs = [.. CommonOptions.Global, .. t.OptionSpecs] }).ToArray();

    private static readonly Lazy<CommandLine> Parser = new(() => new CommandLine(Tasks,
        "Trains the engine's sample tasks; each writes <out>/<task>.json, a PNG per curve and a summary. `<task> --help` lists a task's options."));

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        // On a terminal, log lines go through Spectre.Console so live progress bars stay intact; redirected output
        // (CI, files) gets plain lines.
        int code = Run(args, ConsoleLog.IsInteractive ? new ConsoleLog() : Console.Out, Console.Error);
        DataParallel.Shutdown();
        return code;
    }

    /// <summary>
    /// Runs a task (or every task) with output to <paramref name="log"/> and error messages to
    /// <paramref name="errors"/> (default: <paramref name="log"/>); returns the exit code (<see cref="Success"/>,
    /// <see cref="TaskFailed"/>, <see cref="UsageError"/>).
    /// </summary>
    public static int Run(string[] args, TextWriter log, TextWriter? errors = null) => Run(args, Parser.Value, log, errors);

    /// <summary>As <see cref="Run(string[], TextWriter, TextWriter?)"/> over other tasks than <see cref="Tasks"/> (for tests).</summary>
    public static int Run(string[] args, IReadOnlyList<SampleTask> tasks, TextWriter log, TextWriter? errors = null) =>
        Run(args, new CommandLine(tasks, "tasks"), log, errors);

    private static int Run(string[] args, CommandLine parser, TextWriter log, TextWriter? errors)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(log);
        errors ??= log;
        if (args.Length == 0)
        {
            parser.Parse(["--help"], log);
            return UsageError;
        }
        var parsed = parser.Parse(args, log);
        if (parsed.HelpShown) return Success;
        if (parsed.Errors.Count > 0) return Usage(errors, parsed.Errors);

        var first = parsed.Runs[0].Options;
        string outDir = first.Get("out", "out");
        bool outDirExisted = Directory.Exists(outDir);
        if (PrepareOutputFolder(outDir) is { } outError) return Usage(errors, [outError]);
        int result = RunTasks(parsed, first, outDir, log, errors);
        // A run refused or failed before writing anything leaves no folder of its own behind.
        if (result != Success && !outDirExisted && Directory.Exists(outDir) && !Directory.EnumerateFileSystemEntries(outDir).Any())
            Directory.Delete(outDir);
        return result;
    }

    /// <summary>The tasks of <paramref name="parsed"/> on the chosen device, their results in <paramref name="outDir"/>; returns the exit code.</summary>
    private static int RunTasks(ParsedCommandLine parsed, Options first, string outDir, TextWriter log, TextWriter errors)
    {
        Device device;
        try
        {
            device = first.Has("device") ? Device.Parse(first.Get("device", "cpu")) : Device.Default;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException)
        {
            return Usage(errors, [$"--device: {e.Message}"]);
        }
        log.WriteLine(first.Has("device")
            ? new DeviceSelection(device.Kind, $"--device {first.Get("device", "cpu")}", Device.Probe().FindingFor(device.Kind)).ToString()
            : Device.DescribeSelection());

        var failed = new List<string>();
        var results = new List<TaskResult>();
        var total = System.Diagnostics.Stopwatch.StartNew();
        int code = Success;
        foreach (var (task, options) in parsed.Runs)
        {
            int taskCode = RunOne(task, options, device, outDir, log, errors, results);
            if (taskCode == Success) continue;
            failed.Add(task.Name);
            code = parsed.Runs.Count == 1 ? taskCode : TaskFailed;
        }
        if (parsed.Command == CommandLine.All && results.Count > 0)
        {
            var page = HtmlReport.Write(outDir, results, "Engine: the main command's results",
                $"{(first.Quick ? "quick settings" : "full settings")}, device {device.Name}, "
                + DateTime.Now.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture),
                total.Elapsed.TotalSeconds);
            log.WriteLine($"all: {results.Count} tasks in {total.Elapsed.TotalSeconds:F1} s; wrote {page}");
        }
        if (parsed.Runs.Count > 1)
            log.WriteLine(failed.Count == 0
                ? $"all: {parsed.Runs.Count} tasks succeeded."
                : $"all: {failed.Count} of {parsed.Runs.Count} tasks failed: {string.Join(", ", failed)}.");
        if (failed.Count > 0 && parsed.Runs.Count > 1)
            errors.WriteLine($"error: {failed.Count} of {parsed.Runs.Count} tasks failed: {string.Join(", ", failed)}.");
        return code;
    }

    /// <summary>
    /// Runs one task and writes its JSON, plots, summary and headline (and adds it to <paramref name="results"/>); returns its exit code. A usage error found by the task
    /// itself (an option combination it refuses, missing data) is <see cref="UsageError"/>; any other exception, or
    /// metrics with NaN or infinite values, is <see cref="TaskFailed"/>. Nothing is thrown.
    /// </summary>
    private static int RunOne(SampleTask task, Options options, Device device, string outDir, TextWriter log, TextWriter errors,
        List<TaskResult> results)
    {
        Dictionary<string, object> metrics;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Distributed.Communicator? ranks = null;
        try
        {
            // --distributed: every rank trains, only rank 0 logs and writes; a rank that fails stops the others.
            ranks = DataParallel.Requested(task, options) ? DataParallel.For(options) : null;
            if (ranks == null) metrics = task.Run(options, device, log);
            else
            {
                var rankLog = ranks.Rank == 0 ? log : TextWriter.Null;
                Dictionary<string, object>? ranked = null;
                ranks.RunOrAbort(() => ranked = task.Run(options, device, rankLog));
                metrics = ranked!;
                metrics["ranks"] = ranks.Size;
                if (ranks.Rank != 0) return Success;
            }
        }
        catch (Exception e) when (IsUsage(e))
        {
            errors.WriteLine($"error: {e.Message}");
            return UsageError;
        }
        catch (Exception e)
        {
            errors.WriteLine($"error: {task.Name} failed: {e.GetType().Name}: {e.Message}");
            return TaskFailed;
        }
        try
        {
            var path = Path.Combine(outDir, task.Name + ".json");
            var nonFinite = TaskReport.WriteJson(path, metrics);
            log.WriteLine($"{task.Name}: wrote {path}");
            var figures = TaskReport.Plot(task.Name, metrics, outDir);
            foreach (var (_, png) in figures) log.WriteLine($"{task.Name}: wrote {png}");
            TaskReport.PrintSummary(task.Name, metrics, log);
            log.WriteLine(Headlines.Line(task.Name, metrics, options.Quick));
            results.Add(new TaskResult(task.Name, metrics, figures, watch.Elapsed.TotalSeconds));
            if (nonFinite.Count == 0) return Success;
            errors.WriteLine($"error: {task.Name} diverged: {nonFinite.Count} non-finite value(s), first at {string.Join(", ", nonFinite.Take(5))}; "
                + $"{path} has \"diverged\": true and writes them as the strings \"NaN\", \"Infinity\", \"-Infinity\".");
            return TaskFailed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.WriteLine($"error: {task.Name}: could not write its results to '{outDir}': {e.Message}");
            return TaskFailed;
        }
    }

    private static bool IsUsage(Exception e) =>
        e is ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException;

    private static int Usage(TextWriter errors, IEnumerable<string> messages)
    {
        foreach (var m in messages) errors.WriteLine("error: " + m);
        return UsageError;
    }

    /// <summary>
    /// Creates <paramref name="outDir"/> if needed and checks a file can be written there; returns null when usable,
    /// else the message of the usage error.
    /// </summary>
    public static string? PrepareOutputFolder(string outDir)
    {
        if (string.IsNullOrWhiteSpace(outDir)) return "--out needs a folder name.";
        if (outDir.Contains('\0')) return "--out contains a NUL character.";
        if (File.Exists(outDir)) return $"--out '{outDir}' is an existing file; give a folder (it is created if missing).";
        try
        {
            Directory.CreateDirectory(outDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return $"--out '{outDir}': cannot create the folder ({e.Message}).";
        }
        var probe = Path.Combine(outDir, $".engine-write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"--out '{outDir}' is not writable ({e.Message}).";
        }
    }
}
