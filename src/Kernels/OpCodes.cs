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
