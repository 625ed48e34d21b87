using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>
/// 2-D spectral convolution on channels-last input [B, H, W, Cin]: 2-D transform keeping the row frequencies
/// 0..modes1-1 and -modes1..-1 and the column frequencies 0..modes2-1 (W is the real axis), complex channel mixing
/// per kept mode with R [2·modes1·modes2, Cin, Cout], inverse transform to [B, H, W, Cout].
/// </summary>
/// <remarks>
/// The reference code's two weight tensors (top and bottom row blocks) are the first and second halves of the mode
/// axis here. Transforms: <see cref="SpectralTransform.Rfft2Modes"/> / <see cref="SpectralTransform.Irfft2Modes"/>.
/// </remarks>
public sealed class SpectralConv2d : Module
{
    /// <summary>
    /// Creates the layer with <see cref="SpectralInit.ScaledUniform"/> weights from <paramref name="seed"/> (unseeded: a
    /// seed drawn from <see cref="Engine.Random"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public SpectralConv2d(int inChannels, int outChannels, int modes1, int modes2, ulong? seed = null, Device? device = null)
    {
        if (inChannels <= 0 || outChannels <= 0 || modes1 <= 0 || modes2 <= 0)
            throw new ArgumentOutOfRangeException(nameof(modes1),
                $"SpectralConv2d: channels and modes must be positive; got in = {inChannels}, out = {outChannels}, modes1 = {modes1}, modes2 = {modes2}.");
        InChannels = inChannels;
        OutChannels = outChannels;
        Modes1 = modes1;
        Modes2 = modes2;
        var d = device ?? Device.Default;
        float scale = 1f / (inChannels * outChannels);
        ulong s = seed ?? Random.NextSeed();
        int m = 2 * modes1 * modes2;
        WeightRe = RegisterParameter("weight_re", Tensor.Uniform([m, inChannels, outChannels], s * 2 + 1, 0f, scale, d));
        WeightIm = RegisterParameter("weight_im", Tensor.Uniform([m, inChannels, outChannels], s * 2 + 2, 0f, scale, d));
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kept row frequencies per sign (2·Modes1 rows in all).</summary>
    public int Modes1 { get; }
    /// <summary>Kept column frequencies 0..Modes2-1.</summary>
    public int Modes2 { get; }
    /// <summary>Real parts of R, [2·modes1·modes2, Cin, Cout] (row mode major, then column mode).</summary>
    public Tensor WeightRe { get; }
    /// <summary>Imaginary parts of R, same shape.</summary>
    public Tensor WeightIm { get; }

    /// <summary>The transforms' route; <see cref="SpectralRoute.Auto"/> (default) asks <see cref="SpectralRoutePolicy"/>.</summary>
    public SpectralRoute Route { get; set; } = SpectralRoute.Auto;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [B, H, W, Cin], or H &lt; 2·modes1, or modes2 &gt; W/2 + 1.</exception>
    public override Tensor Forward(Tensor input)
    {
        var s = input.Shape;
        if (s.Length != 4 || s[3] != InChannels)
            throw new ArgumentException($"SpectralConv2d: expected input [batch, h, w, {InChannels}] (channels last), got {Shape.Format(s)}.");
        int b = s[0], h = s[1], w = s[2];
        if (h < 2 * Modes1 || w == 0 || Modes2 > SpectralTransform.MaxModes(w))
            throw new ArgumentException(
                $"SpectralConv2d: modes ({Modes1}, {Modes2}) need h >= 2·modes1 = {2 * Modes1} and w >= {2 * (Modes2 - 1)} (modes2 <= w/2 + 1) with w > 0; got input {Shape.Format(s)}.");
        int k1 = 2 * Modes1, m = k1 * Modes2;
        var route = SpectralRoutePolicy.Resolve2d(Route, input.Device, h, w, Modes1, Modes2);
        var xhat = SpectralTransform.Rfft2Modes(input, Modes1, Modes2, route);          // [B, K1, 2, m2, Cin]
        var perMode = xhat.Permute(1, 3, 0, 2, 4).Reshape(m, b, 2 * InChannels);         // [K1·m2, B, 2·Cin]
        var mixed = perMode.ComplexModeMix(WeightRe, WeightIm);                          // [K1·m2, B, 2·Cout]
        var yhat = mixed.Reshape(k1, Modes2, b, 2, OutChannels).Permute(2, 0, 3, 1, 4);  // [B, K1, 2, m2, Cout]
        return SpectralTransform.Irfft2Modes(yhat, h, w, route);
    }
}
