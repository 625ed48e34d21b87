using System.Numerics;
using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// Plain-loop reference implementations of every <see cref="IKernelSet"/> op: no SIMD, no threads, no blocking,
/// math in double precision from the float inputs. Ops that compute return <c>double[]</c> (compared with a tolerance);
/// ops that only move data return <c>float[]</c> (compared exactly). The kernel tests check each kernel set against
/// them; the autodiff forward tests check tensor ops against them (through the whole-tensor forms at the end), so that
/// gradcheck never compares a wrong forward with itself.
/// </summary>
public static class HostReference
{
    // ------------------------------------------------------------------ shapes

    /// <summary>Number of elements of a shape ([] has one).</summary>
    public static long Numel(int[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    /// <summary>Row-major strides of a shape.</summary>
    public static long[] Strides(int[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    /// <summary>NumPy broadcast shape of two shapes (right-aligned); throws if they are incompatible.</summary>
    public static int[] BroadcastShape(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var y = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"shapes [{string.Join(",", a)}] and [{string.Join(",", b)}] do not broadcast");
            y[i] = da == 1 ? db : da;
        }
        return y;
    }

    /// <summary>
    /// For each flat index of <paramref name="yShape"/>, the flat index of the element of an operand of
    /// <paramref name="xShape"/> that NumPy broadcasting reads there.
    /// </summary>
    public static long[] BroadcastSourceIndex(int[] xShape, int[] yShape)
    {
        int rank = yShape.Length, off = rank - xShape.Length;
        if (off < 0) throw new ArgumentException("operand has higher rank than the output");
        var xStrides = Strides(xShape);
        var map = new long[Numel(yShape)];
        var idx = new int[rank];
        for (long f = 0; f < map.Length; f++)
        {
            long src = 0;
            for (int d = off; d < rank; d++)
            {
                if (xShape[d - off] != 1)
                {
                    if (xShape[d - off] != yShape[d]) throw new ArgumentException("operand does not broadcast to the output");
                    src += idx[d] * xStrides[d - off];
                }
            }
            map[f] = src;
            Increment(idx, yShape);
        }
        return map;
    }

    /// <summary>Advances a row-major multi-index by one.</summary>
    private static void Increment(int[] idx, int[] shape)
    {
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (++idx[d] < shape[d]) return;
            idx[d] = 0;
        }
    }

    // ------------------------------------------------------------------ elementwise

    /// <summary>erf in double precision (|error| &lt; 1e-14): a positive-term series below 2.5, erfc's continued fraction above.</summary>
    public static double Erf(double x)
    {
        double z = Math.Abs(x), erf;
        if (z < 2.5)
        {
            // erf(z) = 2/sqrt(pi) exp(-z^2) sum_n (2z^2)^n z / (1*3*...*(2n+1)): no cancellation.
            double term = z, sum = z, z2 = 2.0 * z * z;
            for (int n = 1; n < 100 && term > 1e-17 * sum; n++)
            {
                term *= z2 / (2 * n + 1);
                sum += term;
            }
            erf = 2.0 / Math.Sqrt(Math.PI) * Math.Exp(-z * z) * sum;
        }
        else
        {
            // erfc(z) = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + (2/2)/(z + (3/2)/(z + ...)))), evaluated backwards.
            double f = z;
            for (int n = 40; n >= 1; n--) f = z + 0.5 * n / f;
            erf = 1.0 - Math.Exp(-z * z) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -erf : erf;
    }

    /// <summary>A unary op in double precision (the mathematical definition of its <see cref="OpTable"/> row, not <see cref="ScalarMath"/>'s fit).</summary>
    public static double Apply(UnaryOp op, double x) => OpTable.Of(op).Reference(x);

    /// <summary>A binary op in double precision on float operands (comparisons compare the floats).</summary>
    public static double Apply(BinaryOp op, float a, float b) => OpTable.Of(op).Reference(a, b);

    /// <summary>y[i] = op(x[i]).</summary>
    public static double[] Unary(UnaryOp op, float[] x)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = Apply(op, x[i]);
        return y;
    }

    /// <summary>y[i] = scale * x[i] + shift.</summary>
    public static double[] Affine(float[] x, float scale, float shift)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = (double)scale * x[i] + shift;
        return y;
    }

