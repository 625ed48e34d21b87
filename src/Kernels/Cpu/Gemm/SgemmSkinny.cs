using System.Numerics;
using System.Runtime.CompilerServices;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>
/// Matrix products whose shape starves the packed GEMM (<see cref="SgemmPacked"/>), each on a dedicated path:
/// <list type="bullet">
/// <item><b>Matrix-vector</b> (M = 1 or N = 1; M = 1 runs as C^T = op(B)^T op(A)^T): a dot product per row of op(A)
/// when its rows are stored contiguously, otherwise one sweep down the stored rows accumulating a group of C elements
/// in registers. Memory-bound; the padding of a packed tile would waste most of the work.</item>
/// <item><b>Tall depth</b> (one product, A stored transposed and B not, as a weight gradient X^T dY: M · N at most
/// <see cref="SplitKMaxOutput"/>, M and N at least <see cref="SplitKMinSide"/>, K at least two slices and
/// <see cref="SplitKDepthRatio"/> times M and N): K is cut
/// into fixed slices of <see cref="SplitKSlice"/>, each slice's product runs through the packed kernel on one thread
/// into its own buffer, and the partial products are summed in slice order.</item>
/// </list>
/// Every path runs the same alpha, beta and store epilogue (<see cref="SgemmPacked.Finish"/>) as the packed one.
/// </summary>
/// <remarks>
/// Deterministic: the work is cut by the shape alone (rows, column groups or k slices of fixed sizes), never by the
/// number of threads, and every element's sum runs in one fixed order, so any thread count (or a busy pool, which
/// runs every part on the calling thread) gives the same bits. Operands or C read through index maps, and batches
/// whose C matrices overlap, stay on the packed path.
/// </remarks>
internal static unsafe class SgemmSkinny
{
    /// <summary>False sends every product to the packed path (the baseline of the benchmarks).</summary>
    internal static bool Enabled = true;

    /// <summary>Depth of one k slice of the tall-depth path.</summary>
    internal static int SplitKSlice = 2048;

    /// <summary>Largest M · N taken by the tall-depth path (its partial products are M · N each).</summary>
    internal static long SplitKMaxOutput = 128L * 128;

    /// <summary>Least K / max(M, N) taken by the tall-depth path.</summary>
    internal static int SplitKDepthRatio = 8;

    /// <summary>
    /// Least min(M, N) taken by the tall-depth path: below it the product is bound by reading the operands, which the
    /// packed path already streams once.
    /// </summary>
    internal static int SplitKMinSide = 8;

    /// <summary>Rows of C per part of the dot-product path.</summary>
    private const int RowsPerPart = 64;

    /// <summary>Least elements read or written worth a second thread (dispatch and a cold helper cost microseconds).</summary>
    internal static long MinElementsPerThread = 48 * 1024;

    /// <summary>The path a product takes.</summary>
    internal enum Path
    {
        /// <summary>The packed GEMM.</summary>
        Packed,
        /// <summary>Matrix-vector.</summary>
        Gemv,
        /// <summary>Tall depth, split into k slices.</summary>
        SplitK,
    }

    /// <summary>The path for a product of this shape and layout (C matrices that do not overlap, no index maps).</summary>
    internal static Path Choose(int batch, int m, int n, int k, bool transA, bool transB)
    {
        if (!Enabled || batch <= 0 || m <= 0 || n <= 0 || k <= 0)
        {
            return Path.Packed;
        }
        if (m == 1 || n == 1)
        {
            return Path.Gemv;
        }
        if (batch == 1 && transA && !transB && (long)m * n <= SplitKMaxOutput && Math.Min(m, n) >= SplitKMinSide &&
            k >= 2L * SplitKSlice && k >= (long)SplitKDepthRatio * Math.Max(m, n))
        {
            return Path.SplitK;
        }
        return Path.Packed;
    }

    /// <summary>
    /// For each p &lt; batch: C_p = alpha op(A_p) op(B_p) + beta C_p, then the epilogue, when the shape takes one of the
    /// dedicated paths; false (nothing done) when it belongs to the packed path. Pointers must stay valid (pinned).
    /// </summary>
    public static bool TryGemm(int batch, int m, int n, int k, float alpha,
        float* a, long strideA, bool transA, float* b, long strideB, bool transB,
        float beta, float* c, long strideC, SgemmPacked.StoreEpilogue epilogue)
    {
        if (alpha == 0f || (batch > 1 && strideC < (long)m * n))
        {
            return false;
        }
        Path path = Choose(batch, m, n, k, transA, transB);
        if (path == Path.Packed)
        {
            return false;
        }

        var pr = new SgemmPacked.Problem
        {
            Batch = batch, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            A = a, B = b, C = c, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            TransA = transA, TransB = transB,
            CRowStride = n, CColStride = 1,
            Epilogue = epilogue, OuterM = m, OuterN = n,
        };
        if (path == Path.Gemv && n != 1)
        {
            // A row of C: its transpose is a column, and C's storage is the same contiguous run either way (the
            // matrix-vector loops take C_p as M contiguous values).
            pr = pr.Transposed();
        }

        var work = new Work { Pr = pr, Path = path };
        long touched = (long)batch * ((long)m * k + (long)k * n + (long)m * n);
        if (path == Path.SplitK)
        {
            int slices = (k + SplitKSlice - 1) / SplitKSlice;
            work.PartsPerItem = slices;
            float[] partials = Partials((long)slices * m * n);
            fixed (float* pp = partials)
            {
                work.Partials = pp;
                RunParts(ref work, slices, touched);
                SumSlices(ref pr, pp, slices);
            }
            return true;
        }

        work.PartsPerItem = pr.TransA ? (pr.M + ColumnGroup - 1) / ColumnGroup : (pr.M + RowsPerPart - 1) / RowsPerPart;
        RunParts(ref work, batch * work.PartsPerItem, touched);
        return true;
    }

