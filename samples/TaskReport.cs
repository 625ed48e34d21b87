using System.Collections;
using System.Globalization;
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
            if (values.Length == 0) continue;
            var plot = new ScottPlot.Plot();
            var xs = Enumerable.Range(1, values.Length).Select(i => (double)i).ToArray();
            var line = plot.Add.Scatter(xs, values);
            line.LegendText = series;
            plot.Title($"{task}: {series}");
            plot.XLabel("epoch");
            plot.YLabel(series);
            paths.Add(Save(plot, Path.Combine(outDir, $"{task}-{Safe(series)}.png")));
        }
        return paths;
    }

    /// <summary>
    /// Writes one PNG with several (x, y) series, each a line with markers (a single point is drawn as a large
    /// marker) and a legend entry; returns <paramref name="path"/>.
    /// </summary>
    public static string PlotSeries(string path, string title, string xLabel, string yLabel, IEnumerable<(string Label, double[] X, double[] Y)> series)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, xs, ys) in series)
        {
            if (xs.Length == 0) continue;
            var scatter = plot.Add.Scatter(xs, ys);
            scatter.LegendText = label;
            if (xs.Length == 1) scatter.MarkerSize = 12;
        }
        plot.ShowLegend();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        return Save(plot, path);
    }

    private static string Save(ScottPlot.Plot plot, string path)
    {
        // Written beside the target and renamed, as the JSON, so a reader never sees half a file.
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var tmp = Path.Combine(dir, $".{Path.GetFileNameWithoutExtension(path)}.{Guid.NewGuid():N}.png");
        try
        {
            plot.SavePng(tmp, 640, 400);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return path;
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
