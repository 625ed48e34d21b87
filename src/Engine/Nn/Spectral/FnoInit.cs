using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>Initialisers for FNO blocks (a spectral convolution K and a pointwise linear map W feeding one GELU).</summary>
public static class FnoInit
{
    /// <summary>
    /// μ₂(v) = E[GELU(z)²] / v for z ~ N(0, v) with the exact GELU z·Φ(z), by Simpson quadrature (double).
    /// Unlike ReLU's 1/2, it depends on v: 1/4 as v → 0 (GELU ≈ z/2), 0.42522 at v = 1, 1/2 as v → ∞.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">v is not positive and finite.</exception>
    public static double GeluSecondMoment(double variance) => GeluMoments(variance).Second;

    /// <summary>
    /// μ₂(v) - μ₁(v)²: the variance of GELU(z) over v for z ~ N(0, v), with μ₁(v) = E[GELU(z)]/√v
    /// (0.28209 at v = 1, 1/√(2π) = 0.39894 as v → ∞); c(v) peaks at 0.356 near v = 3.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">v is not positive and finite.</exception>
    public static double GeluVarianceFactor(double variance)
    {
        var (m1, m2) = GeluMoments(variance);
        return m2 - m1 * m1;
    }

    private static (double First, double Second) GeluMoments(double variance)
    {
        if (!(variance > 0) || double.IsInfinity(variance))
            throw new ArgumentOutOfRangeException(nameof(variance), $"FnoInit.GeluSecondMoment: variance must be positive and finite, got {variance}.");
        const int n = 4000;
        const double lo = -12, hi = 12, h = (hi - lo) / n;
        double sd = Math.Sqrt(variance), s1 = 0, s2 = 0;
        for (int i = 0; i <= n; i++)
        {
            double u = lo + i * h;
            double cdf = 0.5 * Erfc(-sd * u / Math.Sqrt(2));
            double pdf = Math.Exp(-u * u / 2) / Math.Sqrt(2 * Math.PI);
            double w = i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2;
            s1 += w * u * cdf * pdf;
            s2 += w * u * u * cdf * cdf * pdf;
        }
        return (s1 * h / 3, s2 * h / 3);
    }

