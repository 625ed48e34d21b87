using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using Engine.Kernels;

namespace Engine.Samples;

/// <summary>
/// A task of the sample program: its name, one line of help, every option it reads (<see cref="Opt"/>), and the code
/// that runs it and returns the metrics written to &lt;task&gt;.json.
/// </summary>
public sealed record SampleTask(string Name, string Help, IReadOnlyList<OptionSpec> OptionSpecs,
    Func<Options, Device, TextWriter, Dictionary<string, object>> Run);

/// <summary>Options shared by several tasks.</summary>
public static class CommonOptions
{
    /// <summary>The device names <c>--device</c> accepts.</summary>
    public static readonly IReadOnlyList<string> Devices = ["cpu", "ilgpu-cpu", "cuda", "opencl"];

    /// <summary>Options of every task: where to write, on which device, and the quick settings.</summary>
    public static readonly IReadOnlyList<OptionSpec> Global =
    [
        Opt.Text("out", "folder for <task>.json and the plots (created if missing)", "out"),
        Opt.Choice("device", "device to run on", Devices, "CUDA > OpenCL > CPU, or ENGINE_DEVICE"),
        Opt.Flag("quick", "tiny settings for a smoke run (all uses them; explicit options still win)"),
    ];

    /// <summary>The optdigits folder option of the tasks that train on it.</summary>
    public static readonly OptionSpec Data = Opt.Text("data", "folder with the data files", "the built-in copy");

    /// <summary><c>--epochs</c> with the task's defaults in the help.</summary>
    public static OptionSpec Epochs(string @default) => Opt.Int("epochs", "training epochs", 1, @default: @default);

    /// <summary><c>--batch-size</c> with the task's default in the help.</summary>
    public static OptionSpec BatchSize(string @default) => Opt.Int("batch-size", "samples per step", 1, @default: @default);

    /// <summary><c>--seed</c> (initialisation and data order).</summary>
    public static readonly OptionSpec Seed = Opt.Int("seed", "random seed of initialisation and data order", 0, @default: "1");
}

/// <summary>
/// The program's command line on System.CommandLine: one subcommand per task with its declared options (plus
/// <c>all</c>, which accepts every task's options and hands each task those it declares), help for the program and
/// each task, range checks from the declarations, and "did you mean" suggestions for unknown options and tasks.
/// </summary>
public sealed class CommandLine
{
    /// <summary>The name of the command that runs every task.</summary>
    public const string All = "all";

    private readonly RootCommand root;
    private readonly Dictionary<string, SampleTask> tasks;
    private readonly Dictionary<string, (Command Command, Dictionary<string, Option> Options)> commands = new(StringComparer.Ordinal);
    private readonly ParserConfiguration parserConfiguration = new() { EnablePosixBundling = false, ResponseFileTokenReplacer = null };

    /// <summary>Declares <paramref name="tasks"/> (and <c>all</c>).</summary>
    /// <exception cref="InvalidOperationException">Two tasks declare one option name with different kinds, or a task declares a name twice.</exception>
    public CommandLine(IReadOnlyList<SampleTask> tasks, string description)
    {
        this.tasks = tasks.ToDictionary(t => t.Name, StringComparer.Ordinal);
        root = new RootCommand(description);
        foreach (var t in tasks) AddCommand(t.Name, t.Help, t.OptionSpecs, validate: true);
        AddCommand(All, "every task in turn, with --quick unless --quick false is given; a failed task does not stop the others",
            Union(tasks), validate: false);
    }

    /// <summary>The declared options of every task, each name once.</summary>
    public static List<OptionSpec> Union(IEnumerable<SampleTask> tasks)
    {
        var byName = new Dictionary<string, OptionSpec>(StringComparer.Ordinal);
        foreach (var t in tasks)
            foreach (var o in t.OptionSpecs)
            {
                if (byName.TryGetValue(o.Name, out var seen) && (seen.Kind == OptionKind.Flag) != (o.Kind == OptionKind.Flag))
                    throw new InvalidOperationException($"--{o.Name} is a flag in one task and takes a value in another ({t.Name}); `all` cannot pass it to both.");
                byName.TryAdd(o.Name, o);
            }
        return [.. byName.Values];
    }

