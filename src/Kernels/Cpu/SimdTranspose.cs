using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels.Cpu;

/// <summary>In-register AVX transposes shared by the permute kernel and the GEMM packing routines.</summary>
internal static unsafe class SimdTranspose
{
    /// <summary>Transposes an 8x8 block: d[j * dstStride + i] = s[i * srcStride + j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose8x8(float* s, nint srcStride, float* d, nint dstStride)
    {
        Vector256<float> r0 = Avx.LoadVector256(s);
        Vector256<float> r1 = Avx.LoadVector256(s + srcStride);
        Vector256<float> r2 = Avx.LoadVector256(s + 2 * srcStride);
        Vector256<float> r3 = Avx.LoadVector256(s + 3 * srcStride);
        Vector256<float> r4 = Avx.LoadVector256(s + 4 * srcStride);
        Vector256<float> r5 = Avx.LoadVector256(s + 5 * srcStride);
        Vector256<float> r6 = Avx.LoadVector256(s + 6 * srcStride);
        Vector256<float> r7 = Avx.LoadVector256(s + 7 * srcStride);
        Transpose8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Avx.Store(d, r0);
        Avx.Store(d + dstStride, r1);
        Avx.Store(d + 2 * dstStride, r2);
        Avx.Store(d + 3 * dstStride, r3);
        Avx.Store(d + 4 * dstStride, r4);
        Avx.Store(d + 5 * dstStride, r5);
        Avx.Store(d + 6 * dstStride, r6);
        Avx.Store(d + 7 * dstStride, r7);
    }

    /// <summary>Transposes the 8x8 matrix whose rows are r0..r7 in registers: afterwards r_j holds its column j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        Vector256<float> t0 = Avx.UnpackLow(r0, r1);
        Vector256<float> t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3);
        Vector256<float> t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5);
        Vector256<float> t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7);
        Vector256<float> t7 = Avx.UnpackHigh(r6, r7);

        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44);
        Vector256<float> u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44);
        Vector256<float> u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44);
        Vector256<float> u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44);
        Vector256<float> u7 = Avx.Shuffle(t5, t7, 0xEE);

        r0 = Avx.Permute2x128(u0, u4, 0x20);
        r1 = Avx.Permute2x128(u1, u5, 0x20);
        r2 = Avx.Permute2x128(u2, u6, 0x20);
        r3 = Avx.Permute2x128(u3, u7, 0x20);
        r4 = Avx.Permute2x128(u0, u4, 0x31);
        r5 = Avx.Permute2x128(u1, u5, 0x31);
        r6 = Avx.Permute2x128(u2, u6, 0x31);
        r7 = Avx.Permute2x128(u3, u7, 0x31);
    }
}
