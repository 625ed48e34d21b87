using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels.Cpu;

/// <summary>An elementwise unary kernel at three widths. Struct implementations are specialised and inlined by the JIT.</summary>
internal interface IUnaryKernel
{
    /// <summary>False when only the scalar form exists (the drivers then skip the vector loops).</summary>
    static abstract bool Vectorized { get; }
    /// <summary>One lane.</summary>
    float Apply(float x);
    /// <summary>Eight lanes.</summary>
    Vector256<float> Apply(Vector256<float> x);
    /// <summary>Sixteen lanes.</summary>
    Vector512<float> Apply(Vector512<float> x);
}

/// <summary>An elementwise binary kernel at three widths.</summary>
internal interface IBinaryKernel
{
    /// <summary>False when only the scalar form exists.</summary>
    static abstract bool Vectorized { get; }
    /// <summary>One lane.</summary>
    float Apply(float a, float b);
    /// <summary>Eight lanes.</summary>
    Vector256<float> Apply(Vector256<float> a, Vector256<float> b);
    /// <summary>Sixteen lanes.</summary>
    Vector512<float> Apply(Vector512<float> a, Vector512<float> b);
}

/// <summary>How the drivers store full vectors: plain stores, or aligned non-temporal stores for outputs far larger than the caches.</summary>
internal unsafe interface IStoreMode
{
    /// <summary>True for non-temporal stores (the drivers peel to 64-byte alignment and fence at the end).</summary>
    static abstract bool NonTemporal { get; }
    /// <summary>Stores sixteen lanes.</summary>
    static abstract void Store(Vector512<float> v, float* p);
    /// <summary>Stores eight lanes.</summary>
    static abstract void Store(Vector256<float> v, float* p);
}

/// <summary>Ordinary (cached) stores.</summary>
internal unsafe struct CachedStore : IStoreMode
{
    public static bool NonTemporal => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> v, float* p) => Vector512.Store(v, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> v, float* p) => Vector256.Store(v, p);
}

/// <summary>Aligned non-temporal stores: no read-for-ownership of the destination, no cache pollution.</summary>
internal unsafe struct StreamingStore : IStoreMode
{
    public static bool NonTemporal => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> v, float* p) => Vector512.StoreAlignedNonTemporal(v, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> v, float* p) => Vector256.StoreAlignedNonTemporal(v, p);
}

/// <summary>
/// Loop drivers: Vector512 when hardware-accelerated, else Vector256, else scalar, always with a scalar tail.
/// Pointers address pinned arrays; the caller guarantees the ranges.
/// </summary>
internal static unsafe class SimdLoops
{
    /// <summary>y[i] = op(x[i]); y may equal x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Map<T>(T op, float* x, float* y, long n) where T : struct, IUnaryKernel =>
        Map<T, CachedStore>(op, x, y, n);

