using System.Diagnostics;
using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>One operation of a recorded call, with the buffers it touches.</summary>
internal abstract class TraceOp
{
    /// <summary>Every buffer the operation reads or writes (a device scalar's buffer included).</summary>
    public List<object> Buffers { get; } = new();

    /// <summary>A short name for messages and <see cref="CompiledFunction.Explain"/>.</summary>
    public abstract string Name { get; }
}

/// <summary>A call of a kernel-set entry point (core or capability) with its arguments as passed.</summary>
internal sealed class KernelCallOp : TraceOp
{
    public KernelCallOp(MethodInfo method, object?[] args)
    {
        Method = method;
        Args = args.Select(a => ArgWalker.Map(a, b => b)).ToArray();
        foreach (var a in Args) ArgWalker.Collect(a, Buffers);
    }

    public MethodInfo Method { get; }

    /// <summary>Buffers the kernel set allocated for itself during the traced call (scratch, freed before it returned).</summary>
    public long ScratchAllocations { get; set; }

    public object?[] Args { get; }

    public override string Name => KernelSetDecorator.NameOf(Method);

    /// <summary>True when this is a call of the core contract's entry point <paramref name="name"/> (not a capability's).</summary>
    public bool IsCore(string name) => Method.DeclaringType == typeof(IKernelSet) && Method.Name == name;
}

/// <summary>A copy of host data into a device buffer (a constant the function uploaded, such as a scalar).</summary>
internal sealed class UploadOp : TraceOp
{
    public UploadOp(object buffer, Array data, string origin)
    {
        Buffers.Add(buffer);
        Data = data;
        Origin = origin;
    }

    public Array Data { get; }

    /// <summary>The code that uploaded (a stack frame), for messages.</summary>
    public string Origin { get; }

    public override string Name => "Upload";
}

/// <summary>Host work registered with <see cref="Compiler.RunOnEveryCall"/>: run again at this point of every replay.</summary>
internal sealed class HostStepOp(Action action) : TraceOp
{
    public Action Action { get; } = action;

    public override string Name
    {
        get
        {
            // A lambda lives in a compiler-made class and method: name the type and method it was written in.
            var type = Action.Method.DeclaringType;
            while (type is { DeclaringType: not null } && type.Name.StartsWith('<')) type = type.DeclaringType;
            var method = Action.Method.Name;
            if (method.StartsWith('<') && method.IndexOf('>') is var end and > 1) method = method[1..end];
            return "HostStep " + type?.Name + "." + method;
        }
    }
}

/// <summary>
/// The record of one traced call: the operations in order, the buffers allocated during it, and the first host read
/// (which a replay could not reproduce). Installed for the current execution flow by <see cref="Begin"/>.
/// </summary>
internal sealed class Trace : IHostTransferObserver
{
    private static readonly AsyncLocal<Trace?> Active = new();
    private readonly bool strict;
    private int kernelDepth;
    private int hostStepDepth;

    public Trace(Device device, bool strict)
    {
        Device = device;
        this.strict = strict;
    }

    /// <summary>The device whose kernel calls are recorded.</summary>
    public Device Device { get; }

    /// <summary>The trace recording the current execution flow, or null.</summary>
    public static Trace? Current => Active.Value;

    public List<TraceOp> Ops { get; } = new();

    /// <summary>The buffers of the call's arguments (set once the call returned).</summary>
    public object[] Inputs { get; set; } = [];

    /// <summary>The buffers of the arguments' gradients when the call began (null: none, or not a tensor requiring gradients).</summary>
    public object?[] InputGradients { get; set; } = [];

    /// <summary>Buffers handed out during the call, in order.</summary>
    public List<object> Allocations { get; } = new();

    /// <summary>The range checks made on index tensors during the call (op, extent), repeated before each replay.</summary>
    public List<(IndexTensor Index, string Op, int Extent)> RangeChecks { get; } = new();

    /// <summary>Records that <paramref name="index"/> was checked against [0, <paramref name="extent"/>) by <paramref name="op"/>.</summary>
    public void RangeChecked(IndexTensor index, string op, int extent)
    {
        if (kernelDepth == 0) RangeChecks.Add((index, op, extent));
    }

