using Engine.Autodiff;
using Engine.Tests.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// Table rows for the tensor-manipulation ops (slicing, indexing, cat/stack/split, squeeze, min and the extremes
/// with positions): gradcheck rows for <see cref="OpSpecs"/> and host-reference rows for <see cref="FwdSpecs"/>.
/// Shapes cover both routes of a slice: a few contiguous copies (at most 16 outer rows) and one gather/scatter
/// kernel (more outer rows, or a step).
/// </summary>
public static class TensorOpSpecs
{
    private static string F(int[] s) => Shape.Format(s);

    /// <summary>Gradcheck rows.</summary>
    public static IEnumerable<OpSpec> GradSpecs()
    {
        var n = Gens.Normal();
        yield return new("narrow [4, 5] axis 1 (copies)", [new In([4, 5], n)], xs => xs[0].Narrow(1, 1, 3), SecondOrder: false);
        yield return new("narrow [20, 3, 2] axis 1 (gather)", [new In([20, 3, 2], n)], xs => xs[0].Narrow(1, 2, 1));
        yield return new("narrow [7] whole axis", [new In([7], n)], xs => xs[0].Narrow(0, 0, 7));
        yield return new("narrow then square (second order)", [new In([3, 6], n)], xs => xs[0].Narrow(-1, 2, 3).Square(), SecondOrder: true);
        yield return new("narrow (gather) then square (second order)", [new In([19, 4], n)], xs => xs[0].Narrow(1, 1, 2).Square(), SecondOrder: true);
        yield return new("slice [3, 7] axis 1 step 2", [new In([3, 7], n)], xs => xs[0].Slice(1, 0, 7, 2));
        yield return new("slice [9, 2] axis 0 -5..-1 step 3", [new In([9, 2], n)], xs => xs[0].Slice(0, -5, -1, 3));
        yield return new("slice [5, 4] range ^3..", [new In([5, 4], n)], xs => xs[0].Slice(0, ^3..));
        yield return new("select [4, 3] axis 1 index -1", [new In([4, 3], n)], xs => xs[0].Select(1, -1));
        yield return new("indexer t[1]", [new In([3, 4], n)], xs => xs[0][1]);
        yield return new("indexer t[.., 2]", [new In([3, 4], n)], xs => xs[0][.., 2]);
        yield return new("indexer t[1..3, ^1]", [new In([4, 3, 2], n)], xs => xs[0][1..3, ^1]);
        yield return new("indexer t[-1, 1.., 0]", [new In([2, 3, 2], n)], xs => xs[0][-1, 1.., 0]);
        yield return new("indexer twice on one tensor", [new In([5, 2], n)], xs => xs[0][0] * xs[0][^1] + xs[0][1..3].Sum(0));
        yield return new("cat [2, 3],[4, 3] axis 0", [new In([2, 3], n), new In([4, 3], n)], xs => Ops.Cat([xs[0], xs[1]]));
        yield return new("cat three along axis 1", [new In([3, 1], n), new In([3, 4], n), new In([3, 2], n)], xs => Ops.Cat([xs[0], xs[1], xs[2]], 1));
        yield return new("cat [18, 2],[18, 3] axis -1 (scatter)", [new In([18, 2], n), new In([18, 3], n)], xs => Ops.Cat([xs[0], xs[1]], -1));
        yield return new("cat with a constant part", [new In([2, 2], n), new In([2, 2], n, RequiresGrad: false)], xs => Ops.Cat([xs[1], xs[0]], 1));
        yield return new("cat of one tensor with itself", [new In([2, 3], n)], xs => Ops.Cat([xs[0], xs[0]], 0) * 1.5f, SecondOrder: false);
        yield return new("stack [2, 3] x2 axis 0", [new In([2, 3], n), new In([2, 3], n)], xs => Ops.Stack([xs[0], xs[1]]));
        yield return new("stack [2, 3] x3 axis -1", [new In([2, 3], n), new In([2, 3], n), new In([2, 3], n)], xs => Ops.Stack([xs[0], xs[1], xs[2]], -1));
        yield return new("split size 2 reassembled", [new In([5, 3], n)], xs =>
        {
            var p = xs[0].Split(2);
            return Ops.Cat([p[2], p[0] * 2f, p[1].Square()]);
        });
        yield return new("split sizes [1, 3] axis 1", [new In([2, 4], n)], xs =>
        {
            var p = xs[0].Split([1, 3], 1);
            return p[1] * p[0];
        }, SecondOrder: true);
        yield return new("chunk 3 of [2, 7] axis 1", [new In([2, 7], n)], xs =>
        {
            var p = xs[0].Chunk(3, 1);
            return Ops.Cat([p[2], p[1].Exp(), p[0]], 1);
        });
        yield return new("unsqueeze then squeeze", [new In([3, 2], n)], xs => xs[0].Unsqueeze(1).Exp().Squeeze(1));
        yield return new("squeeze all", [new In([1, 3, 1, 2], n)], xs => xs[0].Squeeze().Tanh());
        yield return new("unsqueeze -1", [new In([3], n)], xs => xs[0].Unsqueeze(-1) * xs[0]);
        var distinct = Gens.Distinct;
        yield return new("min [2, 3, 4] axis 1", [new In([2, 3, 4], distinct)], xs => xs[0].Min(1));
        yield return new("min all keepDim", [new In([3, 4], distinct)], xs => xs[0].Min(null, keepDim: true));
        yield return new("max_with_indices values [3, 5] axis 1", [new In([3, 5], distinct)], xs => xs[0].MaxWithIndices(1).Values);
        yield return new("min_with_indices values [4, 2] axis 0 keepDim", [new In([4, 2], distinct)], xs => xs[0].MinWithIndices(0, keepDim: true).Values);
    }

