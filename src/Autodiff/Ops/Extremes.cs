namespace Engine.Autodiff;

/// <summary>
/// Minima, and maxima and minima along an axis with the positions where they occur. Positions come back as float32
/// tensors holding exact integers (exact up to 2^24 entries per axis); <see cref="Tensor.ToInt32Array"/> turns them
/// into host ints. Ties resolve to the first position, and a NaN entry counts as the extreme (as in PyTorch).
/// </summary>
public static partial class Ops
{
    /// <summary>Minimum over <paramref name="axes"/> (all axes when none are given); the gradient is split evenly between tied minima.</summary>
    public static Tensor Min(this Tensor x, int[]? axes = null, bool keepDim = false)
    {
        x.CheckAlive("min");
        return Neg(Max(Neg(x), axes, keepDim));
    }

    /// <summary>Minimum over one axis.</summary>
    public static Tensor Min(this Tensor x, int axis, bool keepDim = false) => Min(x, [axis], keepDim);

    /// <summary>
    /// The maximum along <paramref name="axis"/> and the (first) position where it occurs, as PyTorch's
    /// <c>torch.max(x, dim)</c>. The values are differentiable; the positions are not.
    /// </summary>
    public static (Tensor Values, Tensor Indices) MaxWithIndices(this Tensor x, int axis, bool keepDim = false)
    {
        var values = Max(x, [axis], keepDim);
        return (values, ExtremePositions("argmax", x, axis, keepDim, values));
    }

    /// <summary>The minimum along <paramref name="axis"/> and the (first) position where it occurs.</summary>
    public static (Tensor Values, Tensor Indices) MinWithIndices(this Tensor x, int axis, bool keepDim = false)
    {
        var values = Min(x, [axis], keepDim);
        return (values, ExtremePositions("argmin", x, axis, keepDim, values));
    }

    /// <summary>The first position of the maximum along <paramref name="axis"/> (float32 holding integers; no gradient).</summary>
    public static Tensor ArgMax(this Tensor x, int axis, bool keepDim = false) => Positions("argmax", x, axis, keepDim, Max);

    /// <summary>The first position of the minimum along <paramref name="axis"/> (float32 holding integers; no gradient).</summary>
    public static Tensor ArgMin(this Tensor x, int axis, bool keepDim = false) => Positions("argmin", x, axis, keepDim, Min);

    /// <summary>Positions of the extremes that <paramref name="reduce"/> finds, without recording anything.</summary>
    private static Tensor Positions(string op, Tensor x, int axis, bool keepDim, Func<Tensor, int[]?, bool, Tensor> reduce)
    {
        using var _ = GradMode.NoGrad();
        using var values = reduce(x, [axis], keepDim);
        return ExtremePositions(op, x, axis, keepDim, values);
    }

    /// <summary>The flat (row-major) position of the maximum over all entries, as a host int.</summary>
    public static int ArgMax(this Tensor x)
    {
        x.CheckAlive("argmax");
        if (x.Size == 0) throw new ArgumentException($"argmax: tensor {x.Describe()} is empty.");
        using var scope = new TensorScope();
        return (int)ArgMax(x.Reshape(-1), 0).Item();
    }

    /// <summary>
    /// Per row of <paramref name="x"/> along <paramref name="axis"/>, the first position whose entry equals
    /// <paramref name="extremes"/> (or is NaN): min over positions p of (p where matched, extent elsewhere).
    /// </summary>
    private static Tensor ExtremePositions(string op, Tensor x, int axis, bool keepDim, Tensor extremes)
    {
        using var _ = GradMode.NoGrad();
        int ax = AxisIn(op, axis, x, x.Rank);
        int extent = x.shape[ax];
        var kept = (int[])x.shape.Clone();
        kept[ax] = 1;
        var positionShape = new int[x.Rank - ax];
        positionShape[0] = extent;
        for (int i = 1; i < positionShape.Length; i++) positionShape[i] = 1;
        var positions = new float[extent];
        for (int i = 0; i < extent; i++) positions[i] = i;
        using var scope = new TensorScope();
        var p = Tensor.FromArray(positions, positionShape, x.Device);
        var matched = Maximum(Equal(x, extremes.Detach().Reshape(kept)), Eq(x, x).Lt(0.5f));
        var candidates = matched * (p - extent) + extent;
        var first = Neg(Max(Neg(candidates), [ax], keepDim));
        return scope.Keep(first);
    }
}

public sealed partial class Tensor
{
    /// <summary>
    /// The entries as host ints (positions from <see cref="Ops.ArgMax(Tensor, int, bool)"/>, labels, masks).
    /// </summary>
    /// <exception cref="InvalidOperationException">An entry is not an integer in the int range.</exception>
    public int[] ToInt32Array()
    {
        var data = ToArray();
        var r = new int[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            float v = data[i];
            if (!(v >= int.MinValue && v <= int.MaxValue) || v != MathF.Floor(v))
                throw new InvalidOperationException($"ToInt32Array: entry {i} of {Describe()} is {v}, not an integer.");
            r[i] = (int)v;
        }
        return r;
    }
}
