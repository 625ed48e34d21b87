using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Kernels.Elementwise;

/// <summary>
/// The float erf shared by <see cref="ScalarMath.Erf"/> and <c>VecMath.Erf</c>: a piecewise polynomial of degree
/// <see cref="Degree"/> on the eight intervals [j/2, (j+1)/2] of |x| (j = 0..7), in r = |x| - j/2, with no exp and
/// no division; the vector form reads each coefficient of its lanes' intervals with one 8-entry lookup (no branch, no
/// blend of two formulas), the scalar form through <see cref="Interval"/>.
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

    // JjCk is coefficient ck of interval j (constants, so that the vector tables fold into the code).
    internal const float J0C0 = 0f, J0C1 = 0.12837918f, J0C2 = -2.3024E-06f, J0C3 = -0.3760619f,
        J0C4 = -0.0006878938f, J0C5 = 0.11632538f, J0C6 = -0.008762179f, J0C7 = -0.017493883f;
    internal const float J1C0 = 0.5204999f, J1C1 = 0.8787821f, J1C2 = -0.4393828f, J1C3 = -0.14651465f,
        J1C4 = 0.18307745f, J1C5 = 0.0086044045f, J1C6 = -0.055844896f, J1C7 = 0.016798459f;
    internal const float J2C0 = 0.8427008f, J2C1 = 0.41510838f, J2C2 = -0.41512305f, J2C3 = 0.13846928f,
        J2C4 = 0.06904918f, J2C5 = -0.07038163f, J2C6 = 0.010329422f, J2C7 = 0.005725911f;
    internal const float J3C0 = 0.96610516f, J3C1 = 0.11892906f, J3C2 = -0.1783691f, J3C3 = 0.13850388f,
        J3C4 = -0.043396354f, J3C5 = -0.018025242f, J3C6 = 0.0238086f, J3C7 = -0.008266957f;
    internal const float J4C0 = 0.9953223f, J4C1 = 0.02066536f, J4C2 = -0.04129955f, J4C3 = 0.047904447f,
        J4C4 = -0.03295839f, J4C5 = 0.009520161f, J4C6 = 0.004299207f, J4C7 = -0.003823331f;
    internal const float J5C0 = 0.999593f, J5C1 = 0.0021804105f, J5C2 = -0.005491601f, J5C3 = 0.008786714f,
        J5C4 = -0.010754731f, J5C5 = 0.011696179f, J5C6 = -0.01025176f, J5C7 = 0.0046203444f;
    internal const float J6C0 = 0.9999779f, J6C1 = 0.00014095548f, J6C2 = -0.00045447543f, J6C3 = 0.0011380143f,
        J6C4 = -0.0027444158f, J6C5 = 0.005441164f, J6C6 = -0.0065627536f, J6C7 = 0.0033655958f;
    internal const float J7C0 = 0.9999993f, J7C1 = 3.3203048E-06f, J7C2 = 2.601778E-05f, J7C3 = -0.00038557526f,
        J7C4 = 0.002024935f, J7C5 = -0.0054010167f, J7C6 = 0.007246247f, J7C7 = -0.0038744297f;

    /// <summary>
    /// The coefficients c0..c7 (constant term first) of interval <paramref name="j"/> in 0..7. A switch, not a table,
    /// so that ILGPU compiles it to constants and branches (a static array would become per-thread local memory).
    /// </summary>
    public static void Interval(int j, out float c0, out float c1, out float c2, out float c3, out float c4, out float c5, out float c6, out float c7)
    {
        switch (j)
        {
            case 0:
                c0 = J0C0; c1 = J0C1; c2 = J0C2; c3 = J0C3;
                c4 = J0C4; c5 = J0C5; c6 = J0C6; c7 = J0C7;
                return;
            case 1:
                c0 = J1C0; c1 = J1C1; c2 = J1C2; c3 = J1C3;
                c4 = J1C4; c5 = J1C5; c6 = J1C6; c7 = J1C7;
                return;
            case 2:
                c0 = J2C0; c1 = J2C1; c2 = J2C2; c3 = J2C3;
                c4 = J2C4; c5 = J2C5; c6 = J2C6; c7 = J2C7;
                return;
            case 3:
                c0 = J3C0; c1 = J3C1; c2 = J3C2; c3 = J3C3;
                c4 = J3C4; c5 = J3C5; c6 = J3C6; c7 = J3C7;
                return;
            case 4:
                c0 = J4C0; c1 = J4C1; c2 = J4C2; c3 = J4C3;
                c4 = J4C4; c5 = J4C5; c6 = J4C6; c7 = J4C7;
                return;
            case 5:
                c0 = J5C0; c1 = J5C1; c2 = J5C2; c3 = J5C3;
                c4 = J5C4; c5 = J5C5; c6 = J5C6; c7 = J5C7;
                return;
            case 6:
                c0 = J6C0; c1 = J6C1; c2 = J6C2; c3 = J6C3;
                c4 = J6C4; c5 = J6C5; c6 = J6C6; c7 = J6C7;
                return;
            default:
                c0 = J7C0; c1 = J7C1; c2 = J7C2; c3 = J7C3;
                c4 = J7C4; c5 = J7C5; c6 = J7C6; c7 = J7C7;
                return;
        }
    }

    /// <summary>Coefficient <paramref name="k"/> of the eight intervals, interval 0 first: the vector form's lookup table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Column(int k) => k switch
    {
        0 => Vector256.Create(J0C0, J1C0, J2C0, J3C0, J4C0, J5C0, J6C0, J7C0),
        1 => Vector256.Create(J0C1, J1C1, J2C1, J3C1, J4C1, J5C1, J6C1, J7C1),
        2 => Vector256.Create(J0C2, J1C2, J2C2, J3C2, J4C2, J5C2, J6C2, J7C2),
        3 => Vector256.Create(J0C3, J1C3, J2C3, J3C3, J4C3, J5C3, J6C3, J7C3),
        4 => Vector256.Create(J0C4, J1C4, J2C4, J3C4, J4C4, J5C4, J6C4, J7C4),
        5 => Vector256.Create(J0C5, J1C5, J2C5, J3C5, J4C5, J5C5, J6C5, J7C5),
        6 => Vector256.Create(J0C6, J1C6, J2C6, J3C6, J4C6, J5C6, J6C6, J7C6),
        _ => Vector256.Create(J0C7, J1C7, J2C7, J3C7, J4C7, J5C7, J6C7, J7C7),
    };
}