    /// <summary>C elements a sweep of the column-wise matrix-vector path accumulates at once (four vectors).</summary>
    private static int ColumnGroup => 4 * Vector<float>.Count;

    /// <summary>Runs the parts on the worker pool when there is enough work and the pool is free, else on this thread.</summary>
    private static void RunParts(ref Work work, int parts, long touched)
    {
        int threads = (int)Math.Clamp(touched / MinElementsPerThread, 1, Math.Min(CpuWorkers.MaxThreads, parts));
        if (threads > 1 && CpuWorkers.TryAcquire())
        {
            try
            {
                SkinnyJob job = SkinnyJob.Instance;
                job.Product = work;
                CpuWorkers.Run(job, parts, threads);
                job.Product = default;
            }
            finally
            {
                CpuWorkers.Release();
            }
            return;
        }
        for (int part = 0; part < parts; part++)
        {
            work.RunPart(part);
        }
    }

    /// <summary>The pool's job: the parts of one <see cref="Work"/>. Used only while the pool is held.</summary>
    private sealed class SkinnyJob : CpuJob
    {
        public static readonly SkinnyJob Instance = new();

        public Work Product;

        protected override void RunPart(int part) => Product.RunPart(part);
    }

    /// <summary>One product on a dedicated path, cut into parts: the k slices, or row blocks or column groups of each C_p.</summary>
    private struct Work
    {
        public SgemmPacked.Problem Pr;
        public Path Path;
        public int PartsPerItem;
        public float* Partials;

        public void RunPart(int part)
        {
            if (Path == Path.SplitK)
            {
                Slice(ref Pr, part, Partials);
                return;
            }
            int p = part / PartsPerItem, block = part % PartsPerItem;
            int unit = Pr.TransA ? ColumnGroup : RowsPerPart;
            int i0 = block * unit, i1 = Math.Min(Pr.M, i0 + unit);
            if (Pr.TransA)
            {
                GemvColumns(ref Pr, p, i0, i1);
            }
            else
            {
                GemvRows(ref Pr, p, i0, i1);
            }
            if (!Pr.Epilogue.IsNone)
            {
                SgemmPacked.Finish(ref Pr, p, Pr.C + p * Pr.StrideC + i0, i0, 0, i1 - i0, 1);
            }
        }
    }

    // ------------------------------------------------------------------ matrix-vector

    /// <summary>C_p[i] = alpha · dot(row i of A_p, x_p) + beta · C_p[i] for i in [i0, i1) (N = 1, A stored as M x K).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvRows(ref SgemmPacked.Problem pr, int p, int i0, int i1)
    {
        float* a = pr.A + p * pr.StrideA, x = pr.B + p * pr.StrideB, c = pr.C + p * pr.StrideC;
        int k = pr.K;
        float alpha = pr.Alpha, beta = pr.Beta;
        for (int i = i0; i < i1; i++)
        {
            Store(c + i, Dot(a + (nint)i * k, x, k), alpha, beta);
        }
    }

    /// <summary>
    /// C_p[i] = alpha · sum_l A_p[l, i] x_p[l] + beta · C_p[i] for i in [i0, i1) (N = 1, A stored as K x M): one sweep
    /// down the stored rows per group of four vectors of C, each element summed in l order (vector or scalar alike).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvColumns(ref SgemmPacked.Problem pr, int p, int i0, int i1)
    {
        float* a = pr.A + p * pr.StrideA, x = pr.B + p * pr.StrideB, c = pr.C + p * pr.StrideC;
        int k = pr.K, w = Vector<float>.Count;
        nint lda = pr.M;
        float alpha = pr.Alpha, beta = pr.Beta;
        int i = i0;
        if (i1 - i == 4 * w)
        {
            Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
            float* row = a + i;
            for (int l = 0; l < k; l++, row += lda)
            {
                var xl = new Vector<float>(x[l]);
                s0 = Vector.FusedMultiplyAdd(Vector.Load(row), xl, s0);
                s1 = Vector.FusedMultiplyAdd(Vector.Load(row + w), xl, s1);
                s2 = Vector.FusedMultiplyAdd(Vector.Load(row + 2 * w), xl, s2);
                s3 = Vector.FusedMultiplyAdd(Vector.Load(row + 3 * w), xl, s3);
            }
            StoreRow(c + i, s0, alpha, beta);
            StoreRow(c + i + w, s1, alpha, beta);
            StoreRow(c + i + 2 * w, s2, alpha, beta);
            StoreRow(c + i + 3 * w, s3, alpha, beta);
            return;
        }
        for (; i <= i1 - w; i += w)
        {
            Vector<float> s = default;
            float* row = a + i;
            for (int l = 0; l < k; l++, row += lda)
            {
                s = Vector.FusedMultiplyAdd(Vector.Load(row), new Vector<float>(x[l]), s);
            }
            StoreRow(c + i, s, alpha, beta);
        }
        for (; i < i1; i++)
        {
            float s = 0f;
            float* row = a + i;
            for (int l = 0; l < k; l++, row += lda)
            {
                s = MathF.FusedMultiplyAdd(*row, x[l], s);
            }
            Store(c + i, s, alpha, beta);
        }
    }

