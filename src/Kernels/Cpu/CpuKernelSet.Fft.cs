using System.Collections.Concurrent;
using Engine.Kernels.Cpu.Fft;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

/// <summary>
/// The FFTs on the CPU. Rows are processed as many at a time as a vector of the current width has lanes, one per lane
/// (see <see cref="LanePlan"/> for the algorithms per length and <see cref="LaneIo"/> for the transposes); lane groups
/// are split over cores. Every lane runs the same operations, so the results do not depend on the width.
/// Real transforms of even length n use real-input packing: x as n/2 complex values z_j = x_2j + i x_2j+1, one
/// n/2-point complex FFT, then X_k = ½(Z_k + conj Z_{m-k}) - ½ i W_n^k (Z_k - conj Z_{m-k}); the inverse undoes that
/// step before one n/2-point inverse FFT. Odd real lengths run a complex FFT of length n with zero imaginary parts
/// (forward) or the Hermitian-extended spectrum (inverse).
/// </summary>
public sealed partial class CpuKernelSet
{
    private unsafe delegate void LaneGroup<TV>(long group, TV* scratch) where TV : unmanaged;

    /// <summary>(cos θ, -sin θ) with θ = 2πk/n for k ≤ n/2, per even n: the real-input packing step's twiddles.</summary>
    private static readonly ConcurrentDictionary<int, float[]> PackTwiddles = new();

    private static float[] PackTwiddlesFor(int n) => PackTwiddles.GetOrAdd(n, len =>
    {
        var t = GC.AllocateUninitializedArray<float>(2 * (len / 2 + 1), pinned: true);
        for (int k = 0; k <= len / 2; k++)
        {
            double a = 2 * Math.PI * k / len;
            t[2 * k] = (float)Math.Cos(a);
            t[2 * k + 1] = (float)-Math.Sin(a);
        }
        return t;
    });

