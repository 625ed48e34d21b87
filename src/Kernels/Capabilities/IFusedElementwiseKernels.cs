using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Engine.Kernels.Elementwise;

namespace Engine.Kernels;

/// <summary>
/// Chains of elementwise ops run as one kernel, a capability both built-in sets implement: the chain becomes one
/// composed op struct (<c>Compose&lt;,&gt;</c> and <c>Then&lt;,&gt;</c> over the ops' own structs, built with
/// <see cref="Type.MakeGenericType"/>), which the set's generic elementwise kernel runs with every intermediate in a
/// register. Each op rounds to float exactly as its own kernel does, so a fused chain gives the bits of the ops run
/// one by one. A compiled graph uses it to fuse what the eager engine launches op by op.
/// </summary>
public interface IFusedElementwiseKernels
{
    /// <summary>y[i] = ops[k-1](...ops[0](x[i])) as one kernel (y may be x); at least one op.</summary>
    void UnaryChain(IReadOnlyList<UnaryOp> ops, DeviceBuffer<float> x, DeviceBuffer<float> y);

    /// <summary>
    /// y = tail[k-1](...tail[0](head(a, b))) with NumPy broadcasting (as <see cref="IKernelSet.Binary"/>), as one kernel.
    /// </summary>
    void BinaryChain(BinaryOp head, IReadOnlyList<UnaryOp> tail, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape,
        DeviceBuffer<float> y, int[] yShape);
}

/// <summary>Builds composed op structs for a chain and calls a kernel set's generic elementwise kernel with them.</summary>
internal static class ElementwiseChains
{
    private static readonly ConcurrentDictionary<(Type Set, string Kernel, Type Op), MethodInfo> Kernels = new();
    private static readonly ConcurrentDictionary<string, object> Ops = new();

    /// <summary>The composed unary op struct (boxed) of ops[k-1] ∘ ... ∘ ops[0], made once per chain.</summary>
    public static object Unary(IReadOnlyList<UnaryOp> ops)
    {
        if (ops.Count == 0) throw new ArgumentException("ElementwiseChains: a unary chain needs at least one op.", nameof(ops));
        return Ops.GetOrAdd("u:" + string.Join(",", ops), _ =>
        {
            object chain = ElementwiseOps.Visit<Boxer, object>(ops[0], default);
            for (int i = 1; i < ops.Count; i++)
            {
                var outer = ElementwiseOps.Visit<Boxer, object>(ops[i], default);
                chain = Activator.CreateInstance(typeof(Compose<,>).MakeGenericType(outer.GetType(), chain.GetType()), outer, chain)!;
            }
            return chain;
        });
    }

    /// <summary>The binary op struct (boxed) of tail ∘ head.</summary>
    public static object Binary(BinaryOp head, IReadOnlyList<UnaryOp> tail) =>
        Ops.GetOrAdd("b:" + head + ":" + string.Join(",", tail), _ =>
        {
            var binary = ElementwiseOps.Visit<Boxer, object>(head, default);
            if (tail.Count == 0) return binary;
            var unary = Unary(tail);
            return Activator.CreateInstance(typeof(Then<,>).MakeGenericType(binary.GetType(), unary.GetType()), binary, unary)!;
        });

    /// <summary>Calls <paramref name="set"/>'s generic kernel <paramref name="kernel"/>&lt;TOp&gt;(op, rest...) with the boxed op.</summary>
    public static void Run(object set, string kernel, object op, params object[] rest)
    {
        var method = Kernels.GetOrAdd((set.GetType(), kernel, op.GetType()), key =>
            key.Set.GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                .Single(m => m.Name == key.Kernel && m.IsGenericMethodDefinition && m.GetGenericArguments().Length == 1)
                .MakeGenericMethod(key.Op));
        try
        {
            method.Invoke(set, [op, .. rest]);
        }
        catch (TargetInvocationException e) when (e.InnerException != null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }
    }

    private readonly struct Boxer : IUnaryOpVisitor<object>, IBinaryOpVisitor<object>
    {
        object IUnaryOpVisitor<object>.Visit<TOp>(TOp op) => op;

        object IBinaryOpVisitor<object>.Visit<TOp>(TOp op) => op;
    }
}
