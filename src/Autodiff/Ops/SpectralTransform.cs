using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Truncated real discrete Fourier transforms for spectral (FNO) layers, computed as products with constant DFT
/// matrices (truncated DFT as GEMM): cost O(N·k) per transformed row instead of O(N log N), with no kernel of its own,
/// differentiable to any order because every step is a <see cref="Ops.MatMul"/> with a constant. Chosen when the
/// number of kept modes k is small relative to N (FNO keeps 12-16 of 85-8192); a hand-written FFT wins when k
/// approaches N / log N, and this class is the one place to route such cases to it.
/// </summary>
/// <remarks>
/// <para>Spectrum layout ("split"): a transformed axis of length 2k holds Re X_0 .. Re X_{k-1}, then Im X_0 .. Im X_{k-1},
/// with X_j = Σ_t x_t e^{-2πi j t / N} (no scaling forward, numpy's "backward" norm).</para>
/// <para>The inverse is the real inverse of a Hermitian spectrum of which modes 0..k-1 are given and the rest are zero:
/// x_t = (1/N) Σ_j w_j (Re X_j cos(2π j t / N) - Im X_j sin(2π j t / N)), w_0 = 1, w_{N/2} = 1 (N even), other w_j = 2.
/// As numpy's <c>irfft</c>, the imaginary parts of the DC and Nyquist bins are ignored.</para>
/// <para>The matrices are built in double, stored as float32 and cached per (kind, sizes, device); they are never
/// freed before their device (a few hundred KB for FNO sizes).</para>
/// </remarks>
public static class SpectralTransform
{
    private enum Kind { Forward, Inverse, Forward2Rows, Inverse2Rows }

    private static readonly ConditionalWeakTable<Device, ConcurrentDictionary<(Kind, int, int), Tensor>> Cache = new();

    /// <summary>Largest number of modes a real transform of length <paramref name="n"/> has: n/2 + 1.</summary>
    public static int MaxModes(int n) => n / 2 + 1;

    /// <summary>
    /// The lowest <paramref name="modes"/> Fourier modes of <paramref name="x"/> along <paramref name="axis"/> (length N):
    /// that axis becomes 2·modes long in the split layout (real parts, then imaginary parts).
    /// </summary>
    /// <exception cref="ArgumentException">The axis is empty or modes is outside 1..N/2+1.</exception>
    public static Tensor RfftModes(Tensor x, int modes, int axis = -1)
    {
        const string op = "rfft_modes";
        x.CheckAlive(op);
        int ax = Shape.Axis(op, axis, x.Rank);
        int n = x.shape[ax];
        CheckModes(op, x, n, modes, ax);
        var f = Matrix(Kind.Forward, n, modes, x.Device); // [2k, N]
        return ApplyAlongAxis(x, ax, f, 2 * modes);
    }

    /// <summary>
    /// The real signal of length <paramref name="n"/> along <paramref name="axis"/> whose lowest modes are the split
    /// spectrum <paramref name="xhat"/> (that axis 2k long) and whose other modes are zero: the inverse of
    /// <see cref="RfftModes"/> after zero padding.
    /// </summary>
    /// <exception cref="ArgumentException">The axis length is odd, or k exceeds n/2 + 1, or n is not positive.</exception>
    public static Tensor IrfftModes(Tensor xhat, int n, int axis = -1)
    {
        const string op = "irfft_modes";
        xhat.CheckAlive(op);
        int ax = Shape.Axis(op, axis, xhat.Rank);
        int len = xhat.shape[ax];
        if (len == 0 || len % 2 != 0)
            throw new ArgumentException($"{op}: axis {ax} of {xhat.Describe()} must hold 2·modes entries (real parts, then imaginary parts); got {len}.");
        if (n <= 0)
            throw new ArgumentException($"{op}: the output length must be positive; got n = {n} for spectrum {xhat.Describe()}.");
        int modes = len / 2;
        if (modes > MaxModes(n))
            throw new ArgumentException($"{op}: spectrum {xhat.Describe()} holds {modes} modes along axis {ax}, more than n/2 + 1 = {MaxModes(n)} for n = {n}.");
        var g = Matrix(Kind.Inverse, n, modes, xhat.Device); // [N, 2k]
        return ApplyAlongAxis(xhat, ax, g, n);
    }

