using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;
using Engine.Kernels.Elementwise;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>
/// Packed, cache-blocked single-precision GEMM (the Goto/BLIS scheme). For each NC-wide column block of C and each
/// KC-deep slice of k, op(B) is packed into NR-column micro-panels (kept in L2/L3); for each MC-tall row block,
/// op(A) is packed into MR-row micro-panels (kept in L2); then the micro-kernel sweeps the block, one packed B
/// micro-panel (L1) against every A micro-panel. Edge tiles use masked loads and stores; very thin C (n well below
/// NR) is computed as C^T to cut padding.
/// </summary>
/// <remarks>
/// Threads: below <see cref="MinFlopsPerThread"/> per thread everything runs on the calling thread. Otherwise either
/// the batch is spread over threads (one whole matrix per part), or each matrix is cut into a 2-D grid of C blocks
/// (whole MR x NR panels; each part packs only the A rows and B columns it needs, so parts share nothing and need no
/// barrier). Parts are taken dynamically from <see cref="CpuWorkers"/>, so a core busy with another process costs
/// only what it took. Packing buffers are per thread and reused (<see cref="GemmWorkspace"/>). An operand shared by
/// the batch (batch stride 0, such as a weight applied to every matrix) is packed once by the calling thread before
/// the parts start and read by all of them (<see cref="PackShared{TK}"/>).
/// </remarks>
internal static unsafe class SgemmPacked
{
    /// <summary>Depth of a k slice (packed panels hold KC steps).</summary>
    internal static int KC = 256;

    /// <summary>Largest row block packed at once (a multiple of every MR).</summary>
    internal static int MC = 192;

    /// <summary>Largest column block packed at once.</summary>
    internal static int NC = 4096;

    /// <summary>
    /// Least work (flops, 2 m n k) worth a thread when one matrix is split: a GEMM of f flops runs on
    /// min(cores, f / MinFlopsPerThread) threads, so square problems below about 80 stay on the calling thread.
    /// Dispatch plus the extra packing cost about a microsecond, and a busy machine preempts helpers.
    /// </summary>
    internal static long MinFlopsPerThread = 2L * 64 * 64 * 64;

    /// <summary>As <see cref="MinFlopsPerThread"/> when a batch is spread over threads (no extra packing).</summary>
    internal static long MinFlopsPerThreadBatched = 2L * 48 * 48 * 48;

    /// <summary>
    /// False turns off the small-product paths (an operand shared by the batch packed once, vector packing of
    /// six-row panels) and runs every product as before them: the baseline of the benchmarks.
    /// </summary>
    internal static bool SmallProductPaths = true;

    /// <summary>
    /// True makes a matrix split over threads with a store epilogue prefer blocks that hold whole rows of the caller's
    /// C (see <see cref="Cut"/>); false splits it as without an epilogue (the baseline of the benchmarks). The bits are
    /// the same.
    /// </summary>
    internal static bool EpilogueCutsRows = true;

    /// <summary>
    /// True lets a micro-kernel that can (<see cref="IMicroKernel.StoresBiasRelu"/>) store a bias row and a ReLU with
    /// the last k slice of each full tile; false runs every epilogue over the block after it (the baseline of the
    /// benchmarks). The bits are the same.
    /// </summary>
    internal static bool TileEpilogue = true;

    /// <summary>Whether thin C (see <c>Run</c>) is computed transposed.</summary>
    internal static bool TransposeThinC = true;

    /// <summary>Parts per thread for problems of at least <see cref="SplitFinerAbove"/> flops.</summary>
    internal static int PartsPerThread = 2;

    /// <summary>Flops (2 m n k per matrix) from which a matrix is cut into <see cref="PartsPerThread"/> parts per thread.</summary>
    internal static long SplitFinerAbove = 2L * 384 * 384 * 384;

    /// <summary>Largest operand (floats, packed) that a batch sharing it packs once (see <see cref="PackShared{TK}"/>).</summary>
    internal static long SharedPackMax = 1L << 21;

    /// <summary>Relative packing cost per element of an operand read through an index map (plain: 4).</summary>
    internal static double MappedPackWeight = 16.0;

    /// <summary>Which micro-kernel runs: "avx512-8x32", "avx2-6x16" or "scalar-4x4".</summary>
    internal static string KernelName => Avx512Kernel8x32.IsSupported ? "avx512-8x32"
        : Avx2Kernel6x16.IsSupported ? "avx2-6x16" : "scalar-4x4";

