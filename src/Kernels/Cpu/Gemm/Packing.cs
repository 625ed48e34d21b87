using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>
/// Packing of op(A) and op(B) blocks into the micro-panel layouts the micro-kernels read. Packed A: MR-row
/// micro-panels, each kc steps of MR values (op(A)[i, p] at p * MR + i). Packed B: NR-column micro-panels, each kc
/// steps of NR values (op(B)[p, j] at p * NR + j). Rows or columns past the matrix edge are zero, so the
/// micro-kernel always runs full tiles. Transposition is absorbed here: a row-major A (or a transposed B) is an
/// interleave of rows, a transposed A (or a row-major B) is a strided copy.
/// </summary>
internal static unsafe class GemmPacking
{

    /// <summary>
    /// Packs op(A)[i0 .. i0 + mc, p0 .. p0 + kc] into ceil(mc / MR) micro-panels at <paramref name="dst"/>.
    /// A is m x k (row stride <paramref name="lda"/>) or, when <paramref name="transA"/>, k x m.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA<TK>(float* a, nint lda, bool transA, int i0, int p0, int mc, int kc, float* dst)
        where TK : IMicroKernel
    {
        int mr = TK.MR;
        for (int ir = 0; ir < mc; ir += mr, dst += (nint)mr * kc)
        {
            int rows = Math.Min(mr, mc - ir);
            if (transA)
            {
                Copy(a + (nint)p0 * lda + i0 + ir, lda, rows, kc, dst, mr);
            }
            else
            {
                Interleave(a + (nint)(i0 + ir) * lda + p0, lda, rows, kc, dst, mr);
            }
        }
    }

    /// <summary>
    /// Packs op(B)[p0 .. p0 + kc, j0 .. j0 + nc] into ceil(nc / NR) micro-panels at <paramref name="dst"/>.
    /// B is k x n (row stride <paramref name="ldb"/>) or, when <paramref name="transB"/>, n x k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB<TK>(float* b, nint ldb, bool transB, int p0, int j0, int kc, int nc, float* dst)
        where TK : IMicroKernel
    {
        int nr = TK.NR;
        for (int jr = 0; jr < nc; jr += nr, dst += (nint)nr * kc)
        {
            int cols = Math.Min(nr, nc - jr);
            if (transB)
            {
                Interleave(b + (nint)(j0 + jr) * ldb + p0, ldb, cols, kc, dst, nr);
            }
            else
            {
                Copy(b + (nint)p0 * ldb + j0 + jr, ldb, cols, kc, dst, nr);
            }
        }
    }

