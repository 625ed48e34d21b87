namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>Reorders axes: result axis i is input axis <paramref name="perm"/>[i].</summary>
    public static Tensor Permute(this Tensor x, params int[] perm)
    {
        const string op = "permute";
        x.CheckAlive(op);
        if (perm.Length != x.Rank)
            throw new ArgumentException($"{op}: permutation [{string.Join(", ", perm)}] has {perm.Length} axes, tensor {x.Describe()} has {x.Rank}.");
        var p = perm.Select(a => Shape.Axis(op, a, x.Rank)).ToArray();
        if (p.Distinct().Count() != p.Length)
            throw new ArgumentException($"{op}: [{string.Join(", ", perm)}] repeats an axis.");
        var outShape = p.Select(a => x.shape[a]).ToArray();
        var y = Tensor.Empty(outShape, x.Device);
        x.K.Permute(x.Buffer, x.shape, p, y.Buffer);
        var inverse = new int[p.Length];
        for (int i = 0; i < p.Length; i++) inverse[p[i]] = i;
        return y.Record(op, [x], g => [Permute(g, inverse)]);
    }

    /// <summary>Swaps two axes (default: the last two).</summary>
    public static Tensor Transpose(this Tensor x, int axis0 = -2, int axis1 = -1)
    {
        x.CheckAlive("transpose");
        var perm = Enumerable.Range(0, x.Rank).ToArray();
        int a = Shape.Axis("transpose", axis0, x.Rank), b = Shape.Axis("transpose", axis1, x.Rank);
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(x, perm);
    }

    /// <summary>Selects entries along <paramref name="axis"/>: result[..., j, ...] = x[..., index[j], ...].</summary>
    public static Tensor IndexSelect(this Tensor x, int axis, IndexTensor index)
    {
        const string op = "index_select";
        x.CheckAlive(op);
        int ax = Shape.Axis(op, axis, x.Rank);
        index.CheckRange(op, x.shape[ax]);
        var outShape = (int[])x.shape.Clone();
        outShape[ax] = index.Length;
        var y = Tensor.Empty(outShape, x.Device);
        x.K.IndexSelect(x.Buffer, x.shape, ax, index.On(x.Device), index.Length, y.Buffer);
        int extent = x.shape[ax];
        // A permutation's adjoint is the gather by its inverse: no zero fill, no scatter of its own.
        if (index.Length == extent && index.IsPermutation())
        {
            var inverse = InversePermutation(op, "index", index);
            return y.Record(op, [x], g => [IndexSelect(g, ax, inverse)]);
        }
        return y.Record(op, [x], g => [IndexAdd(g, ax, index, extent)]);
    }

    /// <summary>
    /// The adjoint of <see cref="IndexSelect"/>: a zero tensor with <paramref name="extent"/> entries along
    /// <paramref name="axis"/> into which src[..., j, ...] is added at position index[j].
    /// </summary>
    public static Tensor IndexAdd(this Tensor src, int axis, IndexTensor index, int extent)
    {
        const string op = "index_add";
        src.CheckAlive(op);
        int ax = Shape.Axis(op, axis, src.Rank);
        if (src.shape[ax] != index.Length)
            throw new ArgumentException($"{op}: source {src.Describe()} has {src.shape[ax]} entries along axis {ax}, the index has {index.Length}.");
        index.CheckRange(op, extent);
        var outShape = (int[])src.shape.Clone();
        outShape[ax] = extent;
        var y = Tensor.Empty(outShape, src.Device);
        src.K.Fill(y.Buffer, 0f);
        src.K.IndexAdd(src.Buffer, src.shape, ax, index.On(src.Device), y.Buffer, outShape);
        return y.Record(op, [src], g => [IndexSelect(g, ax, index)]);
    }
}
