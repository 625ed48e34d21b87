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
    /// erf(x) within one ulp (absolute error below 6e-8): the piecewise polynomial of <see cref="ErfFit"/>, written
    /// with plain arithmetic and <see cref="KernelMath.Fma"/> in <c>VecMath.Erf</c>'s order, so that every kernel set,
    /// ILGPU included, gives the bits of a CPU vector lane.
    /// </summary>
    public static float Erf(float x)
    {
        if (float.IsNaN(x)) return x;
        // The vector form's MinNative(Last, |x|).
        float a = MathF.Abs(x);
        a = ErfFit.Last < a ? ErfFit.Last : a;
        // round(2a - 1/2), ties to even like the vector form's Round, by the bias: two additions, which every backend
        // compiles as written.
        float j = KernelMath.Fma(a, 2f, -0.5f) + ErfFit.IndexBias - ErfFit.IndexBias;
        float r = KernelMath.Fma(j, -0.5f, a), r2 = r * r;
        ErfFit.Interval((int)j, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
        float p45 = KernelMath.Fma(c5, r, c4), p23 = KernelMath.Fma(c3, r, c2);
        float q = KernelMath.Fma(KernelMath.Fma(KernelMath.Fma(c7, r, c6), r2, p45), r2, p23);
        float p = KernelMath.Fma(KernelMath.Fma(q, r, c1), r, j == 0f ? r : c0);
        return MathF.CopySign(p, x);
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
