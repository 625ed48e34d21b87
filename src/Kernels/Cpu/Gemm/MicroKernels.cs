using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels.Cpu.Gemm;

// Register-blocked micro-kernels. Each computes one MR x NR tile of C from a packed A micro-panel (kc steps of MR
// values) and a packed B micro-panel (kc steps of NR values, 64-byte aligned), accumulating in registers only, then
// writes C = alpha * acc + beta * C (beta == 0: C is not read). Keep these methods free of stackalloc, spans and
// calls: the accumulators must stay in registers (check with DOTNET_JitDisasm=Run). The SIMD kernels are generated
// by a script (unrolled over rows and vectors); edit them all alike.

/// <summary>A micro-kernel: the tile shape, whether the CPU runs it, and the tile update.</summary>
internal interface IMicroKernel
{
    /// <summary>Rows of the C tile (values per k step in a packed A micro-panel).</summary>
    static abstract int MR { get; }

    /// <summary>Columns of the C tile (values per k step in a packed B micro-panel).</summary>
    static abstract int NR { get; }

    /// <summary>True when the CPU has the instructions the kernel uses.</summary>
    static abstract bool IsSupported { get; }

    /// <summary>C[0..MR, 0..NR] = alpha * sum_p a[p*MR + i] * b[p*NR + j] + beta * C (beta == 0: C not read).</summary>
    static abstract unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta);

    /// <summary>
    /// As <see cref="Run"/> for an edge tile: only C[0..rows, 0..cols] is read (when beta != 0) and written
    /// (1 &lt;= rows &lt;= MR, 1 &lt;= cols &lt;= NR); the packed panels are still full (zero padded).
    /// </summary>
    static abstract unsafe void RunEdge(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int rows, int cols);

    /// <summary>Whether the kernel has <see cref="RunBiasRelu"/>.</summary>
    static virtual bool StoresBiasRelu => false;

    /// <summary>
    /// As <see cref="Run"/>, then, while the tile is in registers, C[i, j] += bias[j] (when <paramref name="bias"/> is
    /// not null) and then C = ReLU(C) (as <see cref="Elementwise.ReluOp"/>, when <paramref name="relu"/>): the float
    /// operations of the separate epilogue passes, in their order, so the same bits.
    /// </summary>
    static virtual unsafe void RunBiasRelu(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, float* bias, bool relu) =>
        throw new NotSupportedException("RunBiasRelu: this micro-kernel stores no epilogue.");
}