    /// <summary>The description of one batched GEMM (row-major, see <see cref="IKernelSet.Gemm"/>).</summary>
    internal struct Problem
    {
        public int Batch, M, N, K;
        public float Alpha, Beta;
        public float* A, B, C;
        public long StrideA, StrideB, StrideC;
        public bool TransA, TransB;

        /// <summary>Optional index maps (see <see cref="GemmOperand"/>) and their lengths; null: identity.</summary>
        public int* AIdx, BIdx, CIdx;
        public int ALen, BLen, CLen;

        /// <summary>Entries between the maps of consecutive matrices of A and B (0: one map for the batch).</summary>
        public long AIdxStride, BIdxStride;

        /// <summary>Distance between C[i, j] and C[i + 1, j], and between C[i, j] and C[i, j + 1].</summary>
        public nint CRowStride, CColStride;

        /// <summary>What is applied to C as it is stored (see <see cref="GemmEpilogue"/>).</summary>
        public StoreEpilogue Epilogue;

        /// <summary>M and N of C as the caller gave them (a transposed problem swaps <see cref="M"/> and <see cref="N"/>).</summary>
        public int OuterM, OuterN;

        /// <summary>True when this problem computes C^T (rows of the problem are columns of the caller's C).</summary>
        public bool CTransposed;

        /// <summary>The batch index of this problem's first matrix in the caller's batch (for the bias rows).</summary>
        public int BatchBase;

        /// <summary>
        /// op(A), shared by the batch, packed once for every k slice (see <see cref="PackShared{TK}"/>); null: each
        /// block packs its own.
        /// </summary>
        public float* SharedA;

        /// <summary>As <see cref="SharedA"/> for op(B).</summary>
        public float* SharedB;

        public readonly nint Lda => TransA ? M : K;
        public readonly nint Ldb => TransB ? K : N;

        /// <summary>
        /// The same product computed as C^T = op(B)^T op(A)^T: roles of A and B swap and C is written through
        /// transposed strides.
        /// </summary>
        public readonly Problem Transposed() => this with
        {
            M = N, N = M,
            A = B, B = A, StrideA = StrideB, StrideB = StrideA,
            TransA = !TransB, TransB = !TransA,
            AIdx = BIdx, BIdx = AIdx, ALen = BLen, BLen = ALen, AIdxStride = BIdxStride, BIdxStride = AIdxStride,
            SharedA = SharedB, SharedB = SharedA,
            CRowStride = CColStride, CColStride = CRowStride,
            CTransposed = !CTransposed,
        };
    }

    /// <summary>
    /// A <see cref="GemmEpilogue"/> as the packed GEMM runs it on each block of C (MC rows, NC columns) after its last
    /// k slice, while the block is in cache: the bias C_p[i, j] += Bias[((p · M + i) mod BiasRows) · N + j] in the caller's coordinates, then the
    /// residual (the element <see cref="ResidualShift"/> elements after C's), then the activation (stored
    /// <see cref="ActivationShift"/> elements after C's element; 0: in place).
    /// </summary>
    internal readonly struct StoreEpilogue(float* bias, int biasRows, float* c, float* residual, GemmActivation? activation, float* activationOutput,
        GemmTree? tree = null, CpuKernelSet.TreeInputs treeInputs = default)
    {
        public readonly float* Bias = bias;
        public readonly int BiasRows = biasRows;
        public readonly bool HasResidual = residual != null;
        public readonly nint ResidualShift = residual == null ? 0 : (nint)(residual - c);
        public readonly GemmActivation? Activation = activation;
        public readonly nint ActivationShift = activationOutput == null ? 0 : (nint)(activationOutput - c);
        /// <summary>The tree step, last (C receives its value), with its inputs and C's buffer start they are read from.</summary>
        public readonly GemmTree? Tree = tree;
        public readonly CpuKernelSet.TreeInputs TreeInputs = treeInputs;
        public readonly float* C = c;
        public bool IsNone => Bias == null && !HasResidual && Activation == null && Tree == null;
    }

    /// <summary>
    /// For each p &lt; batch: C_p = alpha op(A_p) op(B_p) + beta C_p. Pointers must stay valid (pinned) for the call.
    /// </summary>
    public static void Gemm(int batch, int m, int n, int k, float alpha,
        float* a, long strideA, bool transA, float* b, long strideB, bool transB,
        float beta, float* c, long strideC, StoreEpilogue epilogue = default) =>
        GemmIndexed(batch, m, n, k, alpha, a, strideA, transA, null, 0, b, strideB, transB, null, 0, beta, c, strideC, null, 0, epilogue);

