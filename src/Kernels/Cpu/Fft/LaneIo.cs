using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using V = System.Runtime.Intrinsics.Vector512<float>;

namespace Engine.Kernels.Cpu.Fft;

/// <summary>
/// Moves up to 16 rows of the caller's data into lane vectors and back. Contiguous rows go through 8 x 8 AVX
/// transposes (two per 8 columns of 16 rows); the strided complex columns of the 2-D transform go through AVX-512
/// two-table permutes that split (re, im) pairs into a real and an imaginary vector. Partial groups (fewer than 16
/// rows, or a column count that is not a multiple of 8) take scalar loops with missing rows read as zero.
/// </summary>
internal static unsafe class LaneIo
{
    public const int Lanes = 16;

    /// <summary>
    /// For float columns c &lt; <paramref name="cols"/> of <paramref name="rows"/> rows (lane r = row r), stores the
    /// column as a lane vector at dst[<paramref name="dest"/>[c]] (skipped where dest[c] &lt; 0).
    /// </summary>
    public static void Gather(float* src, long rowStride, int rows, int cols, int* dest, V* dst)
    {
        float* tmp = stackalloc float[8 * Lanes];
        for (int c0 = 0; c0 < cols; c0 += 8)
        {
            int cnt = Math.Min(8, cols - c0);
            Load8(src + c0, rowStride, rows, cnt, tmp);
            for (int c = 0; c < cnt; c++)
            {
                int d = dest[c0 + c];
                if (d >= 0) dst[d] = Vector512.Load(tmp + Lanes * c);
            }
        }
    }

