namespace Engine.Kernels;

/// <summary>
/// A kernel set whose <see cref="IKernelSet.Gemm"/> runs some <see cref="GemmEpilogue"/>s in its store (both sets:
/// bias, residual and activation, bit for bit as the separate elementwise calls). The compiler asks before it folds
/// a bias addition, a residual addition or an activation into the product that produced its operand.
/// </summary>
/// <remarks>
/// A set implementing it must round as the separate calls do: the product to float, then each addition on its own
/// (a GPU compiler contracting the bias or residual addition into a fused multiply-add would change the bits), then
/// each activation step as its elementwise kernel computes it. The CPU set applies the epilogue to each block of C
/// after its last k slice; the ILGPU set in its kernels' stores, where on PTX every float product is
/// <c>mul.rn.f32</c>, which ptxas never contracts (checked on the generated PTX; no GPU has run it here).
/// </remarks>
public interface IGemmEpilogueKernels
{
    /// <summary>
    /// True when <see cref="IKernelSet.Gemm"/> runs an epilogue with a bias (when <paramref name="bias"/>), a residual
    /// (when <paramref name="residual"/>) and the steps <paramref name="activation"/> (null: none).
    /// </summary>
    bool RunsGemmEpilogue(bool bias, bool residual = false, IReadOnlyList<UnaryStep>? activation = null);

    /// <summary>
    /// True when <see cref="IKernelSet.Gemm"/> also runs a tree step (<see cref="GemmEpilogue.Tree"/>) of
    /// <paramref name="tree"/> after what <see cref="RunsGemmEpilogue"/> accepts. False unless a set says otherwise.
    /// </summary>
    bool RunsGemmTree(ElementwiseExpression tree) => false;
}
