using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>Four floats moved as one 16-byte vector: <c>ld/st.shared.v4</c> and, on 16-byte aligned data, <c>.global.v4</c>.</summary>
internal struct Vec4
{
    public float X, Y, Z, W;
}

/// <summary>Scalars of one tiled GEMM launch (no index maps; every matrix below 2^31 elements).</summary>
internal struct GemmTiledParams
{
    public int Batch, M, N, K;
    public long StrideA, StrideB, StrideC;
    public float Alpha, Beta;
}

/// <summary>The edge g of a tiled-GEMM group, a compile-time constant: g x g threads compute an 8g x 8g tile of C.</summary>
internal interface IGemmGroup
{
    int Edge { get; }
}

/// <summary>A compile-time switch of a generic kernel (transposed operand, 16-byte vector access).</summary>
internal interface IKernelSwitch
{
    bool On { get; }
}

#pragma warning disable CS1591 // the instantiations say what they are
internal struct GemmGroup16 : IGemmGroup { public int Edge => 16; }
internal struct GemmGroup8 : IGemmGroup { public int Edge => 8; }
internal struct GemmGroup4 : IGemmGroup { public int Edge => 4; }
internal struct GemmGroup2 : IGemmGroup { public int Edge => 2; }
internal struct GemmGroup1 : IGemmGroup { public int Edge => 1; }
internal struct SwitchOn : IKernelSwitch { public bool On => true; }
internal struct SwitchOff : IKernelSwitch { public bool On => false; }
#pragma warning restore CS1591

/// <summary>
/// A thread's 8 x 8 block of C: row r of the block is <c>Rr</c>, its columns 0-3 in <c>L</c>, 4-7 in <c>H</c>. Rows 0-3
/// of the block are tile rows 4ty..4ty+3, rows 4-7 are tile rows 4g+4ty..; columns likewise with tx. Kept as one value
/// so ILGPU holds all 64 accumulators in registers.
/// </summary>
internal struct Block8x8
{
    public Vec4 R0L, R0H, R1L, R1H, R2L, R2H, R3L, R3H, R4L, R4H, R5L, R5H, R6L, R6H, R7L, R7H;
}

/// <summary>
/// What a GEMM kernel does to each value z = alpha · (A B)[i, j] (+ beta · C) before C receives it: the epilogue of
/// <see cref="GemmEpilogue"/> (<see cref="EpilogueStore{TActivation}"/>) or nothing (<see cref="PlainStore"/>).
/// </summary>
internal interface IGemmStoreStep
{
    /// <summary>
    /// The value C receives at element <paramref name="at"/> of its view for z, where <paramref name="row"/> is the row
    /// counted over the whole batch (batch item · M + i) and <paramref name="col"/> the column.
    /// </summary>
    float Finish(float z, long at, long row, int col);
}

/// <summary>C receives z.</summary>
internal struct PlainStore : IGemmStoreStep
{
    /// <inheritdoc />
    public readonly float Finish(float z, long at, long row, int col) => z;
}

/// <summary>
/// The epilogue of <see cref="GemmEpilogue"/>: z + bias (row <c>row mod BiasRows</c> of an N-wide bias; none when
/// <see cref="BiasRows"/> is 0), + the residual at C's position, then the activation chain; C receives the activation
/// unless an activation output takes it (C then keeps the pre-activation). Each addition rounds on its own and the
/// chain is the composed op struct the elementwise kernels run, so the bits are those of the separate calls. An absent
/// buffer's view is C's, never read.
/// </summary>
internal struct EpilogueStore<TActivation> : IGemmStoreStep where TActivation : unmanaged, IUnaryOp
{
    public ArrayView<float> Bias, Residual, Output;
    public long BiasRows;
    public int N, HasResidual, HasOutput;
    public TActivation Activation;

    /// <inheritdoc />
    public readonly float Finish(float z, long at, long row, int col)
    {
        if (BiasRows > 0) z += Bias[row % BiasRows * N + col];
        if (HasResidual != 0) z += Residual[at];
        float y = Activation.Scalar(z);
        if (HasOutput == 0) return y;
        Output[at] = y;
        return z;
    }
}