    /// <summary>
    /// <see cref="Gemm"/> with operands read and C written through index maps (<see cref="GemmOperand"/>):
    /// the gathers happen while packing A and B, the scatter while merging C tiles.
    /// </summary>
    public static void GemmIndexed(int batch, int m, int n, int k, float alpha,
        float* a, long strideA, bool transA, int* aIdx, int aLen,
        float* b, long strideB, bool transB, int* bIdx, int bLen,
        float beta, float* c, long strideC, int* cIdx, int cLen, StoreEpilogue epilogue = default,
        long aIdxStride = 0, long bIdxStride = 0)
    {
        if (batch <= 0 || m <= 0 || n <= 0)
        {
            return;
        }

        var pr = new Problem
        {
            Batch = batch, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            A = a, B = b, C = c, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            TransA = transA, TransB = transB,
            CRowStride = n, CColStride = 1,
            AIdx = aIdx, BIdx = bIdx, CIdx = cIdx, ALen = aLen, BLen = bLen, CLen = cLen,
            AIdxStride = aIdxStride, BIdxStride = bIdxStride,
            Epilogue = epilogue, OuterM = m, OuterN = n,
        };
        if (!epilogue.IsNone && cIdx != null)
        {
            throw new NotSupportedException("Gemm: an epilogue with a C index map is not supported.");
        }

        if (k == 0 || alpha == 0f)
        {
            ScaleC(ref pr);
            if (!epilogue.IsNone)
            {
                for (int p = 0; p < batch; p++)
                {
                    Finish(ref pr, p, c + p * strideC, 0, 0, m, n);
                }
            }
            return;
        }

        if (Avx512Kernel8x32.IsSupported)
        {
            Run<Avx512Kernel8x32>(ref pr);
        }
        else if (Avx2Kernel6x16.IsSupported)
        {
            Run<Avx2Kernel6x16>(ref pr);
        }
        else
        {
            Run<ScalarKernel4x4>(ref pr);
        }
    }

    /// <summary>C_p = beta C_p (beta == 0: zero, C not read), for k == 0 or alpha == 0.</summary>
    private static void ScaleC(ref Problem pr)
    {
        long mn = (long)pr.M * pr.N;
        for (int p = 0; p < pr.Batch; p++)
        {
            float* c = pr.C + p * pr.StrideC;
            if (pr.Beta == 0f)
            {
                new Span<float>(c, checked((int)mn)).Clear();
            }
            else if (pr.Beta != 1f)
            {
                for (long i = 0; i < mn; i++)
                {
                    c[i] *= pr.Beta;
                }
            }
        }
    }

    /// <summary>
    /// The product of <paramref name="pr"/> (no index maps, k &gt; 0, alpha != 0) on the calling thread, for callers
    /// that split the work themselves (the k slices of <see cref="SgemmSkinny"/>).
    /// </summary>
    internal static void RunOnCallingThread(Problem pr)
    {
        if (Avx512Kernel8x32.IsSupported)
        {
            RunSequential<Avx512Kernel8x32>(ref TransposeIfThin<Avx512Kernel8x32>(ref pr));
        }
        else if (Avx2Kernel6x16.IsSupported)
        {
            RunSequential<Avx2Kernel6x16>(ref TransposeIfThin<Avx2Kernel6x16>(ref pr));
        }
        else
        {
            RunSequential<ScalarKernel4x4>(ref TransposeIfThin<ScalarKernel4x4>(ref pr));
        }
    }

    /// <summary>
    /// Thin C (n much smaller than NR, e.g. a 10-class output layer): padding n to NR wastes most of the tile, so
    /// compute C^T instead, where n pads only to MR. Edge tiles are written through the scratch tile anyway.
    /// </summary>
    private static ref Problem TransposeIfThin<TK>(ref Problem pr) where TK : IMicroKernel
    {
        long padded = (long)RoundUp(pr.M, TK.MR) * RoundUp(pr.N, TK.NR);
        long paddedT = (long)RoundUp(pr.N, TK.MR) * RoundUp(pr.M, TK.NR);
        if (TransposeThinC && 3 * paddedT < 2 * padded)
        {
            pr = pr.Transposed();
        }
        return ref pr;
    }

