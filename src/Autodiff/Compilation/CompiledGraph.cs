using System.Globalization;
using System.Reflection;
using System.Text;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>What a buffer of a traced call is, by its lifetime across the call.</summary>
internal enum BufferRole
{
    /// <summary>The buffer of an argument: bound anew on every replay.</summary>
    Input,
    /// <summary>Alive before and after the call (parameters, optimizer state): used in place.</summary>
    Persistent,
    /// <summary>Allocated during the call and alive after it (gradients, new state): owned by its tensor, used in place.</summary>
    PersistentNew,
    /// <summary>Allocated and freed during the call: becomes a slot of the memory plan.</summary>
    Temporary,
    /// <summary>A temporary whose value depends on nothing that varies (see <see cref="ConstantFolding"/>): computed once, kept by the graph.</summary>
    Constant,
    /// <summary>The returned tensor's buffer: kept by the graph and overwritten by every replay.</summary>
    Output,
}

/// <summary>A buffer of a traced call: its role, size, and the first and last operation touching it.</summary>
internal sealed class BufferInfo(object buffer, BufferRole role)
{
    public object Buffer { get; } = buffer;
    public BufferRole Role { get; set; } = role;
    public int ArgIndex { get; init; } = -1;
    /// <summary>For an argument's gradient (role <see cref="BufferRole.Input"/>): the argument's position, else -1.</summary>
    public int GradOfArg { get; init; } = -1;
    /// <summary>True when the call gave the argument a new gradient here (a replay allocates one), false when it wrote the one the argument held.</summary>
    public bool FreshGradient { get; init; }
    public int First { get; set; } = int.MaxValue;
    public int Last { get; set; } = -1;
    public int Slot { get; set; } = -1;
    public string Token { get; set; } = "";
    public bool IsInt => Buffer is DeviceBuffer<int>;
    public long Length => TraceBuffers.Length(Buffer);
    public long Bytes => TraceBuffers.Bytes(Buffer);
    public bool IsDisposed => Buffer is DeviceBuffer<float> f ? f.IsDisposed : ((DeviceBuffer<int>)Buffer).IsDisposed;
}

/// <summary>A slot of the memory plan: one buffer shared by temporaries of its exact length whose lifetimes do not overlap.</summary>
internal sealed class MemorySlot(object buffer)
{
    public object Buffer { get; } = buffer;
    public List<BufferInfo> Tenants { get; } = new();
}

/// <summary>
/// A traced call turned into a replayable program: the buffers classified by lifetime, temporaries planned into
/// slots, and the recorded operations rebound to those slots. A replay binds the new arguments' buffers, runs every
/// operation in the recorded order on the device's kernel set, and returns a view of the output buffer; it allocates
/// nothing on the device but the new gradient of an argument that requires one (see <see cref="BufferInfo.FreshGradient"/>).
/// </summary>
internal sealed class CompiledGraph : IDisposable
{
    private readonly Device device;
    private readonly List<ReplayStep> steps = new();
    private readonly List<BufferInfo> buffers;
    private readonly List<MemorySlot> slots = new();
    private readonly BufferInfo[] inputs;
    private readonly Storage outputStorage;
    private readonly int[] outputShape;
    private readonly string outputName;
    private IFusedElementwiseKernels? fusedKernels;
    private List<GradBinding> gradBindings = [];
    private readonly List<BufferInfo> argumentGradients = [];
    /// <summary>The GEMM operand maps <see cref="PermuteFolding"/> built for this graph (it owns them).</summary>
    private List<DeviceBuffer<int>> gatherMaps = [];
    private bool disposed;

    private CompiledGraph(Device device, List<BufferInfo> buffers, BufferInfo[] inputs, Tensor output, bool poison)
    {
        this.device = device;
        this.buffers = buffers;
        this.inputs = inputs;
        argumentGradients.AddRange(buffers.Where(b => b.GradOfArg >= 0));
        outputStorage = output.SharedStorage;
        outputStorage.AddRef();
        outputShape = output.shape;
        outputName = output.Name ?? "";
        Poison = poison;
    }

    /// <summary>True when dead slots are filled with NaN after their last use (a check of the memory plan).</summary>
    public bool Poison { get; }

    /// <summary>True when replays time each step (synchronising the device after it).</summary>
    public bool Profile { get; init; }

    private long[]? stepTicks;
    private int profiledReplays;

    /// <summary>Mean time of each replay step over the profiled replays (all but the first), in program order (empty before one).</summary>
    public IReadOnlyList<ReplayStepTime> StepTimes()
    {
        if (stepTicks == null || profiledReplays == 0) return [];
        double toMs = 1000.0 / System.Diagnostics.Stopwatch.Frequency / profiledReplays;
        return steps.Select((s, i) => new ReplayStepTime(i, s.Op.Name, stepTicks[i] * toMs, Flops(s))).ToList();
    }