    /// <summary>Forward rows against plain host loops.</summary>
    public static IEnumerable<FwdSpec> ForwardSpecs()
    {
        var n = Gens.Normal(3);
        foreach (var (shape, axis, start, end, step) in new (int[], int, int, int, int)[]
        {
            ([4, 5], 1, 1, 4, 1), ([20, 3, 2], 1, 1, 3, 1), ([17, 9], 1, 0, 9, 4), ([9, 2], 0, 3, 9, 2), ([6], 0, 5, 6, 1), ([2, 3, 4], 2, 0, 4, 3),
            ([3, 0, 2], 2, 0, 2, 1), ([5, 2], 0, 2, 2, 1),
        })
        {
            yield return new($"slice {F(shape)} axis {axis} {start}:{end}:{step}", [new In(shape, n)], xs => xs[0].Slice(axis, start, end, step),
                (v, s) => Reference.Slice(v[0], s[0], axis, start, (end - start + step - 1) / step, step));
        }
        yield return new("indexer [4, 3, 2] t[1..3, ^1]", [new In([4, 3, 2], n)], xs => xs[0][1..3, ^1],
            (v, s) =>
            {
                var (a, sa) = Reference.Slice(v[0], s[0], 0, 1, 2, 1);
                var (b, sb) = Reference.Slice(a.Select(d => (float)d).ToArray(), sa, 1, 2, 1, 1);
                return (b, [sb[0], sb[2]]);
            });
        foreach (var (shapes, axis) in new (int[][], int)[]
        {
            ([[2, 3], [4, 3]], 0), ([[3, 1], [3, 4], [3, 2]], 1), ([[18, 2], [18, 3]], 1), ([[2, 3, 1], [2, 3, 2], [2, 3, 1]], 2), ([[0, 2], [3, 2]], 0),
        })
        {
            yield return new($"cat {string.Join(",", shapes.Select(F))} axis {axis}", shapes.Select(sh => new In(sh, n)).ToArray(),
                xs => Ops.Cat(xs, axis), (v, s) => Reference.Cat(v, s, axis));
        }
        yield return new("stack [2, 3] x3 axis 1", [new In([2, 3], n), new In([2, 3], n), new In([2, 3], n)], xs => Ops.Stack(xs, 1),
            (v, s) => Reference.Cat(v, s.Select(sh => new[] { 2, 1, 3 }).ToArray(), 1));
        yield return new("min [3, 5] axis 0", [new In([3, 5], n)], xs => xs[0].Min(0),
            (v, s) => (Enumerable.Range(0, 5).Select(j => (double)Enumerable.Range(0, 3).Min(i => v[0][i * 5 + j])).ToArray(), [5]));
        yield return new("argmax [4, 6] axis 1", [new In([4, 6], n)], xs => xs[0].ArgMax(1),
            (v, s) => (Enumerable.Range(0, 4).Select(i => (double)Reference.FirstExtreme(v[0], i * 6, 6, 1, max: true)).ToArray(), [4]));
        yield return new("argmin [5, 3] axis 0 keepDim", [new In([5, 3], n)], xs => xs[0].ArgMin(0, keepDim: true),
            (v, s) => (Enumerable.Range(0, 3).Select(j => (double)Reference.FirstExtreme(v[0], j, 5, 3, max: false)).ToArray(), [1, 3]));
        yield return new("argmax with ties (first wins)", [new In([3, 4], Gens.Grid(1, 0))], xs => Ops.Cat([xs[0], xs[0]], 1).ArgMax(1),
            (v, s) => (Enumerable.Range(0, 3).Select(i => (double)Reference.FirstExtreme(v[0], i * 4, 4, 1, max: true)).ToArray(), [3]));
    }

