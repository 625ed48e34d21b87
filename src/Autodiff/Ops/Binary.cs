using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    private static Tensor BinaryRaw(string name, BinaryOp op, Tensor a, Tensor b)
    {
        CheckSameDevice(name, a, b);
        var shape = Shape.Broadcast(name, a.shape, b.shape);
        var y = Tensor.Empty(shape, a.Device);
        a.K.Binary(op, a.Buffer, a.shape, b.Buffer, b.shape, y.Buffer, shape);
        return y;
    }

    /// <summary>a + b with broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b) =>
        BinaryRaw("add", BinaryOp.Add, a, b).Record("add", [a, b], g => [SumTo(g, a.shape), SumTo(g, b.shape)]);

    /// <summary>a - b with broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b) =>
        BinaryRaw("sub", BinaryOp.Sub, a, b).Record("sub", [a, b], g => [SumTo(g, a.shape), SumTo(-g, b.shape)]);

    /// <summary>a * b with broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b) =>
        BinaryRaw("mul", BinaryOp.Mul, a, b).Record("mul", [a, b], g =>
            [a.RequiresGrad ? SumTo(g * b, a.shape) : null, b.RequiresGrad ? SumTo(g * a, b.shape) : null]);

    /// <summary>a / b with broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b) =>
        BinaryRaw("div", BinaryOp.Div, a, b).Record("div", [a, b], g =>
            [a.RequiresGrad ? SumTo(g / b, a.shape) : null, b.RequiresGrad ? SumTo(-(g * a / Square(b)), b.shape) : null]);

    /// <summary>Elementwise maximum; where a == b the gradient is split evenly.</summary>
    public static Tensor Maximum(Tensor a, Tensor b) =>
        BinaryRaw("maximum", BinaryOp.Maximum, a, b).Record("maximum", [a, b], g =>
        {
            var wa = Greater(a, b) + Equal(a, b) * 0.5f;
            return [SumTo(g * wa, a.shape), SumTo(g * (1f - wa), b.shape)];
        });

    /// <summary>Elementwise minimum; where a == b the gradient is split evenly.</summary>
    public static Tensor Minimum(Tensor a, Tensor b) =>
        BinaryRaw("minimum", BinaryOp.Minimum, a, b).Record("minimum", [a, b], g =>
        {
            var wa = Greater(b, a) + Equal(a, b) * 0.5f;
            return [SumTo(g * wa, a.shape), SumTo(g * (1f - wa), b.shape)];
        });

    /// <summary>a^b elementwise with broadcasting (gradient for b uses log a: keep a &gt; 0 there).</summary>
    public static Tensor Pow(Tensor a, Tensor b)
    {
        var y = BinaryRaw("pow", BinaryOp.Pow, a, b);
        // b·a^(b-1) with the exponent nudged to 0 where b = 0, so 0·0^-1 does not turn a zero gradient into NaN.
        return y.Record("pow", [a, b], g =>
            [a.RequiresGrad ? SumTo(g * b * Pow(a, b - 1f + Equal(b, ZeroLike(b))), a.shape) : null,
             b.RequiresGrad ? SumTo(g * y * Log(a), b.shape) : null]);
    }

    /// <summary>x^p for a constant exponent.</summary>
    public static Tensor Pow(this Tensor x, float p)
    {
        using var e = Tensor.Scalar(p, x.Device);
        var y = BinaryRaw("pow", BinaryOp.Pow, x, e);
        // x^0 is constant: its gradient is 0 everywhere, including 0·0^-1 at x = 0.
        return y.Record("pow", [x], g => [p == 0f ? g * 0f : g * Pow(x, p - 1f) * p]);
    }

    private static Tensor ZeroLike(Tensor t) => Tensor.Zeros([], t.Device);

    /// <summary>1 where a == b, else 0 (no gradient).</summary>
    public static Tensor Equal(Tensor a, Tensor b) => BinaryRaw("equal", BinaryOp.Equal, a, b);

    /// <summary>1 where a &gt; b, else 0 (no gradient).</summary>
    public static Tensor Greater(Tensor a, Tensor b) => BinaryRaw("greater", BinaryOp.Greater, a, b);

    /// <summary>x broadcast to <paramref name="shape"/> (NumPy rules); the gradient sums back.</summary>
    public static Tensor BroadcastTo(this Tensor x, int[] shape)
    {
        x.CheckAlive("broadcast_to");
        if (!Shape.CanBroadcastTo(x.shape, shape))
            throw new ArgumentException($"broadcast_to: shape {x.Describe()} cannot be broadcast to {Shape.Format(shape)}.");
        if (Shape.Equal(x.shape, shape)) return x;
        var y = Tensor.Empty(shape, x.Device);
        x.K.BroadcastTo(x.Buffer, x.shape, y.Buffer, shape);
        var xs = x.shape;
        return y.Record("broadcast_to", [x], g => [SumTo(g, xs)]);
    }

    /// <summary>
    /// Sums <paramref name="g"/> down to <paramref name="shape"/>, the adjoint of broadcasting: over leading axes
    /// <paramref name="shape"/> lacks and over axes where it has extent 1.
    /// </summary>
    public static Tensor SumTo(this Tensor g, int[] shape)
    {
        if (Shape.Equal(g.shape, shape)) return g;
        if (!Shape.CanBroadcastTo(shape, g.shape))
            throw new ArgumentException($"sum_to: {Shape.Format(shape)} does not broadcast to {g.Describe()}.");
        int lead = g.Rank - shape.Length;
        var axes = new List<int>();
        for (int i = 0; i < g.Rank; i++)
            if (i < lead || (shape[i - lead] == 1 && g.shape[i] != 1)) axes.Add(i);
        var s = axes.Count == 0 ? g : Sum(g, axes.ToArray());
        return Shape.Equal(s.shape, shape) ? s : s.Reshape(shape);
    }
}
