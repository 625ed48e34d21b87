namespace Engine.Data.Pde;

/// <summary>
/// 1-D viscous Burgers u_t + u u_x = ν u_xx on the periodic unit interval [0, 1): the FNO paper's operator-learning
/// benchmark (initial condition u0 ↦ u(·, 1)). Seeded, no downloads, computed in double.
/// </summary>
public static class Burgers
{
    /// <summary>
    /// Integrates from <paramref name="u0"/> (values at x_j = j/N, N a power of two) to time <paramref name="t"/>
    /// pseudo-spectrally: û' = -ν(2πk)² û - (2πik/2)·FFT(u²) with the nonlinear term dealiased by the 2/3 rule, the
    /// stiff linear term exact through an integrating factor, and classical RK4 for the rest (Trefethen's IF-RK4) with
    /// <paramref name="steps"/> equal steps. Mode 0 has no linear and no nonlinear term, so the mean of u is conserved
    /// to rounding.
    /// </summary>
    /// <exception cref="ArgumentException">N is not a power of two, ν or t is negative, or steps is not positive.</exception>
    public static double[] Solve(double[] u0, double nu, double t, int steps)
    {
        int n = u0.Length;
        if (!HostFft.IsPowerOfTwo(n) || n < 4)
            throw new ArgumentException($"Burgers.Solve: the grid must have a power-of-two length >= 4, got {n}.");
        if (!(nu >= 0) || !(t >= 0) || steps <= 0)
            throw new ArgumentException($"Burgers.Solve: need ν >= 0, t >= 0 and steps > 0; got ν = {nu}, t = {t}, steps = {steps}.");
        double dt = t / steps;
        var k = new double[n];        // angular wavenumber 2πk for the FFT's ordering
        var keep = new bool[n];       // 2/3-rule dealiasing mask
        var e1 = new double[n];       // e^{L dt/2}
        var e2 = new double[n];       // e^{L dt}
        int kmax = n / 3;
        for (int j = 0; j < n; j++)
        {
            int kk = j <= n / 2 ? j : j - n;
            if (j == n / 2) kk = 0; // the Nyquist mode has no well-defined derivative; it is dealiased away anyway
            k[j] = 2 * Math.PI * kk;
            keep[j] = Math.Abs(j <= n / 2 ? j : j - n) <= kmax && j != n / 2;
            double l = -nu * k[j] * k[j];
            e1[j] = Math.Exp(l * dt / 2);
            e2[j] = Math.Exp(l * dt);
        }
        var ur = (double[])u0.Clone();
        var ui = new double[n];
        HostFft.Transform(ur, ui, inverse: false);
        var s = new State(n);
        for (int step = 0; step < steps; step++) Step(ur, ui, k, keep, e1, e2, dt, s);
        HostFft.Transform(ur, ui, inverse: true);
        for (int j = 0; j < n; j++) ur[j] /= n;
        return ur;
    }

    private sealed class State(int n)
    {
        public readonly double[] Ar = new double[n], Ai = new double[n], Br = new double[n], Bi = new double[n];
        public readonly double[] K1r = new double[n], K1i = new double[n], K2r = new double[n], K2i = new double[n];
        public readonly double[] K3r = new double[n], K3i = new double[n], K4r = new double[n], K4i = new double[n];
        public readonly double[] Wr = new double[n], Wi = new double[n];
    }

    /// <summary>dt·N(v̂) = -dt·(i k/2)·FFT(u²), u = IFFT(v̂), dealiased, into (outR, outI).</summary>
    private static void Nonlinear(double[] vr, double[] vi, double[] k, bool[] keep, double dt, double[] outR, double[] outI, State s)
    {
        int n = vr.Length;
        for (int j = 0; j < n; j++)
        {
            s.Wr[j] = keep[j] ? vr[j] : 0;
            s.Wi[j] = keep[j] ? vi[j] : 0;
        }
        HostFft.Transform(s.Wr, s.Wi, inverse: true);
        for (int j = 0; j < n; j++)
        {
            double u = s.Wr[j] / n;
            s.Wr[j] = u * u;
            s.Wi[j] = 0;
        }
        HostFft.Transform(s.Wr, s.Wi, inverse: false);
        for (int j = 0; j < n; j++)
        {
            // -(i k / 2)(a + ib) = (k b / 2) - i (k a / 2)
            double f = keep[j] ? 0.5 * k[j] * dt : 0;
            outR[j] = f * s.Wi[j];
            outI[j] = -f * s.Wr[j];
        }
    }

