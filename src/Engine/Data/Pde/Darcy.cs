namespace Engine.Data.Pde;

/// <summary>
/// 2-D Darcy flow -∇·(a ∇u) = 1 on the unit square with u = 0 on the boundary: the FNO paper's second benchmark
/// (coefficient a ↦ solution u). Seeded, no downloads, computed in double.
/// </summary>
public static class Darcy
{
    /// <summary>Outcome of one solve.</summary>
    /// <param name="U">Solution at the s x s nodes (row-major, boundary included, zero there).</param>
    /// <param name="Iterations">Conjugate-gradient iterations used.</param>
    /// <param name="RelativeResidual">||f - A u|| / ||f|| at the end (true residual, recomputed).</param>
    public sealed record Solution(double[] U, int Iterations, double RelativeResidual);

    /// <summary>
    /// Solves on the s x s node grid x_i = i/(s-1) (boundary nodes included) by the 5-point finite-difference scheme
    /// with the harmonic mean of a on each face: Σ_faces a_f (u_P - u_nb) / h² = 1 at every interior node; the
    /// symmetric positive definite system is solved by conjugate gradients with a Jacobi preconditioner until the
    /// relative residual is below <paramref name="tolerance"/>.
    /// </summary>
    /// <param name="a">Coefficient at the nodes, s·s values, all positive.</param>
    /// <param name="s">Nodes per side (at least 3).</param>
    /// <param name="tolerance">Relative residual to reach.</param>
    /// <param name="maxIterations">Iteration cap (default 20·s²).</param>
    /// <exception cref="ArgumentException">Sizes disagree or a coefficient is not positive.</exception>
    /// <exception cref="InvalidOperationException">The tolerance was not reached within the cap.</exception>
    public static Solution Solve(double[] a, int s, double tolerance = 1e-10, int maxIterations = 0)
    {
        if (s < 3 || a.Length != s * s)
            throw new ArgumentException($"Darcy.Solve: need s >= 3 and s·s = {s * s} coefficients; got s = {s}, {a.Length} values.");
        foreach (var v in a)
            if (!(v > 0)) throw new ArgumentException($"Darcy.Solve: the coefficient must be positive everywhere; found {v}.");
        int m = s - 2, n = m * m;
        double h2 = 1.0 / ((s - 1.0) * (s - 1.0));
        // Face coefficients (harmonic means) between interior node (i, j) and its east and north neighbours, scaled 1/h².
        double H(double p, double q) => 2 * p * q / (p + q);
        var east = new double[(s - 1) * s];  // face between node (i, j) and (i, j+1)
        var north = new double[(s - 1) * s]; // face between node (i, j) and (i+1, j)
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s - 1; j++) east[i * (s - 1) + j] = H(a[i * s + j], a[i * s + j + 1]) / h2;
        for (int i = 0; i < s - 1; i++)
            for (int j = 0; j < s; j++) north[i * s + j] = H(a[i * s + j], a[(i + 1) * s + j]) / h2;
        var diag = new double[n];
        for (int i = 1; i <= m; i++)
            for (int j = 1; j <= m; j++)
                diag[(i - 1) * m + (j - 1)] = east[i * (s - 1) + j - 1] + east[i * (s - 1) + j] + north[(i - 1) * s + j] + north[i * s + j];

        void Apply(double[] x, double[] y)
        {
            for (int i = 1; i <= m; i++)
                for (int j = 1; j <= m; j++)
                {
                    int p = (i - 1) * m + (j - 1);
                    double v = diag[p] * x[p];
                    if (j > 1) v -= east[i * (s - 1) + j - 1] * x[p - 1];
                    if (j < m) v -= east[i * (s - 1) + j] * x[p + 1];
                    if (i > 1) v -= north[(i - 1) * s + j] * x[p - m];
                    if (i < m) v -= north[i * s + j] * x[p + m];
                    y[p] = v;
                }
        }

