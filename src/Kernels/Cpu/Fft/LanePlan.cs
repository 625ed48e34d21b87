using System.Collections.Concurrent;
using System.Numerics;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Fft;

/// <summary>
/// A complex FFT of one length, run on as many transforms at once as a vector has lanes (16 with <see cref="Vec512"/>,
/// 8 with <see cref="Vec256"/>): every complex value is a pair of vectors (real parts of the lanes' transforms, then
/// their imaginary parts), so each butterfly is plain scalar FFT code whose every operation is one vector instruction over
/// independent transforms, and every lane computes exactly what a scalar transform would. Rows of the caller's batch are
/// transposed into lanes on the way in and back on the way out (<see cref="LaneIo"/>).
/// </summary>
/// <remarks>
/// Buffers hold complex element j as vectors [2j] (real) and [2j + 1] (imaginary). Only the forward transform
/// (exponent e^{-2πi jk/n}) is implemented; callers get the inverse by swapping real and imaginary parts on the way in
/// and out (IDFT(z) = swap(DFT(swap(z)))), which costs nothing in the lane transposes.
/// Which algorithm a length takes (<see cref="Get"/>):
/// <list type="bullet">
/// <item>n a power of two (and n = 1): <see cref="Pow2Plan"/>, recursive in-place radix-4 decimation in time (one radix-2
/// step at the top when log2 n is odd), input loaded in bit-reversed order, twiddles precomputed per level.</item>
/// <item>n whose prime factors are all 2, 3, 5 or 7 (e.g. 6, 12, 100, 210): <see cref="MixedRadixPlan"/>, recursive
/// out-of-place mixed-radix decimation in time (radix 4 first, then 2, 3, 5, 7).</item>
/// <item>any other n (a prime factor above 7: 17, 31, 85 = 5·17, 97, 141 = 3·47, 211, 421): <see cref="BluesteinPlan"/>,
/// the chirp-z transform through power-of-two FFTs of length M ≥ 2n - 1.</item>
/// </list>
/// Plans are immutable after construction and cached per length for the life of the process.
/// </remarks>
internal abstract unsafe class LanePlan
{
    private static readonly ConcurrentDictionary<int, LanePlan> Cache = new();

    protected LanePlan(int n) => N = n;

    /// <summary>The transform length.</summary>
    public int N { get; }

    /// <summary>Complex elements each of the two work buffers passed to <see cref="Execute"/> must hold (≥ N).</summary>
    public abstract int BufferLength { get; }

    /// <summary>Where natural input index j must be placed in buffer a before <see cref="Execute"/>.</summary>
    public abstract int[] Position { get; }

    /// <summary>
    /// Transforms the N complex values loaded into <paramref name="a"/> (at <see cref="Position"/>); returns the buffer
    /// (<paramref name="a"/> or <paramref name="b"/>) holding the result in natural order. Both buffers are clobbered.
    /// </summary>
    public abstract TV* Execute<TV>(TV* a, TV* b) where TV : unmanaged, IFloatVector<TV>;

    /// <summary>The cached plan for length <paramref name="n"/> (n ≥ 1).</summary>
    public static LanePlan Get(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"fft: length {n} must be at least 1.");
        return Cache.GetOrAdd(n, Create);
    }

    private static LanePlan Create(int n)
    {
        if (BitOperations.IsPow2(n)) return new Pow2Plan(n);
        int r = n;
        foreach (int p in new[] { 2, 3, 5, 7 })
            while (r % p == 0) r /= p;
        return r == 1 ? new MixedRadixPlan(n) : new BluesteinPlan(n);
    }

    /// <summary>Which algorithm <see cref="Get"/> uses for length n ("pow2", "mixed-radix" or "bluestein").</summary>
    public static string Kind(int n) => Get(n) switch
    {
        Pow2Plan => "pow2",
        MixedRadixPlan => "mixed-radix",
        _ => "bluestein",
    };

    /// <summary>Twiddle e^{-2πi k/n} as (cos, -sin, sin): the real part, the imaginary part, its negation.</summary>
    protected static void Twiddle(long k, long n, float* dst)
    {
        double t = 2 * Math.PI * (k % n) / n;
        double c = Math.Cos(t), s = -Math.Sin(t);
        dst[0] = (float)c;
        dst[1] = (float)s;
        dst[2] = (float)-s;
    }
}

/// <summary>Complex arithmetic on lane vectors: (re, im) pairs of vectors.</summary>
internal static unsafe class Lane
{
    /// <summary>(xr + i xi) · (c + i s) with the twiddle read as (c, s, -s) from <paramref name="w"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static void Mul<TV>(TV xr, TV xi, float* w, out TV yr, out TV yi) where TV : unmanaged, IFloatVector<TV>
    {
        var c = TV.Create(w[0]);
        var s = TV.Create(w[1]);
        var ns = TV.Create(w[2]);
        yr = TV.FusedMultiplyAdd(xi, ns, xr * c);
        yi = TV.FusedMultiplyAdd(xr, s, xi * c);
    }
}