/// <summary>
/// The epilogue with a tree step (<see cref="GemmTreeStep"/>): the value <see cref="EpilogueStore{TActivation}"/> makes,
/// then the tree over it (input <see cref="Value"/>) and the other inputs at C's position (an input of one element,
/// bit k of <see cref="Scalars"/>, read as a scalar), whose result C receives. The tree is the op struct the fused
/// tree kernel runs, so the bits are those of the product followed by the separate tree call. Inputs at or beyond
/// <see cref="Arity"/> are not read.
/// </summary>
internal struct TreeStore<TActivation, TTree> : IGemmStoreStep where TActivation : unmanaged, IUnaryOp where TTree : unmanaged, ITreeOp
{
    public EpilogueStore<TActivation> Epilogue;
    public ArrayView<float> X0, X1, X2, X3;
    public int Value, Scalars, Arity;
    public TTree Tree;

    /// <inheritdoc />
    public readonly float Finish(float z, long at, long row, int col)
    {
        float v = Epilogue.Finish(z, at, row, col);
        return Tree.Scalar(Read(0, X0, v, at), Read(1, X1, v, at), Read(2, X2, v, at), Read(3, X3, v, at));
    }

    private readonly float Read(int k, ArrayView<float> x, float v, long at) =>
        k == Value ? v : k >= Arity ? 0f : x[(Scalars >> k & 1) != 0 ? 0 : at];
}

internal static partial class IlgpuKernels
{
    /// <summary>Width of the K slab staged in shared memory per step of the tiled GEMM.</summary>
    internal const int GemmSlab = 8;

    /// <summary>Largest group edge of the tiled GEMM (the shared arrays are sized for it).</summary>
    internal const int MaxGemmGroup = 16;

    /// <summary>Floats per k-row of a staged slab for the largest tile: 8g plus one Vec4 of padding.</summary>
    private const int MaxGemmPitch = 8 * MaxGemmGroup + 4;

