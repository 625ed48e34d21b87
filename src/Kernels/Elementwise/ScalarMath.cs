using Engine.Kernels.Elementwise;

namespace Engine.Kernels;

/// <summary>
/// Scalar definitions of the elementwise ops (the <see cref="IUnaryOp.Scalar"/> forms of the op structs in
/// src/Kernels/Elementwise), for host-side code, and the constants they share.
/// </summary>
public static class ScalarMath
{
    /// <summary>sqrt(2/pi), the GELU tanh-form constant.</summary>
    public const float SqrtTwoOverPi = 0.7978845608028654f;
    /// <summary>1/sqrt(2).</summary>
    public const float InvSqrt2 = 0.7071067811865476f;

    /// <summary>
    /// erf(x) within 1.5 ulp (absolute error below 1e-7): x + x·P(x²) for |x| below 1, 1 - e^Q(|x|) above, with
    /// P and Q the polynomials of <see cref="ErfFit"/>. Written with plain arithmetic, <see cref="KernelMath.Fma"/> and
    /// exp so that every kernel set, ILGPU included, computes the same formula as <c>VecMath.Erf</c> (whose exp is a
    /// vector algorithm a few ulp apart from <see cref="MathF.Exp"/>'s).
    /// </summary>
    public static float Erf(float x)
    {
        float a = MathF.Abs(x);
        if (a < ErfFit.Split)
        {
            float s = x * x;
            float p = KernelMath.Fma(ErfFit.P5, s, ErfFit.P4);
            p = KernelMath.Fma(p, s, ErfFit.P3);
            p = KernelMath.Fma(p, s, ErfFit.P2);
            p = KernelMath.Fma(p, s, ErfFit.P1);
            p = KernelMath.Fma(p, s, ErfFit.P0);
            return KernelMath.Fma(p, x, x);
        }
        // The vector form's MinNative(Flat, a): a NaN passes through.
        float t = ErfFit.Flat < a ? ErfFit.Flat : a;
        float q = KernelMath.Fma(ErfFit.Q5, t, ErfFit.Q4);
        q = KernelMath.Fma(q, t, ErfFit.Q3);
        q = KernelMath.Fma(q, t, ErfFit.Q2);
        q = KernelMath.Fma(q, t, ErfFit.Q1);
        q = KernelMath.Fma(q, t, ErfFit.Q0);
        return MathF.CopySign(1f - MathF.Exp(q), x);
    }

    /// <summary>Applies a unary op to one value (its scalar definition).</summary>
    public static float Apply(UnaryOp op, float x) => ElementwiseOps.Visit<ScalarUnary, float>(op, new(x));

    /// <summary>Applies a binary op to one pair of values (its scalar definition).</summary>
    public static float Apply(BinaryOp op, float a, float b) => ElementwiseOps.Visit<ScalarBinary, float>(op, new(a, b));

    private readonly struct ScalarUnary(float x) : IUnaryOpVisitor<float>
    {
        public float Visit<TOp>(TOp op) where TOp : unmanaged, IUnaryOp => op.Scalar(x);
    }

    private readonly struct ScalarBinary(float a, float b) : IBinaryOpVisitor<float>
    {
        public float Visit<TOp>(TOp op) where TOp : unmanaged, IBinaryOp => op.Scalar(a, b);
    }
}
