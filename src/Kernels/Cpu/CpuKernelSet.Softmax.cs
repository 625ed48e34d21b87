using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <summary>Inner-tile width of the strided (inner &gt; 1) softmax.</summary>
    private const int SoftmaxTile = 256;

    /// <inheritdoc />
    internal unsafe void Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log)
    {
        if (outer < 0 || axisLength < 0 || inner < 0)
            throw new ArgumentOutOfRangeException(nameof(outer), "Softmax: extents must be non-negative.");
        long n = (long)outer * axisLength * inner;
        var xa = Data(x, n, "Softmax");
        var ya = Data(y, n, "Softmax");
        if (n == 0) return;
        Simd.Run(new SoftmaxKernel(Ptr(xa), Ptr(ya), n, outer, axisLength, inner, log));
    }

    private readonly unsafe struct SoftmaxKernel(float* x, float* y, long n, int outer, int axisLength, int inner, bool log) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SoftmaxCore<TV, TD>(x, y, n, outer, axisLength, inner, log);
    }

    private static unsafe void SoftmaxCore<TV, TD>(float* px, float* py, long n, int outer, int axisLength, int inner, bool log)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        var all = SoftmaxItems.Of(px, py, outer, axisLength, inner, log);
        Action<long, long> body = (i0, i1) =>
        {
            var mx = stackalloc float[SoftmaxTile];
            var sum = stackalloc double[SoftmaxTile];
            var tmp = stackalloc float[SoftmaxTile];
            SoftmaxRange<TV, TD>(all, i0, i1, mx, sum, tmp);
        };
        if (n < 2 * MathGrain) body(0, all.Count);
        else For(all.Count, Math.Max(1, MathGrain / all.PerItem), body, 1);
    }

    /// <summary>
    /// The work items of one softmax: its contiguous rows (inner = 1), else its tiles of up to
    /// <see cref="SoftmaxTile"/> adjacent inner positions of each outer index. Each item is computed alone, in a fixed
    /// order, so the results do not depend on how items are shared out.
    /// </summary>
    private readonly unsafe struct SoftmaxItems(float* x, float* y, int axisLength, int inner, bool log, long count)
    {
        public readonly float* X = x, Y = y;
        public readonly int AxisLength = axisLength, Inner = inner;
        public readonly bool Log = log;

        /// <summary>Items of the softmax.</summary>
        public readonly long Count = count;

        /// <summary>Tiles per outer index (strided softmax).</summary>
        public long Tiles => (Inner + SoftmaxTile - 1) / SoftmaxTile;

        /// <summary>Elements of one item (of a full tile).</summary>
        public long PerItem => (long)AxisLength * Math.Min(Inner, SoftmaxTile);

        public static SoftmaxItems Of(float* x, float* y, int outer, int axisLength, int inner, bool log) =>
            new(x, y, axisLength, inner, log, inner == 1 ? outer : (long)outer * ((inner + SoftmaxTile - 1) / SoftmaxTile));
    }

    /// <summary>Items [i0, i1) of one softmax; the three tile buffers hold <see cref="SoftmaxTile"/> entries each.</summary>
    private static unsafe void SoftmaxRange<TV, TD>(in SoftmaxItems s, long i0, long i1, float* mx, double* sum, float* tmp)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long len = s.AxisLength;
        if (s.Inner == 1)
        {
            for (long r = i0; r < i1; r++) SoftmaxRow<TV, TD>(s.X + r * len, s.Y + r * len, len, s.Log);
            return;
        }
        long tiles = s.Tiles, inn = s.Inner;
        for (long it = i0; it < i1; it++)
        {
            long o = it / tiles, c0 = (it % tiles) * SoftmaxTile;
            long w = Math.Min(SoftmaxTile, inn - c0);
            SoftmaxStrided<TV, TD>(s.X + o * len * inn + c0, s.Y + o * len * inn + c0, len, inn, w, s.Log, mx, sum, tmp);
        }
    }

    /// <summary>
    /// Independent softmaxes (checked by <see cref="SoftmaxBatch.Check"/>) as one parallel loop: each call's items in
    /// chunks of about <see cref="MathGrain"/> elements, every chunk of every call one task, each item computed as
    /// <see cref="Softmax"/> computes it alone.
    /// </summary>
    internal unsafe void Softmaxes(IReadOnlyList<SoftmaxCall> calls)
    {
        const string op = nameof(ISoftmaxBatchKernels.Softmaxes);
        SoftmaxBatch.Check(calls);
        var chunks = new List<(SoftmaxItems Items, long First, long Last)>();
        long n = 0;
        foreach (var c in calls)
        {
            long count = (long)c.Outer * c.AxisLength * c.Inner;
            var xa = Data(c.X, count, op);
            var ya = Data(c.Y, count, op);
            if (count == 0) continue;
            var items = SoftmaxItems.Of(Ptr(xa), Ptr(ya), c.Outer, c.AxisLength, c.Inner, c.Log);
            long per = Math.Max(1, MathGrain / items.PerItem);
            for (long first = 0; first < items.Count; first += per) chunks.Add((items, first, Math.Min(items.Count, first + per)));
            n += count;
        }
        if (n > 0) Simd.Run(new SoftmaxBatchKernel(chunks.ToArray(), n));
    }

    private readonly unsafe struct SoftmaxBatchKernel((SoftmaxItems Items, long First, long Last)[] chunks, long n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>()
        {
            var parts = chunks;
            Action<long, long> body = (c0, c1) =>
            {
                var mx = stackalloc float[SoftmaxTile];
                var sum = stackalloc double[SoftmaxTile];
                var tmp = stackalloc float[SoftmaxTile];
                for (long c = c0; c < c1; c++) SoftmaxRange<TV, TD>(parts[c].Items, parts[c].First, parts[c].Last, mx, sum, tmp);
            };
            if (n < 2 * MathGrain) body(0, parts.Length);
            else For(parts.Length, 1, body, 1);
        }
    }

    /// <summary>Softmax of one contiguous row.</summary>
    private static unsafe void SoftmaxRow<TV, TD>(float* x, float* y, long len, bool log)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        if (!log)
        {
            ProbabilitiesOfRow<TV, TD>(x, y, len, out _);
        }
        else
        {
            float m = SimdLoops<TV, TD>.Max(x, len, float.NegativeInfinity);
            double s = ExpSubSum<TV, TD>(x, m, null, len);
            SimdLoops<TV, TD>.Map(new LogSoftmaxOp(m, (float)Math.Log(s)), x, y, len);
        }
    }

    /// <summary>
    /// The softmax of one contiguous row into y (x and y may be one row); returns the row's maximum and its sum of
    /// exp(x - max) in double, from which <see cref="CrossEntropyOfRow"/> takes the row's loss.
    /// </summary>
    private static unsafe float ProbabilitiesOfRow<TV, TD>(float* x, float* y, long len, out double sum)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        float m = SimdLoops<TV, TD>.Max(x, len, float.NegativeInfinity);
        sum = ExpSubSum<TV, TD>(x, m, y, len);
        SimdLoops<TV, TD>.ZipVS(new MulOp(), y, (float)(1.0 / sum), y, len);
        return m;
    }

    /// <summary>Cross-entropy of a row from its maximum, its label's logit and its sum of exp(x - max): logsumexp - logit.</summary>
    private static float CrossEntropyOfRow(float max, float labelLogit, double sum) => (float)(((double)max - labelLogit) + Math.Log(sum));

    /// <summary>Softmax over a strided axis for a tile of w adjacent inner positions (row stride <paramref name="stride"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SoftmaxStrided<TV, TD>(float* x, float* y, long len, long stride, long w, bool log, float* mx, double* sum, float* tmp)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        SimdLoops.Fill(mx, w, float.NegativeInfinity);
        for (long i = 0; i < w; i++) sum[i] = 0;
        for (long a = 0; a < len; a++) SimdLoops<TV, TD>.AccumulateMax(mx, x + a * stride, w);
        for (long a = 0; a < len; a++)
        {
            float* t = log ? tmp : y + a * stride;
            SimdLoops<TV, TD>.Zip(new Then<SubOp, ExpOp>(), x + a * stride, mx, t, w);
            SimdLoops<TV, TD>.AccumulateDouble(sum, t, w);
        }
        if (!log)
        {
            for (long i = 0; i < w; i++) tmp[i] = (float)(1.0 / sum[i]);
            for (long a = 0; a < len; a++) SimdLoops<TV, TD>.Zip(new MulOp(), y + a * stride, tmp, y + a * stride, w);
        }
        else
        {
            for (long i = 0; i < w; i++) tmp[i] = (float)Math.Log(sum[i]);
            for (long a = 0; a < len; a++)
            {
                SimdLoops<TV, TD>.Zip(new SubOp(), x + a * stride, mx, y + a * stride, w);
                SimdLoops<TV, TD>.Zip(new SubOp(), y + a * stride, tmp, y + a * stride, w);
            }
        }
    }

    /// <summary>Σ exp(x[i] - m) in double; stores the exponentials into y unless y is null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double ExpSubSum<TV, TD>(float* x, float m, float* y, long n)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long i = 0;
        double s = 0;
        if (TV.Count > 1)
        {
            int w = TV.Count;
            var vm = TV.Create(m);
            var s0 = TD.Zero;
            var s1 = TD.Zero;
            for (; i <= n - w; i += w)
            {
                var e = VecMath.Exp(TV.Load(x + i) - vm);
                if (y != null) TV.Store(e, y + i);
                TV.Widen(e, out var l, out var h);
                s0 += l;
                s1 += h;
            }
            s = TD.Sum(s0 + s1);
        }
        for (; i < n; i++)
        {
            float e = VecMath.Exp(x[i] - m);
            if (y != null) y[i] = e;
            s += e;
        }
        return s;
    }

    /// <inheritdoc />
    internal unsafe void CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss)
    {
        if (rows < 0 || classes < 0) throw new ArgumentOutOfRangeException(nameof(rows), "CrossEntropy: extents must be non-negative.");
        long n = (long)rows * classes;
        var xa = Data(logits, n, "CrossEntropy");
        var la = Data(labels, rows, "CrossEntropy");
        var ya = Data(loss, rows, "CrossEntropy");
        if (rows == 0) return;
        CheckIndices(la, rows, classes, "CrossEntropy");
        Simd.Run(new CrossEntropyKernel(Ptr(xa), Ptr(la), Ptr(ya), rows, classes));
    }

    private readonly unsafe struct CrossEntropyKernel(float* logits, int* labels, float* loss, int rows, int classes) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => CrossEntropyCore<TV, TD>(logits, labels, loss, rows, classes);
    }

    private static unsafe void CrossEntropyCore<TV, TD>(float* px, int* pl, float* py, int rows, int classes)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long n = (long)rows * classes;
        long c = classes;
        Action<long, long> body = (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                float* xr = px + r * c;
                float m = SimdLoops<TV, TD>.Max(xr, c, float.NegativeInfinity);
                double s = ExpSubSum<TV, TD>(xr, m, null, c);
                py[r] = CrossEntropyOfRow(m, xr[pl[r]], s);
            }
        };
        if (n < 2 * MathGrain) body(0, rows);
        else For(rows, Math.Max(1, MathGrain / c), body, 1);
    }

    /// <inheritdoc cref="ISoftmaxCrossEntropyKernels.SoftmaxCrossEntropy"/>
    internal unsafe void SoftmaxCrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss,
        DeviceBuffer<float> gradient)
    {
        const string op = "SoftmaxCrossEntropy";
        if (rows < 0 || classes < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"{op}: extents must be non-negative, got [{rows}, {classes}].");
        long n = (long)rows * classes;
        var xa = Data(logits, n, op);
        var la = Data(labels, rows, op);
        var ya = Data(loss, rows, op);
        var ga = Data(gradient, n, op);
        if (ReferenceEquals(ya, xa) || ReferenceEquals(ya, ga))
            throw new ArgumentException($"{op}: the loss buffer must not be the logits' or the gradient's.");
        if (rows == 0) return;
        CheckIndices(la, rows, classes, op);
        Simd.Run(new SoftmaxCrossEntropyKernel(Ptr(xa), Ptr(la), Ptr(ya), Ptr(ga), rows, classes));
    }

    private readonly unsafe struct SoftmaxCrossEntropyKernel(float* logits, int* labels, float* loss, float* gradient, int rows, int classes) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SoftmaxCrossEntropyCore<TV, TD>(logits, labels, loss, gradient, rows, classes);
    }

    /// <summary>Per row: the softmax into the gradient, the loss from the same maximum and sum, then 1 off the label's entry.</summary>
    private static unsafe void SoftmaxCrossEntropyCore<TV, TD>(float* px, int* pl, float* py, float* pg, int rows, int classes)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long n = (long)rows * classes;
        long c = classes;
        Action<long, long> body = (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                float* xr = px + r * c, gr = pg + r * c;
                int label = pl[r];
                // Read before the softmax overwrites it (the gradient may be the logits).
                float labelLogit = xr[label];
                float m = ProbabilitiesOfRow<TV, TD>(xr, gr, c, out double s);
                py[r] = CrossEntropyOfRow(m, labelLogit, s);
                gr[label] -= 1f;
            }
        };
        if (n < 2 * MathGrain) body(0, rows);
        else For(rows, Math.Max(1, MathGrain / c), body, 1);
    }

    /// <inheritdoc />
    internal unsafe void OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y)
    {
        if (rows < 0 || classes < 0) throw new ArgumentOutOfRangeException(nameof(rows), "OneHot: extents must be non-negative.");
        long n = (long)rows * classes;
        var la = Data(labels, rows, "OneHot");
        var ya = Data(y, n, "OneHot");
        if (n == 0) return;
        CheckIndices(la, rows, classes, "OneHot");
        float* py = Ptr(ya);
        if (n < 2 * CheapGrain) SimdLoops.Fill(py, n, 0f);
        else For(n, CheapGrain, (s, e) => SimdLoops.Fill(py + s, e - s, 0f));
        for (long r = 0; r < rows; r++) py[r * classes + la[r]] = 1f;
    }
}

/// <summary>(x - max) - log(sum): log-softmax of a row whose max and log-sum are known.</summary>
internal readonly struct LogSoftmaxOp(float max, float logSum) : IUnaryOp
{
    public static int Cost => 1;
    public float Scalar(float x) => (x - max) - logSum;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => (x - TV.Create(max)) - TV.Create(logSum);
}
