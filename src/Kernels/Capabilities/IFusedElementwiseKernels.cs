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
    /// <summary>y[i] = steps[k-1](...steps[0](x[i])) as one kernel (y may be x); at least one step.</summary>
    void UnaryChain(IReadOnlyList<UnaryStep> steps, DeviceBuffer<float> x, DeviceBuffer<float> y);

    /// <summary>
    /// y = tail[k-1](...tail[0](head(aSteps(a), bSteps(b)))) with NumPy broadcasting (as <see cref="IKernelSet.Binary"/>),
    /// as one kernel; each operand chain (possibly empty) applies to that operand's values as they are read.
    /// </summary>
    void BinaryChain(IReadOnlyList<UnaryStep> aSteps, BinaryOp head, IReadOnlyList<UnaryStep> bSteps, IReadOnlyList<UnaryStep> tail,
        DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape);
}

/// <summary>One step of a fused elementwise chain: a <see cref="UnaryOp"/>, or the affine map scale · x + shift (one rounding).</summary>
/// <param name="Op">The op (ignored when <paramref name="IsAffine"/>).</param>
/// <param name="Scale">The affine map's scale.</param>
/// <param name="Shift">The affine map's shift.</param>
/// <param name="IsAffine">True for the affine map, as <see cref="IKernelSet.Affine"/>.</param>
public readonly record struct UnaryStep(UnaryOp Op, float Scale, float Shift, bool IsAffine)
{
    /// <summary>The step of <paramref name="op"/>.</summary>
    public static implicit operator UnaryStep(UnaryOp op) => new(op, 1f, 0f, false);

    /// <summary>The affine step scale · x + shift.</summary>
    public static UnaryStep Affine(float scale, float shift) => new(default, scale, shift, true);

    /// <inheritdoc />
    public override string ToString() => IsAffine
        ? $"Affine({Scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture)},{Shift.ToString("R", System.Globalization.CultureInfo.InvariantCulture)})"
        : Op.ToString();
}

/// <summary>Builds composed op structs for a chain and calls a kernel set's generic elementwise kernel with them.</summary>
internal static class ElementwiseChains
{
    private static readonly ConcurrentDictionary<(Type Set, string Kernel, Type Op), MethodInfo> Kernels = new();
    private static readonly ConcurrentDictionary<string, object> Ops = new();

    /// <summary>The composed unary op struct (boxed) of steps[k-1] ∘ ... ∘ steps[0] (the identity when empty), made once per chain.</summary>
    public static object Unary(IReadOnlyList<UnaryStep> steps) =>
        Ops.GetOrAdd("u:" + string.Join(",", steps), _ =>
        {
            if (steps.Count == 0) return new IdentityOp();
            object chain = Box(steps[0]);
            for (int i = 1; i < steps.Count; i++)
            {
                var outer = Box(steps[i]);
                chain = Activator.CreateInstance(typeof(Compose<,>).MakeGenericType(outer.GetType(), chain.GetType()), outer, chain)!;
            }
            return chain;
        });

    /// <summary>The binary op struct (boxed) of tail ∘ head ∘ (aSteps, bSteps).</summary>
    public static object Binary(IReadOnlyList<UnaryStep> aSteps, BinaryOp head, IReadOnlyList<UnaryStep> bSteps, IReadOnlyList<UnaryStep> tail) =>
        Ops.GetOrAdd("b:" + string.Join(",", aSteps) + ":" + head + ":" + string.Join(",", bSteps) + ":" + string.Join(",", tail), _ =>
        {
            var binary = ElementwiseOps.Visit<Boxer, object>(head, default);
            if (aSteps.Count > 0 || bSteps.Count > 0)
            {
                var first = Unary(aSteps);
                var second = Unary(bSteps);
                binary = Activator.CreateInstance(typeof(OnOperands<,,>).MakeGenericType(binary.GetType(), first.GetType(), second.GetType()), binary, first, second)!;
            }
            if (tail.Count == 0) return binary;
            var unary = Unary(tail);
            return Activator.CreateInstance(typeof(Then<,>).MakeGenericType(binary.GetType(), unary.GetType()), binary, unary)!;
        });

    private static object Box(UnaryStep step) =>
        step.IsAffine ? new AffineOp(step.Scale, step.Shift) : ElementwiseOps.Visit<Boxer, object>(step.Op, default);

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