    private static void CheckFft(string op, int batch, params int[] lengths)
    {
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), $"{op}: batch {batch} must be non-negative.");
        foreach (var n in lengths)
            if (n < 1) throw new ArgumentOutOfRangeException(nameof(lengths), $"{op}: transform length {n} must be at least 1.");
    }

    /// <inheritdoc />
    internal unsafe void Fft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n, bool inverse, float scale)
    {
        const string op = "Fft";
        CheckFft(op, batch, n);
        long count = (long)batch * n * 2;
        var xa = Data(x, count, op);
        var ya = Data(y, count, op);
        if (batch == 0) return;
        Simd.Run(new FftRowsKernel(Ptr(xa), Ptr(ya), batch, n, inverse, scale));
    }

    /// <inheritdoc />
    internal unsafe void Rfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n)
    {
        const string op = "Rfft";
        CheckFft(op, batch, n);
        var xa = Data(x, (long)batch * n, op);
        var ya = Data(y, (long)batch * (n / 2 + 1) * 2, op);
        if (batch == 0) return;
        Simd.Run(new RfftRowsKernel(Ptr(xa), Ptr(ya), batch, n));
    }

    /// <inheritdoc />
    internal unsafe void Irfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n)
    {
        const string op = "Irfft";
        CheckFft(op, batch, n);
        var xa = Data(x, (long)batch * (n / 2 + 1) * 2, op);
        var ya = Data(y, (long)batch * n, op);
        if (batch == 0) return;
        Simd.Run(new IrfftRowsKernel(Ptr(xa), Ptr(ya), batch, n));
    }

    /// <inheritdoc />
    internal unsafe void Rfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w)
    {
        const string op = "Rfft2";
        CheckFft(op, batch, h, w);
        int m = w / 2 + 1;
        var xa = Data(x, (long)batch * h * w, op);
        var ya = Data(y, (long)batch * h * m * 2, op);
        if (batch == 0) return;
        Simd.Run(new RfftRowsKernel(Ptr(xa), Ptr(ya), (long)batch * h, w));
        Simd.Run(new ColumnFftKernel(Ptr(ya), Ptr(ya), batch, h, m, false, 1f));
    }

    /// <inheritdoc />
    internal unsafe void Irfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w)
    {
        const string op = "Irfft2";
        CheckFft(op, batch, h, w);
        int m = w / 2 + 1;
        long spectrum = (long)batch * h * m * 2;
        var xa = Data(x, spectrum, op);
        var ya = Data(y, (long)batch * h * w, op);
        if (batch == 0) return;
        // The column pass must not overwrite the input spectrum: it goes to a scratch spectrum first.
        var tmp = CpuArrayPool<float>.Rent(checked((int)spectrum), out _);
        try
        {
            Simd.Run(new ColumnFftKernel(Ptr(xa), Ptr(tmp), batch, h, m, true, 1f / h));
            Simd.Run(new IrfftRowsKernel(Ptr(tmp), Ptr(ya), (long)batch * h, w));
        }
        finally
        {
            CpuArrayPool<float>.Return(tmp);
        }
    }

    private readonly unsafe struct FftRowsKernel(float* x, float* y, long rows, int n, bool inverse, float scale) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => FftRows<TV>(x, y, rows, n, inverse, scale);
    }

    private readonly unsafe struct RfftRowsKernel(float* x, float* y, long rows, int n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => RfftRows<TV>(x, y, rows, n);
    }

    private readonly unsafe struct IrfftRowsKernel(float* x, float* y, long rows, int n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => IrfftRows<TV>(x, y, rows, n);
    }

    private readonly unsafe struct ColumnFftKernel(float* src, float* dst, long batch, int h, int m, bool inverse, float scale) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => ColumnFft<TV>(src, dst, batch, h, m, inverse, scale);
    }

    /// <summary>
    /// When 1, the FFT kernels run on the calling thread only (benchmarks compare single-threaded against FFTW with
    /// this); 0 (the default) splits lane groups over all cores.
    /// </summary>
    internal static int FftThreadLimit { get; set; }

    /// <summary>This thread's lane scratch (grown on demand, never shrunk; lane groups never nest, so one per thread).</summary>
    [ThreadStatic] private static float[]? fftScratch;

    /// <summary>Runs <paramref name="body"/> for each group, split over cores, with <paramref name="vectors"/> lane vectors of scratch per worker.</summary>
    private static unsafe void ForGroups<TV>(long groups, long elementsPerGroup, long vectors, LaneGroup<TV> body)
        where TV : unmanaged, IFloatVector<TV>
    {
        long grain = FftThreadLimit == 1 ? Math.Max(1, groups) : Math.Max(1, CheapGrain / Math.Max(1, elementsPerGroup));
        For(groups, grain, (g0, g1) =>
        {
            // Scratch is kept per thread and reused: a fresh pinned array per chunk and call (hundreds of KB for long
            // lengths) would churn the pinned heap, which only a gen-2 collection reclaims.
            int need = checked((int)(vectors * TV.Count + 16));
            var buf = fftScratch;
            if (buf == null || buf.Length < need) fftScratch = buf = GC.AllocateUninitializedArray<float>(need, pinned: true);
            // 64-byte aligned, so no lane vector straddles a cache line.
            var v = (TV*)(((nint)Ptr(buf) + 63) & ~(nint)63);
            for (long g = g0; g < g1; g++) body(g, v);
            GC.KeepAlive(buf);
        }, 1);
    }

    /// <summary>The index maps the lane transposes use; see <see cref="Map"/>.</summary>
    private enum MapKind
    {
        /// <summary>Float column 2j / 2j + 1 of interleaved complex rows to lane vector 2·pos[j] / 2·pos[j] + 1 (plan n).</summary>
        ComplexDest,
        /// <summary>As <see cref="ComplexDest"/> with real and imaginary parts swapped (inverse transforms).</summary>
        ComplexDestSwapped,
        /// <summary>Float column j of real rows to lane vector 2·pos[j] (the real part; plan n).</summary>
        RealDest,
        /// <summary>c to c ^ 1 for c &lt; n: swaps each (re, im) pair back.</summary>
        SwapPairs,
        /// <summary>c to c for c &lt; n.</summary>
        Identity,
        /// <summary>j to 2j + 1 for j &lt; n: the imaginary parts, which hold the real results of a swapped inverse.</summary>
        OddColumns,
        /// <summary>A pinned copy of plan n's <see cref="LanePlan.Position"/>.</summary>
        Position,
    }

    private static readonly ConcurrentDictionary<(MapKind Kind, int N), int[]> Maps = new();

    /// <summary>
    /// A cached, pinned, read-only index map (built once per kind and length: per-call pinned arrays would churn the
    /// pinned heap).
    /// </summary>
    private static int[] Map(MapKind kind, int n) => Maps.GetOrAdd((kind, n), key =>
    {
        int len = key.Kind is MapKind.ComplexDest or MapKind.ComplexDestSwapped ? 2 * key.N : key.N;
        var map = GC.AllocateArray<int>(len, pinned: true);
        int[]? pos = key.Kind is MapKind.ComplexDest or MapKind.ComplexDestSwapped or MapKind.RealDest or MapKind.Position
            ? LanePlan.Get(key.N).Position : null;
        for (int j = 0; j < key.N; j++)
        {
            switch (key.Kind)
            {
                case MapKind.ComplexDest:
                case MapKind.ComplexDestSwapped:
                    int sw = key.Kind == MapKind.ComplexDestSwapped ? 1 : 0;
                    map[2 * j] = 2 * pos![j] + sw;
                    map[2 * j + 1] = 2 * pos[j] + 1 - sw;
                    break;
                case MapKind.RealDest: map[j] = 2 * pos![j]; break;
                case MapKind.SwapPairs: map[j] = j ^ 1; break;
                case MapKind.Identity: map[j] = j; break;
                case MapKind.OddColumns: map[j] = 2 * j + 1; break;
                default: map[j] = pos![j]; break;
            }
        }
        return map;
    });

    private static unsafe void FftRows<TV>(float* x, float* y, long rows, int n, bool inverse, float scale) where TV : unmanaged, IFloatVector<TV>
    {
        int lanes = TV.Count;
        var plan = LanePlan.Get(n);
        int bl = plan.BufferLength;
        var dest = Map(inverse ? MapKind.ComplexDestSwapped : MapKind.ComplexDest, n);
        // The inverse comes out with real and imaginary parts swapped: swap them back on the way out.
        var source = inverse ? Map(MapKind.SwapPairs, 2 * n) : null;
        int* pd = Ptr(dest);
        int* ps = source == null ? null : Ptr(source);
        long stride = 2L * n;
        ForGroups<TV>((rows + lanes - 1) / lanes, lanes * stride, 4L * bl, (g, s) =>
        {
            long r0 = g * lanes;
            int count = (int)Math.Min(lanes, rows - r0);
            TV* a = s, b = s + 2 * bl;
            LaneIo.Gather(x + r0 * stride, stride, count, 2 * n, pd, a);
            TV* r = plan.Execute(a, b);
            LaneIo.Scatter(r, ps, 2 * n, y + r0 * stride, stride, count, scale);
        });
        GC.KeepAlive(dest);
        GC.KeepAlive(source);
    }

    private static unsafe void RfftRows<TV>(float* x, float* y, long rows, int n) where TV : unmanaged, IFloatVector<TV>
    {
        int lanes = TV.Count;
        int bins = n / 2 + 1;
        long outStride = 2L * bins;
        if ((n & 1) == 1)
        {
            // Odd n: a complex FFT of length n with zero imaginary parts; keep the first n/2 + 1 bins.
            var plan = LanePlan.Get(n);
            int bl = plan.BufferLength;
            var dest = Map(MapKind.RealDest, n);
            int* pd = Ptr(dest);
            ForGroups<TV>((rows + lanes - 1) / lanes, lanes * n, 4L * bl, (g, s) =>
            {
                long r0 = g * lanes;
                int count = (int)Math.Min(lanes, rows - r0);
                TV* a = s, b = s + 2 * bl;
                for (int j = 0; j < n; j++) a[pd[j] + 1] = TV.Zero;
                LaneIo.Gather(x + r0 * n, n, count, n, pd, a);
                TV* z = plan.Execute(a, b);
                z[1] = TV.Zero;
                LaneIo.Scatter(z, null, 2 * bins, y + r0 * outStride, outStride, count, 1f);
            });
            GC.KeepAlive(dest);
            return;
        }
        {
            int m = n / 2;
            var plan = LanePlan.Get(m);
            int bl = plan.BufferLength;
            var dest = Map(MapKind.ComplexDest, m);
            int* pd = Ptr(dest);
            var twArr = PackTwiddlesFor(n);
            float* tw = Ptr(twArr);
            ForGroups<TV>((rows + lanes - 1) / lanes, lanes * n, 4L * bl + 2L * bins, (g, s) =>
            {
                long r0 = g * lanes;
                int count = (int)Math.Min(lanes, rows - r0);
                TV* a = s, b = s + 2 * bl, o = s + 4 * bl;
                LaneIo.Gather(x + r0 * n, n, count, n, pd, a);
                TV* z = plan.Execute(a, b);
                var half = TV.Create(0.5f);
                for (int k = 0; k <= m; k++)
                {
                    int i1 = k == m ? 0 : k, i2 = k == 0 ? 0 : m - k;
                    var zr = z[2 * i1]; var zi = z[2 * i1 + 1];
                    var wr = z[2 * i2]; var wi = z[2 * i2 + 1];
                    // A = Z_k + conj Z_{m-k}, B = Z_k - conj Z_{m-k}; X_k = ½ (A - i W^k B).
                    var ar = (zr + wr) * half; var ai = (zi - wi) * half;
                    var br = (zr - wr) * half; var bi = (zi + wi) * half;
                    var c = TV.Create(tw[2 * k]);
                    var sn = TV.Create(tw[2 * k + 1]);
                    o[2 * k] = TV.FusedMultiplyAdd(c, bi, TV.FusedMultiplyAdd(sn, br, ar));
                    o[2 * k + 1] = TV.FusedMultiplyAdd(sn, bi, ai - c * br);
                }
                o[1] = TV.Zero;
                o[2 * m + 1] = TV.Zero;
                LaneIo.Scatter(o, null, 2 * bins, y + r0 * outStride, outStride, count, 1f);
            });
            GC.KeepAlive(dest);
            GC.KeepAlive(twArr);
        }
    }

    private static unsafe void IrfftRows<TV>(float* x, float* y, long rows, int n) where TV : unmanaged, IFloatVector<TV>
    {
        int lanes = TV.Count;
        int bins = n / 2 + 1;
        long inStride = 2L * bins;
        var identity = Map(MapKind.Identity, 2 * bins);
        int* pid = Ptr(identity);
        float inv = 1f / n;
        if ((n & 1) == 1)
        {
            // Odd n: the Hermitian-extended spectrum through an inverse complex FFT of length n; keep the real parts.
            var plan = LanePlan.Get(n);
            int bl = plan.BufferLength;
            var pinnedPos = Map(MapKind.Position, n);
            int* pp = Ptr(pinnedPos);
            var source = Map(MapKind.OddColumns, n);
            int* ps = Ptr(source);
            ForGroups<TV>((rows + lanes - 1) / lanes, lanes * n, 4L * bl + inStride, (g, s) =>
            {
                long r0 = g * lanes;
                int count = (int)Math.Min(lanes, rows - r0);
                TV* a = s, b = s + 2 * bl, xs = s + 4 * bl;
                LaneIo.Gather(x + r0 * inStride, inStride, count, 2 * bins, pid, xs);
                xs[1] = TV.Zero;
                var vi = TV.Create(inv);
                for (int k = 0; k < n; k++)
                {
                    TV re, im;
                    if (k < bins)
                    {
                        re = xs[2 * k];
                        im = xs[2 * k + 1];
                    }
                    else
                    {
                        re = xs[2 * (n - k)];
                        im = -xs[2 * (n - k) + 1];
                    }
                    long at = 2L * pp[k];
                    a[at] = im * vi;
                    a[at + 1] = re * vi;
                }
                TV* r = plan.Execute(a, b);
                LaneIo.Scatter(r, ps, n, y + r0 * n, n, count, 1f);
            });
            GC.KeepAlive(identity);
            GC.KeepAlive(pinnedPos);
            GC.KeepAlive(source);
            return;
        }
        {
            int m = n / 2;
            var plan = LanePlan.Get(m);
            int bl = plan.BufferLength;
            var pinnedPos = Map(MapKind.Position, m);
            int* pp = Ptr(pinnedPos);
            var source = Map(MapKind.SwapPairs, n);
            int* ps = Ptr(source);
            var twArr = PackTwiddlesFor(n);
            float* tw = Ptr(twArr);
            ForGroups<TV>((rows + lanes - 1) / lanes, lanes * n, 4L * bl + inStride, (g, s) =>
            {
                long r0 = g * lanes;
                int count = (int)Math.Min(lanes, rows - r0);
                TV* a = s, b = s + 2 * bl, xs = s + 4 * bl;
                LaneIo.Gather(x + r0 * inStride, inStride, count, 2 * bins, pid, xs);
                // NumPy ignores the imaginary parts of the DC and Nyquist bins.
                xs[1] = TV.Zero;
                xs[2 * m + 1] = TV.Zero;
                var vi = TV.Create(inv);
                for (int k = 0; k < m; k++)
                {
                    int c2 = m - k;
                    var xr = xs[2 * k]; var xi = xs[2 * k + 1];
                    var yr = xs[2 * c2]; var yi = xs[2 * c2 + 1];
                    // A = X_k + conj X_{m-k}, B = X_k - conj X_{m-k}; Z'_k = A + i W^{-k} B (z = IDFT(Z') / n).
                    var ar = xr + yr; var ai = xi - yi;
                    var br = xr - yr; var bi = xi + yi;
                    var c = TV.Create(tw[2 * k]);
                    var sn = TV.Create(tw[2 * k + 1]);
                    var zr = ar - (c * bi - sn * br);
                    var zi = ai + TV.FusedMultiplyAdd(c, br, sn * bi);
                    long at = 2L * pp[k];
                    a[at] = zi * vi;
                    a[at + 1] = zr * vi;
                }
                TV* r = plan.Execute(a, b);
                LaneIo.Scatter(r, ps, n, y + r0 * n, n, count, 1f);
            });
            GC.KeepAlive(identity);
            GC.KeepAlive(pinnedPos);
            GC.KeepAlive(source);
            GC.KeepAlive(twArr);
        }
    }

    /// <summary>
    /// Complex FFT along the h axis of [batch, h, m] complex data (src to dst, which may be the same). Full groups are
    /// as many adjacent columns of one batch item as a vector has lanes (no transposes, only the (re, im) split). The
    /// leftover columns of every batch item (for w a power of two: the Nyquist column alone) are pooled across batch
    /// items into full lane groups, each lane with its own column, instead of one mostly empty group per item.
    /// </summary>
    private static unsafe void ColumnFft<TV>(float* src, float* dst, long batch, int h, int m, bool inverse, float scale)
        where TV : unmanaged, IFloatVector<TV>
    {
        var plan = LanePlan.Get(h);
        int bl = plan.BufferLength;
        var pinnedPos = Map(MapKind.Position, h);
        int* pp = Ptr(pinnedPos);
        int lanes = TV.Count;
        long full = m / lanes;
        int tail = m - (int)full * lanes;
        long stride = 2L * m;
        long fullGroups = batch * full;
        long tailColumns = batch * tail;
        long groups = fullGroups + (tailColumns + lanes - 1) / lanes;
        ForGroups<TV>(groups, lanes * h, 4L * bl, (g, s) =>
        {
            TV* va = s, vb = s + 2 * bl;
            if (g < fullGroups)
            {
                long b = g / full;
                int c0 = (int)(g % full) * lanes;
                long at = (b * h * m + c0) * 2;
                LaneIo.GatherInterleaved(src + at, stride, h, lanes, pp, inverse, va);
                TV* r = plan.Execute(va, vb);
                LaneIo.ScatterInterleaved(r, inverse, scale, dst + at, stride, h, lanes);
                return;
            }
            // Pooled leftover columns: lane l is flat leftover column t = t0 + l (batch item t / tail, column t % tail).
            long t0 = (g - fullGroups) * lanes;
            int used = (int)Math.Min(lanes, tailColumns - t0);
            long* offsets = stackalloc long[lanes];
            for (int l = 0; l < used; l++)
            {
                long t = t0 + l;
                offsets[l] = ((t / tail) * h * m + full * lanes + t % tail) * 2;
            }
            LaneIo.GatherColumns(src, offsets, used, stride, h, pp, inverse, va);
            TV* res = plan.Execute(va, vb);
            LaneIo.ScatterColumns(res, inverse, scale, dst, offsets, used, stride, h);
        });
        GC.KeepAlive(pinnedPos);
    }
}
