using System.Globalization;
using System.Text;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>How <see cref="Compiler.Compile(Func{Tensor, Tensor}, CompileOptions?)"/> captures and replays a function.</summary>
public sealed record CompileOptions
{
    /// <summary>Throw at a host read inside the function (Item, ToArray, a DeviceScalar read) instead of falling back to eager.</summary>
    public bool Strict { get; init; }

    /// <summary>The most variants (one per distinct guard key) kept; the least recently used is dropped beyond it.</summary>
    public int MaxVariants { get; init; } = 8;

    /// <summary>Fill every memory-plan slot with NaN after its value's last use (a check that no two live values share a slot).</summary>
    public bool PoisonDeadSlots { get; init; }

    /// <summary>
    /// Fuse chains and trees of elementwise calls into one launch each (see <see cref="IFusedElementwiseKernels"/>), with
    /// the reductions around them, and run the horizontal and capability fusions (softmax batches, SPN products with
    /// their sums, batches of reductions read back); on by default.
    /// </summary>
    public bool Fuse { get; init; } = true;

    /// <summary>
    /// Run the graph passes (copy elimination, common-subexpression elimination, bias, residual and activation
    /// epilogues, constant folding, dead-code elimination, multi-tensor optimizer updates, zero fills with the
    /// index-add after them; see
    /// <see cref="CompiledGraphStats"/> for what they removed); on by default.
    /// </summary>
    public bool Optimize { get; init; } = true;

    /// <summary>
    /// Repeat a cheap elementwise call in each fused group that reads its value, where that leaves fewer launches than
    /// storing the value once (see <see cref="CompiledGraphStats.Recomputed"/>); on by default, with
    /// <see cref="Fuse"/> and <see cref="Optimize"/>.
    /// </summary>
    public bool Recompute { get; init; } = true;

    /// <summary>
    /// Time every step of every replay, synchronising the device after each (which slows a replay down on a GPU);
    /// <see cref="CompiledFunction.ReplayProfile"/> gives the means. Off by default.
    /// </summary>
    public bool ProfileReplays { get; init; }

    /// <summary>
    /// A host value that selects the variant besides the arguments' shapes and devices and the grad mode: for
    /// example <c>() =&gt; model.Training</c>, so that a call in evaluation mode does not replay a training graph.
    /// </summary>
    public Func<object?>? Guard { get; init; }

    /// <summary>
    /// A temporary takes the free memory-plan slot freed last (true, the default) or the one opened first (false: the
    /// baseline of the benchmarks); see <see cref="MemoryPlanner"/>.
    /// </summary>
    internal bool ReuseRecentSlots { get; init; } = true;