    /// <summary>2 · batch · m · n · k for a matrix product, else 0.</summary>
    private static double Flops(ReplayStep step) =>
        step.Op is KernelCallOp call && call.IsCore(nameof(IKernelSet.Gemm)) && step.Args[0] is GemmSize g ? 2.0 * g.Batch * g.M * g.N * g.K : 0;

    /// <summary>
    /// Kernels the kernel set compiled and loaded while this graph was built and first replayed (its fused groups' and
    /// multi-tensor updates' kernels, unless an earlier graph loaded the same ones): the set caches them, so later
    /// replays load none. Always 0 on the CPU set.
    /// </summary>
    public long KernelLoads { get; private set; }

    /// <summary>The wall time of those <see cref="KernelLoads"/>.</summary>
    public TimeSpan KernelLoadTime { get; private set; }

    /// <summary>True once the graph has been replayed (its kernel loads are then all counted).</summary>
    public bool Replayed { get; private set; }

    /// <summary>Adds the loads the device's counters saw since <paramref name="before"/> (the build, or the first replay) to <see cref="KernelLoads"/>.</summary>
    private void CountLoadsSince(DeviceCounterSnapshot before)
    {
        var window = device.Counters.Snapshot().Minus(before);
        KernelLoads += window.KernelLoads;
        KernelLoadTime += window.KernelLoadTime;
    }

    /// <summary>Kernel-set entry points one replay calls.</summary>
    public int Launches => steps.Count(s => s.Op is KernelCallOp or FusedOp);

    /// <summary>Floating-point operations of the matrix products one replay runs (2 · batch · m · n · k per GEMM).</summary>
    public double GemmFlops => steps.Sum(Flops);

    /// <summary>Fused groups among the launches, and the calls they replaced.</summary>
    public (int Groups, int Calls) Fused => (steps.Count(s => s.Op is FusedOp), steps.Sum(s => s.Op is FusedOp f ? f.Calls : 0));

    /// <summary>Allocations the kernel set made inside the traced calls for its own scratch (a replay repeats them).</summary>
    public long ScratchAllocations => steps.Sum(s => (s.Op as KernelCallOp)?.ScratchAllocations ?? 0);

    /// <summary>Replay steps (launches, uploads, host steps; poison fills excluded).</summary>
    public int StepCount => steps.Count(s => s.Op is not PoisonOp);

    /// <summary>Temporaries of the traced call.</summary>
    public int TemporaryCount => buffers.Count(b => b.Role == BufferRole.Temporary);

    /// <summary>Slots of the memory plan.</summary>
    public int SlotCount => slots.Count;

    /// <summary>Bytes of the memory plan's slots.</summary>
    public long SlotBytes => slots.Sum(s => Info(s.Buffer).Bytes);

    /// <summary>Bytes of all temporaries of the traced call, each in its own buffer as the eager run holds them.</summary>
    public long TemporaryBytes => buffers.Where(b => b.Role == BufferRole.Temporary).Sum(b => b.Bytes);

    /// <summary>The device buffers a replay needs alive, with what they are for messages.</summary>
    private IEnumerable<BufferInfo> Referenced => buffers.Where(b => b.Role is BufferRole.Persistent or BufferRole.PersistentNew);

    private readonly Dictionary<object, BufferInfo> slotInfo = new(ReferenceEqualityComparer.Instance);

    /// <summary>The graph's own buffer of each constant, by the traced buffer it stands for.</summary>
    private readonly Dictionary<object, DeviceBuffer<float>> constantBuffers = new(ReferenceEqualityComparer.Instance);

    /// <summary>What the passes before fusion removed.</summary>
    public PassCounts Passes { get; private init; } = new();

    /// <summary>The calls folded into constants at build time (for <see cref="Explain"/>).</summary>
    private List<TraceOp> FoldedCalls { get; set; } = [];

    /// <summary>Bytes of the graph's constant buffers.</summary>
    public long ConstantBytes => constantBuffers.Values.Sum(b => b.Length * 4);

    private BufferInfo Info(object slotBuffer) => slotInfo[slotBuffer];

