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
        var e = Assert.Throws<ArgumentException>(() => Samples.Program.Run(["nope"], new StringWriter()));
        Assert.Contains("unknown task 'nope'", e.Message);
        Assert.Contains("mlp", e.Message);
    }

    private static JsonDocument RunTask(string task, params string[] extra)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"engine-{task}-" + Guid.NewGuid().ToString("N"));
        try
        {
            var log = new StringWriter();
            int rc = Samples.Program.Run([task, "--out", dir, "--device", "cpu", .. extra], log);
            Assert.Equal(0, rc);
            Assert.Contains("epoch", log.ToString());
            var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, task + ".json")));
            Assert.Equal(task, doc.RootElement.GetProperty("task").GetString());
            return doc;
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
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
            Assert.InRange(row.GetProperty("parameters").GetInt64(), 1, 3000);
            Assert.InRange(row.GetProperty("test_accuracy").GetDouble(), 0.0, 1.0);
            row.GetProperty("random_permutations").GetBoolean();
        }
        Assert.Equal([4, 4, 16, 16], rows.Select(r => r.GetProperty("tokens").GetInt32()));
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
}
