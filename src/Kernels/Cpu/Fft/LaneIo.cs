using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Fft;

/// <summary>
/// Moves up to one vector's lane count of rows of the caller's data into lane vectors and back. Contiguous rows go
/// through 8 x 8 AVX transposes (lanes / 8 per 8 columns); the strided complex columns of the 2-D transform go
/// through <see cref="IFloatVector{TSelf}.Deinterleave"/>, which splits (re, im) pairs into a real and an imaginary
/// vector. Partial groups (fewer rows than lanes, or a column count that is not a multiple of 8) and widths without an
/// 8 x 8 transpose take scalar loops, with missing rows read as zero.
/// </summary>
internal static unsafe class LaneIo
{
    /// <summary>
    /// For float columns c &lt; <paramref name="cols"/> of <paramref name="rows"/> rows (lane r = row r), stores the
    /// column as a lane vector at dst[<paramref name="dest"/>[c]] (skipped where dest[c] &lt; 0).
    /// </summary>
    public static void Gather<TV>(float* src, long rowStride, int rows, int cols, int* dest, TV* dst) where TV : unmanaged, IFloatVector<TV>
    {
        int lanes = TV.Count;
        float* tmp = stackalloc float[8 * lanes];
        for (int c0 = 0; c0 < cols; c0 += 8)
        {
            int cnt = Math.Min(8, cols - c0);
            Load8(src + c0, rowStride, rows, cnt, lanes, tmp);
            for (int c = 0; c < cnt; c++)
            {
                int d = dest[c0 + c];
                if (d >= 0) dst[d] = TV.Load(tmp + lanes * c);
            }
        }
    }

