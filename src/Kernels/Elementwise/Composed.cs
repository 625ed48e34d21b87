using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Elementwise;

// Ops built from ops. A composed op is one struct type, so a kernel generic over the op runs the whole chain as one
// kernel: the CPU set keeps each intermediate in a register, ILGPU compiles the chain into one GPU kernel. Types like
// Compose<TanhOp, Then<MulOp, SquareOp>> can be built at run time with Type.MakeGenericType.

/// <summary>outer(inner(x)).</summary>
internal readonly struct Compose<TOuter, TInner>(TOuter outer, TInner inner) : IUnaryOp
    where TOuter : unmanaged, IUnaryOp
    where TInner : unmanaged, IUnaryOp
{
    public static int Cost => TOuter.Cost + TInner.Cost;
    public static bool Calls => TOuter.Calls || TInner.Calls;
    public float Scalar(float x) => outer.Scalar(inner.Scalar(x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => outer.Vector(inner.Vector(x));
}

/// <summary>unary(binary(a, b)): a binary op followed by a unary one, e.g. exp(a - b).</summary>
internal readonly struct Then<TBinary, TUnary>(TBinary binary, TUnary unary) : IBinaryOp
    where TBinary : unmanaged, IBinaryOp
    where TUnary : unmanaged, IUnaryOp
{
    public static int Cost => TBinary.Cost + TUnary.Cost;
    public static bool Calls => TBinary.Calls || TUnary.Calls;
    public float Scalar(float a, float b) => unary.Scalar(binary.Scalar(a, b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => unary.Vector(binary.Vector(a, b));
}

/// <summary>binary(first(a), second(b)): unary chains on the operands before a binary op, e.g. a · step(b).</summary>
internal readonly struct OnOperands<TBinary, TFirst, TSecond>(TBinary binary, TFirst first, TSecond second) : IBinaryOp
    where TBinary : unmanaged, IBinaryOp
    where TFirst : unmanaged, IUnaryOp
    where TSecond : unmanaged, IUnaryOp
{
    public static int Cost => TBinary.Cost + TFirst.Cost + TSecond.Cost;
    public static bool Calls => TBinary.Calls || TFirst.Calls || TSecond.Calls;
    public float Scalar(float a, float b) => binary.Scalar(first.Scalar(a), second.Scalar(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => binary.Vector(first.Vector(a), second.Vector(b));
}

/// <summary>op(b, a): the operands swapped (a scalar-vector loop runs as a vector-scalar one).</summary>
internal readonly struct Flip<TBinary>(TBinary binary) : IBinaryOp where TBinary : unmanaged, IBinaryOp
{
    public static int Cost => TBinary.Cost;
    public static bool Calls => TBinary.Calls;
    public float Scalar(float a, float b) => binary.Scalar(b, a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => binary.Vector(b, a);
}
