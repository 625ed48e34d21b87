namespace Engine.Kernels;

/// <summary>
/// The one summation order of <see cref="IOptimizerKernels.SumOfSquares"/>, fixed by the buffer lengths alone, which
/// every kernel set follows exactly so that the result (and SAM's perturbation scale computed from it) is bitwise
/// the same on all of them, on any core count or vector width:
/// <list type="number">
/// <item>Each buffer is cut into blocks of <see cref="Block"/> elements (the last may be shorter); the blocks of all
/// buffers, buffer by buffer in list order, form one sequence P_0 .. P_{m-1}.</item>
/// <item>In a block, lane j (j &lt; <see cref="Lanes"/>) sums v_i² for the block's elements i ≡ j (mod
/// <see cref="Lanes"/>), counted from the block start, in increasing i, starting from 0. v_i = x_i, or the float
/// product w_i · x_i where a weight buffer is given; v_i² is formed in double (exact) and added in double.</item>
/// <item>The lanes of a block are combined by halving: for s = 16, 8, 4, 2, 1, lane j += lane j + s for j &lt; s;
/// lane 0 is the block's partial P.</item>
/// <item>The partials are combined by doubling strides: for s = 1, 2, 4, ... while s &lt; m, P_i += P_{i+s} for every
/// i that is a multiple of 2s with i + s &lt; m; P_0 is the result (0 when there are no elements).</item>
/// </list>
/// Devices without fp64 follow the same order in double-float arithmetic (<see cref="DoubleFloat"/>): v_i² enters
/// a lane as three exact float products, each added with a two-float addition. Their result is within a relative
/// 2^-38 of the fp64 one (each two-float addition of non-negative terms errs by at most about 2^-47 relative,
/// and a result passes through at most 3·128 lane additions, 5 lane levels and log2 m block levels).
/// </summary>
internal static class SumOfSquaresOrder
{
    /// <summary>Elements per block.</summary>
    public const int Block = 4096;

    /// <summary>Interleaved partial sums per block (a multiple of every vector width in doubles up to 16).</summary>
    public const int Lanes = 32;

    /// <summary>Number of blocks of a buffer of <paramref name="length"/> elements.</summary>
    public static long Blocks(long length) => (length + Block - 1) / Block;
}
