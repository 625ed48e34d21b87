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
    /// erf(x) with max absolute error about 1.2e-7 (Numerical Recipes' erfc Chebyshev fit),
    /// written with plain arithmetic and exp so that every kernel set, ILGPU included, computes the same thing.
    /// </summary>
    public static float Erf(float x)
    {
        float z = MathF.Abs(x);
        float t = 1f / (1f + 0.5f * z);
        float r = t * MathF.Exp(-z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
                  t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
                  t * (-0.82215223f + t * 0.17087277f)))))))));
        float erf = 1f - r;
        return x >= 0 ? erf : -erf;
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
