namespace Engine.Spn;

/// <summary>ln Γ and ψ (digamma) in double precision, for the collapsed likelihoods and empirical Bayes.</summary>
internal static class SpecialFunctions
{
    // Lanczos approximation, g = 7, n = 9 (relative error about 1e-15 for x > 0).
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    private const double HalfLog2Pi = 0.91893853320467274178;

    /// <summary>ln Γ(x) for x &gt; 0.</summary>
    public static double LogGamma(double x)
    {
        if (x < 0.5)
            // Reflection keeps the series accurate near 0: Γ(x) Γ(1 - x) = π / sin(πx).
            return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double a = Lanczos[0];
        double t = x + 7.5;
        for (int i = 1; i < 9; i++) a += Lanczos[i] / (x + i);
        return HalfLog2Pi + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>ψ(x) = d ln Γ(x) / dx for x &gt; 0.</summary>
    public static double Digamma(double x)
    {
        double result = 0;
        // Recurrence ψ(x) = ψ(x + 1) - 1/x up to where the asymptotic series is accurate to double precision.
        while (x < 10)
        {
            result -= 1 / x;
            x += 1;
        }
        double f = 1 / (x * x);
        return result + Math.Log(x) - 0.5 / x
            - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))));
    }

    /// <summary>ln Γ(x + n) - ln Γ(x), the log rising factorial, for x &gt; 0 and n ≥ 0.</summary>
    public static double LogRising(double x, int n) => n == 0 ? 0 : LogGamma(x + n) - LogGamma(x);
}
