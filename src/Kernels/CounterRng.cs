namespace Engine.Kernels;

/// <summary>
/// Counter-based random numbers: element i of a stream with seed s is a pure function of (s, i).
/// Every kernel set computes the same bits, results do not depend on how work is split over threads,
/// and a seed reproduces a tensor exactly. The mixer is SplitMix64's finaliser.
/// </summary>
/// <remarks>
/// Same bits on every device: the integer mixing is exact everywhere; the conversion to float goes through a 32-bit
/// integer (exact below 2^24, and no fp64, which OpenCL devices may lack); every product that feeds a sum is one
/// fused multiply-add (<see cref="KernelMath.Fma"/>), so no compiler can contract or split it differently; and the
/// normal deviate uses no library function: its logarithm, square root and cosine are written here with +, −, ×,
/// fused multiply-adds and bit operations only (no division or square-root instruction, which OpenCL does not round
/// correctly by default). Accuracy: a few ulp against the exact Box-Muller value.
/// </remarks>
public static class CounterRng
{
    /// <summary>2^-24: the spacing of the uniform grid.</summary>
    private const float Ulp24 = 1f / 16777216f;

    /// <summary>64 well-mixed bits for (seed, index).</summary>
    public static ulong Bits(ulong seed, ulong index)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + (index + 1UL) * 0xD1B54A32D192ED03UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The top 24 bits of <see cref="Bits"/> as an integer in [0, 2^24).</summary>
    private static int Bits24(ulong seed, ulong index) => (int)(Bits(seed, index) >> 40);

    /// <summary>Uniform in [0, 1) with 24 bits of resolution: k · 2^-24 for the integer k = top 24 bits.</summary>
    public static float Uniform01(ulong seed, ulong index) => Bits24(seed, index) * Ulp24;

    /// <summary>Uniform in [low, high): fma(high − low, u, low) with u = <see cref="Uniform01"/>.</summary>
    public static float Uniform(ulong seed, ulong index, float low, float high) =>
        KernelMath.Fma(high - low, Uniform01(seed, index), low);

    /// <summary>
    /// Standard normal by Box-Muller from the uniform pair (2i, 2i+1): sqrt(−2 ln u1) · cos(2π u2) with
    /// u1 = (k1 + 1) · 2^-24 in (0, 1] (the log stays finite) and u2 = k2 · 2^-24.
    /// </summary>
    public static float Normal(ulong seed, ulong index)
    {
        int k1 = Bits24(seed, 2UL * index) + 1;
        int k2 = Bits24(seed, 2UL * index + 1UL);
        return SqrtNonNegative(-2f * LogOfScaled(k1)) * CosOfTurn(k2);
    }

    /// <summary>mean + std · <see cref="Normal(ulong, ulong)"/> as one fused multiply-add.</summary>
    public static float Normal(ulong seed, ulong index, float mean, float std) => KernelMath.Fma(std, Normal(seed, index), mean);

    /// <summary>
    /// ln(k · 2^-24) for an integer 1 ≤ k ≤ 2^24 (Cephes' logf: k = 2^e m with m in [√½, √2), ln m from a degree-10
    /// polynomial in f = m − 1, which is exact; ln 2 split into a short head, so e · head is exact). Peak relative
    /// error about 1e-7; ln 1 is exactly 0.
    /// </summary>
    internal static float LogOfScaled(int k)
    {
        int bits = BitConverter.SingleToInt32Bits((float)k); // exact: k ≤ 2^24
        int e = (bits >> 23) - 127;
        int mantissa = bits & 0x007FFFFF;
        // m = 1.mantissa in [1, √2), or half of it in [√½, 1) with e one higher (0x3504F3: the mantissa of √2).
        bool upper = mantissa > 0x3504F3;
        float m = BitConverter.Int32BitsToSingle(mantissa | (upper ? 0x3F000000 : 0x3F800000));
        if (upper) e++;
        float f = m - 1f;
        float fe = e - 24;
        float z = f * f;
        float p = KernelMath.Fma(7.0376836292e-2f, f, -1.1514610310e-1f);
        p = KernelMath.Fma(p, f, 1.1676998740e-1f);
        p = KernelMath.Fma(p, f, -1.2420140846e-1f);
        p = KernelMath.Fma(p, f, 1.4249322787e-1f);
        p = KernelMath.Fma(p, f, -1.6668057665e-1f);
        p = KernelMath.Fma(p, f, 2.0000714765e-1f);
        p = KernelMath.Fma(p, f, -2.4999993993e-1f);
        p = KernelMath.Fma(p, f, 3.3333331174e-1f);
        float y = p * f * z;
        y = KernelMath.Fma(fe, -2.12194440e-4f, y);
        y = KernelMath.Fma(-0.5f, z, y);
        return KernelMath.Fma(fe, 0.693359375f, f + y);
    }

    /// <summary>
    /// √w for w ≥ 0 without a square-root instruction: a bit-trick reciprocal square root, three Newton steps, then
    /// one residual correction of √w = w · w^-½ (within an ulp or so). √0 = 0.
    /// </summary>
    internal static float SqrtNonNegative(float w)
    {
        float h = 0.5f * w;
        float y = BitConverter.Int32BitsToSingle(0x5F375A86 - (BitConverter.SingleToInt32Bits(w) >> 1));
        for (int i = 0; i < 3; i++)
        {
            float hy = h * y;
            y = KernelMath.Fma(y, KernelMath.Fma(-hy, y, 0.5f), y);
        }
        float r = w * y;
        float residual = KernelMath.Fma(-r, r, w);
        return KernelMath.Fma(residual, 0.5f * y, r);
    }

    /// <summary>
    /// cos(2π k · 2^-24) for an integer 0 ≤ k &lt; 2^24: the quadrant comes from k exactly (k = q · 2^22 + j with
    /// |j| ≤ 2^21), the rest is θ = j · π/2^23 in [−π/4, π/4] through Cephes' sinf/cosf polynomials.
    /// </summary>
    internal static float CosOfTurn(int k)
    {
        int q = (k + (1 << 21)) >> 22;
        int j = k - (q << 22);
        float x = j * 3.7450703e-7f; // π / 2^23
        float z = x * x;
        float sin = KernelMath.Fma(KernelMath.Fma(KernelMath.Fma(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f) * z, x, x);
        float cq = KernelMath.Fma(KernelMath.Fma(2.443315711809948e-5f, z, -1.388731625493765e-3f), z, 4.166664568298827e-2f);
        float cos = KernelMath.Fma(cq * z, z, KernelMath.Fma(-0.5f, z, 1f));
        return (q & 3) switch
        {
            0 => cos,
            1 => -sin,
            2 => -cos,
            _ => sin,
        };
    }
}