    /// <summary>
    /// Tiled batched GEMM for GPUs: C_p = alpha op(A_p) op(B_p) + beta C_p. A group of g x g threads (g a compile-time
    /// constant, 16 on GPUs: 256 threads, 128 x 128 tiles) computes one 8g x 8g tile of C, each thread an 8 x 8 block
    /// of 64 register accumulators. K is walked in slabs of 8: op(A) and op(B) slabs are staged k-major in shared
    /// memory (two buffers: the next slab is loaded while the current one is used, one barrier per slab), and each
    /// k step of the inner loop (unrolled) reads four 16-byte vectors (<c>ld.shared.v4</c>) and issues 64 fused
    /// multiply-adds. Out-of-range elements load as zero, so M, N and K need not be multiples of anything, the inner
    /// loop has no bounds checks, and K = 0 gives alpha · 0. Indices inside a matrix are 32-bit; batch offsets 64-bit.
    /// Tiles (grid x: columns, y: rows) and batch entries (z) are visited with grid-stride loops, so any grid is correct.
    /// With beta = 0, C is never read.
    /// </summary>
    /// <remarks>
    /// Compile-time switches: <typeparamref name="TTransA"/>/<typeparamref name="TTransB"/> (stored layouts) and
    /// <typeparamref name="TVector"/>: 16-byte global loads and stores, which the host selects only when every extent
    /// and stride is a multiple of 4 (each 4-element chunk is then aligned and wholly inside or outside the matrix).
    /// <typeparamref name="TStore"/> finishes each stored value (an epilogue, or nothing).
    /// Shared memory: a k-row of a slab holds 8g floats plus 4 of padding, which keeps the transposing stores of row-major
    /// operands free of bank conflicts.
    /// </remarks>
    internal static void GemmTiled<TGroup, TTransA, TTransB, TVector, TStore>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmTiledParams p,
        TStore store)
        where TGroup : struct, IGemmGroup
        where TTransA : struct, IKernelSwitch
        where TTransB : struct, IKernelSwitch
        where TVector : struct, IKernelSwitch
        where TStore : struct, IGemmStoreStep
    {
        var sA = SharedMemory.Allocate<float>(2 * GemmSlab * MaxGemmPitch);
        var sB = SharedMemory.Allocate<float>(2 * GemmSlab * MaxGemmPitch);
        var sA4 = sA.Cast<Vec4>();
        var sB4 = sB.Cast<Vec4>();
        int g = default(TGroup).Edge;
        int tile = 8 * g;
        int pitch4 = 2 * g + 1;
        int slab4 = GemmSlab * pitch4;
        int tx = Group.IdxX, ty = Group.IdxY;
        int tid = ty * g + tx;
        int threads = g * g;
        int chunks = 2 * tile; // Vec4 chunks of one operand slab: 8 x tile floats / 4
        int tilesM = (p.M + tile - 1) / tile;
        int tilesN = (p.N + tile - 1) / tile;
        int slabs = (p.K + GemmSlab - 1) / GemmSlab;
        for (int batch = Grid.IdxZ; batch < p.Batch; batch += Grid.DimZ)
        {
            long aBase = batch * p.StrideA, bBase = batch * p.StrideB, cBase = batch * p.StrideC;
            for (int tm = Grid.IdxY; tm < tilesM; tm += Grid.DimY)
            {
                for (int tn = Grid.IdxX; tn < tilesN; tn += Grid.DimX)
                {
                    int row0 = tm * tile, col0 = tn * tile;
                    for (int ch = tid; ch < chunks; ch += threads)
                    {
                        StageA<TTransA>(sA, sA4, LoadA<TTransA, TVector>(a, aBase, p, row0, 0, ch, g), 0, ch, g);
                        StageB<TTransB>(sB, sB4, LoadB<TTransB, TVector>(b, bBase, p, col0, 0, ch, g), 0, ch, g);
                    }
                    Group.Barrier();
                    var acc = default(Block8x8);
                    for (int s = 0; s < slabs; s++)
                    {
                        int cur = (s & 1) * slab4;
                        int next = slab4 - cur;
                        bool more = s + 1 < slabs;
                        int k1 = (s + 1) * GemmSlab;
                        // The next slab's first chunk goes to registers before the math, hiding its latency.
                        var ra = default(Vec4);
                        var rb = default(Vec4);
                        if (more)
                        {
                            ra = LoadA<TTransA, TVector>(a, aBase, p, row0, k1, tid, g);
                            rb = LoadB<TTransB, TVector>(b, bBase, p, col0, k1, tid, g);
                        }
                        acc = SlabProduct(acc, sA4, sB4, cur, pitch4, tx, ty, g);
                        if (more)
                        {
                            StageA<TTransA>(sA, sA4, ra, next, tid, g);
                            StageB<TTransB>(sB, sB4, rb, next, tid, g);
                            for (int ch = tid + threads; ch < chunks; ch += threads)
                            {
                                StageA<TTransA>(sA, sA4, LoadA<TTransA, TVector>(a, aBase, p, row0, k1, ch, g), next, ch, g);
                                StageB<TTransB>(sB, sB4, LoadB<TTransB, TVector>(b, bBase, p, col0, k1, ch, g), next, ch, g);
                            }
                        }
                        Group.Barrier();
                    }
                    StoreBlock<TVector, TStore>(c, cBase, (long)batch * p.M, p, store, acc, row0 + 4 * ty, row0 + 4 * g + 4 * ty, col0 + 4 * tx, col0 + 4 * g + 4 * tx);
                }
            }
        }
    }

    /// <summary>
    /// Chunk <paramref name="ch"/> (4 elements) of the op(A) slab at k0 for the tile starting at row0, zero outside A.
    /// Row-major A (m x k): chunk = (tile row ch / 2, k offset 4 (ch mod 2)); transposed A (k x m): chunk =
    /// (k offset ch / 2g, tile rows 4 (ch mod 2g)..): 4 consecutive elements in memory either way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vec4 LoadA<TTrans, TVector>(ArrayView<float> a, long aBase, GemmTiledParams p, int row0, int k0, int ch, int g)
        where TTrans : struct, IKernelSwitch where TVector : struct, IKernelSwitch
    {
        if (!default(TTrans).On)
        {
            int row = row0 + (ch >> 1), k = k0 + ((ch & 1) << 2);
            return LoadRun<TVector>(a, aBase, row * p.K + k, row < p.M, k, p.K);
        }
        int kk = k0 + ch / (2 * g), r = row0 + ((ch & (2 * g - 1)) << 2);
        return LoadRun<TVector>(a, aBase, kk * p.M + r, kk < p.K, r, p.M);
    }

    /// <summary>Chunk <paramref name="ch"/> of the op(B) slab at k0 for the tile starting at col0 (see <see cref="LoadA"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vec4 LoadB<TTrans, TVector>(ArrayView<float> b, long bBase, GemmTiledParams p, int col0, int k0, int ch, int g)
        where TTrans : struct, IKernelSwitch where TVector : struct, IKernelSwitch
    {
        if (!default(TTrans).On)
        {
            int kk = k0 + ch / (2 * g), col = col0 + ((ch & (2 * g - 1)) << 2);
            return LoadRun<TVector>(b, bBase, kk * p.N + col, kk < p.K, col, p.N);
        }
        int cl = col0 + (ch >> 1), k = k0 + ((ch & 1) << 2);
        return LoadRun<TVector>(b, bBase, cl * p.K + k, cl < p.N, k, p.K);
    }

    /// <summary>
    /// Elements matrix + offset .. +3 of a run along a contiguous dimension whose first index is
    /// <paramref name="first"/> of <paramref name="extent"/>; zero where <paramref name="lineInRange"/> is false or past
    /// the extent. The vector form needs the matrix start, offset and extent multiples of 4 (then the run is aligned and
    /// wholly inside or outside).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vec4 LoadRun<TVector>(ArrayView<float> x, long matrix, int offset, bool lineInRange, int first, int extent)
        where TVector : struct, IKernelSwitch
    {
        var v = default(Vec4);
        if (!lineInRange) return v;
        if (default(TVector).On)
        {
            if (first < extent) v = x.Cast<Vec4>()[(matrix >> 2) + (offset >> 2)];
            return v;
        }
        long at = matrix + offset;
        if (first < extent) v.X = x[at];
        if (first + 1 < extent) v.Y = x[at + 1];
        if (first + 2 < extent) v.Z = x[at + 2];
        if (first + 3 < extent) v.W = x[at + 3];
        return v;
    }

    /// <summary>Writes chunk <paramref name="ch"/> of the op(A) slab into the buffer at Vec4 offset <paramref name="buffer4"/>, k-major.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageA<TTrans>(ArrayView<float> s, ArrayView<Vec4> s4, Vec4 v, int buffer4, int ch, int g)
        where TTrans : struct, IKernelSwitch
    {
        if (default(TTrans).On) StageRun(s4, v, buffer4, ch, g);
        else StageColumn(s, v, buffer4, ch, g);
    }

    /// <summary>Writes chunk <paramref name="ch"/> of the op(B) slab into the buffer at Vec4 offset <paramref name="buffer4"/>, k-major.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageB<TTrans>(ArrayView<float> s, ArrayView<Vec4> s4, Vec4 v, int buffer4, int ch, int g)
        where TTrans : struct, IKernelSwitch
    {
        if (default(TTrans).On) StageColumn(s, v, buffer4, ch, g);
        else StageRun(s4, v, buffer4, ch, g);
    }

    /// <summary>A chunk running along the tile (4 tile rows or columns at one k): one 16-byte store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageRun(ArrayView<Vec4> s4, Vec4 v, int buffer4, int ch, int g) =>
        s4[buffer4 + ch / (2 * g) * (2 * g + 1) + (ch & (2 * g - 1))] = v;

    /// <summary>A chunk running along k (one tile row or column, 4 k): four stores, one per k-row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageColumn(ArrayView<float> s, Vec4 v, int buffer4, int ch, int g)
    {
        int pitch = 4 * (2 * g + 1);
        int at = 4 * buffer4 + ((ch & 1) << 2) * pitch + (ch >> 1);
        s[at] = v.X;
        s[at + pitch] = v.Y;
        s[at + 2 * pitch] = v.Z;
        s[at + 3 * pitch] = v.W;
    }

    /// <summary>The 8 k steps of one staged slab: per step four <c>ld.shared.v4</c> and 64 fused multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Block8x8 SlabProduct(Block8x8 acc, ArrayView<Vec4> sA4, ArrayView<Vec4> sB4, int buffer4, int pitch4, int tx, int ty, int g)
    {
        int ia = buffer4 + ty, ib = buffer4 + tx;
        acc = Outer(acc, sA4[ia], sA4[ia + g], sB4[ib], sB4[ib + g]);
        acc = Outer(acc, sA4[ia + pitch4], sA4[ia + pitch4 + g], sB4[ib + pitch4], sB4[ib + pitch4 + g]);
        acc = Outer(acc, sA4[ia + 2 * pitch4], sA4[ia + 2 * pitch4 + g], sB4[ib + 2 * pitch4], sB4[ib + 2 * pitch4 + g]);
        acc = Outer(acc, sA4[ia + 3 * pitch4], sA4[ia + 3 * pitch4 + g], sB4[ib + 3 * pitch4], sB4[ib + 3 * pitch4 + g]);
        acc = Outer(acc, sA4[ia + 4 * pitch4], sA4[ia + 4 * pitch4 + g], sB4[ib + 4 * pitch4], sB4[ib + 4 * pitch4 + g]);
        acc = Outer(acc, sA4[ia + 5 * pitch4], sA4[ia + 5 * pitch4 + g], sB4[ib + 5 * pitch4], sB4[ib + 5 * pitch4 + g]);
        acc = Outer(acc, sA4[ia + 6 * pitch4], sA4[ia + 6 * pitch4 + g], sB4[ib + 6 * pitch4], sB4[ib + 6 * pitch4 + g]);
        return Outer(acc, sA4[ia + 7 * pitch4], sA4[ia + 7 * pitch4 + g], sB4[ib + 7 * pitch4], sB4[ib + 7 * pitch4 + g]);
    }

    /// <summary>acc += (a0, a1) ⊗ (b0, b1): the 8 x 8 outer product of one k step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Block8x8 Outer(Block8x8 acc, Vec4 a0, Vec4 a1, Vec4 b0, Vec4 b1)
    {
        acc.R0L = Axpy4(a0.X, b0, acc.R0L); acc.R0H = Axpy4(a0.X, b1, acc.R0H);
        acc.R1L = Axpy4(a0.Y, b0, acc.R1L); acc.R1H = Axpy4(a0.Y, b1, acc.R1H);
        acc.R2L = Axpy4(a0.Z, b0, acc.R2L); acc.R2H = Axpy4(a0.Z, b1, acc.R2H);
        acc.R3L = Axpy4(a0.W, b0, acc.R3L); acc.R3H = Axpy4(a0.W, b1, acc.R3H);
        acc.R4L = Axpy4(a1.X, b0, acc.R4L); acc.R4H = Axpy4(a1.X, b1, acc.R4H);
        acc.R5L = Axpy4(a1.Y, b0, acc.R5L); acc.R5H = Axpy4(a1.Y, b1, acc.R5H);
        acc.R6L = Axpy4(a1.Z, b0, acc.R6L); acc.R6H = Axpy4(a1.Z, b1, acc.R6H);
        acc.R7L = Axpy4(a1.W, b0, acc.R7L); acc.R7H = Axpy4(a1.W, b1, acc.R7H);
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vec4 Axpy4(float s, Vec4 x, Vec4 y)
    {
        y.X = KernelMath.Fma(s, x.X, y.X);
        y.Y = KernelMath.Fma(s, x.Y, y.Y);
        y.Z = KernelMath.Fma(s, x.Z, y.Z);
        y.W = KernelMath.Fma(s, x.W, y.W);
        return y;
    }

    /// <summary>
    /// Writes a thread's block: rows r0..r0+3 and r1..r1+3, columns c0..c0+3 and c1..c1+3, in range only; rows are
    /// counted over the batch from <paramref name="batchRow"/> for the store step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreBlock<TVector, TStore>(ArrayView<float> c, long cBase, long batchRow, GemmTiledParams p, TStore store, Block8x8 acc,
        int r0, int r1, int c0, int c1)
        where TVector : struct, IKernelSwitch where TStore : struct, IGemmStoreStep
    {
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r0, c0, c1, acc.R0L, acc.R0H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r0 + 1, c0, c1, acc.R1L, acc.R1H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r0 + 2, c0, c1, acc.R2L, acc.R2H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r0 + 3, c0, c1, acc.R3L, acc.R3H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r1, c0, c1, acc.R4L, acc.R4H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r1 + 1, c0, c1, acc.R5L, acc.R5H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r1 + 2, c0, c1, acc.R6L, acc.R6H);
        StoreRow<TVector, TStore>(c, cBase, batchRow, p, store, r1 + 3, c0, c1, acc.R7L, acc.R7H);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TVector, TStore>(ArrayView<float> c, long cBase, long batchRow, GemmTiledParams p, TStore store, int row, int c0, int c1,
        Vec4 lo, Vec4 hi)
        where TVector : struct, IKernelSwitch where TStore : struct, IGemmStoreStep
    {
        if (row >= p.M) return;
        StoreRun<TVector, TStore>(c, cBase, batchRow + row, p, store, row * p.N, c0, lo);
        StoreRun<TVector, TStore>(c, cBase, batchRow + row, p, store, row * p.N, c1, hi);
    }

    /// <summary>
    /// C[rowOffset + col + j] = finish(alpha v_j (+ beta C)) for the in-range j &lt; 4 (one 16-byte access when
    /// vectorised), <paramref name="row"/> being the row over the batch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRun<TVector, TStore>(ArrayView<float> c, long cBase, long row, GemmTiledParams p, TStore store, int rowOffset, int col, Vec4 v)
        where TVector : struct, IKernelSwitch where TStore : struct, IGemmStoreStep
    {
        if (col >= p.N) return;
        int at = rowOffset + col;
        if (default(TVector).On)
        {
            var c4 = c.Cast<Vec4>();
            long at4 = (cBase >> 2) + (at >> 2);
            var r = default(Vec4);
            if (p.Beta != 0f)
            {
                var old = c4[at4];
                r.X = KernelMath.Fma(p.Beta, old.X, p.Alpha * v.X);
                r.Y = KernelMath.Fma(p.Beta, old.Y, p.Alpha * v.Y);
                r.Z = KernelMath.Fma(p.Beta, old.Z, p.Alpha * v.Z);
                r.W = KernelMath.Fma(p.Beta, old.W, p.Alpha * v.W);
            }
            else
            {
                r.X = p.Alpha * v.X;
                r.Y = p.Alpha * v.Y;
                r.Z = p.Alpha * v.Z;
                r.W = p.Alpha * v.W;
            }
            long first = cBase + at;
            r.X = store.Finish(r.X, first, row, col);
            r.Y = store.Finish(r.Y, first + 1, row, col + 1);
            r.Z = store.Finish(r.Z, first + 2, row, col + 2);
            r.W = store.Finish(r.W, first + 3, row, col + 3);
            c4[at4] = r;
            return;
        }
        long a0 = cBase + at;
        StoreScaled(c, p, store, a0, row, col, v.X);
        if (col + 1 < p.N) StoreScaled(c, p, store, a0 + 1, row, col + 1, v.Y);
        if (col + 2 < p.N) StoreScaled(c, p, store, a0 + 2, row, col + 2, v.Z);
        if (col + 3 < p.N) StoreScaled(c, p, store, a0 + 3, row, col + 3, v.W);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreScaled<TStore>(ArrayView<float> c, GemmTiledParams p, TStore store, long at, long row, int col, float acc)
        where TStore : struct, IGemmStoreStep =>
        c[at] = store.Finish(p.Beta != 0f ? KernelMath.Fma(p.Beta, c[at], p.Alpha * acc) : p.Alpha * acc, at, row, col);
}
