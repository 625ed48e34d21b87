using Engine.Kernels;

namespace Engine.Spn;

/// <summary>
/// A small random stream for the samplers (SplitMix64 over a counter): a value type, so each worker thread or each
/// datum gets its own stream from (seed, stream index) and results do not depend on how work is split.
/// </summary>
internal struct SamplerRandom
{
    private ulong state;

    public SamplerRandom(ulong seed, ulong stream) => state = CounterRng.Bits(seed, stream);

    /// <summary>64 uniform bits.</summary>
    public ulong NextBits()
    {
        state += 0x9E3779B97F4A7C15UL;
        ulong z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1), 53 bits.</summary>
    public double NextDouble() => (NextBits() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in (0, 1], so its logarithm is finite.</summary>
    public double NextOpen() => ((NextBits() >> 11) + 1) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Box-Muller, one of the pair).</summary>
    public double NextGaussian() => Math.Sqrt(-2 * Math.Log(NextOpen())) * Math.Cos(2 * Math.PI * NextDouble());

    /// <summary>
    /// ln of a Gamma(shape, 1) draw (Marsaglia and Tsang). Returned in log space because a draw with a tiny shape
    /// underflows double precision: for shape &lt; 1, G(a) = G(a + 1) · U^(1/a), so ln G = ln G(a + 1) + ln U / a.
    /// </summary>
    public double NextLogGamma(double shape)
    {
        if (shape < 1) return NextLogGamma(shape + 1) + Math.Log(NextOpen()) / shape;
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x = NextGaussian();
            double v = 1 + c * x;
            if (v <= 0) continue;
            v = v * v * v;
            double u = NextOpen();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return Math.Log(d * v);
        }
    }

    /// <summary>
    /// A Dirichlet draw in log space: logW[k] = ln w_k with w ~ Dirichlet(counts[k] + concentration[k]).
    /// </summary>
    public void NextLogDirichlet(ReadOnlySpan<int> counts, ReadOnlySpan<double> concentration, Span<double> logW)
    {
        double max = double.NegativeInfinity;
        for (int k = 0; k < logW.Length; k++)
        {
            logW[k] = NextLogGamma(counts[k] + concentration[k]);
            if (logW[k] > max) max = logW[k];
        }
        double sum = 0;
        for (int k = 0; k < logW.Length; k++) sum += Math.Exp(logW[k] - max);
        double norm = max + Math.Log(sum);
        for (int k = 0; k < logW.Length; k++) logW[k] -= norm;
    }
}
