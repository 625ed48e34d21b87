using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Engine.Samples;

/// <summary>What kind of value an option takes; decides its parsing, its range check and its help name.</summary>
public enum OptionKind
{
    /// <summary>A switch: <c>--name</c>, or <c>--name true|false</c>.</summary>
    Flag,
    /// <summary>An integer in [Min, Max].</summary>
    Int,
    /// <summary>A finite number in [Min, Max] (or (Min, Max] when the minimum is exclusive).</summary>
    Float,
    /// <summary>Comma-separated finite numbers, each in the range.</summary>
    FloatList,
    /// <summary>Free text, or one of <see cref="OptionSpec.Choices"/> (case-insensitive).</summary>
    Text,
    /// <summary>Comma-separated <see cref="OptionSpec.Choices"/> (case-insensitive), each at most once.</summary>
    ChoiceList,
}

/// <summary>
/// One declared command-line option of a task: <c>--Name</c>, what it means, and the values it accepts. Build specs
/// with <see cref="Opt"/>; <see cref="CommandLine"/> turns them into System.CommandLine options with help text and a
/// validator, so a value out of range is a usage error before the task starts.
/// </summary>
/// <param name="Name">The option without its leading dashes, e.g. <c>epochs</c>.</param>
/// <param name="Description">One line for the help.</param>
/// <param name="Kind">The value kind.</param>
/// <param name="Min">Smallest accepted value of a numeric option.</param>
/// <param name="Max">Largest accepted value of a numeric option.</param>
/// <param name="MinExclusive">True when <paramref name="Min"/> itself is refused (e.g. a learning rate &gt; 0).</param>
/// <param name="Choices">The accepted values of a text option, or null for free text.</param>
/// <param name="Default">The default as the help shows it (e.g. <c>20, --quick 3</c>), or null.</param>
public sealed record OptionSpec(string Name, string Description, OptionKind Kind, double Min = double.NegativeInfinity,
    double Max = double.PositiveInfinity, bool MinExclusive = false, IReadOnlyList<string>? Choices = null, string? Default = null)
{
    /// <summary>The placeholder the help shows after <c>--Name</c>.</summary>
    public string HelpName => Kind switch
    {
        OptionKind.Flag => "true|false",
        OptionKind.Int => "N",
        OptionKind.Float => "X",
        OptionKind.FloatList => "X,X,...",
        OptionKind.ChoiceList => string.Join('|', Choices ?? []) + "[,...]",
        _ => Choices is { Count: > 0 } c ? string.Join('|', c) : "VALUE",
    };

    /// <summary>
    /// Checks one value given on the command line; returns null when it is acceptable, else the message (naming
    /// <paramref name="task"/>, the option, the accepted range and the value given).
    /// </summary>
    public string? Check(string task, string value)
    {
        switch (Kind)
        {
            case OptionKind.Flag:
                return bool.TryParse(value, out _) ? null : $"{task}: --{Name} takes true or false, got '{value}'.";
            case OptionKind.Int:
                if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i))
                {
                    // A whole number beyond 32 bits: name the largest value accepted, which RangeText leaves implicit.
                    if (System.Numerics.BigInteger.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var big))
                    {
                        string bound = big > 0 ? $"at most {Math.Min(Max, int.MaxValue).ToString("F0", CultureInfo.InvariantCulture)}"
                            : $"at least {Math.Max(Min, int.MinValue).ToString("F0", CultureInfo.InvariantCulture)}";
                        return $"{task}: --{Name} must be an integer{RangeText()}, {bound}, got {value}.";
                    }
                    return $"{task}: --{Name} must be an integer{RangeText()}, got '{value}'.";
                }
                return InRange(i) ? null : $"{task}: --{Name} must be an integer{RangeText()}, got {value}.";
            case OptionKind.Float:
                return CheckNumber(task, value);
            case OptionKind.FloatList:
                var parts = value.Split(',', StringSplitOptions.TrimEntries);
                return parts.Length == 0 ? $"{task}: --{Name} needs at least one number." : parts.Select(p => CheckNumber(task, p)).FirstOrDefault(m => m != null);
            case OptionKind.ChoiceList:
                var names = value.Split(',', StringSplitOptions.TrimEntries);
                if (names.FirstOrDefault(n => !(Choices ?? []).Contains(n, StringComparer.OrdinalIgnoreCase)) is { } unknown)
                    return $"{task}: unknown --{Name} '{unknown}' in '{value}'; choices: {string.Join(", ", Choices ?? [])}, or a comma list of them.";
                return names.Distinct(StringComparer.OrdinalIgnoreCase).Count() == names.Length ? null : $"{task}: --{Name} '{value}' names a value twice.";
            default:
                if (Choices is not { Count: > 0 } choices || choices.Contains(value, StringComparer.OrdinalIgnoreCase)) return null;
                return $"{task}: unknown --{Name} '{value}'; choices: {string.Join(", ", choices)}.";
        }
    }

    private string? CheckNumber(string task, string value)
    {
        bool parsed = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double x);
        return parsed && double.IsFinite(x) && InRange(x) ? null : $"{task}: --{Name} must be a finite number{RangeText()}, got '{value}'.";
    }

    private bool InRange(double x) => (MinExclusive ? x > Min : x >= Min) && x <= Max;

    private string RangeText()
    {
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        bool hasMin = !double.IsNegativeInfinity(Min) && Min > int.MinValue, hasMax = !double.IsPositiveInfinity(Max) && Max < int.MaxValue;
        if (hasMin && hasMax) return $" in {(MinExclusive ? "(" : "[")}{F(Min)}, {F(Max)}]";
        if (hasMin) return MinExclusive ? $" > {F(Min)}" : $" >= {F(Min)}";
        return hasMax ? $" <= {F(Max)}" : "";
    }
}

/// <summary>
/// Short constructors for <see cref="OptionSpec"/>: every numeric option states its range, so a typo such as
/// <c>--epochs -1</c> is refused with a message instead of silently doing nothing.
/// </summary>
public static class Opt
{
    /// <summary>A switch (<c>--name</c> or <c>--name true|false</c>).</summary>
    public static OptionSpec Flag(string name, string description, string? @default = null) =>
        new(name, description, OptionKind.Flag, Default: @default);

    /// <summary>An integer option in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static OptionSpec Int(string name, string description, int min, int max = int.MaxValue, string? @default = null) =>
        new(name, description, OptionKind.Int, min, max, Default: @default);

    /// <summary>A finite number in [<paramref name="min"/>, <paramref name="max"/>] (or above min with <paramref name="minExclusive"/>).</summary>
    public static OptionSpec Float(string name, string description, double min, double max = double.PositiveInfinity, bool minExclusive = false, string? @default = null) =>
        new(name, description, OptionKind.Float, min, max, minExclusive, Default: @default);

    /// <summary>Comma-separated finite numbers, each in the range.</summary>
    public static OptionSpec Floats(string name, string description, double min, double max = double.PositiveInfinity, bool minExclusive = false, string? @default = null) =>
        new(name, description, OptionKind.FloatList, min, max, minExclusive, Default: @default);

    /// <summary>Free text (a path, a list the task checks itself).</summary>
    public static OptionSpec Text(string name, string description, string? @default = null) =>
        new(name, description, OptionKind.Text, Default: @default);

    /// <summary>One of <paramref name="choices"/> (case-insensitive).</summary>
    public static OptionSpec Choice(string name, string description, IReadOnlyList<string> choices, string? @default = null) =>
        new(name, description, OptionKind.Text, Choices: choices, Default: @default);

    /// <summary>One or several of <paramref name="choices"/>, comma-separated (case-insensitive, none twice).</summary>
    public static OptionSpec Choices(string name, string description, IReadOnlyList<string> choices, string? @default = null) =>
        new(name, description, OptionKind.ChoiceList, Choices: choices, Default: @default);
}

/// <summary>
/// The options one task was given, read by name with the task's fallback: <c>o.Int("epochs", o.Quick ? 3 : 20)</c>.
/// Only declared options reach a task (an undeclared one is a usage error when parsing), and reading a name the task
/// did not declare is a programming error that throws at once, so a declaration cannot silently drift from the code.
/// </summary>
public sealed class Options
{
    private readonly Dictionary<string, string> values;
    private readonly HashSet<string> declared;

    /// <summary>The task these options were parsed for (used in messages).</summary>
    public string Task { get; }

    /// <summary>Options of <paramref name="task"/>: the given values (already checked) and every declared name.</summary>
    public Options(string task, IReadOnlyDictionary<string, string> given, IEnumerable<string> declaredNames)
    {
        ArgumentNullException.ThrowIfNull(given);
        Task = task;
        values = new Dictionary<string, string>(given, StringComparer.Ordinal);
        declared = new HashSet<string>(declaredNames, StringComparer.Ordinal);
        foreach (var name in values.Keys)
            if (!declared.Contains(name)) throw new ArgumentException($"{task}: --{name} is not an option of this task.");
    }

    /// <summary>A string option (choices come back as given; compare case-insensitively).</summary>
    public string Get(string name, string fallback) => values.TryGetValue(Declared(name), out var v) ? v : fallback;

    /// <summary>True if the option was given.</summary>
    public bool Has(string name) => values.ContainsKey(Declared(name));

    /// <summary>True if the flag was given (as --name, or --name true).</summary>
    public bool Flag(string name) => values.TryGetValue(Declared(name), out var v) && bool.Parse(v);

    /// <summary>True under --quick: each task's tiny settings (explicit options still win).</summary>
    public bool Quick => Flag("quick");

    /// <summary>An integer option.</summary>
    public int Int(string name, int fallback) =>
        values.TryGetValue(Declared(name), out var v) ? int.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture) : fallback;

    /// <summary>A float option.</summary>
    public float Float(string name, float fallback) =>
        values.TryGetValue(Declared(name), out var v) ? float.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture) : fallback;

    /// <summary>A list of floats (<see cref="OptionKind.FloatList"/>), or null when not given.</summary>
    public float[]? Floats(string name) => values.TryGetValue(Declared(name), out var v)
        ? v.Split(',', StringSplitOptions.TrimEntries).Select(s => float.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray()
        : null;

    /// <summary>The names that were given.</summary>
    public IEnumerable<string> Names => values.Keys;

    private string Declared(string name) => declared.Contains(name)
        ? name
        : throw new InvalidOperationException($"{Task} reads --{name} but does not declare it; add it to the task's options.");
}