    /// <summary>
    /// The tensors whose <see cref="Tensor.Grad"/> the call assigned, in order of first assignment, each with the
    /// gradient it held before that (null: none).
    /// </summary>
    public List<(Tensor Owner, Tensor? Before)> GradAssignments { get; } = new();

    private readonly HashSet<Tensor> gradOwners = new(ReferenceEqualityComparer.Instance);

    /// <summary>Records that <paramref name="owner"/>'s gradient is being replaced, the first time in this call.</summary>
    public void GradAssigned(Tensor owner, Tensor? before)
    {
        if (gradOwners.Add(owner)) GradAssignments.Add((owner, before));
    }

    /// <summary>What read device data back to the host during the call (null: nothing).</summary>
    public string? HostRead { get; private set; }

    /// <summary>Starts recording the kernel calls on <see cref="Device"/> and the host copies of this flow.</summary>
    public IDisposable Begin()
    {
        var kernels = Device.UseKernels(k => RecordingKernelSet.Create(k, this));
        var transfers = HostTransfers.Observe(this);
        var previous = Active.Value;
        Active.Value = this;
        return new Scope(() =>
        {
            Active.Value = previous;
            transfers.Dispose();
            kernels.Dispose();
        });
    }

    public void Allocated(object buffer) => Allocations.Add(buffer);

    /// <summary>Records a kernel call made by the traced function (not one a kernel makes inside another); null when not recorded.</summary>
    public KernelCallOp? KernelCall(MethodInfo method, object?[] args)
    {
        if (kernelDepth > 0 || hostStepDepth > 0) return null;
        var op = new KernelCallOp(method, args);
        Ops.Add(op);
        return op;
    }

    public void EnterKernel() => kernelDepth++;

    public void LeaveKernel() => kernelDepth--;

    /// <summary>Runs <paramref name="action"/> now and records it, so that replays run it at the same point.</summary>
    public void HostStep(Action action)
    {
        Ops.Add(new HostStepOp(action));
        hostStepDepth++;
        try
        {
            action();
        }
        finally
        {
            hostStepDepth--;
        }
    }

    /// <inheritdoc />
    public void Uploading<T>(DeviceBuffer<T> buffer, ReadOnlySpan<T> data) where T : unmanaged
    {
        // Copies a kernel makes for itself replay with it; a host step redoes its own.
        if (kernelDepth > 0 || hostStepDepth > 0) return;
        Ops.Add(new UploadOp(buffer, data.ToArray(), Caller().Frame));
    }

    /// <inheritdoc />
    public void Downloading<T>(DeviceBuffer<T> buffer) where T : unmanaged
    {
        if (kernelDepth > 0) return;
        var (api, frame) = Caller();
        var message = $"{api} read a {buffer.Length}-element device buffer back to the host, called from {frame}";
        if (strict)
            throw new InvalidOperationException($"Compiler (strict): {message}; a compiled graph cannot contain host reads. " +
                                                "Keep the value on the device (a DeviceScalar) or read it outside the compiled function.");
        HostRead ??= message;
    }

    /// <summary>The engine entry point that made the copy and the first frame outside the engine's core layers.</summary>
    private static (string Api, string Frame) Caller()
    {
        string? api = null;
        string frame = "an unknown caller";
        foreach (var f in new StackTrace(2, false).GetFrames())
        {
            var type = f.GetMethod()?.DeclaringType;
            if (type == null) continue;
            var ns = type.Namespace ?? "";
            if (type == typeof(Trace) || type.Name.StartsWith("DeviceBuffer", StringComparison.Ordinal)) continue;
            if (ns.StartsWith("Engine.Kernels", StringComparison.Ordinal) || ns.StartsWith("Engine.Autodiff", StringComparison.Ordinal))
            {
                // The outermost engine frame is the call the user wrote (Tensor.Item rather than Tensor.ToArray under it).
                if (!type.Name.StartsWith('<')) api = type.Name + "." + f.GetMethod()!.Name;
                continue;
            }
            frame = (type.FullName ?? type.Name) + "." + f.GetMethod()!.Name;
            break;
        }
        return (api ?? "a host copy", frame);
    }

    private sealed class Scope(Action close) : IDisposable
    {
        private bool done;

        public void Dispose()
        {
            if (done) return;
            done = true;
            close();
        }
    }
}
