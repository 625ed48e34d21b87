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
}