    private static void Run<TK>(ref Problem pr) where TK : IMicroKernel
    {
        TransposeIfThin<TK>(ref pr);
        PackShared<TK>(ref pr);
        // A tree step's work counts: it runs on the product's threads, in place of an elementwise kernel split on its own.
        long flopsEach = 2L * pr.M * pr.N * pr.K + (pr.Epilogue.Tree?.FlopsFor((long)pr.M * pr.N) ?? 0);
        long flops = flopsEach * pr.Batch;
        // C matrices that overlap (stride 0, or shorter than one matrix) must be updated in order, one at a time.
        bool cOverlaps = pr.Batch > 1 && Math.Abs(pr.StrideC) < (long)pr.M * pr.N;

        int maxThreads = CpuWorkers.MaxThreads;
        int threadsSplit = (int)Math.Clamp(flopsEach / MinFlopsPerThread, 1, maxThreads);
        int threadsBatch = cOverlaps ? 1 : (int)Math.Clamp(flops / MinFlopsPerThreadBatched, 1, Math.Min(maxThreads, pr.Batch));
        if ((threadsSplit == 1 && threadsBatch == 1) || !CpuWorkers.TryAcquire())
        {
            RunSequential<TK>(ref pr);
            return;
        }

        try
        {
            // Spread the batch when its items are too small to split, or when it divides evenly (or nearly so)
            // over the threads; otherwise split each matrix.
            bool overBatch = threadsBatch > 1 &&
                (threadsSplit == 1 || pr.Batch >= 4 * threadsBatch || pr.Batch % threadsBatch == 0);
            int threads = overBatch ? threadsBatch : threadsSplit;

            PartitionJob<TK> job = PartitionJob<TK>.Instance;
            job.Problem = pr;
            if (overBatch)
            {
                job.OverBatch = true;
                CpuWorkers.Run(job, pr.Batch, threads);
            }
            else
            {
                // Big problems are cut finer than one part per thread so a thread slowed down by other processes
                // does not hold the rest back; the 2-D partition keeps the extra packing small.
                int parts = threads * (flopsEach >= SplitFinerAbove ? PartsPerThread : 1);
                job.OverBatch = false;
                // Each part runs its epilogue over its whole block at once, all parts at the same time: parts side by
                // side in the caller's rows (C's rows, or C^T's columns) would pass the cache lines they share back and
                // forth on every row.
                Cut cut = !EpilogueCutsRows || pr.Epilogue.IsNone ? Cut.Any : pr.CTransposed ? Cut.Columns : Cut.Rows;
                // A mapped operand costs a gather per element each time it is packed (an L2 miss for a random map,
                // measured: several times a plain copy), so partitions that pack it more than once are penalised.
                Partition<TK>(pr.M, pr.N, pr.K, parts, out job.RowParts, out job.ColParts,
                    pr.AIdx != null ? MappedPackWeight : 4.0, pr.BIdx != null ? MappedPackWeight : 4.0, cut);
                parts = job.RowParts * job.ColParts;
                if (cOverlaps)
                {
                    // One matrix at a time, each split over the threads.
                    Problem one = pr;
                    one.Batch = 1;
                    for (int p = 0; p < pr.Batch; p++)
                    {
                        one.A = pr.A + p * pr.StrideA;
                        one.B = pr.B + p * pr.StrideB;
                        one.C = pr.C + p * pr.StrideC;
                        one.AIdx = pr.AIdx == null ? null : pr.AIdx + p * pr.AIdxStride;
                        one.BIdx = pr.BIdx == null ? null : pr.BIdx + p * pr.BIdxStride;
                        one.BatchBase = pr.BatchBase + p;
                        job.Problem = one;
                        CpuWorkers.Run(job, parts, threads);
                    }
                }
                else
                {
                    CpuWorkers.Run(job, parts, threads);
                }
            }
            job.Problem = default;
        }
        finally
        {
            CpuWorkers.Release();
        }
    }

    /// <summary>
    /// An operand that every matrix of the batch shares (batch stride 0, no index map) is packed once here, on the
    /// calling thread, into the workspace's shared buffer, instead of once per matrix: its k slices one after another,
    /// each as the panels of the whole operand (the layout <see cref="Block{TK}"/> reads a block of it from). The
    /// packed values and the k blocking are those of the per-block packing, so the bits are the same.
    /// </summary>
    private static void PackShared<TK>(ref Problem pr) where TK : IMicroKernel
    {
        if (!SmallProductPaths || pr.Batch < 2)
        {
            return;
        }
        bool shareA = pr.StrideA == 0 && pr.AIdx == null && (long)RoundUp(pr.M, TK.MR) * pr.K <= SharedPackMax;
        bool shareB = pr.StrideB == 0 && pr.BIdx == null && (long)RoundUp(pr.N, TK.NR) * pr.K <= SharedPackMax;
        if (!shareA && !shareB)
        {
            return;
        }
        // B's panels start on a cache line, as in the workspace's own buffers.
        nint lengthA = shareA ? RoundUp(RoundUp(pr.M, TK.MR) * pr.K, 16) : 0;
        nint lengthB = shareB ? (nint)RoundUp(pr.N, TK.NR) * pr.K : 0;
        float* shared = GemmWorkspace.Current.Shared(lengthA + lengthB);
        int kcStep = KcStep(pr.K);
        for (int pc = 0; pc < pr.K; pc += kcStep)
        {
            int kc = Math.Min(kcStep, pr.K - pc);
            if (shareA)
            {
                GemmPacking.PackA<TK>(pr.A, pr.Lda, pr.TransA, 0, pc, pr.M, kc, shared + (nint)pc * RoundUp(pr.M, TK.MR));
            }
            if (shareB)
            {
                GemmPacking.PackB<TK>(pr.B, pr.Ldb, pr.TransB, pc, 0, kc, pr.N, shared + lengthA + (nint)pc * RoundUp(pr.N, TK.NR));
            }
        }
        pr.SharedA = shareA ? shared : null;
        pr.SharedB = shareB ? shared + lengthA : null;
    }

