namespace Engine.Kernels;

/// <summary>
/// A kernel set whose <see cref="IKernelSet.Gemm"/> reads an operand through an index map (<see cref="GemmOperand"/>)
/// with the arithmetic of the plain product: the result has the bits of gathering the operand into a buffer of its
/// own and multiplying that. The compiler asks before it folds a permute into the loads of the products that read
/// its result, so a compiled step keeps eager's bits.
/// </summary>
/// <remarks>
/// Every set runs mapped operands (the map is part of the core contract); this says only that the mapped product
/// sums in the plain product's order. The CPU set packs mapped and plain operands into the same panels for the same
/// micro-kernel. The ILGPU set does not implement it: its mapped kernel is not the tiled kernel that runs plain
/// products.
/// </remarks>
public interface IGemmGatherKernels
{
    /// <summary>
    /// True when a product of <paramref name="size"/> whose operands are read through maps computes the same bits as
    /// the product of the gathered operands, stored as <paramref name="transposedA"/> and <paramref name="transposedB"/> say.
    /// </summary>
    bool GatherKeepsBits(GemmSize size, bool transposedA, bool transposedB);
}
