namespace Engine.Tests.Autodiff;

/// <summary>
/// Plain host references in double precision (NumPy semantics: row-major, right-aligned broadcasting), used to check
/// forward values so that gradcheck never compares a wrong forward with itself.
/// </summary>
internal static class HostRef
{
    public static long Size(int[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    public static int[] Strides(int[] shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    public static int[] Unravel(long flat, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            idx[i] = (int)(flat % shape[i]);
            flat /= shape[i];
        }
        return idx;
    }

    public static int[] BroadcastShape(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            r[i] = Math.Max(da, db);
        }
        return r;
    }

    /// <summary>Flat index into a tensor of <paramref name="shape"/> broadcast to an output index.</summary>
    public static long BroadcastIndex(int[] outIdx, int[] shape)
    {
        int off = outIdx.Length - shape.Length;
        long flat = 0;
        for (int i = 0; i < shape.Length; i++)
            flat = flat * shape[i] + (shape[i] == 1 ? 0 : outIdx[i + off]);
        return flat;
    }

    public static double[] Map(double[] x, Func<double, double> f) => x.Select(f).ToArray();

    public static (double[], int[]) Binary(double[] a, int[] sa, double[] b, int[] sb, Func<double, double, double> f)
    {
        var shape = BroadcastShape(sa, sb);
        var y = new double[Size(shape)];
        for (long i = 0; i < y.Length; i++)
        {
            var idx = Unravel(i, shape);
            y[i] = f(a[BroadcastIndex(idx, sa)], b[BroadcastIndex(idx, sb)]);
        }
        return (y, shape);
    }

    public static double[] BroadcastTo(double[] x, int[] sx, int[] shape)
    {
        var y = new double[Size(shape)];
        for (long i = 0; i < y.Length; i++) y[i] = x[BroadcastIndex(Unravel(i, shape), sx)];
        return y;
    }

    /// <summary>Reduces over <paramref name="axes"/> (all when null) with <paramref name="agg"/>.</summary>
    public static (double[], int[]) Reduce(double[] x, int[] shape, int[]? axes, bool keepDim, Func<List<double>, double> agg)
    {
        var ax = (axes ?? Enumerable.Range(0, shape.Length).ToArray()).Select(a => a < 0 ? a + shape.Length : a).ToHashSet();
        var kept = shape.Select((d, i) => ax.Contains(i) ? 1 : d).ToArray();
        var groups = new List<double>[Size(kept)];
        for (int g = 0; g < groups.Length; g++) groups[g] = new List<double>();
        for (long i = 0; i < x.Length; i++)
        {
            var idx = Unravel(i, shape);
            foreach (var a in ax) idx[a] = 0;
            long o = 0;
            for (int d = 0; d < kept.Length; d++) o = o * kept[d] + idx[d];
            groups[o].Add(x[i]);
        }
        var outShape = keepDim ? kept : shape.Where((_, i) => !ax.Contains(i)).ToArray();
        return (groups.Select(agg).ToArray(), outShape);
    }

    public static (double[], int[]) Permute(double[] x, int[] shape, int[] perm)
    {
        var outShape = perm.Select(p => shape[p]).ToArray();
        var strides = Strides(shape);
        var y = new double[x.Length];
        for (long i = 0; i < y.Length; i++)
        {
            var idx = Unravel(i, outShape);
            long src = 0;
            for (int d = 0; d < perm.Length; d++) src += (long)idx[d] * strides[perm[d]];
            y[i] = x[src];
        }
        return (y, outShape);
    }

    /// <summary>op(A) op(B) over the last two axes; a rank-2 operand is shared across the other's batch.</summary>
    public static (double[], int[]) MatMul(double[] a, int[] sa, double[] b, int[] sb, bool transA, bool transB)
    {
        int m = transA ? sa[^1] : sa[^2], k = transA ? sa[^2] : sa[^1];
        int n = transB ? sb[^2] : sb[^1];
        var batchShape = sa.Length > 2 ? sa[..^2] : sb[..^2];
        long batch = Size(batchShape);
        bool sharedA = sa.Length == 2, sharedB = sb.Length == 2;
        var y = new double[batch * m * n];
        for (long p = 0; p < batch; p++)
        {
            long oa = sharedA ? 0 : p * m * k, ob = sharedB ? 0 : p * k * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int q = 0; q < k; q++)
                    {
                        double av = transA ? a[oa + (long)q * m + i] : a[oa + (long)i * k + q];
                        double bv = transB ? b[ob + (long)j * k + q] : b[ob + (long)q * n + j];
                        s += av * bv;
                    }
                    y[p * m * n + (long)i * n + j] = s;
                }
        }
        return (y, batchShape.Concat(new[] { m, n }).ToArray());
    }

    public static double[] Softmax(double[] x, int[] shape, int axis, bool log)
    {
        if (axis < 0) axis += shape.Length;
        int outer = (int)Size(shape[..axis]), len = shape[axis], inner = (int)Size(shape[(axis + 1)..]);
        var y = new double[x.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < len; j++) max = Math.Max(max, x[(o * len + j) * inner + i]);
                double sum = 0;
                for (int j = 0; j < len; j++) sum += Math.Exp(x[(o * len + j) * inner + i] - max);
                for (int j = 0; j < len; j++)
                {
                    double z = x[(o * len + j) * inner + i] - max;
                    y[(o * len + j) * inner + i] = log ? z - Math.Log(sum) : Math.Exp(z) / sum;
                }
            }
        return y;
    }

    public static (double[], int[]) IndexSelect(double[] x, int[] shape, int axis, int[] index)
    {
        var outShape = (int[])shape.Clone();
        outShape[axis] = index.Length;
        var y = new double[Size(outShape)];
        var strides = Strides(shape);
        for (long i = 0; i < y.Length; i++)
        {
            var idx = Unravel(i, outShape);
            idx[axis] = index[idx[axis]];
            long src = 0;
            for (int d = 0; d < idx.Length; d++) src += (long)idx[d] * strides[d];
            y[i] = x[src];
        }
        return (y, outShape);
    }

    public static (double[], int[]) IndexAdd(double[] src, int[] shape, int axis, int[] index, int extent)
    {
        var outShape = (int[])shape.Clone();
        outShape[axis] = extent;
        var y = new double[Size(outShape)];
        var strides = Strides(outShape);
        for (long i = 0; i < src.Length; i++)
        {
            var idx = Unravel(i, shape);
            idx[axis] = index[idx[axis]];
            long dst = 0;
            for (int d = 0; d < idx.Length; d++) dst += (long)idx[d] * strides[d];
            y[dst] += src[i];
        }
        return (y, outShape);
    }

    /// <summary>erf in double precision (Taylor series for |x| &lt; 3, continued fraction beyond), error well below 1e-12.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 3)
        {
            double term = ax, sum = ax;
            for (int n = 1; n < 200; n++)
            {
                term *= -ax * ax / n;
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-17 * Math.Abs(sum)) break;
            }
            double r = 2 / Math.Sqrt(Math.PI) * sum;
            return x < 0 ? -r : r;
        }
        // erfc(x) = exp(-x²)/sqrt(pi) · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) evaluated from the tail.
        double f = ax;
        for (int n = 60; n >= 1; n--) f = ax + n / 2.0 / f;
        double erfc = Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        return x < 0 ? erfc - 1 : 1 - erfc;
    }

    public static double GeluErf(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}