    /// <summary>Plain host loops for the table's references.</summary>
    public static class Reference
    {
        /// <summary>Entries start + j·step (j &lt; count) along <paramref name="axis"/>.</summary>
        public static (double[] Values, int[] Shape) Slice(float[] x, int[] shape, int axis, int start, int count, int step)
        {
            long outer = HostReference.Numel(shape[..axis]), inner = HostReference.Numel(shape[(axis + 1)..]);
            int extent = shape[axis];
            var y = new double[outer * count * inner];
            for (long o = 0; o < outer; o++)
                for (int j = 0; j < count; j++)
                    for (long i = 0; i < inner; i++)
                        y[(o * count + j) * inner + i] = x[(o * extent + start + j * step) * inner + i];
            var ys = (int[])shape.Clone();
            ys[axis] = count;
            return (y, ys);
        }

        /// <summary>Concatenation along <paramref name="axis"/>.</summary>
        public static (double[] Values, int[] Shape) Cat(float[][] xs, int[][] shapes, int axis)
        {
            long outer = HostReference.Numel(shapes[0][..axis]), inner = HostReference.Numel(shapes[0][(axis + 1)..]);
            int total = shapes.Sum(s => s[axis]);
            var y = new double[outer * total * inner];
            int offset = 0;
            for (int t = 0; t < xs.Length; t++)
            {
                int len = shapes[t][axis];
                for (long o = 0; o < outer; o++)
                    for (int j = 0; j < len; j++)
                        for (long i = 0; i < inner; i++)
                            y[(o * total + offset + j) * inner + i] = xs[t][(o * len + j) * inner + i];
                offset += len;
            }
            var ys = (int[])shapes[0].Clone();
            ys[axis] = total;
            return (y, ys);
        }

        /// <summary>First position of the maximum (or minimum) of x[start + k·stride], k &lt; count.</summary>
        public static int FirstExtreme(float[] x, int start, int count, int stride, bool max)
        {
            int best = 0;
            for (int k = 1; k < count; k++)
            {
                float v = x[start + k * stride], b = x[start + best * stride];
                if (max ? v > b : v < b) best = k;
            }
            return best;
        }
    }
}
