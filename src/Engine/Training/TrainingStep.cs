using System.Diagnostics;
using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Training;

/// <summary>What one training step cost the device, read from <see cref="Device.Counters"/> around the call.</summary>
/// <param name="Launches">Kernel launches (on the CPU set one per kernel-set entry point called).</param>
/// <param name="Allocations">Device buffers handed out (pool hits included).</param>
public sealed record StepCounts(long Launches, long Allocations);

/// <summary>How a <see cref="TrainingStep"/> ran, for a task's report.</summary>
/// <param name="CompileRequested">True when the step was built to be compiled.</param>
/// <param name="Compiled">True when at least one variant of the step was compiled and replayed (false when eager, or
/// when every variant fell back to eager).</param>
/// <param name="Eager">Counts of an eager step: the second call (the first one creates lazily made state such as
/// optimizer moments); when compiling, that call is the compiler's first traced call, which runs eagerly. Null when
/// fewer than two steps ran.</param>
/// <param name="Replayed">Counts of the first replay of a compiled graph, or null when none ran.</param>
/// <param name="Graph">The sizes of that replay's graph, or null.</param>
/// <param name="Variants">Variants in the compiler's cache at the end (one per batch shape seen, say).</param>
/// <param name="Fallbacks">The compiler's fallback messages (each naming the variant and why it runs eagerly).</param>
/// <param name="Messages">Every message of the compiler (fallbacks, recompilations, evictions).</param>
/// <param name="MeanStepSeconds">Mean wall time of the steady-state steps: every eager call after the first when not
/// compiling, every replay when compiling; null when there was none. Host-side work between steps is not included.</param>
/// <param name="TimedSteps">How many steps that mean is over.</param>
/// <param name="Retraces">Compiled variants traced again because a buffer their graph uses was freed (see
/// <see cref="CompiledFunction.Retraces"/>); 0 when eager.</param>
public sealed record StepReport(bool CompileRequested, bool Compiled, StepCounts? Eager, StepCounts? Replayed, CompiledGraphStats? Graph,
    int Variants, IReadOnlyList<string> Fallbacks, IReadOnlyList<string> Messages, double? MeanStepSeconds, int TimedSteps, int Retraces = 0);

/// <summary>
/// One training step (a function of the batch that zeroes the gradients, runs forward and backward, steps the
/// optimizer and returns a tensor to report) run either eagerly or through <see cref="Compiler.Compile{T1, T2}"/>, with
/// the device counts of an eager step and of a replayed one, so a training loop serves both and can say what
/// compiling saved.
/// </summary>
/// <remarks>
/// The tensor <see cref="Run"/> returns is, when compiled, a view the next call overwrites: read it before the next
/// step. A step the compiler cannot capture runs eagerly (the compiler's fallback) and <see cref="Report"/> says so with
/// the reason; the compiler's messages also go to the log given at construction.
/// </remarks>
public sealed class TrainingStep : IDisposable
{
    private readonly Func<object[], Tensor> eager;
    private readonly CompiledFunction? compiled;
    private int calls, timedSteps;
    private double timedSeconds;
    private StepCounts? eagerCounts, replayedCounts;
    private CompiledGraphStats? graph;

    private TrainingStep(Func<object[], Tensor> eager, CompiledFunction? compiled)
    {
        this.eager = eager;
        this.compiled = compiled;
    }

    /// <summary>A step of one tensor (a batch of inputs), compiled when <paramref name="compile"/>; compiler messages go to <paramref name="log"/>.</summary>
    public static TrainingStep Create(Func<Tensor, Tensor> step, bool compile, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(step);
        return new TrainingStep(a => step((Tensor)a[0]), compile ? Compiler.Compile(step, Options(log)) : null);
    }

    /// <summary>
    /// A step of inputs and labels (an <see cref="IndexTensor"/>) or targets (a <see cref="Tensor"/>), compiled when
    /// <paramref name="compile"/>; compiler messages go to <paramref name="log"/>.
    /// </summary>
    public static TrainingStep Create<TLabels>(Func<Tensor, TLabels, Tensor> step, bool compile, TextWriter? log = null) where TLabels : class
    {
        ArgumentNullException.ThrowIfNull(step);
        return new TrainingStep(a => step((Tensor)a[0], (TLabels)a[1]), compile ? Compiler.Compile(step, Options(log)) : null);
    }

    private static CompileOptions Options(TextWriter? log) => new() { Log = log };

    /// <summary>True when the step was built to be compiled.</summary>
    public bool CompileRequested => compiled != null;

    /// <summary>
    /// Runs one step on the batch (<paramref name="args"/>: the inputs, then the labels or targets when the step takes
    /// them) and counts its launches and allocations on the inputs' device. Returns the step's tensor.
    /// </summary>
    /// <exception cref="ArgumentException">The first argument is not a tensor.</exception>
    public Tensor Run(params object[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is not Tensor x)
            throw new ArgumentException("TrainingStep.Run: the first argument must be the batch's input tensor.", nameof(args));
        var counters = x.Device.Counters;
        long eagerBefore = compiled?.EagerCalls ?? 0, replaysBefore = compiled?.Replays ?? 0;
        var before = counters.Snapshot();
        long start = Stopwatch.GetTimestamp();
        var result = compiled == null ? eager(args) : compiled.Call(args);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var used = counters.Snapshot().Minus(before);
        calls++;
        var counts = new StepCounts(used.KernelLaunches, used.Allocations);
        bool replayed = compiled != null && compiled.Replays > replaysBefore;
        if (compiled == null || compiled.EagerCalls > eagerBefore)
        {
            if (calls >= 2) eagerCounts ??= counts;
        }
        else if (replayed && replayedCounts == null)
        {
            replayedCounts = counts;
            graph = compiled!.LastGraph;
        }
        if (compiled == null ? calls >= 2 : replayed)
        {
            timedSteps++;
            timedSeconds += seconds;
        }
        return result;
    }

    /// <summary>How the step ran so far: compiled or not, the counts, the variants and the compiler's messages.</summary>
    public StepReport Report()
    {
        var messages = compiled?.Messages.ToArray() ?? [];
        return new StepReport(CompileRequested, compiled is { Compilations: > 0 } && replayedCounts != null, eagerCounts, replayedCounts, graph,
            compiled?.VariantCount ?? 0, messages.Where(m => m.Contains("falls back", StringComparison.Ordinal)).ToArray(), messages,
            timedSteps == 0 ? null : timedSeconds / timedSteps, timedSteps, compiled?.Retraces ?? 0);
    }

    /// <summary>Frees the compiled graphs (their memory slots).</summary>
    public void Dispose() => compiled?.Dispose();
}
