using System.Reflection;
using System.Runtime.ExceptionServices;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>The core contract and every capability in one interface, so one recording proxy serves them all.</summary>
internal interface IRecordableKernelSet : IKernelSet, IFftKernels, ISpnKernels, IOptimizerKernels, ILayerNormKernels, ISoftmaxCrossEntropyKernels, ISoftmaxBatchKernels,
    ISpnProductSumKernels, IIndexScatterKernels
{
}

/// <summary>
/// The base of the compiler's decorator kernel sets (installed with <see cref="Device.UseKernels"/>): one proxy for
/// the core contract and every capability, forwarding each call to the set in force (a capability call to its own
/// capability, or to its composite fallback, exactly as without the decorator) and showing it to the subclass.
/// </summary>
internal abstract class KernelSetDecorator : DispatchProxy
{
    /// <summary>The kernel set the calls go to.</summary>
    protected IKernelSet Inner { get; private set; } = null!;

    /// <summary>A decorator of type <typeparamref name="T"/> over <paramref name="inner"/>, set up by <paramref name="init"/>.</summary>
    protected static IKernelSet Create<T>(IKernelSet inner, Action<T> init) where T : KernelSetDecorator
    {
        var proxy = Create<IRecordableKernelSet, T>();
        var self = (T)(object)proxy;
        self.Inner = inner;
        init(self);
        return proxy;
    }

    /// <summary>The object a method of <paramref name="contract"/> is called on: the set, or its capability.</summary>
    public static object TargetOf(IKernelSet kernels, Type contract) =>
        contract == typeof(IKernelSet) ? kernels
        : contract == typeof(IOptimizerKernels) ? kernels.OptimizerKernels()
        : contract == typeof(IFftKernels) ? kernels.FftKernels()
        : contract == typeof(ISpnKernels) ? kernels.SpnKernels()
        : contract == typeof(ILayerNormKernels) ? kernels.LayerNormKernels()
        : WithoutComposite.Contains(contract) ? (contract.IsInstanceOfType(kernels) ? kernels
            : throw new NotSupportedException($"Compiler: kernel set '{kernels.Name}' does not implement {contract.Name} (no composite stands in for it)."))
        : throw new NotSupportedException($"Compiler: kernel contract {contract.Name} is not known to the decorator.");

    /// <summary>The capabilities no composite stands in for: only a set that implements one is called through it.</summary>
    private static readonly Type[] WithoutComposite =
        [typeof(ISoftmaxCrossEntropyKernels), typeof(ISoftmaxBatchKernels), typeof(ISpnProductSumKernels), typeof(IIndexScatterKernels)];

    /// <summary>
    /// True when the set under every decorator implements <typeparamref name="T"/>: a decorator forwards every
    /// capability, so its own type says nothing.
    /// </summary>
    public static bool Implements<T>(IKernelSet kernels) where T : class =>
        kernels is KernelSetDecorator decorator ? Implements<T>(decorator.Inner) : kernels is T;

    /// <summary>An entry point's name: the core method's, or the capability's and the method's.</summary>
    public static string NameOf(MethodInfo method) =>
        method.DeclaringType == typeof(IKernelSet) ? method.Name : method.DeclaringType!.Name[1..] + "." + method.Name;

    /// <summary>A suffix for the decorated set's name.</summary>
    protected abstract string Suffix { get; }

    /// <summary>Called with each buffer the set hands out through the decorator.</summary>
    protected abstract void Allocated(object buffer);

    /// <summary>Runs one entry point: call <paramref name="run"/> to forward it.</summary>
    protected abstract object? Forward(MethodInfo method, object?[] args, Func<object?> run);

    /// <inheritdoc />
    protected sealed override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        var method = targetMethod!;
        var arguments = args ?? [];
        switch (method.Name)
        {
            case "get_Name":
                return Inner.Name + Suffix;
            case nameof(IKernelSet.Synchronize):
                Inner.Synchronize();
                return null;
            case nameof(IKernelSet.Allocate):
            case nameof(IKernelSet.AllocateInt):
                var buffer = Call(method, Inner, arguments)!;
                Allocated(buffer);
                return buffer;
        }
        return Forward(method, arguments, () => Call(method, TargetOf(Inner, method.DeclaringType!), arguments));
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

/// <summary>A decorator that records every call and allocation in a <see cref="Trace"/>.</summary>
internal class RecordingKernelSet : KernelSetDecorator
{
    private Trace trace = null!;

    /// <summary>A recorder over <paramref name="inner"/> writing to <paramref name="trace"/>.</summary>
    public static IKernelSet Create(IKernelSet inner, Trace trace) => Create<RecordingKernelSet>(inner, r => r.trace = trace);

    /// <inheritdoc />
    protected override string Suffix => "+recording";

    /// <inheritdoc />
    protected override void Allocated(object buffer) => trace.Allocated(buffer);

    /// <inheritdoc />
    protected override object? Forward(MethodInfo method, object?[] args, Func<object?> run)
    {
        var op = trace.KernelCall(method, args);
        var counters = trace.Device.Counters;
        long allocationsBefore = counters.Allocations;
        trace.EnterKernel();
        try
        {
            return run();
        }
        finally
        {
            trace.LeaveKernel();
            // Scratch the kernel set allocates for itself inside the call; a replay repeats it.
            if (op != null) op.ScratchAllocations = counters.Allocations - allocationsBefore;
        }
    }
}