    /// <summary>Where fallback and recompilation messages are written as well as kept in <see cref="CompiledFunction.Messages"/>.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// Compiles functions of tensors (a forward pass, or a whole training step: forward, backward and optimizer update)
/// into graphs of recorded kernel calls that later calls replay without the tape, the host-side op code or device
/// allocations, in the spirit of <c>torch.compile</c> and CUDA graphs.
/// </summary>
/// <remarks>
/// <para>How a call runs, per variant (one per guard key: argument kinds, shapes, lengths and device, whether each
/// tensor requires gradients and, if so, whether it holds a gradient, <see cref="GradMode"/>, and
/// <see cref="CompileOptions.Guard"/>):</para>
/// <list type="number">
/// <item>The first call runs eagerly (creating lazily made state such as optimizer moments) under the recorder.</item>
/// <item>The second and third calls run eagerly and are traced at the kernel-call level: every core and capability
/// entry point with its arguments, every upload of host data, and every host step registered with
/// <see cref="RunOnEveryCall"/>. If the two traces differ (a host value that changes between calls, such as a
/// learning rate passed as a float, or data-dependent control flow), the variant falls back to eager for good and
/// <see cref="CompiledFunction.Messages"/> says which step differed.</item>
/// <item>The third trace is compiled: the graph passes rewrite the calls (copy elimination, bias epilogues, constant
/// folding, dead-code elimination, multi-tensor optimizer updates; <see cref="CompileOptions.Optimize"/>), elementwise
/// chains and trees fuse (<see cref="CompileOptions.Fuse"/>), buffers are classified by lifetime (inputs, persistent,
/// persistent-new, temporaries, constants, output), temporaries planned into shared slots by liveness, and the calls
/// rebound to them.</item>
/// <item>Later calls replay: the arguments' buffers are bound in, range checks of index arguments are repeated (so a
/// bad label throws the eager error before anything runs), and the recorded steps run in order.</item>
/// </list>
/// <para>Contract for the function: it must return a tensor; its intermediates are freed when it returns (it runs in
/// a <see cref="TensorScope"/>); host values it uploads are frozen as constants (the trace comparison catches those
/// that change from call to call); per-step host bookkeeping (an optimizer's step counter, uploading the current
/// learning rate) goes through <see cref="RunOnEveryCall"/>. The tensor a replay returns is a detached view of the
/// graph's output buffer, overwritten by the next call: copy it to keep it. A function whose trace reads device data
/// back to the host runs eagerly (or throws under <see cref="CompileOptions.Strict"/>). Only the kernel calls on the
/// device of the first tensor argument are captured: a function must use one device.</para>
/// <para>Gradients: a gradient the traced call left in a buffer it allocated (a step that zeroes the gradients and
/// runs backward) stays that graph's buffer, and a replay first points the tensor's <see cref="Tensor.Grad"/> back at
/// it. So variants of one step (a short last batch, say) and eager calls between compiled ones may zero and replace
/// the gradients without making a variant trace again; each variant keeps its own gradient buffers. The gradient of
/// an argument is the argument's, as eager: one it held is read and accumulated into where the call's argument holds
/// its own, and one the call gives it is a new tensor on every replay (the one allocation a replay makes).</para>
/// </remarks>
public static class Compiler
{
    /// <summary>Compiles a function of one tensor.</summary>
    public static CompiledFunction<Tensor> Compile(Func<Tensor, Tensor> function, CompileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(function);
        return new CompiledFunction<Tensor>(args => function((Tensor)args[0]), options ?? new CompileOptions());
    }

    /// <summary>Compiles a function of two arguments, each a <see cref="Tensor"/> or an <see cref="IndexTensor"/>.</summary>
    public static CompiledFunction<T1, T2> Compile<T1, T2>(Func<T1, T2, Tensor> function, CompileOptions? options = null)
        where T1 : class
        where T2 : class
    {
        ArgumentNullException.ThrowIfNull(function);
        return new CompiledFunction<T1, T2>(args => function((T1)args[0], (T2)args[1]), options ?? new CompileOptions());
    }

    /// <summary>
    /// Runs <paramref name="hostStep"/> now; when a compiler is tracing the current call, a replay of the compiled graph
    /// runs it again at the same point. For host-side bookkeeping a step must keep doing (advancing an optimizer's step
    /// counter, uploading the current learning rate into a device scalar); uploads it makes are not frozen into the
    /// graph. It must not launch kernels.
    /// </summary>
    public static void RunOnEveryCall(Action hostStep)
    {
        ArgumentNullException.ThrowIfNull(hostStep);
        if (Trace.Current is { } trace) trace.HostStep(hostStep);
        else hostStep();
    }

