using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    private static Tensor ReduceRaw(string name, ReduceOp op, Tensor x, int[]? axes, bool keepDim, out int[] normAxes, out int[] keptShape)
    {
        x.CheckAlive(name);
        normAxes = Shape.Axes(name, axes, x.Rank);
        keptShape = (int[])x.shape.Clone();
        foreach (var a in normAxes) keptShape[a] = 1;
        if (op == ReduceOp.Max)
            foreach (var a in normAxes)
                if (x.shape[a] == 0)
                    throw new ArgumentException($"{name}: cannot take the max over axis {a} of extent 0 in {x.Describe()}.");
        var reduced = normAxes;
        var outShape = keepDim ? keptShape : x.shape.Where((_, i) => Array.IndexOf(reduced, i) < 0).ToArray();
        var y = Tensor.Empty(outShape, x.Device);
        x.K.Reduce(op, x.Buffer, x.shape, normAxes, y.Buffer);
        return y;
    }

    /// <summary>Sum over <paramref name="axes"/> (all axes when none are given).</summary>
    public static Tensor Sum(this Tensor x, int[]? axes = null, bool keepDim = false)
    {
        var y = ReduceRaw("sum", ReduceOp.Sum, x, axes, keepDim, out _, out var kept);
        var xs = x.shape;
        return y.Record("sum", [x], g => [BroadcastTo(g.Reshape(kept), xs)]);
    }

    /// <summary>Sum over one axis.</summary>
    public static Tensor Sum(this Tensor x, int axis, bool keepDim = false) => Sum(x, [axis], keepDim);

    /// <summary>Mean over <paramref name="axes"/> (all axes when none are given).</summary>
    public static Tensor Mean(this Tensor x, int[]? axes = null, bool keepDim = false)
    {
        var y = ReduceRaw("mean", ReduceOp.Mean, x, axes, keepDim, out var ax, out var kept);
        long count = 1;
        foreach (var a in ax) count *= x.shape[a];
        var xs = x.shape;
        return y.Record("mean", [x], g => [BroadcastTo(g.Reshape(kept), xs) * (1f / count)]);
    }

    /// <summary>Mean over one axis.</summary>
    public static Tensor Mean(this Tensor x, int axis, bool keepDim = false) => Mean(x, [axis], keepDim);

    /// <summary>Maximum over <paramref name="axes"/>; the gradient is split evenly between tied maxima.</summary>
    public static Tensor Max(this Tensor x, int[]? axes = null, bool keepDim = false)
    {
        var y = ReduceRaw("max", ReduceOp.Max, x, axes, keepDim, out var ax, out var kept);
        return y.Record("max", [x], g =>
        {
            var mask = Equal(x, y.Detach().Reshape(kept));
            var share = mask / Sum(mask, ax, keepDim: true);
            return [share * g.Reshape(kept)];
        });
    }

    /// <summary>Maximum over one axis.</summary>
    public static Tensor Max(this Tensor x, int axis, bool keepDim = false) => Max(x, [axis], keepDim);
}
