using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Elementwise;

// One struct per UnaryOp value (ElementwiseOps maps the enum to them), plus the parameterised ops the kernel sets use
// internally. Vector forms are aggressively inlined: they are the bodies of the CPU set's SIMD loops.

/// <summary>-x.</summary>
internal readonly struct NegOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => -x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => -x;
}

/// <summary>e^x.</summary>
internal readonly struct ExpOp : IUnaryOp
{
    public static int Cost => 4;
    public float Scalar(float x) => MathF.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => VecMath.Exp(x);
}

/// <summary>Natural logarithm.</summary>
internal readonly struct LogOp : IUnaryOp
{
    public static int Cost => 4;
    public float Scalar(float x) => MathF.Log(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.Log(x);
}

/// <summary>Square root.</summary>
internal readonly struct SqrtOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => MathF.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.Sqrt(x);
}

/// <summary>max(x, 0); NaN and -0 give +0.</summary>
internal readonly struct ReluOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => x > 0f ? x : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => x & TV.GreaterThan(x, TV.Zero);
}

/// <summary>GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
internal readonly struct GeluTanhOp : IUnaryOp
{
    public static int Cost => 4;
    public static bool Calls => true;
    public float Scalar(float x) => 0.5f * x * (1f + MathF.Tanh(ScalarMath.SqrtTwoOverPi * (x + 0.044715f * x * x * x)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => VecMath.GeluTanh(x);
}

/// <summary>GELU, exact form: 0.5 x (1 + erf(x / sqrt 2)).</summary>
internal readonly struct GeluErfOp : IUnaryOp
{
    public static int Cost => 4;
    public static bool Calls => true;
    public float Scalar(float x) => 0.5f * x * (1f + ScalarMath.Erf(x * ScalarMath.InvSqrt2));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => VecMath.GeluErf(x);
}

/// <summary>Hyperbolic tangent.</summary>
internal readonly struct TanhOp : IUnaryOp
{
    public static int Cost => 4;
    public static bool Calls => true;
    public float Scalar(float x) => MathF.Tanh(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => VecMath.Tanh(x);
}

/// <summary>Logistic sigmoid 1 / (1 + e^-x).</summary>
internal readonly struct SigmoidOp : IUnaryOp
{
    public static int Cost => 4;
    public float Scalar(float x) => 1f / (1f + MathF.Exp(-x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => VecMath.Sigmoid(x);
}

/// <summary>Error function (<see cref="ScalarMath.Erf"/>'s fit).</summary>
internal readonly struct ErfOp : IUnaryOp
{
    public static int Cost => 4;
    public static bool Calls => true;
    public float Scalar(float x) => ScalarMath.Erf(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => VecMath.Erf(x);
}

/// <summary>|x|.</summary>
internal readonly struct AbsOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => MathF.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.Abs(x);
}

/// <summary>sign(x) in {-1, 0, 1} (0 for NaN).</summary>
internal readonly struct SignOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => x > 0f ? 1f : x < 0f ? -1f : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> =>
        (TV.One & TV.GreaterThan(x, TV.Zero)) - (TV.One & TV.LessThan(x, TV.Zero));
}

/// <summary>Heaviside step: 1 where x &gt; 0, else 0 (the derivative of relu).</summary>
internal readonly struct StepOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => x > 0f ? 1f : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.One & TV.GreaterThan(x, TV.Zero);
}

/// <summary>x*x.</summary>
internal readonly struct SquareOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => x * x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => x * x;
}

/// <summary>1/x.</summary>
internal readonly struct ReciprocalOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => 1f / x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.One / x;
}

/// <summary>x itself: a copy through the elementwise machinery.</summary>
internal readonly struct IdentityOp : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => x;
}

/// <summary>
/// scale · x + shift with one rounding in every form (vector lanes, scalar tails, ILGPU through
/// <see cref="KernelMath.Fma"/>), so an affine map gives the same bits wherever an element falls, alone or inside a
/// fused chain.
/// </summary>
internal readonly struct AffineOp(float scale, float shift) : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => KernelMath.Fma(scale, x, shift);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.FusedMultiplyAdd(TV.Create(scale), x, TV.Create(shift));
}
