using System.Globalization;

namespace Engine.Samples;

/// <summary>
/// Each task's headline figure for this run, and the README's figure for the task's default (full) settings beside it,
/// so a quick run can be read against the real one. The README figures live here, in one table: update them with the
/// README's results table.
/// </summary>
public static class Headlines
{
    /// <summary>The README's results at each task's default settings (2-core CPU; see the README's results table).</summary>
    public static readonly IReadOnlyDictionary<string, string> ReadmeDefaultRun = new Dictionary<string, string>
    {
        ["mlp"] = "test accuracy 96.7 %",
        ["mixer"] = "Mixer 96.99 %, RP-Mixer 96.88 % (16 tokens x 32 channels, 2 blocks, 15 epochs)",
        ["mixer-width"] = "S·C = 276 / 1088 / 3392: Mixer 96.83 / 95.44 / 96.14 %, RP-Mixer 97.55 / 97.25 / 96.57 % (budget 40000 weights, tied biases, 3 seeds)",
        ["gr-diagonal"] = "test error GD 0.163, SGD 0.142, SAM 0.035, F-GR ε 0.05 / 0.2 / 0.5: 0.067 / 0.043 / 0.030, backward F-GR 0.160",
        ["spn"] = "nltcs test log-likelihood −6.027 (RAT-SPN −6.01, recalled, unverified)",
        ["fno-burgers"] = "test relative L2 0.306 % (1000 pairs, s = 1024, 20 epochs)",
        ["fno-darcy"] = "test relative L2 2.10 % (1000 pairs, s = 85, 30 epochs)",
        ["fno-depth"] = "32 blocks: default 100 / 100 %, edge-of-chaos 12.7 / 17.2 % (2 seeds, script-v1000, 30 epochs)",
    };

    /// <summary>This run's headline figure of <paramref name="task"/>, from its metrics.</summary>
    public static string ThisRun(string task, Dictionary<string, object> metrics)
    {
        string P(string key) => metrics.TryGetValue(key, out var v) ? (Convert.ToDouble(v, CultureInfo.InvariantCulture) * 100).ToString("F2", CultureInfo.InvariantCulture) + " %" : "?";
        string N(object v, string format) => Convert.ToDouble(v, CultureInfo.InvariantCulture).ToString(format, CultureInfo.InvariantCulture);
        switch (task)
        {
            case "mlp":
                return "test accuracy " + P("test_accuracy");
            case "mixer":
                return $"Mixer {P("test_accuracy")}, RP-Mixer {P("rp_test_accuracy")}";
            case "mixer-width" when metrics.TryGetValue("rows", out var r) && r is List<Dictionary<string, object>> rows:
                var widths = rows.Select(x => (int)x["effective_width"]).Distinct().Order().ToList();
                string Acc(bool random) => string.Join(" / ", widths.Select(w =>
                    rows.Where(x => (int)x["effective_width"] == w && (bool)x["random_permutations"] == random)
                        .Select(x => N((double)x["test_accuracy"] * 100, "F2")).FirstOrDefault() ?? "-"));
                return $"S·C = {string.Join(" / ", widths)}: Mixer {Acc(false)} %, RP-Mixer {Acc(true)} %";
            case "gr-diagonal" when metrics.TryGetValue("runs", out var runs) && runs is Dictionary<string, object> byName:
                return "test error " + string.Join(", ", byName.Select(kv => $"{kv.Key} {N(((Dictionary<string, object>)kv.Value)["test_error"], "F3")}"));
            case "spn":
                // A run of the Bayesian methods names its first method, whose log-likelihood the top level reports.
                string method = metrics.GetValueOrDefault("method") is string m && m != "adam" ? $" ({m.Split(',')[0]})" : "";
                return $"{metrics.GetValueOrDefault("dataset")} test log-likelihood{method} {(metrics.TryGetValue("test_loglik", out var ll) ? N(ll, "F3") : "?")}";
            case "fno-burgers" or "fno-darcy":
                return "test relative L2 " + P("test_relative_l2");
            case "fno-depth" when metrics.TryGetValue("summary", out var sm) && sm is List<Dictionary<string, object>> summary && summary.Count > 0:
                int deepest = summary.Max(x => (int)x["depth"]);
                return $"{deepest} blocks: " + string.Join(", ", summary.Where(x => (int)x["depth"] == deepest)
                    .Select(x => $"{x["init"]} {string.Join(" / ", ((double[])x["test_relative_l2_seeds"]).Select(e => double.IsFinite(e) ? N(e * 100, "F1") : "diverged"))} %"));
            default:
                return "";
        }
    }

    /// <summary>One line: this run's figure and the README's default-run figure, for the log.</summary>
    public static string Line(string task, Dictionary<string, object> metrics, bool quick) =>
        $"{task}: {ThisRun(task, metrics)} ({(quick ? "quick settings" : "these settings")}); README, default settings: {ReadmeDefaultRun.GetValueOrDefault(task, "-")}";
}
