using System.Runtime.CompilerServices;
using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>A complex number as two floats (moved with <c>.v2</c> accesses).</summary>
internal struct Cplx
{
    public float Re, Im;
}

/// <summary>Scalars of one FFT launch over rows (or columns) of a batch.</summary>
internal struct FftParams
{
    /// <summary>Lines transformed (rows, or batch · columns for the column kernels).</summary>
    public int Lines;
    /// <summary>Complex length of the transform (a power of two).</summary>
    public int N;
    /// <summary>−1 forward, +1 inverse.</summary>
    public float Sign;
    /// <summary>Factor applied to the outputs.</summary>
    public float Scale;
    /// <summary>Column kernels: the height h and the row width m of [batch, h, m] complex data.</summary>
    public int H, M;
    /// <summary>Global passes: the Stockham stride p of this pass (1, 4, 16, ...).</summary>
    public int P;
}

// Stockham autosort FFTs for power-of-two lengths (radix 4, one radix-2 pass when log2 n is odd). Pass with stride p
// (the length of the sub-transforms already done): butterfly i < n/4 reads x[i + r n/4] (r < 4), twiddles by
// e^{sign 2πi r k/(4p)} with k = i mod p, applies a 4-point DFT and writes y[4(i − k) + k + r p]; after the passes
// the result is in natural order (no bit reversal). Twiddles come from the exact host table of the transform length
// (tw[2t] = cos 2πt/n, tw[2t+1] = sin 2πt/n). Rows of up to MaxFftShared complex values are transformed by one group
// in shared memory (two ping-pong buffers, one barrier per pass); longer rows run one launch per pass over global
// memory. Real transforms of even length n use one complex transform of length n/2 (even samples real, odd imaginary)
// and a post-pass (forward) or pre-pass (inverse) that separates the two halves.
internal static partial class IlgpuKernels
{
    /// <summary>Longest complex transform done in shared memory (two buffers of 2048 x 8 bytes).</summary>
    internal const int MaxFftShared = 2048;

    /// <summary>Complex FFT of each row of [rows, n, 2], one group per row, in shared memory.</summary>
    internal static void FftRowsShared(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, FftParams p)
    {
        var s = SharedMemory.Allocate<Cplx>(2 * MaxFftShared);
        var xc = x.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int tid = Group.IdxX, gs = Group.DimX;
        for (int row = Grid.IdxX; row < p.Lines; row += Grid.DimX)
        {
            long at = (long)row * p.N;
            for (int j = tid; j < p.N; j += gs) s[j] = xc[at + j];
            Group.Barrier();
            int src = StockhamShared(s, p.N, tw, p.Sign, tid, gs);
            for (int j = tid; j < p.N; j += gs) yc[at + j] = Scale(s[src + j], p.Scale);
            Group.Barrier();
        }
    }

    /// <summary>
    /// Real FFT of each row of [rows, n] (n = 2 p.N even): the row read as p.N complex values, transformed in shared
    /// memory, then split into the n/2 + 1 bins X_k = E_k + e^{−2πik/n} O_k of [rows, n/2 + 1, 2].
    /// <paramref name="twHalf"/> is the table of length p.N, <paramref name="twFull"/> of length n.
    /// </summary>
    internal static void RfftRowsShared(ArrayView<float> x, ArrayView<float> y, ArrayView<float> twHalf, ArrayView<float> twFull, FftParams p)
    {
        var s = SharedMemory.Allocate<Cplx>(2 * MaxFftShared);
        var xc = x.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int tid = Group.IdxX, gs = Group.DimX, h = p.N;
        for (int row = Grid.IdxX; row < p.Lines; row += Grid.DimX)
        {
            long at = (long)row * h;
            for (int j = tid; j < h; j += gs) s[j] = xc[at + j];
            Group.Barrier();
            int src = StockhamShared(s, h, twHalf, -1f, tid, gs);
            long outAt = (long)row * (h + 1);
            for (int k = tid; k <= h; k += gs)
                yc[outAt + k] = RealBin(s[src + (k & (h - 1))], s[src + ((h - k) & (h - 1))], k, h, twFull);
            Group.Barrier();
        }
    }

    /// <summary>
    /// Inverse real FFT of each row of [rows, n/2 + 1, 2] into [rows, n] (n = 2 p.N): the half-length spectrum
    /// Z_k = E_k + i O_k is formed from the bins, inverse-transformed in shared memory and scaled by 1/p.N (NumPy's
    /// 1/n normalisation of the length-n transform).
    /// </summary>
    internal static void IrfftRowsShared(ArrayView<float> x, ArrayView<float> y, ArrayView<float> twHalf, ArrayView<float> twFull, FftParams p)
    {
        var s = SharedMemory.Allocate<Cplx>(2 * MaxFftShared);
        var xc = x.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int tid = Group.IdxX, gs = Group.DimX, h = p.N;
        for (int row = Grid.IdxX; row < p.Lines; row += Grid.DimX)
        {
            long inAt = (long)row * (h + 1);
            for (int k = tid; k < h; k += gs) s[k] = HalfSpectrum(xc[inAt + k], xc[inAt + h - k], k, h, twFull, 1f / h);
            Group.Barrier();
            int src = StockhamShared(s, h, twHalf, 1f, tid, gs);
            long at = (long)row * h;
            for (int j = tid; j < h; j += gs) yc[at + j] = s[src + j];
            Group.Barrier();
        }
    }