        var f = Enumerable.Repeat(1.0, n).ToArray();
        var x = new double[n];
        var r = (double[])f.Clone();
        var z = new double[n];
        for (int p = 0; p < n; p++) z[p] = r[p] / diag[p];
        var d = (double[])z.Clone();
        var q = new double[n];
        double rz = Dot(r, z), fNorm = Math.Sqrt(Dot(f, f));
        int cap = maxIterations > 0 ? maxIterations : 20 * s * s, it = 0;
        while (Math.Sqrt(Dot(r, r)) > tolerance * fNorm)
        {
            if (it++ >= cap)
                throw new InvalidOperationException($"Darcy.Solve: conjugate gradients did not reach relative residual {tolerance} in {cap} iterations (s = {s}).");
            Apply(d, q);
            double alpha = rz / Dot(d, q);
            for (int p = 0; p < n; p++) { x[p] += alpha * d[p]; r[p] -= alpha * q[p]; }
            for (int p = 0; p < n; p++) z[p] = r[p] / diag[p];
            double rzNew = Dot(r, z);
            double beta = rzNew / rz;
            rz = rzNew;
            for (int p = 0; p < n; p++) d[p] = z[p] + beta * d[p];
        }
        // The true residual, not the recursively updated one.
        Apply(x, q);
        double res = 0;
        for (int p = 0; p < n; p++) res += (f[p] - q[p]) * (f[p] - q[p]);
        var u = new double[s * s];
        for (int i = 1; i <= m; i++)
            for (int j = 1; j <= m; j++) u[i * s + j] = x[(i - 1) * m + (j - 1)];
        return new Solution(u, it, Math.Sqrt(res) / fNorm);
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>
    /// A Gaussian random field N(0, (-Δ + 9 I)^-2) on the s x s nodes of the unit square, sampled in the Neumann cosine
    /// eigenbasis: f = Σ_{(k1, k2) ≠ 0} (π²(k1² + k2²) + 9)^-1 ξ_k cos(π k1 x) cos(π k2 y), ξ ~ N(0, 1), k up to
    /// <paramref name="maxMode"/> per axis (evaluated as two small matrix products).
    /// </summary>
    public static double[] RandomField(int s, Random rng, int maxMode = 32)
    {
        int k = maxMode;
        var xi = new double[k * k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                xi[i * k + j] = i == 0 && j == 0 ? 0 : Burgers.Normal(rng) / (Math.PI * Math.PI * (i * i + j * j) + 9);
        var c = new double[s * k];
        for (int p = 0; p < s; p++)
            for (int i = 0; i < k; i++) c[p * k + i] = Math.Cos(Math.PI * i * p / (s - 1.0));
        var t = new double[s * k]; // C Ξ
        for (int p = 0; p < s; p++)
            for (int j = 0; j < k; j++)
            {
                double v = 0;
                for (int i = 0; i < k; i++) v += c[p * k + i] * xi[i * k + j];
                t[p * k + j] = v;
            }
        var f = new double[s * s]; // C Ξ Cᵀ
        for (int p = 0; p < s; p++)
            for (int q = 0; q < s; q++)
            {
                double v = 0;
                for (int j = 0; j < k; j++) v += t[p * k + j] * c[q * k + j];
                f[p * s + q] = v;
            }
        return f;
    }

    /// <summary>The paper's piecewise-constant coefficient: 12 where the field is >= 0, 3 elsewhere.</summary>
    public static double[] Threshold(double[] field) => field.Select(v => v >= 0 ? 12.0 : 3.0).ToArray();

    /// <summary>
    /// <paramref name="count"/> pairs (a, u) on s x s nodes: a thresholded random field, u the finite-difference solution
    /// (relative residual below <paramref name="tolerance"/>). The paper solved at 421 x 421 and subsampled to 85; here
    /// the solve is at the output resolution. Sample i draws from its own generator seeded by (seed, i).
    /// </summary>
    /// <param name="count">Number of pairs.</param>
    /// <param name="resolution">Nodes per side s.</param>
    /// <param name="seed">Seed.</param>
    /// <param name="tolerance">Conjugate-gradient relative residual.</param>
    /// <param name="progress">Receives the fraction done.</param>
    /// <param name="cachePath">Optional cache file (see <see cref="PdeCache"/>).</param>
    /// <param name="log">Optional sink for one line about the cache.</param>
    /// <exception cref="ArgumentException">count or resolution too small.</exception>
    public static PdeData Generate(int count, int resolution, ulong seed, double tolerance = 1e-10,
        IProgress<double>? progress = null, string? cachePath = null, TextWriter? log = null)
    {
        if (count <= 0 || resolution < 3)
            throw new ArgumentException($"Darcy.Generate: need count > 0 and resolution >= 3; got count {count}, resolution {resolution}.");
        int s = resolution;
        int modes = Math.Min(32, s);
        var header = new PdeCache.Header("darcy", count, [s, s], seed, [tolerance, modes, 12, 3, 9]);
        if (cachePath != null)
        {
            var cached = PdeCache.TryRead(cachePath, header, out var why);
            if (cached != null)
            {
                log?.WriteLine($"darcy: loaded {count} pairs from cache {cachePath}");
                progress?.Report(1.0);
                return cached;
            }
            log?.WriteLine($"darcy: generating {count} pairs ({why})");
        }
        var inputs = new float[count * s * s];
        var targets = new float[count * s * s];
        int done = 0;
        Parallel.For(0, count, i =>
        {
            var rng = new Random(Burgers.SampleSeed(seed ^ 0xDA2C1, i));
            var a = Threshold(RandomField(s, rng, modes));
            var u = Solve(a, s, tolerance).U;
            for (int p = 0; p < s * s; p++)
            {
                inputs[i * s * s + p] = (float)a[p];
                targets[i * s * s + p] = (float)u[p];
            }
            progress?.Report((double)Interlocked.Increment(ref done) / count);
        });
        var data = new PdeData(inputs, targets, count, [s, s]);
        if (cachePath != null) PdeCache.Write(cachePath, header, data);
        return data;
    }
}
