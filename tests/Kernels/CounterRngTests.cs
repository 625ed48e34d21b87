using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="CounterRng"/>'s hand-written, backend-independent arithmetic against the exact values in double: the
/// uniform grid, and the logarithm, square root and cosine of the Box-Muller normal, each over every input it can get.
/// </summary>
public class CounterRngTests
{
    /// <summary>Uniform01 is k · 2^-24 for the top 24 bits k; Uniform is fma(high − low, u, low).</summary>
    [Fact]
    public void Uniform_IsTheExactGridPoint()
    {
        for (ulong i = 0; i < 2000; i++)
        {
            ulong k = CounterRng.Bits(7, i) >> 40;
            Assert.Equal(k / 16777216.0, CounterRng.Uniform01(7, i));
            Assert.Equal(MathF.FusedMultiplyAdd(2.6f, k / 16777216f, -0.3f), CounterRng.Uniform(7, i, -0.3f, 2.3f));
        }
    }

    /// <summary>
    /// Inputs k in [1, 2^24] to check: every 13th (a stride prime to every power of two, so all mantissa patterns
    /// mix), plus every k within 300 of a power of two, where the reductions change branch.
    /// </summary>
    private static IEnumerable<int> Grid24()
    {
        for (int k = 1; k <= 1 << 24; k += 13) yield return k;
        for (int p = 0; p <= 24; p++)
            for (int k = Math.Max(1, (1 << p) - 300); k <= Math.Min(1 << 24, (1 << p) + 300); k++) yield return k;
    }

    /// <summary>ln(k · 2^-24) over <see cref="Grid24"/>: within 1.5e-7 · max(1, |ln|) (ln ranges over [−16.6, 0]); ln 1 = 0.</summary>
    [Fact]
    public void Log_AcrossTheGrid()
    {
        double worst = 0;
        foreach (int k in Grid24())
        {
            double exact = Math.Log(k / 16777216.0);
            worst = Math.Max(worst, Math.Abs(CounterRng.LogOfScaled(k) - exact) / Math.Max(1, Math.Abs(exact)));
        }
        Assert.True(worst < 1.5e-7, $"worst error {worst:G3}");
        Assert.Equal(0f, CounterRng.LogOfScaled(1 << 24));
    }

    /// <summary>cos(2π k · 2^-24) over <see cref="Grid24"/> and the octant edges: within 1.2e-7 absolute; exact at the quarter turns.</summary>
    [Fact]
    public void Cos_AcrossTheGrid()
    {
        double worst = 0;
        var ks = Grid24().Select(k => k & 0xFFFFFF)
            .Concat(Enumerable.Range(0, 8).SelectMany(o => Enumerable.Range((o << 21) - 300, 601)).Select(k => k & 0xFFFFFF));
        foreach (int k in ks)
            worst = Math.Max(worst, Math.Abs(CounterRng.CosOfTurn(k) - Math.Cos(2 * Math.PI * k / 16777216.0)));
        Assert.True(worst < 1.2e-7, $"worst error {worst:G3}");
        Assert.Equal(1f, CounterRng.CosOfTurn(0));
        Assert.Equal(-1f, CounterRng.CosOfTurn(1 << 23));
        Assert.Equal(0f, Math.Abs(CounterRng.CosOfTurn(1 << 22)));
    }

    /// <summary>√w over the radii Box-Muller needs (0 to 48 ln 2 and beyond): within one ulp; √0 = 0.</summary>
    [Fact]
    public void Sqrt_WithinAnUlp()
    {
        Assert.Equal(0f, CounterRng.SqrtNonNegative(0f));
        for (int i = 1; i < 400_000; i++)
        {
            float w = i * 1.01e-4f;
            float r = CounterRng.SqrtNonNegative(w);
            float exact = MathF.Sqrt(w);
            if (Math.Abs(r - exact) > MathF.BitIncrement(exact) - exact) Assert.Fail($"sqrt({w}) = {r}, exact {exact}");
        }
    }

    /// <summary>Normal(seed, i) is sqrt(−2 ln u1) cos(2π u2) of its two grid uniforms within 1e-6 · (1 + |z|).</summary>
    [Fact]
    public void Normal_IsBoxMullerOfItsUniforms()
    {
        double worst = 0;
        for (ulong i = 0; i < 200_000; i++)
        {
            double u1 = ((CounterRng.Bits(3, 2 * i) >> 40) + 1) / 16777216.0;
            double u2 = (CounterRng.Bits(3, 2 * i + 1) >> 40) / 16777216.0;
            double exact = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            worst = Math.Max(worst, Math.Abs(CounterRng.Normal(3, i) - exact) / (1 + Math.Abs(exact)));
        }
        Assert.True(worst < 1e-6, $"worst error {worst:G3} · (1 + |z|)");
    }
}
