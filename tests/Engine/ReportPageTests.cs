using System.Xml;
using System.Xml.Linq;
using Engine.Samples;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The report page and figures of the main command, from synthetic metrics (no training, no browser): comparisons
/// share a figure, and index.html is well-formed, links every task's section, shows every figure (files that exist)
/// and every summary. The real rendering is checked in a headless browser by scripts/check-report.sh.
/// </summary>
public class ReportPageTests
{
    private static double[] Line(int n, double start, double step) => Enumerable.Range(0, n).Select(i => start + step * i).ToArray();

    /// <summary>Metrics shaped as each task returns them.</summary>
    internal static List<(string Task, Dictionary<string, object> Metrics)> SyntheticRun() =>
    [
        ("mlp", new()
        {
            ["task"] = "mlp", ["test_accuracy"] = 0.956, ["epochs"] = 3,
            ["curves"] = new Dictionary<string, double[]>
            {
                ["train_loss"] = Line(3, 1, -0.2), ["train_accuracy"] = Line(3, 0.7, 0.1), ["test_loss"] = Line(3, 1.1, -0.2), ["test_accuracy"] = Line(3, 0.7, 0.1),
            },
        }),
        ("mixer", new()
        {
            ["task"] = "mixer", ["test_accuracy"] = 0.92, ["rp_test_accuracy"] = 0.94, ["parameters"] = 5994L,
            ["curves"] = new Dictionary<string, double[]>
            {
                ["test_accuracy"] = Line(3, 0.8, 0.05), ["rp_test_accuracy"] = Line(3, 0.85, 0.04), ["train_loss"] = Line(3, 1, -0.3),
                ["rp_train_loss"] = Line(3, 1, -0.3), ["extra_series"] = Line(3, 0, 1),
            },
        }),
        ("mixer-width", new()
        {
            ["task"] = "mixer-width", ["budget"] = 5000L,
            ["rows"] = new List<Dictionary<string, object>>
            {
                new() { ["effective_width"] = 116, ["random_permutations"] = false, ["test_accuracy"] = 0.80, ["test_accuracy_std"] = 0.01 },
                new() { ["effective_width"] = 116, ["random_permutations"] = true, ["test_accuracy"] = 0.82, ["test_accuracy_std"] = 0.0 },
                new() { ["effective_width"] = 368, ["random_permutations"] = false, ["test_accuracy"] = 0.70, ["test_accuracy_std"] = 0.02 },
                new() { ["effective_width"] = 368, ["random_permutations"] = true, ["test_accuracy"] = 0.78, ["test_accuracy_std"] = 0.0 },
            },
            ["curves"] = new Dictionary<string, double[]> { ["mixer_S4_C29_test_accuracy"] = Line(2, 0.7, 0.1), ["rp-mixer_S4_C29_test_accuracy"] = Line(2, 0.7, 0.1) },
        }),
        ("gr-diagonal", new()
        {
            ["task"] = "gr-diagonal", ["steps"] = 2000,
            ["runs"] = new Dictionary<string, object>
            {
                ["gd"] = new Dictionary<string, object> { ["test_error"] = 0.16, ["l1"] = 4.3 },
                ["sam"] = new Dictionary<string, object> { ["test_error"] = 0.06, ["l1"] = 3.9 },
                ["fgr-eps0.5"] = new Dictionary<string, object> { ["test_error"] = 0.03, ["l1"] = 3.5 },
            },
            ["curves"] = new Dictionary<string, double[]>
            {
                ["gd/test_error"] = Line(40, 1, -0.02), ["sam/test_error"] = Line(40, 1, -0.024), ["fgr-eps0.5/test_error"] = Line(40, 1, -0.0245),
                ["gd/train_loss"] = Line(40, 1, -0.02), ["sam/train_loss"] = Line(40, 1, -0.02), ["fgr-eps0.5/train_loss"] = Line(40, 1, -0.02),
            },
        }),
        ("spn", new() { ["task"] = "spn", ["dataset"] = "nltcs", ["test_loglik"] = -6.5, ["curves"] = new Dictionary<string, double[]> { ["train_loglik"] = Line(4, -8, 0.3), ["valid_loglik"] = Line(4, -8, 0.3) } }),
        ("fno-burgers", new() { ["task"] = "fno-burgers", ["test_relative_l2"] = 0.016, ["curves"] = new Dictionary<string, double[]> { ["train_loss"] = Line(5, 1, -0.19), ["test_error"] = Line(5, 1, -0.19), ["learning_rate"] = Line(5, 1e-3, 0) } }),
    ];