    /// <summary>erfc in double (W. J. Cody's rational Chebyshev fit as in Numerical Recipes' erfcc, |error| &lt; 1.2e-7).</summary>
    private static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }

    /// <summary>Default pre-activation variance v* the He rule is built for (see <see cref="He(SpectralConv1d, Linear, ulong?, bool, double)"/>).</summary>
    public const double DefaultPreActivationVariance = 10.0;

    /// <summary>
    /// The reference FNO rule for a spectral layer: real and imaginary parts scale·U[0, 1), scale = 1/(Cin·Cout).
    /// </summary>
    public static void ScaledUniform(Tensor weightRe, Tensor weightIm, ulong? seed = null)
    {
        var s = weightRe.Shape;
        float scale = 1f / (s[^2] * s[^1]);
        ulong seedValue = seed ?? Random.NextSeed();
        Overwrite(weightRe, Tensor.Uniform(s, seedValue * 2 + 1, 0f, scale, weightRe.Device));
        Overwrite(weightIm, Tensor.Uniform(s, seedValue * 2 + 2, 0f, scale, weightIm.Device));
    }

    /// <summary>σ² of the edge of chaos for ReLU blocks (the He value 2; see <see cref="EdgeOfChaos(SpectralConv1d, Linear, ulong?, double)"/>).</summary>
    public const double EdgeOfChaosVariance = 2.0;

    /// <summary>
    /// Mean-field ("edge of chaos") initialisation of one FNO block z = K h + W h + b of width C after Koshizuka,
    /// Fujisawa, Tanaka and Sato, "Initialization Bias of Fourier Neural Operator: Revisiting the Edge of Chaos"
    /// (arXiv 2310.06379): every weight i.i.d. zero-mean Gaussian, W_oi ~ N(0, σ²/(2C)), the real and the imaginary part
    /// of each spectral weight R_{k,io} ~ N(0, σ²/(4C)) (so E|R_k|² = σ²/(2C)) except the mean's, Re R_{0,io} ~
    /// N(0, σ²/(2C)) and Im R_0 = 0 (the mean has a real coefficient, so only Re R_0 acts on it), b = 0; σ² =
    /// <see cref="EdgeOfChaosVariance"/> = 2 is the edge of chaos of ReLU blocks without mode truncation, the FNO form
    /// of He initialisation.
    /// </summary>
    /// <remarks>
    /// <para><b>Where this differs from, or could not be checked against, the paper.</b> The search tools available
    /// here returned only the paper's abstract and figure captions, not its equations, so the form above is our mean-field
    /// derivation for this engine's block, not a quotation. What the accessible text states: a mean-field theory of the
    /// random FNO; ordered and chaotic phases set by the weight variance σ², corresponding to vanishing and exploding
    /// gradients; an edge-of-chaos initialisation "analogous to He initialization" for ReLU; experiments with 4-32 layers,
    /// ReLU, σ² ∈ {1, 2, 3}, without skip connections. The even split of σ² between the pointwise and the spectral path
    /// is our choice.</para>
    /// <para><b>Derivation</b> (infinite width, Gaussian weights; the pre-activations are then Gaussian and stationary
    /// along x with covariance Σ(Δ), spectrum S(k) = Σ_Δ Σ(Δ) e^{-2πikΔ/N}). For this engine's layer
    /// (unnormalised forward DFT, 1/N inverse, k = 1 .. K-1 counted twice by the Hermitian inverse, only Re R_0 acting on
    /// the mean, hence its doubled variance) the next block's covariance is
    /// Σ_z(Δ) = σ_w² Σ_φ(Δ) + σ_θ² (1/N) [S_φ(0) + 2 Σ_{k=1}^{K-1} S_φ(k) cos(2πkΔ/N)],
    /// σ_w² = C·Var W = σ²/2, σ_θ² = C·E|R|² = σ²/2, Σ_φ(Δ) = E[φ(z(x)) φ(z(x+Δ))]. Without truncation (K = N/2 + 1;
    /// the Nyquist mode, like the mean, meets only Re R, at half gain here) the bracket is Σ_φ itself and
    /// Σ_z = σ² Σ_φ: the dense-network map, whose ReLU edge of chaos is σ² = 2 (q is preserved and
    /// χ₁ = σ² E[φ'²] = 1). The truncation keeps only the low modes of the spectral path, which is the FNO-specific
    /// part of the forward and backward maps: it moves the edge above σ² = 2 (the measured and predicted factor per
    /// block at σ² = 2 is below 1). <see cref="FnoMeanField"/> iterates both maps and the tests compare them with
    /// measured blocks. Without the doubled Re R_0 the mean, about a third of a ReLU output's second moment, would pass
    /// the spectral path at half gain and the blocks would shrink even without truncation.</para>
    /// </remarks>
    /// <param name="spectral">The block's spectral layer (weights overwritten).</param>
    /// <param name="pointwise">The block's pointwise layer (weight overwritten, bias zeroed).</param>
    /// <param name="seed">Seed of the draws (unseeded: one drawn from <see cref="Engine.Random"/>).</param>
    /// <param name="sigma2">σ², the total weight variance times the width (2: edge of chaos for ReLU).</param>
    /// <exception cref="ArgumentException">The pointwise layer's shape does not match the spectral layer's channels, or σ² is not positive.</exception>
    public static void EdgeOfChaos(SpectralConv1d spectral, Linear pointwise, ulong? seed = null, double sigma2 = EdgeOfChaosVariance) =>
        EdgeOfChaosCore(spectral.WeightRe, spectral.WeightIm, pointwise, seed ?? Random.NextSeed(), sigma2);

    /// <summary>The 2-D form of <see cref="EdgeOfChaos(SpectralConv1d, Linear, ulong?, double)"/> (same variances for every kept mode).</summary>
    /// <exception cref="ArgumentException">The pointwise layer's shape does not match the spectral layer's channels, or σ² is not positive.</exception>
    /// <param name="spectral">The block's spectral layer (weights overwritten).</param>
    /// <param name="pointwise">The block's pointwise layer (weight overwritten, bias zeroed).</param>
    /// <param name="seed">Seed of the draws (unseeded: one drawn from <see cref="Engine.Random"/>).</param>
    /// <param name="sigma2">σ² (2: edge of chaos for ReLU).</param>
    public static void EdgeOfChaos(SpectralConv2d spectral, Linear pointwise, ulong? seed = null, double sigma2 = EdgeOfChaosVariance) =>
        EdgeOfChaosCore(spectral.WeightRe, spectral.WeightIm, pointwise, seed ?? Random.NextSeed(), sigma2);

    private static void EdgeOfChaosCore(Tensor wRe, Tensor wIm, Linear pointwise, ulong seed, double sigma2)
    {
        var s = wRe.Shape;
        int cin = s[1], cout = s[2];
        if (pointwise.InFeatures != cin || pointwise.OutFeatures != cout)
            throw new ArgumentException(
                $"FnoInit.EdgeOfChaos: the pointwise layer maps {pointwise.InFeatures} -> {pointwise.OutFeatures} channels but the spectral weights are {Shape.Format(s)} ({cin} -> {cout}).");
        if (!(sigma2 > 0) || double.IsInfinity(sigma2))
            throw new ArgumentException($"FnoInit.EdgeOfChaos: σ² must be positive and finite, got {sigma2}.");
        float wStd = (float)Math.Sqrt(sigma2 / (2.0 * cin)), partStd = (float)Math.Sqrt(sigma2 / (4.0 * cin));
        Overwrite(pointwise.Weight, Tensor.Normal(pointwise.Weight.Shape, seed * 4 + 1, 0f, wStd, pointwise.Weight.Device));
        if (pointwise.Bias != null) pointwise.Bias.CopyFrom(new float[cout]);
        float[] re, im;
        using (var t = Tensor.Normal(s, seed * 4 + 2, 0f, partStd, wRe.Device)) re = t.ToArray();
        using (var t = Tensor.Normal(s, seed * 4 + 3, 0f, partStd, wIm.Device)) im = t.ToArray();
        // Mode 0 (the mean; in 2-D the first row-and-column mode) meets a real coefficient, so only Re R_0 acts: it gets
        // the whole variance σ²/(2C), and Im R_0, which the inverse transform ignores, is 0.
        for (int i = 0; i < cin * cout; i++)
        {
            re[i] *= MathF.Sqrt(2f);
            im[i] = 0f;
        }
        wRe.CopyFrom(re);
        wIm.CopyFrom(im);
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
    /// <para>The fix is to make g_j flat: draw W with entry variance σ² and a complex U_j with E|U_j|² = σ², and set
    /// R_j = U_j - Wᵀ. Then M_j = U_j on kept modes and Wᵀ elsewhere, g_j = σ² for every j, and E z² = C σ² q
    /// whatever the spectrum. With <paramref name="orthogonal"/> W and every U_j are scaled orthogonal (unitary)
    /// matrices, so the per-mode gain is exactly C σ², not only on average over draws.</para>
    /// <para>The DC mode is the exception: GELU's output has a mean E[GELU(z)] = μ₁√v, the same sign in every channel,
    /// position and sample, about a third of its second moment when GELU acts like ReLU. Passed on, it becomes a
    /// per-channel offset shared by all positions, so the next GELU averages over only C independent values and the
    /// variance performs a random walk of relative step ~1/√C per block (measured: 32 blocks at width 32 ended
    /// anywhere from 1e-5 to 20 times the first block). So U_0 = 0: K + W annihilates each channel's mean (M_0 = 0),
    /// and the recursion runs on the variance of GELU's output, (μ₂(v) - μ₁(v)²)·v, not on its second moment.</para>
    /// <para>GELU's factor: for z ~ N(0, v), Var[GELU(z)] = c(v)·v with c = μ₂ - μ₁² (<see cref="GeluVarianceFactor"/>;
    /// μ₂ = <see cref="GeluSecondMoment"/>). Unlike ReLU's constant, c depends on v (GELU is z/2 near 0, ReLU far out):
    /// 1/4 at v → 0, 0.3456 at 1, a maximum 0.356 near v = 3, 0.3501 at 10, 1/2 - 1/(2π) = 0.3408 as v → ∞.
    /// σ² = 1/(C c(v*)) makes v* a fixed point of v ↦ C σ² c(v) v; a block multiplies a deviation of log v by
    /// 1 + d log c / d log v, which is 1.06 at v* = 1 (unstable: 1% becomes 6% in 32 blocks) and 0.983 at v* = 10
    /// (stable). Hence the default v* = <see cref="DefaultPreActivationVariance"/>; <see cref="Fno1d"/> and
    /// <see cref="Fno2d"/> built with <see cref="SpectralInit.He"/> also scale their lifting layer
    /// (<see cref="HeLift"/>) so that unit second-moment inputs start near it.</para>
    /// <para>Result: <c>σ² = 1 / (C · c(v*))</c>, c(10) = 0.3501; pointwise bias 0; spectral weights Re R_j = Re U_j - Wᵀ,
    /// Im R_j = Im U_j (variances σ²/2 + σ² and σ²/2; Re R_0 = -Wᵀ, Im R_0 = 0).</para>
    /// <para>Exceptions: a Nyquist mode (k = N/2 + 1) keeps only Re(M), so its gain is σ²/2 (one mode of N/2).
    /// In 2-D the column-0 modes (r, 0) and (-r, 0) are one conjugate pair, so their U gets twice the variance (its
    /// symmetric part then has σ²); the unpaired row -modes1 of column 0 keeps half gain; only mode (0, 0) is DC.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">The pointwise layer's shape does not match the spectral layer's channels.</exception>
    /// <param name="spectral">The block's spectral layer (weights overwritten).</param>
    /// <param name="pointwise">The block's pointwise layer (weight overwritten, bias zeroed).</param>
    /// <param name="seed">Seed of the draws (unseeded: one drawn from <see cref="Engine.Random"/>).</param>
    /// <param name="orthogonal">Draw W and every U_j as scaled orthogonal (unitary) matrices instead of Gaussian ones:
    /// same entry variances, but each mode's gain is then exactly C σ² for every input instead of only on average,
    /// which removes the finite-width random walk of the signal's log-variance through depth. Needs Cin = Cout.</param>
    /// <param name="preActivationVariance">The pre-activation variance v* to preserve.</param>
    public static void He(SpectralConv1d spectral, Linear pointwise, ulong? seed = null, bool orthogonal = true,
        double preActivationVariance = DefaultPreActivationVariance) =>
        HeCore("FnoInit.He", spectral.WeightRe, spectral.WeightIm, pointwise, seed ?? Random.NextSeed(), modes2: 0, orthogonal, preActivationVariance);

    /// <summary>The 2-D form of <see cref="He(SpectralConv1d, Linear, ulong?, bool, double)"/> (see its remarks for the column-0 pairs).</summary>
    /// <exception cref="ArgumentException">The pointwise layer's shape does not match the spectral layer's channels.</exception>
    /// <param name="spectral">The block's spectral layer (weights overwritten).</param>
    /// <param name="pointwise">The block's pointwise layer (weight overwritten, bias zeroed).</param>
    /// <param name="seed">Seed of the draws (unseeded: one drawn from <see cref="Engine.Random"/>).</param>
    /// <param name="orthogonal">Scaled orthogonal (unitary) draws, see the 1-D overload.</param>
    /// <param name="preActivationVariance">The pre-activation variance v* to preserve.</param>
    public static void He(SpectralConv2d spectral, Linear pointwise, ulong? seed = null, bool orthogonal = true,
        double preActivationVariance = DefaultPreActivationVariance) =>
        HeCore("FnoInit.He", spectral.WeightRe, spectral.WeightIm, pointwise, seed ?? Random.NextSeed(), modes2: spectral.Modes2, orthogonal, preActivationVariance);

    private static void HeCore(string op, Tensor wRe, Tensor wIm, Linear pointwise, ulong seed, int modes2, bool orthogonal, double vStar)
    {
        var s = wRe.Shape;
        int m = s[0], cin = s[1], cout = s[2];
        if (pointwise.InFeatures != cin || pointwise.OutFeatures != cout)
            throw new ArgumentException(
                $"{op}: the pointwise layer maps {pointwise.InFeatures} -> {pointwise.OutFeatures} channels but the spectral weights are {Shape.Format(s)} ({cin} -> {cout}).");
        if (orthogonal && cin != cout)
            throw new ArgumentException($"{op}: the orthogonal form needs square blocks (Cin = Cout); got spectral weights {Shape.Format(s)}.");
        double sigma2 = 1.0 / (cin * GeluVarianceFactor(vStar));
        float sigma = (float)Math.Sqrt(sigma2);
        // Gaussian draws from the engine's counter RNG (the same numbers on every device), made orthogonal on the host.
        float[] g0, ure, uim;
        using (var t = Tensor.Normal([cout, cin], seed * 4 + 1, 0f, 1f, pointwise.Weight.Device)) g0 = t.ToArray();
        using (var t = Tensor.Normal(s, seed * 4 + 2, 0f, 1f, wRe.Device)) ure = t.ToArray();
        using (var t = Tensor.Normal(s, seed * 4 + 3, 0f, 1f, wRe.Device)) uim = t.ToArray();
        var w = new float[cout * cin];
        {
            var (qr, _) = orthogonal ? Orthonormalise(g0, new float[g0.Length], cout) : (null, null);
            // Orthogonal: rows of Q have unit norm, entries variance 1/C; scaled by sqrt(C)·σ to variance σ².
            for (int i = 0; i < w.Length; i++) w[i] = orthogonal ? (float)(qr![i] * Math.Sqrt(cin) * sigma) : g0[i] * sigma;
        }
        var re = new float[ure.Length];
        var im = new float[uim.Length];
        int block = cin * cout;
        for (int j = 0; j < m; j++)
        {
            // 1-D: mode 0 is DC (real). 2-D: mode j is (row j / modes2, column j % modes2); column 0 holds conjugate pairs.
            bool dc = j == 0;
            bool column0 = modes2 > 0 && j % modes2 == 0;
            double partVar = dc || column0 ? sigma2 : sigma2 / 2;
            var bre = new float[block];
            var bim = new float[block];
            Array.Copy(ure, j * block, bre, 0, block);
            if (!dc) Array.Copy(uim, j * block, bim, 0, block);
            double scale;
            if (orthogonal)
            {
                // A unitary U (real orthogonal at DC) with E|U_io|² = 1/C, scaled to E|U|² = σ² (2σ² in 2-D column 0).
                (var qre, var qim) = Orthonormalise(bre, bim, cin);
                bre = qre.Select(v => (float)v).ToArray();
                bim = qim.Select(v => (float)v).ToArray();
                scale = Math.Sqrt(cin * sigma2 * (column0 && !dc ? 2 : 1));
            }
            else scale = Math.Sqrt(partVar);
            for (int i = 0; i < cin; i++)
                for (int o = 0; o < cout; o++)
                {
                    // Block entry (i, o) of the map x̂_i ↦ ŷ_o; the orthogonal draw is used as [o, i] like W.
                    int src = orthogonal ? o * cin + i : i * cout + o;
                    int idx = j * block + i * cout + o;
                    // DC: U_0 = 0, so K + W annihilates each channel's mean (see remarks).
                    re[idx] = (dc ? 0f : (float)(scale * bre[src])) - w[o * cin + i];
                    im[idx] = dc ? 0f : (float)(scale * bim[src]);
                }
        }
        pointwise.Weight.CopyFrom(w);
        if (pointwise.Bias != null) pointwise.Bias.CopyFrom(new float[cout]);
        wRe.CopyFrom(re);
        wIm.CopyFrom(im);
    }

    /// <summary>
    /// Modified Gram-Schmidt (in double) on the rows of the complex n x n matrix (re, im): a unitary matrix, real
    /// orthogonal when im is zero. Rows are divided by their norm, so entries have mean square 1/n.
    /// </summary>
    private static (double[] Re, double[] Im) Orthonormalise(float[] re, float[] im, int n)
    {
        var a = re.Select(v => (double)v).ToArray();
        var b = im.Select(v => (double)v).ToArray();
        for (int r = 0; r < n; r++)
        {
            for (int p = 0; p < r; p++)
            {
                // <row p, row r> = Σ conj(p)·r; subtract it times row p.
                double dr = 0, di = 0;
                for (int c = 0; c < n; c++)
                {
                    double pr = a[p * n + c], pi = b[p * n + c], xr = a[r * n + c], xi = b[r * n + c];
                    dr += pr * xr + pi * xi;
                    di += pr * xi - pi * xr;
                }
                for (int c = 0; c < n; c++)
                {
                    double pr = a[p * n + c], pi = b[p * n + c];
                    a[r * n + c] -= dr * pr - di * pi;
                    b[r * n + c] -= dr * pi + di * pr;
                }
            }
            double norm = 0;
            for (int c = 0; c < n; c++) norm += a[r * n + c] * a[r * n + c] + b[r * n + c] * b[r * n + c];
            norm = Math.Sqrt(norm);
            for (int c = 0; c < n; c++)
            {
                a[r * n + c] /= norm;
                b[r * n + c] /= norm;
            }
        }
        return (a, b);
    }

    /// <summary>
    /// Re-initialises a lifting layer for <see cref="SpectralInit.He"/>: bias 0 and weight column c drawn from
    /// N(0, v*·c(v*) / (fan_in · m_c)) with m_c the second moment of input feature c and c = <see cref="GeluVarianceFactor"/>,
    /// so that the lifted features have second moment v*·c(v*) and the first block (gain 1/c(v*)) starts near v*.
    /// </summary>
    /// <exception cref="ArgumentException">The moments do not match the layer's inputs or are not positive.</exception>
    public static void HeLift(Linear lift, ulong seed, double[] featureSecondMoments, double preActivationVariance = DefaultPreActivationVariance)
    {
        int fin = lift.InFeatures, fout = lift.OutFeatures;
        if (featureSecondMoments.Length != fin || featureSecondMoments.Any(m => !(m > 0)))
            throw new ArgumentException($"FnoInit.HeLift: need {fin} positive feature second moments, got [{string.Join(", ", featureSecondMoments)}].");
        double total = preActivationVariance * GeluVarianceFactor(preActivationVariance);
        float[] g;
        using (var t = Tensor.Normal([fout, fin], seed, 0f, 1f, lift.Weight.Device)) g = t.ToArray();
        for (int o = 0; o < fout; o++)
            for (int c = 0; c < fin; c++)
                g[o * fin + c] *= (float)Math.Sqrt(total / (fin * featureSecondMoments[c]));
        lift.Weight.CopyFrom(g);
        if (lift.Bias != null) lift.Bias.CopyFrom(new float[fout]);
    }

    private static void Overwrite(Tensor w, Tensor source)
    {
        using (source) w.CopyFrom(source);
    }
}