    /// <summary>True while the current call is being traced by a compiler.</summary>
    public static bool IsTracing => Trace.Current != null;
}

/// <summary>The mean time of one step of a compiled graph's replays.</summary>
/// <param name="Index">The step's position in the program.</param>
/// <param name="Name">The kernel call, fused group or host step.</param>
/// <param name="Milliseconds">Mean wall time per replay, the device synchronised after the step.</param>
/// <param name="Flops">Floating-point operations of the step when it is a matrix product (2 · batch · m · n · k), else 0.</param>
public sealed record ReplayStepTime(int Index, string Name, double Milliseconds, double Flops = 0);

/// <summary>The sizes of one compiled variant.</summary>
/// <param name="Launches">Kernel-set entry points one replay calls.</param>
/// <param name="Steps">Replay steps (launches, uploads, host steps).</param>
/// <param name="Temporaries">Temporary buffers of the traced call.</param>
/// <param name="TemporaryBytes">Their bytes, each in its own buffer as the eager call held them.</param>
/// <param name="Slots">Slots of the memory plan.</param>
/// <param name="SlotBytes">Bytes of the slots.</param>
/// <param name="ScratchAllocations">Buffers the kernel set allocates for itself inside the replayed calls (scratch of a
/// reduction, say): the only device allocations a replay makes (0 on the CPU set).</param>
/// <param name="FusedGroups">Fused elementwise groups among the launches.</param>
/// <param name="FusedCalls">Kernel calls those groups replaced.</param>
/// <param name="CopiesRemoved">Copies of a temporary into its destination removed (the producer writes the destination).</param>
/// <param name="CallsFolded">Calls whose inputs never vary, run once when the graph was built instead of on every replay.</param>
/// <param name="DeadCallsRemoved">Calls whose results nothing reads, removed.</param>
/// <param name="UpdatesMerged">Per-parameter optimizer calls merged into multi-tensor updates.</param>
/// <param name="BiasEpilogues">Bias additions folded into the epilogue of the product before them.</param>
/// <param name="GemmFlops">Floating-point operations of the matrix products (GEMM calls) one replay runs.</param>
/// <param name="ResidualEpilogues">Residual additions folded into the epilogue of the product before them.</param>
/// <param name="ActivationEpilogues">Activation chains (runs of unary and affine calls) folded into the epilogue of the product before them.</param>
/// <param name="CommonSubexpressionsRemoved">Calls that repeated an earlier call on the same inputs, removed (their readers read the earlier result).</param>
/// <param name="PermutesFolded">Permutes removed because the products reading their results read their inputs through index maps instead.</param>
/// <param name="ReductionEpilogues">Reductions (sums and means) that absorbed the elementwise group that computed their
/// input: one launch each, counted among <paramref name="FusedGroups"/> (not those whose group then went into a
/// product's epilogue, <paramref name="TreeEpilogues"/>).</param>
/// <param name="Recomputed">Repeats of cheap elementwise calls added so that each reader of their value fuses its own
/// copy instead of loading a stored one.</param>
/// <param name="ReductionsPaired">Reductions run in one launch with a sibling reduction (same shape, axes and op):
/// two per paired launch.</param>
/// <param name="KernelLoads">Kernels the kernel set compiled and loaded for this graph, while it was built and first
/// replayed (kernels an earlier graph or eager call loaded are cached and not counted; 0 on the CPU set).</param>
/// <param name="KernelLoadMilliseconds">The wall time of those loads.</param>
/// <param name="TreeEpilogues">Fused elementwise trees run as the last step of the epilogue of the product whose result
/// they read (the set runs them, see <see cref="IGemmEpilogueKernels.RunsGemmTree"/>); a tree with its reduction leaves
/// the reduction as a launch of its own.</param>
/// <param name="TreeEpilogueCalls">Kernel calls those trees replaced that no longer launch (not counted in
/// <paramref name="FusedCalls"/>).</param>
/// <param name="ReductionsMapped">Reductions run in one launch with the elementwise launch right after them that reads
/// their result back over the reduced axes (a softmax's backward, say): one launch fewer each.</param>
/// <param name="SoftmaxesBatched">Softmaxes run in one launch with others that nothing orders apart from them
/// (<see cref="ISoftmaxBatchKernels"/>): all members of each batch, one launch per batch.</param>
/// <param name="NegationsMoved">Negations of a sum or mean computed as the reduction of the negated input instead, so
/// that they fuse into the reduction's launch (exact: the same bits).</param>
/// <param name="SpnProductSums">SPN product layers run in one launch with the sum layer that reads their result
/// (<see cref="ISpnProductSumKernels"/>): one launch fewer each.</param>
/// <param name="ZeroFillsFolded">Zero fills run in one launch with the index-add into the filled buffer
/// (<see cref="IIndexScatterKernels"/>): one launch fewer each.</param>
/// <param name="ReductionMapsBatched">Reductions with their maps (<paramref name="ReductionsMapped"/>) run in one launch
/// with others that nothing orders apart from them: all members of each batch, one launch per batch.</param>
/// <param name="LossGradientsFused">Cross-entropies computed in one launch with the one-hot, softmax and difference of
/// their gradient (<see cref="ISoftmaxCrossEntropyKernels"/>): two launches fewer each.</param>
/// <param name="PairsBeyondReach">Reduction launches left without a sibling only because every sibling they could run
/// with lay beyond the kernel set's <see cref="IFusedElementwiseKernels.SiblingPairReach"/> (their inputs would be
/// read back from memory).</param>
public sealed record CompiledGraphStats(int Launches, int Steps, int Temporaries, long TemporaryBytes, int Slots, long SlotBytes, long ScratchAllocations,
    int FusedGroups, int FusedCalls, int CopiesRemoved = 0, int CallsFolded = 0, int DeadCallsRemoved = 0, int UpdatesMerged = 0, int BiasEpilogues = 0,
    double GemmFlops = 0, int ResidualEpilogues = 0, int ActivationEpilogues = 0, int CommonSubexpressionsRemoved = 0, int PermutesFolded = 0,
    int ReductionEpilogues = 0, int Recomputed = 0, int ReductionsPaired = 0, long KernelLoads = 0, double KernelLoadMilliseconds = 0, int TreeEpilogues = 0,
    int TreeEpilogueCalls = 0, int LossGradientsFused = 0, int ReductionsMapped = 0, int SoftmaxesBatched = 0, int NegationsMoved = 0, int SpnProductSums = 0,
    int ZeroFillsFolded = 0, int ReductionMapsBatched = 0, int PairsBeyondReach = 0);

/// <summary>
/// A compiled function (see <see cref="Compiler"/>): call it like the original; it traces, compiles and replays
/// per variant. Not thread-safe: call it from one thread at a time.
/// </summary>
public abstract class CompiledFunction : IDisposable
{
    private readonly Func<object[], Tensor> function;
    private readonly LinkedList<Variant> variants = new();
    private readonly List<string> messages = new();
    private readonly Dictionary<object, int> identities = new(ReferenceEqualityComparer.Instance);
    private Variant? last;

