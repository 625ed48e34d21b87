using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu;

/// <summary>How the drivers store full vectors: plain stores, or aligned non-temporal stores for outputs far larger than the caches.</summary>
internal unsafe interface IStoreMode
{
    /// <summary>True for non-temporal stores (the drivers peel to 64-byte alignment and fence at the end).</summary>
    static abstract bool NonTemporal { get; }

    /// <summary>Stores one vector.</summary>
    static abstract void Store<TV>(TV v, float* p) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>Ordinary (cached) stores.</summary>
internal unsafe struct CachedStore : IStoreMode
{
    public static bool NonTemporal => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TV>(TV v, float* p) where TV : unmanaged, IFloatVector<TV> => TV.Store(v, p);
}

/// <summary>Aligned non-temporal stores: no read-for-ownership of the destination, no cache pollution.</summary>
internal unsafe struct StreamingStore : IStoreMode
{
    public static bool NonTemporal => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TV>(TV v, float* p) where TV : unmanaged, IFloatVector<TV> => TV.StoreAlignedNonTemporal(v, p);
}

/// <summary>
/// Loop drivers at one vector width: a vector body (unrolled four times where it streams) and a scalar tail that
/// computes each remaining element as a <see cref="Vec1"/> lane, so every element gets the same bits wherever it falls.
/// At <see cref="Vec1"/> itself only the scalar code runs. Pointers address pinned arrays; the caller guarantees the
/// ranges.
/// </summary>
internal static unsafe class SimdLoops<TV, TD>
    where TV : unmanaged, IFloatVector<TV, TD>
    where TD : unmanaged, IDoubleVector<TD>
{
    /// <summary>True when <typeparamref name="TV"/> has more than one lane (a JIT-time constant).</summary>
    private static bool Vectorized
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => TV.Count > 1;
    }

    /// <summary>y[i] = op(x[i]); y may equal x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Map<TOp>(TOp op, float* x, float* y, long n) where TOp : unmanaged, IUnaryOp =>
        Map<TOp, CachedStore>(op, x, y, n);

