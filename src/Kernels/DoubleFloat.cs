using System.Runtime.CompilerServices;
using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// Double-float (two-float) arithmetic for devices without fp64 (OpenCL devices lacking cl_khr_fp64): a value is an
/// unevaluated sum hi + lo of two floats with |lo| ≤ ulp(hi)/2, about 48 significant bits. Only additions,
/// subtractions and products of operands short enough to be exact are used, so a compiler that contracts a
/// multiply and an add into a fused multiply-add cannot change a result (an exact product rounds to itself). Used
/// by the ILGPU kernels (and callable on the host, where tests check it against double).
/// </summary>
internal static class DoubleFloat
{
    /// <summary>Knuth's TwoSum: s + e = a + b exactly, s = fl(a + b).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void TwoSum(float a, float b, out float s, out float e)
    {
        s = a + b;
        float bb = s - a;
        e = (a - (s - bb)) + (b - bb);
    }

    /// <summary>(hi, lo) + (bh, bl), renormalised.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(ref float hi, ref float lo, float bh, float bl)
    {
        TwoSum(hi, bh, out float s, out float e);
        e += lo + bl;
        hi = s + e;
        lo = e - (hi - s);
    }

    /// <summary>
    /// Splits a float into a head with its 12 leading significant bits and the exact remainder (≤ 12 bits), so that
    /// products of two parts are exact in float. Bit masking, not Veltkamp's split: that one multiplies and subtracts,
    /// which a contracting compiler may fuse.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Split(float v, out float head, out float tail)
    {
        head = Interop.IntAsFloat(Interop.FloatAsInt(v) & 0xFFFFF000u);
        tail = v - head;
    }

    /// <summary>(hi, lo) += v² exactly summed from its three exact partial products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddSquare(ref float hi, ref float lo, float v)
    {
        Split(v, out float h, out float t);
        Add(ref hi, ref lo, h * h, 0f);
        Add(ref hi, ref lo, 2f * h * t, 0f);
        Add(ref hi, ref lo, t * t, 0f);
    }

    /// <summary>
    /// radius / (sqrt(hi + lo) + tiny) rounded to float, with tiny = tinyHi + tinyLo: one Newton step refines
    /// the float square root and one the float quotient, each with its residual formed from exact products, so the
    /// result is within about 2^-40 relative of the exact quotient before the final rounding (it equals the
    /// correctly rounded float unless the exact value lies that close to a rounding boundary).
    /// </summary>
    public static float InverseNormScale(float hi, float lo, float radius, float tinyHi, float tinyLo)
    {
        if (float.IsNaN(hi)) return hi;
        float nh = 0f, nl = 0f;
        if (hi > 0f)
        {
            if (hi > float.MaxValue) return 0f;
            // r ≈ sqrt(hi + lo); refine: r + (s - r²) / 2r, with r² summed exactly from the split parts.
            float r = MathF.Sqrt(hi);
            Split(r, out float rh, out float rt);
            float dh = hi, dl = lo;
            Add(ref dh, ref dl, -(rh * rh), 0f);
            Add(ref dh, ref dl, -(2f * rh * rt), 0f);
            Add(ref dh, ref dl, -(rt * rt), 0f);
            nh = r;
            nl = (dh + dl) / (2f * r);
        }
        Add(ref nh, ref nl, tinyHi, tinyLo);
        // q ≈ radius / n; refine: q + (radius - q·n) / n, with q·nh exact from the split parts.
        float q = radius / nh;
        Split(q, out float qh, out float qt);
        Split(nh, out float mh, out float mt);
        float eh = radius, el = 0f;
        Add(ref eh, ref el, -(qh * mh), 0f);
        Add(ref eh, ref el, -(qh * mt), 0f);
        Add(ref eh, ref el, -(qt * mh), 0f);
        Add(ref eh, ref el, -(qt * mt), 0f);
        Add(ref eh, ref el, -(q * nl), 0f);
        return q + (eh + el) / nh;
    }
}