    private void AddCommand(string name, string help, IReadOnlyList<OptionSpec> specs, bool validate)
    {
        var command = new Command(name, help);
        var options = new Dictionary<string, Option>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            if (options.ContainsKey(spec.Name)) throw new InvalidOperationException($"{name} declares --{spec.Name} twice.");
            string description = spec.Default is null ? spec.Description : $"{spec.Description} (default {spec.Default})";
            Option option = spec.Kind == OptionKind.Flag
                ? new Option<bool>("--" + spec.Name) { Description = description, Arity = ArgumentArity.ZeroOrOne, HelpName = spec.HelpName }
                : new Option<string>("--" + spec.Name) { Description = description, Arity = ArgumentArity.ExactlyOne, HelpName = spec.HelpName };
            if (validate && spec.Kind != OptionKind.Flag)
                option.Validators.Add(r =>
                {
                    if (r.Tokens.Count == 1 && spec.Check(name, r.Tokens[0].Value) is { } message) r.AddError(message);
                });
            command.Add(option);
            options[spec.Name] = option;
        }
        root.Add(command);
        commands[name] = (command, options);
    }

    /// <summary>
    /// Parses <paramref name="args"/>: a help request (written to <paramref name="output"/>), usage errors, or the
    /// task to run and its options (for <c>all</c>: every task with the options it declares).
    /// </summary>
    public ParsedCommandLine Parse(IReadOnlyList<string> args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        var result = root.Parse(args, parserConfiguration);
        if (result.Action is HelpAction help)
        {
            help.MaxWidth = 120;
            result.Invoke(new InvocationConfiguration { Output = output, Error = output });
            return new ParsedCommandLine(true, [], null, []);
        }
        string? name = result.CommandResult.Command == root ? null : result.CommandResult.Command.Name;
        var errors = Errors(result, name);
        if (errors.Count > 0 || name == null) return new ParsedCommandLine(false, errors.Count > 0 ? errors : [NoTaskMessage()], name, []);

        var given = Given(result, commands[name].Options);
        if (name != All) return new ParsedCommandLine(false, [], name, [(tasks[name], new Options(name, given, tasks[name].OptionSpecs.Select(o => o.Name)))]);

        // `all`: quick unless asked otherwise; each task gets the given options it declares, checked by its own ranges.
        given.TryAdd("quick", "true");
        var runs = new List<(SampleTask, Options)>();
        foreach (var task in tasks.Values)
        {
            var mine = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var spec in task.OptionSpecs)
                if (given.TryGetValue(spec.Name, out var value))
                {
                    if (spec.Check(task.Name, value) is { } message) errors.Add(message);
                    mine[spec.Name] = value;
                }
            runs.Add((task, new Options(task.Name, mine, task.OptionSpecs.Select(o => o.Name))));
        }
        return new ParsedCommandLine(false, errors, name, errors.Count > 0 ? [] : runs);
    }

    /// <summary>
    /// The options of one task declared by <paramref name="specs"/> as parsed from <paramref name="args"/> (the
    /// arguments after the task name), for code and tests that build an <see cref="Options"/> directly.
    /// </summary>
    /// <exception cref="ArgumentException">A usage error (the messages, one per line).</exception>
    public static Options ParseOptions(string task, IReadOnlyList<OptionSpec> specs, IReadOnlyList<string> args)
    {
        var line = new CommandLine([new SampleTask(task, task, specs, (_, _, _) => [])], task);
        var parsed = line.Parse([task, .. args], TextWriter.Null);
        if (parsed.Errors.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine, parsed.Errors));
        return parsed.Runs.Count == 1 ? parsed.Runs[0].Options : throw new ArgumentException($"{task}: help was asked for; no options to return.");
    }

    private string NoTaskMessage() => $"no task given; tasks: {string.Join(", ", commands.Keys)} (--help for more).";

    private static Dictionary<string, string> Given(ParseResult result, Dictionary<string, Option> options)
    {
        var given = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, option) in options)
            if (result.GetResult(option) is OptionResult { Implicit: false } r)
                given[name] = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "true";
        return given;
    }

    private List<string> Errors(ParseResult result, string? command)
    {
        var messages = new List<string>();
        var unmatched = result.UnmatchedTokens;
        for (int i = 0; i < unmatched.Count; i++)
        {
            string token = unmatched[i];
            if (command == null && i == 0 && !token.StartsWith('-'))
            {
                messages.Add($"unknown task '{token}'{Suggest(token, commands.Keys)}; tasks: {string.Join(", ", commands.Keys)}.");
                return messages;
            }
            if (token.StartsWith('-'))
            {
                var names = command == null ? [] : commands[command].Options.Keys.Select(n => "--" + n).ToList();
                string where = command == null ? "before a task name" : $"for {command}";
                messages.Add($"unknown option '{token}' {where}{Suggest(token.Split('=')[0], names)} ({(command ?? "<task>")} --help lists the options).");
            }
            else if (i == 0 || !unmatched[i - 1].StartsWith('-'))
                messages.Add($"unexpected argument '{token}'{(command == null ? "" : $" for {command}")} (options look like --name value).");
        }
        foreach (var e in result.Errors)
            if (e.SymbolResult is OptionResult or ArgumentResult) messages.Add(e.Message);
            else if (unmatched.Count == 0 && command != null) messages.Add(e.Message);
        return messages;
    }

    /// <summary>"; did you mean X?" for the candidate nearest to <paramref name="token"/>, or "" when none is near.</summary>
    public static string Suggest(string token, IEnumerable<string> candidates)
    {
        var best = candidates.Select(c => (Name: c, Distance: EditDistance(token, c)))
            .Where(c => c.Distance <= Math.Max(2, c.Name.Length / 3) || c.Name.StartsWith(token, StringComparison.Ordinal) && token.Length >= 4)
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault();
        return best.Name is null ? "" : $"; did you mean {best.Name}?";
    }

    /// <summary>Edits (insert, delete, substitute, swap two neighbours) that turn <paramref name="a"/> into <paramref name="b"/>.</summary>
    private static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}

/// <summary>The outcome of <see cref="CommandLine.Parse"/>.</summary>
/// <param name="HelpShown">True when help was asked for and written.</param>
/// <param name="Errors">Usage errors (empty when the command line is valid).</param>
/// <param name="Command">The task or <c>all</c>, or null.</param>
/// <param name="Runs">Each task to run with its options (one for a task, every task for <c>all</c>).</param>
public sealed record ParsedCommandLine(bool HelpShown, IReadOnlyList<string> Errors, string? Command, IReadOnlyList<(SampleTask Task, Options Options)> Runs);
