namespace Engine.Kernels.Composite;

/// <summary>
/// <see cref="IFftKernels"/> as dense DFTs in core GEMMs, for kernel sets without FFT kernels: each transform along
/// a row of length n is one product with a precomputed real matrix (the complex DFT as a 2n x 2n real matrix on
/// interleaved (re, im) pairs, the real-input transforms as n x (n + 2) and back), and the 2-D transforms add a
/// permutation that brings the column axis last. O(n²) per row instead of O(n log n); the matrices are computed in
/// double, stored as float, uploaded once per length and kept. Accuracy: float GEMM rounding, relative L2 error
/// about √n · 2^-24 (below 1e-5 for the lengths the FFT tests use).
/// </summary>
internal sealed class CompositeFftKernels(IKernelSet k) : IFftKernels
{
    private enum Matrix { Forward, Inverse, Real, RealInverse }

    private readonly object gate = new();
    private readonly Dictionary<(Matrix, int), DeviceBuffer<float>> matrices = new();

    /// <inheritdoc />
    public void Fft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n, bool inverse, float scale)
    {
        Check("Fft", batch, n, 1);
        Product(x, Get(inverse ? Matrix.Inverse : Matrix.Forward, n), y, batch, 2 * n, 2 * n, scale);
    }

    /// <inheritdoc />
    public void Rfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n)
    {
        Check("Rfft", batch, n, 1);
        Product(x, Get(Matrix.Real, n), y, batch, n, 2 * (n / 2 + 1), 1f);
    }

    /// <inheritdoc />
    public void Irfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n)
    {
        Check("Irfft", batch, n, 1);
        Product(x, Get(Matrix.RealInverse, n), y, batch, 2 * (n / 2 + 1), n, 1f);
    }

    /// <inheritdoc />
    public void Rfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w)
    {
        Check("Rfft2", batch, h, w);
        int bins = w / 2 + 1;
        long size = (long)batch * h * bins * 2;
        using var rows = k.Allocate(size);
        Product(x, Get(Matrix.Real, w), rows, batch * h, w, 2 * bins, 1f);
        AlongColumns(rows, y, batch, h, bins, Matrix.Forward, 1f);
    }

    /// <inheritdoc />
    public void Irfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w)
    {
        Check("Irfft2", batch, h, w);
        int bins = w / 2 + 1;
        long size = (long)batch * h * bins * 2;
        using var rows = k.Allocate(size);
        AlongColumns(x, rows, batch, h, bins, Matrix.Inverse, 1f / h);
        Product(rows, Get(Matrix.RealInverse, w), y, batch * h, 2 * bins, w, 1f);
    }

    /// <summary>y [rows, cols] = scale · x [rows, inner] · m [inner, cols].</summary>
    private void Product(DeviceBuffer<float> x, DeviceBuffer<float> m, DeviceBuffer<float> y, int rows, int inner, int cols, float scale) =>
        k.Gemm(GemmSize.Single(rows, cols, inner), new GemmOperand(x), new GemmOperand(m), new GemmOutput(y) { Alpha = scale });

    /// <summary>A complex DFT of length h along the second axis of [batch, h, bins, 2]: permute it last, multiply, permute back.</summary>
    private void AlongColumns(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int bins, Matrix kind, float scale)
    {
        long size = (long)batch * h * bins * 2;
        using var columns = k.Allocate(size);
        using var transformed = k.Allocate(size);
        k.Permute(x, [batch, h, bins, 2], [0, 2, 1, 3], columns);
        Product(columns, Get(kind, h), transformed, batch * bins, 2 * h, 2 * h, scale);
        k.Permute(transformed, [batch, bins, h, 2], [0, 2, 1, 3], y);
    }

    private static void Check(string op, int batch, int n, int w)
    {
        if (batch < 0 || n < 1 || w < 1)
            throw new ArgumentException($"{op}: batch {batch} must be ≥ 0 and every transform length (got {n}{(w != 1 ? $", {w}" : "")}) ≥ 1.");
    }

    /// <summary>The cached matrix of <paramref name="kind"/> for length <paramref name="n"/>, computed and uploaded on first use.</summary>
    private DeviceBuffer<float> Get(Matrix kind, int n)
    {
        lock (gate)
        {
            if (matrices.TryGetValue((kind, n), out var m)) return m;
            var host = kind switch
            {
                Matrix.Forward => ComplexMatrix(n, -1),
                Matrix.Inverse => ComplexMatrix(n, +1),
                Matrix.Real => RealMatrix(n),
                _ => RealInverseMatrix(n),
            };
            m = k.Allocate(host.Length);
            m.CopyFromHost(host);
            matrices[(kind, n)] = m;
            return m;
        }
    }

    /// <summary>cos and sin of 2π·jk/n, the angle reduced mod n first (exact in integers).</summary>
    private static (double Cos, double Sin) Twiddle(long j, long k, int n)
    {
        double a = 2 * Math.PI * (j * k % n) / n;
        return (Math.Cos(a), Math.Sin(a));
    }

    /// <summary>[2n, 2n]: row (j, re/im) times column (k, re/im) of e^{σ 2πi jk/n} acting on interleaved pairs.</summary>
    private static float[] ComplexMatrix(int n, int sign)
    {
        int w = 2 * n;
        var m = new float[(long)w * w];
        for (int j = 0; j < n; j++)
            for (int kk = 0; kk < n; kk++)
            {
                var (c, s) = Twiddle(j, kk, n);
                float cf = (float)c, sf = (float)(sign * s);
                // (a + ib)(c + iσs) = (ac - bσs) + i(aσs + bc)
                m[(2L * j) * w + 2 * kk] = cf;
                m[(2L * j) * w + 2 * kk + 1] = sf;
                m[(2L * j + 1) * w + 2 * kk] = -sf;
                m[(2L * j + 1) * w + 2 * kk + 1] = cf;
            }
        return m;
    }

    /// <summary>[n, 2·bins]: real input to the non-negative frequencies; DC's and (even n) Nyquist's imaginary columns are exact zeros.</summary>
    private static float[] RealMatrix(int n)
    {
        int bins = n / 2 + 1, w = 2 * bins;
        var m = new float[(long)n * w];
        for (int j = 0; j < n; j++)
            for (int kk = 0; kk < bins; kk++)
            {
                var (c, s) = Twiddle(j, kk, n);
                bool edge = kk == 0 || 2 * kk == n;
                m[(long)j * w + 2 * kk] = (float)c;
                m[(long)j * w + 2 * kk + 1] = edge ? 0f : (float)-s;
            }
        return m;
    }

    /// <summary>
    /// [2·bins, n]: y_j = (1/n) Σ_k w_k (Re X_k cos - Im X_k sin), w_k = 1 at DC and (even n) Nyquist, whose imaginary
    /// rows are zero (NumPy ignores those parts), and 2 elsewhere (the Hermitian partner).
    /// </summary>
    private static float[] RealInverseMatrix(int n)
    {
        int bins = n / 2 + 1;
        var m = new float[(long)2 * bins * n];
        for (int kk = 0; kk < bins; kk++)
        {
            bool edge = kk == 0 || 2 * kk == n;
            double weight = (edge ? 1.0 : 2.0) / n;
            for (int j = 0; j < n; j++)
            {
                var (c, s) = Twiddle(j, kk, n);
                m[(2L * kk) * n + j] = (float)(weight * c);
                m[(2L * kk + 1) * n + j] = edge ? 0f : (float)(-weight * s);
            }
        }
        return m;
    }
}