    [Fact]
    public void Comparisons_share_one_figure()
    {
        var run = SyntheticRun().ToDictionary(r => r.Task, r => r.Metrics);
        var gr = TaskReport.Figures("gr-diagonal", run["gr-diagonal"]);
        var testError = gr.Single(f => f.Name == "test-error");
        Assert.Equal(["gd", "sam", "fgr-eps0.5"], testError.Series.Select(s => s.Label).ToArray());
        Assert.True(testError.LogY);
        Assert.Equal(50, testError.Series[0].X[0]); // 40 points over 2000 steps
        Assert.Equal(2000, testError.Series[0].X[^1]);
        var mixer = TaskReport.Figures("mixer", run["mixer"]);
        Assert.Equal(["Mixer", "RP-Mixer"], mixer.Single(f => f.Name == "accuracy").Series.Select(s => s.Label).ToArray());
        Assert.Equal(80, mixer.Single(f => f.Name == "accuracy").Series[0].Y[0], 6);
        Assert.Contains(mixer, f => f.Name == "extra_series"); // anything not grouped still gets a figure
        var width = TaskReport.Figures("mixer-width", run["mixer-width"]).Single(f => f.Name == "accuracy-vs-width");
        Assert.Equal([116.0, 368.0], width.Series[0].X);
        Assert.Equal([80.0, 70.0], width.Series[0].Y.Select(v => Math.Round(v, 6)).ToArray());
        Assert.Equal([1.0, 2.0], width.Series[0].YError!.Select(v => Math.Round(v, 6)).ToArray());
        Assert.Equal("RP-Mixer", width.Series[1].Label);
    }

    [Fact]
    public void Report_page_is_well_formed_and_shows_every_task_figure_and_summary()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-report-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var results = SyntheticRun().Select(r => new TaskResult(r.Task, r.Metrics, TaskReport.Plot(r.Task, r.Metrics, dir), 1.5)).ToList();
            var path = HtmlReport.Write(dir, results, "Engine & results <test>", "quick settings", 12.3);
            using var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore });
            var doc = XDocument.Load(reader);
            var all = doc.Descendants().ToList();
            XElement[] Named(string name) => all.Where(e => e.Name.LocalName == name).ToArray();
            Assert.Equal("Engine & results <test>", Named("title").Single().Value);
            // The overview: one row per task, linking to its section.
            var overviewRows = Named("table").First(t => (string?)t.Attribute("class") == "overview").Descendants().Where(e => e.Name.LocalName == "tr").Skip(1).ToList();
            Assert.Equal(results.Count, overviewRows.Count);
            foreach (var r in results)
            {
                var section = Named("section").Single(s => (string?)s.Attribute("id") == "task-" + r.Task);
                Assert.Contains(overviewRows, row => row.Descendants().Any(a => a.Name.LocalName == "a" && (string?)a.Attribute("href") == "#task-" + r.Task));
                var images = section.Descendants().Where(e => e.Name.LocalName == "img").Select(i => (string)i.Attribute("src")!).ToList();
                Assert.Equal(r.Figures.Select(f => Path.GetFileName(f.Path)), images);
                Assert.All(images, src => Assert.True(File.Exists(Path.Combine(dir, src)), src));
                var summary = section.Descendants().First(e => e.Name.LocalName == "table" && (string?)e.Attribute("class") == "summary");
                Assert.Equal(TaskReport.Scalars(r.Metrics).Count, summary.Descendants().Count(e => e.Name.LocalName == "tr") - 1);
                Assert.False(string.IsNullOrWhiteSpace(section.Descendants().First(e => (string?)e.Attribute("class") == "headline").Value));
            }
            // Nested runs become tables; the README's default-run figures sit beside this run's.
            var gr = Named("section").Single(s => (string?)s.Attribute("id") == "task-gr-diagonal");
            Assert.Contains(gr.Descendants(), e => e.Name.LocalName == "caption" && e.Value == "runs");
            Assert.Contains(Headlines.ReadmeDefaultRun["mlp"], doc.ToString());
            Assert.Contains("data-images-loaded", File.ReadAllText(path));
            Assert.Single(Named("script"));
            Assert.Empty(Directory.GetFiles(dir, ".*"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
