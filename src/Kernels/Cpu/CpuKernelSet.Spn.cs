using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

// Sum-product network layers (issue 5). Every layer is a gather plus a small reduction per output element, so the
// work is split over the batch (forward) or over the parameters' rows (backward, so that every parameter gradient is
// owned by one thread and summed over the batch in a fixed order: deterministic, no atomics).
public sealed partial class CpuKernelSet
{
    private const float HalfLog2Pi = 0.918938533204672742f;

    /// <summary>Work items (elements touched) below which an SPN kernel stays on the calling thread.</summary>
    private const long SpnGrain = 16 * 1024;

    private static void CheckSpnExtents(string op, params int[] extents)
    {
        foreach (var e in extents)
            if (e < 0) throw new ArgumentOutOfRangeException(nameof(extents), $"{op}: extents [{string.Join(", ", extents)}] must be non-negative.");
    }

    /// <inheritdoc />
    internal unsafe void SpnLeafCategorical(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> logTable, int components, int categories,
        DeviceBuffer<int> regionStart, DeviceBuffer<int> entryVar, int regions, DeviceBuffer<float> y)
    {
        const string op = "SpnLeafCategorical";
        CheckSpnExtents(op, batch, vars, components, categories, regions);
        var starts = Data(regionStart, regions + 1L, op);
        int entries = starts[regions];
        var xa = Data(x, (long)batch * vars, op);
        var ta = Data(logTable, (long)entries * components * categories, op);
        var va = Data(entryVar, entries, op);
        var ya = Data(y, (long)batch * regions * components, op);
        float* px = Ptr(xa), pt = Ptr(ta), py = Ptr(ya);
        int* ps = Ptr(starts), pv = Ptr(va);
        int I = components, C = categories;
        Action<long, long> body = (n0, n1) =>
        {
            for (long n = n0; n < n1; n++)
            {
                float* xr = px + n * vars;
                float* yr = py + n * regions * I;
                for (int r = 0; r < regions; r++)
                {
                    float* yo = yr + (long)r * I;
                    for (int i = 0; i < I; i++) yo[i] = 0f;
                    for (int e = ps[r]; e < ps[r + 1]; e++)
                    {
                        float v = xr[pv[e]];
                        if (float.IsNaN(v)) continue;
                        float* row = pt + (long)e * I * C + (int)v;
                        for (int i = 0; i < I; i++) yo[i] += row[(long)i * C];
                    }
                }
            }
        };
        long work = (long)batch * entries * I;
        if (work < 2 * SpnGrain) body(0, batch);
        else For(batch, Math.Max(1, SpnGrain / Math.Max(1, (long)entries * I)), body, 1);
    }