/// <summary>AVX-512 8x32 micro-kernel: 16 zmm accumulators, A broadcast, two B loads per k step.</summary>
internal readonly struct Avx512Kernel8x32 : IMicroKernel
{
    public static int MR => 8;
    public static int NR => 32;
    public static bool IsSupported => Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        // Start pulling the C tile in now: the k loop hides the misses (C rows are a page apart for wide C).
        Sse.Prefetch0(c);
        Sse.Prefetch0(c + 16);
        Sse.Prefetch0(c + 31);
        Sse.Prefetch0(c + 1 * ldc);
        Sse.Prefetch0(c + 1 * ldc + 16);
        Sse.Prefetch0(c + 1 * ldc + 31);
        Sse.Prefetch0(c + 2 * ldc);
        Sse.Prefetch0(c + 2 * ldc + 16);
        Sse.Prefetch0(c + 2 * ldc + 31);
        Sse.Prefetch0(c + 3 * ldc);
        Sse.Prefetch0(c + 3 * ldc + 16);
        Sse.Prefetch0(c + 3 * ldc + 31);
        Sse.Prefetch0(c + 4 * ldc);
        Sse.Prefetch0(c + 4 * ldc + 16);
        Sse.Prefetch0(c + 4 * ldc + 31);
        Sse.Prefetch0(c + 5 * ldc);
        Sse.Prefetch0(c + 5 * ldc + 16);
        Sse.Prefetch0(c + 5 * ldc + 31);
        Sse.Prefetch0(c + 6 * ldc);
        Sse.Prefetch0(c + 6 * ldc + 16);
        Sse.Prefetch0(c + 6 * ldc + 31);
        Sse.Prefetch0(c + 7 * ldc);
        Sse.Prefetch0(c + 7 * ldc + 16);
        Sse.Prefetch0(c + 7 * ldc + 31);
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        Vector512<float> c60 = default; Vector512<float> c61 = default;
        Vector512<float> c70 = default; Vector512<float> c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Avx512F.FusedMultiplyAdd(a6, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Avx512F.FusedMultiplyAdd(a7, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(a7, b1, c71);
            a += 8;
            b += 32;
        }

        Vector512<float> va = Vector512.Create(alpha);
        float* r0 = c;
        float* r1 = c + 1 * ldc;
        float* r2 = c + 2 * ldc;
        float* r3 = c + 3 * ldc;
        float* r4 = c + 4 * ldc;
        float* r5 = c + 5 * ldc;
        float* r6 = c + 6 * ldc;
        float* r7 = c + 7 * ldc;
        if (beta == 0f)
        {
            Vector512.Store(c00 * va, r0);
            Vector512.Store(c01 * va, r0 + 16);
            Vector512.Store(c10 * va, r1);
            Vector512.Store(c11 * va, r1 + 16);
            Vector512.Store(c20 * va, r2);
            Vector512.Store(c21 * va, r2 + 16);
            Vector512.Store(c30 * va, r3);
            Vector512.Store(c31 * va, r3 + 16);
            Vector512.Store(c40 * va, r4);
            Vector512.Store(c41 * va, r4 + 16);
            Vector512.Store(c50 * va, r5);
            Vector512.Store(c51 * va, r5 + 16);
            Vector512.Store(c60 * va, r6);
            Vector512.Store(c61 * va, r6 + 16);
            Vector512.Store(c70 * va, r7);
            Vector512.Store(c71 * va, r7 + 16);
        }
        else
        {
            Vector512<float> vb = Vector512.Create(beta);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c00, va, Vector512.Load(r0) * vb), r0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c01, va, Vector512.Load(r0 + 16) * vb), r0 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10, va, Vector512.Load(r1) * vb), r1);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11, va, Vector512.Load(r1 + 16) * vb), r1 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c20, va, Vector512.Load(r2) * vb), r2);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c21, va, Vector512.Load(r2 + 16) * vb), r2 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c30, va, Vector512.Load(r3) * vb), r3);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c31, va, Vector512.Load(r3 + 16) * vb), r3 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c40, va, Vector512.Load(r4) * vb), r4);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c41, va, Vector512.Load(r4 + 16) * vb), r4 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c50, va, Vector512.Load(r5) * vb), r5);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c51, va, Vector512.Load(r5 + 16) * vb), r5 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c60, va, Vector512.Load(r6) * vb), r6);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c61, va, Vector512.Load(r6 + 16) * vb), r6 + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c70, va, Vector512.Load(r7) * vb), r7);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c71, va, Vector512.Load(r7 + 16) * vb), r7 + 16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static unsafe void RunEdge(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int rows, int cols)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        Vector512<float> c60 = default; Vector512<float> c61 = default;
        Vector512<float> c70 = default; Vector512<float> c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Avx512F.FusedMultiplyAdd(a6, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Avx512F.FusedMultiplyAdd(a7, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(a7, b1, c71);
            a += 8;
            b += 32;
        }

        Vector512<float> va = Vector512.Create(alpha);
        Vector512<float> vb = Vector512.Create(beta);
        Vector512<float> m0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols)).AsSingle();
        Vector512<float> m1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - 16)).AsSingle();
        Vector512<float> zero = default;
        bool readC = beta != 0f;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c00, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c00 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c01, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c01 * va);
        if (rows == 1)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c10, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c10 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c11, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c11 * va);
        if (rows == 2)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c20, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c20 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c21, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c21 * va);
        if (rows == 3)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c30, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c30 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c31, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c31 * va);
        if (rows == 4)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c40, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c40 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c41, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c41 * va);
        if (rows == 5)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c50, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c50 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c51, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c51 * va);
        if (rows == 6)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c60, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c60 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c61, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c61 * va);
        if (rows == 7)
        {
            return;
        }

        c += ldc;
        Avx512F.MaskStore(c, m0, readC ? Avx512F.FusedMultiplyAdd(c70, va, Avx512F.MaskLoad(c, m0, zero) * vb) : c70 * va);
        Avx512F.MaskStore(c + 16, m1, readC ? Avx512F.FusedMultiplyAdd(c71, va, Avx512F.MaskLoad(c + 16, m1, zero) * vb) : c71 * va);
    }
}

