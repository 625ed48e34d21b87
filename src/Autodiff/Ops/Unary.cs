using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    private static Tensor UnaryRaw(UnaryOp op, Tensor x)
    {
        x.CheckAlive(OpName(op));
        var y = Tensor.Empty(x.shape, x.Device);
        x.K.Unary(op, x.Buffer, y.Buffer);
        return y;
    }

    /// <summary>The op's name in error messages and on the tape (gelu_tanh, not GeluTanh).</summary>
    private static string OpName(UnaryOp op) => op switch
    {
        UnaryOp.GeluTanh => "gelu_tanh",
        UnaryOp.GeluErf => "gelu_erf",
        _ => op.ToString().ToLowerInvariant(),
    };

    /// <summary>-x.</summary>
    public static Tensor Neg(this Tensor x) => UnaryRaw(UnaryOp.Neg, x).Record("neg", [x], g => [-g]);

    /// <summary>e^x.</summary>
    public static Tensor Exp(this Tensor x)
    {
        var y = UnaryRaw(UnaryOp.Exp, x);
        return y.Record("exp", [x], g => [g * y]);
    }

    /// <summary>Natural logarithm.</summary>
    public static Tensor Log(this Tensor x) => UnaryRaw(UnaryOp.Log, x).Record("log", [x], g => [g / x]);

    /// <summary>Square root.</summary>
    public static Tensor Sqrt(this Tensor x)
    {
        var y = UnaryRaw(UnaryOp.Sqrt, x);
        return y.Record("sqrt", [x], g => [g * 0.5f / y]);
    }

    /// <summary>max(x, 0).</summary>
    public static Tensor Relu(this Tensor x) => UnaryRaw(UnaryOp.Relu, x).Record("relu", [x], g => [g * Step(x)]);

    /// <summary>GELU, tanh approximation (the GPT-2/BERT form).</summary>
    public static Tensor GeluTanh(this Tensor x) => UnaryRaw(UnaryOp.GeluTanh, x).Record("gelu_tanh", [x], g =>
    {
        // d/dx 0.5 x (1 + tanh u), u = c (x + a x^3): 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
        const float c = ScalarMath.SqrtTwoOverPi, a = 0.044715f;
        var x2 = Square(x);
        var t = Tanh(x * (x2 * (c * a) + c));
        var d = (t + 1f) * 0.5f + x * (1f - Square(t)) * (x2 * (1.5f * c * a) + 0.5f * c);
        return [g * d];
    });

    /// <summary>GELU, exact form x Φ(x).</summary>
    public static Tensor GeluErf(this Tensor x) => UnaryRaw(UnaryOp.GeluErf, x).Record("gelu_erf", [x], g =>
    {
        // d/dx x Φ(x) = Φ(x) + x φ(x), with Φ(x) = 0.5 erf(x/√2) + 0.5 and φ(x) = e^(-x²/2 - ln √(2π)): one affine map
        // each, so the backward pass runs two elementwise kernels fewer (and its fused tree two steps fewer).
        var cdf = Erf(x * ScalarMath.InvSqrt2).Affine(0.5f, 0.5f);
        var pdf = Exp(Square(x).Affine(-0.5f, -0.9189385332046727f));
        return [g * (cdf + x * pdf)];
    });

    /// <summary>GELU; <paramref name="approximate"/> picks the tanh form (default: exact).</summary>
    public static Tensor Gelu(this Tensor x, bool approximate = false) => approximate ? GeluTanh(x) : GeluErf(x);

    /// <summary>Hyperbolic tangent.</summary>
    public static Tensor Tanh(this Tensor x)
    {
        var y = UnaryRaw(UnaryOp.Tanh, x);
        return y.Record("tanh", [x], g => [g * (1f - Square(y))]);
    }

    /// <summary>Logistic sigmoid.</summary>
    public static Tensor Sigmoid(this Tensor x)
    {
        var y = UnaryRaw(UnaryOp.Sigmoid, x);
        return y.Record("sigmoid", [x], g => [g * y * (1f - y)]);
    }

    /// <summary>Error function.</summary>
    public static Tensor Erf(this Tensor x) =>
        UnaryRaw(UnaryOp.Erf, x).Record("erf", [x], g => [g * Exp(-Square(x)) * 1.1283791670955126f]);

    /// <summary>|x| (gradient sign(x), 0 at 0).</summary>
    public static Tensor Abs(this Tensor x) => UnaryRaw(UnaryOp.Abs, x).Record("abs", [x], g => [g * Sign(x)]);

    /// <summary>sign(x) (zero gradient).</summary>
    public static Tensor Sign(this Tensor x) => UnaryRaw(UnaryOp.Sign, x);

    /// <summary>1 where x &gt; 0, else 0 (zero gradient).</summary>
    public static Tensor Step(this Tensor x) => UnaryRaw(UnaryOp.Step, x);

    /// <summary>x².</summary>
    public static Tensor Square(this Tensor x) => UnaryRaw(UnaryOp.Square, x).Record("square", [x], g => [g * x * 2f]);

    /// <summary>1/x.</summary>
    public static Tensor Reciprocal(this Tensor x)
    {
        var y = UnaryRaw(UnaryOp.Reciprocal, x);
        return y.Record("reciprocal", [x], g => [-(g * Square(y))]);
    }

    /// <summary>scale * x + shift.</summary>
    public static Tensor Affine(this Tensor x, float scale, float shift)
    {
        x.CheckAlive("affine");
        var y = Tensor.Empty(x.shape, x.Device);
        x.K.Affine(x.Buffer, y.Buffer, scale, shift);
        return y.Record("affine", [x], g => [g * scale]);
    }
}