    /// <summary>
    /// Depth of the k slices of a product of depth <paramref name="k"/>: even slices of at most <see cref="KC"/>
    /// (k = 300 runs as 150 + 150 rather than 256 + 44).
    /// </summary>
    private static int KcStep(int k)
    {
        int kBlocks = (k + KC - 1) / KC;
        return Math.Max((k + kBlocks - 1) / Math.Max(kBlocks, 1), 1);
    }

    private static void RunSequential<TK>(ref Problem pr) where TK : IMicroKernel
    {
        GemmWorkspace ws = GemmWorkspace.Current;
        for (int p = 0; p < pr.Batch; p++)
        {
            Block<TK>(ref pr, p, 0, pr.M, 0, pr.N, ws);
        }
    }

    /// <summary>Which way <see cref="Partition{TK}"/> prefers to cut C.</summary>
    internal enum Cut
    {
        /// <summary>No preference.</summary>
        Any,
        /// <summary>Between rows: blocks side by side in a row cost <see cref="SideBySideCost"/> more per element.</summary>
        Rows,
        /// <summary>Between columns: blocks one above the other cost <see cref="SideBySideCost"/> more per element.</summary>
        Columns,
    }

    /// <summary>
    /// What a partition that cuts against the preferred way (see <see cref="Cut"/>) adds to a block's cost, in
    /// multiply-adds per element of the block. The epilogue passes over each block once, whatever the product's
    /// depth, so the lines that blocks side by side share cost the same at depth 64 as at depth 1024: charged per
    /// element, the preference decides shallow products (at depth 64, 8 per element is an eighth of the arithmetic)
    /// and gives way in deep ones, where packing B again for every row block costs more than the shared lines. A
    /// factor on the whole cost instead made a 256 x 1024 x 784 product with a bias and ReLU pack its B four times
    /// (four row blocks) where a 1 x 4 cut packs it once per block column: 10-15 % slower on two threads.
    /// </summary>
    internal static double SideBySideCost = 8;

    /// <summary>
    /// Splits C into rowParts x colParts blocks, as close to <paramref name="parts"/> blocks as the panel counts allow,
    /// with rows in whole MR panels and columns in whole NR panels, minimising the largest block's compute plus its
    /// packing, plus <see cref="SideBySideCost"/> per element when it cuts against <paramref name="prefer"/>.
    /// </summary>
    internal static void Partition<TK>(int m, int n, int k, int parts, out int rowParts, out int colParts,
        double packWeightA = 4.0, double packWeightB = 4.0, Cut prefer = Cut.Any)
        where TK : IMicroKernel
    {
        long mPanels = (m + TK.MR - 1) / TK.MR;
        long nPanels = (n + TK.NR - 1) / TK.NR;
        rowParts = 1;
        colParts = 1;
        for (int count = parts; count > 1; count--)
        {
            double best = double.MaxValue;
            for (int rp = 1; rp <= count; rp++)
            {
                int cp = count / rp;
                if (rp * cp != count || rp > mPanels || cp > nPanels)
                {
                    continue;
                }
                double rows = (double)((mPanels + rp - 1) / rp) * TK.MR;
                double cols = (double)((nPanels + cp - 1) / cp) * TK.NR;
                double cost = rows * cols * k + (packWeightA * rows + packWeightB * cols) * k;
                if ((prefer == Cut.Rows && cp > 1) || (prefer == Cut.Columns && rp > 1))
                {
                    cost += SideBySideCost * rows * cols;
                }
                if (cost < best)
                {
                    best = cost;
                    rowParts = rp;
                    colParts = cp;
                }
            }
            if (best < double.MaxValue)
            {
                return;
            }
        }
    }

