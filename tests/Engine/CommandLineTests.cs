using System.Text.Json;
using Engine.Samples;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The sample program's command line: declared options per task, help, suggestions for typos, range checks, exit code
/// 2 on every usage error, an unusable --out, JSON-safe output of a diverged run, and `all` going on after a failure.
/// </summary>
public class CommandLineTests
{
    private static (int Code, string Log, string Errors) Run(params string[] args) => Run(Program.Tasks, args);

    private static (int Code, string Log, string Errors) Run(IReadOnlyList<SampleTask> tasks, params string[] args)
    {
        var log = new StringWriter();
        var errors = new StringWriter();
        int code = Program.Run(args, tasks, log, errors);
        return (code, log.ToString(), errors.ToString());
    }

    private static string TempDir(string what) => Path.Combine(Path.GetTempPath(), $"engine-cli-{what}-{Guid.NewGuid():N}");

    [Theory]
    [InlineData(new[] { "mlp", "--epoch", "1" }, "unknown option '--epoch' for mlp; did you mean --epochs?")]
    [InlineData(new[] { "mlp", "--hiden", "8" }, "did you mean --hidden?")]
    [InlineData(new[] { "mlp", "--epochs", "-1" }, "mlp: --epochs must be an integer >= 1, got -1.")]
    [InlineData(new[] { "mlp", "--epochs", "0" }, "mlp: --epochs must be an integer >= 1, got 0.")]
    [InlineData(new[] { "mlp", "--epochs=2.5" }, "mlp: --epochs must be an integer >= 1, got '2.5'.")]
    [InlineData(new[] { "mlp", "--epochs", "99999999999" }, "--epochs must be an integer")]
    [InlineData(new[] { "mlp", "--lr", "nan" }, "mlp: --lr must be a finite number >= 0, got 'nan'.")]
    [InlineData(new[] { "mlp", "--lr", "Infinity" }, "--lr must be a finite number")]
    [InlineData(new[] { "mlp", "--lr" }, "--lr")]
    [InlineData(new[] { "mlp", "--momentum", "1.5" }, "mlp: --momentum must be a finite number in [0, 1], got '1.5'.")]
    [InlineData(new[] { "mlp", "--flood", "-1" }, "mlp: --flood must be a finite number >= 0, got '-1'.")]
    [InlineData(new[] { "mlp", "--optimizer", "lion" }, "mlp: unknown --optimizer 'lion'; choices: sgd, adam, adamw, sam, fgr, dbgr.")]
    [InlineData(new[] { "mlp", "stray" }, "unexpected argument 'stray' for mlp")]
    [InlineData(new[] { "mpl" }, "unknown task 'mpl'; did you mean mlp?")]
    [InlineData(new[] { "--epochs", "3" }, "unknown option '--epochs' before a task name")]
    [InlineData(new[] { "mixer", "--channels", "0" }, "mixer: --channels must be an integer >= 1, got 0.")]
    [InlineData(new[] { "mixer-width", "--token-expansion", "0" }, "mixer-width: --token-expansion must be a finite number > 0, got '0'.")]
    [InlineData(new[] { "spn", "--method", "sgd" }, "spn: unknown --method 'sgd' in 'sgd'; choices: adam, em, bayes, gibbs, or a comma list of them.")]
    [InlineData(new[] { "spn", "--em-step", "2" }, "spn: --em-step must be a finite number in (0, 1], got '2'.")]
    [InlineData(new[] { "gr-diagonal", "--eps", "0.1,-2" }, "gr-diagonal: --eps must be a finite number > 0, got '-2'.")]
    [InlineData(new[] { "fno-burgers", "--init", "zero" }, "fno-burgers: unknown --init 'zero'")]
    [InlineData(new[] { "fno-darcy", "--modes", "-3" }, "fno-darcy: --modes must be an integer >= 1, got -3.")]
    [InlineData(new[] { "all", "--hidden", "0" }, "mlp: --hidden must be an integer >= 2, got 0.")]
    [InlineData(new[] { "all", "--epoch", "1" }, "unknown option '--epoch' for all; did you mean --epochs?")]
    [InlineData(new[] { "all", "--device", "tpu" }, "unknown --device 'tpu'; choices: cpu, ilgpu-cpu, cuda, opencl.")]
    public void UsageErrorsExitWithTwoAndAClearMessageBeforeAnythingRuns(string[] args, string message)
    {
        var dir = TempDir("usage");
        var (code, log, errors) = Run([.. args, "--out", dir]);
        Assert.Equal(Program.UsageError, code);
        Assert.Contains(message, errors);
        Assert.StartsWith("error: ", errors);
        Assert.DoesNotContain("epoch ", log); // nothing trained
        Assert.False(Directory.Exists(dir), "a usage error must not create --out");
    }

