namespace Engine.Autodiff;

public static partial class Ops
{
    private static Tensor SoftmaxRaw(string op, Tensor x, int axis, bool log)
    {
        x.CheckAlive(op);
        int ax = Shape.Axis(op, axis, x.Rank);
        int outer = (int)Shape.Size(x.shape.AsSpan(0, ax));
        int inner = (int)Shape.Size(x.shape.AsSpan(ax + 1));
        var y = Tensor.Empty(x.shape, x.Device);
        x.K.Softmax(x.Buffer, y.Buffer, outer, x.shape[ax], inner, log);
        return y;
    }

    /// <summary>Softmax along <paramref name="axis"/> (stable: the maximum is subtracted first).</summary>
    public static Tensor Softmax(this Tensor x, int axis = -1)
    {
        var y = SoftmaxRaw("softmax", x, axis, log: false);
        return y.Record("softmax", [x], g => [y * (g - Sum(g * y, [axis], keepDim: true))]);
    }

    /// <summary>Log-softmax along <paramref name="axis"/> (stable).</summary>
    public static Tensor LogSoftmax(this Tensor x, int axis = -1)
    {
        var y = SoftmaxRaw("log_softmax", x, axis, log: true);
        return y.Record("log_softmax", [x], g => [g - Exp(y) * Sum(g, [axis], keepDim: true)]);
    }
}