    /// <summary>y = op(a, b) with NumPy broadcasting; <paramref name="yShape"/> receives the broadcast shape.</summary>
    public static double[] Binary(BinaryOp op, float[] a, int[] aShape, float[] b, int[] bShape, out int[] yShape)
    {
        yShape = BroadcastShape(aShape, bShape);
        var ia = BroadcastSourceIndex(aShape, yShape);
        var ib = BroadcastSourceIndex(bShape, yShape);
        var y = new double[ia.Length];
        for (long i = 0; i < y.Length; i++) y[i] = Apply(op, a[ia[i]], b[ib[i]]);
        return y;
    }

    /// <summary>x broadcast to <paramref name="yShape"/>.</summary>
    public static float[] BroadcastTo(float[] x, int[] xShape, int[] yShape)
    {
        var ix = BroadcastSourceIndex(xShape, yShape);
        var y = new float[ix.Length];
        for (long i = 0; i < y.Length; i++) y[i] = x[ix[i]];
        return y;
    }

    /// <summary>y[i] += alpha * x[i], from y's current values.</summary>
    public static double[] Axpy(float alpha, float[] x, float[] y)
    {
        var r = new double[y.Length];
        for (int i = 0; i < y.Length; i++) r[i] = y[i] + (double)alpha * x[i];
        return r;
    }

    // ------------------------------------------------------------------ reductions

    /// <summary><paramref name="xShape"/> with <paramref name="axes"/> removed.</summary>
    public static int[] ReducedShape(int[] xShape, int[] axes) =>
        Enumerable.Range(0, xShape.Length).Where(d => !axes.Contains(d)).Select(d => xShape[d]).ToArray();