    private static void Step(double[] vr, double[] vi, double[] k, bool[] keep, double[] e1, double[] e2, double dt, State s)
    {
        int n = vr.Length;
        Nonlinear(vr, vi, k, keep, dt, s.K1r, s.K1i, s);
        for (int j = 0; j < n; j++) { s.Ar[j] = e1[j] * (vr[j] + s.K1r[j] / 2); s.Ai[j] = e1[j] * (vi[j] + s.K1i[j] / 2); }
        Nonlinear(s.Ar, s.Ai, k, keep, dt, s.K2r, s.K2i, s);
        for (int j = 0; j < n; j++) { s.Br[j] = e1[j] * vr[j] + s.K2r[j] / 2; s.Bi[j] = e1[j] * vi[j] + s.K2i[j] / 2; }
        Nonlinear(s.Br, s.Bi, k, keep, dt, s.K3r, s.K3i, s);
        for (int j = 0; j < n; j++) { s.Ar[j] = e2[j] * vr[j] + e1[j] * s.K3r[j]; s.Ai[j] = e2[j] * vi[j] + e1[j] * s.K3i[j]; }
        Nonlinear(s.Ar, s.Ai, k, keep, dt, s.K4r, s.K4i, s);
        for (int j = 0; j < n; j++)
        {
            vr[j] = e2[j] * vr[j] + (e2[j] * s.K1r[j] + 2 * e1[j] * (s.K2r[j] + s.K3r[j]) + s.K4r[j]) / 6;
            vi[j] = e2[j] * vi[j] + (e2[j] * s.K1i[j] + 2 * e1[j] * (s.K2i[j] + s.K3i[j]) + s.K4i[j]) / 6;
        }
    }

    /// <summary>
    /// A zero-mean real Gaussian random field on x_j = j/n with covariance 625(-Δ + 25 I)^-2 (the FNO paper's Burgers
    /// initial conditions): u(x) = Σ_{k=1}^{n/2-1} c_k (a_k cos 2πkx + b_k sin 2πkx), a, b ~ N(0, 1),
    /// c_k = 25 / (4π²k² + 25) (the eigenvalue's square root; cos and sin each carry one real degree of freedom).
    /// </summary>
    public static double[] InitialCondition(int n, Random rng)
    {
        if (!HostFft.IsPowerOfTwo(n))
            throw new ArgumentException($"Burgers.InitialCondition: the grid must have a power-of-two length, got {n}.");
        var re = new double[n];
        var im = new double[n];
        for (int k = 1; k < n / 2; k++)
        {
            double c = 25.0 / (4 * Math.PI * Math.PI * k * k + 25);
            double a = Normal(rng), b = Normal(rng);
            // a cos + b sin = Re[(a - i b) e^{iθ}]: put (a - ib)/2 at +k and its conjugate at -k.
            re[k] = c * a / 2; im[k] = -c * b / 2;
            re[n - k] = c * a / 2; im[n - k] = c * b / 2;
        }
        HostFft.Transform(re, im, inverse: true);
        return re;
    }

