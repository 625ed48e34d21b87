using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>How the spectral weights of an FNO layer are initialised.</summary>
public enum SpectralInit
{
    /// <summary>
    /// The reference FNO code's rule: real and imaginary parts scale·U[0, 1) with scale = 1/(Cin·Cout); the pointwise
    /// layers keep their PyTorch default. Close to a zero spectral path at initialisation.
    /// </summary>
    ScaledUniform,

    /// <summary>
    /// The FNO-specific He initialisation of <c>FnoInit.He</c> with scaled orthogonal (unitary) draws: pre-activation
    /// variance preserved through depth (needs Cin = Cout, true inside an FNO).
    /// </summary>
    He,

    /// <summary>The same He variances with Gaussian draws: variance preserved on average over initialisations only.</summary>
    HeGaussian,

    /// <summary>
    /// The mean-field edge-of-chaos (He) initialisation of Koshizuka et al. for FNO blocks with ReLU:
    /// <c>FnoInit.EdgeOfChaos</c> at σ² = 2, Gaussian W and spectral weights, zero biases.
    /// </summary>
    EdgeOfChaos,
}

/// <summary>
/// 1-D spectral convolution (the Fourier layer of an FNO) on channels-last input [B, N, Cin]: transform along N
/// keeping the lowest <see cref="Modes"/> modes, mix channels per mode with complex weights R [modes, Cin, Cout]
/// (<see cref="Ops.ComplexModeMix"/>), zero the other modes and transform back to length N. Output [B, N, Cout].
/// </summary>
/// <remarks>
/// The transforms go through <see cref="SpectralTransform"/> (truncated DFT as GEMM). Channels-last (unlike the
/// reference code's [B, C, N]) so the pointwise layers of an FNO block are plain <see cref="Linear"/>s and no
/// activation-sized transpose is needed: the DFT matrix multiplies the N axis from the left.
/// </remarks>
public sealed class SpectralConv1d : Module
{
    /// <summary>
    /// Creates the layer with <see cref="SpectralInit.ScaledUniform"/> weights from <paramref name="seed"/> (unseeded: a
    /// seed drawn from <see cref="Engine.Random"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public SpectralConv1d(int inChannels, int outChannels, int modes, ulong? seed = null, Device? device = null)
    {
        if (inChannels <= 0 || outChannels <= 0 || modes <= 0)
            throw new ArgumentOutOfRangeException(nameof(modes),
                $"SpectralConv1d: channels and modes must be positive; got in = {inChannels}, out = {outChannels}, modes = {modes}.");
        InChannels = inChannels;
        OutChannels = outChannels;
        Modes = modes;
        var d = device ?? Device.Default;
        float scale = 1f / (inChannels * outChannels);
        ulong s = seed ?? Random.NextSeed();
        WeightRe = RegisterParameter("weight_re", Tensor.Uniform([modes, inChannels, outChannels], s * 2 + 1, 0f, scale, d));
        WeightIm = RegisterParameter("weight_im", Tensor.Uniform([modes, inChannels, outChannels], s * 2 + 2, 0f, scale, d));
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kept Fourier modes (0..Modes-1).</summary>
    public int Modes { get; }
    /// <summary>Real parts of R, [modes, Cin, Cout].</summary>
    public Tensor WeightRe { get; }
    /// <summary>Imaginary parts of R, [modes, Cin, Cout].</summary>
    public Tensor WeightIm { get; }

    /// <summary>The transforms' route; <see cref="SpectralRoute.Auto"/> (default) asks <see cref="SpectralRoutePolicy"/>.</summary>
    public SpectralRoute Route { get; set; } = SpectralRoute.Auto;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [B, N, Cin], N is 0, or Modes exceeds N/2 + 1.</exception>
    public override Tensor Forward(Tensor input)
    {
        var s = input.Shape;
        if (s.Length != 3 || s[2] != InChannels)
            throw new ArgumentException($"SpectralConv1d: expected input [batch, n, {InChannels}] (channels last), got {Shape.Format(s)}.");
        int b = s[0], n = s[1];
        if (n == 0)
            throw new ArgumentException($"SpectralConv1d: input {Shape.Format(s)} has n = 0 points.");
        if (Modes > SpectralTransform.MaxModes(n))
            throw new ArgumentException($"SpectralConv1d: {Modes} modes need n >= {2 * (Modes - 1)} points (modes <= n/2 + 1), got input {Shape.Format(s)} with n = {n}.");
        var route = SpectralRoutePolicy.Resolve1d(Route, input.Device, n, Modes);
        var xhat = SpectralTransform.RfftModes(input, Modes, axis: 1, route);           // [B, 2k, Cin] = [B, 2, k, Cin]
        var perMode = xhat.Reshape(b, 2, Modes, InChannels).Permute(2, 0, 1, 3)          // [k, B, 2, Cin]
            .Reshape(Modes, b, 2 * InChannels);
        var mixed = perMode.ComplexModeMix(WeightRe, WeightIm);                          // [k, B, 2·Cout]
        var yhat = mixed.Reshape(Modes, b, 2, OutChannels).Permute(1, 2, 0, 3)           // [B, 2, k, Cout]
            .Reshape(b, 2 * Modes, OutChannels);
        return SpectralTransform.IrfftModes(yhat, n, axis: 1, route);
    }
}
