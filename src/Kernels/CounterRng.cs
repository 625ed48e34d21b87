namespace Engine.Kernels;

/// <summary>
/// Counter-based random numbers: element i of a stream with seed s is a pure function of (s, i).
/// Every kernel set computes the same bits, results do not depend on how work is split over threads,
/// and a seed reproduces a tensor exactly. The mixer is SplitMix64's finaliser.
/// </summary>
public static class CounterRng
{
    /// <summary>64 well-mixed bits for (seed, index).</summary>
    public static ulong Bits(ulong seed, ulong index)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + (index + 1UL) * 0xD1B54A32D192ED03UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 bits of resolution.</summary>
    public static float Uniform01(ulong seed, ulong index) => (Bits(seed, index) >> 40) * (1f / 16777216f);

    /// <summary>Uniform in [low, high).</summary>
    public static float Uniform(ulong seed, ulong index, float low, float high) => low + (high - low) * Uniform01(seed, index);

    /// <summary>Standard normal by Box-Muller from the uniform pair (2i, 2i+1).</summary>
    public static float Normal(ulong seed, ulong index)
    {
        // u1 in (0, 1] keeps the log finite.
        float u1 = ((Bits(seed, 2UL * index) >> 40) + 1UL) * (1f / 16777216f);
        float u2 = Uniform01(seed, 2UL * index + 1UL);
        return MathF.Sqrt(-2f * MathF.Log(u1)) * MathF.Cos(6.2831853071795865f * u2);
    }
}