    private protected CompiledFunction(Func<object[], Tensor> function, CompileOptions options)
    {
        if (options.MaxVariants < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxVariants, "Compiler: MaxVariants must be at least 1.");
        this.function = function;
        Options = options;
    }

    /// <summary>How many arguments the function takes.</summary>
    private protected abstract int Arity { get; }

    /// <summary>The options this function was compiled with.</summary>
    public CompileOptions Options { get; }

    /// <summary>Variants in the cache now (at most <see cref="CompileOptions.MaxVariants"/>).</summary>
    public int VariantCount => variants.Count;

    /// <summary>Graphs compiled so far (a variant dropped from the cache and seen again compiles again).</summary>
    public int Compilations { get; private set; }

    /// <summary>Calls answered by replaying a compiled graph.</summary>
    public int Replays { get; private set; }

    /// <summary>Calls run eagerly (warm-up and traced calls, and fallbacks).</summary>
    public int EagerCalls { get; private set; }

    /// <summary>
    /// Compiled variants traced again because a buffer their graph uses in place was freed since it was traced (a
    /// parameter or optimizer state replaced, say); each retrace costs three eager calls and a compilation.
    /// </summary>
    public int Retraces { get; private set; }

    /// <summary>What the compiler reported: fallbacks to eager with their reasons, recompilations, evictions.</summary>
    public IReadOnlyList<string> Messages => messages;

