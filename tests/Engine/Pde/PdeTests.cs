using Engine.Data.Pde;
using Xunit.Abstractions;

namespace Engine.Tests.EngineTests;

/// <summary>The PDE data generators: host FFT, Burgers against Cole-Hopf, Darcy against a series solution, the cache.</summary>
public class PdeTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    [InlineData(128)]
    public void HostFftMatchesTheDirectDft(int n)
    {
        var rng = new Random(n);
        var re = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var im = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var (r2, i2) = ((double[])re.Clone(), (double[])im.Clone());
        HostFft.Transform(r2, i2, inverse: false);
        for (int k = 0; k < n; k++)
        {
            double sr = 0, si = 0;
            for (int t = 0; t < n; t++)
            {
                double a = -2 * Math.PI * ((long)k * t % n) / n;
                sr += re[t] * Math.Cos(a) - im[t] * Math.Sin(a);
                si += re[t] * Math.Sin(a) + im[t] * Math.Cos(a);
            }
            Assert.Equal(sr, r2[k], 1e-10);
            Assert.Equal(si, i2[k], 1e-10);
        }
        HostFft.Transform(r2, i2, inverse: true);
        for (int t = 0; t < n; t++) Assert.Equal(re[t], r2[t] / n, 1e-12);
    }

    [Fact]
    public void BurgersConservesTheMean()
    {
        var u0 = Burgers.InitialCondition(256, new Random(3));
        for (int j = 0; j < u0.Length; j++) u0[j] += 0.3; // a non-zero mean
        var u1 = Burgers.Solve(u0, 0.1, 1.0, 500);
        double m0 = u0.Average(), m1 = u1.Average();
        output.WriteLine($"mean before {m0:R}, after {m1:R}, |diff| {Math.Abs(m1 - m0):G3}");
        Assert.True(Math.Abs(m1 - m0) < 1e-12, $"mean moved by {Math.Abs(m1 - m0):G3}");
        Assert.True(u1.Zip(u0).Max(p => Math.Abs(p.First - p.Second)) > 0.01); // it did evolve
    }

    /// <summary>
    /// Cole-Hopf: u = -2ν φ_x/φ solves Burgers when φ solves the heat equation φ_t = ν φ_xx. With the periodic
    /// φ = a0 + a1 e^{-4π²νt} cos 2πx (a0 &gt; |a1|): u = 4πν a1 e^{-4π²νt} sin 2πx / (a0 + a1 e^{-4π²νt} cos 2πx).
    /// </summary>
    private static double ColeHopf(double x, double t, double nu, double a0, double a1)
    {
        double e = a1 * Math.Exp(-4 * Math.PI * Math.PI * nu * t);
        return 4 * Math.PI * nu * e * Math.Sin(2 * Math.PI * x) / (a0 + e * Math.Cos(2 * Math.PI * x));
    }

    [Theory]
    [InlineData(0.1, 1.0, 0.8, 1.0)]    // the data set's viscosity to t = 1
    [InlineData(0.02, 1.0, 0.9, 0.5)]   // lower viscosity, to t = 0.5
    public void BurgersMatchesTheColeHopfSolution(double nu, double a0, double a1, double t)
    {
        int n = 256;
        var u0 = Enumerable.Range(0, n).Select(j => ColeHopf((double)j / n, 0, nu, a0, a1)).ToArray();
        var u = Burgers.Solve(u0, nu, t, 1000);
        double err = 0, scale = 0;
        for (int j = 0; j < n; j++)
        {
            err = Math.Max(err, Math.Abs(u[j] - ColeHopf((double)j / n, t, nu, a0, a1)));
            scale = Math.Max(scale, Math.Abs(u0[j]));
        }
        output.WriteLine($"ν {nu}, t {t}: max |u - exact| = {err:G3} (max |u0| = {scale:G3})");
        Assert.True(err < 1e-8, $"max error {err:G3}"); // measured 4e-12 and 1e-13
    }

    [Fact]
    public void BurgersGenerationIsSeededAndShaped()
    {
        var a = Burgers.Generate(3, 64, seed: 5, preset: BurgersPreset.PaperText.WithSolver(128, 200));
        var b = Burgers.Generate(3, 64, seed: 5, preset: BurgersPreset.PaperText.WithSolver(128, 200));
        var c = Burgers.Generate(3, 64, seed: 6, preset: BurgersPreset.PaperText.WithSolver(128, 200));
        Assert.Equal([64], a.SampleShape);
        Assert.Equal(a.Inputs, b.Inputs);
        Assert.Equal(a.Targets, b.Targets);
        Assert.NotEqual(a.Inputs, c.Inputs);
        // Zero-mean initial conditions of standard deviation about 0.6; the solution is smoother and smaller.
        double sd0 = Math.Sqrt(a.Inputs.Average(v => (double)v * v)), sd1 = Math.Sqrt(a.Targets.Average(v => (double)v * v));
        output.WriteLine($"rms u0 {sd0:G3}, rms u1 {sd1:G3}");
        Assert.InRange(sd0, 0.2, 1.5);
        Assert.True(sd1 < sd0);
        // Subsampled output: a 64-point set is every other point of the 128-point one of the same seed.
        var fine = Burgers.Generate(1, 128, seed: 5, preset: BurgersPreset.PaperText.WithSolver(128, 200));
        for (int j = 0; j < 64; j++)
        {
            Assert.Equal(fine.Inputs[2 * j], a.Inputs[j], 1e-6);
            Assert.Equal(fine.Targets[2 * j], a.Targets[j], 1e-6);
        }
    }

    [Fact]
    public void BurgersDefaultsAreConverged()
    {
        // The defaults (512-point solver, 250 steps) against a 4x finer solve in space and time.
        var a = Burgers.Generate(2, 256, seed: 9, preset: BurgersPreset.PaperText.WithSolver(512, 250));
        var b = Burgers.Generate(2, 256, seed: 9, preset: BurgersPreset.PaperText.WithSolver(2048, 1000));
        Assert.Equal(a.Inputs, b.Inputs);
        double diff = a.Targets.Zip(b.Targets).Max(p => Math.Abs(p.First - p.Second));
        double scale = a.Targets.Max(v => Math.Abs(v));
        output.WriteLine($"max |u(512, 250) - u(2048, 1000)| = {diff:G3}, max |u| = {scale:G3}");
        Assert.True(diff < 1e-6 * scale + 1e-7, $"difference {diff:G3} at scale {scale:G3}");
    }

    [Theory]
    [InlineData("paper-text")]
    [InlineData("script-v1000")]
    public void InitialConditionSpectrumMatchesTheGeneratorFormula(string name)
    {
        // Per-mode variance of the cos and sin coefficients over 400 draws against (√2·σ·((2πk)² + τ²)^(-γ/2))²:
        // 800 values per mode give a relative standard error of √(2/800) = 5% on each variance.
        var preset = BurgersPreset.Parse(name);
        int n = 256, draws = 400, modes = 6;
        var variance = new double[modes + 1];
        for (int d = 0; d < draws; d++)
        {
            var u = Burgers.InitialCondition(n, new Random(1000 + d), preset);
            for (int k = 1; k <= modes; k++)
            {
                double c = 0, s = 0;
                for (int j = 0; j < n; j++)
                {
                    c += u[j] * Math.Cos(2 * Math.PI * k * j / n);
                    s += u[j] * Math.Sin(2 * Math.PI * k * j / n);
                }
                // u = a cos + b sin: a = (2/n) Σ u cos, b = (2/n) Σ u sin.
                variance[k] += (Math.Pow(2 * c / n, 2) + Math.Pow(2 * s / n, 2)) / (2.0 * draws);
            }
        }
        for (int k = 1; k <= modes; k++)
        {
            double expected = Math.Pow(preset.ModeStandardDeviation(k), 2);
            output.WriteLine($"{name} mode {k}: measured variance {variance[k]:G4}, formula {expected:G4}, ratio {variance[k] / expected:F3}");
            Assert.InRange(variance[k] / expected, 0.8, 1.2);
        }
        // The paper's N(0, 625(-Δ + 25I)^-2) in the authors' convention carries √2: mode 1 has sd √2·25/(4π² + 25).
        if (name == "paper-text") Assert.Equal(Math.Sqrt(2) * 25 / (4 * Math.PI * Math.PI + 25), preset.ModeStandardDeviation(1), 12);
    }

    [Fact]
    public void ScriptPresetSolverIsConvergedAgainstAFinerGrid()
    {
        // script-v1000 (ν = 1e-3) develops steep fronts; its solver (1024 points, 2000 steps) against 2048 points and
        // 4000 steps on one sample (measured separately against 4096 points and 8000 steps: 3e-8 at max |u| 0.38).
        var preset = BurgersPreset.ScriptV1000;
        var a = Burgers.Generate(1, 256, seed: 3, preset: preset);
        var b = Burgers.Generate(1, 256, seed: 3, preset: preset.WithSolver(2048, 4000));
        double diff = a.Targets.Zip(b.Targets).Max(p => Math.Abs(p.First - p.Second));
        double scale = a.Targets.Max(v => Math.Abs(v));
        double slope = Enumerable.Range(0, 256).Max(j => Math.Abs(a.Targets[(j + 1) % 256] - a.Targets[j]) * 256);
        output.WriteLine($"max |u(1024, 2000) - u(2048, 4000)| = {diff:G3}, max |u| = {scale:G3}, max |u_x| (s = 256) = {slope:G3}");
        Assert.True(diff < 1e-5 * scale, $"difference {diff:G3} at scale {scale:G3}");
        Assert.True(slope > 10, $"expected steep fronts, max |u_x| = {slope:G3}");
    }

    [Fact]
    public void HeatSolutionDampsEachModeExactly()
    {
        int n = 64;
        var u0 = Enumerable.Range(0, n).Select(j => Math.Cos(2 * Math.PI * 3 * j / n) + 0.5 * Math.Sin(2 * Math.PI * 5 * j / n)).ToArray();
        var u = Burgers.HeatSolution(u0, 0.01, 2.0);
        double d3 = Math.Exp(-0.01 * 4 * Math.PI * Math.PI * 9 * 2), d5 = Math.Exp(-0.01 * 4 * Math.PI * Math.PI * 25 * 2);
        for (int j = 0; j < n; j++)
            Assert.Equal(d3 * Math.Cos(2 * Math.PI * 3 * j / n) + 0.5 * d5 * Math.Sin(2 * Math.PI * 5 * j / n), u[j], 12);
    }

    [Fact]
    public void TheHeatBaselineSeparatesTheTwoPresets()
    {
        // ν = 0.1 leaves u(·, 1) nearly the heat solution (the paper-text data is easy); ν = 1e-3 does not.
        var easy = Burgers.Generate(8, 256, seed: 4, preset: BurgersPreset.PaperText);
        var hard = Burgers.Generate(4, 256, seed: 4, preset: BurgersPreset.ScriptV1000.WithSolver(1024, 1000));
        double e = Burgers.HeatBaselineError(easy, 0.1), h = Burgers.HeatBaselineError(hard, 1e-3);
        output.WriteLine($"heat baseline: paper-text {e:P2}, script-v1000 {h:P2}");
        Assert.InRange(e, 0.005, 0.3);
        Assert.True(h > 0.5, $"script-v1000 heat baseline {h:P2}");
    }

    [Fact]
    public void MeanFieldBaselineIsTheErrorOfTheMeanTrainingField()
    {
        // Train targets 1 and 3 everywhere: mean 2; a test target of 4 everywhere is off by 1/2 relative.
        var train = new PdeData(new float[8], [1f, 1f, 1f, 1f, 3f, 3f, 3f, 3f], 2, [2, 2]);
        var test = new PdeData(new float[4], [4f, 4f, 4f, 4f], 1, [2, 2]);
        Assert.Equal(0.5, test.MeanFieldBaselineError(train), 12);
        Assert.Throws<ArgumentException>(() => test.MeanFieldBaselineError(new PdeData(new float[3], new float[3], 1, [3])));
    }

    [Fact]
    public void DarcyResidualIsBelowTheTolerance()
    {
        int s = 29;
        var a = Darcy.Threshold(Darcy.RandomField(s, new Random(4)));
        Assert.Contains(3.0, a);
        Assert.Contains(12.0, a);
        var sol = Darcy.Solve(a, s, 1e-10);
        output.WriteLine($"CG: {sol.Iterations} iterations, relative residual {sol.RelativeResidual:G3}");
        Assert.True(sol.RelativeResidual < 1e-10 * 1.01, $"residual {sol.RelativeResidual:G3}");
        Assert.All(sol.U, v => Assert.True(v >= 0)); // maximum principle: f = 1 > 0, u = 0 on the boundary
        for (int i = 0; i < s; i++) Assert.Equal(0.0, sol.U[i]);
    }

    [Fact]
    public void DarcyWithConstantCoefficientMatchesTheSeriesSolutionOfPoisson()
    {
        // -Δu = 1 on the unit square, u = 0 on the boundary:
        // u = Σ_{m, n odd} 16 / (π⁴ m n (m² + n²)) sin(mπx) sin(nπy).
        int s = 41;
        var sol = Darcy.Solve(Enumerable.Repeat(1.0, s * s).ToArray(), s, 1e-12);
        double maxErr = 0;
        for (int i = 0; i < s; i += 4)
            for (int j = 0; j < s; j += 4)
            {
                double x = i / (s - 1.0), y = j / (s - 1.0), u = 0;
                for (int m = 1; m < 200; m += 2)
                    for (int n = 1; n < 200; n += 2)
                        u += 16 / (Math.Pow(Math.PI, 4) * m * n * (m * m + n * n)) * Math.Sin(m * Math.PI * x) * Math.Sin(n * Math.PI * y);
                maxErr = Math.Max(maxErr, Math.Abs(u - sol.U[i * s + j]));
            }
        double center = sol.U[(s / 2) * s + s / 2];
        output.WriteLine($"s = {s}: max |FD - series| = {maxErr:G3}, u(1/2, 1/2) = {center:G6} (exact 0.0736713)");
        // Second-order scheme, h = 1/40: measured 3.6e-5.
        Assert.True(maxErr < 5e-5, $"max error {maxErr:G3}");
        // Scaling a by c scales u by 1/c (a check of the harmonic means on a constant field).
        var sol2 = Darcy.Solve(Enumerable.Repeat(4.0, s * s).ToArray(), s, 1e-12);
        Assert.Equal(center / 4, sol2.U[(s / 2) * s + s / 2], 1e-12);
    }

    [Fact]
    public void CacheRoundTripsAndRejectsAMismatch()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-pde-" + Guid.NewGuid().ToString("N"));
        try
        {
            var path = Path.Combine(dir, "burgers.bin");
            var log = new StringWriter();
            var a = Burgers.Generate(2, 32, seed: 7, preset: BurgersPreset.PaperText.WithSolver(64, 100), cachePath: path, log: log);
            Assert.True(File.Exists(path));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
            var b = Burgers.Generate(2, 32, seed: 7, preset: BurgersPreset.PaperText.WithSolver(64, 100), cachePath: path, log: log);
            Assert.Equal(a.Inputs, b.Inputs);
            Assert.Equal(a.Targets, b.Targets);
            Assert.Contains("loaded 2 pairs from cache", log.ToString());
            var header = new PdeCache.Header("burgers", 2, [32], 8, [0.1, 25, 5, 2, 64, 100, 1.0]);
            Assert.Null(PdeCache.TryRead(path, header, out var why));
            Assert.Contains("seed 7", why);
            Assert.Null(PdeCache.TryRead(path, header with { Seed = 7, Count = 3 }, out why));
            Assert.NotNull(PdeCache.TryRead(path, header with { Seed = 7 }, out _));
            // A truncated file is rejected, and the generator then regenerates and rewrites it.
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..(bytes.Length - 9)]);
            Assert.Null(PdeCache.TryRead(path, header with { Seed = 7 }, out why));
            Assert.Contains("truncated", why);
            var c = Burgers.Generate(2, 32, seed: 7, preset: BurgersPreset.PaperText.WithSolver(64, 100), cachePath: path, log: log);
            Assert.Equal(a.Inputs, c.Inputs);
            Assert.Equal(bytes.Length, new FileInfo(path).Length);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ProgressIsReported()
    {
        var seen = new List<double>();
        var p = new SyncProgress(v => { lock (seen) seen.Add(v); });
        Darcy.Generate(4, 9, seed: 1, progress: p);
        Assert.Equal(4, seen.Count);
        Assert.Equal(1.0, seen.Max());
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }

    [Fact]
    public void BadGeneratorArgumentsAreClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => Burgers.Generate(2, 100, 1));
        Assert.Contains("power-of-two", e.Message);
        e = Assert.Throws<ArgumentException>(() => Burgers.Solve(new double[12], 0.1, 1, 10));
        Assert.Contains("power-of-two", e.Message);
        e = Assert.Throws<ArgumentException>(() => BurgersPreset.Parse("nope"));
        Assert.Contains("paper-text", e.Message);
        e = Assert.Throws<ArgumentException>(() => Burgers.HeatSolution(new double[12], 0.1, 1));
        Assert.Contains("power-of-two", e.Message);
        e = Assert.Throws<ArgumentException>(() => Darcy.Solve(new double[9], 4));
        Assert.Contains("16", e.Message);
        e = Assert.Throws<ArgumentException>(() => Darcy.Solve(new double[9], 3));
        Assert.Contains("positive", e.Message);
    }
}