    /// <summary>
    /// 2-D truncated real transform of <paramref name="x"/> [..., H, W, C] over the axes H and W (channels last).
    /// Along W (the real axis) modes 0..modes2-1 are kept; along H the lowest modes of both signs, rows
    /// 0..modes1-1 and H-modes1..H-1 (frequencies 0..modes1-1 and -modes1..-1). Result [..., 2·modes1, 2, modes2, C]:
    /// row mode (non-negative ones first), re/im, column mode, channel.
    /// </summary>
    /// <exception cref="ArgumentException">x has fewer than 3 axes, H &lt; 2·modes1, or modes2 &gt; W/2 + 1.</exception>
    public static Tensor Rfft2Modes(Tensor x, int modes1, int modes2)
    {
        const string op = "rfft2_modes";
        x.CheckAlive(op);
        if (x.Rank < 3)
            throw new ArgumentException($"{op}: expected [..., H, W, C] (channels last), got {x.Describe()}.");
        int h = x.shape[^3], w = x.shape[^2], c = x.shape[^1];
        CheckModes(op, x, w, modes2, x.Rank - 2);
        CheckRowModes(op, x, h, modes1);
        var lead = x.shape[..^3];
        long l = Shape.Size(lead);
        // Along W: [L·H, W, C] -> [L·H, 2·m2, C], viewed as [L, H·2, m2·C] (each row h holds re and im blocks).
        var fw = Matrix(Kind.Forward, w, modes2, x.Device);
        var xw = fw.MatMul(x.Reshape(-1, w, c)).Reshape((int)l, 2 * h, modes2 * c);
        // Along H, complex: one real matrix [2·K1, 2·H] acting on the (row, re/im) pairs.
        var fh = Matrix(Kind.Forward2Rows, h, modes1, x.Device);
        var y = fh.MatMul(xw);
        return y.Reshape([.. lead, 2 * modes1, 2, modes2, c]);
    }

    /// <summary>
    /// The inverse of <see cref="Rfft2Modes"/> after zero padding: the spectrum [..., 2·modes1, 2, modes2, C] back to
    /// a real field [..., <paramref name="h"/>, <paramref name="w"/>, C] (scaled by 1/(H·W), Hermitian weights along W).
    /// </summary>
    /// <exception cref="ArgumentException">The spectrum's shape does not fit h and w.</exception>
    public static Tensor Irfft2Modes(Tensor xhat, int h, int w)
    {
        const string op = "irfft2_modes";
        xhat.CheckAlive(op);
        if (xhat.Rank < 5 || xhat.shape[^3] != 2 || xhat.shape[^4] % 2 != 0 || xhat.shape[^4] == 0)
            throw new ArgumentException($"{op}: expected a spectrum [..., 2·modes1, 2, modes2, C], got {xhat.Describe()}.");
        if (h <= 0 || w <= 0)
            throw new ArgumentException($"{op}: output size must be positive; got h = {h}, w = {w} for spectrum {xhat.Describe()}.");
        int modes1 = xhat.shape[^4] / 2, modes2 = xhat.shape[^2], c = xhat.shape[^1];
        CheckRowModes(op, xhat, h, modes1);
        if (modes2 == 0 || modes2 > MaxModes(w))
            throw new ArgumentException($"{op}: spectrum {xhat.Describe()} holds {modes2} column modes, outside 1..w/2+1 = {MaxModes(w)} for w = {w}.");
        var lead = xhat.shape[..^4];
        long l = Shape.Size(lead);
        var gh = Matrix(Kind.Inverse2Rows, h, modes1, xhat.Device); // [2H, 2K1]
        var yh = gh.MatMul(xhat.Reshape((int)l, 4 * modes1, modes2 * c)); // [L, H·2, m2·C]
        var gw = Matrix(Kind.Inverse, w, modes2, xhat.Device); // [W, 2·m2]
        var y = gw.MatMul(yh.Reshape(-1, 2 * modes2, c)); // [L·H, W, C]
        return y.Reshape([.. lead, h, w, c]);
    }

    private static void CheckModes(string op, Tensor x, int n, int modes, int axis)
    {
        if (n == 0)
            throw new ArgumentException($"{op}: axis {axis} of {x.Describe()} is empty; nothing to transform.");
        if (modes < 1 || modes > MaxModes(n))
            throw new ArgumentException($"{op}: modes must be in 1..n/2+1 = {MaxModes(n)} for axis {axis} of length n = {n} in {x.Describe()}; got {modes}.");
    }

    private static void CheckRowModes(string op, Tensor x, int h, int modes1)
    {
        if (modes1 < 1 || 2 * modes1 > h)
            throw new ArgumentException($"{op}: modes1 = {modes1} keeps 2·modes1 rows (both signs), which must be in 2..H = {h} for {x.Describe()}.");
    }