/// <summary>AVX2/FMA 6x16 micro-kernel (the fallback without AVX-512): 12 ymm accumulators.</summary>
internal readonly struct Avx2Kernel6x16 : IMicroKernel
{
    public static int MR => 6;
    public static int NR => 16;
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    public static bool StoresBiasRelu => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) =>
        Tile(kc, a, b, c, ldc, alpha, beta, null, false);

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static unsafe void RunBiasRelu(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, float* bias, bool relu) =>
        Tile(kc, a, b, c, ldc, alpha, beta, bias, relu);

    /// <summary><see cref="RunBiasRelu"/>, inlined into both entry points (constant arguments drop the epilogue from <see cref="Run"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, float* bias, bool relu)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(a0, b0, c00);
            c01 = Fma.MultiplyAdd(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(a1, b0, c10);
            c11 = Fma.MultiplyAdd(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(a2, b0, c20);
            c21 = Fma.MultiplyAdd(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(a3, b0, c30);
            c31 = Fma.MultiplyAdd(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(a4, b0, c40);
            c41 = Fma.MultiplyAdd(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(a5, b0, c50);
            c51 = Fma.MultiplyAdd(a5, b1, c51);
            a += 6;
            b += 16;
        }

        Vector256<float> va = Vector256.Create(alpha);
        float* r0 = c;
        float* r1 = c + 1 * ldc;
        float* r2 = c + 2 * ldc;
        float* r3 = c + 3 * ldc;
        float* r4 = c + 4 * ldc;
        float* r5 = c + 5 * ldc;
        if (beta == 0f)
        {
            c00 *= va; c01 *= va;
            c10 *= va; c11 *= va;
            c20 *= va; c21 *= va;
            c30 *= va; c31 *= va;
            c40 *= va; c41 *= va;
            c50 *= va; c51 *= va;
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            c00 = Fma.MultiplyAdd(c00, va, Vector256.Load(r0) * vb); c01 = Fma.MultiplyAdd(c01, va, Vector256.Load(r0 + 8) * vb);
            c10 = Fma.MultiplyAdd(c10, va, Vector256.Load(r1) * vb); c11 = Fma.MultiplyAdd(c11, va, Vector256.Load(r1 + 8) * vb);
            c20 = Fma.MultiplyAdd(c20, va, Vector256.Load(r2) * vb); c21 = Fma.MultiplyAdd(c21, va, Vector256.Load(r2 + 8) * vb);
            c30 = Fma.MultiplyAdd(c30, va, Vector256.Load(r3) * vb); c31 = Fma.MultiplyAdd(c31, va, Vector256.Load(r3 + 8) * vb);
            c40 = Fma.MultiplyAdd(c40, va, Vector256.Load(r4) * vb); c41 = Fma.MultiplyAdd(c41, va, Vector256.Load(r4 + 8) * vb);
            c50 = Fma.MultiplyAdd(c50, va, Vector256.Load(r5) * vb); c51 = Fma.MultiplyAdd(c51, va, Vector256.Load(r5 + 8) * vb);
        }
        if (bias != null)
        {
            Vector256<float> bias0 = Vector256.Load(bias), bias1 = Vector256.Load(bias + 8);
            c00 += bias0; c01 += bias1;
            c10 += bias0; c11 += bias1;
            c20 += bias0; c21 += bias1;
            c30 += bias0; c31 += bias1;
            c40 += bias0; c41 += bias1;
            c50 += bias0; c51 += bias1;
        }
        if (relu)
        {
            c00 = Relu(c00); c01 = Relu(c01);
            c10 = Relu(c10); c11 = Relu(c11);
            c20 = Relu(c20); c21 = Relu(c21);
            c30 = Relu(c30); c31 = Relu(c31);
            c40 = Relu(c40); c41 = Relu(c41);
            c50 = Relu(c50); c51 = Relu(c51);
        }
        Vector256.Store(c00, r0); Vector256.Store(c01, r0 + 8);
        Vector256.Store(c10, r1); Vector256.Store(c11, r1 + 8);
        Vector256.Store(c20, r2); Vector256.Store(c21, r2 + 8);
        Vector256.Store(c30, r3); Vector256.Store(c31, r3 + 8);
        Vector256.Store(c40, r4); Vector256.Store(c41, r4 + 8);
        Vector256.Store(c50, r5); Vector256.Store(c51, r5 + 8);
    }

    /// <summary>The elementwise ReLU's own vector form, so a stored value has its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Relu(Vector256<float> x) => default(Elementwise.ReluOp).Vector(new Vectors.Vec256(x)).Value;

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static unsafe void RunEdge(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int rows, int cols)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(a0, b0, c00);
            c01 = Fma.MultiplyAdd(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(a1, b0, c10);
            c11 = Fma.MultiplyAdd(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(a2, b0, c20);
            c21 = Fma.MultiplyAdd(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(a3, b0, c30);
            c31 = Fma.MultiplyAdd(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(a4, b0, c40);
            c41 = Fma.MultiplyAdd(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(a5, b0, c50);
            c51 = Fma.MultiplyAdd(a5, b1, c51);
            a += 6;
            b += 16;
        }

        Vector256<float> va = Vector256.Create(alpha);
        Vector256<float> vb = Vector256.Create(beta);
        Vector256<float> m0 = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(cols)).AsSingle();
        Vector256<float> m1 = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(cols - 8)).AsSingle();
        bool readC = beta != 0f;
        Avx.MaskStore(c, m0, readC ? Fma.MultiplyAdd(c00, va, Avx.MaskLoad(c, m0) * vb) : c00 * va);
        Avx.MaskStore(c + 8, m1, readC ? Fma.MultiplyAdd(c01, va, Avx.MaskLoad(c + 8, m1) * vb) : c01 * va);
        if (rows == 1)
        {
            return;
        }

        c += ldc;
        Avx.MaskStore(c, m0, readC ? Fma.MultiplyAdd(c10, va, Avx.MaskLoad(c, m0) * vb) : c10 * va);
        Avx.MaskStore(c + 8, m1, readC ? Fma.MultiplyAdd(c11, va, Avx.MaskLoad(c + 8, m1) * vb) : c11 * va);
        if (rows == 2)
        {
            return;
        }

        c += ldc;
        Avx.MaskStore(c, m0, readC ? Fma.MultiplyAdd(c20, va, Avx.MaskLoad(c, m0) * vb) : c20 * va);
        Avx.MaskStore(c + 8, m1, readC ? Fma.MultiplyAdd(c21, va, Avx.MaskLoad(c + 8, m1) * vb) : c21 * va);
        if (rows == 3)
        {
            return;
        }

        c += ldc;
        Avx.MaskStore(c, m0, readC ? Fma.MultiplyAdd(c30, va, Avx.MaskLoad(c, m0) * vb) : c30 * va);
        Avx.MaskStore(c + 8, m1, readC ? Fma.MultiplyAdd(c31, va, Avx.MaskLoad(c + 8, m1) * vb) : c31 * va);
        if (rows == 4)
        {
            return;
        }

        c += ldc;
        Avx.MaskStore(c, m0, readC ? Fma.MultiplyAdd(c40, va, Avx.MaskLoad(c, m0) * vb) : c40 * va);
        Avx.MaskStore(c + 8, m1, readC ? Fma.MultiplyAdd(c41, va, Avx.MaskLoad(c + 8, m1) * vb) : c41 * va);
        if (rows == 5)
        {
            return;
        }

        c += ldc;
        Avx.MaskStore(c, m0, readC ? Fma.MultiplyAdd(c50, va, Avx.MaskLoad(c, m0) * vb) : c50 * va);
        Avx.MaskStore(c + 8, m1, readC ? Fma.MultiplyAdd(c51, va, Avx.MaskLoad(c + 8, m1) * vb) : c51 * va);
    }
}

/// <summary>Portable scalar 4x4 micro-kernel, used when neither AVX-512 nor AVX2/FMA is present.</summary>
internal readonly struct ScalarKernel4x4 : IMicroKernel
{
    public static int MR => 4;
    public static int NR => 4;
    public static bool IsSupported => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < kc; p++)
        {
            float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            a += 4;
            b += 4;
        }

        Store(c, alpha, beta, c00, c01, c02, c03);
        Store(c + ldc, alpha, beta, c10, c11, c12, c13);
        Store(c + 2 * ldc, alpha, beta, c20, c21, c22, c23);
        Store(c + 3 * ldc, alpha, beta, c30, c31, c32, c33);
    }

    public static unsafe void RunEdge(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int rows, int cols)
    {
        float* tile = stackalloc float[16];
        Run(kc, a, b, tile, 4, 1f, 0f);
        for (int i = 0; i < rows; i++, c += ldc)
        {
            for (int j = 0; j < cols; j++)
            {
                c[j] = beta == 0f ? alpha * tile[4 * i + j] : alpha * tile[4 * i + j] + beta * c[j];
            }
        }
    }

    private static unsafe void Store(float* r, float alpha, float beta, float v0, float v1, float v2, float v3)
    {
        if (beta == 0f)
        {
            r[0] = alpha * v0; r[1] = alpha * v1; r[2] = alpha * v2; r[3] = alpha * v3;
        }
        else
        {
            r[0] = alpha * v0 + beta * r[0]; r[1] = alpha * v1 + beta * r[1];
            r[2] = alpha * v2 + beta * r[2]; r[3] = alpha * v3 + beta * r[3];
        }
    }
}