    /// <summary>
    /// One GEMM job for the worker pool: part p is either batch item p (whole), or block p of a RowParts x ColParts
    /// partition of every C_p. Only one instance per kernel type exists; the pool runs one job at a time.
    /// </summary>
    private sealed class PartitionJob<TK> : CpuJob where TK : IMicroKernel
    {
        public static readonly PartitionJob<TK> Instance = new();

        public Problem Problem;
        public bool OverBatch;
        public int RowParts, ColParts;

        protected override void RunPart(int part)
        {
            GemmWorkspace ws = GemmWorkspace.Current;
            if (OverBatch)
            {
                Block<TK>(ref Problem, part, 0, Problem.M, 0, Problem.N, ws);
                return;
            }

            int rp = part / ColParts, cp = part % ColParts;
            Split(Problem.M, TK.MR, RowParts, rp, out int i0, out int i1);
            Split(Problem.N, TK.NR, ColParts, cp, out int j0, out int j1);
            if (i0 >= i1 || j0 >= j1)
            {
                return;
            }
            for (int p = 0; p < Problem.Batch; p++)
            {
                Block<TK>(ref Problem, p, i0, i1, j0, j1, ws);
            }
        }

        /// <summary>Range of part <paramref name="index"/> when <paramref name="length"/> is cut in whole units.</summary>
        private static void Split(int length, int unit, int parts, int index, out int start, out int end)
        {
            int units = (length + unit - 1) / unit;
            int q = units / parts, r = units % parts;
            int u0 = index * q + Math.Min(index, r);
            int u1 = u0 + q + (index < r ? 1 : 0);
            start = Math.Min(u0 * unit, length);
            end = Math.Min(u1 * unit, length);
        }
    }