    /// <summary>y[i] = op(x[i]) with the given store mode; y may equal x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Map<T, TS>(T op, float* x, float* y, long n) where T : struct, IUnaryKernel where TS : struct, IStoreMode
    {
        long i = 0;
        if (TS.NonTemporal && T.Vectorized && (Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated))
            for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Apply(x[i]);
        if (T.Vectorized && Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 64; i += 64)
            {
                var v0 = Vector512.Load(x + i);
                var v1 = Vector512.Load(x + i + 16);
                var v2 = Vector512.Load(x + i + 32);
                var v3 = Vector512.Load(x + i + 48);
                TS.Store(op.Apply(v0), y + i);
                TS.Store(op.Apply(v1), y + i + 16);
                TS.Store(op.Apply(v2), y + i + 32);
                TS.Store(op.Apply(v3), y + i + 48);
            }
            for (; i <= n - 16; i += 16)
                TS.Store(op.Apply(Vector512.Load(x + i)), y + i);
        }
        else if (T.Vectorized && Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 32; i += 32)
            {
                var v0 = Vector256.Load(x + i);
                var v1 = Vector256.Load(x + i + 8);
                var v2 = Vector256.Load(x + i + 16);
                var v3 = Vector256.Load(x + i + 24);
                TS.Store(op.Apply(v0), y + i);
                TS.Store(op.Apply(v1), y + i + 8);
                TS.Store(op.Apply(v2), y + i + 16);
                TS.Store(op.Apply(v3), y + i + 24);
            }
            for (; i <= n - 8; i += 8)
                TS.Store(op.Apply(Vector256.Load(x + i)), y + i);
        }
        for (; i < n; i++) y[i] = op.Apply(x[i]);
        if (TS.NonTemporal && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = op(a[i], b[i]); y may equal a or b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Zip<T>(T op, float* a, float* b, float* y, long n) where T : struct, IBinaryKernel =>
        Zip<T, CachedStore>(op, a, b, y, n);

    /// <summary>y[i] = op(a[i], b[i]) with the given store mode; y may equal a or b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Zip<T, TS>(T op, float* a, float* b, float* y, long n) where T : struct, IBinaryKernel where TS : struct, IStoreMode
    {
        long i = 0;
        if (TS.NonTemporal && T.Vectorized && (Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated))
            for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Apply(a[i], b[i]);
        if (T.Vectorized && Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 64; i += 64)
            {
                var a0 = Vector512.Load(a + i);
                var a1 = Vector512.Load(a + i + 16);
                var a2 = Vector512.Load(a + i + 32);
                var a3 = Vector512.Load(a + i + 48);
                var b0 = Vector512.Load(b + i);
                var b1 = Vector512.Load(b + i + 16);
                var b2 = Vector512.Load(b + i + 32);
                var b3 = Vector512.Load(b + i + 48);
                TS.Store(op.Apply(a0, b0), y + i);
                TS.Store(op.Apply(a1, b1), y + i + 16);
                TS.Store(op.Apply(a2, b2), y + i + 32);
                TS.Store(op.Apply(a3, b3), y + i + 48);
            }
            for (; i <= n - 16; i += 16)
                TS.Store(op.Apply(Vector512.Load(a + i), Vector512.Load(b + i)), y + i);
        }
        else if (T.Vectorized && Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 32; i += 32)
            {
                var a0 = Vector256.Load(a + i);
                var a1 = Vector256.Load(a + i + 8);
                var a2 = Vector256.Load(a + i + 16);
                var a3 = Vector256.Load(a + i + 24);
                var b0 = Vector256.Load(b + i);
                var b1 = Vector256.Load(b + i + 8);
                var b2 = Vector256.Load(b + i + 16);
                var b3 = Vector256.Load(b + i + 24);
                TS.Store(op.Apply(a0, b0), y + i);
                TS.Store(op.Apply(a1, b1), y + i + 8);
                TS.Store(op.Apply(a2, b2), y + i + 16);
                TS.Store(op.Apply(a3, b3), y + i + 24);
            }
            for (; i <= n - 8; i += 8)
                TS.Store(op.Apply(Vector256.Load(a + i), Vector256.Load(b + i)), y + i);
        }
        for (; i < n; i++) y[i] = op.Apply(a[i], b[i]);
        if (TS.NonTemporal && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = op(a[i], b) with a scalar right operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipVS<T>(T op, float* a, float b, float* y, long n) where T : struct, IBinaryKernel =>
        ZipVS<T, CachedStore>(op, a, b, y, n);

    /// <summary>ZipVS with the given store mode.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipVS<T, TS>(T op, float* a, float b, float* y, long n) where T : struct, IBinaryKernel where TS : struct, IStoreMode
    {
        long i = 0;
        if (TS.NonTemporal && T.Vectorized && (Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated))
            for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Apply(a[i], b);
        if (T.Vectorized && Vector512.IsHardwareAccelerated)
        {
            var vb = Vector512.Create(b);
            for (; i <= n - 64; i += 64)
            {
                var a0 = Vector512.Load(a + i);
                var a1 = Vector512.Load(a + i + 16);
                var a2 = Vector512.Load(a + i + 32);
                var a3 = Vector512.Load(a + i + 48);
                TS.Store(op.Apply(a0, vb), y + i);
                TS.Store(op.Apply(a1, vb), y + i + 16);
                TS.Store(op.Apply(a2, vb), y + i + 32);
                TS.Store(op.Apply(a3, vb), y + i + 48);
            }
            for (; i <= n - 16; i += 16)
                TS.Store(op.Apply(Vector512.Load(a + i), vb), y + i);
        }
        else if (T.Vectorized && Vector256.IsHardwareAccelerated)
        {
            var vb = Vector256.Create(b);
            for (; i <= n - 32; i += 32)
            {
                var a0 = Vector256.Load(a + i);
                var a1 = Vector256.Load(a + i + 8);
                var a2 = Vector256.Load(a + i + 16);
                var a3 = Vector256.Load(a + i + 24);
                TS.Store(op.Apply(a0, vb), y + i);
                TS.Store(op.Apply(a1, vb), y + i + 8);
                TS.Store(op.Apply(a2, vb), y + i + 16);
                TS.Store(op.Apply(a3, vb), y + i + 24);
            }
            for (; i <= n - 8; i += 8)
                TS.Store(op.Apply(Vector256.Load(a + i), vb), y + i);
        }
        for (; i < n; i++) y[i] = op.Apply(a[i], b);
        if (TS.NonTemporal && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = op(a, b[i]) with a scalar left operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipSV<T>(T op, float a, float* b, float* y, long n) where T : struct, IBinaryKernel =>
        ZipSV<T, CachedStore>(op, a, b, y, n);

    /// <summary>ZipSV with the given store mode.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ZipSV<T, TS>(T op, float a, float* b, float* y, long n) where T : struct, IBinaryKernel where TS : struct, IStoreMode
    {
        long i = 0;
        if (TS.NonTemporal && T.Vectorized && (Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated))
            for (; i < n && ((nuint)(y + i) & 63) != 0; i++) y[i] = op.Apply(a, b[i]);
        if (T.Vectorized && Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i <= n - 64; i += 64)
            {
                var b0 = Vector512.Load(b + i);
                var b1 = Vector512.Load(b + i + 16);
                var b2 = Vector512.Load(b + i + 32);
                var b3 = Vector512.Load(b + i + 48);
                TS.Store(op.Apply(va, b0), y + i);
                TS.Store(op.Apply(va, b1), y + i + 16);
                TS.Store(op.Apply(va, b2), y + i + 32);
                TS.Store(op.Apply(va, b3), y + i + 48);
            }
            for (; i <= n - 16; i += 16)
                TS.Store(op.Apply(va, Vector512.Load(b + i)), y + i);
        }
        else if (T.Vectorized && Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; i <= n - 32; i += 32)
            {
                var b0 = Vector256.Load(b + i);
                var b1 = Vector256.Load(b + i + 8);
                var b2 = Vector256.Load(b + i + 16);
                var b3 = Vector256.Load(b + i + 24);
                TS.Store(op.Apply(va, b0), y + i);
                TS.Store(op.Apply(va, b1), y + i + 8);
                TS.Store(op.Apply(va, b2), y + i + 16);
                TS.Store(op.Apply(va, b3), y + i + 24);
            }
            for (; i <= n - 8; i += 8)
                TS.Store(op.Apply(va, Vector256.Load(b + i)), y + i);
        }
        for (; i < n; i++) y[i] = op.Apply(a, b[i]);
        if (TS.NonTemporal && Sse.IsSupported) Sse.StoreFence();
    }

    /// <summary>y[i] = value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Fill(float* y, long n, float value)
    {
        if (n > 0) new Span<float>(y, checked((int)n)).Fill(value);
    }

    /// <summary>Sum of x[0..n) accumulated in double (four independent SIMD accumulators).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double Sum(float* x, long n)
    {
        long i = 0;
        double s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s0 = Vector512<double>.Zero;
            var s1 = Vector512<double>.Zero;
            var s2 = Vector512<double>.Zero;
            var s3 = Vector512<double>.Zero;
            for (; i <= n - 32; i += 32)
            {
                var (l0, h0) = Vector512.Widen(Vector512.Load(x + i));
                var (l1, h1) = Vector512.Widen(Vector512.Load(x + i + 16));
                s0 += l0;
                s1 += h0;
                s2 += l1;
                s3 += h1;
            }
            if (i <= n - 16)
            {
                var (l0, h0) = Vector512.Widen(Vector512.Load(x + i));
                s0 += l0;
                s1 += h0;
                i += 16;
            }
            s = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s0 = Vector256<double>.Zero;
            var s1 = Vector256<double>.Zero;
            var s2 = Vector256<double>.Zero;
            var s3 = Vector256<double>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var (l0, h0) = Vector256.Widen(Vector256.Load(x + i));
                var (l1, h1) = Vector256.Widen(Vector256.Load(x + i + 8));
                s0 += l0;
                s1 += h0;
                s2 += l1;
                s3 += h1;
            }
            if (i <= n - 8)
            {
                var (l0, h0) = Vector256.Widen(Vector256.Load(x + i));
                s0 += l0;
                s1 += h0;
                i += 8;
            }
            s = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>acc[i] += x[i] with a double accumulator row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AccumulateDouble(double* acc, float* x, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var (l, h) = Vector512.Widen(Vector512.Load(x + i));
                Vector512.Store(Vector512.Load(acc + i) + l, acc + i);
                Vector512.Store(Vector512.Load(acc + i + 8) + h, acc + i + 8);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                var (l, h) = Vector256.Widen(Vector256.Load(x + i));
                Vector256.Store(Vector256.Load(acc + i) + l, acc + i);
                Vector256.Store(Vector256.Load(acc + i + 4) + h, acc + i + 4);
            }
        }
        for (; i < n; i++) acc[i] += x[i];
    }

    /// <summary>NaN-propagating max: x when x &gt; m or x is NaN, else m (a NaN in m stays).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float MaxNaN(float m, float x) => x > m || float.IsNaN(x) ? x : m;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> MaxNaN(Vector512<float> m, Vector512<float> x) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x, m) | ~Vector512.Equals(x, x), x, m);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MaxNaN(Vector256<float> m, Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, m) | ~Vector256.Equals(x, x), x, m);

    /// <summary>max(m, x[0..n)), NaN-propagating.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Max(float* x, long n, float m)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m0 = Vector512.Create(m);
            var m1 = m0;
            for (; i <= n - 32; i += 32)
            {
                m0 = MaxNaN(m0, Vector512.Load(x + i));
                m1 = MaxNaN(m1, Vector512.Load(x + i + 16));
            }
            if (i <= n - 16)
            {
                m0 = MaxNaN(m0, Vector512.Load(x + i));
                i += 16;
            }
            m0 = MaxNaN(m0, m1);
            for (int k = 0; k < 16; k++) m = MaxNaN(m, m0.GetElement(k));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m0 = Vector256.Create(m);
            var m1 = m0;
            for (; i <= n - 16; i += 16)
            {
                m0 = MaxNaN(m0, Vector256.Load(x + i));
                m1 = MaxNaN(m1, Vector256.Load(x + i + 8));
            }
            if (i <= n - 8)
            {
                m0 = MaxNaN(m0, Vector256.Load(x + i));
                i += 8;
            }
            m0 = MaxNaN(m0, m1);
            for (int k = 0; k < 8; k++) m = MaxNaN(m, m0.GetElement(k));
        }
        for (; i < n; i++) m = MaxNaN(m, x[i]);
        return m;
    }

    /// <summary>acc[i] = max(acc[i], x[i]), NaN-propagating.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AccumulateMax(float* acc, float* x, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
                Vector512.Store(MaxNaN(Vector512.Load(acc + i), Vector512.Load(x + i)), acc + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
                Vector256.Store(MaxNaN(Vector256.Load(acc + i), Vector256.Load(x + i)), acc + i);
        }
        for (; i < n; i++) acc[i] = MaxNaN(acc[i], x[i]);
    }
}