    /// <summary>
    /// Complex FFT along h of [batch, h, m] complex data, one group per (batch, column), in shared memory:
    /// y[b, k, c] = scale · Σ_j x[b, j, c] e^{sign 2πi jk/h}.
    /// </summary>
    internal static void FftColumnsShared(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, FftParams p)
    {
        var s = SharedMemory.Allocate<Cplx>(2 * MaxFftShared);
        var xc = x.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int tid = Group.IdxX, gs = Group.DimX;
        for (int line = Grid.IdxX; line < p.Lines; line += Grid.DimX)
        {
            int b = line / p.M, col = line - b * p.M;
            long at = (long)b * p.H * p.M + col;
            for (int j = tid; j < p.H; j += gs) s[j] = xc[at + (long)j * p.M];
            Group.Barrier();
            int src = StockhamShared(s, p.H, tw, p.Sign, tid, gs);
            for (int j = tid; j < p.H; j += gs) yc[at + (long)j * p.M] = Scale(s[src + j], p.Scale);
            Group.Barrier();
        }
    }

    /// <summary>One radix-4 Stockham pass over global memory, all rows: thread per (row, butterfly); scales by p.Scale.</summary>
    internal static void FftPassRadix4(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, FftParams p)
    {
        var xc = x.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int quarter = p.N >> 2;
        long total = (long)p.Lines * quarter;
        for (long e = GlobalStart; e < total; e += GlobalStride)
        {
            long row = e / quarter;
            int i = (int)(e - row * quarter);
            Radix4(xc, yc, row * p.N, row * p.N, i, p.N, p.P, tw, p.Sign, p.Scale);
        }
    }

    /// <summary>The radix-2 Stockham pass over global memory (the last pass when log2 n is odd).</summary>
    internal static void FftPassRadix2(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, FftParams p)
    {
        var xc = x.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int half = p.N >> 1;
        long total = (long)p.Lines * half;
        for (long e = GlobalStart; e < total; e += GlobalStride)
        {
            long row = e / half;
            int i = (int)(e - row * half);
            Radix2(xc, yc, row * p.N, row * p.N, i, p.N, p.P, tw, p.Sign, p.Scale);
        }
    }

    /// <summary>Forward real FFT post-pass over global memory: Z [rows, h] complex to the bins [rows, h + 1].</summary>
    internal static void RfftPost(ArrayView<float> z, ArrayView<float> y, ArrayView<float> twFull, FftParams p)
    {
        var zc = z.Cast<Cplx>();
        var yc = y.Cast<Cplx>();
        int h = p.N;
        long total = (long)p.Lines * (h + 1);
        for (long e = GlobalStart; e < total; e += GlobalStride)
        {
            long row = e / (h + 1);
            int k = (int)(e - row * (h + 1));
            yc[e] = RealBin(zc[row * h + (k & (h - 1))], zc[row * h + ((h - k) & (h - 1))], k, h, twFull);
        }
    }

    /// <summary>Inverse real FFT pre-pass over global memory: the bins [rows, h + 1] to Z/h [rows, h] complex.</summary>
    internal static void IrfftPre(ArrayView<float> x, ArrayView<float> z, ArrayView<float> twFull, FftParams p)
    {
        var xc = x.Cast<Cplx>();
        var zc = z.Cast<Cplx>();
        int h = p.N;
        long total = (long)p.Lines * h;
        for (long e = GlobalStart; e < total; e += GlobalStride)
        {
            long row = e / h;
            int k = (int)(e - row * h);
            long inAt = row * (h + 1);
            zc[e] = HalfSpectrum(xc[inAt + k], xc[inAt + h - k], k, h, twFull, 1f / h);
        }
    }

    /// <summary>
    /// The Stockham passes of a length-n transform whose input is in s[0, n); returns the offset (0 or
    /// <see cref="MaxFftShared"/>) of the buffer holding the result. Ends with a barrier.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int StockhamShared(ArrayView<Cplx> s, int n, ArrayView<float> tw, float sign, int tid, int gs)
    {
        int src = 0, dst = MaxFftShared;
        int p = 1;
        for (; 4 * p <= n; p *= 4)
        {
            for (int i = tid; i < n >> 2; i += gs) Radix4(s, s, src, dst, i, n, p, tw, sign, 1f);
            Group.Barrier();
            (src, dst) = (dst, src);
        }
        if (p < n)
        {
            for (int i = tid; i < n >> 1; i += gs) Radix2(s, s, src, dst, i, n, p, tw, sign, 1f);
            Group.Barrier();
            src = dst;
        }
        return src;
    }

