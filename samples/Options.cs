using System.Globalization;

namespace Engine.Samples;

/// <summary>Command-line options shared by every task: --name value pairs and --flags.</summary>
public sealed class Options
{
    private readonly Dictionary<string, string> values = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Parses arguments after the task name.</summary>
    public Options(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{a}' (options look like --name value).");
            var name = a[2..];
            var eq = name.IndexOf('=');
            if (eq >= 0) values[name[..eq]] = name[(eq + 1)..];
            else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal)) values[name] = list[++i];
            else values[name] = "true";
        }
    }

    /// <summary>A string option.</summary>
    public string Get(string name, string fallback) => values.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>True if the option was given.</summary>
    public bool Has(string name) => values.ContainsKey(name);

    /// <summary>True if the flag was given (as --name, or --name with any value but "false").</summary>
    public bool Flag(string name) => values.TryGetValue(name, out var v) && !v.Equals("false", StringComparison.OrdinalIgnoreCase);

    /// <summary>True under --quick: each task's tiny settings (explicit options still win).</summary>
    public bool Quick => Flag("quick");

    /// <summary>An integer option.</summary>
    public int Int(string name, int fallback) => values.TryGetValue(name, out var v)
        ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var r) ? r : throw new ArgumentException($"--{name}: '{v}' is not an integer.")
        : fallback;

    /// <summary>A float option.</summary>
    public float Float(string name, float fallback) => values.TryGetValue(name, out var v)
        ? float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) ? r : throw new ArgumentException($"--{name}: '{v}' is not a number.")
        : fallback;

    /// <summary>Names that were given but never read, to report typos.</summary>
    public IEnumerable<string> Names => values.Keys;
}