// ------------------------------------------------------------------------- unary kernels

internal struct NegK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => -x;
    public Vector256<float> Apply(Vector256<float> x) => -x;
    public Vector512<float> Apply(Vector512<float> x) => -x;
}

internal struct ExpK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.Exp(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.Exp(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.Exp(x);
}

internal struct LogK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.Log(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.Log(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.Log(x);
}

internal struct SqrtK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => MathF.Sqrt(x);
    public Vector256<float> Apply(Vector256<float> x) => Vector256.Sqrt(x);
    public Vector512<float> Apply(Vector512<float> x) => Vector512.Sqrt(x);
}

internal struct ReluK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => x > 0f ? x : 0f;
    public Vector256<float> Apply(Vector256<float> x) => x & Vector256.GreaterThan(x, Vector256<float>.Zero);
    public Vector512<float> Apply(Vector512<float> x) => x & Vector512.GreaterThan(x, Vector512<float>.Zero);
}

internal struct GeluTanhK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.GeluTanh(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.GeluTanh(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.GeluTanh(x);
}

internal struct GeluErfK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.GeluErf(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.GeluErf(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.GeluErf(x);
}

internal struct TanhK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.Tanh(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.Tanh(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.Tanh(x);
}

internal struct SigmoidK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.Sigmoid(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.Sigmoid(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.Sigmoid(x);
}

internal struct ErfK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => SimdMath.Erf(x);
    public Vector256<float> Apply(Vector256<float> x) => SimdMath.Erf(x);
    public Vector512<float> Apply(Vector512<float> x) => SimdMath.Erf(x);
}

internal struct AbsK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => MathF.Abs(x);
    public Vector256<float> Apply(Vector256<float> x) => Vector256.Abs(x);
    public Vector512<float> Apply(Vector512<float> x) => Vector512.Abs(x);
}

internal struct SignK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => x > 0f ? 1f : x < 0f ? -1f : 0f;
    public Vector256<float> Apply(Vector256<float> x) =>
        (Vector256<float>.One & Vector256.GreaterThan(x, Vector256<float>.Zero)) -
        (Vector256<float>.One & Vector256.LessThan(x, Vector256<float>.Zero));
    public Vector512<float> Apply(Vector512<float> x) =>
        (Vector512<float>.One & Vector512.GreaterThan(x, Vector512<float>.Zero)) -
        (Vector512<float>.One & Vector512.LessThan(x, Vector512<float>.Zero));
}

internal struct StepK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => x > 0f ? 1f : 0f;
    public Vector256<float> Apply(Vector256<float> x) => Vector256<float>.One & Vector256.GreaterThan(x, Vector256<float>.Zero);
    public Vector512<float> Apply(Vector512<float> x) => Vector512<float>.One & Vector512.GreaterThan(x, Vector512<float>.Zero);
}

