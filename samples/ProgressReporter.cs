using System.Diagnostics;
using System.Text;
using Spectre.Console;

namespace Engine.Samples;

/// <summary>
/// Progress of long work (training steps). On an interactive terminal (the program's log is a
/// <see cref="ConsoleLog"/>) it draws Spectre.Console progress bars, one per <see cref="Start"/>, with the task's log
/// lines printed above them; otherwise (CI, a file, a test's StringWriter) it writes plain lines at 10% steps, at most
/// one per 2 s. Usage: <c>using var p = ProgressReporter.Create(log); p.Start("mlp", steps); ... p.Advance();</c>
/// </summary>
public sealed class ProgressReporter : IDisposable
{
    private readonly TextWriter log;
    private readonly bool interactive;
    private readonly object gate = new();
    private Thread? renderer;
    private ProgressContext? context;
    private ProgressTask? current;
    private readonly List<ProgressTask> tasks = new();
    private readonly ManualResetEventSlim contextReady = new();
    private readonly ManualResetEventSlim finished = new();
    private string label = "";
    private long total, done;
    private int lastDecile;
    private readonly Stopwatch clock = new();

    private readonly TimeSpan minInterval;
    private TimeSpan lastLine;

    private ProgressReporter(TextWriter log, bool interactive, TimeSpan minInterval)
    {
        this.log = log;
        this.interactive = interactive;
        this.minInterval = minInterval;
    }

    /// <summary>
    /// A reporter writing to <paramref name="log"/>: bars when it is the interactive console, lines otherwise. Plain
    /// lines come at 10% steps but no more often than <paramref name="minInterval"/> (default 2 s), so short work
    /// stays quiet in CI logs and long work still shows it is alive.
    /// </summary>
    public static ProgressReporter Create(TextWriter log, TimeSpan? minInterval = null) =>
        new(log, log is ConsoleLog, minInterval ?? TimeSpan.FromSeconds(2));

    /// <summary>Begins a new piece of work of <paramref name="totalSteps"/> steps (the previous one, if any, is complete).</summary>
    public void Start(string name, long totalSteps)
    {
        lock (gate)
        {
            label = name;
            total = Math.Max(1, totalSteps);
            done = 0;
            lastDecile = 0;
            lastLine = TimeSpan.Zero;
            clock.Restart();
        }
        if (!interactive) return;
        EnsureRenderer();
        if (current != null) current.Value = current.MaxValue;
        current = context!.AddTask(Markup.Escape(name), maxValue: total);
        lock (tasks) tasks.Add(current);
    }

    /// <summary>Marks <paramref name="steps"/> more steps done.</summary>
    public void Advance(long steps = 1)
    {
        if (interactive)
        {
            current?.Increment(steps);
            return;
        }
        string? line = null;
        lock (gate)
        {
            if (total == 0) return;
            done = Math.Min(total, done + steps);
            int decile = (int)(done * 10 / total);
            if (decile > lastDecile && clock.Elapsed - lastLine >= minInterval)
            {
                lastDecile = decile;
                lastLine = clock.Elapsed;
                line = $"[progress] {label}: {done}/{total} steps ({decile * 10}%, {clock.Elapsed.TotalSeconds:F1} s)";
            }
        }
        if (line != null) log.WriteLine(line);
    }

    private void EnsureRenderer()
    {
        if (renderer != null) return;
        // Spectre's progress display blocks its caller until the work is over, so it runs on its own thread and
        // the work reports to it; log lines go through AnsiConsole (ConsoleLog) and are drawn above the bars.
        renderer = new Thread(() =>
        {
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    context = ctx;
                    contextReady.Set();
                    while (!finished.Wait(100)) ctx.Refresh();
                    lock (tasks)
                        foreach (var t in tasks) t.Value = t.MaxValue;
                    ctx.Refresh();
                });
        }) { IsBackground = true, Name = "progress" };
        renderer.Start();
        contextReady.Wait();
    }

    /// <summary>Completes the bars and stops drawing.</summary>
    public void Dispose()
    {
        finished.Set();
        renderer?.Join();
        contextReady.Dispose();
        finished.Dispose();
    }
}

/// <summary>
/// The program's log on an interactive terminal: lines go through Spectre.Console, so they print above live progress
/// bars instead of breaking them.
/// </summary>
public sealed class ConsoleLog : TextWriter
{
    private readonly StringBuilder pending = new();

    /// <inheritdoc />
    public override Encoding Encoding => Encoding.UTF8;

    /// <summary>True when standard output is a terminal that can draw live progress (not redirected, as in CI).</summary>
    public static bool IsInteractive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <inheritdoc />
    public override void Write(char value)
    {
        lock (pending)
        {
            if (value == '\n')
            {
                AnsiConsole.WriteLine(pending.ToString().TrimEnd('\r'));
                pending.Clear();
            }
            else pending.Append(value);
        }
    }

    /// <inheritdoc />
    public override void WriteLine(string? value)
    {
        lock (pending)
        {
            AnsiConsole.WriteLine(pending.ToString() + value);
            pending.Clear();
        }
    }
}