    public static TheoryData<string, string, string> EveryNumericOptionBelowItsRange()
    {
        var rows = new TheoryData<string, string, string>();
        foreach (var task in Program.Tasks)
            foreach (var spec in task.OptionSpecs.Where(s => s.Kind is OptionKind.Int or OptionKind.Float or OptionKind.FloatList))
            {
                // Every numeric option states a lower bound: there is always a value to refuse.
                Assert.True(double.IsFinite(spec.Min), $"{task.Name} --{spec.Name} has no lower bound");
                string below = spec.Kind == OptionKind.Int ? ((long)spec.Min - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)
                    : spec.MinExclusive ? spec.Min.ToString("R", System.Globalization.CultureInfo.InvariantCulture)
                    : (spec.Min - 1).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                rows.Add(task.Name, spec.Name, below);
                if (spec.Kind != OptionKind.Int) rows.Add(task.Name, spec.Name, "NaN");
            }
        return rows;
    }

    [Theory]
    [MemberData(nameof(EveryNumericOptionBelowItsRange))]
    public void EveryNumericOptionIsRangeChecked(string task, string option, string value)
    {
        var (code, _, errors) = Run(task, "--" + option, value, "--out", TempDir("range"));
        Assert.Equal(Program.UsageError, code);
        Assert.Contains($"{task}: --{option} must be", errors);
    }

    [Fact]
    public void HelpForTheProgramAndEveryTaskListsEveryDeclaredOption()
    {
        var (code, log, _) = Run("--help");
        Assert.Equal(Program.Success, code);
        foreach (var task in Program.Tasks) Assert.Contains(task.Name, log);
        Assert.Contains("all", log);
        foreach (var task in Program.Tasks)
        {
            var (taskCode, taskLog, _) = Run(task.Name, "--help");
            Assert.Equal(Program.Success, taskCode);
            foreach (var spec in task.OptionSpecs) Assert.Contains($"--{spec.Name} <{spec.HelpName}>", taskLog);
        }
        var (noArgs, usage, _) = Run();
        Assert.Equal(Program.UsageError, noArgs);
        Assert.Contains("mlp", usage);
    }

    [Fact]
    public void OutNamingAFileOrAnUncreatableFolderIsAUsageError()
    {
        var file = Path.GetTempFileName();
        try
        {
            var (code, _, errors) = Run("mlp", "--out", file);
            Assert.Equal(Program.UsageError, code);
            Assert.Contains($"--out '{file}' is an existing file", errors);

            var under = Path.Combine(file, "sub");
            (code, _, errors) = Run("mlp", "--out", under);
            Assert.Equal(Program.UsageError, code);
            Assert.Contains($"--out '{under}': cannot create the folder", errors);

            (code, _, errors) = Run("mlp", "--out", "");
            Assert.Equal(Program.UsageError, code);
            Assert.Contains("--out needs a folder name", errors);
        }
        finally
        {
            File.Delete(file);
        }
        if (OperatingSystem.IsLinux())
        {
            // /proc refuses new entries even to root, so this folder is unwritable on any Linux machine.
            var (code, _, errors) = Run("mlp", "--out", "/proc/engine-cli-test");
            Assert.Equal(Program.UsageError, code);
            Assert.Contains("--out '/proc/engine-cli-test'", errors);
        }
    }

    private static SampleTask Fake(string name, Func<Dictionary<string, object>> run) =>
        new(name, "a test task", [.. CommonOptions.Global, CommonOptions.Epochs("1")], (_, _, log) =>
        {
            log.WriteLine($"{name}: ran");
            return run();
        });