internal struct SquareK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => x * x;
    public Vector256<float> Apply(Vector256<float> x) => x * x;
    public Vector512<float> Apply(Vector512<float> x) => x * x;
}

internal struct ReciprocalK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => 1f / x;
    public Vector256<float> Apply(Vector256<float> x) => Vector256<float>.One / x;
    public Vector512<float> Apply(Vector512<float> x) => Vector512<float>.One / x;
}

/// <summary>scale * x + shift, fused (one rounding) at every width.</summary>
internal readonly struct AffineK(float scale, float shift) : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => MathF.FusedMultiplyAdd(scale, x, shift);
    public Vector256<float> Apply(Vector256<float> x) => Vector256.FusedMultiplyAdd(Vector256.Create(scale), x, Vector256.Create(shift));
    public Vector512<float> Apply(Vector512<float> x) => Vector512.FusedMultiplyAdd(Vector512.Create(scale), x, Vector512.Create(shift));
}

/// <summary>The element itself (copy through the strided machinery).</summary>
internal struct IdentityK : IUnaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float x) => x;
    public Vector256<float> Apply(Vector256<float> x) => x;
    public Vector512<float> Apply(Vector512<float> x) => x;
}

// ------------------------------------------------------------------------- binary kernels

internal struct AddK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a + b;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a + b;
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a + b;
}

