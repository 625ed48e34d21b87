using System.Text.Json;

namespace Engine.Tests.EngineTests;

/// <summary>The README's main command, run in-process on the built-in data.</summary>
public class SampleTests
{
    [Fact]
    public void MlpTaskReachesNinetyFivePercentAndWritesJson()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-mlp-" + Guid.NewGuid().ToString("N"));
        try
        {
            var log = new StringWriter();
            int rc = Samples.Program.Run(["mlp", "--out", dir, "--device", "cpu"], log);
            Assert.Equal(0, rc);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "mlp.json")));
            Assert.Equal("mlp", doc.RootElement.GetProperty("task").GetString());
            double acc = doc.RootElement.GetProperty("test_accuracy").GetDouble();
            Assert.True(acc >= 0.95, $"test accuracy {acc:P2} < 95%\n{log}");
            Assert.Contains("epoch", log.ToString());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void UnknownTaskIsAClearError()
    {
        var errors = new StringWriter();
        Assert.Equal(Samples.Program.UsageError, Samples.Program.Run(["nope"], new StringWriter(), errors));
        Assert.Contains("unknown task 'nope'", errors.ToString());
        Assert.Contains("mlp", errors.ToString());
    }

    private static JsonDocument RunTask(string task, params string[] extra) => RunTask(out _, task, extra);

    /// <summary>Runs <paramref name="task"/> into a fresh folder (removed afterwards); returns its JSON and its log.</summary>
    private static JsonDocument RunTask(out string logText, string task, params string[] extra)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"engine-{task}-" + Guid.NewGuid().ToString("N"));
        try
        {
            var log = new StringWriter();
            int rc = Samples.Program.Run([task, "--out", dir, "--device", "cpu", .. extra], log);
            logText = log.ToString();
            Assert.Equal(0, rc);
            Assert.Contains("epoch", logText);
            var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, task + ".json")));
            Assert.Equal(task, doc.RootElement.GetProperty("task").GetString());
            return doc;
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// Runs a command line expected to be refused as a usage error; returns the error output. A refused run leaves
    /// no output folder of its own behind.
    /// </summary>
    private static string UsageErrorOf(params string[] args)
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-usage-" + Guid.NewGuid().ToString("N"));
        try
        {
            var errors = new StringWriter();
            Assert.Equal(Samples.Program.UsageError, Samples.Program.Run([.. args, "--out", dir, "--device", "cpu"], new StringWriter(), errors));
            Assert.False(Directory.Exists(dir), $"the refused run left its output folder behind: {string.Join(' ', args)}");
            return errors.ToString();
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("99999999999", "mlp: --epochs must be an integer >= 1, at most 2147483647, got 99999999999.")]
    [InlineData("-99999999999", "mlp: --epochs must be an integer >= 1, at least 1, got -99999999999.")]
    [InlineData("1e3", "mlp: --epochs must be an integer >= 1, got '1e3'.")]
    public void AnIntegerOutsideThirtyTwoBitsNamesTheBoundItCrossed(string value, string message)
    {
        var errors = new StringWriter();
        Assert.Equal(Samples.Program.UsageError, Samples.Program.Run(["mlp", "--epochs", value], new StringWriter(), errors));
        Assert.Contains(message, errors.ToString());
    }

    [Fact]
    public void AnUnknownDensitySetIsAUsageErrorThatLeavesNoFolder()
    {
        Assert.Contains("set 'nosuch' not found", UsageErrorOf("spn", "--dataset", "nosuch"));
    }

    [Fact]
    public void ARefusedRunKeepsAFolderThatExistedBefore()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-usage-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Assert.Equal(Samples.Program.UsageError, Samples.Program.Run(["spn", "--dataset", "nosuch", "--out", dir, "--device", "cpu"], new StringWriter(), new StringWriter()));
            Assert.True(Directory.Exists(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void SpnTaskQuickWritesLogLikelihoodsAndCurves()
    {
        using var doc = RunTask("spn", "--quick");
        var r = doc.RootElement;
        Assert.Equal("nltcs", r.GetProperty("dataset").GetString());
        foreach (var name in new[] { "train_loglik", "valid_loglik", "test_loglik" })
        {
            double ll = r.GetProperty(name).GetDouble();
            // Uniform over 16 binary variables is 16 ln 0.5 = -11.09; a trained SPN must beat it clearly and stay below 0.
            Assert.InRange(ll, -9.0, 0.0);
        }
        Assert.True(r.GetProperty("parameters").GetInt64() > 0);
        var curves = r.GetProperty("curves");
        Assert.Equal(r.GetProperty("epochs_run").GetInt32(), curves.GetProperty("valid_loglik").GetArrayLength());
        Assert.Equal(r.GetProperty("epochs_run").GetInt32(), curves.GetProperty("train_loglik").GetArrayLength());
    }

    [Fact]
    public void MixerTaskWritesBothAccuraciesAndParameterCounts()
    {
        using var doc = RunTask("mixer", "--epochs", "1", "--patch", "4", "--channels", "8", "--blocks", "1",
            "--token-hidden", "4", "--channel-hidden", "8");
        var r = doc.RootElement;
        foreach (var name in new[] { "test_accuracy", "rp_test_accuracy" })
        {
            double acc = r.GetProperty(name).GetDouble();
            Assert.InRange(acc, 0.0, 1.0);
        }
        Assert.True(r.GetProperty("parameters").GetInt64() > 0);
        Assert.Equal(r.GetProperty("parameters").GetInt64(), r.GetProperty("rp_parameters").GetInt64());
        Assert.Equal(4, r.GetProperty("tokens").GetInt32());
    }

    [Fact]
    public void MixerWidthTaskWritesOneRowPerSplitAndVariant()
    {
        using var doc = RunTask("mixer-width", "--epochs", "1", "--patches", "4,2", "--budget", "3000", "--blocks", "1");
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        foreach (var row in rows)
        {
            int s = row.GetProperty("tokens").GetInt32(), c = row.GetProperty("channels").GetInt32();
            Assert.Equal(s * c, row.GetProperty("effective_width").GetInt32());
            // The default budget counts weights only; biases and LayerNorm gains come on top.
            Assert.InRange(row.GetProperty("weights").GetInt64(), 1, 3000);
            Assert.True(row.GetProperty("parameters").GetInt64() > row.GetProperty("weights").GetInt64());
            Assert.InRange(row.GetProperty("test_accuracy").GetDouble(), 0.0, 1.0);
            row.GetProperty("random_permutations").GetBoolean();
        }
        Assert.Equal([4, 4, 16, 16], rows.Select(r => r.GetProperty("tokens").GetInt32()));
        // Counting every parameter with untied biases reproduces the older budget rule.
        using var all = RunTask("mixer-width", "--epochs", "1", "--patches", "4", "--budget", "3000", "--blocks", "1",
            "--budget-counts", "parameters", "--tied-biases", "false");
        foreach (var row in all.RootElement.GetProperty("rows").EnumerateArray())
            Assert.InRange(row.GetProperty("parameters").GetInt64(), 1, 3000);
    }

    [Fact]
    public void MixerWidthSeedsReportTheMeanAndSpreadOfEverySeed()
    {
        using var doc = RunTask("mixer-width", "--epochs", "1", "--patches", "4", "--budget", "3000", "--blocks", "1", "--seeds", "2");
        Assert.Equal(2, doc.RootElement.GetProperty("seeds").GetInt32());
        foreach (var row in doc.RootElement.GetProperty("rows").EnumerateArray())
        {
            var accs = row.GetProperty("test_accuracies").EnumerateArray().Select(a => a.GetDouble()).ToArray();
            Assert.Equal(2, accs.Length);
            Assert.NotEqual(accs[0], accs[1]); // different seeds, different models
            Assert.Equal(accs.Average(), row.GetProperty("test_accuracy").GetDouble(), 12);
            double std = Math.Sqrt(((accs[0] - accs.Average()) * (accs[0] - accs.Average()) + (accs[1] - accs.Average()) * (accs[1] - accs.Average())) / 1);
            Assert.Equal(std, row.GetProperty("test_accuracy_std").GetDouble(), 12);
        }
        var errors = new StringWriter();
        Assert.Equal(Samples.Program.UsageError, Samples.Program.Run(["mixer-width", "--seeds", "0"], new StringWriter(), errors));
        Assert.Contains("mixer-width: --seeds must be an integer >= 1, got 0", errors.ToString());
    }

    [Fact]
    public void AllRunsEveryTaskQuickWithCurvesPlotsSummariesAndTheReportPage()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-all-" + Guid.NewGuid().ToString("N"));
        try
        {
            var log = new StringWriter();
            int rc = Samples.Program.Run(["all", "--out", dir, "--device", "cpu"], log);
            Assert.Equal(0, rc);
            foreach (var task in new[] { "mlp", "mixer", "mixer-width" })
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, task + ".json")));
                var curves = doc.RootElement.GetProperty("curves").EnumerateObject().ToList();
                Assert.NotEmpty(curves);
                int epochs = doc.RootElement.GetProperty("epochs").GetInt32();
                Assert.InRange(epochs, 1, 3); // the quick settings
                foreach (var c in curves) Assert.Equal(epochs, c.Value.GetArrayLength());
                Assert.Contains($"{task}: summary", log.ToString());
                Assert.Contains($"{task}: ", log.ToString());
            }
            // Every task's figures are PNGs, and the page shows them all with every task's summary.
            var page = File.ReadAllText(Path.Combine(dir, "index.html"));
            var pngs = Directory.GetFiles(dir, "*.png").Select(Path.GetFileName).ToList();
            foreach (var png in pngs)
            {
                Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, File.ReadAllBytes(Path.Combine(dir, png!)).Take(8).ToArray());
                Assert.Contains($"src=\"{png}\"", page);
            }
            foreach (var task in new[] { "mlp", "mixer", "mixer-width", "gr-diagonal", "spn", "fno-burgers", "fno-darcy" })
            {
                Assert.Contains($"id=\"task-{task}\"", page);
                Assert.Contains(pngs, p => p!.StartsWith(task + "-", StringComparison.Ordinal));
            }
            Assert.Contains("gr-diagonal-test-error.png", pngs);
            Assert.Contains("mixer-accuracy.png", pngs);
            Assert.Contains("mixer-width-accuracy-vs-width.png", pngs);
            Assert.Contains("README, default settings", log.ToString());
            Assert.Empty(Directory.GetFiles(dir, ".*"));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void QuickFlagShrinksTheDefaultsButExplicitOptionsWin()
    {
        using var doc = RunTask("mixer", "--quick", "--epochs", "1", "--patch", "2");
        var r = doc.RootElement;
        Assert.Equal(1, r.GetProperty("epochs").GetInt32());
        Assert.Equal(2, r.GetProperty("patch").GetInt32());
        Assert.Equal(8, r.GetProperty("token_hidden").GetInt32());
        Assert.Equal(1, r.GetProperty("blocks").GetInt32());
        Assert.Equal(1, r.GetProperty("curves").GetProperty("rp_test_accuracy").GetArrayLength());
    }

    [Fact]
    public void ProgressWritesPlainLinesWhenNotATerminal()
    {
        var log = new StringWriter();
        using (var p = Samples.ProgressReporter.Create(log, TimeSpan.Zero))
        {
            p.Start("work", 20);
            for (int i = 0; i < 20; i++) p.Advance();
            p.Start("more", 3);
            p.Advance(3);
        }
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(10, lines.Count(l => l.StartsWith("[progress] work:", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.Contains("work: 20/20 steps (100%", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("more: 3/3 steps (100%", StringComparison.Ordinal));
    }

    [Fact]
    public void SummaryListsScalarMetricsOnly()
    {
        var log = new StringWriter();
        Samples.TaskReport.PrintSummary("t", new Dictionary<string, object>
        {
            ["test_accuracy"] = 0.5, ["parameters"] = 12L, ["device"] = "cpu",
            ["curves"] = new Dictionary<string, double[]> { ["x"] = [1.0] }, ["rows"] = new List<object>(),
        }, log);
        var text = log.ToString();
        Assert.Contains("test_accuracy  0.5", text);
        Assert.Contains("parameters", text);
        Assert.DoesNotContain("curves", text);
        Assert.DoesNotContain("rows", text);
    }

    [Fact]
    public void GrDiagonalQuickWritesEveryRunWithTestErrorAndL1()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-grd-" + Guid.NewGuid().ToString("N"));
        try
        {
            var log = new StringWriter();
            int rc = Samples.Program.Run(["gr-diagonal", "--out", dir, "--device", "cpu", "--quick"], log);
            Assert.Equal(0, rc);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "gr-diagonal.json")));
            var root = doc.RootElement;
            Assert.Equal("gr-diagonal", root.GetProperty("task").GetString());
            var runs = root.GetProperty("runs");
            foreach (var name in new[] { "gd", "sgd", "sam", "fgr-eps0.05", "fgr-eps0.2", "fgr-eps0.5", "bgr-eps0.2" })
            {
                var r = runs.GetProperty(name);
                Assert.True(r.GetProperty("test_error").GetDouble() is >= 0 and < 10, name);
                Assert.True(r.GetProperty("l1").GetDouble() > 0, name);
                Assert.True(r.GetProperty("train_loss").GetDouble() < 1e-3, $"{name} did not fit the training data\n{log}");
            }
            Assert.Equal(40, root.GetProperty("curves").GetProperty("gd/test_error").GetArrayLength()); // CurvePoints
            // Flooding (b = 0.001) keeps the training loss near its level; the F-GR run it is compared with (ε = γ = η).
            Assert.InRange(runs.GetProperty("flood-b0.001").GetProperty("train_loss").GetDouble(), 1e-4, 1e-2);
            Assert.True(runs.TryGetProperty("fgr-flood-eps0.02", out _));
            // The batch-size sweep: 1, 2, 4, 8 and full batches, each with plain steps and F-GR at every ε.
            var sweep = root.GetProperty("batch_sweep").EnumerateArray().ToList();
            Assert.Equal([1, 2, 4, 8, 0], sweep.Select(r => r.GetProperty("batch").GetInt32()));
            foreach (var row in sweep)
            {
                Assert.Equal(4, row.GetProperty("test_error").EnumerateObject().Count());
                Assert.True(row.TryGetProperty("larger_eps_better", out _));
            }
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("fno-burgers")]
    [InlineData("fno-darcy")]
    public void FnoTasksWriteRelativeErrorTimeAndCurves(string task)
    {
        using var doc = RunTask(task, "--quick", "--epochs", "2");
        var r = doc.RootElement;
        double err = r.GetProperty("test_relative_l2").GetDouble();
        Assert.True(err > 0 && err < 1.5, $"relative L2 {err}");
        Assert.True(r.GetProperty("train_seconds").GetDouble() > 0);
        Assert.Equal(2, r.GetProperty("epochs").GetInt32());
        var curves = r.GetProperty("curves");
        Assert.Equal(2, curves.GetProperty("train_loss").GetArrayLength());
        Assert.Equal(2, curves.GetProperty("test_error").GetArrayLength());
        Assert.True(r.GetProperty("parameters").GetInt64() > 0);
    }

    [Fact]
    public void SpnSearchTriesTheGridAndKeepsTheBestValidationStructure()
    {
        using var doc = RunTask("spn", "--search", "--quick", "--dataset", "nltcs");
        var r = doc.RootElement;
        Assert.True(r.GetProperty("search").GetBoolean());
        var rows = r.GetProperty("structures").EnumerateArray().ToList();
        Assert.True(rows.Count >= 2);
        double best = rows.Max(x => x.GetProperty("valid_loglik").GetDouble());
        Assert.Equal(best, r.GetProperty("chosen").GetProperty("valid_loglik").GetDouble());
        Assert.Equal(r.GetProperty("chosen").GetProperty("test_loglik").GetDouble(), r.GetProperty("test_loglik").GetDouble());
        Assert.Equal(-6.01, r.GetProperty("published_rat_spn_test_loglik").GetDouble());
        Assert.Contains("not verified", r.GetProperty("published_rat_spn_source").GetString());
        Assert.Contains("run_rat_spn_generative.py", r.GetProperty("protocol").GetString());
        // A structure early stopping ended is never reported as stopped by the time bound.
        int patience = r.GetProperty("patience").GetInt32();
        foreach (var row in rows.Where(x => x.GetProperty("stopped_by_time").GetBoolean()))
            Assert.True(row.GetProperty("epochs_run").GetInt32() - row.GetProperty("best_epoch").GetInt32() < patience, row.ToString());
    }

    [Fact]
    public void MixerWidthRunsOnFashionMnistFilesWithAWeightsOnlyBudget()
    {
        var data = Path.Combine(Path.GetTempPath(), "engine-fmnist-" + Guid.NewGuid().ToString("N"));
        try
        {
            IdxTests.WriteTinyFashionMnist(data, train: 64, test: 32, side: 28, gzip: true);
            using var doc = RunTask("mixer-width", "--dataset", "fashion-mnist", "--data", data, "--epochs", "1", "--patches", "14,7",
                "--budget", "4000", "--blocks", "1");
            var r = doc.RootElement;
            Assert.Equal("fashion-mnist", r.GetProperty("dataset").GetString());
            Assert.Equal(28, r.GetProperty("image_size").GetInt32());
            Assert.Equal("weights", r.GetProperty("budget_counts").GetString());
            Assert.True(r.GetProperty("tied_biases").GetBoolean());
            var rows = r.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal([4, 4, 16, 16], rows.Select(x => x.GetProperty("tokens").GetInt32()));
            foreach (var row in rows) Assert.InRange(row.GetProperty("weights").GetInt64(), 1, 4000);
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
        Assert.Contains("dataset-fashion-mnist", UsageErrorOf("mixer-width", "--dataset", "fashion-mnist", "--data", "/nonexistent-folder"));
        Assert.Contains("--budget-counts", UsageErrorOf("mixer-width", "--budget-counts", "biases"));
    }

    [Fact]
    public void FnoBurgersNamesItsPresetAndReportsTheHeatBaseline()
    {
        using var doc = RunTask("fno-burgers", "--quick", "--epochs", "1", "--init", "edge-of-chaos", "--activation", "relu");
        var r = doc.RootElement;
        Assert.Equal("paper-text", r.GetProperty("preset").GetString());
        Assert.Equal("heat equation", r.GetProperty("baseline").GetString());
        double heat = r.GetProperty("baseline_test_relative_l2").GetDouble();
        Assert.InRange(heat, 0.001, 0.5);
        Assert.Equal("edge-of-chaos", r.GetProperty("init").GetString());
        Assert.Equal("relu", r.GetProperty("activation").GetString());
        // The quick setting is not the paper's, so no published figure is set beside it.
        Assert.False(r.TryGetProperty("paper_test_relative_l2", out _));
        Assert.Contains("differs", r.GetProperty("paper_comparison").GetString());

        using var hard = RunTask("fno-burgers", "--quick", "--epochs", "1", "--preset", "script-v1000", "--solver-grid", "256",
            "--steps", "400", "--train", "16", "--test", "8", "--resolution", "64");
        Assert.Equal(0.001, hard.RootElement.GetProperty("viscosity").GetDouble());
        Assert.Equal(256, hard.RootElement.GetProperty("solver_grid").GetInt32());
    }

    [Fact]
    public void FnoTasksRunForATimeBudget()
    {
        using var doc = RunTask("fno-darcy", "--quick", "--minutes", "0.02");
        var r = doc.RootElement;
        Assert.Equal(0.02, r.GetProperty("time_budget_minutes").GetDouble(), 6);
        int planned = r.GetProperty("planned_epochs").GetInt32(), ran = r.GetProperty("epochs").GetInt32();
        Assert.InRange(ran, 1, planned);
        Assert.Equal("mean training field", r.GetProperty("baseline").GetString());
        Assert.Contains("--minutes", UsageErrorOf("fno-darcy", "--quick", "--minutes", "-1"));
        Assert.Contains("--init", UsageErrorOf("fno-darcy", "--quick", "--init", "xavier"));
    }

    [Fact]
    public void FnoDepthReportsErrorAgainstDepthAndInitialGradients()
    {
        using var doc = RunTask(out string log, "fno-depth", "--quick", "--depths", "2,3", "--train", "20", "--test", "10", "--epochs", "1");
        var r = doc.RootElement;
        var rows = r.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count); // 2 depths x 2 inits x 1 seed
        foreach (var row in rows)
        {
            int depth = row.GetProperty("depth").GetInt32();
            Assert.Equal(depth, row.GetProperty("initial_gradient_norm").GetArrayLength());
            Assert.Equal(depth, row.GetProperty("initial_preactivation_variance").GetArrayLength());
            Assert.True(row.GetProperty("test_relative_l2").GetDouble() > 0);
        }
        Assert.Equal("script-v1000", r.GetProperty("preset").GetString());
        Assert.True(r.GetProperty("heat_baseline_test_relative_l2").GetDouble() > 0);
        foreach (var figure in new[] { "test-error", "initial-gradients", "test-error-curves" })
            Assert.Contains($"fno-depth-{figure}.png", log);
        Assert.Contains("fno-depth: 3 blocks: default", log);
        Assert.Contains("xavier", UsageErrorOf("fno-depth", "--quick", "--inits", "default,xavier"));
    }

    [Fact]
    public void FnoBurgersTrainsWithTheSamOptimizerOption()
    {
        using var doc = RunTask("fno-burgers", "--quick", "--epochs", "2", "--optimizer", "sam");
        var r = doc.RootElement;
        Assert.StartsWith("sam(", r.GetProperty("optimizer").GetString());
        Assert.Contains("weight_decay=0.0001", r.GetProperty("optimizer").GetString());
        double err = r.GetProperty("test_relative_l2").GetDouble();
        Assert.True(err > 0 && err < 1.5, $"relative L2 {err}");
    }

    [Fact]
    public void QuickFalseKeepsTheOperatorTasksFullDefaults()
    {
        var full = new Samples.OperatorDefaults(1000, 100, 85, 12, 32, 30, 6);
        var quick = new Samples.OperatorDefaults(60, 20, 29, 6, 8, 3, 50);
        Samples.Options Opts(params string[] args) =>
            Samples.CommandLine.ParseOptions("t", [.. Samples.CommonOptions.Global, .. Samples.OperatorTask.Declare(full, quick)], args);
        Assert.Equal(85, Samples.OperatorTask.Parse(Opts("--quick", "false"), "t", full, quick).Resolution);
        Assert.Equal(29, Samples.OperatorTask.Parse(Opts("--quick"), "t", full, quick).Resolution);
        Assert.Equal(85, Samples.OperatorTask.Parse(Opts(), "t", full, quick).Resolution);
    }
}