    /// <summary>
    /// Builds the program of <paramref name="trace"/>, or returns why it cannot: a host read, or a buffer that existed
    /// before the call and was freed during it.
    /// </summary>
    public static (CompiledGraph? Graph, string? Reason) Build(Trace trace, Device device, object[] args, Tensor output, bool poison, bool fuse,
        bool optimize = true, bool profile = false, bool recompute = true, bool reuseRecentSlots = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (trace.HostRead != null) return (null, trace.HostRead);
        var beforeBuild = device.Counters.Snapshot();
        var allocated = new HashSet<object>(trace.Allocations, ReferenceEqualityComparer.Instance);
        var infos = new Dictionary<object, BufferInfo>(ReferenceEqualityComparer.Instance);
        var inputs = new BufferInfo[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            var b = InputBuffer(args[i], device);
            if (infos.ContainsKey(b)) return (null, $"arguments {Array.FindIndex(inputs, x => x != null && ReferenceEquals(x.Buffer, b))} and {i} share one buffer");
            inputs[i] = infos[b] = new BufferInfo(b, BufferRole.Input) { ArgIndex = i };
        }
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is not Tensor { RequiresGrad: true } arg) continue;
            // An argument's gradient is the argument's, not the graph's: the one it held is read and written where the
            // replayed argument holds its own; one the call gave it is made anew for every replayed argument.
            if (trace.InputGradients[i] is { } held && !infos.ContainsKey(held)) infos[held] = new BufferInfo(held, BufferRole.Input) { GradOfArg = i };
            if (arg.Grad is { IsDisposed: false } grad && allocated.Contains(grad.Buffer) && !infos.ContainsKey(grad.Buffer))
                infos[grad.Buffer] = new BufferInfo(grad.Buffer, BufferRole.Input) { GradOfArg = i, FreshGradient = true };
        }
        var ops = trace.Ops.Where(op => !(op is UploadOp && infos.ContainsKey(op.Buffers[0]))).ToList();
        var outputBuffer = output.Buffer;
        bool IsTemporary(object b) => allocated.Contains(b) && !ReferenceEquals(b, outputBuffer) && IsDisposed(b);
        var passes = new PassCounts();
        var constants = new HashSet<object>(ReferenceEqualityComparer.Instance);
        // Temporaries the memory plan holds: constant folding's results are kept by the graph instead.
        bool IsPlanned(object b) => IsTemporary(b) && !constants.Contains(b);
        List<DeviceBuffer<int>> gatherMaps = [];
        List<TraceOp> folded = [];
        if (optimize)
        {
            ops = CopyElimination.Run(ops, IsTemporary, infos.ContainsKey, out passes.CopiesRemoved);
            bool fuses = fuse && trace.Device.Kernels is IFusedElementwiseKernels;
            ops = CommonSubexpressionElimination.Run(ops, IsTemporary, fuses, out passes.CommonSubexpressionsRemoved);
            ops = SoftmaxCrossEntropyFusion.Run(ops, trace.Device.Kernels, IsTemporary, out passes.LossGradientsFused);
            ops = GemmBiasFusion.Run(ops, trace.Device.Kernels, IsTemporary, out passes.BiasEpilogues);
            ops = GemmEpilogueFusion.Run(ops, trace.Device.Kernels, IsTemporary, out passes.ResidualEpilogues, out passes.ActivationEpilogues);
            ops = PermuteFolding.Run(ops, trace.Device.Kernels, IsTemporary, gatherMaps, out passes.PermutesFolded);
            (ops, folded) = ConstantFolding.Run(ops, IsTemporary, constants);
            ops = DeadCodeElimination.Run(ops, IsPlanned, out passes.DeadCallsRemoved);
            passes.CallsFolded = folded.Count;
            ops = MultiTensorUpdates.Run(ops, out passes.UpdatesMerged);
            ops = IndexScatterFusion.Run(ops, trace.Device.Kernels, out passes.ZeroFillsFolded);
        }
        // The set in force once the trace ended: the device's own (a decorator without the capability turns fusion off).
        var fused = fuse ? trace.Device.Kernels as IFusedElementwiseKernels : null;
        if (fused != null)
        {
            DeviceBuffer<float> NewTemporary(DeviceBuffer<float> like)
            {
                var temporary = new PlannedTemporary(like.Device, like.Length);
                allocated.Add(temporary);
                return temporary;
            }
            if (optimize) ops = NegatedReductions.Run(ops, IsPlanned, NewTemporary, out passes.NegationsMoved);
            if (optimize && recompute) ops = Rematerialization.Run(ops, IsPlanned, program => Fusion.Fuse(program, IsPlanned).Count, NewTemporary, out passes.Recomputed);
            ops = Fusion.Fuse(ops, IsPlanned, out passes.ReductionEpilogues);
            if (optimize)
            {
                ops = GemmTreeFusion.Run(ops, trace.Device.Kernels, IsPlanned, out passes.TreeEpilogues, out passes.TreeEpilogueCalls, out int plainReductions);
                passes.ReductionEpilogues -= plainReductions;
            }
            ops = ReduceThenMapFusion.Run(ops, out passes.ReductionsMapped);
            ops = Fusion.PairSiblings(ops, out passes.ReductionsPaired, fused.SiblingPairReach, out passes.PairsBeyondReach);
        }
        if (fuse)
        {
            ops = SoftmaxBatching.Run(ops, trace.Device.Kernels, out passes.SoftmaxesBatched);
            ops = SpnProductSumFusion.Run(ops, trace.Device.Kernels, IsPlanned, out passes.SpnProductSums);
            if (fused != null) ops = ReduceThenMapBatching.Run(ops, out passes.ReductionMapsBatched);
        }
        for (int i = 0; i < ops.Count; i++)
            foreach (var b in ops[i].Buffers)
            {
                if (!infos.TryGetValue(b, out var info))
                {
                    var role = !allocated.Contains(b) ? BufferRole.Persistent
                        : ReferenceEquals(b, outputBuffer) ? BufferRole.Output
                        : constants.Contains(b) ? BufferRole.Constant
                        : IsDisposed(b) ? BufferRole.Temporary
                        : BufferRole.PersistentNew;
                    infos[b] = info = new BufferInfo(b, role);
                }
                info.First = Math.Min(info.First, i);
                info.Last = Math.Max(info.Last, i);
            }
        if (!infos.ContainsKey(outputBuffer))
            infos[outputBuffer] = new BufferInfo(outputBuffer, allocated.Contains(outputBuffer) ? BufferRole.Output : BufferRole.Persistent);
        var freed = infos.Values.FirstOrDefault(b => b.Role == BufferRole.Persistent && b.IsDisposed);
        if (freed != null)
        {
            foreach (var map in gatherMaps) map.Dispose();
            return (null, $"a buffer of {freed.Length} elements that existed before the call was freed during it (first used by {ops[freed.First].Name}); a replay could not use it");
        }

        var list = infos.Values.ToList();
        var graph = new CompiledGraph(device, list, inputs, output, poison)
        {
            fusedKernels = fused, Passes = passes, Profile = profile, gradBindings = GradBinding.Of(trace, infos), gatherMaps = gatherMaps,
        };
        graph.Plan(list, reuseRecentSlots);
        graph.Emit(ops, list);
        graph.FoldConstants(folded);
        graph.CountLoadsSince(beforeBuild);
        return (graph, null);
    }

    public static object InputBuffer(object arg, Device device) => arg switch
    {
        Tensor t => t.Buffer,
        IndexTensor x => x.On(device),
        _ => throw new ArgumentException($"Compiler: arguments must be Tensor or IndexTensor, got {arg.GetType().Name}."),
    };

    private static bool IsDisposed(object b) => b is DeviceBuffer<float> f ? f.IsDisposed : ((DeviceBuffer<int>)b).IsDisposed;

    /// <summary>
    /// Liveness planning: every temporary into a slot of the memory plan (see <see cref="MemoryPlanner"/>), one buffer
    /// per slot.
    /// </summary>
    private void Plan(List<BufferInfo> list, bool reuseRecentSlots)
    {
        int counter = 0;
        foreach (var b in list.OrderBy(b => b.Role).ThenBy(b => b.First))
            b.Token = b.Role switch
            {
                BufferRole.Input => b.GradOfArg >= 0 ? (b.FreshGradient ? "newgrad" : "grad") + b.GradOfArg : "in" + b.ArgIndex,
                BufferRole.Persistent => "p" + counter++,
                BufferRole.PersistentNew => "n" + counter++,
                BufferRole.Output => "out",
                BufferRole.Constant => "c" + counter++,
                _ => "t" + counter++,
            };
        foreach (var c in list.Where(b => b.Role == BufferRole.Constant))
            constantBuffers[c.Buffer] = device.Kernels.Allocate(c.Length);
        var temporaries = list.Where(b => b.Role == BufferRole.Temporary).OrderBy(b => b.First).ToList();
        var slotOf = MemoryPlanner.Assign(temporaries.Select(t => new MemoryPlanner.Lifetime(t.Length, t.IsInt, t.First, t.Last)).ToList(),
            reuseRecentSlots);
        for (int i = 0; i < temporaries.Count; i++)
        {
            var t = temporaries[i];
            if (slotOf[i] == slots.Count)
            {
                object buffer = t.IsInt ? device.Kernels.AllocateInt(t.Length) : device.Kernels.Allocate(t.Length);
                slots.Add(new MemorySlot(buffer));
                slotInfo[buffer] = new BufferInfo(buffer, BufferRole.Temporary);
            }
            slots[slotOf[i]].Tenants.Add(t);
            t.Slot = slotOf[i];
            t.Token += "@s" + t.Slot;
        }
    }

    /// <summary>The replay steps: each operation with temporaries bound to their slots, and poison fills when asked.</summary>
    private void Emit(List<TraceOp> ops, List<BufferInfo> list)
    {
        var bySource = list.ToDictionary(b => b.Buffer, ReferenceEqualityComparer.Instance);
        var scalarViews = new Dictionary<object, DeviceScalar>(ReferenceEqualityComparer.Instance);
        object ToSlot(object v)
        {
            var buffer = v is DeviceScalar s ? s.Buffer : v;
            if (!bySource.TryGetValue(buffer, out var info) || info.Role is not (BufferRole.Temporary or BufferRole.Constant)) return v;
            var slot = info.Role == BufferRole.Constant ? constantBuffers[buffer] : slots[info.Slot].Buffer;
            if (v is not DeviceScalar) return slot;
            if (!scalarViews.TryGetValue(slot, out var view)) scalarViews[slot] = view = DeviceScalar.Over((DeviceBuffer<float>)slot);
            return view;
        }
        var dying = list.Where(b => b.Role == BufferRole.Temporary && !b.IsInt).ToLookup(b => b.Last);
        for (int i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            bool touchesInput = op.Buffers.Any(b => bySource[b].Role == BufferRole.Input);
            switch (op)
            {
                case KernelCallOp call:
                    steps.Add(new ReplayStep(op, call.Method, call.Args.Select(a => ArgWalker.Map(a, ToSlot)).ToArray(), touchesInput));
                    break;
                case UploadOp upload:
                    steps.Add(new ReplayStep(op, null, [ToSlot(upload.Buffers[0]), upload.Data], touchesInput));
                    break;
                case HostStepOp:
                    steps.Add(new ReplayStep(op, null, [], false));
                    break;
                case FusedOp group:
                    steps.Add(new ReplayStep(op, null, group.Args.Select(a => ArgWalker.Map(a, ToSlot)).ToArray(), touchesInput));
                    break;
            }
            if (Poison)
                foreach (var dead in dying[i])
                    steps.Add(new ReplayStep(new PoisonOp(slots[dead.Slot].Buffer), null, [slots[dead.Slot].Buffer], false));
        }
    }

    /// <summary>
    /// Runs the folded calls once, into the graph's own constant buffers (constants only the folded calls use live in
    /// buffers freed right after).
    /// </summary>
    private void FoldConstants(List<TraceOp> folded)
    {
        var scratch = new Dictionary<object, DeviceBuffer<float>>(ReferenceEqualityComparer.Instance);
        try
        {
            object Own(object b)
            {
                if (constantBuffers.TryGetValue(b, out var own)) return own;
                if (scratch.TryGetValue(b, out var tmp)) return tmp;
                return scratch[b] = device.Kernels.Allocate(((DeviceBuffer<float>)b).Length);
            }
            foreach (var op in folded)
            {
                var call = (KernelCallOp)TraceBuffers.Rebind(op, Own);
                KernelSetDecorator.Call(call.Method, device.Kernels, call.Args);
            }
        }
        finally
        {
            foreach (var b in scratch.Values) b.Dispose();
        }
        FoldedCalls = folded;
    }

    /// <summary>True when every buffer the graph uses in place is still alive (a tensor owning one may have been disposed).</summary>
    public string? StaleBuffer()
    {
        var dead = Referenced.FirstOrDefault(b => b.IsDisposed);
        return dead == null ? null : $"buffer {dead.Token} ({dead.Length} elements, first used by operation {dead.First}) was freed since the trace";
    }

    /// <summary>
    /// Runs the program with <paramref name="args"/> bound to the inputs and returns a view of the output; first hands
    /// the graph's gradient buffers back to their tensors (see <see cref="GradBinding"/>). An argument that requires
    /// gradients has its own bound where the traced argument's was read or written, or gets a new one, as eager.
    /// </summary>
    public Tensor Replay(object[] args)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        foreach (var binding in gradBindings) binding.Restore();
        var bound = new Dictionary<object, object>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < inputs.Length; i++) bound[inputs[i].Buffer] = InputBuffer(args[i], device);
        // Only a function differentiating its arguments makes this list; a training step replays without it.
        List<(Tensor Argument, Tensor Grad)>? fresh = null;
        foreach (var info in argumentGradients)
        {
            var argument = (Tensor)args[info.GradOfArg];
            if (!info.FreshGradient)
            {
                bound[info.Buffer] = argument.Grad!.Buffer;
                continue;
            }
            var grad = Tensor.Empty(argument.shape, device, track: false);
            grad.Persistent = true;
            bound[info.Buffer] = grad.Buffer;
            (fresh ??= []).Add((argument, grad));
        }
        var beforeFirst = Replayed ? null : device.Counters.Snapshot();
        try
        {
            Run(bound);
        }
        catch
        {
            foreach (var (_, grad) in fresh ?? []) grad.Dispose();
            throw;
        }
        foreach (var (argument, grad) in fresh ?? [])
        {
            // As eager accumulation does: a gradient the engine made is freed when a new one replaces it.
            var previous = argument.Grad;
            argument.Grad = grad;
            if (previous is { Persistent: true, IsDisposed: false }) previous.Dispose();
        }
        if (beforeFirst != null) CountLoadsSince(beforeFirst);
        Replayed = true;
        outputStorage.AddRef();
        return new Tensor(outputStorage, (int[])outputShape.Clone()) { Name = outputName.Length > 0 ? outputName : null };
    }

    /// <summary>Runs every step with the buffers in <paramref name="bound"/> replacing the traced ones.</summary>
    private void Run(Dictionary<object, object> bound)
    {
        object Rebind(object v)
        {
            if (v is DeviceScalar s) return bound.TryGetValue(s.Buffer, out var nb) ? DeviceScalar.Over((DeviceBuffer<float>)nb) : v;
            return bound.TryGetValue(v, out var b) ? b : v;
        }
        var kernels = device.Kernels;
        var targets = new Dictionary<Type, object>();
        // The first replay is not timed: it compiles what its kernels need (the JIT's code for the CPU set's generic
        // kernels, the ILGPU set's kernel loads), which later replays do not.
        if (Profile && Replayed) stepTicks ??= new long[steps.Count];
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int index = 0; index < steps.Count; index++)
        {
            var step = steps[index];
            switch (step.Op)
            {
                case KernelCallOp:
                    var contract = step.Method!.DeclaringType!;
                    if (!targets.TryGetValue(contract, out var target)) targets[contract] = target = KernelSetDecorator.TargetOf(kernels, contract);
                    var callArgs = step.TouchesInput ? step.Args.Select(a => ArgWalker.Map(a, Rebind)).ToArray() : (object?[])step.Args.Clone();
                    KernelSetDecorator.Call(step.Method, target, callArgs);
                    break;
                case UploadOp:
                    var into = step.TouchesInput ? Rebind(step.Args[0]!) : step.Args[0]!;
                    if (into is DeviceBuffer<float> f) f.CopyFromHost((float[])step.Args[1]!);
                    else ((DeviceBuffer<int>)into).CopyFromHost((int[])step.Args[1]!);
                    break;
                case HostStepOp host:
                    host.Action();
                    break;
                case PoisonOp:
                    kernels.Fill((DeviceBuffer<float>)step.Args[0]!, float.NaN);
                    break;
                case FusedOp group:
                    group.Run(fusedKernels!, step.TouchesInput ? step.Args.Select(a => ArgWalker.Map(a, Rebind)).ToArray() : step.Args);
                    break;
            }
            if (stepTicks != null)
            {
                kernels.Synchronize();
                long now = System.Diagnostics.Stopwatch.GetTimestamp();
                stepTicks[index] += now - started;
                started = now;
            }
        }
        if (stepTicks != null) profiledReplays++;
    }

    /// <summary>The program as text: buffers by role, the memory plan, and every step with its arguments.</summary>
    public string Explain()
    {
        var tokens = buffers.ToDictionary(b => b.Buffer, b => b.Token, ReferenceEqualityComparer.Instance);
        foreach (var s in slots) tokens[s.Buffer] = "s" + slots.IndexOf(s);
        foreach (var (source, own) in constantBuffers) tokens[own] = tokens[source];
        // A constant only the folded calls read lives in a buffer freed once they ran.
        string Token(object b) => tokens.TryGetValue(b, out var t) ? t : "folding-scratch";
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine(ci, $"compiled graph on {device.Name}: {steps.Count(s => s.Op is not PoisonOp)} steps, {Launches} kernel launches per replay, " +
                          $"{steps.Count(s => s.Op is UploadOp)} uploads, {steps.Count(s => s.Op is HostStepOp)} host steps, {ScratchAllocations} scratch allocations inside kernels, {Fused.Groups} fused groups replacing {Fused.Calls} calls{(Poison ? ", poison on" : "")}");
        if (Replayed)
            sb.AppendLine(ci, $"kernel loads: {KernelLoads} kernels compiled and loaded in {KernelLoadTime.TotalMilliseconds:F1} ms by the build and the first replay (cached by the kernel set: later replays load none)");
        else sb.AppendLine("kernel loads: not replayed yet");
        foreach (var role in Enum.GetValues<BufferRole>())
        {
            var of = buffers.Where(b => b.Role == role).ToList();
            sb.AppendLine(ci, $"  {role}: {of.Count} buffers, {of.Sum(b => b.Bytes)} bytes");
        }
        sb.AppendLine(ci, $"memory plan: {buffers.Count(b => b.Role == BufferRole.Temporary)} temporaries ({TemporaryBytes} bytes in eager) in {slots.Count} slots ({SlotBytes} bytes)");
        foreach (var s in slots)
        {
            var tenants = string.Join(", ", s.Tenants.Select(t => $"{t.Token.Split('@')[0]} ops {t.First}-{t.Last}"));
            sb.AppendLine(ci, $"  s{slots.IndexOf(s)} [{Info(s.Buffer).Length}{(Info(s.Buffer).IsInt ? " int" : "")}]: {tenants}");
        }
        sb.AppendLine(ci, $"passes: {Passes}");
        if (gradBindings.Count > 0)
            sb.AppendLine(ci, $"gradients: {gradBindings.Count} tensors' Grad held by the graph and restored before each replay");
        foreach (var op in FoldedCalls)
            sb.AppendLine(ci, $"  folded at build: {op.Name}({string.Join(", ", ((KernelCallOp)op).Args.Select(a => Shorten(ArgWalker.Describe(a, Token))))})");
        sb.AppendLine("steps:");
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            var args = step.Op switch
            {
                KernelCallOp => string.Join(", ", step.Method!.GetParameters().Zip(step.Args, (p, a) => p.Name + "=" + Shorten(ArgWalker.Describe(a, Token)))),
                UploadOp u => Token(step.Args[0]!) + " <- " + u.Data.Length + " values from " + u.Origin,
                FusedOp => string.Join(", ", step.Args.Select(a => Shorten(ArgWalker.Describe(a, Token)))),
                PoisonOp => Token(step.Args[0]!) + " <- NaN",
                _ => "",
            };
            // A tree step in a product's epilogue is named in full: the arguments above are shortened.
            var tree = step.Op is KernelCallOp { Args: [_, _, _, GemmOutput { Epilogue.Tree: { } folded }] }
                ? $" + tree epilogue Fused[{folded.Expression}] (x{folded.ValueInput} the product)"
                : "";
            sb.AppendLine(ci, $"  {i,4} {step.Op.Name}({args}){tree}");
        }
        return sb.ToString();
    }

    private static string Shorten(string s) => s.Length <= 120 ? s : s[..117] + "...";

    /// <summary>Frees the slots and the graph's hold on the output.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var s in slots) (s.Buffer as IDisposable)!.Dispose();
        foreach (var c in constantBuffers.Values) c.Dispose();
        foreach (var map in gatherMaps) map.Dispose();
        foreach (var binding in gradBindings) binding.Release();
        outputStorage.Release();
    }

    /// <summary>
    /// A gradient buffer the traced call allocated and left as some tensor's <see cref="Tensor.Grad"/> (a parameter's
    /// gradient after a step that zeroed the old one). The graph writes that buffer in place on every replay, so it
    /// holds a reference to it: another variant's eager calls, or an eager step the user runs between compiled
    /// calls, may zero the gradients (freeing the tensor, not the buffer) and leave new ones on the parameters. Before
    /// each replay the tensor's Grad is pointed back at the graph's buffer, so that after the replay it holds what an
    /// eager call would have left; the gradient it replaces is disposed as the traced call disposed its
    /// predecessor (by zeroing it), and kept when the traced call kept it. Two variants of one training step thus
    /// coexist without retracing, each with its own gradient buffers.
    /// </summary>
    private sealed class GradBinding(Tensor owner, Storage storage, int[] shape, string? name, bool disposesReplaced)
    {
        /// <summary>The bindings of a traced call: the tensors whose Grad ended up in a buffer the call allocated.</summary>
        public static List<GradBinding> Of(Trace trace, Dictionary<object, BufferInfo> infos)
        {
            var list = new List<GradBinding>();
            foreach (var (owner, before) in trace.GradAssignments)
            {
                if (owner.IsDisposed || owner.Grad is not { IsDisposed: false } grad) continue;
                if (!infos.TryGetValue(grad.Buffer, out var info) || info.Role != BufferRole.PersistentNew) continue;
                var storage = grad.SharedStorage;
                storage.AddRef();
                list.Add(new GradBinding(owner, storage, grad.shape, grad.Name, disposesReplaced: before is null or { IsDisposed: true }));
            }
            return list;
        }

        /// <summary>Points the owner's Grad at the graph's buffer, unless it already is.</summary>
        public void Restore()
        {
            if (owner.IsDisposed) return;
            var current = owner.Grad;
            if (current is { IsDisposed: false } && ReferenceEquals(current.Buffer, storage.Buffer)) return;
            if (disposesReplaced && current is { Persistent: true, IsDisposed: false }) current.Dispose();
            owner.Grad = Tensor.Over(storage, shape, name);
        }

        /// <summary>Drops the graph's reference (the buffer lives on while the owner's Grad still uses it).</summary>
        public void Release() => storage.Release();
    }

    /// <summary>A filler op: NaN into a slot whose value just died.</summary>
    private sealed class PoisonOp : TraceOp
    {
        public PoisonOp(object slot) => Buffers.Add(slot);

        public override string Name => "Poison";
    }

    private sealed record ReplayStep(TraceOp Op, MethodInfo? Method, object?[] Args, bool TouchesInput);
}