    /// <summary>
    /// <see cref="PackA{TK}"/> reading A through an index map (<see cref="GemmOperand"/>): whole stored
    /// row segments of the block are gathered into <paramref name="scratch"/> (at least kc x max(mc, MR) floats),
    /// then interleaved or copied into micro-panels as usual.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackAIndexed<TK>(float* a, nint lda, bool transA, int* idx, int len, int i0, int p0, int mc, int kc,
        float* dst, float* scratch)
        where TK : IMicroKernel
    {
        int mr = TK.MR;
        if (transA)
        {
            // op(A)[i, p] at p lda + i: stored row p0 + p, columns i0 .. i0 + mc, gathered once for all panels.
            for (int p = 0; p < kc; p++)
            {
                Gather(a, (nint)(p0 + p) * lda + i0, mc, idx, len, scratch + (nint)p * mc);
            }
            for (int ir = 0; ir < mc; ir += mr, dst += (nint)mr * kc)
            {
                Copy(scratch + ir, mc, Math.Min(mr, mc - ir), kc, dst, mr);
            }
            return;
        }

        for (int ir = 0; ir < mc; ir += mr, dst += (nint)mr * kc)
        {
            int rows = Math.Min(mr, mc - ir);
            for (int r = 0; r < rows; r++)
            {
                Gather(a, (nint)(i0 + ir + r) * lda + p0, kc, idx, len, scratch + r * kc);
            }
            Interleave(scratch, kc, rows, kc, dst, mr);
        }
    }

    /// <summary><see cref="PackB{TK}"/> reading B through an index map (see <see cref="PackAIndexed{TK}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackBIndexed<TK>(float* b, nint ldb, bool transB, int* idx, int len, int p0, int j0, int kc, int nc,
        float* dst, float* scratch)
        where TK : IMicroKernel
    {
        int nr = TK.NR;
        if (!transB)
        {
            // op(B)[p, j] at p ldb + j: stored row p0 + p, columns j0 .. j0 + nc, gathered once for all panels.
            for (int p = 0; p < kc; p++)
            {
                Gather(b, (nint)(p0 + p) * ldb + j0, nc, idx, len, scratch + (nint)p * nc);
            }
            for (int jr = 0; jr < nc; jr += nr, dst += (nint)nr * kc)
            {
                Copy(scratch + jr, nc, Math.Min(nr, nc - jr), kc, dst, nr);
            }
            return;
        }

        for (int jr = 0; jr < nc; jr += nr, dst += (nint)nr * kc)
        {
            int cols = Math.Min(nr, nc - jr);
            for (int c = 0; c < cols; c++)
            {
                Gather(b, (nint)(j0 + jr + c) * ldb + p0, kc, idx, len, scratch + c * kc);
            }
            Interleave(scratch, kc, cols, kc, dst, nr);
        }
    }

    /// <summary>
    /// dst[t] = x[(o / len) len + idx[o % len]] with o = <paramref name="offset"/> + t, for t &lt; count: a run of
    /// consecutive mapped offsets, gathered eight at a time with AVX2 where the run does not wrap. Eight consecutive
    /// indices (a permute that keeps its innermost axis maps whole rows so) are one plain load instead of a gather.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gather(float* x, nint offset, int count, int* idx, int len, float* dst)
    {
        nint blk = offset / len;
        int r = (int)(offset - blk * len);
        float* basePtr = x + blk * len;
        int t = 0;
        while (t < count)
        {
            int run = Math.Min(count - t, len - r);
            int* ip = idx + r;
            float* d = dst + t;
            int u = 0;
            if (Avx2.IsSupported)
            {
                for (; u + 8 <= run; u += 8)
                {
                    Vector256<int> at = Avx.LoadVector256(ip + u);
                    int first = ip[u];
                    Avx.Store(d + u, at == Vector256.Create(first) + Vector256<int>.Indices
                        ? Avx.LoadVector256(basePtr + first)
                        : Avx2.GatherVector256(basePtr, at, 4));
                }
            }
            for (; u < run; u++)
            {
                d[u] = basePtr[ip[u]];
            }
            t += run;
            r = 0;
            basePtr += len;
        }
    }

    /// <summary>
    /// dst[p * width + j] = src[p * stride + j] for p &lt; count, j &lt; cols; zero for cols &lt;= j &lt; width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Copy(float* src, nint stride, int cols, int count, float* dst, int width)
    {
        if (width == 32 && Avx512F.IsSupported)
        {
            if (cols == 32)
            {
                for (int p = 0; p < count; p++, src += stride, dst += 32)
                {
                    Vector512.Store(Vector512.Load(src), dst);
                    Vector512.Store(Vector512.Load(src + 16), dst + 16);
                }
            }
            else
            {
                // Masked loads read nothing past column cols (no fault at the end of a buffer) and zero the rest.
                Vector512<float> m0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols)).AsSingle();
                Vector512<float> m1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - 16)).AsSingle();
                for (int p = 0; p < count; p++, src += stride, dst += 32)
                {
                    Vector512.Store(Avx512F.MaskLoad(src, m0, Vector512<float>.Zero), dst);
                    Vector512.Store(Avx512F.MaskLoad(src + 16, m1, Vector512<float>.Zero), dst + 16);
                }
            }
            return;
        }

        if (width == 6 && Avx.IsSupported && SgemmPacked.SmallProductPaths)
        {
            CopySix(src, stride, cols, count, dst);
            return;
        }

        if ((width & 7) == 0 && Avx.IsSupported)
        {
            for (int p = 0; p < count; p++, src += stride, dst += width)
            {
                for (int j = 0; j < width; j += 8)
                {
                    Vector256<float> v = cols >= j + 8
                        ? Avx.LoadVector256(src + j)
                        : Avx.MaskLoad(src + j, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(cols - j)).AsSingle());
                    Avx.Store(dst + j, v);
                }
            }
            return;
        }

        for (int p = 0; p < count; p++, src += stride, dst += width)
        {
            int j = 0;
            for (; j < cols; j++)
            {
                dst[j] = src[j];
            }
            for (; j < width; j++)
            {
                dst[j] = 0f;
            }
        }
    }

    /// <summary>
    /// dst[p * width + r] = src[r * stride + p] for r &lt; rows, p &lt; count; zero for rows &lt;= r &lt; width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Interleave(float* src, nint stride, int rows, int count, float* dst, int width)
    {
        if (width == 6 && Avx.IsSupported && SgemmPacked.SmallProductPaths)
        {
            InterleaveSix(src, stride, rows, count, dst);
            return;
        }

        // Whole 8 x 8 blocks by register transposes, the rest element by element.
        int fullRows = 0, fullCount = 0;
        if ((width & 7) == 0 && Avx.IsSupported)
        {
            fullRows = rows & ~7;
            fullCount = count & ~7;
            for (int r = 0; r < fullRows; r += 8)
            {
                float* s = src + r * stride;
                float* d = dst + r;
                for (int p = 0; p < fullCount; p += 8)
                {
                    SimdTranspose.Transpose8x8(s + p, stride, d + (nint)p * width, width);
                }
            }
        }

        for (int r = 0; r < rows; r++)
        {
            float* s = src + r * stride;
            for (int p = r < fullRows ? fullCount : 0; p < count; p++)
            {
                dst[(nint)p * width + r] = s[p];
            }
        }
        for (int p = 0; p < count; p++)
        {
            float* d = dst + (nint)p * width;
            for (int r = rows; r < width; r++)
            {
                d[r] = 0f;
            }
        }
    }

    /// <summary>
    /// <see cref="Copy"/> into six-wide panels (the AVX2 kernel's A): one masked load per step (nothing read past
    /// column cols, the rest zero) stored eight wide, its two spare lanes overwritten by the next step; the last step
    /// stores six.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopySix(float* src, nint stride, int cols, int count, float* dst)
    {
        Vector256<float> mask = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(cols)).AsSingle();
        for (int p = 0; p < count - 1; p++, src += stride, dst += 6)
        {
            Avx.Store(dst, Avx.MaskLoad(src, mask));
        }
        if (count > 0)
        {
            StoreSix(dst, Avx.MaskLoad(src, mask));
        }
    }

    /// <summary>
    /// <see cref="Interleave"/> into six-wide panels (the AVX2 kernel's A): eight steps at a time, the six rows (zero
    /// past <paramref name="rows"/>) transposed in registers; each step is stored eight wide, its two spare lanes
    /// overwritten by the next step, and the last step of a block stores six.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InterleaveSix(float* src, nint stride, int rows, int count, float* dst)
    {
        int p = 0;
        if (rows == 6)
        {
            for (; p <= count - 8; p += 8)
            {
                float* s = src + p;
                Transpose6x8(Avx.LoadVector256(s), Avx.LoadVector256(s + stride), Avx.LoadVector256(s + 2 * stride),
                    Avx.LoadVector256(s + 3 * stride), Avx.LoadVector256(s + 4 * stride), Avx.LoadVector256(s + 5 * stride),
                    dst + (nint)p * 6);
            }
        }
        for (; p < count; p++)
        {
            float* d = dst + (nint)p * 6;
            int r = 0;
            for (; r < rows; r++)
            {
                d[r] = src[r * stride + p];
            }
            for (; r < 6; r++)
            {
                d[r] = 0f;
            }
        }
    }

    /// <summary>Stores column j of the six rows r0..r5 (eight columns) at d + 6 j, six values each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose6x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, float* d)
    {
        Vector256<float> r6 = Vector256<float>.Zero, r7 = Vector256<float>.Zero;
        SimdTranspose.Transpose8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Avx.Store(d, r0);
        Avx.Store(d + 6, r1);
        Avx.Store(d + 12, r2);
        Avx.Store(d + 18, r3);
        Avx.Store(d + 24, r4);
        Avx.Store(d + 30, r5);
        Avx.Store(d + 36, r6);
        StoreSix(d + 42, r7);
    }

    /// <summary>Stores the first six lanes of <paramref name="v"/> (a four-lane and a two-lane store).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreSix(float* d, Vector256<float> v)
    {
        Sse.Store(d, v.GetLower());
        Sse2.StoreScalar((double*)(d + 4), v.GetUpper().AsDouble());
    }
}
