using Engine.Kernels;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// The float erf (<see cref="ScalarMath.Erf"/>, what the ILGPU kernels and host code run, and <see cref="VecMath.Erf{TV}"/>,
/// what the CPU kernels run at every width) against <see cref="HostReference.Erf"/> in double: within 2 ulp of the
/// result or 2e-7, whichever is larger, on a dense grid of [-6, 6] and on edge values; exact at the special values;
/// the scalar form and every vector width bit for bit on all of them.
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
    /// A grid of [-6, 6] in steps of 2^-16 (786K points), the interval boundaries (|x| = j/2), the clamp and their
    /// float neighbours, tiny and subnormal magnitudes, and large ones.
    /// </summary>
    private static IEnumerable<float> Inputs()
    {
        for (int i = -6 * 65536; i <= 6 * 65536; i++) yield return i / 65536f;
        float[] edges = [.. Enumerable.Range(1, 8).Select(j => j / 2f), ErfFit.Last, 1e-38f, 1e-30f, 1e-10f, 3e-4f, float.Epsilon, 1e-40f,
            7.5f, 1e30f, float.MaxValue];
        foreach (var e in edges)
            foreach (var v in new[] { e, MathF.BitDecrement(e), MathF.BitIncrement(e) })
            {
                yield return v;
                yield return -v;
            }
    }

    /// <summary>The largest error on the inputs, in units of the bound max(2 ulp(erf x), 2e-7): at most 1; and at most one ulp.</summary>
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
        // The fit's own claim (ErfFit, ScalarMath.Erf), tighter than the bound: within one ulp everywhere.
        Assert.True(worstUlp <= 1, $"{form} erf: largest error {worstUlp:F3} ulp");
    }

    /// <summary>±0, ±∞ and NaN map to ±0, ±1 and NaN; from the clamp (the float below 4) on, erf is exactly ±1.</summary>
    [Theory, MemberData(nameof(FormNames))]
    public void Erf_SpecialValues(string form)
    {
        var erf = Forms[form];
        Assert.Equal(0, BitConverter.SingleToInt32Bits(erf(0f)));
        Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(erf(-0f)));
        Assert.True(float.IsNaN(erf(float.NaN)), $"{form} erf(NaN) = {erf(float.NaN)}");
        foreach (var x in new[] { ErfFit.Last, 4f, 4.5f, 10f, 1e20f, float.MaxValue, float.PositiveInfinity })
        {
            Assert.Equal(1f, erf(x));
            Assert.Equal(-1f, erf(-x));
        }
        // erf(x) = 2x/√π (1 - x²/3 + ...): 1.128 times the smallest subnormal rounds back to it.
        Assert.Equal(float.Epsilon, erf(float.Epsilon));
    }

    /// <summary>
    /// The scalar form (the ILGPU kernels' and host code's) and the lanes of every vector width agree bit for bit on
    /// every input (NaN with NaN): the same fused multiply-adds in the same order, the same table entries.
    /// </summary>
    [Fact]
    public void ScalarFormAndEveryWidth_AgreeBitForBit()
    {
        var x = Inputs().Append(float.NaN).Append(float.PositiveInfinity).Append(float.NegativeInfinity).ToList();
        while (x.Count % 16 != 0) x.Add(0.25f * x.Count);
        float[] input = [.. x];
        var scalar = input.Select(ScalarMath.Erf).ToArray();
        Same(scalar, input.Select(v => (float)VecMath.Erf<Vec1>(v)).ToArray(), input, "one lane");
        Same(scalar, Lanes<Vec128>(input), input, "128 bits");
        Same(scalar, Lanes<Vec256>(input), input, "256 bits");
        Same(scalar, Lanes<Vec512>(input), input, "512 bits");
    }

    private static unsafe float[] Lanes<TV>(float[] x) where TV : unmanaged, IFloatVector<TV>
    {
        var y = new float[x.Length];
        fixed (float* px = x, py = y)
            for (int i = 0; i < x.Length; i += TV.Count) TV.Store(VecMath.Erf(TV.Load(px + i)), py + i);
        return y;
    }

    private static void Same(float[] expected, float[] actual, float[] x, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(expected[i]) && float.IsNaN(actual[i])) continue;
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"erf({x[i]:R}): {what} gives {actual[i]:R}, the scalar form {expected[i]:R}");
        }
    }

    private static double Ulp(float y) => MathF.BitIncrement(MathF.Abs(y)) - MathF.Abs(y);
}