    /// <summary>
    /// Writes float column c &lt; <paramref name="cols"/> of <paramref name="rows"/> rows from the lane vector
    /// src[<paramref name="source"/>[c]] (src[c] when <paramref name="source"/> is null), times <paramref name="scale"/>.
    /// </summary>
    public static void Scatter(V* src, int* source, int cols, float* dst, long rowStride, int rows, float scale)
    {
        float* tmp = stackalloc float[8 * Lanes];
        var vs = Vector512.Create(scale);
        for (int c0 = 0; c0 < cols; c0 += 8)
        {
            int cnt = Math.Min(8, cols - c0);
            for (int c = 0; c < cnt; c++)
            {
                var v = src[source == null ? c0 + c : source[c0 + c]];
                if (scale != 1f) v *= vs;
                v.Store(tmp + Lanes * c);
            }
            Store8(tmp, dst + c0, rowStride, rows, cnt);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load8(float* src, long rowStride, int rows, int cnt, float* tmp)
    {
        if (rows == Lanes && cnt == 8 && Avx.IsSupported)
        {
            SimdTranspose.Transpose8x8(src, (nint)rowStride, tmp, Lanes);
            SimdTranspose.Transpose8x8(src + 8 * rowStride, (nint)rowStride, tmp + 8, Lanes);
            return;
        }
        for (int c = 0; c < cnt; c++)
            for (int r = 0; r < Lanes; r++)
                tmp[Lanes * c + r] = r < rows ? src[r * rowStride + c] : 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(float* tmp, float* dst, long rowStride, int rows, int cnt)
    {
        if (rows == Lanes && cnt == 8 && Avx.IsSupported)
        {
            SimdTranspose.Transpose8x8(tmp, Lanes, dst, (nint)rowStride);
            SimdTranspose.Transpose8x8(tmp + 8, Lanes, dst + 8 * rowStride, (nint)rowStride);
            return;
        }
        for (int c = 0; c < cnt; c++)
            for (int r = 0; r < rows; r++)
                dst[r * rowStride + c] = tmp[Lanes * c + r];
    }

    private static readonly Vector512<int> EvenIdx = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> OddIdx = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    private static readonly Vector512<int> LowIdx = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> HighIdx = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>
    /// Loads <paramref name="count"/> complex values, the i-th from src + i·<paramref name="stride"/> floats, each holding
    /// <paramref name="lanes"/> consecutive (re, im) pairs (one per lane), into dst[2·pos[i] + swap] (real parts) and
    /// dst[2·pos[i] + 1 - swap] (imaginary parts).
    /// </summary>
    public static void GatherInterleaved(float* src, long stride, int count, int lanes, int* pos, bool swap, V* dst)
    {
        int sr = swap ? 1 : 0, si = 1 - sr;
        if (lanes == Lanes && Avx512F.IsSupported)
        {
            for (int i = 0; i < count; i++)
            {
                float* p = src + i * stride;
                var lo = Vector512.Load(p);
                var hi = Vector512.Load(p + Lanes);
                long d = 2L * pos[i];
                dst[d + sr] = Avx512F.PermuteVar16x32x2(lo, EvenIdx, hi);
                dst[d + si] = Avx512F.PermuteVar16x32x2(lo, OddIdx, hi);
            }
            return;
        }
        float* re = stackalloc float[Lanes];
        float* im = stackalloc float[Lanes];
        for (int i = 0; i < count; i++)
        {
            float* p = src + i * stride;
            for (int l = 0; l < Lanes; l++)
            {
                re[l] = l < lanes ? p[2 * l] : 0f;
                im[l] = l < lanes ? p[2 * l + 1] : 0f;
            }
            long d = 2L * pos[i];
            dst[d + sr] = Vector512.Load(re);
            dst[d + si] = Vector512.Load(im);
        }
    }

    /// <summary>
    /// The inverse of <see cref="GatherInterleaved"/> from natural order: complex value i (vectors src[2i + swap] real,
    /// src[2i + 1 - swap] imaginary), times <paramref name="scale"/>, to dst + i·<paramref name="stride"/> as
    /// <paramref name="lanes"/> (re, im) pairs.
    /// </summary>
    public static void ScatterInterleaved(V* src, bool swap, float scale, float* dst, long stride, int count, int lanes)
    {
        int sr = swap ? 1 : 0, si = 1 - sr;
        var vs = Vector512.Create(scale);
        if (lanes == Lanes && Avx512F.IsSupported)
        {
            for (int i = 0; i < count; i++)
            {
                var re = src[2 * i + sr] * vs;
                var im = src[2 * i + si] * vs;
                float* p = dst + i * stride;
                Avx512F.PermuteVar16x32x2(re, LowIdx, im).Store(p);
                Avx512F.PermuteVar16x32x2(re, HighIdx, im).Store(p + Lanes);
            }
            return;
        }
        float* tr = stackalloc float[Lanes];
        float* ti = stackalloc float[Lanes];
        for (int i = 0; i < count; i++)
        {
            (src[2 * i + sr] * vs).Store(tr);
            (src[2 * i + si] * vs).Store(ti);
            float* p = dst + i * stride;
            for (int l = 0; l < lanes; l++)
            {
                p[2 * l] = tr[l];
                p[2 * l + 1] = ti[l];
            }
        }
    }

    /// <summary>
    /// Like <see cref="GatherInterleaved"/>, but lane l reads its own column: complex value i of lane l is at
    /// src + offsets[l] + i·<paramref name="stride"/> (lanes ≥ <paramref name="lanes"/> read as zero).
    /// </summary>
    public static void GatherColumns(float* src, long* offsets, int lanes, long stride, int count, int* pos, bool swap, V* dst)
    {
        int sr = swap ? 1 : 0, si = 1 - sr;
        float* re = stackalloc float[Lanes];
        float* im = stackalloc float[Lanes];
        for (int l = lanes; l < Lanes; l++)
        {
            re[l] = 0f;
            im[l] = 0f;
        }
        for (int i = 0; i < count; i++)
        {
            for (int l = 0; l < lanes; l++)
            {
                float* p = src + offsets[l] + i * stride;
                re[l] = p[0];
                im[l] = p[1];
            }
            long d = 2L * pos[i];
            dst[d + sr] = Vector512.Load(re);
            dst[d + si] = Vector512.Load(im);
        }
    }

    /// <summary>The inverse of <see cref="GatherColumns"/> from natural order, times <paramref name="scale"/>.</summary>
    public static void ScatterColumns(V* src, bool swap, float scale, float* dst, long* offsets, int lanes, long stride, int count)
    {
        int sr = swap ? 1 : 0, si = 1 - sr;
        var vs = Vector512.Create(scale);
        float* tr = stackalloc float[Lanes];
        float* ti = stackalloc float[Lanes];
        for (int i = 0; i < count; i++)
        {
            (src[2 * i + sr] * vs).Store(tr);
            (src[2 * i + si] * vs).Store(ti);
            for (int l = 0; l < lanes; l++)
            {
                float* p = dst + offsets[l] + i * stride;
                p[0] = tr[l];
                p[1] = ti[l];
            }
        }
    }
}
