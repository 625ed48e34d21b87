using Engine.Training;

namespace Engine.Samples;

/// <summary>
/// <c>--compile</c>: the training tasks run their training steps through the compiler (<see cref="TrainingStep"/>)
/// and write how that went: <c>"compiled": true|false</c> and <c>"step_counts"</c> with the kernel launches and device
/// allocations of an eager step and of a replayed one of the same model, the variants compiled and the fallback
/// reason, if any. Without the flag the tasks run eagerly as before and write the eager counts.
/// </summary>
public static class CompiledSteps
{
    /// <summary>What the compiled runs cover, written beside the counts.</summary>
    public const string Scope = "training steps (zero-grad, forward, backward, optimizer update) are compiled; evaluation passes run eagerly";

    /// <summary><c>--compile</c>, with what it does not apply to in <paramref name="exceptions"/> (or nothing).</summary>
    public static OptionSpec Option(string exceptions = "") => Opt.Flag("compile",
        "compile each training step (capture once, replay; see README) and report eager vs compiled launches and allocations" + exceptions, "false");

    /// <summary>True under <c>--compile</c>.</summary>
    /// <exception cref="ArgumentException">--compile with --distributed (the data-parallel all-reduce is not captured).</exception>
    public static bool Requested(Options o, string task)
    {
        ArgumentNullException.ThrowIfNull(o);
        bool compile = o.Flag("compile");
        if (compile && o.Names.Contains(DataParallel.Option.Name) && o.Flag(DataParallel.Option.Name))
            throw new ArgumentException($"{task}: --compile and --distributed together are not supported (the gradient all-reduce is not captured by the compiler).");
        return compile;
    }

    /// <summary>Adds <c>compiled</c> and <c>step_counts</c> (see <see cref="Counts"/>), named with <paramref name="prefix"/>, to <paramref name="metrics"/>.</summary>
    public static void Add(Dictionary<string, object> metrics, StepReport report, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(report);
        metrics[prefix + "compiled"] = report.Compiled;
        metrics[prefix + "step_counts"] = Counts(report);
        if (prefix.Length == 0 && report.CompileRequested) metrics["compile_scope"] = Scope;
    }

    /// <summary>
    /// For a task that trains one model per table row (each row filled by <see cref="AddToRow"/>): <c>step_counts</c>
    /// of the first row's run (<paramref name="first"/>), and <c>compiled</c> true only when every row's step was.
    /// </summary>
    public static void AddForRows(Dictionary<string, object> metrics, StepReport first, IEnumerable<Dictionary<string, object>> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        Add(metrics, first);
        metrics["compiled"] = rows.All(r => r.TryGetValue("compiled", out var c) && c is true);
        metrics["step_counts_of"] = "the first row's run; every row has its own counts";
    }

    /// <summary>
    /// <c>{"eager": {"launches", "allocations"}, "compiled": {"launches", "allocations", "variants", "retraces", "fallback", ...}}</c>:
    /// the eager step counted on the second step (for a compiled run, the compiler's first traced call, which runs
    /// eagerly), the compiled one on the first replay; "compiled" is null when --compile was not given, and its
    /// counts are null with the reason in "fallback" when no step was replayed. "mean_step_ms" is the mean wall time
    /// of the steady-state steps of the run (eager: every step after the first; compiled: every replay).
    /// </summary>
    public static Dictionary<string, object?> Counts(StepReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var eager = Of(report.Eager);
        if (eager != null && !report.CompileRequested) eager["mean_step_ms"] = Milliseconds(report.MeanStepSeconds);
        return new Dictionary<string, object?>
        {
            ["eager"] = eager,
            ["compiled"] = report.CompileRequested ? Compiled(report) : null,
        };
    }