    /// <summary>Applies matrix <paramref name="m"/> [outLen, N] along axis <paramref name="ax"/> of x.</summary>
    private static Tensor ApplyAlongAxis(Tensor x, int ax, Tensor m, int outLen)
    {
        int n = x.shape[ax];
        long lead = Shape.Size(x.shape[..ax]);
        long trail = Shape.Size(x.shape[(ax + 1)..]);
        var outShape = (int[])x.shape.Clone();
        outShape[ax] = outLen;
        Tensor y = trail == 1
            ? x.Reshape((int)lead, n).MatMul(m, transB: true)          // rows of x times mᵀ
            : m.MatMul(x.Reshape((int)lead, n, (int)trail));           // m shared by every leading index
        return y.Reshape(outShape);
    }

    /// <summary>The cached constant matrix of a kind for sizes (n, modes) on a device.</summary>
    private static Tensor Matrix(Kind kind, int n, int modes, Device device)
    {
        var perDevice = Cache.GetOrCreateValue(device);
        var key = (kind, n, modes);
        if (perDevice.TryGetValue(key, out var t) && !t.IsDisposed) return t;
        var (data, shape) = kind switch
        {
            Kind.Forward => ForwardMatrix(n, modes),
            Kind.Inverse => InverseMatrix(n, modes),
            Kind.Forward2Rows => RowMatrix(n, modes, inverse: false),
            _ => RowMatrix(n, modes, inverse: true),
        };
        // Untracked and persistent: a TensorScope open at first use must not free a cached constant.
        t = Tensor.Empty(shape, device, track: false);
        t.Persistent = true;
        t.Buffer.CopyFromHost(data);
        perDevice[key] = t;
        return t;
    }

    /// <summary>cos(2π j t / n) and sin, with j·t reduced mod n so large products keep full accuracy.</summary>
    private static (double Cos, double Sin) Twiddle(long j, long t, int n)
    {
        long r = (j * t) % n;
        if (r < 0) r += n;
        double a = 2 * Math.PI * r / n;
        return (Math.Cos(a), Math.Sin(a));
    }

    private static (float[], int[]) ForwardMatrix(int n, int k)
    {
        var f = new float[2 * k * n];
        for (int j = 0; j < k; j++)
            for (int t = 0; t < n; t++)
            {
                var (c, s) = Twiddle(j, t, n);
                f[j * n + t] = (float)c;
                f[(k + j) * n + t] = (float)-s;
            }
        return (f, [2 * k, n]);
    }

    private static (float[], int[]) InverseMatrix(int n, int k)
    {
        var g = new float[n * 2 * k];
        for (int j = 0; j < k; j++)
        {
            double wj = j == 0 || (n % 2 == 0 && j == n / 2) ? 1.0 : 2.0;
            for (int t = 0; t < n; t++)
            {
                var (c, s) = Twiddle(j, t, n);
                g[t * 2 * k + j] = (float)(wj * c / n);
                g[t * 2 * k + k + j] = (float)(-wj * s / n);
            }
        }
        return (g, [n, 2 * k]);
    }

    /// <summary>
    /// The complex DFT along H keeping frequencies 0..m-1 and -m..-1, as a real matrix on (row, re/im) pairs:
    /// forward [2·2m, 2H] with e^{-iθ}, inverse [2H, 2·2m] with e^{+iθ}/H.
    /// </summary>
    private static (float[], int[]) RowMatrix(int h, int m, bool inverse)
    {
        int kk = 2 * m;
        var a = new float[2 * kk * 2 * h];
        for (int r = 0; r < kk; r++)
        {
            long f = r < m ? r : r - kk; // frequency of kept row r
            for (int t = 0; t < h; t++)
            {
                var (c, s) = Twiddle(f, t, h);
                if (!inverse)
                {
                    // (C - iS)(A + iB) = (CA + SB) + i(CB - SA); rows (r, re/im), columns (t, re/im).
                    int cols = 2 * h;
                    a[(2 * r) * cols + 2 * t] = (float)c;
                    a[(2 * r) * cols + 2 * t + 1] = (float)s;
                    a[(2 * r + 1) * cols + 2 * t] = (float)-s;
                    a[(2 * r + 1) * cols + 2 * t + 1] = (float)c;
                }
                else
                {
                    // (C + iS)(P + iQ) / H = (CP - SQ + i(SP + CQ)) / H; rows (t, re/im), columns (r, re/im).
                    int cols = 2 * kk;
                    a[(2 * t) * cols + 2 * r] = (float)(c / h);
                    a[(2 * t) * cols + 2 * r + 1] = (float)(-s / h);
                    a[(2 * t + 1) * cols + 2 * r] = (float)(s / h);
                    a[(2 * t + 1) * cols + 2 * r + 1] = (float)(c / h);
                }
            }
        }
        return inverse ? (a, [2 * h, 2 * kk]) : (a, [2 * kk, 2 * h]);
    }
}
