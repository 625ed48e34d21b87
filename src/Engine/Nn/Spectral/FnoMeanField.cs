namespace Engine.Nn;

/// <summary>Per-block second moments a mean-field calculation predicts for a random FNO at initialisation.</summary>
/// <param name="ForwardVariance">E[z_ℓ²] of block ℓ's pre-activation K h + W h, ℓ = 1..L (index ℓ - 1).</param>
/// <param name="BackwardVariance">E[(∂L/∂z_ℓ)²] for the same blocks, given the last block's gradient covariance.</param>
public sealed record FnoMeanFieldPrediction(double[] ForwardVariance, double[] BackwardVariance);

/// <summary>
/// The mean-field (infinite-width) recursions of a stack of 1-D FNO blocks z_ℓ = K_ℓ h_{ℓ-1} + W_ℓ h_{ℓ-1},
/// h_ℓ = ReLU(z_ℓ), with the Gaussian weights of <see cref="FnoInit.EdgeOfChaos(SpectralConv1d, Linear, ulong?, double)"/>:
/// the forward map of the pre-activations' covariance along x and the backward map of the gradients' covariance
/// (the edge-of-chaos analysis of Koshizuka et al., arXiv 2310.06379, written out for this engine's layer).
/// </summary>
/// <remarks>
/// <para>Forward: Σ_z(Δ) = σ_w² Σ_h(Δ) + T[Σ_h](Δ), Σ_h = E[φ(z(x)) φ(z(x+Δ))] for the previous block (the raw input's
/// covariance for the first), with the truncated spectral gain
/// T[Σ](Δ) = σ_θ² (1/N) Σ_{k=0}^{K-1} c_k S(k) cos(2πkΔ/N), S(k) = Σ_Δ Σ(Δ) cos(2πkΔ/N), c_k = 2 except c_0 = 1
/// (the mean, with its doubled Re R_0) and 1/2 at a kept Nyquist mode, σ_w² = σ_θ² = σ²/2. For ReLU, with q = Σ_z(0) and ρ = Σ_z(Δ)/q,
/// E[φφ] = q (√(1 - ρ²) + (π - arccos ρ) ρ) / (2π) and E[φ'φ'] = (π - arccos ρ) / (2π).</para>
/// <para>Backward (gradient independence, as usual in mean-field theory): the gradient at block ℓ's output h_ℓ has
/// covariance σ_w² Σ_δ,ℓ+1 + T[Σ_δ,ℓ+1] (the transposed spectral layer has the same per-mode gains), and
/// Σ_δ,ℓ(Δ) = E[φ'φ'](Δ) · that.</para>
/// </remarks>
public static class FnoMeanField
{
    /// <summary>
    /// Iterates both maps through <paramref name="blocks"/> ReLU blocks of a 1-D FNO with N = inputCovariance.Length
    /// points and <paramref name="modes"/> kept modes.
    /// </summary>
    /// <param name="inputCovariance">Covariance Σ(Δ), Δ = 0..N-1, of the first block's input (per channel, stationary).</param>
    /// <param name="modes">Kept modes K (1..N/2 + 1).</param>
    /// <param name="sigma2">σ² of the initialisation (half on the pointwise path, half on the spectral path).</param>
    /// <param name="blocks">Blocks L (the last has no activation, as in <see cref="Fno1d"/>).</param>
    /// <param name="outputGradientCovariance">Covariance of ∂L/∂z_L over Δ (default: white noise of variance 1).</param>
    /// <exception cref="ArgumentException">Sizes are inconsistent, or σ² or a variance is not positive.</exception>
    public static FnoMeanFieldPrediction PredictRelu(double[] inputCovariance, int modes, double sigma2, int blocks,
        double[]? outputGradientCovariance = null)
    {
        ArgumentNullException.ThrowIfNull(inputCovariance);
        int n = inputCovariance.Length;
        if (n < 2 || modes < 1 || modes > n / 2 + 1 || blocks < 1)
            throw new ArgumentException($"FnoMeanField.PredictRelu: need N >= 2, 1 <= modes <= N/2 + 1 and blocks >= 1; got N = {n}, modes = {modes}, blocks = {blocks}.");
        if (!(sigma2 > 0) || !(inputCovariance[0] > 0))
            throw new ArgumentException($"FnoMeanField.PredictRelu: σ² and the input variance must be positive; got σ² = {sigma2}, Σ(0) = {inputCovariance[0]}.");
        var gradOut = outputGradientCovariance ?? WhiteNoise(n);
        if (gradOut.Length != n)
            throw new ArgumentException($"FnoMeanField.PredictRelu: the gradient covariance has {gradOut.Length} lags, the input {n}.");
        double half = sigma2 / 2;
        var z = new double[blocks][];
        var h = inputCovariance;
        for (int l = 0; l < blocks; l++)
        {
            z[l] = Combine(half, h, Truncated(h, modes, half));
            if (l < blocks - 1) h = ReluMap(z[l], derivative: false);
        }
        var d = new double[blocks][];
        d[blocks - 1] = gradOut;
        for (int l = blocks - 2; l >= 0; l--)
        {
            var back = Combine(half, d[l + 1], Truncated(d[l + 1], modes, half));
            var gate = ReluMap(z[l], derivative: true);
            d[l] = back.Select((v, i) => v * gate[i]).ToArray();
        }
        return new FnoMeanFieldPrediction(z.Select(c => c[0]).ToArray(), d.Select(c => c[0]).ToArray());
    }

    /// <summary>The covariance of unit white noise over N lags (1 at Δ = 0, else 0).</summary>
    public static double[] WhiteNoise(int n)
    {
        var c = new double[n];
        c[0] = 1;
        return c;
    }

    private static double[] Combine(double pointwiseGain, double[] sigma, double[] spectral) =>
        sigma.Select((v, i) => pointwiseGain * v + spectral[i]).ToArray();

    /// <summary>T[Σ](Δ) = gain·(1/N) Σ_{k&lt;K} c_k S(k) cos(2πkΔ/N): the spectral path's covariance for input covariance Σ.</summary>
    private static double[] Truncated(double[] sigma, int modes, double gain)
    {
        int n = sigma.Length;
        var spectrum = new double[modes];
        for (int k = 0; k < modes; k++)
            for (int t = 0; t < n; t++) spectrum[k] += sigma[t] * Math.Cos(2 * Math.PI * k * t / n);
        var result = new double[n];
        for (int t = 0; t < n; t++)
        {
            double v = 0;
            for (int k = 0; k < modes; k++)
                v += (k == 0 ? 1 : 2 * k == n ? 0.5 : 2) * spectrum[k] * Math.Cos(2 * Math.PI * k * t / n);
            result[t] = gain * v / n;
        }
        return result;
    }

    /// <summary>E[φ(u)φ(v)] (or E[φ'(u)φ'(v)]) of ReLU for (u, v) Gaussian with the stationary covariance Σ(0), Σ(Δ).</summary>
    private static double[] ReluMap(double[] sigma, bool derivative)
    {
        double q = sigma[0];
        return sigma.Select(c =>
        {
            double rho = Math.Clamp(c / q, -1, 1), theta = Math.Acos(rho);
            return derivative ? (Math.PI - theta) / (2 * Math.PI) : q * (Math.Sqrt(1 - rho * rho) + (Math.PI - theta) * rho) / (2 * Math.PI);
        }).ToArray();
    }
}