    /// <summary>The dot product of two contiguous runs: four vector sums, added pairwise, then the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* u, float* v, int k)
    {
        int w = Vector<float>.Count, q = 0;
        Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (; q <= k - 4 * w; q += 4 * w)
        {
            s0 = Vector.FusedMultiplyAdd(Vector.Load(u + q), Vector.Load(v + q), s0);
            s1 = Vector.FusedMultiplyAdd(Vector.Load(u + q + w), Vector.Load(v + q + w), s1);
            s2 = Vector.FusedMultiplyAdd(Vector.Load(u + q + 2 * w), Vector.Load(v + q + 2 * w), s2);
            s3 = Vector.FusedMultiplyAdd(Vector.Load(u + q + 3 * w), Vector.Load(v + q + 3 * w), s3);
        }
        for (; q <= k - w; q += w)
        {
            s0 = Vector.FusedMultiplyAdd(Vector.Load(u + q), Vector.Load(v + q), s0);
        }
        float s = Vector.Sum((s0 + s1) + (s2 + s3));
        for (; q < k; q++)
        {
            s = MathF.FusedMultiplyAdd(u[q], v[q], s);
        }
        return s;
    }

    // ------------------------------------------------------------------ tall depth

    /// <summary>Partial product of k slice <paramref name="s"/> into its own M x N buffer (packed kernel, this thread).</summary>
    private static void Slice(ref SgemmPacked.Problem pr, int s, float* partials)
    {
        int l0 = s * SplitKSlice;
        long matrix = (long)pr.M * pr.N;
        // A is stored K x M and B K x N: a slice of k is a run of stored rows of each, with the same row strides.
        SgemmPacked.RunOnCallingThread(new SgemmPacked.Problem
        {
            Batch = 1, M = pr.M, N = pr.N, K = Math.Min(SplitKSlice, pr.K - l0), Alpha = 1f, Beta = 0f,
            A = pr.A + (nint)l0 * pr.M, B = pr.B + (nint)l0 * pr.N, C = partials + s * matrix,
            TransA = true, TransB = false,
            CRowStride = pr.N, CColStride = 1,
            OuterM = pr.M, OuterN = pr.N,
        });
    }

    /// <summary>C = alpha (P_0 + P_1 + ... in slice order) + beta C, then the epilogue (C is one contiguous M x N matrix).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SumSlices(ref SgemmPacked.Problem pr, float* partials, int slices)
    {
        int matrix = pr.M * pr.N, w = Vector<float>.Count, e = 0;
        float* c = pr.C;
        float alpha = pr.Alpha, beta = pr.Beta;
        for (; e <= matrix - w; e += w)
        {
            var sum = Vector.Load(partials + e);
            for (int s = 1; s < slices; s++)
            {
                sum += Vector.Load(partials + (nint)s * matrix + e);
            }
            StoreRow(c + e, sum, alpha, beta);
        }
        for (; e < matrix; e++)
        {
            float sum = partials[e];
            for (int s = 1; s < slices; s++)
            {
                sum += partials[(nint)s * matrix + e];
            }
            Store(c + e, sum, alpha, beta);
        }
        if (!pr.Epilogue.IsNone)
        {
            SgemmPacked.Finish(ref pr, 0, c, 0, 0, pr.M, pr.N);
        }
    }

    [ThreadStatic]
    private static float[]? partialBuffer;

    /// <summary>The calling thread's buffer for partial products, at least <paramref name="length"/> floats (pinned, reused).</summary>
    private static float[] Partials(long length)
    {
        if (partialBuffer == null || partialBuffer.Length < length)
        {
            partialBuffer = GC.AllocateUninitializedArray<float>(checked((int)Math.Max(length, 64 * 1024)), pinned: true);
        }
        return partialBuffer;
    }

    // ------------------------------------------------------------------ stores

    /// <summary>*c = alpha · s + beta · *c (beta 0: C not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, float s, float alpha, float beta) =>
        *c = beta == 0f ? alpha * s : alpha * s + beta * *c;

    /// <summary><see cref="Store"/> for a contiguous vector of C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector<float> s, float alpha, float beta) =>
        Vector.Store(beta == 0f ? s * alpha : s * alpha + Vector.Load(c) * beta, c);
}
