using System.Diagnostics;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Distributed;

/// <summary>Settings of a <see cref="DistributedDataParallel"/> wrapper.</summary>
public sealed record DistributedDataParallelOptions
{
    /// <summary>
    /// Upper bound on a bucket's gradient bytes (PyTorch's <c>bucket_cap_mb</c>, default 25 MB): gradients are packed
    /// into buckets of about this size, each all-reduced as one message as soon as all of its gradients are final.
    /// Smaller buckets start communicating earlier in the backward pass; larger ones pay the per-message latency
    /// less often. A parameter larger than the cap gets a bucket of its own.
    /// </summary>
    public double BucketCapMegabytes { get; init; } = 25;

    /// <summary>
    /// True (the default) to start each bucket's all-reduce during the backward pass, from the gradient hooks; false to
    /// all-reduce every bucket after the backward pass has finished (no overlap: the baseline that measures the
    /// communication time on its own).
    /// </summary>
    public bool OverlapWithBackward { get; init; } = true;

    /// <summary>The rank whose initial parameters and buffers every rank starts from.</summary>
    public int BroadcastRoot { get; init; }
}

/// <summary>Time and volume of the gradient synchronisations since the last <see cref="DistributedDataParallel.ResetStatistics"/>.</summary>
/// <param name="Synchronizations">Backward passes (and step-time synchronisations) whose gradients were all-reduced.</param>
/// <param name="Buckets">Bucket all-reduces run.</param>
/// <param name="Bytes">Gradient bytes this rank contributed.</param>
/// <param name="AllReduce">Sum over buckets of the time from starting its all-reduce to its completion.</param>
/// <param name="Hidden">The part of <paramref name="AllReduce"/> that ran while the backward pass was still computing.</param>
/// <param name="ExposedWait">Time the training thread was blocked waiting for all-reduces after the backward pass had finished.</param>
public readonly record struct GradientSyncStatistics(int Synchronizations, int Buckets, long Bytes, TimeSpan AllReduce, TimeSpan Hidden,
    TimeSpan ExposedWait)
{
    /// <summary>Hidden / AllReduce: the fraction of the bucket all-reduce time overlapped with the backward pass.</summary>
    public double HiddenFraction => AllReduce > TimeSpan.Zero ? Hidden / AllReduce : 0;
}

/// <summary>
/// Data-parallel training of a module over the ranks of a <see cref="Communicator"/>, in the style of PyTorch's
/// <c>DistributedDataParallel</c> and Horovod: every rank holds a replica, runs forward and backward on its own
/// share of the global batch, and the gradients are averaged over the ranks while the backward pass is still running,
/// so every replica takes the same step.
/// </summary>
/// <remarks>
/// <para>Construction broadcasts the module's parameters and index buffers from <see cref="DistributedDataParallelOptions.BroadcastRoot"/>,
/// so the replicas start equal, and packs the parameters, last registered first (their gradients are ready first),
/// into buckets. A gradient hook on every parameter (<see cref="Tensor.RegisterPostAccumulateGradHook"/>) copies its
/// gradient into its bucket when the backward walk has finished accumulating it; a complete bucket starts its
/// non-blocking all-reduce at once, while the walk goes on into the layers below. Buckets start strictly in index
/// order, so every rank issues the same collectives in the same order whatever its graph. When the walk ends
/// (<see cref="Autograd.QueueCallback"/>) the remaining buckets start, the wrapper waits for all of them, divides by
/// the number of ranks and writes the averages back into the parameters' <see cref="Tensor.Grad"/>.</para>
/// <para>A parameter that got no gradient on this rank contributes zeros; one that got a gradient on any rank gets
/// the average on every rank (a flag per parameter travels in the last bucket), one that got none anywhere keeps a
/// null gradient, as without the wrapper.</para>
/// <para>Optimizers work unchanged: every backward pass is synchronised, so <see cref="Sam"/>'s and
/// <see cref="FiniteDifferenceGr"/>'s two gradient evaluations are each averaged (the perturbation uses the global
/// gradient) and the step is the same on every rank. <see cref="DoubleBackpropGr"/> takes its gradients with
/// <see cref="Autograd.Grad(Tensor, IReadOnlyList{Tensor}, bool, bool?)"/>, which fires no hooks: after
/// <see cref="RegisterOptimizer"/> the wrapper all-reduces, just before the update, every gradient no hook saw, so
/// DoubleBackpropGr steps with the average of the ranks' combined gradients g_r + γ H_r g_r, the gradient of the
/// mean of the per-rank penalised losses L_r + (γ/2)‖∇L_r‖² (not of the penalty of the global gradient).</para>
/// <para>Checkpoints: the replicas are identical, so rank 0 saves <see cref="Module"/> (the wrapped module, under
/// the same names as without the wrapper) and any number of ranks can load it
/// (<see cref="DistributedCheckpoint"/>).</para>
/// </remarks>
public sealed class DistributedDataParallel : Module
{
    private readonly Module module;
    private readonly Communicator communicator;
    private readonly DistributedDataParallelOptions options;
    private readonly Device device;
    private readonly Tensor[] parameters;
    private readonly Slot[] slots;
    private readonly Bucket[] buckets;
    private readonly List<IDisposable> hooks = new();
    private readonly HashSet<Tensor> synchronized = new(ReferenceEqualityComparer.Instance);
    private readonly float[] usedFlags;
    private readonly DeviceBuffer<float> flagBuffer;
    private DeviceBuffer<float>? zeros;
    private bool passActive;
    private int nextLaunch;
    private int noSyncDepth;
    private GradientSyncStatistics statistics;

