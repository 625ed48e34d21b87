using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>Scalars of one batched GEMM launch.</summary>
internal struct GemmParams
{
    public int Batch, M, N, K;
    public long StrideA, StrideB, StrideC;
    public float Alpha, Beta;
    public int TransA, TransB;
    /// <summary>log2 of the tile edge T (T = <see cref="IlgpuKernels.GemmMicro"/> * group edge).</summary>
    public int TileLog2;
    /// <summary>log2 of the K-slab width staged per step.</summary>
    public int SlabLog2;
    /// <summary>Lengths of the index maps of A, B and C (0: no map, the view is a dummy).</summary>
    public int ALen, BLen, CLen;
    /// <summary>Entries between the maps of consecutive matrices of A and B (0: one map for the batch).</summary>
    public long AIdxStride, BIdxStride;
}

internal static partial class IlgpuKernels
{
    /// <summary>Each thread computes a GemmMicro x GemmMicro block of C (register blocking).</summary>
    internal const int GemmMicro = 4;

    /// <summary>Largest tile edge T the shared arrays hold (group edge 16 on GPUs).</summary>
    internal const int MaxGemmTile = 64;

    /// <summary>Largest K-slab width the shared arrays hold.</summary>
    internal const int MaxGemmSlab = 16;

    // One padding column per row of each shared array spreads strided accesses over GPU shared-memory banks.
    private const int APitch = MaxGemmSlab + 1;
    private const int BPitch = MaxGemmTile + 1;

