namespace Engine.Kernels;

/// <summary>
/// Fast Fourier transforms, a capability a kernel set may implement (both built-in sets do). Without it,
/// <see cref="KernelCapabilities.FftKernels"/> hands out a composite that computes each transform as a dense DFT in
/// core GEMMs (O(n²) per row instead of O(n log n)).
/// </summary>
/// <remarks>
/// Complex data is interleaved float pairs (re, im). Every transform runs along the last axis (two last axes for the
/// 2-D ones), batched over the leading rows. Lengths are ≥ 1 (callers reject 0); any length works: the CPU set uses a
/// radix-4/2 path for powers of two, a mixed-radix path for lengths with prime factors 2, 3, 5, 7 and Bluestein's
/// chirp-z transform for lengths with a larger prime factor (see Engine.Kernels.Cpu.Fft.LanePlan). Input and output
/// must not overlap.
/// </remarks>
public interface IFftKernels
{
    /// <summary>
    /// Batched complex DFT of x [batch, n, 2] into y [batch, n, 2]:
    /// y[b, k] = scale · Σ_j x[b, j] · e^{∓2πi jk/n}, minus sign for the forward transform, plus for
    /// <paramref name="inverse"/>. No normalisation beyond <paramref name="scale"/> (pass 1/n for NumPy's ifft).
    /// </summary>
    void Fft(DeviceBuffer<float> x, [Writes] DeviceBuffer<float> y, int batch, int n, bool inverse, float scale);

    /// <summary>
    /// Batched real-input DFT: x [batch, n] real to y [batch, n/2 + 1, 2], the non-negative frequencies
    /// y[b, k] = Σ_j x[b, j] e^{-2πi jk/n}, k ≤ n/2 (NumPy's rfft, unnormalised). The imaginary parts of bin 0 and (even
    /// n) bin n/2 are written as exact zeros.
    /// </summary>
    void Rfft(DeviceBuffer<float> x, [Writes] DeviceBuffer<float> y, int batch, int n);

    /// <summary>
    /// Batched inverse of <see cref="Rfft"/> (NumPy's irfft, "backward" norm): x [batch, n/2 + 1, 2] to y [batch, n] real,
    /// y[b, j] = (1/n) Σ_{k &lt; n} X_k e^{2πi jk/n} with the Hermitian extension X_{n-k} = conj(X_k). The imaginary
    /// parts of bin 0 and (even n) bin n/2 are ignored, as NumPy does.
    /// </summary>
    void Irfft(DeviceBuffer<float> x, [Writes] DeviceBuffer<float> y, int batch, int n);

    /// <summary>
    /// Batched 2-D real-input DFT over the last two axes: x [batch, h, w] to y [batch, h, w/2 + 1, 2]
    /// (NumPy's rfft2: rfft along w, then a complex DFT along h). Unnormalised.
    /// </summary>
    void Rfft2(DeviceBuffer<float> x, [Writes] DeviceBuffer<float> y, int batch, int h, int w);

    /// <summary>
    /// Batched inverse of <see cref="Rfft2"/> (NumPy's irfft2): x [batch, h, w/2 + 1, 2] to y [batch, h, w] real:
    /// an inverse complex DFT along h, then <see cref="Irfft"/> along w; normalised by 1/(h·w).
    /// </summary>
    void Irfft2(DeviceBuffer<float> x, [Writes] DeviceBuffer<float> y, int batch, int h, int w);
}
