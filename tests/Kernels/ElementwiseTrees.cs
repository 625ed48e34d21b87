using Engine.Kernels;
using static Engine.Kernels.ElementwiseExpression;

namespace Engine.Tests.Kernels;

/// <summary>Building blocks of the elementwise-tree kernel tests: node constructors, GELU's backward, the host reference.</summary>
public static class ElementwiseTrees
{
    /// <summary>The leaf reading input <paramref name="i"/>.</summary>
    public static Input X(int i) => new(i);

    /// <summary>A unary op over <paramref name="x"/>.</summary>
    public static ElementwiseExpression U(UnaryOp op, ElementwiseExpression x) => new Unary(op, x);

    /// <summary>The affine map scale · x + shift over <paramref name="x"/>.</summary>
    public static ElementwiseExpression A(float scale, float shift, ElementwiseExpression x) => new Unary(UnaryStep.Affine(scale, shift), x);

    /// <summary>A binary op over <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static ElementwiseExpression B(BinaryOp op, ElementwiseExpression a, ElementwiseExpression b) => new Binary(op, a, b);

    /// <summary>GELU's backward as the compiler fuses it: g · (cdf(x) + x · pdf(x)), x = input 0 (read by three leaves), g = input 1.</summary>
    public static ElementwiseExpression GeluBackward { get; } = B(BinaryOp.Mul, X(1), B(BinaryOp.Add,
        A(0.5f, 0f, A(1f, 1f, U(UnaryOp.Erf, A(0.70710677f, 0f, X(0))))),
        B(BinaryOp.Mul, X(0), A(0.3989423f, 0f, U(UnaryOp.Exp, A(-0.5f, 0f, U(UnaryOp.Square, X(0))))))));

    /// <summary>The host reference: the ops in order, each in double and rounded to float as its kernel rounds.</summary>
    public static double Reference(ElementwiseExpression tree, float[] x) => tree switch
    {
        Input leaf => x[leaf.Index],
        Unary { Step.IsAffine: true } u => (float)((double)u.Step.Scale * Reference(u.X, x) + u.Step.Shift),
        Unary u => (float)HostReference.Apply(u.Step.Op, Reference(u.X, x)),
        Binary b => (float)HostReference.Apply(b.Op, (float)Reference(b.A, x), (float)Reference(b.B, x)),
        _ => throw new ArgumentException(tree.ToString()),
    };
}