    /// <summary>The counts flattened for a table row: eager_launches, eager_allocations, compiled_launches, compiled_allocations, compiled.</summary>
    public static void AddToRow(Dictionary<string, object> row, StepReport report)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(report);
        row["compiled"] = report.Compiled;
        if (report.Eager is { } e)
        {
            row["eager_launches"] = e.Launches;
            row["eager_allocations"] = e.Allocations;
        }
        if (report.Replayed is { } c)
        {
            row["compiled_launches"] = c.Launches;
            row["compiled_allocations"] = c.Allocations;
        }
        if (report.CompileRequested && Fallback(report) is { } why) row["compile_fallback"] = why;
    }

    /// <summary>One line for the log: eager and compiled counts, or why nothing was compiled.</summary>
    public static string Describe(StepReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        string eager = report.Eager is { } e ? $"eager step {e.Launches} launches, {e.Allocations} allocations" : "eager step not counted";
        string time = report.MeanStepSeconds is { } t ? $", mean {t * 1000:G3} ms over {report.TimedSteps} {(report.CompileRequested ? "replays" : "steps")}" : "";
        if (!report.CompileRequested) return eager + time;
        return report.Replayed is { } c
            ? $"{eager}; compiled step {c.Launches} launches, {c.Allocations} allocations ({report.Variants} variant(s){time}){(Fallback(report) is { } f ? "; " + f : "")}"
            : $"{eager}; not compiled: {Fallback(report)}";
    }

    private static Dictionary<string, object?> Compiled(StepReport r) => new()
    {
        ["launches"] = r.Replayed?.Launches,
        ["allocations"] = r.Replayed?.Allocations,
        ["variants"] = r.Variants,
        ["retraces"] = r.Retraces,
        ["fallback"] = Fallback(r),
        ["mean_step_ms"] = Milliseconds(r.MeanStepSeconds),
        ["fused_groups"] = r.Graph?.FusedGroups,
        ["fused_calls"] = r.Graph?.FusedCalls,
        ["copies_removed"] = r.Graph?.CopiesRemoved,
        ["bias_epilogues"] = r.Graph?.BiasEpilogues,
        ["residual_epilogues"] = r.Graph?.ResidualEpilogues,
        ["activation_epilogues"] = r.Graph?.ActivationEpilogues,
        ["reduction_epilogues"] = r.Graph?.ReductionEpilogues,
        ["reductions_paired"] = r.Graph?.ReductionsPaired,
        ["pairs_beyond_reach"] = r.Graph?.PairsBeyondReach,
        ["reductions_mapped"] = r.Graph?.ReductionsMapped,
        ["negations_moved"] = r.Graph?.NegationsMoved,
        ["spn_product_sums"] = r.Graph?.SpnProductSums,
        ["zero_fills_folded"] = r.Graph?.ZeroFillsFolded,
        ["reduction_maps_batched"] = r.Graph?.ReductionMapsBatched,
        ["softmaxes_batched"] = r.Graph?.SoftmaxesBatched,
        ["tree_epilogues"] = r.Graph?.TreeEpilogues,
        ["loss_gradients_fused"] = r.Graph?.LossGradientsFused,
        ["permutes_folded"] = r.Graph?.PermutesFolded,
        ["calls_recomputed"] = r.Graph?.Recomputed,
        ["calls_folded"] = r.Graph?.CallsFolded,
        ["optimizer_calls_merged"] = r.Graph?.UpdatesMerged,
        ["gemm_gflop"] = r.Graph is { } g ? g.GemmFlops / 1e9 : null,
        ["memory_slots"] = r.Graph?.Slots,
        ["temporaries"] = r.Graph?.Temporaries,
        ["kernel_loads"] = r.Graph?.KernelLoads,
        ["kernel_load_ms"] = r.Graph?.KernelLoadMilliseconds,
    };

    /// <summary>Why a step ran eagerly (the compiler's fallback messages), or why nothing was replayed; null when all went well.</summary>
    private static string? Fallback(StepReport r)
    {
        if (r.Fallbacks.Count > 0) return string.Join(" ", r.Fallbacks);
        return r.Replayed == null ? "no step was replayed: a variant (one per batch shape) runs eagerly for its first 3 calls and replays from its 4th" : null;
    }

    private static Dictionary<string, object?>? Of(StepCounts? c) => c == null ? null : new() { ["launches"] = c.Launches, ["allocations"] = c.Allocations };

    private static double? Milliseconds(double? seconds) => seconds * 1000;
}
