namespace Engine.Data.Pde;

/// <summary>
/// A named setting of the Burgers data generator: the viscosity, the Gaussian random field of the initial conditions,
/// and the solver grid and time steps that resolve the solutions.
/// </summary>
/// <remarks>
/// <para>The initial conditions follow the FNO authors' generator <c>GRF1.m</c> (neuraloperator repository,
/// <c>data_generation/burgers/</c>), a draw from N(0, σ²(-Δ + τ²I)^-γ) on the periodic unit interval. The script sets
/// <c>my_eigs = sqrt(2)*(abs(sigma).*((2*pi.*(1:N)').^2 + tau^2).^(-gamma/2))</c> and
/// u = Σ_k α_k cos 2πkx + β_k sin 2πkx with α_k, β_k ~ my_eigs(k)·N(0, 1) (its trigonometric coefficients are α/2 and
/// ∓β/2 at ±k), so each cos and sin coefficient has standard deviation
/// <c>√2 · σ · ((2πk)² + τ²)^(-γ/2)</c> (<see cref="ModeStandardDeviation"/>); mode 0 (the mean) is zero.</para>
/// <para>The equation is the one the authors' <c>burgers1.m</c> integrates with chebfun's <c>spin</c>:
/// u_t = ν u_xx - (u²/2)_x on [0, 1) with periodic boundaries, from t = 0 to 1.</para>
/// </remarks>
/// <param name="Name">Name used on the command line and in the JSON.</param>
/// <param name="Viscosity">ν.</param>
/// <param name="Sigma">σ of the covariance σ²(-Δ + τ²I)^-γ.</param>
/// <param name="Tau">τ.</param>
/// <param name="Gamma">γ.</param>
/// <param name="SolverGrid">Points of the pseudo-spectral solver (a power of two).</param>
/// <param name="Steps">Time steps to t = 1.</param>
/// <param name="Source">Where the setting comes from, for the JSON and the README.</param>
public sealed record BurgersPreset(string Name, double Viscosity, double Sigma, double Tau, double Gamma, int SolverGrid, int Steps,
    string Source)
{
    /// <summary>
    /// The FNO paper's text (Li et al. 2021, §5.1): u0 ~ N(0, 625(-Δ + 25I)^-2), ν = 0.1, i.e. σ = 25, τ = 5, γ = 2 in the
    /// authors' convention (with its √2). ν = 0.1 damps mode k by e^{-4π²νk²} by t = 1, so a 512-point solve with
    /// 250 steps is converged to 1e-6 relative (tested against 2048 points and 1000 steps).
    /// </summary>
    public static readonly BurgersPreset PaperText = new("paper-text", 0.1, 25, 5, 2, 512, 250,
        "FNO paper text (Li et al. 2021, sec. 5.1): u0 ~ N(0, 625(-Laplacian + 25 I)^-2), nu = 0.1, in the authors' GRF1.m convention");

    /// <summary>
    /// The authors' generating script <c>gen_burgers1.m</c>: viscosity 1/1000, GRF γ = 2.5, τ = 7, σ = 7² = 49 (the
    /// parameters of their separately published ν = 1e-3 data set). Solutions develop steep fronts, so the solver runs
    /// on 1024 points (341 dealiased modes) with 2000 steps of 5e-4; tested against 4096 points and 8000 steps.
    /// </summary>
    public static readonly BurgersPreset ScriptV1000 = new("script-v1000", 1e-3, 49, 7, 2.5, 1024, 2000,
        "FNO authors' data_generation/burgers/gen_burgers1.m: visc = 1/1000, GRF gamma = 2.5, tau = 7, sigma = 49");

    /// <summary>Every preset by name.</summary>
    public static IReadOnlyList<BurgersPreset> All { get; } = [PaperText, ScriptV1000];

    /// <summary>The preset called <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No preset has that name.</exception>
    public static BurgersPreset Parse(string name) =>
        All.FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Burgers: unknown preset '{name}'; presets: {string.Join(", ", All.Select(p => p.Name))}.");

    /// <summary>Standard deviation √2·σ·((2πk)² + τ²)^(-γ/2) of the cos and of the sin coefficient of mode k ≥ 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">k &lt; 1.</exception>
    public double ModeStandardDeviation(int k)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), $"BurgersPreset.ModeStandardDeviation: mode must be >= 1, got {k}.");
        double w = 2 * Math.PI * k;
        return Math.Sqrt(2) * Sigma * Math.Pow(w * w + Tau * Tau, -Gamma / 2);
    }

    /// <summary>The same preset with another solver grid and step count (for convergence checks).</summary>
    public BurgersPreset WithSolver(int solverGrid, int steps) => this with { SolverGrid = solverGrid, Steps = steps };
}
