namespace Engine.Kernels;

/// <summary>Elementwise unary operations every kernel set implements.</summary>
public enum UnaryOp
{
    /// <summary>-x</summary>
    Neg,
    /// <summary>e^x</summary>
    Exp,
    /// <summary>natural logarithm</summary>
    Log,
    /// <summary>square root</summary>
    Sqrt,
    /// <summary>max(x, 0)</summary>
    Relu,
    /// <summary>GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))</summary>
    GeluTanh,
    /// <summary>GELU, exact form: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))</summary>
    GeluErf,
    /// <summary>hyperbolic tangent</summary>
    Tanh,
    /// <summary>logistic sigmoid 1 / (1 + e^-x)</summary>
    Sigmoid,
    /// <summary>error function</summary>
    Erf,
    /// <summary>|x|</summary>
    Abs,
    /// <summary>sign(x) in {-1, 0, 1}</summary>
    Sign,
    /// <summary>Heaviside step: 1 where x &gt; 0, else 0 (the derivative of relu)</summary>
    Step,
    /// <summary>x*x</summary>
    Square,
    /// <summary>1/x</summary>
    Reciprocal,
}

/// <summary>Elementwise binary operations with NumPy broadcasting.</summary>
public enum BinaryOp
{
    /// <summary>a + b</summary>
    Add,
    /// <summary>a - b</summary>
    Sub,
    /// <summary>a * b</summary>
    Mul,
    /// <summary>a / b</summary>
    Div,
    /// <summary>max(a, b)</summary>
    Maximum,
    /// <summary>min(a, b)</summary>
    Minimum,
    /// <summary>a^b (MathF.Pow semantics)</summary>
    Pow,
    /// <summary>1 where a == b, else 0</summary>
    Equal,
    /// <summary>1 where a &gt; b, else 0</summary>
    Greater,
}

/// <summary>Reductions over a set of axes.</summary>
public enum ReduceOp
{
    /// <summary>sum</summary>
    Sum,
    /// <summary>arithmetic mean</summary>
    Mean,
    /// <summary>maximum</summary>
    Max,
}

/// <summary>Scalar definitions of the elementwise ops, shared by the host reference paths and scalar tails.</summary>
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

    /// <summary>Applies a unary op to one value.</summary>
    public static float Apply(UnaryOp op, float x) => op switch
    {
        UnaryOp.Neg => -x,
        UnaryOp.Exp => MathF.Exp(x),
        UnaryOp.Log => MathF.Log(x),
        UnaryOp.Sqrt => MathF.Sqrt(x),
        UnaryOp.Relu => x > 0f ? x : 0f,
        UnaryOp.GeluTanh => 0.5f * x * (1f + MathF.Tanh(SqrtTwoOverPi * (x + 0.044715f * x * x * x))),
        UnaryOp.GeluErf => 0.5f * x * (1f + Erf(x * InvSqrt2)),
        UnaryOp.Tanh => MathF.Tanh(x),
        UnaryOp.Sigmoid => 1f / (1f + MathF.Exp(-x)),
        UnaryOp.Erf => Erf(x),
        UnaryOp.Abs => MathF.Abs(x),
        UnaryOp.Sign => x > 0f ? 1f : x < 0f ? -1f : 0f,
        UnaryOp.Step => x > 0f ? 1f : 0f,
        UnaryOp.Square => x * x,
        UnaryOp.Reciprocal => 1f / x,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    /// <summary>Applies a binary op to one pair of values.</summary>
    public static float Apply(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Maximum => a >= b ? a : b,
        BinaryOp.Minimum => a <= b ? a : b,
        BinaryOp.Pow => MathF.Pow(a, b),
        BinaryOp.Equal => a == b ? 1f : 0f,
        BinaryOp.Greater => a > b ? 1f : 0f,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };
}