    /// <summary>The sizes of the graph the last call used, or null when it ran eagerly.</summary>
    public CompiledGraphStats? LastGraph => last?.Graph is { } g
        ? new CompiledGraphStats(g.Launches, g.StepCount, g.TemporaryCount, g.TemporaryBytes, g.SlotCount, g.SlotBytes, g.ScratchAllocations, g.Fused.Groups, g.Fused.Calls,
            g.Passes.CopiesRemoved, g.Passes.CallsFolded, g.Passes.DeadCallsRemoved, g.Passes.UpdatesMerged, g.Passes.BiasEpilogues, g.GemmFlops,
            g.Passes.ResidualEpilogues, g.Passes.ActivationEpilogues, g.Passes.CommonSubexpressionsRemoved, g.Passes.PermutesFolded, g.Passes.ReductionEpilogues,
            g.Passes.Recomputed, g.Passes.ReductionsPaired, g.KernelLoads, g.KernelLoadTime.TotalMilliseconds, g.Passes.TreeEpilogues,
            g.Passes.TreeEpilogueCalls, g.Passes.LossGradientsFused, g.Passes.ReductionsMapped, g.Passes.SoftmaxesBatched, g.Passes.NegationsMoved,
            g.Passes.SpnProductSums, g.Passes.ZeroFillsFolded, g.Passes.ReductionMapsBatched, g.Passes.PairsBeyondReach)
        : null;

    /// <summary>
    /// With <see cref="CompileOptions.ProfileReplays"/>, the mean time of each step of the last call's graph over its
    /// replays so far but the first (which compiles what its kernels need, JIT code or kernel loads, once), in program
    /// order (fused groups and multi-tensor calls under their own names); empty otherwise.
    /// </summary>
    public IReadOnlyList<ReplayStepTime> ReplayProfile() => last?.Graph?.StepTimes() ?? [];

    /// <summary>
    /// <see cref="ReplayProfile"/> as a table, in the manner of the eager <see cref="Profiler.Report"/>: per step name
    /// (a kernel call, a fused group's expression, a host step) its steps, mean milliseconds per replay and share of the
    /// replay, and for the matrix products their rate in GFLOP/s; the costliest first, then the total.
    /// </summary>
    public string ReplayReport()
    {
        var profile = ReplayProfile();
        if (profile.Count == 0)
            return "no profiled replay: compile with CompileOptions.ProfileReplays and call at least twice after the graph is built (the first replay is not timed)";
        double total = profile.Sum(p => p.Milliseconds);
        var ci = CultureInfo.InvariantCulture;
        string Rate(double flops, double ms) => flops > 0 && ms > 0 ? (flops / ms / 1e6).ToString("F1", ci) : "";
        var sb = new StringBuilder();
        sb.AppendLine(ci, $"{"step",-60} {"steps",5} {"ms/replay",10} {"share",6} {"GFLOP/s",8}");
        foreach (var g in profile.GroupBy(p => p.Name).OrderByDescending(g => g.Sum(p => p.Milliseconds)))
        {
            double ms = g.Sum(p => p.Milliseconds);
            string name = g.Key.Length > 60 ? g.Key[..57] + "..." : g.Key;
            sb.AppendLine(string.Create(ci, $"{name,-60} {g.Count(),5} {ms,10:F3} {(total > 0 ? ms / total : 0),6:P1} {Rate(g.Sum(p => p.Flops), ms),8}").TrimEnd());
        }
        sb.AppendLine(string.Create(ci, $"{"total",-60} {profile.Count,5} {total,10:F3} {"",6} {Rate(profile.Sum(p => p.Flops), total),8}").TrimEnd());
        return sb.ToString();
    }

