using System.Globalization;
using System.Net;
using System.Text;

namespace Engine.Samples;

/// <summary>What one task of a run left for the report page.</summary>
/// <param name="Task">The task's name.</param>
/// <param name="Metrics">Its metrics (as written to &lt;task&gt;.json).</param>
/// <param name="Figures">Its figures with the PNG paths they were written to.</param>
/// <param name="Seconds">Wall time of the task.</param>
public sealed record TaskResult(string Task, Dictionary<string, object> Metrics, List<(Figure Figure, string Path)> Figures, double Seconds);

/// <summary>
/// The report page of a run, index.html beside the JSON and PNG files: an overview (each task's headline figure with
/// the README's default-run figure beside it), then per task its summary table, its nested tables (runs, rows) and its
/// figures. Self-contained (inline style, images by relative path) and well-formed XML, so tests can parse it; a small
/// script marks in the body how many images loaded, which a headless browser check reads back.
/// </summary>
public static class HtmlReport
{
    /// <summary>The page for <paramref name="results"/> (built in memory).</summary>
    public static string Build(IReadOnlyList<TaskResult> results, string title, string settings, double totalSeconds)
    {
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
        h.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
        h.Append("<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Style).Append("</style>\n</head>\n");
        h.Append("<body data-images-loaded=\"pending\">\n<header>\n<h1>").Append(E(title)).Append("</h1>\n");
        h.Append("<p class=\"settings\">").Append(E(settings)).Append(" · ")
            .Append(E($"{results.Count} tasks in {totalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s")).Append("</p>\n</header>\n");

        h.Append("<section id=\"overview\">\n<h2>Overview</h2>\n<table class=\"overview\">\n<thead><tr><th>task</th><th>this run</th><th>README, default settings</th><th>time (s)</th></tr></thead>\n<tbody>\n");
        foreach (var r in results)
            h.Append("<tr><td><a href=\"#task-").Append(Id(r.Task)).Append("\">").Append(E(r.Task)).Append("</a></td><td>")
                .Append(E(Headlines.ThisRun(r.Task, r.Metrics))).Append("</td><td>").Append(E(Headlines.ReadmeDefaultRun.GetValueOrDefault(r.Task, "")))
                .Append("</td><td class=\"num\">").Append(r.Seconds.ToString("F1", CultureInfo.InvariantCulture)).Append("</td></tr>\n");
        h.Append("</tbody>\n</table>\n</section>\n");

        foreach (var r in results)
        {
            h.Append("<section class=\"task\" id=\"task-").Append(Id(r.Task)).Append("\">\n<h2>").Append(E(r.Task)).Append("</h2>\n");
            h.Append("<p class=\"headline\">").Append(E(Headlines.ThisRun(r.Task, r.Metrics))).Append("</p>\n");
            h.Append("<div class=\"figures\">\n");
            foreach (var (figure, path) in r.Figures)
                h.Append("<figure><img src=\"").Append(E(Path.GetFileName(path))).Append("\" alt=\"").Append(E(figure.Title))
                    .Append("\" width=\"").Append(TaskReport.Width).Append("\" height=\"").Append(TaskReport.Height).Append("\"/></figure>\n");
            h.Append("</div>\n");
            h.Append("<table class=\"summary\">\n<thead><tr><th>metric</th><th>value</th></tr></thead>\n<tbody>\n");
            foreach (var (k, v) in TaskReport.Scalars(r.Metrics))
                h.Append("<tr><td>").Append(E(k)).Append("</td><td class=\"num\">").Append(E(v)).Append("</td></tr>\n");
            h.Append("</tbody>\n</table>\n");
            foreach (var (name, columns, rows) in TaskReport.Tables(r.Metrics))
            {
                h.Append("<div class=\"wide\"><table class=\"runs\">\n<caption>").Append(E(name)).Append("</caption>\n<thead><tr>");
                foreach (var c in columns) h.Append("<th>").Append(E(c)).Append("</th>");
                h.Append("</tr></thead>\n<tbody>\n");
                foreach (var row in rows)
                {
                    h.Append("<tr>");
                    foreach (var cell in row) h.Append("<td>").Append(E(cell)).Append("</td>");
                    h.Append("</tr>\n");
                }
                h.Append("</tbody>\n</table></div>\n");
            }
            h.Append("</section>\n");
        }
        // CDATA keeps the script's && and > well-formed XML; the // hide the markers from JavaScript.
        h.Append("<script>//<![CDATA[\n").Append(Script).Append("//]]></script>\n</body>\n</html>\n");
        return h.ToString();
    }

    /// <summary>Writes the page to <paramref name="outDir"/>/index.html (atomically); returns its path.</summary>
    public static string Write(string outDir, IReadOnlyList<TaskResult> results, string title, string settings, double totalSeconds)
    {
        var path = Path.Combine(outDir, "index.html");
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, Build(results, title, settings, totalSeconds), new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
        return path;
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static string Id(string task) => new(task.Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray());

    private const string Style = """
        body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1340px; color: #222; }
        header { border-bottom: 2px solid #ccc; margin-bottom: 1rem; }
        h1 { margin: 0.2rem 0; }
        .settings { color: #555; }
        table { border-collapse: collapse; margin: 0.5rem 0 1rem 0; font-size: 0.9rem; }
        th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
        th { background: #f3f3f3; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        caption { text-align: left; font-weight: bold; padding: 0.2rem 0; }
        section.task { border-top: 1px solid #ddd; padding-top: 0.5rem; }
        .headline { font-size: 1.1rem; font-weight: 600; }
        .figures { display: flex; flex-wrap: wrap; gap: 0.8rem; }
        figure { margin: 0; }
        .wide { overflow-x: auto; }
        img { max-width: 100%; height: auto; border: 1px solid #eee; }

        """;

    // Counts the images that decoded (naturalWidth > 0) once the page has loaded; a headless browser's DOM dump shows
    // the result as data-images-loaded="loaded/total" and lists broken ones in data-images-broken.
    private const string Script = """
        window.addEventListener('load', function () {
          var images = Array.prototype.slice.call(document.images);
          var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
          document.body.setAttribute('data-images-loaded', (images.length - broken.length) + '/' + images.length);
          document.body.setAttribute('data-images-broken', broken.map(function (i) { return i.getAttribute('src'); }).join(' '));
        });

        """;
}
