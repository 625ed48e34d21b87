using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace Engine.Samples;

/// <summary>One line of a figure: a label and its points (with optional ± error bars).</summary>
public sealed record Series(string Label, double[] X, double[] Y, double[]? YError = null);

/// <summary>
/// One plot: written as &lt;task&gt;-&lt;Name&gt;.png. Series that are compared share a figure (every optimizer's test
/// error, the Mixer against the RP-Mixer, accuracy against S·C).
/// </summary>
public sealed record Figure(string Name, string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LogY = false);

/// <summary>
/// What the program does with a task's metrics besides &lt;task&gt;.json: the task's figures as PNGs (built from the
/// metrics' "curves", <c>Dictionary&lt;string, double[]&gt;</c> with one value per epoch or per logged step, and from its
/// rows), and a summary of the scalar metrics.
/// </summary>
public static class TaskReport
{
    /// <summary>The per-epoch series of a metrics dictionary ("curves"), or an empty map.</summary>
    public static IReadOnlyDictionary<string, double[]> Curves(Dictionary<string, object> metrics) =>
        metrics.TryGetValue("curves", out var c) && c is Dictionary<string, double[]> d ? d : new Dictionary<string, double[]>();

    /// <summary>The figures of a task: the comparisons its runs are for, then one figure per remaining curve.</summary>
    public static List<Figure> Figures(string task, Dictionary<string, object> metrics)
    {
        var curves = Curves(metrics).Where(kv => kv.Value.Length > 0).ToDictionary(kv => kv.Key, kv => kv.Value);
        var figures = new List<Figure>();
        var used = new HashSet<string>();
        Series? Curve(string key, string label, double scale = 1)
        {
            if (!curves.TryGetValue(key, out var v)) return null;
            used.Add(key);
            return new Series(label, Epochs(v.Length), v.Select(y => y * scale).ToArray());
        }
        void Add(string name, string title, string x, string y, bool logY, params Series?[] series)
        {
            var present = series.OfType<Series>().ToList();
            if (present.Count > 0) figures.Add(new Figure(name, title, x, y, present, logY));
        }
        switch (task)
        {
            case "mlp":
                Add("accuracy", "mlp: accuracy", "epoch", "accuracy (%)", false,
                    Curve("test_accuracy", "test", 100), Curve("train_accuracy", "train", 100));
                Add("loss", "mlp: cross-entropy", "epoch", "loss", false, Curve("test_loss", "test"), Curve("train_loss", "train"));
                break;
            case "mixer":
                Add("accuracy", "mixer: Mixer against RP-Mixer (same parameters)", "epoch", "test accuracy (%)", false,
                    Curve("test_accuracy", "Mixer", 100), Curve("rp_test_accuracy", "RP-Mixer", 100));
                Add("loss", "mixer: training loss", "epoch", "cross-entropy", false,
                    Curve("train_loss", "Mixer train"), Curve("rp_train_loss", "RP-Mixer train"),
                    Curve("test_loss", "Mixer test"), Curve("rp_test_loss", "RP-Mixer test"));
                Add("train-accuracy", "mixer: training accuracy", "epoch", "train accuracy (%)", false,
                    Curve("train_accuracy", "Mixer", 100), Curve("rp_train_accuracy", "RP-Mixer", 100));
                break;
            case "mixer-width":
                if (metrics.TryGetValue("rows", out var r) && r is List<Dictionary<string, object>> rows && rows.Count > 0)
                {
                    Series Width(bool random, string label)
                    {
                        var pick = rows.Where(row => (bool)row["random_permutations"] == random).OrderBy(row => Convert.ToDouble(row["effective_width"], CultureInfo.InvariantCulture)).ToList();
                        return new Series(label, pick.Select(row => Convert.ToDouble(row["effective_width"], CultureInfo.InvariantCulture)).ToArray(),
                            pick.Select(row => 100 * (double)row["test_accuracy"]).ToArray(), pick.Select(row => 100 * (double)row["test_accuracy_std"]).ToArray());
                    }
                    string setting = metrics.TryGetValue("dataset", out var data) && metrics.TryGetValue("budget", out var budget)
                        ? $" ({data}, {budget} {metrics.GetValueOrDefault("budget_counts", "parameters")})" : "";
                    Add("accuracy-vs-width", $"mixer-width: accuracy against effective width S·C at one budget{setting}", "effective width S·C", "test accuracy (%)", false,
                        Width(false, "Mixer"), Width(true, "RP-Mixer"));
                }
                Add("test-accuracy", "mixer-width: test accuracy of every configuration", "epoch", "test accuracy (%)", false,
                    curves.Keys.Where(k => k.EndsWith("_test_accuracy", StringComparison.Ordinal)).Select(k => Curve(k, k[..^"_test_accuracy".Length], 100)).ToArray());
                Add("train-loss", "mixer-width: training loss of every configuration", "epoch", "cross-entropy", false,
                    curves.Keys.Where(k => k.EndsWith("_train_loss", StringComparison.Ordinal)).Select(k => Curve(k, k[..^"_train_loss".Length])).ToArray());
                break;
            case "gr-diagonal":
                int steps = metrics.TryGetValue("steps", out var st) ? Convert.ToInt32(st, CultureInfo.InvariantCulture) : 0;
                Series? Run(string key)
                {
                    if (!curves.TryGetValue(key, out var v)) return null;
                    used.Add(key);
                    var x = steps > 0 ? Enumerable.Range(1, v.Length).Select(i => Math.Round((double)i * steps / v.Length)).ToArray() : Epochs(v.Length);
                    return new Series(key[..key.IndexOf('/')], x, v);
                }
                Add("test-error", "gr-diagonal: test error of every optimizer", "step", "test error (MSE)", true,
                    curves.Keys.Where(k => k.EndsWith("/test_error", StringComparison.Ordinal)).Select(Run).ToArray());
                Add("train-loss", "gr-diagonal: training loss of every optimizer", "step", "training loss", true,
                    curves.Keys.Where(k => k.EndsWith("/train_loss", StringComparison.Ordinal)).Select(Run).ToArray());
                break;
            case "fno-burgers" or "fno-darcy":
                Add("relative-l2", $"{task}: relative L2 error", "epoch", "relative L2 (%)", true,
                    Curve("test_error", "test", 100), Curve("train_loss", "train", 100));
                Add("learning-rate", $"{task}: learning rate", "epoch", "learning rate", false, Curve("learning_rate", "Adam"));
                break;
            case "fno-depth":
                if (metrics.TryGetValue("rows", out var dr) && dr is List<Dictionary<string, object>> depthRows && depthRows.Count > 0)
                {
                    var inits = depthRows.Select(row => (string)row["init"]).Distinct().ToList();
                    Add("test-error", "fno-depth: test error against depth (mean over seeds; diverged runs left out)", "blocks", "test relative L2 (%)", true,
                        inits.Select(init => ErrorAgainstDepth(depthRows, init)).ToArray());
                    int deepest = depthRows.Max(row => (int)row["depth"]);
                    Add("initial-gradients", $"fno-depth: gradient norm per block at initialisation ({deepest} blocks, first seed)", "block", "||dL/dz||", true,
                        inits.Select(init => depthRows.FirstOrDefault(row => (int)row["depth"] == deepest && (string)row["init"] == init))
                            .OfType<Dictionary<string, object>>()
                            .Select(row => new Series((string)row["init"], Epochs(deepest), ((object[])row["initial_gradient_norm"]).Select(AsDouble).ToArray()))
                            .ToArray());
                }
                Add("test-error-curves", "fno-depth: test error of every configuration (first seed)", "epoch", "test relative L2 (%)", true,
                    curves.Keys.Where(k => k.EndsWith("_test_error", StringComparison.Ordinal)).Select(k => Curve(k, k[..^"_test_error".Length], 100)).ToArray());
                break;
            case "spn":
                Add("log-likelihood", "spn: mean log-likelihood per sample", "epoch", "log-likelihood (nats)", false,
                    Curve("valid_loglik", "valid"), Curve("train_loglik", "train"));
                figures.AddRange(SpnBayesTask.Figures(metrics));
                break;
        }
        foreach (var (name, values) in curves)
            if (!used.Contains(name))
                figures.Add(new Figure(Safe(name), $"{task}: {name}", "epoch", name, [new Series(name, Epochs(values.Length), values)]));
        return figures;
    }