    /// <summary>
    /// Reduces x over axes. <paramref name="magnitude"/> receives, per output, the sum of |x| over the group
    /// (divided by the count for Mean): the scale of the rounding error a float summation may make.
    /// Sum of an empty group is 0, Mean NaN, Max -inf.
    /// </summary>
    public static double[] Reduce(ReduceOp op, float[] x, int[] xShape, int[] axes, out double[] magnitude)
    {
        var yShape = ReducedShape(xShape, axes);
        var yStrides = Strides(yShape);
        long ny = Numel(yShape);
        // Stride of each x axis in y (0 for reduced axes).
        var toY = new long[xShape.Length];
        for (int d = 0, j = 0; d < xShape.Length; d++) toY[d] = axes.Contains(d) ? 0 : yStrides[j++];
        long count = 1;
        foreach (var ax in axes) count *= xShape[ax];

        var sum = new double[ny];
        var abs = new double[ny];
        var max = new double[ny];
        Array.Fill(max, double.NegativeInfinity);
        var idx = new int[xShape.Length];
        for (long f = 0; f < x.Length; f++)
        {
            long o = 0;
            for (int d = 0; d < idx.Length; d++) o += idx[d] * toY[d];
            sum[o] += x[f];
            abs[o] += Math.Abs(x[f]);
            if (x[f] > max[o] || float.IsNaN(x[f])) max[o] = x[f];
            Increment(idx, xShape);
        }
        switch (op)
        {
            case ReduceOp.Sum:
                magnitude = abs;
                return sum;
            case ReduceOp.Mean:
                for (long i = 0; i < ny; i++)
                {
                    sum[i] /= count;
                    abs[i] /= count;
                }
                magnitude = abs;
                return sum;
            case ReduceOp.Max:
                magnitude = new double[ny];
                return max;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op, null);
        }
    }

    // ------------------------------------------------------------------ GEMM

    /// <summary>
    /// <see cref="IKernelSet.Gemm"/> with index maps, by their definition: each operand matrix is unmapped into a plain copy
    /// (element o read from (o / L) L + map[o % L]), <see cref="Gemm"/> runs on the copies, and each element o of
    /// every C_p (and its magnitude) is written back to (o / L) L + mapC[o % L]. A null map is the identity.
    /// </summary>
    public static double[] GemmIndexed(int batch, int m, int n, int k, float alpha,
        float[] a, long strideA, bool transA, int[]? mapA, float[] b, long strideB, bool transB, int[]? mapB,
        float beta, float[] c, long strideC, int[]? mapC, out double[] magnitude)
    {
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        static long Map(long o, int[]? map) => map == null ? o : o / map.Length * map.Length + map[o % map.Length];
        static float[] Unmap(float[] x, int count, long stride, long size, int[]? map)
        {
            var y = (float[])x.Clone();
            for (int p = 0; p < count; p++)
                for (long o = 0; o < size; o++)
                    y[p * stride + o] = x[p * stride + Map(o, map)];
            return y;
        }
        var la = Unmap(a, strideA == 0 ? Math.Min(batch, 1) : batch, strideA, sizeA, mapA);
        var lb = Unmap(b, strideB == 0 ? Math.Min(batch, 1) : batch, strideB, sizeB, mapB);
        var lc = Unmap(c, batch, strideC, sizeC, mapC);
        var r = Gemm(batch, m, n, k, alpha, la, strideA, transA, lb, strideB, transB, beta, lc, strideC, out var mag);
        var result = new double[c.Length];
        for (int i = 0; i < c.Length; i++) result[i] = c[i];
        magnitude = new double[c.Length];
        for (int p = 0; p < batch; p++)
            for (long o = 0; o < sizeC; o++)
            {
                long dst = p * strideC + Map(o, mapC);
                result[dst] = r[p * strideC + o];
                magnitude[dst] = mag[p * strideC + o];
            }
        return result;
    }

    /// <summary>
    /// Batched GEMM exactly as <see cref="IKernelSet.Gemm"/> specifies. Returns the whole new C buffer (elements
    /// outside every C_p copied unchanged). <paramref name="magnitude"/> receives, per element of C,
    /// |alpha| * sum_l |op(A)_il op(B)_lj| + |beta C_ij| (0 outside every C_p): the scale of the rounding error.
    /// </summary>
    public static double[] Gemm(int batch, int m, int n, int k, float alpha,
        float[] a, long strideA, bool transA, float[] b, long strideB, bool transB,
        float beta, float[] c, long strideC, out double[] magnitude)
    {
        var result = new double[c.Length];
        for (int i = 0; i < c.Length; i++) result[i] = c[i];
        magnitude = new double[c.Length];
        var opA = new double[(long)m * k];
        var opB = new double[(long)k * n];
        var acc = new double[n];
        var accAbs = new double[n];
        for (int p = 0; p < batch; p++)
        {
            long a0 = p * strideA, b0 = p * strideB, c0 = p * strideC;
            for (int i = 0; i < m; i++)
            for (int l = 0; l < k; l++)
                opA[(long)i * k + l] = transA ? a[a0 + (long)l * m + i] : a[a0 + (long)i * k + l];
            for (int l = 0; l < k; l++)
            for (int j = 0; j < n; j++)
                opB[(long)l * n + j] = transB ? b[b0 + (long)j * k + l] : b[b0 + (long)l * n + j];
            for (int i = 0; i < m; i++)
            {
                Array.Clear(acc);
                Array.Clear(accAbs);
                for (int l = 0; l < k; l++)
                {
                    double ail = opA[(long)i * k + l];
                    var rowB = opB.AsSpan((int)((long)l * n), n);
                    // acc[j] += ail * rowB[j] and accAbs[j] += |ail * rowB[j]|, System.Numerics vectors for speed
                    // (each lane is still one sequential double sum), then a scalar tail.
                    int j = 0;
                    var va = new Vector<double>(ail);
                    for (; j <= n - Vector<double>.Count; j += Vector<double>.Count)
                    {
                        var t = va * new Vector<double>(rowB[j..]);
                        (new Vector<double>(acc.AsSpan(j)) + t).CopyTo(acc.AsSpan(j));
                        (new Vector<double>(accAbs.AsSpan(j)) + Vector.Abs(t)).CopyTo(accAbs.AsSpan(j));
                    }
                    for (; j < n; j++)
                    {
                        double t = ail * rowB[j];
                        acc[j] += t;
                        accAbs[j] += Math.Abs(t);
                    }
                }
                for (int j = 0; j < n; j++)
                {
                    long ci = c0 + (long)i * n + j;
                    double old = beta == 0 ? 0 : (double)beta * c[ci]; // beta == 0: C is not read
                    result[ci] = (double)alpha * acc[j] + old;
                    magnitude[ci] = Math.Abs((double)alpha) * accAbs[j] + Math.Abs(old);
                }
            }
        }
        return result;
    }

    // ------------------------------------------------------------------ data movement

    /// <summary>y.shape[i] = xShape[perm[i]].</summary>
    public static int[] PermutedShape(int[] xShape, int[] perm) => perm.Select(p => xShape[p]).ToArray();

    /// <summary>x with its axes permuted.</summary>
    public static float[] Permute(float[] x, int[] xShape, int[] perm)
    {
        var yShape = PermutedShape(xShape, perm);
        var xStrides = Strides(xShape);
        var y = new float[x.Length];
        var idx = new int[yShape.Length];
        for (long f = 0; f < y.Length; f++)
        {
            long src = 0;
            for (int d = 0; d < idx.Length; d++) src += idx[d] * xStrides[perm[d]];
            y[f] = x[src];
            Increment(idx, yShape);
        }
        return y;
    }

    /// <summary>Splits a shape around <paramref name="axis"/> into (outer, extent, inner).</summary>
    public static (long Outer, int Extent, long Inner) Split(int[] shape, int axis)
    {
        long outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < shape.Length; d++) inner *= shape[d];
        return (outer, shape[axis], inner);
    }

    /// <summary>y[o, j, i] = x[o, index[j], i] with x viewed as [outer, xShape[axis], inner].</summary>
    public static float[] IndexSelect(float[] x, int[] xShape, int axis, int[] index)
    {
        var (outer, extent, inner) = Split(xShape, axis);
        var y = new float[outer * index.Length * inner];
        for (long o = 0; o < outer; o++)
        for (int j = 0; j < index.Length; j++)
        for (long i = 0; i < inner; i++)
            y[(o * index.Length + j) * inner + i] = x[(o * extent + index[j]) * inner + i];
        return y;
    }

    /// <summary>y[o, index[j], i] += src[o, j, i], starting from y's current values.</summary>
    public static double[] IndexAdd(float[] src, int[] srcShape, int axis, int[] index, float[] y, int[] yShape)
    {
        var (outer, len, inner) = Split(srcShape, axis);
        if (len != index.Length) throw new ArgumentException("srcShape[axis] must equal the index length");
        int extent = yShape[axis];
        var r = new double[y.Length];
        for (int i = 0; i < y.Length; i++) r[i] = y[i];
        for (long o = 0; o < outer; o++)
        for (int j = 0; j < len; j++)
        for (long i = 0; i < inner; i++)
            r[(o * extent + index[j]) * inner + i] += src[(o * len + j) * inner + i];
        return r;
    }

    /// <summary>y[r, c] = labels[r] == c ? 1 : 0.</summary>
    public static float[] OneHot(int[] labels, int rows, int classes)
    {
        var y = new float[(long)rows * classes];
        for (int r = 0; r < rows; r++) y[(long)r * classes + labels[r]] = 1f;
        return y;
    }

    // ------------------------------------------------------------------ softmax family

    /// <summary>Softmax or log-softmax along the middle axis of x viewed as [outer, axisLength, inner].</summary>
    public static double[] Softmax(float[] x, int outer, int axisLength, int inner, bool log)
    {
        var y = new double[x.Length];
        for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++)
        {
            long at(int j) => (o * axisLength + j) * inner + i;
            double max = double.NegativeInfinity;
            for (int j = 0; j < axisLength; j++) max = Math.Max(max, x[at(j)]);
            double s = 0;
            for (int j = 0; j < axisLength; j++) s += Math.Exp(x[at(j)] - max);
            double logS = Math.Log(s);
            for (int j = 0; j < axisLength; j++)
                y[at(j)] = log ? (x[at(j)] - max) - logS : Math.Exp(x[at(j)] - max) / s;
        }
        return y;
    }

    /// <summary>loss[r] = logsumexp(logits[r, :]) - logits[r, labels[r]].</summary>
    public static double[] CrossEntropy(float[] logits, int[] labels, int rows, int classes)
    {
        var loss = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            long row = (long)r * classes;
            double max = double.NegativeInfinity;
            for (int c = 0; c < classes; c++) max = Math.Max(max, logits[row + c]);
            double s = 0;
            for (int c = 0; c < classes; c++) s += Math.Exp(logits[row + c] - max);
            loss[r] = (max - logits[row + labels[r]]) + Math.Log(s);
        }
        return loss;
    }

    // ------------------------------------------------------------------ layer norm

    /// <summary>
    /// Layer normalisation of x viewed as [rows, cols] in double: per row mean, rstd = 1 / sqrt(biased var + eps),
    /// y = (x - mean) · rstd · gamma + beta.
    /// </summary>
    public static (double[] Y, double[] Mean, double[] Rstd) LayerNorm(float[] x, float[] gamma, float[] beta, int rows, int cols, float eps)
    {
        var y = new double[(long)rows * cols];
        var mean = new double[rows];
        var rstd = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            long b = (long)r * cols;
            double s = 0;
            for (int j = 0; j < cols; j++) s += x[b + j];
            double m = s / cols;
            double v = 0;
            for (int j = 0; j < cols; j++) v += (x[b + j] - m) * (x[b + j] - m);
            double rs = 1 / Math.Sqrt(v / cols + eps);
            mean[r] = m;
            rstd[r] = rs;
            for (int j = 0; j < cols; j++) y[b + j] = (x[b + j] - m) * rs * gamma[j] + beta[j];
        }
        return (y, mean, rstd);
    }

    /// <summary>
    /// LayerNorm backward in double from the given (float) row statistics: xhat = (x - mean) · rstd, dxhat = dy · gamma,
    /// dx = rstd · (dxhat - mean(dxhat) - xhat · mean(dxhat · xhat)), dgamma = Σ_rows dy · xhat, dbeta = Σ_rows dy.
    /// </summary>
    public static (double[] Dx, double[] Dgamma, double[] Dbeta) LayerNormBackward(float[] dy, float[] x, float[] mean, float[] rstd,
        float[] gamma, int rows, int cols)
    {
        var dx = new double[(long)rows * cols];
        var dgamma = new double[cols];
        var dbeta = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            long b = (long)r * cols;
            double s1 = 0, s2 = 0;
            for (int j = 0; j < cols; j++)
            {
                double h = (x[b + j] - (double)mean[r]) * rstd[r];
                double g = (double)dy[b + j] * gamma[j];
                s1 += g;
                s2 += g * h;
                dgamma[j] += (double)dy[b + j] * h;
                dbeta[j] += dy[b + j];
            }
            for (int j = 0; j < cols; j++)
            {
                double h = (x[b + j] - (double)mean[r]) * rstd[r];
                dx[b + j] = rstd[r] * ((double)dy[b + j] * gamma[j] - s1 / cols - h * s2 / cols);
            }
        }
        return (dx, dgamma, dbeta);
    }

    // ------------------------------------------------------------------ whole-tensor forms (autodiff forward tests)

    /// <summary>y[i] = f(x[i]) in double precision: for elementwise ops that are no single <see cref="UnaryOp"/>.</summary>
    public static double[] Map(float[] x, Func<double, double> f)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = f(x[i]);
        return y;
    }

    /// <summary><paramref name="shape"/> with <paramref name="axis"/> resized to <paramref name="extent"/> (IndexSelect's output, IndexAdd's target).</summary>
    public static int[] WithExtent(int[] shape, int axis, int extent)
    {
        var y = (int[])shape.Clone();
        y[axis] = extent;
        return y;
    }

    /// <summary>
    /// <see cref="Reduce(ReduceOp, float[], int[], int[], out double[])"/> as a tensor op takes its axes: null means all,
    /// a negative axis counts from the end, and <paramref name="keepDim"/> keeps each reduced axis with extent 1.
    /// </summary>
    public static double[] Reduce(ReduceOp op, float[] x, int[] xShape, int[]? axes, bool keepDim, out int[] yShape)
    {
        var ax = axes == null ? Enumerable.Range(0, xShape.Length).ToArray() : axes.Select(a => a < 0 ? a + xShape.Length : a).ToArray();
        var y = Reduce(op, x, xShape, ax, out _);
        yShape = keepDim ? xShape.Select((d, i) => ax.Contains(i) ? 1 : d).ToArray() : ReducedShape(xShape, ax);
        return y;
    }

    /// <summary>
    /// op(A) op(B) over the last two axes, by <see cref="Gemm"/>: operands of equal rank pair batch by batch; a rank-2
    /// operand is shared across the other's batch (stride 0).
    /// </summary>
    public static double[] MatMul(float[] a, int[] aShape, float[] b, int[] bShape, bool transA, bool transB, out int[] yShape)
    {
        int m = transA ? aShape[^1] : aShape[^2], k = transA ? aShape[^2] : aShape[^1];
        int n = transB ? bShape[^2] : bShape[^1], kb = transB ? bShape[^1] : bShape[^2];
        if (k != kb) throw new ArgumentException($"inner extents {k} and {kb} differ");
        var batchShape = aShape.Length > 2 ? aShape[..^2] : bShape[..^2];
        yShape = [.. batchShape, m, n];
        return Gemm((int)Numel(batchShape), m, n, k, 1f,
            a, aShape.Length == 2 ? 0 : (long)m * k, transA, b, bShape.Length == 2 ? 0 : (long)k * n, transB,
            0f, new float[Numel(yShape)], (long)m * n, out _);
    }

    /// <summary>Softmax or log-softmax of x of <paramref name="shape"/> along <paramref name="axis"/> (negative counts from the end).</summary>
    public static double[] Softmax(float[] x, int[] shape, int axis, bool log)
    {
        var (outer, len, inner) = Split(shape, axis < 0 ? axis + shape.Length : axis);
        return Softmax(x, (int)outer, len, (int)inner, log);
    }

    // ------------------------------------------------------------------ optimizers (in place, float state)

    /// <summary>One SGD step (PyTorch semantics) on float state; each element computed in double, then rounded.</summary>
    public static void SgdStep(float[] param, float[] grad, float[]? velocity,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep)
    {
        for (int i = 0; i < param.Length; i++)
        {
            double g = grad[i] + (double)weightDecay * param[i];
            if (momentum != 0)
            {
                if (velocity == null) throw new ArgumentNullException(nameof(velocity), "momentum != 0 needs a velocity");
                double v = firstStep ? g : (double)momentum * velocity[i] + (1 - (double)dampening) * g;
                velocity[i] = (float)v;
                g = nesterov ? g + (double)momentum * v : v;
            }
            param[i] = (float)(param[i] - (double)lr * g);
        }
    }

    /// <summary>One Adam/AdamW step (PyTorch semantics, step counted from 1) on float state.</summary>
    public static void AdamStep(float[] param, float[] grad, float[] m, float[] v,
        float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled, int step)
    {
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        for (int i = 0; i < param.Length; i++)
        {
            double p = param[i], g = grad[i];
            if (decoupled) p *= 1 - (double)lr * weightDecay;
            else g += (double)weightDecay * p;
            double mi = (double)beta1 * m[i] + (1 - (double)beta1) * g;
            double vi = (double)beta2 * v[i] + (1 - (double)beta2) * g * g;
            m[i] = (float)mi;
            v[i] = (float)vi;
            p -= lr * (mi / bc1) / (Math.Sqrt(vi / bc2) + eps);
            param[i] = (float)p;
        }
    }

    // ------------------------------------------------------------------ random

    /// <summary>dst[i] = CounterRng.Uniform(seed, i, low, high).</summary>
    public static float[] RandomUniform(long length, ulong seed, float low, float high)
    {
        var y = new float[length];
        for (long i = 0; i < length; i++) y[i] = CounterRng.Uniform(seed, (ulong)i, low, high);
        return y;
    }

    /// <summary>dst[i] = fma(std, CounterRng.Normal(seed, i), mean), in float as the contract writes it.</summary>
    public static float[] RandomNormal(long length, ulong seed, float mean, float std)
    {
        var y = new float[length];
        for (long i = 0; i < length; i++) y[i] = CounterRng.Normal(seed, (ulong)i, mean, std);
        return y;
    }
}