    /// <summary>
    /// Wraps <paramref name="module"/> for training over <paramref name="communicator"/>'s ranks; every rank must
    /// construct it at the same point with the same architecture. The wrapper does not own the module or the
    /// communicator: dispose them yourself.
    /// </summary>
    /// <exception cref="ArgumentException">The module has no parameters or holds them on more than one device, or the
    /// bucket cap is not positive.</exception>
    public DistributedDataParallel(Module module, Communicator communicator, DistributedDataParallelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(communicator);
        this.options = options ?? new DistributedDataParallelOptions();
        if (!(this.options.BucketCapMegabytes > 0))
            throw new ArgumentException($"DistributedDataParallel: the bucket cap must be positive, got {this.options.BucketCapMegabytes} MB.", nameof(options));
        if (this.options.BroadcastRoot < 0 || this.options.BroadcastRoot >= communicator.Size)
            throw new ArgumentException($"DistributedDataParallel: broadcast root {this.options.BroadcastRoot} is not a rank of the group of {communicator.Size}.", nameof(options));
        this.module = RegisterModule("module", module);
        this.communicator = communicator;
        parameters = module.Parameters().ToArray();
        if (parameters.Length == 0) throw new ArgumentException($"DistributedDataParallel: the {module.GetType().Name} has no parameters to train.", nameof(module));
        device = parameters[0].Device;
        foreach (var p in parameters)
            if (!ReferenceEquals(p.Device, device))
                throw new ArgumentException($"DistributedDataParallel: parameters live on {device.Name} and {p.Device.Name}; one device per replica.", nameof(module));

        BroadcastState();
        (slots, buckets) = PlanBuckets(parameters, this.options.BucketCapMegabytes, device);
        usedFlags = new float[parameters.Length];
        flagBuffer = device.Kernels.Allocate(parameters.Length);
        for (int i = 0; i < parameters.Length; i++)
        {
            int index = i;
            hooks.Add(parameters[i].RegisterPostAccumulateGradHook(_ => OnGradientReady(index)));
        }
    }

    /// <summary>The wrapped module (save this one in checkpoints: its names carry no "module." prefix).</summary>
    public Module Module => module;

    /// <summary>The ranks this wrapper averages over.</summary>
    public Communicator Communicator => communicator;

    /// <summary>The settings.</summary>
    public DistributedDataParallelOptions Options => options;

    /// <summary>Number of gradient buckets.</summary>
    public int BucketCount => buckets.Length;

    /// <summary>The parameter indices (in <see cref="Nn.Module.Parameters"/> order of the wrapped module) of each bucket, in launch order.</summary>
    public IReadOnlyList<IReadOnlyList<int>> BucketParameters => buckets.Select(b => (IReadOnlyList<int>)b.Parameters).ToList();

    /// <summary>Synchronisation time and volume since the last <see cref="ResetStatistics"/>.</summary>
    public GradientSyncStatistics Statistics => statistics;