    /// <summary>Radix-4 butterfly i of the pass with stride p: x at offset xAt, y at yAt, each of length n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix4(ArrayView<Cplx> x, ArrayView<Cplx> y, long xAt, long yAt, int i, int n, int p, ArrayView<float> tw, float sign, float scale)
    {
        int quarter = n >> 2;
        int k = i & (p - 1);
        var u0 = x[xAt + i];
        var u1 = x[xAt + i + quarter];
        var u2 = x[xAt + i + 2 * quarter];
        var u3 = x[xAt + i + 3 * quarter];
        if (p > 1)
        {
            int step = k * (quarter / p); // 2π k/(4p) in units of 2π/n
            u1 = Mul(u1, Twiddle(tw, step, sign));
            u2 = Mul(u2, Twiddle(tw, 2 * step, sign));
            u3 = Mul(u3, Twiddle(tw, 3 * step, sign));
        }
        var a0 = Add(u0, u2);
        var a1 = Sub(u0, u2);
        var a2 = Add(u1, u3);
        var d = Sub(u1, u3);
        var a3 = new Cplx { Re = -sign * d.Im, Im = sign * d.Re }; // (u1 − u3) · sign·i
        long j = yAt + 4 * (i - k) + k;
        y[j] = Scale(Add(a0, a2), scale);
        y[j + p] = Scale(Add(a1, a3), scale);
        y[j + 2 * p] = Scale(Sub(a0, a2), scale);
        y[j + 3 * p] = Scale(Sub(a1, a3), scale);
    }

    /// <summary>Radix-2 butterfly i of the pass with stride p (2p = n: the last pass).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix2(ArrayView<Cplx> x, ArrayView<Cplx> y, long xAt, long yAt, int i, int n, int p, ArrayView<float> tw, float sign, float scale)
    {
        int half = n >> 1;
        int k = i & (p - 1);
        var u0 = x[xAt + i];
        var u1 = x[xAt + i + half];
        if (p > 1) u1 = Mul(u1, Twiddle(tw, k * (half / p), sign));
        long j = yAt + 2 * (i - k) + k;
        y[j] = Scale(Add(u0, u1), scale);
        y[j + p] = Scale(Sub(u0, u1), scale);
    }

    /// <summary>
    /// Bin k ≤ h of the real transform of length 2h from the half-length transform Z: with E = (Z_k + conj Z_{h−k})/2
    /// and O = (Z_k − conj Z_{h−k})/(2i), X_k = E + e^{−2πik/2h} O. Bins 0 and h are real (imaginary parts exactly 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx RealBin(Cplx zk, Cplx zr, int k, int h, ArrayView<float> twFull)
    {
        if (k == 0) return new Cplx { Re = zk.Re + zk.Im, Im = 0f };
        if (k == h) return new Cplx { Re = zk.Re - zk.Im, Im = 0f };
        var e = new Cplx { Re = 0.5f * (zk.Re + zr.Re), Im = 0.5f * (zk.Im - zr.Im) };
        var o = new Cplx { Re = 0.5f * (zk.Im + zr.Im), Im = -0.5f * (zk.Re - zr.Re) };
        return Add(e, Mul(o, Twiddle(twFull, k, -1f)));
    }

    /// <summary>
    /// Z_k = E_k + i O_k (times <paramref name="scale"/>) of the half-length inverse transform from bins X_k and X_{h−k}:
    /// E = (X_k + conj X_{h−k})/2, O = (X_k − conj X_{h−k}) e^{2πik/2h}/2. The imaginary parts of bins 0 and h are
    /// ignored, as NumPy does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx HalfSpectrum(Cplx xk, Cplx xr, int k, int h, ArrayView<float> twFull, float scale)
    {
        if (k == 0)
        {
            xk.Im = 0f;
            xr.Im = 0f;
        }
        var e = new Cplx { Re = 0.5f * (xk.Re + xr.Re), Im = 0.5f * (xk.Im - xr.Im) };
        var o = Mul(new Cplx { Re = 0.5f * (xk.Re - xr.Re), Im = 0.5f * (xk.Im + xr.Im) }, Twiddle(twFull, k, 1f));
        return new Cplx { Re = (e.Re - o.Im) * scale, Im = (e.Im + o.Re) * scale };
    }

    /// <summary>e^{sign · 2πi t/n} from the table of length n (0 ≤ t &lt; n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx Twiddle(ArrayView<float> tw, int t, float sign) => new() { Re = tw[2 * t], Im = sign * tw[2 * t + 1] };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx Mul(Cplx a, Cplx b) => new()
    {
        Re = KernelMath.Fma(a.Re, b.Re, -a.Im * b.Im),
        Im = KernelMath.Fma(a.Re, b.Im, a.Im * b.Re),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx Add(Cplx a, Cplx b) => new() { Re = a.Re + b.Re, Im = a.Im + b.Im };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx Sub(Cplx a, Cplx b) => new() { Re = a.Re - b.Re, Im = a.Im - b.Im };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Cplx Scale(Cplx a, float s) => new() { Re = a.Re * s, Im = a.Im * s };
}
