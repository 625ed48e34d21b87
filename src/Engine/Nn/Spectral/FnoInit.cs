using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>Initialisers for FNO blocks (a spectral convolution K and a pointwise linear map W feeding one GELU).</summary>
public static class FnoInit
{
    /// <summary>
    /// μ₂ = E[GELU(z)²] for z ~ N(0, 1) with the exact GELU z·Φ(z): 0.42522148257... (Simpson quadrature of
    /// z²Φ(z)²φ(z) over [-12, 12]; a test recomputes it). For z ~ N(0, v), E[GELU(z)²] = μ₂·v.
    /// </summary>
    public const double GeluSecondMoment = 0.42522148257027753;

    /// <summary>
    /// The reference FNO rule for a spectral layer: real and imaginary parts scale·U[0, 1), scale = 1/(Cin·Cout).
    /// </summary>
    public static void ScaledUniform(Tensor weightRe, Tensor weightIm, ulong seed)
    {
        var s = weightRe.Shape;
        float scale = 1f / (s[^2] * s[^1]);
        Overwrite(weightRe, Tensor.Uniform(s, seed * 2 + 1, 0f, scale, weightRe.Device));
        Overwrite(weightIm, Tensor.Uniform(s, seed * 2 + 2, 0f, scale, weightIm.Device));
    }

    /// <summary>
    /// FNO-specific He initialisation of one block v ↦ GELU(K v + W v + b) of width C (K: <paramref name="spectral"/>,
    /// W, b: <paramref name="pointwise"/>), chosen so that the second moment of the pre-activations is the same in
    /// every block at initialisation, however the signal's energy is spread over frequencies.
    /// </summary>
    /// <remarks>
    /// <para>Derivation (mean field, 1-D, N points, k kept modes). Let v have per-point second moment q (averaged over
    /// positions and channels). Convolution and pointwise map act per Fourier mode j: ẑ_j = M_j v̂_j with the C x C
    /// matrix M_j = R_j + Wᵀ for kept modes and M_j = Wᵀ otherwise. With zero-mean weights independent of v,
    /// E|ẑ_{o,j}|² = Σ_i E|M_{io,j}|² |v̂_{i,j}|², and by Parseval the pre-activation second moment is
    /// E z² = C · Σ_j g_j e_j with g_j = E|M_{io,j}|² and e_j the share of v's energy in mode j.</para>
    /// <para>With independent K and W of variances s² (per real and imaginary part) and σ², g_j = σ² + 2s² on the k
    /// kept modes (σ² + s² at DC, whose imaginary part the Hermitian inverse drops) and σ² elsewhere. For white input
    /// the spectral path's gain is C s² (4k - 3)/N (DC weight 1, k - 1 modes of weight 2 entering squared and halved by
    /// the real part, 1/N² from the inverse, N from the forward energy); for input whose energy already sits in the kept
    /// modes (what a spectral layer outputs) it is 2 C s². The two differ by N/(2k) (32 at N = 1024, k = 16), and after
    /// GELU about 78% of a low-mode signal's energy stays in low modes (mean E[GELU]² = v/(4π) goes to DC, the linear
    /// Hermite part v/4 keeps the spectrum), so no choice of two variances keeps E z² constant through 32 blocks: the
    /// kept modes grow by (σ² + 2s²)/σ² per block relative to the rest.</para>
    /// <para>The fix is to make g_j flat: draw W ~ N(0, σ²) and a complex U_j with E|U_j|² = σ² (real U_0 of variance
    /// σ² at DC; Re, Im of variance σ²/2 otherwise), and set R_j = U_j - Wᵀ. Then M_j = U_j on kept modes and Wᵀ
    /// elsewhere, g_j = σ² for every j, and E z² = C σ² q exactly. GELU maps a N(0, v) pre-activation to a second
    /// moment μ₂ v (<see cref="GeluSecondMoment"/>), so σ² = 1/(C μ₂) makes q, and hence E z², a fixed point:
    /// <c>σ² = 1 / (C · 0.42522)</c>, bias 0. The spectral weights then have variance 1/(C μ₂) + σ²/2 in the real
    /// parts and σ²/2 in the imaginary parts, each entry correlated with its pointwise partner.</para>
    /// <para>Exceptions: a Nyquist mode (k = N/2 + 1) keeps only Re(M), so its gain is σ²/2 (one mode of N/2).
    /// In 2-D the column-0 modes (r, 0) and (-r, 0) are one conjugate pair, so their U gets twice the variance (its
    /// symmetric part then has σ²); the unpaired row -modes1 of column 0 keeps half gain.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">The pointwise layer's shape does not match the spectral layer's channels.</exception>
    public static void He(SpectralConv1d spectral, Linear pointwise, ulong seed) =>
        HeCore("FnoInit.He", spectral.WeightRe, spectral.WeightIm, pointwise, seed, modes2: 0);

    /// <summary>The 2-D form of <see cref="He(SpectralConv1d, Linear, ulong)"/> (see its remarks for the column-0 pairs).</summary>
    /// <exception cref="ArgumentException">The pointwise layer's shape does not match the spectral layer's channels.</exception>
    public static void He(SpectralConv2d spectral, Linear pointwise, ulong seed) =>
        HeCore("FnoInit.He", spectral.WeightRe, spectral.WeightIm, pointwise, seed, modes2: spectral.Modes2);

    private static void HeCore(string op, Tensor wRe, Tensor wIm, Linear pointwise, ulong seed, int modes2)
    {
        var s = wRe.Shape;
        int m = s[0], cin = s[1], cout = s[2];
        if (pointwise.InFeatures != cin || pointwise.OutFeatures != cout)
            throw new ArgumentException(
                $"{op}: the pointwise layer maps {pointwise.InFeatures} -> {pointwise.OutFeatures} channels but the spectral weights are {Shape.Format(s)} ({cin} -> {cout}).");
        double sigma2 = 1.0 / (cin * GeluSecondMoment);
        float sigma = (float)Math.Sqrt(sigma2);
        float[] w;
        using (var t = Tensor.Normal([cout, cin], seed * 4 + 1, 0f, sigma, pointwise.Weight.Device)) w = t.ToArray();
        float[] ure, uim;
        using (var t = Tensor.Normal(s, seed * 4 + 2, 0f, 1f, wRe.Device)) ure = t.ToArray();
        using (var t = Tensor.Normal(s, seed * 4 + 3, 0f, 1f, wRe.Device)) uim = t.ToArray();
        var re = new float[ure.Length];
        var im = new float[uim.Length];
        for (int j = 0; j < m; j++)
        {
            // 1-D: mode 0 is DC. 2-D: mode j is (row j / modes2, column j % modes2); column 0 holds conjugate pairs.
            bool dc = j == 0;
            bool column0 = modes2 > 0 && j % modes2 == 0;
            double partVar = dc ? sigma2 : column0 ? sigma2 : sigma2 / 2;
            float sdRe = (float)Math.Sqrt(partVar), sdIm = dc ? 0f : (float)Math.Sqrt(partVar);
            for (int i = 0; i < cin; i++)
                for (int o = 0; o < cout; o++)
                {
                    int idx = (j * cin + i) * cout + o;
                    re[idx] = sdRe * ure[idx] - w[o * cin + i];
                    im[idx] = sdIm * uim[idx];
                }
        }
        pointwise.Weight.CopyFrom(w);
        if (pointwise.Bias != null) pointwise.Bias.CopyFrom(new float[cout]);
        wRe.CopyFrom(re);
        wIm.CopyFrom(im);
    }

    private static void Overwrite(Tensor w, Tensor source)
    {
        using (source) w.CopyFrom(source);
    }
}
