namespace Engine.Kernels.Elementwise;

/// <summary>
/// The float erf shared by <see cref="ScalarMath.Erf"/> and <c>VecMath.Erf</c>: two polynomials fitted (weighted
/// least squares iterated towards minimax, coefficients rounded to float) so that each branch is a short chain of
/// fused multiply-adds and at most one exp, with no division.
/// <list type="bullet">
/// <item>|x| &lt; <see cref="Split"/>: erf(x) = x + x·P(x²), P of degree 5 fitting erf(x)/x - 1 with relative weight
/// (the final fused multiply-add keeps tiny and subnormal x exact to the last bit).</item>
/// <item>above: erf(|x|) = 1 - e^Q(t), t = min(|x|, <see cref="Flat"/>), Q of degree 5 fitting ln erfc(t) over
/// [1, 4], weighted by erfc(t) (the weight of Q's error in erf); Q stays in [-18, -1.8], inside exp's range without
/// its clamp. At t = 4, erfc is 1.5e-8, under half an ulp of 1, so clamping there makes erf exactly ±1 beyond, ±∞
/// included.</item>
/// </list>
/// Measured against a double erf on a dense grid of [-6, 6] plus tiny, subnormal and large values: at most 1.5 ulp,
/// absolute error at most 1e-7 (tests/Kernels/ErfAccuracyTests.cs).
/// </summary>
internal static class ErfFit
{
    /// <summary>Where the exp form takes over from the odd polynomial.</summary>
    public const float Split = 1f;
    /// <summary>Beyond this |x|, erf rounds to ±1.</summary>
    public const float Flat = 4f;

    /// <summary>P's coefficients, constant term first (P(0) = 2/√π - 1).</summary>
    public const float P0 = 0.12837912f, P1 = -0.37612325f, P2 = 0.1128018f, P3 = -0.02671131f, P4 = 0.004917548f,
        P5 = -0.00056314096f;

    /// <summary>Q's coefficients, constant term first.</summary>
    public const float Q0 = -0.0026716036f, Q1 = -1.1174388f, Q2 = -0.65448844f, Q3 = -0.088634536f, Q4 = 0.014778244f,
        Q5 = -0.0011504388f;
}
