namespace Engine.Autodiff;

/// <summary>
/// Comparisons and logical reductions. Comparisons return 1 where the relation holds and 0 elsewhere (float32 masks,
/// broadcasting like arithmetic) and carry no gradient; a NaN operand compares false except in <see cref="Ne(Tensor, Tensor)"/>,
/// as IEEE 754 says. The reductions treat any nonzero entry (NaN included) as true.
/// </summary>
public static partial class Ops
{
    /// <summary>1 where a == b, else 0.</summary>
    public static Tensor Eq(this Tensor a, Tensor b) => Equal(a, b);

    /// <summary>1 where a != b (or either is NaN), else 0.</summary>
    public static Tensor Ne(this Tensor a, Tensor b) => 1f - Equal(a, b);

    /// <summary>1 where a &gt; b, else 0.</summary>
    public static Tensor Gt(this Tensor a, Tensor b) => Greater(a, b);

    /// <summary>1 where a &lt; b, else 0.</summary>
    public static Tensor Lt(this Tensor a, Tensor b) => Greater(b, a);

    /// <summary>1 where a ≥ b, else 0.</summary>
    public static Tensor Ge(this Tensor a, Tensor b) => Greater(a, b) + Equal(a, b);

    /// <summary>1 where a ≤ b, else 0.</summary>
    public static Tensor Le(this Tensor a, Tensor b) => Greater(b, a) + Equal(a, b);

    /// <summary>1 where x == <paramref name="value"/>, else 0.</summary>
    public static Tensor Eq(this Tensor x, float value) => WithScalar(x, value, Eq);

    /// <summary>1 where x != <paramref name="value"/>, else 0.</summary>
    public static Tensor Ne(this Tensor x, float value) => WithScalar(x, value, Ne);

    /// <summary>1 where x &gt; <paramref name="value"/>, else 0.</summary>
    public static Tensor Gt(this Tensor x, float value) => WithScalar(x, value, Gt);

    /// <summary>1 where x &lt; <paramref name="value"/>, else 0.</summary>
    public static Tensor Lt(this Tensor x, float value) => WithScalar(x, value, Lt);

    /// <summary>1 where x ≥ <paramref name="value"/>, else 0.</summary>
    public static Tensor Ge(this Tensor x, float value) => WithScalar(x, value, Ge);

    /// <summary>1 where x ≤ <paramref name="value"/>, else 0.</summary>
    public static Tensor Le(this Tensor x, float value) => WithScalar(x, value, Le);

    private static Tensor WithScalar(Tensor x, float value, Func<Tensor, Tensor, Tensor> compare)
    {
        x.CheckAlive("compare");
        using var s = Tensor.Scalar(value, x.Device);
        using (GradMode.NoGrad()) return compare(x, s);
    }

    /// <summary>True if any entry is nonzero (false for an empty tensor).</summary>
    public static bool Any(this Tensor x)
    {
        x.CheckAlive("any");
        if (x.Size == 0) return false;
        using var scope = new TensorScope();
        using var _ = GradMode.NoGrad();
        return Max(Ne(x, 0f)).Item() > 0f;
    }

    /// <summary>True if every entry is nonzero (true for an empty tensor).</summary>
    public static bool All(this Tensor x)
    {
        x.CheckAlive("all");
        if (x.Size == 0) return true;
        using var scope = new TensorScope();
        using var _ = GradMode.NoGrad();
        return Max(Eq(x, 0f)).Item() == 0f;
    }

    /// <summary>1 where some entry along <paramref name="axis"/> is nonzero, else 0.</summary>
    public static Tensor Any(this Tensor x, int axis, bool keepDim = false)
    {
        using var _ = GradMode.NoGrad();
        return Max(Ne(x, 0f), [axis], keepDim);
    }

    /// <summary>1 where every entry along <paramref name="axis"/> is nonzero, else 0.</summary>
    public static Tensor All(this Tensor x, int axis, bool keepDim = false)
    {
        using var _ = GradMode.NoGrad();
        return 1f - Max(Eq(x, 0f), [axis], keepDim);
    }

    /// <summary>
    /// 1 where |a - b| ≤ atol + rtol·|b| (NumPy's and PyTorch's isclose, with broadcasting), else 0; with
    /// <paramref name="equalNan"/>, two NaNs count as close.
    /// </summary>
    public static Tensor IsClose(this Tensor a, Tensor b, double rtol = 1e-5, double atol = 1e-8, bool equalNan = false)
    {
        CheckSameDevice("isclose", a, b);
        using var _ = GradMode.NoGrad();
        // A difference must be finite to be within tolerance (inf and -inf are not close, though inf ≤ inf); equal
        // values, infinities included, are close whatever the tolerances.
        var diff = Abs(a - b);
        var close = Maximum(Le(diff, Abs(b) * (float)rtol + (float)atol) * Lt(diff, float.PositiveInfinity), Eq(a, b));
        if (!equalNan) return close;
        return Maximum(close, Eq(a, a).Lt(0.5f) * Eq(b, b).Lt(0.5f));
    }

    /// <summary>True when every entry of <see cref="IsClose"/> holds (shapes must broadcast).</summary>
    public static bool AllClose(this Tensor a, Tensor b, double rtol = 1e-5, double atol = 1e-8, bool equalNan = false)
    {
        using var scope = new TensorScope();
        return All(IsClose(a, b, rtol, atol, equalNan));
    }
}