    /// <inheritdoc />
    internal unsafe void SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> dy, int components, int categories,
        DeviceBuffer<int> entryRegion, DeviceBuffer<int> entryVar, int entries, int regions, DeviceBuffer<float> dTable)
    {
        const string op = "SpnLeafCategoricalBackward";
        CheckSpnExtents(op, batch, vars, components, categories, entries, regions);
        var xa = Data(x, (long)batch * vars, op);
        var ga = Data(dy, (long)batch * regions * components, op);
        var ra = Data(entryRegion, entries, op);
        var va = Data(entryVar, entries, op);
        var da = Data(dTable, (long)entries * components * categories, op);
        float* px = Ptr(xa), pg = Ptr(ga), pd = Ptr(da);
        int* pr = Ptr(ra), pv = Ptr(va);
        int I = components, C = categories;
        Action<long, long> body = (e0, e1) =>
        {
            var acc = new double[I * C];
            for (long e = e0; e < e1; e++)
            {
                Array.Clear(acc);
                int v = pv[e];
                long r = pr[e];
                for (long n = 0; n < batch; n++)
                {
                    float xv = px[n * vars + v];
                    if (float.IsNaN(xv)) continue;
                    int c = (int)xv;
                    float* g = pg + (n * regions + r) * I;
                    for (int i = 0; i < I; i++) acc[i * C + c] += g[i];
                }
                float* d = pd + e * I * C;
                for (int k = 0; k < I * C; k++) d[k] = (float)acc[k];
            }
        };
        long work = (long)batch * entries * I;
        if (work < 2 * SpnGrain) body(0, entries);
        else For(entries, Math.Max(1, SpnGrain / Math.Max(1, (long)batch * I)), body, 1);
    }

    /// <inheritdoc />
    internal unsafe void SpnLeafGaussian(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> mean, DeviceBuffer<float> logStd, int components,
        DeviceBuffer<int> regionStart, DeviceBuffer<int> entryVar, int regions, DeviceBuffer<float> y)
    {
        const string op = "SpnLeafGaussian";
        CheckSpnExtents(op, batch, vars, components, regions);
        var starts = Data(regionStart, regions + 1L, op);
        int entries = starts[regions];
        var xa = Data(x, (long)batch * vars, op);
        var ma = Data(mean, (long)entries * components, op);
        var sa = Data(logStd, (long)entries * components, op);
        var va = Data(entryVar, entries, op);
        var ya = Data(y, (long)batch * regions * components, op);
        // exp(-logStd) once per call, not once per sample.
        var inv = new float[(long)entries * components];
        for (long k = 0; k < inv.LongLength; k++) inv[k] = MathF.Exp(-sa[k]);
        float* px = Ptr(xa), pm = Ptr(ma), psd = Ptr(sa), py = Ptr(ya);
        int* ps = Ptr(starts), pv = Ptr(va);
        int I = components;
        Action<long, long> body = (n0, n1) =>
        {
            for (long n = n0; n < n1; n++)
            {
                float* xr = px + n * vars;
                float* yr = py + n * regions * I;
                for (int r = 0; r < regions; r++)
                {
                    float* yo = yr + (long)r * I;
                    for (int i = 0; i < I; i++) yo[i] = 0f;
                    for (int e = ps[r]; e < ps[r + 1]; e++)
                    {
                        float v = xr[pv[e]];
                        if (float.IsNaN(v)) continue;
                        long o = (long)e * I;
                        for (int i = 0; i < I; i++)
                        {
                            float z = (v - pm[o + i]) * inv[o + i];
                            yo[i] += -0.5f * z * z - psd[o + i] - HalfLog2Pi;
                        }
                    }
                }
            }
        };
        long work = (long)batch * entries * I;
        if (work < 2 * SpnGrain) body(0, batch);
        else For(batch, Math.Max(1, SpnGrain / Math.Max(1, (long)entries * I)), body, 1);
        GC.KeepAlive(inv);
    }

    /// <inheritdoc />
    internal unsafe void SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> mean, DeviceBuffer<float> logStd,
        DeviceBuffer<float> dy, int components, DeviceBuffer<int> entryRegion, DeviceBuffer<int> entryVar, int entries, int regions,
        DeviceBuffer<float> dMean, DeviceBuffer<float> dLogStd)
    {
        const string op = "SpnLeafGaussianBackward";
        CheckSpnExtents(op, batch, vars, components, entries, regions);
        var xa = Data(x, (long)batch * vars, op);
        var ma = Data(mean, (long)entries * components, op);
        var sa = Data(logStd, (long)entries * components, op);
        var ga = Data(dy, (long)batch * regions * components, op);
        var ra = Data(entryRegion, entries, op);
        var va = Data(entryVar, entries, op);
        var dma = Data(dMean, (long)entries * components, op);
        var dsa = Data(dLogStd, (long)entries * components, op);
        float* px = Ptr(xa), pm = Ptr(ma), psd = Ptr(sa), pg = Ptr(ga), pdm = Ptr(dma), pds = Ptr(dsa);
        int* pr = Ptr(ra), pv = Ptr(va);
        int I = components;
        Action<long, long> body = (e0, e1) =>
        {
            var am = new double[I];
            var asd = new double[I];
            var inv = new float[I];
            for (long e = e0; e < e1; e++)
            {
                Array.Clear(am);
                Array.Clear(asd);
                long o = e * I;
                for (int i = 0; i < I; i++) inv[i] = MathF.Exp(-psd[o + i]);
                int v = pv[e];
                long r = pr[e];
                for (long n = 0; n < batch; n++)
                {
                    float xv = px[n * vars + v];
                    if (float.IsNaN(xv)) continue;
                    float* g = pg + (n * regions + r) * I;
                    for (int i = 0; i < I; i++)
                    {
                        float z = (xv - pm[o + i]) * inv[i];
                        am[i] += (double)g[i] * z * inv[i];
                        asd[i] += (double)g[i] * (z * z - 1f);
                    }
                }
                for (int i = 0; i < I; i++)
                {
                    pdm[o + i] = (float)am[i];
                    pds[o + i] = (float)asd[i];
                }
            }
        };
        long work = (long)batch * entries * I;
        if (work < 2 * SpnGrain) body(0, entries);
        else For(entries, Math.Max(1, SpnGrain / Math.Max(1, (long)batch * I)), body, 1);
    }

    /// <inheritdoc />
    internal unsafe void SpnProduct(DeviceBuffer<float> a, int aRegions, int k1, DeviceBuffer<float> b, int bRegions, int k2,
        DeviceBuffer<int> left, DeviceBuffer<int> right, int batch, int regions, DeviceBuffer<float> y)
    {
        const string op = "SpnProduct";
        CheckSpnExtents(op, aRegions, k1, bRegions, k2, batch, regions);
        var aa = Data(a, (long)batch * aRegions * k1, op);
        var ba = Data(b, (long)batch * bRegions * k2, op);
        var la = Data(left, regions, op);
        var ra = Data(right, regions, op);
        long kk = (long)k1 * k2;
        var ya = Data(y, batch * regions * kk, op);
        Simd.Run(new SpnProductKernel(Ptr(aa), aRegions, k1, Ptr(ba), bRegions, k2, Ptr(la), Ptr(ra), batch, regions, Ptr(ya)));
    }

    private readonly unsafe struct SpnProductKernel(float* pa, int aRegions, int k1, float* pb, int bRegions, int k2, int* pl, int* pr,
        int batch, int regions, float* py) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SpnProductCore<TV, TD>(pa, aRegions, k1, pb, bRegions, k2, pl, pr, batch, regions, py);
    }

    private static unsafe void SpnProductCore<TV, TD>(float* pa, int aRegions, int k1, float* pb, int bRegions, int k2, int* pl, int* pr,
        int batch, int regions, float* py)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long kk = (long)k1 * k2;
        Action<long, long> body = (q0, q1) =>
        {
            for (long q = q0; q < q1; q++) ProductRow<TV, TD>(pa, aRegions, k1, pb, bRegions, k2, pl, pr, regions, q, py + q * kk);
        };
        long rows = (long)batch * regions;
        if (rows * kk < 2 * CheapGrain) body(0, rows);
        else For(rows, Math.Max(1, CheapGrain / Math.Max(1, kk)), body, 1);
    }

    /// <summary>Row q = (n, r) of the product layer: y[i·k2 + j] = a[n, left[r], i] + b[n, right[r], j].</summary>
    private static unsafe void ProductRow<TV, TD>(float* pa, int aRegions, int k1, float* pb, int bRegions, int k2, int* pl, int* pr, int regions,
        long q, float* y)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long n = q / regions;
        int r = (int)(q % regions);
        float* ar = pa + (n * aRegions + pl[r]) * k1;
        float* br = pb + (n * bRegions + pr[r]) * k2;
        for (int i = 0; i < k1; i++) SimdLoops<TV, TD>.ZipVS(new AddOp(), br, ar[i], y + (long)i * k2, k2);
    }

    /// <summary>
    /// Backward of the product layer for one side or, with <see cref="SpnSide.Both"/>, for one input on both sides: the
    /// left result plus the right result (the right side's row summed apart, then added, as the two one-side calls and
    /// an add would).
    /// </summary>
    internal unsafe void SpnProductBackward(DeviceBuffer<float> dy, int batch, in SpnProductMap map, int k1, int k2, SpnSide side,
        DeviceBuffer<float> dChild)
    {
        const string op = "SpnProductBackward";
        map.CheckBackwardSide(op, side, k1, k2);
        var child = side == SpnSide.Right ? map.Right : map.Left;
        int regions = map.Regions, childRegions = child.ChildRegions;
        CheckSpnExtents(op, batch, regions, k1, k2, childRegions);
        bool both = side == SpnSide.Both;
        long kk = (long)k1 * k2;
        var ga = Data(dy, batch * regions * kk, op);
        var sa = Data(child.ParentStart, childRegions + 1L, op);
        var pa = Data(child.Parents, sa[childRegions], op);
        var sb = both ? Data(map.Right.ParentStart, childRegions + 1L, op) : sa;
        var pb = both ? Data(map.Right.Parents, sb[childRegions], op) : pa;
        int kc = side == SpnSide.Right ? k2 : k1;
        var da = Data(dChild, (long)batch * childRegions * kc, op);
        float* pg = Ptr(ga), pd = Ptr(da);
        int* ps = Ptr(sa), pp = Ptr(pa), qs = Ptr(sb), qp = Ptr(pb);
        Action<long, long> body = (q0, q1) =>
        {
            float[]? rightRow = both ? new float[kc] : null;
            fixed (float* rest = rightRow)
            {
                for (long q = q0; q < q1; q++)
                {
                    long n = q / childRegions;
                    int c = (int)(q % childRegions);
                    float* d = pd + q * kc;
                    float* g = pg + n * regions * kk;
                    ProductBackwardRow(g, kk, k1, k2, side == SpnSide.Right, ps + c, pp, d);
                    if (!both) continue;
                    ProductBackwardRow(g, kk, k1, k2, true, qs + c, qp, rest);
                    for (int t = 0; t < kc; t++) d[t] += rest[t];
                }
            }
        };
        long rows = (long)batch * childRegions;
        if (batch * regions * kk < 2 * CheapGrain) body(0, rows);
        else For(rows, Math.Max(1, CheapGrain / Math.Max(1, kk)), body, 1);
    }

    /// <summary>
    /// One child's row of one side's product backward: d = Σ over the parents listed at start[0]..start[1) of
    /// the parent's dy block summed over the other side's index (rows of it for the left side, columns for the right).
    /// </summary>
    private static unsafe void ProductBackwardRow(float* g0, long kk, int k1, int k2, bool right, int* start, int* parents, float* d)
    {
        int kc = right ? k2 : k1;
        for (int t = 0; t < kc; t++) d[t] = 0f;
        for (int p = start[0]; p < start[1]; p++)
        {
            float* g = g0 + parents[p] * kk;
            if (!right)
            {
                for (int i = 0; i < k1; i++)
                {
                    float s = 0f;
                    float* gi = g + (long)i * k2;
                    for (int j = 0; j < k2; j++) s += gi[j];
                    d[i] += s;
                }
            }
            else
            {
                for (int i = 0; i < k1; i++)
                {
                    float* gi = g + (long)i * k2;
                    for (int j = 0; j < k2; j++) d[j] += gi[j];
                }
            }
        }
    }

    /// <inheritdoc />
    internal unsafe void SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, int batch, int regions, int kIn, int kOut, bool max, DeviceBuffer<float> y)
    {
        const string op = "SpnSum";
        CheckSpnExtents(op, batch, regions, kIn, kOut);
        var xa = Data(x, (long)batch * regions * kIn, op);
        var wa = Data(logW, (long)regions * kOut * kIn, op);
        var ya = Data(y, (long)batch * regions * kOut, op);
        Simd.Run(new SpnSumKernel(Ptr(xa), Ptr(wa), batch, regions, kIn, kOut, max, Ptr(ya)));
    }

    private readonly unsafe struct SpnSumKernel(float* px, float* pw, int batch, int regions, int kIn, int kOut, bool max, float* py) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SpnSumCore<TV, TD>(px, pw, batch, regions, kIn, kOut, max, py);
    }

    private static unsafe void SpnSumCore<TV, TD>(float* px, float* pw, int batch, int regions, int kIn, int kOut, bool max, float* py)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        Action<long, long> body = (q0, q1) =>
        {
            for (long q = q0; q < q1; q++) SumRow<TV>(px + q * kIn, pw + q % regions * kOut * kIn, kIn, kOut, max, py + q * kOut);
        };
        long rows = (long)batch * regions;
        long work = rows * kOut * kIn;
        if (work < 2 * MathGrain) body(0, rows);
        else For(rows, Math.Max(1, MathGrain / Math.Max(1, (long)kOut * kIn)), body, 1);
    }

    /// <summary>
    /// The product layer and the sum layer that reads it, row by row of the sum: each row's products are computed as
    /// <see cref="SpnProduct"/> computes them, into the product buffer (or a scratch row when it is null), and summed
    /// at once as <see cref="SpnSum"/> sums a row, while they are in cache.
    /// </summary>
    internal unsafe void SpnProductSum(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, in SpnProductMap map, DeviceBuffer<float> logW,
        in SpnSumSize size, bool max, DeviceBuffer<float>? product, DeviceBuffer<float> y)
    {
        const string op = nameof(ISpnProductSumKernels.SpnProductSum);
        SpnProductSumCall.Check(a, k1, b, k2, map, logW, size, product, y);
        int batch = size.Batch;
        var aa = Data(a, (long)batch * map.Left.ChildRegions * k1, op);
        var ba = Data(b, (long)batch * map.Right.ChildRegions * k2, op);
        var la = Data(map.Left.Child, map.Regions, op);
        var ra = Data(map.Right.Child, map.Regions, op);
        var wa = Data(logW, (long)size.Regions * size.KOut * size.KIn, op);
        var pa = product == null ? null : Data(product, (long)batch * size.Regions * size.KIn, op);
        var ya = Data(y, (long)batch * size.Regions * size.KOut, op);
        Simd.Run(new SpnProductSumKernel(Ptr(aa), map.Left.ChildRegions, k1, Ptr(ba), map.Right.ChildRegions, k2, Ptr(la), Ptr(ra), map.Regions, Ptr(wa),
            size, max, pa == null ? null : Ptr(pa), Ptr(ya)));
    }

    private readonly unsafe struct SpnProductSumKernel(float* pa, int aRegions, int k1, float* pb, int bRegions, int k2, int* pl, int* pr, int productRegions,
        float* pw, SpnSumSize size, bool max, float* pp, float* py) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SpnProductSumCore<TV, TD>(pa, aRegions, k1, pb, bRegions, k2, pl, pr, productRegions, pw, size, max, pp, py);
    }

    private static unsafe void SpnProductSumCore<TV, TD>(float* pa, int aRegions, int k1, float* pb, int bRegions, int k2, int* pl, int* pr,
        int productRegions, float* pw, SpnSumSize size, bool max, float* pp, float* py)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        int kk = k1 * k2, partitions = size.KIn / kk, kIn = size.KIn, kOut = size.KOut, regions = size.Regions;
        Action<long, long> body = (q0, q1) =>
        {
            float[]? scratch = pp == null ? GC.AllocateUninitializedArray<float>(kIn, pinned: true) : null;
            fixed (float* row = scratch)
                for (long q = q0; q < q1; q++)
                {
                    float* x = pp == null ? row : pp + q * kIn;
                    for (int p = 0; p < partitions; p++)
                        ProductRow<TV, TD>(pa, aRegions, k1, pb, bRegions, k2, pl, pr, productRegions, q * partitions + p, x + (long)p * kk);
                    SumRow<TV>(x, pw + q % regions * kOut * kIn, kIn, kOut, max, py + q * kOut);
                }
        };
        long rows = (long)size.Batch * regions;
        if (rows * kOut * kIn < 2 * MathGrain) body(0, rows);
        else For(rows, Math.Max(1, MathGrain / Math.Max(1, (long)kOut * kIn)), body, 1);
    }

    /// <summary>One row of the sum layer: y[o] = log Σ_k exp(x[k] + w[o, k]) (max subtracted), or the max.</summary>
    private static unsafe void SumRow<TV>(float* x, float* w, int kIn, int kOut, bool max, float* y) where TV : unmanaged, IFloatVector<TV>
    {
        for (int o = 0; o < kOut; o++)
        {
            float* wr = w + (long)o * kIn;
            float m = MaxOfSum<TV>(x, wr, kIn);
            if (max || float.IsNegativeInfinity(m) || float.IsNaN(m)) y[o] = m;
            else y[o] = m + MathF.Log(SumExpOfSum<TV>(x, wr, m, kIn));
        }
    }

    /// <summary>max_k (x[k] + w[k]); -∞ for n = 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe float MaxOfSum<TV>(float* x, float* w, int n) where TV : unmanaged, IFloatVector<TV>
    {
        int k = 0;
        float m = float.NegativeInfinity;
        if (TV.Count > 1 && n >= TV.Count)
        {
            var vm = TV.Create(float.NegativeInfinity);
            for (; k <= n - TV.Count; k += TV.Count) vm = TV.Max(vm, TV.Load(x + k) + TV.Load(w + k));
            m = TV.GetElement(vm, 0);
            for (int i = 1; i < TV.Count; i++) m = MathF.Max(m, TV.GetElement(vm, i));
        }
        for (; k < n; k++)
        {
            float t = x[k] + w[k];
            if (t > m || float.IsNaN(t)) m = t;
        }
        return m;
    }

    /// <summary>Σ_k exp(x[k] + w[k] - m) (terms of -∞ add 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe float SumExpOfSum<TV>(float* x, float* w, float m, int n) where TV : unmanaged, IFloatVector<TV>
    {
        int k = 0;
        float s = 0f;
        if (TV.Count > 1 && n >= TV.Count)
        {
            var vm = TV.Create(m);
            var acc = TV.Zero;
            for (; k <= n - TV.Count; k += TV.Count) acc += VecMath.Exp(TV.Load(x + k) + TV.Load(w + k) - vm);
            s = TV.Sum(acc);
        }
        for (; k < n; k++) s += VecMath.Exp(x[k] + w[k] - m);
        return s;
    }

    /// <inheritdoc />
    internal unsafe void SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        int batch, int regions, int kIn, int kOut, DeviceBuffer<float> dx, DeviceBuffer<float> dLogW)
    {
        const string op = "SpnSumBackward";
        CheckSpnExtents(op, batch, regions, kIn, kOut);
        long nx = (long)batch * regions * kIn, nw = (long)regions * kOut * kIn, ny = (long)batch * regions * kOut;
        var xa = Data(x, nx, op);
        var wa = Data(logW, nw, op);
        var ya = Data(y, ny, op);
        var ga = Data(dy, ny, op);
        var dxa = Data(dx, nx, op);
        var dwa = Data(dLogW, nw, op);
        Simd.Run(new SpnSumBackwardKernel(Ptr(xa), Ptr(wa), Ptr(ya), Ptr(ga), batch, regions, kIn, kOut, Ptr(dxa), Ptr(dwa), nx));
    }

    private readonly unsafe struct SpnSumBackwardKernel(float* px, float* pw, float* py, float* pg, int batch, int regions, int kIn, int kOut,
        float* pdx, float* pdw, long nx) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SpnSumBackwardCore<TV, TD>(px, pw, py, pg, batch, regions, kIn, kOut, pdx, pdw, nx);
    }

    private static unsafe void SpnSumBackwardCore<TV, TD>(float* px, float* pw, float* py, float* pg, int batch, int regions, int kIn, int kOut,
        float* pdx, float* pdw, long nx)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        // One task per region: it owns dLogW[r] (summed over the batch in order, in double) and dx[:, r, :].
        Action<long, long> body = (r0, r1) =>
        {
            var acc = GC.AllocateArray<double>(kOut * kIn, pinned: true);
            var p = GC.AllocateUninitializedArray<float>(kIn, pinned: true);
            double* pacc = Ptr(acc);
            float* pp = Ptr(p);
            for (long r = r0; r < r1; r++)
            {
                Array.Clear(acc);
                float* wr0 = pw + r * kOut * kIn;
                for (long n = 0; n < batch; n++)
                {
                    long q = n * regions + r;
                    float* xr = px + q * kIn;
                    float* dxr = pdx + q * kIn;
                    for (int k = 0; k < kIn; k++) dxr[k] = 0f;
                    for (int o = 0; o < kOut; o++)
                    {
                        float g = pg[q * kOut + o];
                        float yo = py[q * kOut + o];
                        if (g == 0f || float.IsNegativeInfinity(yo)) continue;
                        PosteriorRow<TV, TD>(xr, wr0 + (long)o * kIn, yo, g, pp, dxr, pacc + (long)o * kIn, kIn);
                    }
                }
                float* dw = pdw + r * kOut * kIn;
                for (long k = 0; k < (long)kOut * kIn; k++) dw[k] = (float)pacc[k];
            }
            GC.KeepAlive(acc);
            GC.KeepAlive(p);
        };
        if (nx * kOut < 2 * MathGrain || regions == 1) body(0, regions);
        else For(regions, 1, body, 1);
    }

    /// <summary>p[k] = g · exp(x[k] + w[k] - y); dx[k] += p[k]; acc[k] += p[k] (double).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PosteriorRow<TV, TD>(float* x, float* w, float y, float g, float* p, float* dx, double* acc, int n)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        int k = 0;
        if (TV.Count > 1)
        {
            var vy = TV.Create(y);
            var vg = TV.Create(g);
            for (; k <= n - TV.Count; k += TV.Count)
            {
                var t = VecMath.Exp(TV.Load(x + k) + TV.Load(w + k) - vy) * vg;
                TV.Store(TV.Load(dx + k) + t, dx + k);
                TV.Widen(t, out var lo, out var hi);
                TD.Store(TD.Load(acc + k) + lo, acc + k);
                TD.Store(TD.Load(acc + k + TD.Count) + hi, acc + k + TD.Count);
            }
        }
        for (; k < n; k++)
        {
            float t = VecMath.Exp(x[k] + w[k] - y) * g;
            dx[k] += t;
            acc[k] += t;
        }
    }
}