    /// <summary>Mean test error (%) over the finite seeds of each depth for one initialisation of fno-depth's rows.</summary>
    private static Series ErrorAgainstDepth(List<Dictionary<string, object>> rows, string init)
    {
        var points = rows.Where(row => (string)row["init"] == init).GroupBy(row => (int)row["depth"]).OrderBy(g => g.Key)
            .Select(g => (Depth: (double)g.Key, Errors: g.Select(row => AsDouble(row["test_relative_l2"])).Where(double.IsFinite).ToArray()))
            .Where(p => p.Errors.Length > 0).ToArray();
        return new Series(init, points.Select(p => p.Depth).ToArray(), points.Select(p => 100 * p.Errors.Average()).ToArray());
    }

    /// <summary>A number of a task's metrics, or NaN for a non-finite value the task stored as its string ("NaN").</summary>
    private static double AsDouble(object? v) => v switch
    {
        double d => d,
        float f => f,
        int i => i,
        long l => l,
        _ => double.NaN,
    };

    private static double[] Epochs(int n) => Enumerable.Range(1, n).Select(i => (double)i).ToArray();

    /// <summary>Writes &lt;task&gt;-&lt;figure&gt;.png for every figure into <paramref name="outDir"/>; returns each figure with its path.</summary>
    public static List<(Figure Figure, string Path)> Plot(string task, Dictionary<string, object> metrics, string outDir)
    {
        var written = new List<(Figure, string)>();
        foreach (var figure in Figures(task, metrics))
        {
            var path = Path.Combine(outDir, $"{task}-{Safe(figure.Name)}.png");
            // Written beside the target and renamed, as the JSON, so a reader never sees half a file.
            var tmp = Path.Combine(outDir, $".{task}-{Safe(figure.Name)}.{Guid.NewGuid():N}.png");
            try
            {
                Render(figure).SavePng(tmp, Width, Height);
                File.Move(tmp, path, overwrite: true);
            }
            finally
            {
                if (File.Exists(tmp)) File.Delete(tmp);
            }
            written.Add((figure, path));
        }
        return written;
    }

