namespace Engine.Kernels.Ilgpu;

/// <summary>
/// Eight values passed to a kernel by value (a kernel parameter cannot be an array): the sizes or strides of a strided
/// layout, right-aligned so that slot 7 holds the innermost dimension, or the views and ends of a multi-tensor
/// launch's segments. Fields, so kernel code can read a slot without dynamic indexing.
/// </summary>
internal struct Octet<T> where T : struct
{
    public T V0, V1, V2, V3, V4, V5, V6, V7;

    /// <summary>Entry <paramref name="k"/> (0 to 7).</summary>
    public readonly T this[int k] => k switch
    {
        0 => V0, 1 => V1, 2 => V2, 3 => V3, 4 => V4, 5 => V5, 6 => V6, _ => V7,
    };

    /// <summary>Sets entry <paramref name="k"/> (host side, when a layout or table is filled).</summary>
    public void Set(int k, T value)
    {
        switch (k)
        {
            case 0: V0 = value; break;
            case 1: V1 = value; break;
            case 2: V2 = value; break;
            case 3: V3 = value; break;
            case 4: V4 = value; break;
            case 5: V5 = value; break;
            case 6: V6 = value; break;
            default: V7 = value; break;
        }
    }
}

/// <summary>
/// A strided gather from up to two sources into a contiguous rank-<see cref="Rank"/> output: output element i with
/// coordinates c has source offsets sum_d c_d * StrideA_d and sum_d c_d * StrideB_d (stride 0 broadcasts).
/// </summary>
internal struct StridedLayout
{
    /// <summary>Number of (coalesced) dimensions, 0..8.</summary>
    public int Rank;
    /// <summary>Output sizes, right-aligned.</summary>
    public Octet<long> Size;
    /// <summary>Strides of the first source, right-aligned.</summary>
    public Octet<long> StrideA;
    /// <summary>Strides of the second source, right-aligned.</summary>
    public Octet<long> StrideB;
}

/// <summary>Host-side shape arithmetic: contiguous strides, broadcasting strides and dimension coalescing.</summary>
internal static class Layout
{
    /// <summary>The largest rank a kernel layout holds after coalescing.</summary>
    public const int MaxRank = 8;

    public static long Product(int[] shape)
    {
        long p = 1;
        foreach (var s in shape) p *= s;
        return p;
    }

    public static long[] ContiguousStrides(int[] shape)
    {
        var st = new long[shape.Length];
        long acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            st[d] = acc;
            acc *= shape[d];
        }
        return st;
    }

    /// <summary>Strides of <paramref name="xShape"/> read as <paramref name="yShape"/> under NumPy broadcasting (right-aligned).</summary>
    public static long[] BroadcastStrides(int[] xShape, int[] yShape, string op)
    {
        if (xShape.Length > yShape.Length)
            throw new ArgumentException($"{op}: shape [{string.Join(", ", xShape)}] has more dimensions than the output [{string.Join(", ", yShape)}].");
        var xs = ContiguousStrides(xShape);
        var st = new long[yShape.Length];
        int off = yShape.Length - xShape.Length;
        for (int d = 0; d < xShape.Length; d++)
        {
            int xd = xShape[d], yd = yShape[d + off];
            if (xd == yd) st[d + off] = xd == 1 ? 0 : xs[d];
            else if (xd == 1) st[d + off] = 0;
            else
                throw new ArgumentException($"{op}: shape [{string.Join(", ", xShape)}] does not broadcast to [{string.Join(", ", yShape)}].");
        }
        return st;
    }

    /// <summary>
    /// Drops size-1 dimensions and merges neighbours that are contiguous in every stride set (outer stride = inner
    /// stride * inner size), returning the remaining sizes and strides, outermost first.
    /// </summary>
    public static (List<long> Size, List<long> StrideA, List<long> StrideB) Merge(IReadOnlyList<int> shape, IReadOnlyList<long> strideA, IReadOnlyList<long>? strideB)
    {
        var size = new List<long>();
        var sa = new List<long>();
        var sb = new List<long>();
        for (int d = 0; d < shape.Count; d++)
        {
            if (shape[d] == 1) continue;
            long bStride = strideB?[d] ?? 0;
            int last = size.Count - 1;
            if (last >= 0 && sa[last] == strideA[d] * shape[d] && sb[last] == bStride * shape[d])
            {
                size[last] *= shape[d];
                sa[last] = strideA[d];
                sb[last] = bStride;
                continue;
            }
            size.Add(shape[d]);
            sa.Add(strideA[d]);
            sb.Add(bStride);
        }
        return (size, sa, sb);
    }

    /// <summary>
    /// Packs sizes and strides (outermost first) into a kernel layout; throws a clear <see cref="ArgumentException"/>
    /// naming <paramref name="op"/> when more than <see cref="MaxRank"/> dimensions remain.
    /// </summary>
    public static StridedLayout Pack(List<long> size, List<long> sa, List<long> sb, int count, string op, IReadOnlyList<int> shape)
    {
        if (count > MaxRank)
            throw new ArgumentException(
                $"{op}: shape {Fmt(shape)} needs {count} dimensions after merging contiguous ones; " +
                $"the ILGPU kernels support at most {MaxRank}.");
        var l = new StridedLayout { Rank = count };
        for (int d = 0; d < count; d++)
        {
            int slot = MaxRank - count + d; // right-aligned: the innermost dimension in slot 7
            l.Size.Set(slot, size[d]);
            l.StrideA.Set(slot, sa[d]);
            l.StrideB.Set(slot, sb[d]);
        }
        return l;
    }

    /// <summary><see cref="Merge"/> then <see cref="Pack"/>.</summary>
    public static StridedLayout Coalesce(IReadOnlyList<int> shape, IReadOnlyList<long> strideA, IReadOnlyList<long>? strideB, string op)
    {
        var (size, sa, sb) = Merge(shape, strideA, strideB);
        return Pack(size, sa, sb, size.Count, op, shape);
    }

    public static string Fmt(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";
}