/// <summary>How many calls the passes before fusion took out of a graph.</summary>
internal sealed class PassCounts
{
    /// <summary>Copies removed by <see cref="CopyElimination"/>.</summary>
    public int CopiesRemoved;

    /// <summary>Calls run once at build time by <see cref="ConstantFolding"/>.</summary>
    public int CallsFolded;

    /// <summary>Calls removed by <see cref="DeadCodeElimination"/>.</summary>
    public int DeadCallsRemoved;

    /// <summary>Optimizer calls merged into multi-tensor updates by <see cref="MultiTensorUpdates"/>.</summary>
    public int UpdatesMerged;

    /// <summary>Bias additions folded into the product before them by <see cref="GemmBiasFusion"/>.</summary>
    public int BiasEpilogues;

    /// <summary>Residual additions folded into the product before them by <see cref="GemmEpilogueFusion"/>.</summary>
    public int ResidualEpilogues;

    /// <summary>Activation chains folded into the product before them by <see cref="GemmEpilogueFusion"/>.</summary>
    public int ActivationEpilogues;

    /// <summary>Repeated computations removed by <see cref="CommonSubexpressionElimination"/>.</summary>
    public int CommonSubexpressionsRemoved;

    /// <summary>Permutes folded into the operand loads of the products reading them by <see cref="PermuteFolding"/>.</summary>
    public int PermutesFolded;