    /// <summary>
    /// Writes float column c &lt; <paramref name="cols"/> of <paramref name="rows"/> rows from the lane vector
    /// src[<paramref name="source"/>[c]] (src[c] when <paramref name="source"/> is null), times <paramref name="scale"/>.
    /// </summary>
    public static void Scatter<TV>(TV* src, int* source, int cols, float* dst, long rowStride, int rows, float scale)
        where TV : unmanaged, IFloatVector<TV>
    {
        int lanes = TV.Count;
        float* tmp = stackalloc float[8 * lanes];
        var vs = TV.Create(scale);
        for (int c0 = 0; c0 < cols; c0 += 8)
        {
            int cnt = Math.Min(8, cols - c0);
            for (int c = 0; c < cnt; c++)
            {
                var v = src[source == null ? c0 + c : source[c0 + c]];
                if (scale != 1f) v *= vs;
                TV.Store(v, tmp + lanes * c);
            }
            Store8(tmp, dst + c0, rowStride, rows, cnt, lanes);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load8(float* src, long rowStride, int rows, int cnt, int lanes, float* tmp)
    {
        if (rows == lanes && cnt == 8 && lanes % 8 == 0 && Avx.IsSupported)
        {
            for (int r = 0; r < lanes; r += 8) SimdTranspose.Transpose8x8(src + r * rowStride, (nint)rowStride, tmp + r, lanes);
            return;
        }
        for (int c = 0; c < cnt; c++)
            for (int r = 0; r < lanes; r++)
                tmp[lanes * c + r] = r < rows ? src[r * rowStride + c] : 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(float* tmp, float* dst, long rowStride, int rows, int cnt, int lanes)
    {
        if (rows == lanes && cnt == 8 && lanes % 8 == 0 && Avx.IsSupported)
        {
            for (int r = 0; r < lanes; r += 8) SimdTranspose.Transpose8x8(tmp + r, lanes, dst + r * rowStride, (nint)rowStride);
            return;
        }
        for (int c = 0; c < cnt; c++)
            for (int r = 0; r < rows; r++)
                dst[r * rowStride + c] = tmp[lanes * c + r];
    }

    /// <summary>
    /// Loads <paramref name="count"/> complex values, the i-th from src + i·<paramref name="stride"/> floats, each holding
    /// <paramref name="lanes"/> consecutive (re, im) pairs (one per lane), into dst[2·pos[i] + swap] (real parts) and
    /// dst[2·pos[i] + 1 - swap] (imaginary parts).
    /// </summary>
    public static void GatherInterleaved<TV>(float* src, long stride, int count, int lanes, int* pos, bool swap, TV* dst)
        where TV : unmanaged, IFloatVector<TV>
    {
        int sr = swap ? 1 : 0, si = 1 - sr, width = TV.Count;
        if (lanes == width)
        {
            for (int i = 0; i < count; i++)
            {
                float* p = src + i * stride;
                TV.Deinterleave(TV.Load(p), TV.Load(p + width), out var re, out var im);
                long d = 2L * pos[i];
                dst[d + sr] = re;
                dst[d + si] = im;
            }
            return;
        }
        float* tr = stackalloc float[width];
        float* ti = stackalloc float[width];
        for (int i = 0; i < count; i++)
        {
            float* p = src + i * stride;
            for (int l = 0; l < width; l++)
            {
                tr[l] = l < lanes ? p[2 * l] : 0f;
                ti[l] = l < lanes ? p[2 * l + 1] : 0f;
            }
            long d = 2L * pos[i];
            dst[d + sr] = TV.Load(tr);
            dst[d + si] = TV.Load(ti);
        }
    }

    /// <summary>
    /// The inverse of <see cref="GatherInterleaved"/> from natural order: complex value i (vectors src[2i + swap] real,
    /// src[2i + 1 - swap] imaginary), times <paramref name="scale"/>, to dst + i·<paramref name="stride"/> as
    /// <paramref name="lanes"/> (re, im) pairs.
    /// </summary>
    public static void ScatterInterleaved<TV>(TV* src, bool swap, float scale, float* dst, long stride, int count, int lanes)
        where TV : unmanaged, IFloatVector<TV>
    {
        int sr = swap ? 1 : 0, si = 1 - sr, width = TV.Count;
        var vs = TV.Create(scale);
        if (lanes == width)
        {
            for (int i = 0; i < count; i++)
            {
                TV.Interleave(src[2 * i + sr] * vs, src[2 * i + si] * vs, out var low, out var high);
                float* p = dst + i * stride;
                TV.Store(low, p);
                TV.Store(high, p + width);
            }
            return;
        }
        float* tr = stackalloc float[width];
        float* ti = stackalloc float[width];
        for (int i = 0; i < count; i++)
        {
            TV.Store(src[2 * i + sr] * vs, tr);
            TV.Store(src[2 * i + si] * vs, ti);
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
    public static void GatherColumns<TV>(float* src, long* offsets, int lanes, long stride, int count, int* pos, bool swap, TV* dst)
        where TV : unmanaged, IFloatVector<TV>
    {
        int sr = swap ? 1 : 0, si = 1 - sr, width = TV.Count;
        float* re = stackalloc float[width];
        float* im = stackalloc float[width];
        for (int l = lanes; l < width; l++)
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
            dst[d + sr] = TV.Load(re);
            dst[d + si] = TV.Load(im);
        }
    }

    /// <summary>The inverse of <see cref="GatherColumns"/> from natural order, times <paramref name="scale"/>.</summary>
    public static void ScatterColumns<TV>(TV* src, bool swap, float scale, float* dst, long* offsets, int lanes, long stride, int count)
        where TV : unmanaged, IFloatVector<TV>
    {
        int sr = swap ? 1 : 0, si = 1 - sr, width = TV.Count;
        var vs = TV.Create(scale);
        float* tr = stackalloc float[width];
        float* ti = stackalloc float[width];
        for (int i = 0; i < count; i++)
        {
            TV.Store(src[2 * i + sr] * vs, tr);
            TV.Store(src[2 * i + si] * vs, ti);
            for (int l = 0; l < lanes; l++)
            {
                float* p = dst + offsets[l] + i * stride;
                p[0] = tr[l];
                p[1] = ti[l];
            }
        }
    }
}