    /// <summary>The graph of the variant the last call used (graph, memory plan, launch count), or why there is none.</summary>
    public string Explain()
    {
        if (last == null) return "not called yet";
        if (last.Graph != null) return "variant " + last.Key + "\n" + last.Graph.Explain();
        if (last.Fallback != null) return $"variant {last.Key} runs eagerly: {last.Fallback}";
        return $"variant {last.Key} not compiled yet ({last.Calls} of 3 eager calls made)";
    }

    /// <summary>
    /// Calls the function with its arguments given as objects (each a <see cref="Tensor"/> or an
    /// <see cref="IndexTensor"/>, as many as it takes): eagerly while a variant warms up, else by replay.
    /// </summary>
    /// <exception cref="ArgumentException">An argument is null or of another type, or the count is wrong.</exception>
    public Tensor Call(params object[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length != Arity)
            throw new ArgumentException($"Compiler: the function takes {Arity} arguments, got {args.Length}.");
        for (int i = 0; i < args.Length; i++)
            if (args[i] is not (Tensor or IndexTensor))
                throw new ArgumentException($"Compiler: argument {i} must be a Tensor or an IndexTensor, got {args[i]?.GetType().Name ?? "null"}.");
        foreach (var t in args.OfType<Tensor>()) t.CheckAlive("compiled function");
        var device = args.OfType<Tensor>().FirstOrDefault()?.Device ?? Device.Default;
        var key = Key(args, device);
        var variant = Find(key);
        last = variant;
        if (variant.Fallback != null) return Eager(args);
        if (variant.Graph is { } graph)
        {
            if (graph.StaleBuffer() is { } stale)
            {
                Report($"variant {key}: {stale}; tracing again.");
                Retraces++;
                graph.Dispose();
                variant.Graph = null;
                variant.Calls = 0;
            }
            else
            {
                foreach (var (arg, op, extent) in variant.RangeChecks) ((IndexTensor)args[arg]).CheckRange(op, extent);
                Replays++;
                return graph.Replay(args);
            }
        }
        return Warm(variant, args, device);
    }

    private Tensor Warm(Variant variant, object[] args, Device device)
    {
        var trace = new Trace(device, Options.Strict)
        {
            InputGradients = args.Select(a => a is Tensor { RequiresGrad: true, Grad: { IsDisposed: false } g } ? (object?)g.Buffer : null).ToArray(),
        };
        var result = Traced(trace, args, device);
        trace.Inputs = args.Select(a => CompiledGraph.InputBuffer(a, device)).ToArray();
        variant.Calls++;
        if (trace.HostRead != null)
        {
            Fallback(variant, trace.HostRead);
            return result;
        }
        if (variant.Calls == 2) variant.Previous = trace;
        if (variant.Calls < 3) return result;
        var difference = Difference(variant.Previous!, trace);
        variant.Previous = null;
        if (difference != null)
        {
            Fallback(variant, difference);
            return result;
        }
        var (graph, reason) = CompiledGraph.Build(trace, device, args, result, Options.PoisonDeadSlots, Options.Fuse, Options.Optimize, Options.ProfileReplays, Options.Recompute,
            Options.ReuseRecentSlots);
        if (graph == null)
        {
            Fallback(variant, reason!);
            return result;
        }
        variant.Graph = graph;
        variant.RangeChecks = trace.RangeChecks
            .Select(c => (Array.FindIndex(args, a => ReferenceEquals(a, c.Index)), c.Op, c.Extent))
            .Where(c => c.Item1 >= 0).Distinct().ToList();
        Compilations++;
        return result;
    }

    private Tensor Traced(Trace trace, object[] args, Device device)
    {
        EagerCalls++;
        using var scope = new TensorScope();
        Tensor result;
        using (trace.Begin())
            result = function(args) ?? throw new InvalidOperationException("Compiler: the function returned null; it must return a tensor.");
        return scope.Keep(result);
    }

