namespace Engine.Kernels.Elementwise;

/// <summary>
/// The float erf shared by <see cref="ScalarMath.Erf"/> and <c>VecMath.Erf</c>: a piecewise polynomial of degree
/// <see cref="Degree"/> on the eight intervals [j/2, (j+1)/2] of |x| (j = 0..7), in r = |x| - j/2, with no exp, no
/// division and no branch: the vector form reads each coefficient of its lanes' intervals with one 8-entry lookup.
/// <list type="bullet">
/// <item>Evaluation, in this order in both forms: q = ((c7·r + c6)·r² + (c5·r + c4))·r² + (c3·r + c2), then
/// erf(|x|) = (q·r + c1)·r + b, every step a fused multiply-add, with b = c0 except on the first interval, where
/// b = r and c0 = 0: the linear term r is added exactly, as in x + x·P(x²), so tiny and subnormal x keep their last
/// bit (erf(ε) = ε) and the polynomial there fits erf(r) - r. The sign of x is or-ed in last.</item>
/// <item>j = round(2|x| - 1/2) (ties to even, so a boundary |x| = j/2 lands at one end of a neighbouring interval,
/// where both polynomials hold), read from the low bits of 2|x| - 1/2 + <see cref="IndexBias"/>; r is exact.</item>
/// <item>|x| is clamped to <see cref="Last"/>, the float below 4, where the last polynomial rounds to 1 (erfc(4) is
/// 1.5e-8, under half an ulp of 1): erf is exactly ±1 from there on, ±∞ included.</item>
/// </list>
/// Fitted by tools/erf-fit/erf-fit.cs (<c>dotnet run -c Release tools/erf-fit/erf-fit.cs 7</c>): Lawson-iterated
/// least squares in double towards minimax, error in ulp on the first interval and absolute on the others (where erf
/// lies in [0.52, 1) and one ulp is 2^-24 throughout), coefficients rounded to float one at a time with a refit of the
/// rest. Measured on every float in [2^-20, 4] against a double erf: at most 0.98 ulp, absolute error at most 5.9e-8
/// (tests/Kernels/ErfAccuracyTests.cs checks a dense grid and the edges).
/// </summary>
internal static class ErfFit
{
    /// <summary>The polynomials' degree: eight coefficients per interval.</summary>
    public const int Degree = 7;

    /// <summary>|x| is clamped here (the float below 4); the last polynomial gives exactly 1 at it.</summary>
    public const float Last = 3.9999998f;

    /// <summary>1.5·2^23: adding it to a float in [-0.5, 8) rounds to an integer j held in the low mantissa bits.</summary>
    public const float IndexBias = 12582912f;

    /// <summary>
    /// The coefficients c0..c7 (constant term first) of interval <paramref name="j"/> in 0..7. A switch, not a table,
    /// so that ILGPU compiles it to constants and branches (a static array would become per-thread local memory).
    /// </summary>
    public static void Interval(int j, out float c0, out float c1, out float c2, out float c3, out float c4, out float c5, out float c6, out float c7)
    {
        switch (j)
        {
            case 0:
                c0 = 0f; c1 = 0.12837918f; c2 = -2.3024E-06f; c3 = -0.3760619f;
                c4 = -0.0006878938f; c5 = 0.11632538f; c6 = -0.008762179f; c7 = -0.017493883f;
                return;
            case 1:
                c0 = 0.5204999f; c1 = 0.8787821f; c2 = -0.4393828f; c3 = -0.14651465f;
                c4 = 0.18307745f; c5 = 0.0086044045f; c6 = -0.055844896f; c7 = 0.016798459f;
                return;
            case 2:
                c0 = 0.8427008f; c1 = 0.41510838f; c2 = -0.41512305f; c3 = 0.13846928f;
                c4 = 0.06904918f; c5 = -0.07038163f; c6 = 0.010329422f; c7 = 0.005725911f;
                return;
            case 3:
                c0 = 0.96610516f; c1 = 0.11892906f; c2 = -0.1783691f; c3 = 0.13850388f;
                c4 = -0.043396354f; c5 = -0.018025242f; c6 = 0.0238086f; c7 = -0.008266957f;
                return;
            case 4:
                c0 = 0.9953223f; c1 = 0.02066536f; c2 = -0.04129955f; c3 = 0.047904447f;
                c4 = -0.03295839f; c5 = 0.009520161f; c6 = 0.004299207f; c7 = -0.003823331f;
                return;
            case 5:
                c0 = 0.999593f; c1 = 0.0021804105f; c2 = -0.005491601f; c3 = 0.008786714f;
                c4 = -0.010754731f; c5 = 0.011696179f; c6 = -0.01025176f; c7 = 0.0046203444f;
                return;
            case 6:
                c0 = 0.9999779f; c1 = 0.00014095548f; c2 = -0.00045447543f; c3 = 0.0011380143f;
                c4 = -0.0027444158f; c5 = 0.005441164f; c6 = -0.0065627536f; c7 = 0.0033655958f;
                return;
            default:
                c0 = 0.9999993f; c1 = 3.3203048E-06f; c2 = 2.601778E-05f; c3 = -0.00038557526f;
                c4 = 0.002024935f; c5 = -0.0054010167f; c6 = 0.007246247f; c7 = -0.0038744297f;
                return;
        }
    }

    /// <summary>c0..c7 of interval <paramref name="j"/> as an array (host code: the vector tables and the tests).</summary>
    public static float[] Row(int j)
    {
        Interval(j, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
        return [c0, c1, c2, c3, c4, c5, c6, c7];
    }
}