internal struct SubK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a - b;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a - b;
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a - b;
}

internal struct MulK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a * b;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a * b;
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a * b;
}

internal struct DivK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a / b;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a / b;
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a / b;
}

/// <summary>a &gt;= b ? a : b, exactly as <see cref="ScalarMath"/> (a NaN in b wins, a NaN in a loses).</summary>
internal struct MaximumK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a >= b ? a : b;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, b), a, b);
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(a, b), a, b);
}

/// <summary>a &lt;= b ? a : b, exactly as <see cref="ScalarMath"/>.</summary>
internal struct MinimumK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a <= b ? a : b;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.LessThanOrEqual(a, b), a, b);
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(Vector512.LessThanOrEqual(a, b), a, b);
}

/// <summary>MathF.Pow: scalar only (its special cases are not worth a SIMD reimplementation).</summary>
internal struct PowK : IBinaryKernel
{
    public static bool Vectorized => false;
    public float Apply(float a, float b) => MathF.Pow(a, b);
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => throw new NotSupportedException();
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => throw new NotSupportedException();
}

internal struct EqualK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a == b ? 1f : 0f;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256<float>.One & Vector256.Equals(a, b);
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => Vector512<float>.One & Vector512.Equals(a, b);
}

internal struct GreaterK : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => a > b ? 1f : 0f;
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256<float>.One & Vector256.GreaterThan(a, b);
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => Vector512<float>.One & Vector512.GreaterThan(a, b);
}

/// <summary>alpha * a + b, fused: Axpy as a binary kernel with y as b.</summary>
internal readonly struct AxpyK(float alpha) : IBinaryKernel
{
    public static bool Vectorized => true;
    public float Apply(float a, float b) => MathF.FusedMultiplyAdd(alpha, a, b);
    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256.FusedMultiplyAdd(Vector256.Create(alpha), a, b);
    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => Vector512.FusedMultiplyAdd(Vector512.Create(alpha), a, b);
}