    /// <summary>
    /// Reductions that absorbed the elementwise group before them (<see cref="Fusion"/>), less those whose group a
    /// product's epilogue then took over (<see cref="GemmTreeFusion"/>: they run as plain reduces).
    /// </summary>
    public int ReductionEpilogues;

    /// <summary>Repeats of cheap calls added so that each reader of their value fuses its own copy (<see cref="Rematerialization"/>).</summary>
    public int Recomputed;

    /// <summary>Reductions run in one launch with a sibling reduction (<see cref="Fusion"/>; two per pair).</summary>
    public int ReductionsPaired;

    /// <summary>Reduction launches left without a sibling only because every one lay beyond the set's reach (<see cref="Fusion.PairSiblings(List{TraceOp}, out int, long, out int)"/>).</summary>
    public int PairsBeyondReach;

    /// <summary>Reductions run in one launch with the elementwise launch after them that reads them back (<see cref="ReduceThenMapFusion"/>).</summary>
    public int ReductionsMapped;

    /// <summary>Reductions with their maps run in one launch with others (<see cref="ReduceThenMapBatching"/>; all members of each batch).</summary>
    public int ReductionMapsBatched;

    /// <summary>Zero fills run with the index-add into the filled buffer (<see cref="IndexScatterFusion"/>).</summary>
    public int ZeroFillsFolded;

