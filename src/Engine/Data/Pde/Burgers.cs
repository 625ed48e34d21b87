namespace Engine.Data.Pde;

/// <summary>
/// 1-D viscous Burgers u_t + u u_x = ν u_xx on the periodic unit interval [0, 1): the FNO paper's operator-learning
/// benchmark (initial condition u0 ↦ u(·, 1)), with the settings of <see cref="BurgersPreset"/>. Seeded, no downloads,
/// computed in double.
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
    /// A zero-mean real Gaussian random field on x_j = j/n drawn as the FNO authors' <c>GRF1.m</c> does (see
    /// <see cref="BurgersPreset"/>): u(x) = Σ_{k=1}^{n/2-1} c_k (a_k cos 2πkx + b_k sin 2πkx), a, b ~ N(0, 1), with
    /// c_k = <see cref="BurgersPreset.ModeStandardDeviation"/> = √2·σ·((2πk)² + τ²)^(-γ/2); for the paper's
    /// N(0, 625(-Δ + 25I)^-2) that is √2·25/(4π²k² + 25). Default preset: <see cref="BurgersPreset.PaperText"/>.
    /// </summary>
    /// <exception cref="ArgumentException">n is not a power of two.</exception>
    public static double[] InitialCondition(int n, Random rng, BurgersPreset? preset = null)
    {
        if (!HostFft.IsPowerOfTwo(n))
            throw new ArgumentException($"Burgers.InitialCondition: the grid must have a power-of-two length, got {n}.");
        preset ??= BurgersPreset.PaperText;
        var re = new double[n];
        var im = new double[n];
        for (int k = 1; k < n / 2; k++)
        {
            double c = preset.ModeStandardDeviation(k);
            double a = Normal(rng), b = Normal(rng);
            // a cos + b sin = Re[(a - i b) e^{iθ}]: put (a - ib)/2 at +k and its conjugate at -k.
            re[k] = c * a / 2; im[k] = -c * b / 2;
            re[n - k] = c * a / 2; im[n - k] = c * b / 2;
        }
        HostFft.Transform(re, im, inverse: true);
        return re;
    }

    /// <summary>
    /// The heat-equation prediction e^{tνΔ} u0 (Burgers without its nonlinear term) on the periodic grid of
    /// <paramref name="u0"/>: mode k decays by e^{-ν(2πk)²t}. The baseline an operator for Burgers must beat.
    /// </summary>
    /// <exception cref="ArgumentException">The grid is not a power of two, or ν or t is negative.</exception>
    public static double[] HeatSolution(double[] u0, double nu, double t)
    {
        int n = u0.Length;
        if (!HostFft.IsPowerOfTwo(n))
            throw new ArgumentException($"Burgers.HeatSolution: the grid must have a power-of-two length, got {n}.");
        if (!(nu >= 0) || !(t >= 0))
            throw new ArgumentException($"Burgers.HeatSolution: need ν >= 0 and t >= 0; got ν = {nu}, t = {t}.");
        var re = (double[])u0.Clone();
        var im = new double[n];
        HostFft.Transform(re, im, inverse: false);
        for (int j = 0; j < n; j++)
        {
            int k = j <= n / 2 ? j : j - n;
            double decay = Math.Exp(-nu * 4 * Math.PI * Math.PI * k * k * t);
            re[j] *= decay;
            im[j] *= decay;
        }
        HostFft.Transform(re, im, inverse: true);
        for (int j = 0; j < n; j++) re[j] /= n;
        return re;
    }

    /// <summary>
    /// Mean over the pairs of ||heat(u0) - u(·, 1)|| / ||u(·, 1)|| (<see cref="HeatSolution"/> on each input at the
    /// data's resolution): the relative L2 error of the linear heat-equation prediction, in the FNO metric.
    /// </summary>
    public static double HeatBaselineError(PdeData data, double nu)
    {
        ArgumentNullException.ThrowIfNull(data);
        int s = data.SampleSize;
        double sum = 0;
        for (int i = 0; i < data.Count; i++)
        {
            var u0 = new double[s];
            for (int j = 0; j < s; j++) u0[j] = data.Inputs[i * s + j];
            var heat = HeatSolution(u0, nu, 1.0);
            sum += PdeData.RelativeL2(heat, data.Targets.AsSpan(i * s, s));
        }
        return sum / data.Count;
    }

    internal static double Normal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>
    /// <paramref name="count"/> pairs (u0, u(·, 1)) at resolution <paramref name="resolution"/> (a power of two) for a
    /// <paramref name="preset"/> (default <see cref="BurgersPreset.PaperText"/>): the initial condition is drawn on a
    /// fine grid of 8192 points (as the paper; more when a grid is finer), its spectrum truncated to the preset's solver
    /// grid, integrated there to t = 1 with the preset's steps (<see cref="Solve"/>), and both fields are subsampled (or
    /// spectrally interpolated when the solver grid is coarser) to the resolution. Sample i draws from its own generator
    /// seeded by (seed, i), so the result does not depend on the thread count. Runs over all cores.
    /// </summary>
    /// <param name="count">Number of pairs.</param>
    /// <param name="resolution">Output points s (power of two).</param>
    /// <param name="seed">Seed.</param>
    /// <param name="preset">Viscosity, initial-condition field, solver grid and steps.</param>
    /// <param name="progress">Receives the fraction done (0..1) as samples finish.</param>
    /// <param name="cachePath">When given, read the pairs from this file if its header matches, else generate and write it.</param>
    /// <param name="log">Optional sink for one line about the cache.</param>
    /// <exception cref="ArgumentException">Sizes are not powers of two or not positive.</exception>
    public static PdeData Generate(int count, int resolution, ulong seed, BurgersPreset? preset = null,
        IProgress<double>? progress = null, string? cachePath = null, TextWriter? log = null)
    {
        preset ??= BurgersPreset.PaperText;
        int solverGrid = preset.SolverGrid, steps = preset.Steps;
        if (count <= 0 || !HostFft.IsPowerOfTwo(resolution) || resolution < 4 || !HostFft.IsPowerOfTwo(solverGrid) || solverGrid < 16 || steps <= 0)
            throw new ArgumentException(
                $"Burgers.Generate: need count > 0, power-of-two resolution >= 4, solver grid >= 16 and steps > 0; got count {count}, resolution {resolution}, solver grid {solverGrid}, steps {steps}.");
        var header = new PdeCache.Header("burgers", count, [resolution], seed,
            [preset.Viscosity, preset.Sigma, preset.Tau, preset.Gamma, solverGrid, steps, 1.0]);
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
            var u0Fine = InitialCondition(fine, rng, preset);
            var u0Solver = Resample(u0Fine, solverGrid, spectral: true);
            var u1 = Solve(u0Solver, preset.Viscosity, 1.0, steps);
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