    internal static double Normal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>
    /// <paramref name="count"/> pairs (u0, u(·, 1)) at resolution <paramref name="resolution"/> (a power of two), as the
    /// paper: the initial condition is drawn on a fine grid of 8192 points (or more, to cover the other grids),
    /// solved on <paramref name="solverGrid"/> points (its spectrum truncated there; ν = 0.1 damps those modes by
    /// e^{-4π²νk²t} in microseconds), and both fields are subsampled (or spectrally interpolated when the solver grid is
    /// coarser) to the resolution. Sample i draws from its own generator seeded by (seed, i), so the result does not
    /// depend on the thread count. Runs over all cores.
    /// </summary>
    /// <param name="count">Number of pairs.</param>
    /// <param name="resolution">Output points s (power of two).</param>
    /// <param name="seed">Seed.</param>
    /// <param name="nu">Viscosity ν (0.1 in the paper).</param>
    /// <param name="solverGrid">Solver grid (power of two, default 512: 170 dealiased modes, where ν = 0.1 leaves
    /// amplitudes below 1e-300 at t = 1; a test checks it against 2048 points and 4x the steps).</param>
    /// <param name="steps">Time steps to t = 1 (default 250).</param>
    /// <param name="progress">Receives the fraction done (0..1) as samples finish.</param>
    /// <param name="cachePath">When given, read the pairs from this file if its header matches, else generate and write it.</param>
    /// <param name="log">Optional sink for one line about the cache.</param>
    /// <exception cref="ArgumentException">Sizes are not powers of two or not positive.</exception>
    public static PdeData Generate(int count, int resolution, ulong seed, double nu = 0.1, int solverGrid = 512, int steps = 250,
        IProgress<double>? progress = null, string? cachePath = null, TextWriter? log = null)
    {
        if (count <= 0 || !HostFft.IsPowerOfTwo(resolution) || resolution < 4 || !HostFft.IsPowerOfTwo(solverGrid) || solverGrid < 16)
            throw new ArgumentException(
                $"Burgers.Generate: need count > 0 and power-of-two resolution >= 4 and solver grid >= 16; got count {count}, resolution {resolution}, solver grid {solverGrid}.");
        var header = new PdeCache.Header("burgers", count, [resolution], seed, [nu, solverGrid, steps, 1.0]);
        if (cachePath != null)
        {
            var cached = PdeCache.TryRead(cachePath, header, out var why);
            if (cached != null)
            {
                log?.WriteLine($"burgers: loaded {count} pairs from cache {cachePath}");
                progress?.Report(1.0);
                return cached;
            }
            log?.WriteLine($"burgers: generating {count} pairs ({why})");
        }
        int fine = Math.Max(Math.Max(resolution, solverGrid), 8192);
        var inputs = new float[count * resolution];
        var targets = new float[count * resolution];
        int done = 0;
        Parallel.For(0, count, i =>
        {
            var rng = new Random(SampleSeed(seed, i));
            var u0Fine = InitialCondition(fine, rng);
            var u0Solver = Resample(u0Fine, solverGrid, spectral: true);
            var u1 = Solve(u0Solver, nu, 1.0, steps);
            var a = Resample(u0Fine, resolution);
            var b = Resample(u1, resolution);
            for (int j = 0; j < resolution; j++)
            {
                inputs[i * resolution + j] = (float)a[j];
                targets[i * resolution + j] = (float)b[j];
            }
            int d = Interlocked.Increment(ref done);
            progress?.Report((double)d / count);
        });
        var data = new PdeData(inputs, targets, count, [resolution]);
        if (cachePath != null) PdeCache.Write(cachePath, header, data);
        return data;
    }

    /// <summary>A per-sample seed for System.Random from (seed, index) (splitmix64 finaliser).</summary>
    internal static int SampleSeed(ulong seed, int index)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + (ulong)index + 1;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>
    /// A periodic field on a power-of-two grid resampled to another power-of-two grid: subsampling when coarser,
    /// spectral (zero-padding) interpolation when finer; with <paramref name="spectral"/> a coarser grid gets the
    /// truncated spectrum instead of point values (no aliasing).
    /// </summary>
    internal static double[] Resample(double[] u, int m, bool spectral = false)
    {
        int n = u.Length;
        if (m == n) return (double[])u.Clone();
        if (!spectral && m < n && n % m == 0)
        {
            // Subsampling keeps point values (as the paper's data), aliasing what lies above m/2; for the smooth
            // solution that is nothing, and the initial condition is defined by its point values.
            var r = new double[m];
            for (int j = 0; j < m; j++) r[j] = u[j * (n / m)];
            return r;
        }
        var re = (double[])u.Clone();
        var im = new double[n];
        HostFft.Transform(re, im, inverse: false);
        var or = new double[m];
        var oi = new double[m];
        int half = Math.Min(n, m) / 2;
        for (int k = 0; k < half; k++)
        {
            or[k] = re[k]; oi[k] = im[k];
            if (k > 0) { or[m - k] = re[n - k]; oi[m - k] = im[n - k]; }
        }
        HostFft.Transform(or, oi, inverse: true);
        for (int j = 0; j < m; j++) or[j] /= n;
        return or;
    }
}