    /// <summary>SPN product layers run in one launch with the sum layer that reads them (<see cref="SpnProductSumFusion"/>).</summary>
    public int SpnProductSums;

    /// <summary>Negations of a sum or mean moved onto the reduction's input, where they fuse (<see cref="NegatedReductions"/>).</summary>
    public int NegationsMoved;

    /// <summary>Softmaxes run in one launch with others they are independent of (<see cref="SoftmaxBatching"/>; all members of each batch).</summary>
    public int SoftmaxesBatched;

    /// <summary>Fused elementwise trees folded into the product whose result they read by <see cref="GemmTreeFusion"/>.</summary>
    public int TreeEpilogues;

    /// <summary>Calls of those trees that no longer launch (a reduction left in a tree's place still does).</summary>
    public int TreeEpilogueCalls;

    /// <summary>Cross-entropies run with their gradient's one-hot, softmax and difference by <see cref="SoftmaxCrossEntropyFusion"/>.</summary>
    public int LossGradientsFused;

    public override string ToString() =>
        $"{CopiesRemoved} copies eliminated, {CallsFolded} calls folded into constants, {DeadCallsRemoved} dead calls removed, {UpdatesMerged} optimizer calls merged into multi-tensor updates, {BiasEpilogues} bias additions folded into GEMM epilogues, " +
        $"{ResidualEpilogues} residual additions and {ActivationEpilogues} activation chains folded into GEMM epilogues, {CommonSubexpressionsRemoved} common subexpressions removed, " +
        $"{PermutesFolded} permutes folded into GEMM operand loads, {ReductionEpilogues} elementwise groups fused into the reduction after them, {ReductionsPaired} reductions paired with a sibling, {PairsBeyondReach} left unpaired beyond the set's reach, {ReductionsMapped} reductions run with the elementwise launch that reads them back, {SoftmaxesBatched} softmaxes run in batches, {NegationsMoved} negations moved into the reduction before them, {SpnProductSums} SPN product layers run with the sum layer reading them, {ZeroFillsFolded} zero fills run with the index-add after them, {ReductionMapsBatched} reductions with their maps run in batches, {TreeEpilogues} elementwise trees folded into GEMM epilogues, " +
        $"{Recomputed} cheap calls repeated for a second reader, {LossGradientsFused} cross-entropies computed with their gradient";
}
