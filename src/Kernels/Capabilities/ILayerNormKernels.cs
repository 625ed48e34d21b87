namespace Engine.Kernels;

/// <summary>Rows and columns of a layer normalisation: x is viewed as [Rows, Cols] and normalised per row.</summary>
/// <param name="Rows">Number of rows (the product of the leading axes).</param>
/// <param name="Cols">Length of the normalised (last) axis.</param>
public readonly record struct LayerNormSize(int Rows, int Cols);

/// <summary>The per-row statistics a layer normalisation saves for its backward pass, both [rows].</summary>
/// <param name="Mean">Row means.</param>
/// <param name="Rstd">Reciprocal row standard deviations 1 / sqrt(var + eps).</param>
public readonly record struct LayerNormStats(DeviceBuffer<float> Mean, DeviceBuffer<float> Rstd);

/// <summary>The three gradients of a layer normalisation.</summary>
/// <param name="Dx">Input gradient [rows, cols].</param>
/// <param name="Dgamma">Scale gradient [cols].</param>
/// <param name="Dbeta">Shift gradient [cols].</param>
public readonly record struct LayerNormGradients(DeviceBuffer<float> Dx, DeviceBuffer<float> Dgamma, DeviceBuffer<float> Dbeta);

/// <summary>
/// Fused layer normalisation, a capability a kernel set may implement (both built-in sets do). Without it,
/// <see cref="KernelCapabilities.LayerNormKernels"/> hands out a composite of core reductions and broadcasts.
/// </summary>
public interface ILayerNormKernels
{
    /// <summary>
    /// Layer normalisation of x viewed as [rows, cols], per row: mean = Σx / cols, rstd = 1 / sqrt(var + eps) with the
    /// biased variance Σ(x - mean)² / cols, y = (x - mean) · rstd · gamma + beta. gamma and beta are [cols]; the row
    /// statistics are saved into <paramref name="stats"/> for the backward pass. Statistics accumulate in double on
    /// the CPU set (two passes: mean, then squared deviations) and in compensated float on ILGPU. When cols is 0, mean
    /// and rstd are NaN.
    /// </summary>
    void LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, [Writes] DeviceBuffer<float> y,
        [Writes] in LayerNormStats stats, LayerNormSize size, float eps);

    /// <summary>
    /// Backward of <see cref="LayerNorm"/> from the saved statistics: with xhat = (x - mean) · rstd and
    /// dxhat = dy · gamma, dx = rstd · (dxhat - mean(dxhat) - xhat · mean(dxhat · xhat)) (row means over cols),
    /// dgamma = Σ_rows dy · xhat, dbeta = Σ_rows dy. All three outputs are overwritten (not accumulated). The column
    /// sums are deterministic: the CPU set splits rows into a fixed, shape-only set of blocks and adds their double
    /// partials in block order.
    /// </summary>
    void LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, in LayerNormStats stats, DeviceBuffer<float> gamma,
        [Writes] in LayerNormGradients gradients, LayerNormSize size);
}
