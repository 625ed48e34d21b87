using System.Reflection;
using System.Runtime.Intrinsics;
using Engine.Kernels;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// How the CPU kernels call their vector functions. The runtime passes and returns a vector through the stack when it
/// calls a method it has not inlined (on x64 Unix too), and a thread's stack is 16-byte aligned only: in some
/// processes every such 64-byte store and its reload straddle cache lines. A GELU pass measured 0.85 ns per element in
/// some processes and 1.9 in others that way, on one thread. The functions the JIT must not inline therefore take a
/// pointer to an aligned slot, and these tests pin that (a speed the other tests cannot see).
/// </summary>
public sealed class VectorCallTests
{
    /// <summary>No method marked not to inline takes or returns a vector wider than a float by value.</summary>
    [Fact]
    public void NoMethodKeptFromInliningPassesAVectorByValue()
    {
        var offenders = new List<string>();
        foreach (var type in typeof(IKernelSet).Assembly.GetTypes())
        {
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
            foreach (var method in type.GetMethods(all))
            {
                if (!method.MethodImplementationFlags.HasFlag(MethodImplAttributes.NoInlining)) continue;
                var passed = method.GetParameters().Select(p => p.ParameterType).Append(method.ReturnType);
                if (passed.Any(IsWideVector)) offenders.Add($"{type.FullName}.{method.Name}");
            }
        }
        Assert.True(offenders.Count == 0, "vectors passed by value to methods kept from inlining: " + string.Join(", ", offenders));
    }

    /// <summary>The rule's own check finds the shapes it is for: a vector type, a width struct, a width type parameter.</summary>
    [Fact]
    public void TheCheckRecognisesEveryWayAVectorIsPassed()
    {
        Assert.True(IsWideVector(typeof(Vector256<float>)));
        Assert.True(IsWideVector(typeof(Vector512<float>)));
        Assert.True(IsWideVector(typeof(Vec512)));
        Assert.True(IsWideVector(typeof(Vec128)));
        var widthParameter = typeof(VectorCallTests).GetMethod(nameof(WidthGeneric), BindingFlags.NonPublic | BindingFlags.Static)!.GetGenericArguments()[0];
        Assert.True(IsWideVector(widthParameter));
        Assert.True(IsWideVector(typeof(Vec256D)));
        Assert.False(IsWideVector(typeof(Vec1)));
        Assert.False(IsWideVector(typeof(Vec1D)));
        Assert.False(IsWideVector(typeof(float)));
        Assert.False(IsWideVector(typeof(float*)));
    }

    /// <summary>
    /// A tree computes the operand that calls before the one that does not (as the first child of the flipped op), so
    /// that nothing of the other is held across the call; otherwise left first. (The trees' kernel tests check the
    /// bits, GELU's backward among them.)
    /// </summary>
    [Fact]
    public void ATreeComputesTheOperandThatCallsFirst()
    {
        static Type OpOf(ElementwiseExpression tree) => ElementwiseChains.Tree(tree).GetType().GetGenericArguments()[0];
        Assert.Equal(typeof(Flip<MulOp>), OpOf(B(BinaryOp.Mul, X(0), U(UnaryOp.Erf, X(1)))));
        Assert.Equal(typeof(Flip<MulOp>), OpOf(GeluBackward));
        Assert.Equal(typeof(Flip<SubOp>), OpOf(B(BinaryOp.Sub, X(0), U(UnaryOp.GeluTanh, X(1)))));
        Assert.Equal(typeof(MulOp), OpOf(B(BinaryOp.Mul, U(UnaryOp.GeluErf, X(1)), X(0))));
        Assert.Equal(typeof(MulOp), OpOf(B(BinaryOp.Mul, U(UnaryOp.Tanh, X(0)), U(UnaryOp.Erf, X(1)))));
        Assert.Equal(typeof(MulOp), OpOf(B(BinaryOp.Mul, X(0), U(UnaryOp.Exp, X(1)))));
    }

    [Fact]
    public void EqualTreesShareOneOpStructAndDifferentTreesDoNot()
    {
        var tree = B(BinaryOp.Mul, X(0), U(UnaryOp.Erf, X(1)));
        var op = ElementwiseChains.Tree(tree);
        Assert.Same(op, ElementwiseChains.Tree(tree));
        Assert.Same(op, ElementwiseChains.Tree(B(BinaryOp.Mul, X(0), U(UnaryOp.Erf, X(1)))));
        var other = ElementwiseChains.Tree(B(BinaryOp.Mul, X(1), U(UnaryOp.Erf, X(0))));
        Assert.NotSame(op, other);
        Assert.NotEqual(op.GetType(), other.GetType());
        Assert.Same(other, ElementwiseChains.Tree((ElementwiseExpression.Binary)tree with { A = X(1), B = U(UnaryOp.Erf, X(0)) }));
    }

    private static void WidthGeneric<TV>() where TV : unmanaged, IFloatVector<TV> { }

    /// <summary>
    /// A SIMD vector type, a width struct wider than one float (<see cref="Vec1"/> travels in a register), or a type
    /// parameter constrained to a width (any width may be substituted).
    /// </summary>
    private static bool IsWideVector(Type t)
    {
        if (t.IsByRef || t.IsPointer) return false;
        if (t.IsGenericParameter)
            return t.GetGenericParameterConstraints().Any(c => c.IsGenericType && IsWidthInterface(c));
        if (t.IsGenericType)
        {
            var d = t.GetGenericTypeDefinition();
            if (d == typeof(Vector128<>) || d == typeof(Vector256<>) || d == typeof(Vector512<>) || d == typeof(System.Numerics.Vector<>)) return true;
        }
        return t.IsValueType && t != typeof(Vec1) && t != typeof(Vec1D) && t.GetInterfaces().Any(IsWidthInterface);
    }

    private static bool IsWidthInterface(Type i) =>
        i.IsGenericType && (i.GetGenericTypeDefinition().Name.StartsWith("IFloatVector", StringComparison.Ordinal)
            || i.GetGenericTypeDefinition().Name.StartsWith("IDoubleVector", StringComparison.Ordinal));
}
