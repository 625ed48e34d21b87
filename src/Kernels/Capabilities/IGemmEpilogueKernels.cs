namespace Engine.Kernels;

/// <summary>
/// A kernel set whose <see cref="IKernelSet.Gemm"/> runs some <see cref="GemmEpilogue"/>s in its store (the CPU set:
/// the bias). The compiler asks before it folds a bias addition into the product that produced its operand.
/// </summary>
public interface IGemmEpilogueKernels
{
    /// <summary>True when <see cref="IKernelSet.Gemm"/> runs an epilogue with a bias (when <paramref name="bias"/>) and <paramref name="activation"/> (null: none).</summary>
    bool RunsGemmEpilogue(bool bias, UnaryOp? activation);
}