    /// <summary>
    /// Tiled batched GEMM with shared memory and register blocking: C_p = alpha op(A_p) op(B_p) + beta C_p.
    /// A group of g x g threads (g = Group.DimX = Group.DimY, a power of two) computes one T x T tile of C,
    /// T = 4 g, each thread a 4 x 4 block whose rows are ty + r g and columns tx + c g (so stores and B reads are
    /// consecutive across tx). K is walked in slabs of KT columns: the group stages op(A)[tile rows, slab] and
    /// op(B)[slab, tile columns] in shared memory (each load arranged so consecutive threads read consecutive
    /// addresses, plain or transposed), synchronises, accumulates, synchronises. Out-of-range elements load as zero,
    /// so M, N, K need not be multiples of anything and K = 0 yields alpha * 0. Tiles (grid x: columns, y: rows)
    /// and batch entries (z) are visited with grid-stride loops, so any grid is correct. With beta = 0, C is never read.
    /// Each step accumulates with an explicit fused multiply-add (<c>fma.rn</c> on PTX), so a GPU computes the bits the
    /// emulator does.
    /// </summary>
    /// <remarks>
    /// Index maps (<see cref="GemmOperand"/>): with a map of length L > 0, the element at offset o of a
    /// matrix is read (or, for C, written) at (o / L) L + index[o % L]; the gather happens in the tile loads and the
    /// scatter in the stores, so a mapped GEMM moves exactly the data of a plain one.
    /// </remarks>
    internal static void Gemm<TStore>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<int> aIdx, ArrayView<int> bIdx, ArrayView<int> cIdx, GemmParams p, TStore store)
        where TStore : struct, IGemmStoreStep
    {
        var sA = SharedMemory.Allocate<float>(MaxGemmTile * APitch);
        var sB = SharedMemory.Allocate<float>(MaxGemmSlab * BPitch);
        int g = Group.DimX;
        int tx = Group.IdxX;
        int ty = Group.IdxY;
        int tid = ty * g + tx;
        int threads = g * g;
        int t = 1 << p.TileLog2;
        int kt = 1 << p.SlabLog2;
        int slabElems = t * kt;
        int tilesM = (p.M + t - 1) / t;
        int tilesN = (p.N + t - 1) / t;
        for (int batch = Grid.IdxZ; batch < p.Batch; batch += Grid.DimZ)
        {
            long aBase = batch * p.StrideA;
            long bBase = batch * p.StrideB;
            long aMap = batch * p.AIdxStride;
            long bMap = batch * p.BIdxStride;
            long cBase = batch * p.StrideC;
            for (int tm = Grid.IdxY; tm < tilesM; tm += Grid.DimY)
            {
                for (int tn = Grid.IdxX; tn < tilesN; tn += Grid.DimX)
                {
                    int row0 = tm * t;
                    int col0 = tn * t;
                    float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f;
                    float c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
                    float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f;
                    float c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
                    for (int k0 = 0; k0 < p.K; k0 += kt)
                    {
                        // sA[i, l] = op(A)[row0 + i, k0 + l]
                        for (int e = tid; e < slabElems; e += threads)
                        {
                            int i, l;
                            if (p.TransA == 0) { i = e >> p.SlabLog2; l = e & (kt - 1); } // A is m x k: l contiguous
                            else { i = e & (t - 1); l = e >> p.TileLog2; }               // A is k x m: i contiguous
                            int r = row0 + i, kk = k0 + l;
                            float v = 0f;
                            if (r < p.M && kk < p.K)
                                v = a[aBase + Map(p.TransA == 0 ? (long)r * p.K + kk : (long)kk * p.M + r, aIdx, p.ALen, aMap)];
                            sA[i * APitch + l] = v;
                        }
                        // sB[l, j] = op(B)[k0 + l, col0 + j]
                        for (int e = tid; e < slabElems; e += threads)
                        {
                            int j, l;
                            if (p.TransB == 0) { j = e & (t - 1); l = e >> p.TileLog2; } // B is k x n: j contiguous
                            else { l = e & (kt - 1); j = e >> p.SlabLog2; }              // B is n x k: l contiguous
                            int col = col0 + j, kk = k0 + l;
                            float v = 0f;
                            if (col < p.N && kk < p.K)
                                v = b[bBase + Map(p.TransB == 0 ? (long)kk * p.N + col : (long)col * p.K + kk, bIdx, p.BLen, bMap)];
                            sB[l * BPitch + j] = v;
                        }
                        Group.Barrier();
                        for (int l = 0; l < kt; l++)
                        {
                            float a0 = sA[ty * APitch + l];
                            float a1 = sA[(ty + 1 * g) * APitch + l];
                            float a2 = sA[(ty + 2 * g) * APitch + l];
                            float a3 = sA[(ty + 3 * g) * APitch + l];
                            float b0 = sB[l * BPitch + tx];
                            float b1 = sB[l * BPitch + tx + 1 * g];
                            float b2 = sB[l * BPitch + tx + 2 * g];
                            float b3 = sB[l * BPitch + tx + 3 * g];
                            c00 = KernelMath.Fma(a0, b0, c00); c01 = KernelMath.Fma(a0, b1, c01); c02 = KernelMath.Fma(a0, b2, c02); c03 = KernelMath.Fma(a0, b3, c03);
                            c10 = KernelMath.Fma(a1, b0, c10); c11 = KernelMath.Fma(a1, b1, c11); c12 = KernelMath.Fma(a1, b2, c12); c13 = KernelMath.Fma(a1, b3, c13);
                            c20 = KernelMath.Fma(a2, b0, c20); c21 = KernelMath.Fma(a2, b1, c21); c22 = KernelMath.Fma(a2, b2, c22); c23 = KernelMath.Fma(a2, b3, c23);
                            c30 = KernelMath.Fma(a3, b0, c30); c31 = KernelMath.Fma(a3, b1, c31); c32 = KernelMath.Fma(a3, b2, c32); c33 = KernelMath.Fma(a3, b3, c33);
                        }
                        Group.Barrier();
                    }
                    Store(c, cIdx, p, store, batch, cBase, row0 + ty, col0, tx, g, c00, c01, c02, c03);
                    Store(c, cIdx, p, store, batch, cBase, row0 + ty + 1 * g, col0, tx, g, c10, c11, c12, c13);
                    Store(c, cIdx, p, store, batch, cBase, row0 + ty + 2 * g, col0, tx, g, c20, c21, c22, c23);
                    Store(c, cIdx, p, store, batch, cBase, row0 + ty + 3 * g, col0, tx, g, c30, c31, c32, c33);
                }
            }
        }
    }

    /// <summary>Writes one row of a thread's block: C[row, col0 + tx + c g] = alpha acc_c (+ beta C), in range only.</summary>
    private static void Store<TStore>(ArrayView<float> c, ArrayView<int> cIdx, GemmParams p, TStore store, int batch, long cBase, int row, int col0, int tx, int g,
        float v0, float v1, float v2, float v3)
        where TStore : struct, IGemmStoreStep
    {
        if (row >= p.M) return;
        long rowOffset = (long)row * p.N, batchRow = (long)batch * p.M + row;
        StoreOne(c, cIdx, p, store, batchRow, cBase, rowOffset, col0 + tx, v0);
        StoreOne(c, cIdx, p, store, batchRow, cBase, rowOffset, col0 + tx + g, v1);
        StoreOne(c, cIdx, p, store, batchRow, cBase, rowOffset, col0 + tx + 2 * g, v2);
        StoreOne(c, cIdx, p, store, batchRow, cBase, rowOffset, col0 + tx + 3 * g, v3);
    }

    /// <summary>
    /// The offset where element <paramref name="o"/> of a mapped matrix lives, its map starting at entry
    /// <paramref name="map"/> (len 0: o itself).
    /// </summary>
    private static long Map(long o, ArrayView<int> idx, int len, long map = 0)
    {
        if (len == 0) return o;
        long blk = o / len;
        return blk * len + idx[map + o - blk * len];
    }

    private static void StoreOne<TStore>(ArrayView<float> c, ArrayView<int> cIdx, GemmParams p, TStore store, long batchRow, long cBase, long rowOffset,
        int col, float acc)
        where TStore : struct, IGemmStoreStep
    {
        if (col >= p.N) return;
        long ci = cBase + Map(rowOffset + col, cIdx, p.CLen);
        float v = p.Alpha * acc;
        if (p.Beta != 0f) v += p.Beta * c[ci];
        // An epilogue never comes with a C map (refused on the host), so ci is C's position for the residual too.
        c[ci] = store.Finish(v, ci, batchRow, col);
    }
}