    [Fact]
    public void AllGoesOnAfterAFailureAndNamesTheFailedTasks()
    {
        var tasks = new[]
        {
            Fake("first", () => new() { ["task"] = "first", ["x"] = 1.0 }),
            Fake("boom", () => throw new InvalidOperationException("the data ran out")),
            Fake("nan", () => new() { ["task"] = "nan", ["loss"] = double.NaN, ["curves"] = new Dictionary<string, double[]> { ["loss"] = [1.0, double.PositiveInfinity] } }),
            Fake("last", () => new() { ["task"] = "last", ["x"] = 2.0 }),
        };
        var dir = TempDir("all");
        try
        {
            var (code, log, errors) = Run(tasks, "all", "--out", dir, "--device", "cpu");
            Assert.Equal(Program.TaskFailed, code);
            foreach (var t in tasks) Assert.Contains($"{t.Name}: ran", log);
            Assert.Contains("all: 2 of 4 tasks failed: boom, nan.", log);
            Assert.Contains("error: boom failed: InvalidOperationException: the data ran out", errors);
            Assert.Contains("error: nan diverged", errors);
            Assert.True(File.Exists(Path.Combine(dir, "last.json")));

            using var ok = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "first.json")));
            Assert.False(ok.RootElement.GetProperty("diverged").GetBoolean());
            using var nan = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "nan.json")));
            Assert.True(nan.RootElement.GetProperty("diverged").GetBoolean());
            Assert.Equal("NaN", nan.RootElement.GetProperty("loss").GetString());
            Assert.Equal("Infinity", nan.RootElement.GetProperty("curves").GetProperty("loss")[1].GetString());
            Assert.Equal(["loss", "curves.loss[1]"], nan.RootElement.GetProperty("non_finite").EnumerateArray().Select(e => e.GetString()));
            Assert.True(File.Exists(Path.Combine(dir, "nan-loss.png")), "the finite points are still plotted");
            Assert.Empty(Directory.GetFiles(dir, ".*"));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ATaskRefusingItsOptionsIsAUsageErrorAndOtherFailuresExitWithOne()
    {
        var tasks = new[]
        {
            Fake("picky", () => throw new ArgumentException("picky: --epochs 1 is too few for this task.")),
            Fake("broken", () => throw new IOException("disk full")),
        };
        var dir = TempDir("one");
        try
        {
            var (code, _, errors) = Run(tasks, "picky", "--out", dir);
            Assert.Equal(Program.UsageError, code);
            Assert.Contains("error: picky: --epochs 1 is too few", errors);
            (code, _, errors) = Run(tasks, "broken", "--out", dir);
            Assert.Equal(Program.TaskFailed, code);
            Assert.Contains("error: broken failed: IOException: disk full", errors);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ADivergedMlpRunWritesJsonSafeResultsAndExitsWithOne()
    {
        var dir = TempDir("diverge");
        try
        {
            var (code, _, errors) = Run("mlp", "--epochs", "1", "--hidden", "16", "--optimizer", "sgd", "--lr", "1e30", "--out", dir, "--device", "cpu");
            Assert.Equal(Program.TaskFailed, code);
            Assert.Contains("error: mlp diverged", errors);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "mlp.json")));
            Assert.True(doc.RootElement.GetProperty("diverged").GetBoolean());
            Assert.Contains("test_loss", doc.RootElement.GetProperty("non_finite").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(JsonValueKind.String, doc.RootElement.GetProperty("test_loss").ValueKind);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ReadingAnUndeclaredOptionIsAProgrammingError()
    {
        var o = CommandLine.ParseOptions("t", [Opt.Int("n", "a count", 1)], ["--n", "3"]);
        Assert.Equal(3, o.Int("n", 1));
        var e = Assert.Throws<InvalidOperationException>(() => o.Int("m", 1));
        Assert.Contains("t reads --m but does not declare it", e.Message);
    }

    [Theory]
    [InlineData("--quick", true)]
    [InlineData("--quick=false", false)]
    public void FlagsTakeAnOptionalTrueOrFalse(string arg, bool quick)
    {
        var o = CommandLine.ParseOptions("t", CommonOptions.Global, [arg]);
        Assert.Equal(quick, o.Quick);
        Assert.False(CommandLine.ParseOptions("t", CommonOptions.Global, ["--quick", "false"]).Quick);
    }
}
