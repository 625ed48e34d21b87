namespace Engine.Kernels.Elementwise;

/// <summary>Receives the op struct of a <see cref="UnaryOp"/> (see <see cref="ElementwiseOps.Visit{TVisitor, TResult}(UnaryOp, TVisitor)"/>).</summary>
internal interface IUnaryOpVisitor<out TResult>
{
    /// <summary>Called with the op's struct; the visitor runs its kernel generic over it.</summary>
    TResult Visit<TOp>(TOp op) where TOp : unmanaged, IUnaryOp;
}

/// <summary>Receives the op struct of a <see cref="BinaryOp"/>.</summary>
internal interface IBinaryOpVisitor<out TResult>
{
    /// <summary>Called with the op's struct.</summary>
    TResult Visit<TOp>(TOp op) where TOp : unmanaged, IBinaryOp;
}

/// <summary>
/// The one map from op codes to op structs. Both kernel sets and the host-side <see cref="ScalarMath"/> go through it:
/// a visitor receives the struct as a type argument and runs its kernel generic over it, so nothing downstream
/// switches on an op code. Adding an op: its enum value, its struct, one line here.
/// </summary>
internal static class ElementwiseOps
{
    /// <summary>Calls <paramref name="visitor"/> with the struct of <paramref name="op"/>.</summary>
    public static TResult Visit<TVisitor, TResult>(UnaryOp op, TVisitor visitor) where TVisitor : IUnaryOpVisitor<TResult> => op switch
    {
        UnaryOp.Neg => visitor.Visit(new NegOp()),
        UnaryOp.Exp => visitor.Visit(new ExpOp()),
        UnaryOp.Log => visitor.Visit(new LogOp()),
        UnaryOp.Sqrt => visitor.Visit(new SqrtOp()),
        UnaryOp.Relu => visitor.Visit(new ReluOp()),
        UnaryOp.GeluTanh => visitor.Visit(new GeluTanhOp()),
        UnaryOp.GeluErf => visitor.Visit(new GeluErfOp()),
        UnaryOp.Tanh => visitor.Visit(new TanhOp()),
        UnaryOp.Sigmoid => visitor.Visit(new SigmoidOp()),
        UnaryOp.Erf => visitor.Visit(new ErfOp()),
        UnaryOp.Abs => visitor.Visit(new AbsOp()),
        UnaryOp.Sign => visitor.Visit(new SignOp()),
        UnaryOp.Step => visitor.Visit(new StepOp()),
        UnaryOp.Square => visitor.Visit(new SquareOp()),
        UnaryOp.Reciprocal => visitor.Visit(new ReciprocalOp()),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, $"unary op {op} has no definition."),
    };

    /// <summary>Calls <paramref name="visitor"/> with the struct of <paramref name="op"/>.</summary>
    public static TResult Visit<TVisitor, TResult>(BinaryOp op, TVisitor visitor) where TVisitor : IBinaryOpVisitor<TResult> => op switch
    {
        BinaryOp.Add => visitor.Visit(new AddOp()),
        BinaryOp.Sub => visitor.Visit(new SubOp()),
        BinaryOp.Mul => visitor.Visit(new MulOp()),
        BinaryOp.Div => visitor.Visit(new DivOp()),
        BinaryOp.Maximum => visitor.Visit(new MaximumOp()),
        BinaryOp.Minimum => visitor.Visit(new MinimumOp()),
        BinaryOp.Pow => visitor.Visit(new PowOp()),
        BinaryOp.Equal => visitor.Visit(new EqualOp()),
        BinaryOp.Greater => visitor.Visit(new GreaterOp()),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, $"binary op {op} has no definition."),
    };
}