    private Tensor Eager(object[] args)
    {
        EagerCalls++;
        using var scope = new TensorScope();
        var result = function(args) ?? throw new InvalidOperationException("Compiler: the function returned null; it must return a tensor.");
        return scope.Keep(result);
    }

    private void Fallback(Variant variant, string reason)
    {
        variant.Fallback = reason;
        Report($"variant {variant.Key} falls back to eager: {reason}.");
    }

    private void Report(string message)
    {
        messages.Add(message);
        Options.Log?.WriteLine("Compiler: " + message);
    }

    /// <summary>The variant for <paramref name="key"/>, made and cached (dropping the least recently used beyond the bound) if new.</summary>
    private Variant Find(string key)
    {
        for (var node = variants.First; node != null; node = node.Next)
            if (node.Value.Key == key)
            {
                variants.Remove(node);
                variants.AddFirst(node);
                return node.Value;
            }
        var variant = new Variant(key);
        variants.AddFirst(variant);
        while (variants.Count > Options.MaxVariants)
        {
            var dropped = variants.Last!.Value;
            variants.RemoveLast();
            dropped.Graph?.Dispose();
            Report($"variant {dropped.Key} dropped from the cache (at most {Options.MaxVariants} variants).");
        }
        return variant;
    }

    private string Key(object[] args, Device device)
    {
        var sb = new StringBuilder();
        sb.Append(device.Name).Append(GradMode.IsEnabled ? " grad" : " no-grad");
        foreach (var a in args)
        {
            if (a is Tensor t)
                sb.Append(" T").Append(Shape.Format(t.shape)).Append(!t.RequiresGrad ? "" : t.Grad is { IsDisposed: false } ? "G" : "g")
                    .Append(t.Device == device ? "" : "@" + t.Device.Name);
            else sb.Append(" I[").Append(((IndexTensor)a).Length).Append(']');
        }
        if (Options.Guard != null) sb.Append(" guard=").Append(Convert.ToString(Options.Guard(), CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    /// <summary>Why two consecutive traces cannot share one graph (the first step that differs), or null when they match.</summary>
    private string? Difference(Trace a, Trace b)
    {
        var sa = Signatures(a);
        var sb = Signatures(b);
        for (int i = 0; i < Math.Min(sa.Count, sb.Count); i++)
        {
            if (sa[i].Text == sb[i].Text) continue;
            if (sa[i].Op is UploadOp ua && sb[i].Op is UploadOp ub && sa[i].Name == sb[i].Name)
                return $"the host data uploaded by {ub.Origin} (step {i}) changed between calls ({Preview(ua.Data)} then {Preview(ub.Data)}): " +
                       "a value computed on the host each call cannot be frozen into the graph; keep it in a DeviceScalar updated through Compiler.RunOnEveryCall";
            if (sa[i].Op is KernelCallOp ka && sb[i].Op is KernelCallOp kb && ka.Method == kb.Method)
            {
                var parameter = ka.Method.GetParameters()
                    .Select((p, k) => (p.Name, A: ArgWalker.Describe(ka.Args[k], Token(a)), B: ArgWalker.Describe(kb.Args[k], Token(b))))
                    .First(x => x.A != x.B);
                return $"argument '{parameter.Name}' of {ka.Name} (step {i}) changed between calls ({Preview(parameter.A)} then {Preview(parameter.B)}): " +
                       "a host value that changes every call cannot be frozen into the graph (keep it in a DeviceScalar written through " +
                       "Compiler.RunOnEveryCall), or the buffers used depend on the data";
            }
            return $"two consecutive calls did different work at step {i}: {Preview(sa[i].Text)} then {Preview(sb[i].Text)} " +
                   "(control flow that depends on data or on host state)";
        }
        return sa.Count == sb.Count ? null : $"two consecutive calls made {sa.Count} and {sb.Count} steps (control flow that changes between calls)";
    }

    /// <summary>
    /// Names for the buffers of <paramref name="trace"/> that match across calls: an argument or its gradient by position, a buffer
    /// allocated during the call by allocation order, an older one by identity.
    /// </summary>
    private Func<object, string> Token(Trace trace)
    {
        var inputs = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < trace.Inputs.Length; i++) inputs[trace.Inputs[i]] = i;
        var gradients = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < trace.InputGradients.Length; i++)
            if (trace.InputGradients[i] is { } g) gradients[g] = i;
        var allocated = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < trace.Allocations.Count; i++) allocated[trace.Allocations[i]] = i;
        return buffer =>
        {
            if (inputs.TryGetValue(buffer, out var i)) return "in" + i;
            if (gradients.TryGetValue(buffer, out var j)) return "grad" + j;
            if (allocated.TryGetValue(buffer, out var k)) return "new" + k;
            if (!identities.TryGetValue(buffer, out var id)) identities[buffer] = id = identities.Count;
            return "old" + id;
        };
    }

