using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Truncated real discrete Fourier transforms for spectral (FNO) layers, by one of two routes (<see cref="SpectralRoute"/>):
/// products with constant truncated-DFT matrices (GEMM, O(N·k) per transformed row, no kernel of its own), or the FFT
/// ops (<see cref="Ops.Rfft"/>, <see cref="Ops.Rfft2"/> and their inverses, O(N log N)) followed by a gather of the kept
/// bins. Both are differentiable to any order and give the same values to float rounding.
/// </summary>
/// <remarks>
/// <para>Routes: the caller names one (spectral layers ask <c>Engine.Nn.SpectralRoutePolicy</c>, which holds the
/// measured rule per device kind). <see cref="SpectralRoute.Auto"/> is not a route: passing it throws.</para>
/// <para>Spectrum layout ("split"): a transformed axis of length 2k holds Re X_0 .. Re X_{k-1}, then Im X_0 .. Im X_{k-1},
/// with X_j = Σ_t x_t e^{-2πi j t / N} (no scaling forward, numpy's "backward" norm).</para>
/// <para>The inverse is the real inverse of a Hermitian spectrum of which modes 0..k-1 are given and the rest are zero:
/// x_t = (1/N) Σ_j w_j (Re X_j cos(2π j t / N) - Im X_j sin(2π j t / N)), w_0 = 1, w_{N/2} = 1 (N even), other w_j = 2.
/// As numpy's <c>irfft</c>, the imaginary parts of the DC and Nyquist bins are ignored.</para>
/// <para>The matrices are built in double, stored as float32 and cached per (kind, sizes, device); they are never
/// freed before their device (a few hundred KB for FNO sizes). The FFT route's bin indices are cached per size.</para>
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
    public static Tensor RfftModes(Tensor x, int modes, int axis = -1, SpectralRoute route = SpectralRoute.Gemm)
    {
        const string op = "rfft_modes";
        x.CheckAlive(op);
        int ax = Shape.Axis(op, axis, x.Rank);
        int n = x.shape[ax];
        CheckModes(op, x, n, modes, ax);
        if (Route(op, route) == SpectralRoute.Fft)
            return RfftModesFft(x, modes, ax);
        var f = Matrix(Kind.Forward, n, modes, x.Device); // [2k, N]
        return ApplyAlongAxis(x, ax, f, 2 * modes);
    }

    /// <summary>
    /// The real signal of length <paramref name="n"/> along <paramref name="axis"/> whose lowest modes are the split
    /// spectrum <paramref name="xhat"/> (that axis 2k long) and whose other modes are zero: the inverse of
    /// <see cref="RfftModes"/> after zero padding.
    /// </summary>
    /// <exception cref="ArgumentException">The axis length is odd, or k exceeds n/2 + 1, or n is not positive.</exception>
    public static Tensor IrfftModes(Tensor xhat, int n, int axis = -1, SpectralRoute route = SpectralRoute.Gemm)
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
        if (Route(op, route) == SpectralRoute.Fft)
            return IrfftModesFft(xhat, n, modes, ax);
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
    public static Tensor Rfft2Modes(Tensor x, int modes1, int modes2, SpectralRoute route = SpectralRoute.Gemm)
    {
        const string op = "rfft2_modes";
        x.CheckAlive(op);
        if (x.Rank < 3)
            throw new ArgumentException($"{op}: expected [..., H, W, C] (channels last), got {x.Describe()}.");
        int h = x.shape[^3], w = x.shape[^2], c = x.shape[^1];
        CheckModes(op, x, w, modes2, x.Rank - 2);
        CheckRowModes(op, x, h, modes1);
        if (Route(op, route) == SpectralRoute.Fft)
            return Rfft2ModesFft(x, modes1, modes2);
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
    public static Tensor Irfft2Modes(Tensor xhat, int h, int w, SpectralRoute route = SpectralRoute.Gemm)
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
        if (Route(op, route) == SpectralRoute.Fft)
            return Irfft2ModesFft(xhat, h, w);
        var lead = xhat.shape[..^4];
        long l = Shape.Size(lead);
        var gh = Matrix(Kind.Inverse2Rows, h, modes1, xhat.Device); // [2H, 2K1]
        var yh = gh.MatMul(xhat.Reshape((int)l, 4 * modes1, modes2 * c)); // [L, H·2, m2·C]
        var gw = Matrix(Kind.Inverse, w, modes2, xhat.Device); // [W, 2·m2]
        var y = gw.MatMul(yh.Reshape(-1, 2 * modes2, c)); // [L·H, W, C]
        return y.Reshape([.. lead, h, w, c]);
    }

    /// <summary>The route to run; <see cref="SpectralRoute.Auto"/> is a layer's request, not a route.</summary>
    private static SpectralRoute Route(string op, SpectralRoute route) => route switch
    {
        SpectralRoute.Gemm or SpectralRoute.Fft => route,
        _ => throw new ArgumentException(
            $"{op}: route {route} is not a route; pass Gemm or Fft (spectral layers choose with SpectralRoutePolicy).", nameof(route)),
    };

    // ---- FFT route: the FFT ops on the last axis, then a gather of the kept bins into the split layout ----

    private static readonly ConcurrentDictionary<(int, int, bool), IndexTensor> Indices = new();

    /// <summary>Bins 0..k-1 (rows = false), or 0..k-1 then n-k..n-1 (rows = true: both signs along a complex axis).</summary>
    private static IndexTensor KeptBins(int n, int k, bool rows) =>
        Indices.GetOrAdd((n, k, rows), key =>
        {
            var (len, m, twoSided) = key;
            var v = twoSided
                ? Enumerable.Range(0, m).Concat(Enumerable.Range(len - m, m)).ToArray()
                : Enumerable.Range(0, m).ToArray();
            return new IndexTensor(v);
        });

    /// <summary>Axes of a rank-r tensor with <paramref name="ax"/> moved last.</summary>
    private static int[] AxisLast(int rank, int ax) =>
        [.. Enumerable.Range(0, rank).Where(a => a != ax), ax];

    private static Tensor RfftModesFft(Tensor x, int modes, int ax)
    {
        int rank = x.Rank, n = x.shape[ax];
        var moved = ax == rank - 1 ? x : x.Permute(AxisLast(rank, ax));   // [pre, post, N]
        var spec = moved.Rfft();                                            // [pre, post, N/2+1, 2]
        if (modes < MaxModes(n)) spec = spec.IndexSelect(rank - 1, KeptBins(n / 2 + 1, modes, rows: false));
        // [pre, post, k, 2] -> [pre, 2, k, post]: re/im becomes the outer half of the split axis.
        var perm = new List<int>();
        for (int a = 0; a < ax; a++) perm.Add(a);
        perm.Add(rank); perm.Add(rank - 1);
        for (int a = ax; a < rank - 1; a++) perm.Add(a);
        var outShape = (int[])x.shape.Clone();
        outShape[ax] = 2 * modes;
        return spec.Permute([.. perm]).Reshape(outShape);
    }

    private static Tensor IrfftModesFft(Tensor xhat, int n, int modes, int ax)
    {
        int rank = xhat.Rank;
        // [pre, 2k, post] -> [pre, 2, k, post] -> [pre, post, k, 2]
        var split = xhat.Reshape([.. xhat.shape[..ax], 2, modes, .. xhat.shape[(ax + 1)..]]);
        var perm = new List<int>();
        for (int a = 0; a < ax; a++) perm.Add(a);
        for (int a = ax + 2; a < rank + 1; a++) perm.Add(a);
        perm.Add(ax + 1); perm.Add(ax);
        var spec = split.Permute([.. perm]);
        int bins = n / 2 + 1;
        if (modes < bins) spec = spec.IndexAdd(rank - 1, KeptBins(bins, modes, rows: false), bins); // zero padding
        var y = spec.Irfft(n);                                              // [pre, post, N]
        if (ax == rank - 1) return y;
        var back = new int[rank];                                           // inverse of AxisLast
        var fwd = AxisLast(rank, ax);
        for (int i = 0; i < rank; i++) back[fwd[i]] = i;
        return y.Permute(back);
    }

    private static Tensor Rfft2ModesFft(Tensor x, int modes1, int modes2)
    {
        int r = x.Rank, h = x.shape[^3], w = x.shape[^2];
        // [L, H, W, C] -> [L, C, H, W] -> rfft2 [L, C, H, W/2+1, 2] -> kept rows and columns [L, C, 2m1, m2, 2].
        var perm = Enumerable.Range(0, r - 3).Concat([r - 1, r - 3, r - 2]).ToArray();
        var spec = x.Permute(perm).Rfft2();
        if (2 * modes1 < h) spec = spec.IndexSelect(r - 2, KeptBins(h, modes1, rows: true));
        if (modes2 < MaxModes(w)) spec = spec.IndexSelect(r - 1, KeptBins(w / 2 + 1, modes2, rows: false));
        // -> [L, 2m1, 2, m2, C]
        var outPerm = Enumerable.Range(0, r - 3).Concat([r - 2, r, r - 1, r - 3]).ToArray();
        return spec.Permute(outPerm);
    }

    private static Tensor Irfft2ModesFft(Tensor xhat, int h, int w)
    {
        int r = xhat.Rank, modes1 = xhat.shape[^4] / 2, modes2 = xhat.shape[^2]; // r = lead + 4
        // [L, 2m1, 2, m2, C] -> [L, C, 2m1, m2, 2]
        var perm = Enumerable.Range(0, r - 4).Concat([r - 1, r - 4, r - 2, r - 3]).ToArray();
        var spec = xhat.Permute(perm);
        int bins = w / 2 + 1;
        if (modes2 < bins) spec = spec.IndexAdd(r - 2, KeptBins(bins, modes2, rows: false), bins);
        if (2 * modes1 < h) spec = spec.IndexAdd(r - 3, KeptBins(h, modes1, rows: true), h);
        var y = spec.Irfft2(h, w);                                          // [L, C, H, W]
        var back = Enumerable.Range(0, r - 4).Concat([r - 3, r - 2, r - 4]).ToArray();
        return y.Permute(back);                                             // [L, H, W, C]
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

    /// <summary>
    /// The GEMM route's constant matrices for length <paramref name="n"/> and <paramref name="modes"/> modes, row-major on
    /// the host: forward [2k, N] (split layout rows) and inverse [N, 2k]; the ONNX exporter writes them as initializers.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">n or modes is not positive, or modes exceeds n/2 + 1.</exception>
    public static (float[] Forward, float[] Inverse) DftMatrices(int n, int modes)
    {
        if (n <= 0 || modes <= 0 || modes > MaxModes(n))
            throw new ArgumentOutOfRangeException(nameof(modes), $"SpectralTransform.DftMatrices: need n > 0 and 0 < modes <= n/2 + 1, got n = {n}, modes = {modes}.");
        return (ForwardMatrix(n, modes).Item1, InverseMatrix(n, modes).Item1);
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

/// <summary>Which implementation a <see cref="SpectralTransform"/> call uses.</summary>
public enum SpectralRoute
{
    /// <summary>
    /// Let the spectral layer choose per device and shape (<c>Engine.Nn.SpectralRoutePolicy</c>); not accepted by
    /// <see cref="SpectralTransform"/> itself.
    /// </summary>
    Auto,
    /// <summary>Products with cached truncated-DFT matrices, O(N·k) per row.</summary>
    Gemm,
    /// <summary>The FFT ops (<see cref="Ops.Rfft"/>, <see cref="Ops.Rfft2"/> and inverses) plus a gather of the kept bins.</summary>
    Fft,
}