    /// <summary>Clears <see cref="Statistics"/>.</summary>
    public void ResetStatistics() => statistics = default;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        ThrowIfPassBroken();
        return module.Forward(input);
    }

    /// <summary>
    /// Suspends gradient synchronisation until the returned scope is disposed (PyTorch's <c>no_sync()</c>), for
    /// gradient accumulation: backward passes inside it only accumulate locally, and the first backward pass after it
    /// averages the accumulated totals. Scopes nest.
    /// </summary>
    public IDisposable NoSync()
    {
        noSyncDepth++;
        return new Scope(() => noSyncDepth--);
    }

    /// <summary>
    /// Registers a step pre-hook on <paramref name="optimizer"/> (<see cref="Optimizer.RegisterStepPreHook"/>) that runs
    /// <see cref="SynchronizeGradients"/> before every update, so gradients that no backward hook saw (taken with
    /// <see cref="Autograd.Grad(Tensor, IReadOnlyList{Tensor}, bool, bool?)"/>, as <see cref="DoubleBackpropGr"/> does, or
    /// set by hand) are averaged too. Costless when every gradient came from a synchronised backward pass. Dispose
    /// the returned handle to remove the hook.
    /// </summary>
    public IDisposable RegisterOptimizer(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        return optimizer.RegisterStepPreHook(_ => SynchronizeGradients());
    }

    /// <summary>
    /// All-reduces (averages) now, blocking, the gradient of every parameter whose gradient was not averaged by a
    /// backward pass; does nothing when there is none, or inside <see cref="NoSync"/>. Every rank must call it at the
    /// same point.
    /// </summary>
    public void SynchronizeGradients()
    {
        ThrowIfPassBroken();
        if (noSyncDepth > 0) return;
        if (!parameters.Any(p => p.Grad != null && !synchronized.Contains(p.Grad))) return;
        BeginPass(queueFinish: false);
        for (int i = 0; i < parameters.Length; i++)
            if (parameters[i].Grad != null) MarkReady(i, copyNow: true);
        FinishPass();
    }

    /// <summary>
    /// Checks that every rank holds bitwise the same parameters (a checksum per parameter, compared by an all-reduce
    /// of its minimum and maximum); a collective, so every rank must call it.
    /// </summary>
    /// <exception cref="InvalidOperationException">A parameter differs between ranks; the message names it.</exception>
    public void VerifyReplicasInSync()
    {
        var named = module.NamedParameters();
        var low = new long[named.Count];
        for (int i = 0; i < named.Count; i++) low[i] = Checksum(named[i].Value.ToArray());
        var high = (long[])low.Clone();
        communicator.AllReduce<long>(low, ReduceOperation.Min);
        communicator.AllReduce<long>(high, ReduceOperation.Max);
        var differing = Enumerable.Range(0, named.Count).Where(i => low[i] != high[i]).Select(i => named[i].Name).ToList();
        if (differing.Count > 0)
            throw new InvalidOperationException($"DistributedDataParallel: rank {communicator.Rank}: the replicas differ in {string.Join(", ", differing)}.");
    }

    private static long Checksum(float[] values)
    {
        ulong h = 14695981039346656037UL;
        foreach (var v in values)
        {
            h ^= BitConverter.SingleToUInt32Bits(v);
            h *= 1099511628211UL;
        }
        return (long)h;
    }

    // ---------- construction ----------

    /// <summary>Copies the root's parameters and index buffers to every rank.</summary>
    private void BroadcastState()
    {
        int root = options.BroadcastRoot;
        var pending = parameters.Select(p => communicator.StartBroadcast(p.Buffer, root)).ToList();
        CommRequest.WaitAll(pending);
        foreach (var (name, buffer) in module.NamedBuffers())
        {
            var values = buffer.Read();
            communicator.Broadcast<int>(values, root);
            if (communicator.Rank == root) continue;
            try
            {
                buffer.Validate(values);
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"DistributedDataParallel: buffer '{name}' from rank {root} does not fit this replica: {e.Message}", e);
            }
            buffer.Write(values);
        }
    }

    /// <summary>Packs the parameters, last first, into buckets of at most the cap; the last bucket also carries one used-flag per parameter.</summary>
    private static (Slot[] Slots, Bucket[] Buckets) PlanBuckets(Tensor[] parameters, double capMegabytes, Device device)
    {
        long capElements = Math.Max(1, (long)(capMegabytes * 1024 * 1024 / sizeof(float)));
        var slots = new Slot[parameters.Length];
        var groups = new List<List<int>>();
        var current = new List<int>();
        long filled = 0;
        for (int i = parameters.Length - 1; i >= 0; i--)
        {
            long n = parameters[i].Size;
            if (current.Count > 0 && filled + n > capElements)
            {
                groups.Add(current);
                current = new List<int>();
                filled = 0;
            }
            current.Add(i);
            filled += n;
        }
        groups.Add(current);
        var buckets = new Bucket[groups.Count];
        for (int b = 0; b < groups.Count; b++)
        {
            long offset = 0;
            foreach (int i in groups[b])
            {
                slots[i] = new Slot(b, offset);
                offset += parameters[i].Size;
            }
            long flags = b == groups.Count - 1 ? parameters.Length : 0;
            buckets[b] = new Bucket(groups[b].ToArray(), offset, device.Kernels.Allocate(offset + flags));
        }
        return (slots, buckets);
    }

    // ---------- one synchronisation ----------

    private void OnGradientReady(int index)
    {
        if (noSyncDepth > 0) return;
        if (!passActive)
        {
            ThrowIfPassBroken();
            BeginPass(queueFinish: true);
        }
        MarkReady(index, copyNow: options.OverlapWithBackward);
        // Open MPI advances non-blocking collectives inside MPI calls: testing here, between backward ops, keeps the
        // started buckets moving even without a progress thread.
        for (int b = 0; b < nextLaunch; b++) buckets[b].Request?.Test();
    }

    private void BeginPass(bool queueFinish)
    {
        passActive = true;
        brokenPass = true;
        nextLaunch = 0;
        synchronized.Clear();
        Array.Clear(usedFlags);
        foreach (var b in buckets)
        {
            b.Pending = b.Parameters.Length;
            b.Request = null;
        }
        foreach (var slot in slots) slot.Ready = slot.Packed = false;
        if (queueFinish) Autograd.QueueCallback(FinishPass);
    }

    /// <summary>Marks a parameter's gradient final; with <paramref name="copyNow"/>, packs it and starts every bucket that became complete.</summary>
    private void MarkReady(int index, bool copyNow)
    {
        var slot = slots[index];
        if (slot.Ready) return;
        slot.Ready = true;
        usedFlags[index] = 1f;
        if (!copyNow) return;
        Pack(index);
        LaunchCompleteBuckets();
    }

    /// <summary>Copies a parameter's gradient (zeros without one) into its bucket slot.</summary>
    private void Pack(int index)
    {
        var slot = slots[index];
        if (slot.Packed) return;
        slot.Packed = true;
        var p = parameters[index];
        var bucket = buckets[slot.Bucket];
        if (p.Grad is { } g) device.Kernels.Copy(g.Buffer, 0, bucket.Buffer, slot.Offset, p.Size);
        else device.Kernels.Copy(Zeros(p.Size), 0, bucket.Buffer, slot.Offset, p.Size);
        bucket.Pending--;
    }

    private DeviceBuffer<float> Zeros(long n)
    {
        if (zeros == null || zeros.Length < n)
        {
            zeros?.Dispose();
            zeros = device.Kernels.Allocate(parameters.Max(p => p.Size));
            device.Kernels.Fill(zeros, 0f);
        }
        return zeros;
    }

    /// <summary>Starts, in index order, every bucket whose gradients are all packed.</summary>
    private void LaunchCompleteBuckets()
    {
        while (nextLaunch < buckets.Length && buckets[nextLaunch].Pending == 0)
        {
            var bucket = buckets[nextLaunch];
            if (nextLaunch == buckets.Length - 1)
            {
                // The used-flags travel at the end of the last bucket, which starts only once every flag is known.
                flagBuffer.CopyFromHost(usedFlags);
                device.Kernels.Copy(flagBuffer, 0, bucket.Buffer, bucket.GradientLength, parameters.Length);
            }
            bucket.Request = communicator.StartAllReduce(bucket.Buffer);
            nextLaunch++;
        }
    }

    /// <summary>Ends a synchronisation: starts what is left, waits, averages and writes the gradients back.</summary>
    private void FinishPass()
    {
        long backwardEnd = Stopwatch.GetTimestamp();
        for (int i = 0; i < parameters.Length; i++)
        {
            var slot = slots[i];
            if (!slot.Ready)
            {
                // Not reached by this pass: a gradient accumulated earlier (under NoSync) still counts; without one,
                // zeros and a zero flag, so the buckets line up on every rank.
                slot.Ready = true;
                usedFlags[i] = parameters[i].Grad != null ? 1f : 0f;
            }
            Pack(i);
        }
        LaunchCompleteBuckets();
        long waitStart = Stopwatch.GetTimestamp();
        foreach (var b in buckets) b.Request!.Wait();
        var exposed = Stopwatch.GetElapsedTime(waitStart);

        float scale = 1f / communicator.Size;
        var last = buckets[^1];
        device.Kernels.Copy(last.Buffer, last.GradientLength, flagBuffer, 0, parameters.Length);
        var ranksWithGradient = flagBuffer.ToArray();
        foreach (var b in buckets) device.Kernels.Affine(b.Buffer, b.Buffer, scale, 0f);
        for (int i = 0; i < parameters.Length; i++)
            if (ranksWithGradient[i] > 0) Unpack(i);

        TimeSpan reduce = TimeSpan.Zero, hidden = TimeSpan.Zero;
        long bytes = 0;
        foreach (var b in buckets)
        {
            var r = b.Request!;
            reduce += r.Duration ?? TimeSpan.Zero;
            if (r.StartedAt < backwardEnd) hidden += Stopwatch.GetElapsedTime(r.StartedAt, Math.Min(r.CompletedAt, backwardEnd));
            bytes += r.Bytes;
        }
        statistics = new GradientSyncStatistics(statistics.Synchronizations + 1, statistics.Buckets + buckets.Length,
            statistics.Bytes + bytes, statistics.AllReduce + reduce, statistics.Hidden + hidden, statistics.ExposedWait + exposed);
        passActive = false;
        brokenPass = false;
    }

    /// <summary>Writes a parameter's averaged gradient into its <see cref="Tensor.Grad"/> (an engine-owned buffer when it has none to overwrite).</summary>
    private void Unpack(int index)
    {
        var p = parameters[index];
        var slot = slots[index];
        var g = p.Grad;
        if (g is not { IsLeaf: true, Persistent: true, IsDisposed: false })
        {
            // None, or one recorded by a create-graph pass: the averaged gradient replaces it as a plain tensor.
            g = Tensor.Empty(p.Shape, device);
            g.Persistent = true;
            p.Grad = g;
        }
        device.Kernels.Copy(buckets[slot.Bucket].Buffer, slot.Offset, g.Buffer, 0, p.Size);
        synchronized.Add(g);
    }

    private bool brokenPass;

    /// <summary>Throws if a synchronisation started and never finished (its backward pass threw): the ranks are out of step.</summary>
    private void ThrowIfPassBroken()
    {
        if (!brokenPass) return;
        throw new InvalidOperationException(
            $"DistributedDataParallel: rank {communicator.Rank}: a backward pass ended without finishing its gradient synchronisation (it threw); the ranks' collectives are out of step, so training cannot go on. Abort the group (Communicator.RunOrAbort does).");
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        // The wrapped module belongs to the caller: only the wrapper's own hooks and buffers go.
        if (!disposing) return;
        foreach (var h in hooks) h.Dispose();
        hooks.Clear();
        foreach (var b in buckets) b.Buffer.Dispose();
        flagBuffer.Dispose();
        zeros?.Dispose();
    }

    private sealed class Slot(int bucket, long offset)
    {
        public int Bucket { get; } = bucket;
        public long Offset { get; } = offset;
        public bool Ready { get; set; }
        public bool Packed { get; set; }
    }

    private sealed class Bucket(int[] parameters, long gradientLength, DeviceBuffer<float> buffer)
    {
        public int[] Parameters { get; } = parameters;
        public long GradientLength { get; } = gradientLength;
        public DeviceBuffer<float> Buffer { get; } = buffer;
        public int Pending { get; set; }
        public CommRequest? Request { get; set; }
    }

    private sealed class Scope(Action close) : IDisposable
    {
        private Action? close = close;

        public void Dispose()
        {
            close?.Invoke();
            close = null;
        }
    }
}
