using Engine.Kernels;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// The float erf (<see cref="ScalarMath.Erf"/>, what the ILGPU kernels and host code run, and <see cref="VecMath.Erf{TV}"/>,
/// what the CPU kernels run at every width: <see cref="VectorLaneTests"/> checks its lanes against the one-lane form)
/// against <see cref="HostReference.Erf"/> in double: within 2 ulp of the result or 2e-7, whichever is larger, on a
/// dense grid of [-6, 6] and on edge values; exact at the special values.
/// </summary>
public sealed class ErfAccuracyTests
{
    /// <summary>The two forms under test, by name.</summary>
    private static readonly Dictionary<string, Func<float, float>> Forms = new()
    {
        ["scalar"] = ScalarMath.Erf,
        ["vector lane"] = x => VecMath.Erf<Vec1>(x),
    };

    /// <summary>The forms as theory rows.</summary>
    public static TheoryData<string> FormNames() => new(Forms.Keys);

    /// <summary>
    /// A grid of [-6, 6] in steps of 2^-16 (786K points), the branch boundaries (|x| = 1 and 4) and their float
    /// neighbours, tiny and subnormal magnitudes, and large ones.
    /// </summary>
    private static IEnumerable<float> Inputs()
    {
        for (int i = -6 * 65536; i <= 6 * 65536; i++) yield return i / 65536f;
        float[] edges = [ErfFit.Split, ErfFit.Flat, 1e-38f, 1e-30f, 1e-10f, 3e-4f, float.Epsilon, 1e-40f, 7.5f, 1e30f, float.MaxValue];
        foreach (var e in edges)
            foreach (var v in new[] { e, MathF.BitDecrement(e), MathF.BitIncrement(e) })
            {
                yield return v;
                yield return -v;
            }
    }

    /// <summary>The largest error on the inputs, in units of the bound max(2 ulp(erf x), 2e-7): at most 1.</summary>
    [Theory, MemberData(nameof(FormNames))]
    public void Erf_IsWithinTwoUlpOr2e7(string form)
    {
        var erf = Forms[form];
        double worst = 0, worstUlp = 0;
        float at = 0;
        foreach (var x in Inputs())
        {
            double reference = HostReference.Erf(x);
            double error = Math.Abs(erf(x) - reference);
            double ulp = Ulp((float)reference);
            double ratio = error / Math.Max(2 * ulp, 2e-7);
            worstUlp = Math.Max(worstUlp, error / ulp);
            if (ratio > worst) (worst, at) = (ratio, x);
        }
        Assert.True(worst <= 1, $"{form} erf: error {worst:F3} times the bound at x = {at:R} (largest error {worstUlp:F2} ulp)");
    }

    /// <summary>±0, ±∞ and NaN map to ±0, ±1 and NaN; beyond |x| = 4, erf is exactly ±1.</summary>
    [Theory, MemberData(nameof(FormNames))]
    public void Erf_SpecialValues(string form)
    {
        var erf = Forms[form];
        Assert.Equal(0, BitConverter.SingleToInt32Bits(erf(0f)));
        Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(erf(-0f)));
        Assert.True(float.IsNaN(erf(float.NaN)), $"{form} erf(NaN) = {erf(float.NaN)}");
        foreach (var x in new[] { ErfFit.Flat, 4.5f, 10f, 1e20f, float.MaxValue, float.PositiveInfinity })
        {
            Assert.Equal(1f, erf(x));
            Assert.Equal(-1f, erf(-x));
        }
        // erf(x) = 2x/√π (1 - x²/3 + ...): 1.128 times the smallest subnormal rounds back to it.
        Assert.Equal(float.Epsilon, erf(float.Epsilon));
    }

    /// <summary>
    /// The scalar form and a vector lane agree bit for bit below |x| = 1 (the same fused multiply-adds) and within
    /// one ulp above, where their exponentials (<see cref="MathF.Exp"/>, the vector exp) may differ in the last bit.
    /// </summary>
    [Fact]
    public void ScalarAndVectorForms_Agree()
    {
        foreach (var x in Inputs())
        {
            float s = ScalarMath.Erf(x), v = VecMath.Erf<Vec1>(x);
            if (MathF.Abs(x) < ErfFit.Split)
                Assert.True(BitConverter.SingleToInt32Bits(s) == BitConverter.SingleToInt32Bits(v), $"erf({x:R}): scalar {s:R}, vector lane {v:R}");
            else
                Assert.True(Math.Abs(s - v) <= Ulp(s), $"erf({x:R}): scalar {s:R}, vector lane {v:R}");
        }
    }

    private static double Ulp(float y) => MathF.BitIncrement(MathF.Abs(y)) - MathF.Abs(y);
}