    /// <summary>C_p[i0..i1, j0..j1] = alpha op(A_p) op(B_p) + beta C_p on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block<TK>(ref Problem pr, int batchIndex, int i0, int i1, int j0, int j1, GemmWorkspace ws)
        where TK : IMicroKernel
    {
        int mr = TK.MR, nr = TK.NR;
        int k = pr.K;
        float* a = pr.A + batchIndex * pr.StrideA;
        float* b = pr.B + batchIndex * pr.StrideB;
        float* c = pr.C + batchIndex * pr.StrideC;
        int* aIdx = pr.AIdx == null ? null : pr.AIdx + batchIndex * pr.AIdxStride;
        int* bIdx = pr.BIdx == null ? null : pr.BIdx + batchIndex * pr.BIdxStride;
        nint lda = pr.Lda, ldb = pr.Ldb, ldc = pr.CRowStride, cs = pr.CColStride;
        float alpha = pr.Alpha;

        int kcStep = KcStep(k);
        int mBlocks = (i1 - i0 + MC - 1) / MC;
        int mcStep = RoundUp((i1 - i0 + mBlocks - 1) / mBlocks, mr);
        int nBlocks = (j1 - j0 + NC - 1) / NC;
        int ncStep = RoundUp((j1 - j0 + nBlocks - 1) / nBlocks, nr);

        float* sharedA = pr.SharedA, sharedB = pr.SharedB;
        float* packedA = sharedA != null ? null : ws.PackedA((nint)mcStep * kcStep);
        float* packedB = sharedB != null ? null : ws.PackedB((nint)ncStep * kcStep);
        nint paddedM = RoundUp(pr.M, mr), paddedN = RoundUp(pr.N, nr);
        float* tile = ws.Tile;
        float* scratch = pr.AIdx != null || pr.BIdx != null ? ws.Scratch((nint)Math.Max(Math.Max(mr, nr), Math.Max(mcStep, ncStep)) * kcStep) : null;
        int* cIdx = pr.CIdx;

        for (int jc = j0; jc < j1; jc += ncStep)
        {
            int nc = Math.Min(ncStep, j1 - jc);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                float beta = pc == 0 ? pr.Beta : 1f;
                bool finishHere = !pr.Epilogue.IsNone && pc + kc == k;
                // A bias row and a ReLU go into the micro-kernel's store of the last k slice, while the tile is in
                // registers; edge tiles run the epilogue on their own.
                bool finishInTiles = finishHere && TK.StoresBiasRelu && StoresInTiles(ref pr);
                if (sharedB != null)
                {
                    packedB = sharedB + pc * paddedN + (nint)jc * kc;
                }
                else if (pr.BIdx == null)
                {
                    GemmPacking.PackB<TK>(b, ldb, pr.TransB, pc, jc, kc, nc, packedB);
                }
                else
                {
                    GemmPacking.PackBIndexed<TK>(b, ldb, pr.TransB, bIdx, pr.BLen, pc, jc, kc, nc, packedB, scratch);
                }

                for (int ic = i0; ic < i1; ic += mcStep)
                {
                    int mc = Math.Min(mcStep, i1 - ic);
                    if (sharedA != null)
                    {
                        packedA = sharedA + pc * paddedM + (nint)ic * kc;
                    }
                    else if (pr.AIdx == null)
                    {
                        GemmPacking.PackA<TK>(a, lda, pr.TransA, ic, pc, mc, kc, packedA);
                    }
                    else
                    {
                        GemmPacking.PackAIndexed<TK>(a, lda, pr.TransA, aIdx, pr.ALen, ic, pc, mc, kc, packedA, scratch);
                    }

                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int nrEff = Math.Min(nr, nc - jr);
                        float* bp = packedB + (nint)jr * kc;
                        float* cCol = c + ic * ldc + (jc + jr) * cs;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int mrEff = Math.Min(mr, mc - ir);
                            float* ap = packedA + (nint)ir * kc;
                            float* cp = cCol + ir * ldc;
                            if (cIdx != null)
                            {
                                TK.Run(kc, ap, bp, tile, nr, 1f, 0f);
                                MergeTileIndexed(tile, nr, c, (ic + ir) * ldc + (jc + jr) * cs, ldc, cs, mrEff, nrEff,
                                    alpha, beta, cIdx, pr.CLen);
                            }
                            else if (cs != 1)
                            {
                                // Transposed C: through the scratch tile.
                                TK.Run(kc, ap, bp, tile, nr, 1f, 0f);
                                MergeTile(tile, nr, cp, ldc, cs, mrEff, nrEff, alpha, beta);
                            }
                            else if (mrEff == mr && nrEff == nr)
                            {
                                if (finishInTiles)
                                {
                                    TK.RunBiasRelu(kc, ap, bp, cp, ldc, alpha, beta,
                                        pr.Epilogue.Bias == null ? null : pr.Epilogue.Bias + jc + jr, pr.Epilogue.Activation != null);
                                }
                                else
                                {
                                    TK.Run(kc, ap, bp, cp, ldc, alpha, beta);
                                }
                            }
                            else
                            {
                                TK.RunEdge(kc, ap, bp, cp, ldc, alpha, beta, mrEff, nrEff);
                                if (finishInTiles)
                                {
                                    Finish(ref pr, batchIndex, cp, ic + ir, jc + jr, mrEff, nrEff);
                                }
                            }
                        }
                    }
                    // The epilogue sweeps the block row by row once its last k slice is stored: the residual and the
                    // activation output stream in order (tile by tile, their rows were strided misses).
                    if (finishHere && !finishInTiles)
                    {
                        Finish(ref pr, batchIndex, c + ic * ldc + jc * cs, ic, jc, mc, nc);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Whether the epilogue of <paramref name="pr"/> is one a micro-kernel can store (<see cref="IMicroKernel.RunBiasRelu"/>):
    /// a bias row (or none) and a ReLU (or none) into C itself, stored row-major, with no residual and no C map.
    /// </summary>
    private static bool StoresInTiles(ref Problem pr) =>
        TileEpilogue && pr.CIdx == null && !pr.CTransposed && pr.CColStride == 1 && !pr.Epilogue.HasResidual &&
        pr.Epilogue.ActivationShift == 0 && (pr.Epilogue.Bias == null || pr.Epilogue.BiasRows == 1) &&
        (pr.Epilogue.Activation == null || pr.Epilogue.Activation.IsRelu) && pr.Epilogue.Tree == null;

    /// <summary>
    /// Runs the epilogue on the rows x cols block of C_p whose first element (problem row i0, column j0) is at
    /// <paramref name="c"/>: the bias, the residual, the activation, the tree step, in that order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Finish(ref Problem pr, int batchIndex, float* c, int i0, int j0, int rows, int cols)
    {
        if (pr.Epilogue.Bias != null)
        {
            AddBias(ref pr, batchIndex, c, i0, j0, rows, cols);
        }
        // The block as contiguous runs: its rows, or its columns when C is stored transposed.
        bool byRows = pr.CColStride == 1;
        int runs = byRows ? rows : cols, length = byRows ? cols : rows;
        nint stride = byRows ? pr.CRowStride : pr.CColStride;
        if (pr.Epilogue.HasResidual)
        {
            AddResidual(c, pr.Epilogue.ResidualShift, runs, length, stride);
        }
        pr.Epilogue.Activation?.Apply(c, pr.Epilogue.ActivationShift, runs, length, stride);
        pr.Epilogue.Tree?.Apply(c, pr.Epilogue.TreeInputs, pr.Epilogue.C, runs, length, stride);
    }

    /// <summary>z += the value <paramref name="shift"/> elements after it, over <paramref name="runs"/> runs (see <see cref="GemmActivation.Apply"/>).</summary>
    private static void AddResidual(float* z, nint shift, int runs, int length, nint stride) =>
        Simd.Run(new ResidualRuns(z, shift, runs, length, stride));

    /// <summary><see cref="AddResidual"/> at the current width, as the elementwise addition adds.</summary>
    private readonly struct ResidualRuns(float* z, nint shift, int runs, int length, nint stride) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>()
        {
            for (int r = 0; r < runs; r++)
            {
                float* run = z + r * stride;
                SimdLoops<TV, TD>.Zip(new AddOp(), run, run + shift, run, length);
            }
        }
    }

    /// <summary>
    /// Adds the bias to the rows x cols block of C_p whose first element (problem row i0, column j0) is at
    /// <paramref name="c"/> (C[i, j] at c[(i - i0) · CRowStride + (j - j0) · CColStride]), in the caller's coordinates.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddBias(ref Problem pr, int batchIndex, float* c, int i0, int j0, int rows, int cols)
    {
        float* bias = pr.Epilogue.Bias;
        long rowsOfBias = pr.Epilogue.BiasRows, first = (long)(pr.BatchBase + batchIndex) * pr.OuterM;
        nint ldc = pr.CRowStride, cs = pr.CColStride;
        int n = pr.OuterN;
        if (!pr.CTransposed)
        {
            int width = System.Numerics.Vector<float>.Count;
            for (int r = 0; r < rows; r++)
            {
                float* row = c + r * ldc;
                float* b = bias + (first + i0 + r) % rowsOfBias * n + j0;
                int q = 0;
                for (; q <= cols - width; q += width)
                {
                    var sum = System.Numerics.Vector.Load(row + q) + System.Numerics.Vector.Load(b + q);
                    System.Numerics.Vector.Store(sum, row + q);
                }
                for (; q < cols; q++)
                {
                    row[q] += b[q];
                }
            }
            return;
        }
        // C^T: problem row i is the caller's column, problem column j the caller's row.
        for (int q = 0; q < cols; q++)
        {
            float* b = bias + (first + j0 + q) % rowsOfBias * n + i0;
            float* col = c + q * cs;
            for (int r = 0; r < rows; r++)
            {
                col[r * ldc] += b[r];
            }
        }
    }

    /// <summary>
    /// C[i, j] = alpha * tile[i, j] + beta * C[i, j] for i &lt; rows, j &lt; cols, with C[i, j] at c[i * ldc + j * cs]
    /// (beta == 0: C not read). Used for transposed C (ldc == 1), so the inner loop runs over i.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MergeTile(float* tile, int tileStride, float* c, nint ldc, nint cs, int rows, int cols, float alpha, float beta)
    {
        for (int j = 0; j < cols; j++, c += cs)
        {
            float* t = tile + j;
            if (beta == 0f)
            {
                for (int i = 0; i < rows; i++)
                {
                    c[i * ldc] = alpha * t[i * tileStride];
                }
            }
            else
            {
                for (int i = 0; i < rows; i++)
                {
                    c[i * ldc] = alpha * t[i * tileStride] + beta * c[i * ldc];
                }
            }
        }
    }

    /// <summary>
    /// <see cref="MergeTile"/> through a C index map: the element at offset o = <paramref name="offset"/> + i ldc + j cs
    /// of C lives at c[(o / len) len + idx[o % len]].
    /// </summary>
    private static void MergeTileIndexed(float* tile, int tileStride, float* c, nint offset, nint ldc, nint cs,
        int rows, int cols, float alpha, float beta, int* idx, int len)
    {
        // One division per row; along the row the (block, remainder) pair is advanced by cs without dividing.
        nint csDiv = cs / len, csMod = cs - csDiv * len;
        for (int i = 0; i < rows; i++, tile += tileStride, offset += ldc)
        {
            nint blk = offset / len;
            nint rem = offset - blk * len;
            float* cb = c + blk * len;
            for (int j = 0; j < cols; j++)
            {
                float* dst = cb + idx[rem];
                *dst = beta == 0f ? alpha * tile[j] : alpha * tile[j] + beta * *dst;
                rem += csMod;
                cb += csDiv * len;
                if (rem >= len)
                {
                    rem -= len;
                    cb += len;
                }
            }
        }
    }

    private static int RoundUp(int x, int unit) => (x + unit - 1) / unit * unit;
}