    /// <summary>Size of every figure in pixels.</summary>
    public const int Width = 640, Height = 400;

    /// <summary>
    /// The title and axis labels of <paramref name="figure"/> that run past the edge of the image when it is drawn at
    /// <see cref="Width"/> x <see cref="Height"/>: each is centred on the data area, which a legend beside the plot
    /// narrows, and a label wider than twice the room on either side of that centre is cut off.
    /// </summary>
    public static List<string> OverflowingLabels(Figure figure)
    {
        var plot = Render(figure);
        plot.RenderInMemory(Width, Height);
        var data = plot.RenderManager.LastRender.DataRect;
        using var paint = ScottPlot.Paint.NewDisposablePaint();
        var cut = new List<string>();
        void Check(ScottPlot.LabelStyle label, float centre, float extent)
        {
            float half = label.Measure(paint).Width / 2;
            if (!string.IsNullOrEmpty(label.Text) && (centre - half < 0 || centre + half > extent)) cut.Add(label.Text);
        }
        Check(plot.Axes.Title.Label, data.HorizontalCenter, Width);
        Check(plot.Axes.Bottom.Label, data.HorizontalCenter, Width);
        Check(plot.Axes.Left.Label, data.VerticalCenter, Height);
        return cut;
    }

    private static ScottPlot.Plot Render(Figure figure)
    {
        var plot = new ScottPlot.Plot();
        // A log axis plots log10 of the values with decade ticks labelled by the values themselves.
        bool log = figure.LogY && figure.Series.All(s => s.Y.All(v => v > 0 || !double.IsFinite(v)));
        foreach (var full in figure.Series)
        {
            // A diverged run's NaN and infinite points are left out of its plot (the JSON keeps them).
            var s = OnlyFinite(full);
            if (s.X.Length == 0) continue;
            var ys = log ? s.Y.Select(Math.Log10).ToArray() : s.Y;
            var line = plot.Add.Scatter(s.X, ys);
            line.LegendText = s.Label;
            line.MarkerSize = s.X.Length <= 12 ? 6 : 0;
            if (s.YError != null && s.YError.Any(e => e > 0))
            {
                var bars = plot.Add.ErrorBar(s.X, ys, s.YError);
                bars.Color = line.Color;
            }
        }
        if (log)
        {
            var ticks = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = y => Math.Pow(10, y).ToString("G3", CultureInfo.InvariantCulture),
            };
            plot.Axes.Left.TickGenerator = ticks;
        }
        if (figure.XLabel == "epoch") plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.Title(figure.Title);
        plot.XLabel(figure.XLabel);
        plot.YLabel(log ? figure.YLabel + " (log scale)" : figure.YLabel);
        // Many series: the legend goes beside the plot, where it hides no curve.
        if (figure.Series.Count > 3) plot.ShowLegend(ScottPlot.Edge.Right);
        else if (figure.Series.Count > 1) plot.ShowLegend();
        return plot;
    }

    /// <summary>The points of <paramref name="series"/> whose value is finite.</summary>
    private static Series OnlyFinite(Series series)
    {
        if (series.Y.All(double.IsFinite)) return series;
        var keep = Enumerable.Range(0, series.Y.Length).Where(i => double.IsFinite(series.Y[i])).ToArray();
        return series with
        {
            X = keep.Select(i => series.X[i]).ToArray(),
            Y = keep.Select(i => series.Y[i]).ToArray(),
            YError = series.YError == null ? null : keep.Select(i => series.YError[i]).ToArray(),
        };
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

    /// <summary>One scalar formatted for display (null for values that are not scalars).</summary>
    public static string? Format(object? v) => v switch
    {
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        float f => f.ToString("G6", CultureInfo.InvariantCulture),
        IFormattable n and not IEnumerable => n.ToString(null, CultureInfo.InvariantCulture),
        string str => str,
        bool b => b ? "true" : "false",
        _ => null,
    };

    /// <summary>The scalar metrics (numbers, strings, booleans) in order, formatted for display.</summary>
    public static List<(string Name, string Value)> Scalars(Dictionary<string, object> metrics)
    {
        var rows = new List<(string, string)>();
        foreach (var (k, v) in metrics)
            if (Format(v) is { } s) rows.Add((k, s));
        return rows;
    }

    /// <summary>
    /// Tables nested in the metrics (gr-diagonal's "runs", mixer-width's "rows"): a name, the column names and the rows'
    /// formatted cells (first column: the run's name when the table is a dictionary of runs).
    /// </summary>
    public static List<(string Name, string[] Columns, List<string[]> Rows)> Tables(Dictionary<string, object> metrics)
    {
        var tables = new List<(string, string[], List<string[]>)>();
        foreach (var (name, value) in metrics)
        {
            List<(string? Key, Dictionary<string, object> Row)>? rows = value switch
            {
                List<Dictionary<string, object>> list => list.Select(d => ((string?)null, d)).ToList(),
                Dictionary<string, object> runs when runs.Values.All(v => v is Dictionary<string, object>) && runs.Count > 0 =>
                    runs.Select(kv => ((string?)kv.Key, (Dictionary<string, object>)kv.Value)).ToList(),
                _ => null,
            };
            if (rows == null || rows.Count == 0) continue;
            var columns = rows.SelectMany(r => r.Row.Where(kv => Format(kv.Value) != null).Select(kv => kv.Key)).Distinct().ToList();
            bool named = rows[0].Key != null;
            var cells = rows.Select(r => (named ? new[] { r.Key! } : []).Concat(columns.Select(c => r.Row.TryGetValue(c, out var v) ? Format(v) ?? "" : "")).ToArray()).ToList();
            tables.Add((name, (named ? new[] { "run" } : []).Concat(columns).ToArray(), cells));
        }
        return tables;
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
