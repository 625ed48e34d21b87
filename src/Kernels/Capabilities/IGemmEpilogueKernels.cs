namespace Engine.Kernels;

/// <summary>
/// A kernel set whose <see cref="IKernelSet.Gemm"/> runs some <see cref="GemmEpilogue"/>s in its store (the CPU set:
/// bias, residual and activation, bit for bit as the separate elementwise calls). The compiler asks before it folds
/// a bias addition, a residual addition or an activation into the product that produced its operand.
/// </summary>
/// <remarks>
/// A set implementing it must round as the separate calls do: the product to float, then each addition on its own
/// (a GPU compiler contracting the bias or residual addition into a fused multiply-add would change the bits), then
/// each activation step as its elementwise kernel computes it. The ILGPU set does not implement it; nothing here can
/// yet check a GPU's rounding.
/// </remarks>
public interface IGemmEpilogueKernels
{
    /// <summary>
    /// True when <see cref="IKernelSet.Gemm"/> runs an epilogue with a bias (when <paramref name="bias"/>), a residual
    /// (when <paramref name="residual"/>) and the steps <paramref name="activation"/> (null: none).
    /// </summary>
    bool RunsGemmEpilogue(bool bias, bool residual = false, IReadOnlyList<UnaryStep>? activation = null);
}
