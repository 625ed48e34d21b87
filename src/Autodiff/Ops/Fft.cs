using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    // Differentiable FFTs (NumPy conventions). Complex tensors are real tensors whose last axis holds (re, im), size 2.
    // Every transform is linear, so each backward rule is the adjoint transform, written with these same ops (hence
    // double backpropagation works). With a real loss L and g = ∂L/∂Re y + i ∂L/∂Im y:
    //   complex y = s·F z            -> dz = s·Fᴴ g (the unnormalised inverse transform, same scale s), and vice versa;
    //   rfft    y_k = Σ_j x_j e^{-2πi jk/n}, k ≤ n/2
    //                               -> dx_j = Re Σ_k g_k e^{+2πi jk/n} = n · irfft(c ⊙ g) with c_k = 1 at DC and (even n)
    //                                  Nyquist, ½ elsewhere (irfft counts those bins twice and ignores their imaginary
    //                                  parts, which Re(g e^{iθ}) at θ = 0, π ignores too);
    //   irfft   x_j = Re Σ_k (w_k / n) X_k e^{+2πi jk/n}, w_k = 1 at DC/Nyquist, 2 elsewhere, Im X_0 and Im X_{n/2} unused
    //                               -> dX = (w / n) ⊙ rfft(g), with the imaginary parts of DC/Nyquist zeroed;
    //   rfft2 / irfft2: the same along the last axis times a full complex transform along the other, so
    //                  dx = h·w · irfft2(c ⊙ g) and dX = (w_k2 / (h·w)) ⊙ rfft2(g) (no bin is ignored in 2-D: the
    //                  imaginary part of X[k1, 0] pairs with X[h - k1, 0]).

    /// <summary>
    /// Real-input FFT along the last axis (NumPy's rfft, unnormalised): [..., n] to [..., n/2 + 1, 2], the non-negative
    /// frequencies y_k = Σ_j x_j e^{-2πi jk/n} as (re, im). Any n ≥ 1 (see <c>IFftKernels</c> for the algorithms).
    /// </summary>
    public static Tensor Rfft(this Tensor x)
    {
        const string op = "rfft";
        x.CheckAlive(op);
        if (x.Rank < 1) throw new ArgumentException($"{op}: input {x.Describe()} needs at least one axis.");
        int n = x.shape[^1];
        if (n == 0) throw new ArgumentException($"{op}: input {x.Describe()} has length 0 along the transformed (last) axis; it must be at least 1.");
        int batch = checked((int)Shape.Size(x.shape.AsSpan(0, x.Rank - 1)));
        var y = Tensor.Empty([.. x.shape[..^1], n / 2 + 1, 2], x.Device);
        x.K.FftKernels().Rfft(x.Buffer, y.Buffer, batch, n);
        return y.Record(op, [x], g => [Irfft(g * HalfSpectrumWeights(n, 0.5f, 1f, keepEdgeImag: true, g.Device), n) * (float)n]);
    }

    /// <summary>
    /// Inverse of <see cref="Rfft"/> (NumPy's irfft, 1/n normalisation): [..., n/2 + 1, 2] to real [..., n]. The
    /// imaginary parts of the DC bin and (even n) the Nyquist bin are ignored, as NumPy does. <paramref name="n"/> must
    /// satisfy n/2 + 1 = the input's number of bins (so the bins fix n up to its parity).
    /// </summary>
    public static Tensor Irfft(this Tensor xhat, int n)
    {
        const string op = "irfft";
        CheckComplex(op, xhat, 1);
        if (n < 1) throw new ArgumentException($"{op}: output length n = {n} must be at least 1.");
        int bins = xhat.shape[^2];
        if (bins != n / 2 + 1)
            throw new ArgumentException($"{op}: input {xhat.Describe()} has {bins} frequency bins, but output length n = {n} needs n/2 + 1 = {n / 2 + 1}.");
        int batch = checked((int)Shape.Size(xhat.shape.AsSpan(0, xhat.Rank - 2)));
        var y = Tensor.Empty([.. xhat.shape[..^2], n], xhat.Device);
        xhat.K.FftKernels().Irfft(xhat.Buffer, y.Buffer, batch, n);
        return y.Record(op, [xhat], g => [Rfft(g) * HalfSpectrumWeights(n, 2f / n, 1f / n, keepEdgeImag: false, g.Device)]);
    }

    /// <summary>
    /// 2-D real-input FFT over the last two axes (NumPy's rfft2, unnormalised): [..., h, w] to [..., h, w/2 + 1, 2];
    /// all h frequencies along the second-to-last axis, the non-negative ones along the last.
    /// </summary>
    public static Tensor Rfft2(this Tensor x)
    {
        const string op = "rfft2";
        x.CheckAlive(op);
        if (x.Rank < 2) throw new ArgumentException($"{op}: input {x.Describe()} needs at least two axes.");
        int h = x.shape[^2], w = x.shape[^1];
        if (h == 0 || w == 0) throw new ArgumentException($"{op}: input {x.Describe()} has a transformed axis of length 0 (h = {h}, w = {w}); both must be at least 1.");
        int batch = checked((int)Shape.Size(x.shape.AsSpan(0, x.Rank - 2)));
        var y = Tensor.Empty([.. x.shape[..^1], w / 2 + 1, 2], x.Device);
        x.K.FftKernels().Rfft2(x.Buffer, y.Buffer, batch, h, w);
        return y.Record(op, [x], g => [Irfft2(g * HalfSpectrumWeights(w, 0.5f, 1f, keepEdgeImag: true, g.Device), h, w) * ((float)h * w)]);
    }

    /// <summary>
    /// Inverse of <see cref="Rfft2"/> (NumPy's irfft2, 1/(h·w)): [..., h, w/2 + 1, 2] to real [..., h, w]. The input's
    /// second-to-last axis must be w/2 + 1 and the one before it h.
    /// </summary>
    public static Tensor Irfft2(this Tensor xhat, int h, int w)
    {
        const string op = "irfft2";
        CheckComplex(op, xhat, 2);
        if (h < 1 || w < 1) throw new ArgumentException($"{op}: output size h = {h}, w = {w} must be at least 1 in both axes.");
        int rows = xhat.shape[^3], bins = xhat.shape[^2];
        if (rows != h || bins != w / 2 + 1)
            throw new ArgumentException($"{op}: input {xhat.Describe()} has [{rows}, {bins}] frequencies, but output [h, w] = [{h}, {w}] needs [h, w/2 + 1] = [{h}, {w / 2 + 1}].");
        int batch = checked((int)Shape.Size(xhat.shape.AsSpan(0, xhat.Rank - 3)));
        var y = Tensor.Empty([.. xhat.shape[..^3], h, w], xhat.Device);
        xhat.K.FftKernels().Irfft2(xhat.Buffer, y.Buffer, batch, h, w);
        return y.Record(op, [xhat], g => [Rfft2(g) * HalfSpectrumWeights(w, 2f / ((float)h * w), 1f / ((float)h * w), keepEdgeImag: true, g.Device)]);
    }

    /// <summary>
    /// Complex FFT along the second-to-last axis of z [..., n, 2] (the last axis is (re, im)): the forward transform
    /// y_k = Σ_j z_j e^{-2πi jk/n} unnormalised, or with <paramref name="inverse"/> NumPy's ifft
    /// (1/n) Σ_k z_k e^{+2πi jk/n}.
    /// </summary>
    public static Tensor Fft(this Tensor z, bool inverse = false)
    {
        const string op = "fft";
        CheckComplex(op, z, 1);
        int n = z.shape[^2];
        if (n == 0) throw new ArgumentException($"{op}: input {z.Describe()} has length 0 along the transformed axis; it must be at least 1.");
        return FftScaled(z, inverse, inverse ? 1f / n : 1f);
    }

    /// <summary>scale · (inverse ? Fᴴ : F) z; its adjoint is the opposite direction with the same scale.</summary>
    private static Tensor FftScaled(Tensor z, bool inverse, float scale)
    {
        int n = z.shape[^2];
        int batch = checked((int)Shape.Size(z.shape.AsSpan(0, z.Rank - 2)));
        var y = Tensor.Empty(z.shape, z.Device);
        z.K.FftKernels().Fft(z.Buffer, y.Buffer, batch, n, inverse, scale);
        return y.Record(inverse ? "ifft" : "fft", [z], g => [FftScaled(g, !inverse, scale)]);
    }

    /// <summary>Checks a complex tensor: alive, at least <paramref name="transformAxes"/> axes before a last axis of size 2.</summary>
    private static void CheckComplex(string op, Tensor z, int transformAxes)
    {
        z.CheckAlive(op);
        if (z.Rank < transformAxes + 1 || z.shape[^1] != 2)
            throw new ArgumentException(
                $"{op}: input {z.Describe()} must be complex, [..., {string.Join(", ", Enumerable.Repeat("n", transformAxes))}, 2] with (re, im) in a last axis of size 2.");
    }

    /// <summary>
    /// A constant [n/2 + 1, 2] tensor: <paramref name="inner"/> on the bins strictly between DC and Nyquist,
    /// <paramref name="edge"/> on DC and (even n) Nyquist, whose imaginary entries are 0 unless
    /// <paramref name="keepEdgeImag"/>.
    /// </summary>
    private static Tensor HalfSpectrumWeights(int n, float inner, float edge, bool keepEdgeImag, Engine.Kernels.Device device)
    {
        int bins = n / 2 + 1;
        var w = new float[2 * bins];
        for (int k = 0; k < bins; k++)
        {
            bool isEdge = k == 0 || 2 * k == n;
            w[2 * k] = isEdge ? edge : inner;
            w[2 * k + 1] = isEdge ? (keepEdgeImag ? edge : 0f) : inner;
        }
        return Tensor.FromArray(w, [bins, 2], device);
    }
}
