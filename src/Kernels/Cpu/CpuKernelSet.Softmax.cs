using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
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
        float* px = Ptr(xa), py = Ptr(ya);
        long len = axisLength;
        if (inner == 1)
        {
            Action<long, long> rows = (r0, r1) =>
            {
                for (long r = r0; r < r1; r++) SoftmaxRow(px + r * len, py + r * len, len, log);
            };
            if (n < 2 * MathGrain) rows(0, outer);
            else For(outer, Math.Max(1, MathGrain / len), rows, 1);
            return;
        }
        long tiles = (inner + SoftmaxTile - 1) / SoftmaxTile;
        long items = outer * tiles;
        long inn = inner;
        Action<long, long> body = (i0, i1) =>
        {
            var mx = stackalloc float[SoftmaxTile];
            var sum = stackalloc double[SoftmaxTile];
            var tmp = stackalloc float[SoftmaxTile];
            for (long it = i0; it < i1; it++)
            {
                long o = it / tiles, c0 = (it % tiles) * SoftmaxTile;
                long w = Math.Min(SoftmaxTile, inn - c0);
                SoftmaxStrided(px + o * len * inn + c0, py + o * len * inn + c0, len, inn, w, log, mx, sum, tmp);
            }
        };
        long perItem = len * Math.Min(inn, SoftmaxTile);
        if (n < 2 * MathGrain) body(0, items);
        else For(items, Math.Max(1, MathGrain / perItem), body, 1);
    }

    /// <summary>Softmax of one contiguous row.</summary>
    private static unsafe void SoftmaxRow(float* x, float* y, long len, bool log)
    {
        float m = SimdLoops.Max(x, len, float.NegativeInfinity);
        if (!log)
        {
            double s = ExpSubSum(x, m, y, len);
            SimdLoops.ZipVS(new MulK(), y, (float)(1.0 / s), y, len);
        }
        else
        {
            double s = ExpSubSum(x, m, null, len);
            SimdLoops.Map(new LogSoftmaxK(m, (float)Math.Log(s)), x, y, len);
        }
    }

    /// <summary>Softmax over a strided axis for a tile of w adjacent inner positions (row stride <paramref name="stride"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SoftmaxStrided(float* x, float* y, long len, long stride, long w, bool log, float* mx, double* sum, float* tmp)
    {
        SimdLoops.Fill(mx, w, float.NegativeInfinity);
        for (long i = 0; i < w; i++) sum[i] = 0;
        for (long a = 0; a < len; a++) SimdLoops.AccumulateMax(mx, x + a * stride, w);
        for (long a = 0; a < len; a++)
        {
            float* t = log ? tmp : y + a * stride;
            SimdLoops.Zip(new ExpSubK(), x + a * stride, mx, t, w);
            SimdLoops.AccumulateDouble(sum, t, w);
        }
        if (!log)
        {
            for (long i = 0; i < w; i++) tmp[i] = (float)(1.0 / sum[i]);
            for (long a = 0; a < len; a++) SimdLoops.Zip(new MulK(), y + a * stride, tmp, y + a * stride, w);
        }
        else
        {
            for (long i = 0; i < w; i++) tmp[i] = (float)Math.Log(sum[i]);
            for (long a = 0; a < len; a++)
            {
                SimdLoops.Zip(new SubK(), x + a * stride, mx, y + a * stride, w);
                SimdLoops.Zip(new SubK(), y + a * stride, tmp, y + a * stride, w);
            }
        }
    }

    /// <summary>Σ exp(x[i] - m) in double; stores the exponentials into y unless y is null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double ExpSubSum(float* x, float m, float* y, long n)
    {
        long i = 0;
        double s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(m);
            var s0 = Vector512<double>.Zero;
            var s1 = Vector512<double>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = SimdMath.Exp(Vector512.Load(x + i) - vm);
                if (y != null) Vector512.Store(e, y + i);
                var (l, h) = Vector512.Widen(e);
                s0 += l;
                s1 += h;
            }
            s = Vector512.Sum(s0 + s1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(m);
            var s0 = Vector256<double>.Zero;
            var s1 = Vector256<double>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var e = SimdMath.Exp(Vector256.Load(x + i) - vm);
                if (y != null) Vector256.Store(e, y + i);
                var (l, h) = Vector256.Widen(e);
                s0 += l;
                s1 += h;
            }
            s = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++)
        {
            float e = SimdMath.Exp(x[i] - m);
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
        float* px = Ptr(xa), py = Ptr(ya);
        int* pl = Ptr(la);
        long c = classes;
        Action<long, long> body = (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                float* xr = px + r * c;
                float m = SimdLoops.Max(xr, c, float.NegativeInfinity);
                double s = ExpSubSum(xr, m, null, c);
                py[r] = (float)(((double)m - xr[pl[r]]) + Math.Log(s));
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

/// <summary>exp(a - b), the softmax numerator.</summary>
internal struct ExpSubK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => SimdMath.Exp(a - b);
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => SimdMath.Exp(a - b);
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => SimdMath.Exp(a - b);
}

/// <summary>(x - max) - log(sum): log-softmax of a row whose max and log-sum are known.</summary>
internal readonly struct LogSoftmaxK(float max, float logSum) : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => (x - max) - logSum;
    public Vector256<float> Apply(Vector256<float> x) => (x - Vector256.Create(max)) - Vector256.Create(logSum);
    public Vector512<float> Apply(Vector512<float> x) => (x - Vector512.Create(max)) - Vector512.Create(logSum);
}
