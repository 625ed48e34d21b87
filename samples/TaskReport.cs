using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace Engine.Samples;

/// <summary>
/// What the program does with a task's metrics besides &lt;task&gt;.json: a PNG per series of the metrics' "curves"
/// (<c>Dictionary&lt;string, double[]&gt;</c>, one value per epoch) and a summary table of the scalar metrics.
/// </summary>
public static class TaskReport
{
    /// <summary>The per-epoch series of a metrics dictionary ("curves"), or an empty map.</summary>
    public static IReadOnlyDictionary<string, double[]> Curves(Dictionary<string, object> metrics) =>
        metrics.TryGetValue("curves", out var c) && c is Dictionary<string, double[]> d ? d : new Dictionary<string, double[]>();

    /// <summary>Writes &lt;task&gt;-&lt;series&gt;.png for every curve into <paramref name="outDir"/>; returns the paths.</summary>
    public static List<string> PlotCurves(string task, Dictionary<string, object> metrics, string outDir)
    {
        var paths = new List<string>();
        foreach (var (series, values) in Curves(metrics))
        {
            // A diverged run's NaN and infinite points are left out of its plot (the JSON keeps them).
            var points = values.Select((v, i) => (X: i + 1.0, Y: v)).Where(p => double.IsFinite(p.Y)).ToArray();
            if (points.Length == 0) continue;
            var plot = new ScottPlot.Plot();
            var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
            line.LegendText = series;
            plot.Title($"{task}: {series}");
            plot.XLabel("epoch");
            plot.YLabel(series);
            var path = Path.Combine(outDir, $"{task}-{Safe(series)}.png");
            // Written beside the target and renamed, as the JSON, so a reader never sees half a file.
            var tmp = Path.Combine(outDir, $".{task}-{Safe(series)}.{Guid.NewGuid():N}.png");
            try
            {
                plot.SavePng(tmp, 640, 400);
                File.Move(tmp, path, overwrite: true);
            }
            finally
            {
                if (File.Exists(tmp)) File.Delete(tmp);
            }
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>
    /// Writes <paramref name="metrics"/> as indented JSON to <paramref name="path"/> (beside it first, then renamed, so
    /// a reader never sees half a file). A NaN or infinite number is written as the string "NaN", "Infinity" or
    /// "-Infinity", and the root gets <c>"diverged": true|false</c> and, when true, <c>"non_finite"</c>: the paths of
    /// those values (at most 20). Returns every such path (e.g. <c>test_loss</c>, <c>curves.train_loss[3]</c>).
    /// </summary>
    public static List<string> WriteJson(string path, Dictionary<string, object> metrics)
    {
        var options = new JsonSerializerOptions { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };
        var root = JsonSerializer.SerializeToNode(metrics, options)!.AsObject();
        var nonFinite = new List<string>();
        FindNonFinite(root, "", nonFinite);
        root["diverged"] = nonFinite.Count > 0;
        if (nonFinite.Count > 0) root["non_finite"] = new JsonArray([.. nonFinite.Take(20).Select(p => (JsonNode)p)]);
        var tmp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(tmp, root.ToJsonString(options));
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return nonFinite;
    }

    private static void FindNonFinite(JsonNode? node, string at, List<string> found)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o) FindNonFinite(v, at.Length == 0 ? k : $"{at}.{k}", found);
                break;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++) FindNonFinite(a[i], $"{at}[{i}]", found);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() is "NaN" or "Infinity" or "-Infinity":
                found.Add(at);
                break;
        }
    }

    private static string Safe(string name) =>
        new(name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '_').ToArray());

    /// <summary>The scalar metrics (numbers, strings, booleans) in order, formatted for display.</summary>
    public static List<(string Name, string Value)> Scalars(Dictionary<string, object> metrics)
    {
        var rows = new List<(string, string)>();
        foreach (var (k, v) in metrics)
        {
            string? s = v switch
            {
                double d => d.ToString("G6", CultureInfo.InvariantCulture),
                float f => f.ToString("G6", CultureInfo.InvariantCulture),
                IFormattable n and not IEnumerable => n.ToString(null, CultureInfo.InvariantCulture),
                string str => str,
                bool b => b ? "true" : "false",
                _ => null,
            };
            if (s != null) rows.Add((k, s));
        }
        return rows;
    }

    /// <summary>Prints the summary: a Spectre table on an interactive terminal, aligned plain text otherwise.</summary>
    public static void PrintSummary(string task, Dictionary<string, object> metrics, TextWriter log)
    {
        var rows = Scalars(metrics);
        if (log is ConsoleLog)
        {
            var table = new Table().Title($"[bold]{Markup.Escape(task)}[/]").AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
            foreach (var (k, v) in rows) table.AddRow(Markup.Escape(k), Markup.Escape(v));
            AnsiConsole.Write(table);
            return;
        }
        int width = rows.Count == 0 ? 6 : Math.Max(6, rows.Max(r => r.Name.Length));
        log.WriteLine($"{task}: summary");
        foreach (var (k, v) in rows) log.WriteLine($"  {k.PadRight(width)}  {v}");
    }
}
