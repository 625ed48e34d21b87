using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Elementwise;

// One struct per BinaryOp value (ElementwiseOps maps the enum to them), plus the parameterised ops the kernel sets use
// internally.

/// <summary>a + b.</summary>
internal readonly struct AddOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => a + b;
}

/// <summary>a - b.</summary>
internal readonly struct SubOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => a - b;
}

/// <summary>a * b.</summary>
internal readonly struct MulOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => a * b;
}

/// <summary>a / b.</summary>
internal readonly struct DivOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => a / b;
}

/// <summary>a &gt;= b ? a : b (a NaN in b wins, a NaN in a loses).</summary>
internal readonly struct MaximumOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a >= b ? a : b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => TV.Select(TV.GreaterThanOrEqual(a, b), a, b);
}

/// <summary>a &lt;= b ? a : b.</summary>
internal readonly struct MinimumOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a <= b ? a : b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => TV.Select(TV.LessThanOrEqual(a, b), a, b);
}

/// <summary>a^b with <see cref="MathF.Pow"/> semantics (lane by lane on the CPU set).</summary>
internal readonly struct PowOp : IBinaryOp
{
    public static int Cost => 16;
    public float Scalar(float a, float b) => MathF.Pow(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => TV.Pow(a, b);
}

/// <summary>1 where a == b, else 0.</summary>
internal readonly struct EqualOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a == b ? 1f : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => TV.One & TV.Equal(a, b);
}

/// <summary>1 where a &gt; b, else 0.</summary>
internal readonly struct GreaterOp : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => a > b ? 1f : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => TV.One & TV.GreaterThan(a, b);
}

/// <summary>
/// alpha · a + b (Axpy, with y as b). Fused on the CPU set; the scalar definition, which ILGPU runs, is not (see
/// <see cref="AffineOp"/>).
/// </summary>
internal readonly struct AxpyOp(float alpha) : IBinaryOp
{
    public static int Cost => 1;
    public float Scalar(float a, float b) => alpha * a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV> => TV.FusedMultiplyAdd(TV.Create(alpha), a, b);
}