    private List<(TraceOp Op, string Name, string Text)> Signatures(Trace trace)
    {
        var Token = this.Token(trace);
        var inputs = new HashSet<object>(trace.Inputs, ReferenceEqualityComparer.Instance);
        var list = new List<(TraceOp, string, string)>();
        foreach (var op in trace.Ops)
        {
            if (op is UploadOp u && inputs.Contains(u.Buffers[0])) continue;
            string text = op switch
            {
                KernelCallOp call => call.Name + "(" + string.Join(", ", call.Method.GetParameters().Zip(call.Args, (p, v) => p.Name + "=" + ArgWalker.Describe(v, Token))) + ")",
                UploadOp up => "Upload(" + Token(up.Buffers[0]) + ", " + ArgWalker.Describe(up.Data, Token) + ")",
                _ => op.Name,
            };
            string name = op is UploadOp up2 ? "Upload " + Token(up2.Buffers[0]) + " " + up2.Origin : op.Name;
            list.Add((op, name, text));
        }
        return list;
    }

    private static string Preview(object data)
    {
        var s = data is Array a ? "[" + string.Join(", ", a.Cast<object>().Take(4).Select(v => Convert.ToString(v, CultureInfo.InvariantCulture))) + (a.Length > 4 ? ", ..." : "") + "]" : data.ToString()!;
        return s.Length <= 200 ? s : s[..197] + "...";
    }

    /// <summary>Frees every variant's graph (its memory slots and its hold on its output).</summary>
    public void Dispose()
    {
        foreach (var v in variants) v.Graph?.Dispose();
        variants.Clear();
        last = null;
        GC.SuppressFinalize(this);
    }

    private sealed class Variant(string key)
    {
        public string Key { get; } = key;
        public int Calls { get; set; }
        public Trace? Previous { get; set; }
        public CompiledGraph? Graph { get; set; }
        public string? Fallback { get; set; }
        public List<(int Arg, string Op, int Extent)> RangeChecks { get; set; } = new();
    }
}

/// <summary>A compiled function of one argument.</summary>
public sealed class CompiledFunction<T1> : CompiledFunction where T1 : class
{
    internal CompiledFunction(Func<object[], Tensor> function, CompileOptions options) : base(function, options) { }

    private protected override int Arity => 1;

    /// <summary>Calls the function (see <see cref="Compiler"/> for what a replayed result is).</summary>
    public Tensor Invoke(T1 arg) => Call(arg);
}

/// <summary>A compiled function of two arguments.</summary>
public sealed class CompiledFunction<T1, T2> : CompiledFunction where T1 : class where T2 : class
{
    internal CompiledFunction(Func<object[], Tensor> function, CompileOptions options) : base(function, options) { }

    private protected override int Arity => 2;

    /// <summary>Calls the function (see <see cref="Compiler"/> for what a replayed result is).</summary>
    public Tensor Invoke(T1 arg1, T2 arg2) => Call(arg1, arg2);
}