    /// <summary>y[i] = op(x[i]) with the given store mode; y may equal x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Map<TOp, TS>(TOp op, float* x, float* y, long n) where TOp : unmanaged, IUnaryOp where TS : struct, IStoreMode
    {
        long i = 0;
        if (Vectorized)
        {
            int w = TV.Count;
            if (TS.NonTemporal)
                for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Vector<Vec1>(x[i]);
            // An op that is a call (IUnaryOp.Calls) runs one vector at a time: four loaded ahead would be held across it.
            for (; !TOp.Calls && i <= n - 4 * w; i += 4 * w)
            {
                var v0 = TV.Load(x + i);
                var v1 = TV.Load(x + i + w);
                var v2 = TV.Load(x + i + 2 * w);
                var v3 = TV.Load(x + i + 3 * w);
                TS.Store(op.Vector(v0), y + i);
                TS.Store(op.Vector(v1), y + i + w);
                TS.Store(op.Vector(v2), y + i + 2 * w);
                TS.Store(op.Vector(v3), y + i + 3 * w);
            }
            for (; i <= n - w; i += w)
                TS.Store(op.Vector(TV.Load(x + i)), y + i);
        }
        for (; i < n; i++) y[i] = op.Vector<Vec1>(x[i]);
        if (TS.NonTemporal && Vectorized && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = op(a[i], b[i]); y may equal a or b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Zip<TOp>(TOp op, float* a, float* b, float* y, long n) where TOp : unmanaged, IBinaryOp =>
        Zip<TOp, CachedStore>(op, a, b, y, n);

    /// <summary>y[i] = op(a[i], b[i]) with the given store mode; y may equal a or b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Zip<TOp, TS>(TOp op, float* a, float* b, float* y, long n) where TOp : unmanaged, IBinaryOp where TS : struct, IStoreMode
    {
        long i = 0;
        if (Vectorized)
        {
            int w = TV.Count;
            if (TS.NonTemporal)
                for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Vector<Vec1>(a[i], b[i]);
            for (; !TOp.Calls && i <= n - 4 * w; i += 4 * w)
            {
                var a0 = TV.Load(a + i);
                var a1 = TV.Load(a + i + w);
                var a2 = TV.Load(a + i + 2 * w);
                var a3 = TV.Load(a + i + 3 * w);
                var b0 = TV.Load(b + i);
                var b1 = TV.Load(b + i + w);
                var b2 = TV.Load(b + i + 2 * w);
                var b3 = TV.Load(b + i + 3 * w);
                TS.Store(op.Vector(a0, b0), y + i);
                TS.Store(op.Vector(a1, b1), y + i + w);
                TS.Store(op.Vector(a2, b2), y + i + 2 * w);
                TS.Store(op.Vector(a3, b3), y + i + 3 * w);
            }
            for (; i <= n - w; i += w)
                TS.Store(op.Vector(TV.Load(a + i), TV.Load(b + i)), y + i);
        }
        for (; i < n; i++) y[i] = op.Vector<Vec1>(a[i], b[i]);
        if (TS.NonTemporal && Vectorized && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = op(a[i], b) with a scalar right operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipVS<TOp>(TOp op, float* a, float b, float* y, long n) where TOp : unmanaged, IBinaryOp =>
        ZipVS<TOp, CachedStore>(op, a, b, y, n);

    /// <summary>ZipVS with the given store mode.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipVS<TOp, TS>(TOp op, float* a, float b, float* y, long n) where TOp : unmanaged, IBinaryOp where TS : struct, IStoreMode
    {
        long i = 0;
        if (Vectorized)
        {
            int w = TV.Count;
            if (TS.NonTemporal)
                for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Vector<Vec1>(a[i], b);
            var vb = TV.Create(b);
            for (; !TOp.Calls && i <= n - 4 * w; i += 4 * w)
            {
                var a0 = TV.Load(a + i);
                var a1 = TV.Load(a + i + w);
                var a2 = TV.Load(a + i + 2 * w);
                var a3 = TV.Load(a + i + 3 * w);
                TS.Store(op.Vector(a0, vb), y + i);
                TS.Store(op.Vector(a1, vb), y + i + w);
                TS.Store(op.Vector(a2, vb), y + i + 2 * w);
                TS.Store(op.Vector(a3, vb), y + i + 3 * w);
            }
            for (; i <= n - w; i += w)
                TS.Store(op.Vector(TV.Load(a + i), vb), y + i);
        }
        for (; i < n; i++) y[i] = op.Vector<Vec1>(a[i], b);
        if (TS.NonTemporal && Vectorized && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = op(a, b[i]) with a scalar left operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipSV<TOp>(TOp op, float a, float* b, float* y, long n) where TOp : unmanaged, IBinaryOp =>
        ZipVS<Flip<TOp>, CachedStore>(new(op), b, a, y, n);

    /// <summary>ZipSV with the given store mode.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipSV<TOp, TS>(TOp op, float a, float* b, float* y, long n) where TOp : unmanaged, IBinaryOp where TS : struct, IStoreMode =>
        ZipVS<Flip<TOp>, TS>(new(op), b, a, y, n);

    /// <summary>Sum of x[0..n) accumulated in double (four independent vector accumulators).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double Sum(float* x, long n)
    {
        long i = 0;
        double s = 0;
        if (Vectorized)
        {
            int w = TV.Count;
            var s0 = TD.Zero;
            var s1 = TD.Zero;
            var s2 = TD.Zero;
            var s3 = TD.Zero;
            for (; i <= n - 2 * w; i += 2 * w)
            {
                TV.Widen(TV.Load(x + i), out var l0, out var h0);
                TV.Widen(TV.Load(x + i + w), out var l1, out var h1);
                s0 += l0;
                s1 += h0;
                s2 += l1;
                s3 += h1;
            }
            if (i <= n - w)
            {
                TV.Widen(TV.Load(x + i), out var l0, out var h0);
                s0 += l0;
                s1 += h0;
                i += w;
            }
            s = TD.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>acc[i] += x[i] with a double accumulator row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AccumulateDouble(double* acc, float* x, long n)
    {
        long i = 0;
        if (Vectorized)
        {
            int w = TV.Count, h = TD.Count;
            for (; i <= n - w; i += w)
            {
                TV.Widen(TV.Load(x + i), out var lo, out var hi);
                TD.Store(TD.Load(acc + i) + lo, acc + i);
                TD.Store(TD.Load(acc + i + h) + hi, acc + i + h);
            }
        }
        for (; i < n; i++) acc[i] += x[i];
    }

    /// <summary>acc[i] += x[i] over doubles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AddDouble(double* acc, double* x, long n)
    {
        long i = 0;
        if (Vectorized)
        {
            int h = TD.Count;
            for (; i <= n - h; i += h) TD.Store(TD.Load(acc + i) + TD.Load(x + i), acc + i);
        }
        for (; i < n; i++) acc[i] += x[i];
    }

    /// <summary>
    /// acc[i] += x[r · stride + i] for each of <paramref name="rows"/> rows in order, i &lt; n: the additions of
    /// <see cref="AccumulateDouble"/> called row after row, with a strip of columns held in registers over all the rows
    /// (each accumulator is loaded and stored once instead of once per row).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AccumulateDoubleRows(double* acc, float* x, nint stride, long rows, long n)
    {
        long i = 0;
        if (Vectorized)
        {
            int w = TV.Count, h = TD.Count;
            for (; i <= n - 4 * w; i += 4 * w)
            {
                TD a0 = TD.Load(acc + i), a1 = TD.Load(acc + i + h), a2 = TD.Load(acc + i + 2 * h), a3 = TD.Load(acc + i + 3 * h);
                TD a4 = TD.Load(acc + i + 4 * h), a5 = TD.Load(acc + i + 5 * h), a6 = TD.Load(acc + i + 6 * h), a7 = TD.Load(acc + i + 7 * h);
                float* p = x + i;
                for (long r = 0; r < rows; r++, p += stride)
                {
                    TV.Widen(TV.Load(p), out var lo, out var hi);
                    TV.Widen(TV.Load(p + w), out var lo2, out var hi2);
                    TV.Widen(TV.Load(p + 2 * w), out var lo3, out var hi3);
                    TV.Widen(TV.Load(p + 3 * w), out var lo4, out var hi4);
                    a0 += lo;
                    a1 += hi;
                    a2 += lo2;
                    a3 += hi2;
                    a4 += lo3;
                    a5 += hi3;
                    a6 += lo4;
                    a7 += hi4;
                }
                TD.Store(a0, acc + i);
                TD.Store(a1, acc + i + h);
                TD.Store(a2, acc + i + 2 * h);
                TD.Store(a3, acc + i + 3 * h);
                TD.Store(a4, acc + i + 4 * h);
                TD.Store(a5, acc + i + 5 * h);
                TD.Store(a6, acc + i + 6 * h);
                TD.Store(a7, acc + i + 7 * h);
            }
            for (; i <= n - w; i += w)
            {
                TD a0 = TD.Load(acc + i), a1 = TD.Load(acc + i + h);
                float* p = x + i;
                for (long r = 0; r < rows; r++, p += stride)
                {
                    TV.Widen(TV.Load(p), out var lo, out var hi);
                    a0 += lo;
                    a1 += hi;
                }
                TD.Store(a0, acc + i);
                TD.Store(a1, acc + i + h);
            }
        }
        for (; i < n; i++)
        {
            double a = acc[i];
            float* p = x + i;
            for (long r = 0; r < rows; r++, p += stride) a += *p;
            acc[i] = a;
        }
    }

    /// <summary>NaN-propagating max: x where x &gt; m or x is NaN, else m (a NaN in m stays).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV MaxNaN(TV m, TV x) => TV.Select(TV.GreaterThan(x, m) | ~TV.Equal(x, x), x, m);

    /// <summary>max(m, x[0..n)), NaN-propagating.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Max(float* x, long n, float m)
    {
        long i = 0;
        int w = TV.Count;
        if (Vectorized && n >= w)
        {
            var m0 = TV.Create(m);
            var m1 = m0;
            for (; i <= n - 2 * w; i += 2 * w)
            {
                m0 = MaxNaN(m0, TV.Load(x + i));
                m1 = MaxNaN(m1, TV.Load(x + i + w));
            }
            if (i <= n - w)
            {
                m0 = MaxNaN(m0, TV.Load(x + i));
                i += w;
            }
            m0 = MaxNaN(m0, m1);
            for (int k = 0; k < w; k++) m = SimdLoops.MaxNaN(m, TV.GetElement(m0, k));
        }
        for (; i < n; i++) m = SimdLoops.MaxNaN(m, x[i]);
        return m;
    }

    /// <summary>acc[i] = max(acc[i], x[i]), NaN-propagating.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AccumulateMax(float* acc, float* x, long n)
    {
        long i = 0;
        if (Vectorized)
        {
            int w = TV.Count;
            for (; i <= n - w; i += w)
                TV.Store(MaxNaN(TV.Load(acc + i), TV.Load(x + i)), acc + i);
        }
        for (; i < n; i++) acc[i] = SimdLoops.MaxNaN(acc[i], x[i]);
    }
}

/// <summary>The drivers that do not depend on the vector width.</summary>
internal static unsafe class SimdLoops
{
    /// <summary>y[i] = value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Fill(float* y, long n, float value)
    {
        if (n > 0) new Span<float>(y, checked((int)n)).Fill(value);
    }

    /// <summary>NaN-propagating max: x when x &gt; m or x is NaN, else m (a NaN in m stays).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float MaxNaN(float m, float x) => x > m || float.IsNaN(x) ? x : m;
}
