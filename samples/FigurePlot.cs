namespace Engine.Samples;

/// <summary>A named series of points for <see cref="FigurePlot.Save"/>.</summary>
/// <param name="Label">Legend text.</param>
/// <param name="X">Abscissae.</param>
/// <param name="Y">Ordinates (same length).</param>
/// <param name="Markers">Draw markers only, no line (for per-seed points).</param>
public sealed record PlotSeries(string Label, double[] X, double[] Y, bool Markers = false);

/// <summary>
/// Figures that are not per-epoch curves (error against depth, accuracy against width, ...): one PNG with several
/// series, written beside its target and renamed like the tasks' other outputs.
/// </summary>
public static class FigurePlot
{
    /// <summary>Writes <paramref name="path"/>; with <paramref name="log10Y"/> the ordinates are plotted as log10 (the label says so).</summary>
    public static string Save(string path, string title, string xLabel, string yLabel, IEnumerable<PlotSeries> series, bool log10Y = false)
    {
        var plot = new ScottPlot.Plot();
        foreach (var s in series)
        {
            var y = log10Y ? s.Y.Select(v => Math.Log10(Math.Max(v, 1e-300))).ToArray() : s.Y;
            var sc = plot.Add.Scatter(s.X, y);
            sc.LegendText = s.Label;
            if (s.Markers) sc.LineWidth = 0;
        }
        plot.ShowLegend();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(log10Y ? $"log10 {yLabel}" : yLabel);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var tmp = Path.Combine(dir, $".{Path.GetFileNameWithoutExtension(path)}.{Guid.NewGuid():N}.png");
        try
        {
            plot.SavePng(tmp, 720, 440);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return path;
    }
}
