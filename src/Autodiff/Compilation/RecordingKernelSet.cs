using System.Reflection;
using System.Runtime.ExceptionServices;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>The core contract and every capability in one interface, so one recording proxy serves them all.</summary>
internal interface IRecordableKernelSet : IKernelSet, IFftKernels, ISpnKernels, IOptimizerKernels, ILayerNormKernels
{
}

/// <summary>
/// A decorator kernel set (installed with <see cref="Device.UseKernels"/>) that forwards every call to the set in
/// force and records it in a <see cref="Trace"/>: allocations, and each core or capability entry point with its
/// arguments. Capability calls go to the inner set's own capability, or to its composite fallback, exactly as they
/// would without the recorder.
/// </summary>
internal class RecordingKernelSet : DispatchProxy
{
    private IKernelSet inner = null!;
    private Trace trace = null!;

    /// <summary>A recorder over <paramref name="inner"/> writing to <paramref name="trace"/>.</summary>
    public static IKernelSet Create(IKernelSet inner, Trace trace)
    {
        var proxy = Create<IRecordableKernelSet, RecordingKernelSet>();
        var self = (RecordingKernelSet)(object)proxy;
        self.inner = inner;
        self.trace = trace;
        return proxy;
    }

    /// <summary>The object a method of <paramref name="contract"/> is called on: the set, or its capability.</summary>
    public static object TargetOf(IKernelSet kernels, Type contract) =>
        contract == typeof(IKernelSet) ? kernels
        : contract == typeof(IOptimizerKernels) ? kernels.OptimizerKernels()
        : contract == typeof(IFftKernels) ? kernels.FftKernels()
        : contract == typeof(ISpnKernels) ? kernels.SpnKernels()
        : contract == typeof(ILayerNormKernels) ? kernels.LayerNormKernels()
        : throw new NotSupportedException($"Compiler: kernel contract {contract.Name} is not known to the recorder.");

    /// <inheritdoc />
    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        var method = targetMethod!;
        args ??= [];
        switch (method.Name)
        {
            case "get_Name":
                return inner.Name + "+recording";
            case nameof(IKernelSet.Synchronize):
                inner.Synchronize();
                return null;
            case nameof(IKernelSet.Allocate):
            case nameof(IKernelSet.AllocateInt):
                var buffer = Call(method, inner, args)!;
                trace.Allocated(buffer);
                return buffer;
        }
        var target = TargetOf(inner, method.DeclaringType!);
        var op = trace.KernelCall(method, args);
        var counters = trace.Device.Counters;
        long allocationsBefore = counters.Allocations;
        trace.EnterKernel();
        try
        {
            return Call(method, target, args);
        }
        finally
        {
            trace.LeaveKernel();
            // Scratch the kernel set allocates for itself inside the call; a replay repeats it.
            if (op != null) op.ScratchAllocations = counters.Allocations - allocationsBefore;
        }
    }

    /// <summary>Invokes <paramref name="method"/> and rethrows what it threw as itself.</summary>
    public static object? Call(MethodInfo method, object target, object?[] args)
    {
        try
        {
            return method.Invoke(target, args);
        }
        catch (TargetInvocationException e) when (e.InnerException != null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }
}
