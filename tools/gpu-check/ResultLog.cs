using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.GpuCheck;

/// <summary>One measured figure: what (kind and name), its value and unit, and a free note.</summary>
public sealed record Result(string Kind, string Name, double Value, string Unit, string? Note = null);

/// <summary>Appends results to a JSON-lines file as they are measured (a cut-off run keeps what it had), and echoes them.</summary>
public sealed class ResultLog(string path)
{
    private readonly object gate = new();

    /// <summary>Failed measurements are logged as NaN, which strict JSON number handling refuses to write.</summary>
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>The file.</summary>
    public string Path { get; } = path;

    /// <summary>Appends one result.</summary>
    public void Add(string kind, string name, double value, string unit, string? note = null)
    {
        var r = new Result(kind, name, value, unit, note);
        lock (gate)
        {
            File.AppendAllText(Path, JsonSerializer.Serialize(r, Json) + "\n");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{kind}] {name}: {value:G4} {unit}{(note is null ? "" : "  (" + note + ")")}"));
        }
    }

    /// <summary>Every result of a JSON-lines file (none when it does not exist; unreadable lines are skipped).</summary>
    public static List<Result> Read(string path)
    {
        var list = new List<Result>();
        if (!File.Exists(path)) return list;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var r = JsonSerializer.Deserialize<Result>(line, Json);
                if (r != null) list.Add(r);
            }
            catch (JsonException)
            {
                // A line cut by a killed run.
            }
        }
        return list;
    }
}
