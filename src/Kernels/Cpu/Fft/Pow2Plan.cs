using System.Numerics;
using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Fft;

/// <summary>
/// Power-of-two lengths: recursive in-place radix-4 decimation in time on bit-reversed input. A block of length L is
/// four blocks of L/4 (the bit-reversed quarters hold x[4j], x[4j+2], x[4j+1], x[4j+3]) transformed recursively, then
/// one radix-4 pass with twiddles W_L^k, W_L^2k, W_L^3k; when log2 L is odd the top step is radix 2 instead. The
/// recursion keeps small blocks in L1 (cache-oblivious), and its leaves are twiddle-free 4- or 2-point butterflies.
/// </summary>
internal sealed unsafe class Pow2Plan : LanePlan
{
    private readonly int[] position;
    /// <summary>Per log2 L: radix-4 levels hold 9 floats per k &lt; L/4 (W^k, W^2k, W^3k as (c, s, -s)); radix-2 levels 3 per k &lt; L/2.</summary>
    private readonly float[][] levels;

    public Pow2Plan(int n) : base(n)
    {
        int lg = BitOperations.Log2((uint)n);
        position = new int[n];
        for (int j = 0; j < n; j++) position[j] = lg == 0 ? 0 : (int)(ReverseBits((uint)j) >> (32 - lg));
        levels = new float[lg + 1][];
        for (int l = 3; l <= lg; l++)
        {
            int len = 1 << l;
            if ((l & 1) == 1)
            {
                var t = GC.AllocateUninitializedArray<float>(3 * len / 2, pinned: true);
                fixed (float* p = t)
                    for (int k = 0; k < len / 2; k++) Twiddle(k, len, p + 3 * k);
                levels[l] = t;
            }
            else
            {
                var t = GC.AllocateUninitializedArray<float>(9 * len / 4, pinned: true);
                fixed (float* p = t)
                    for (int k = 0; k < len / 4; k++)
                    {
                        Twiddle(k, len, p + 9 * k);
                        Twiddle(2L * k, len, p + 9 * k + 3);
                        Twiddle(3L * k, len, p + 9 * k + 6);
                    }
                levels[l] = t;
            }
        }
    }

    private static uint ReverseBits(uint v)
    {
        v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
        v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
        v = ((v >> 4) & 0x0F0F0F0Fu) | ((v & 0x0F0F0F0Fu) << 4);
        v = ((v >> 8) & 0x00FF00FFu) | ((v & 0x00FF00FFu) << 8);
        return (v >> 16) | (v << 16);
    }

    public override int BufferLength => N;

    public override int[] Position => position;

    public override TV* Execute<TV>(TV* a, TV* b)
    {
        Transform(a);
        return a;
    }

    /// <summary>In-place transform of bit-reversed <paramref name="v"/> (natural order out).</summary>
    public void Transform<TV>(TV* v) where TV : unmanaged, IFloatVector<TV> => Rec(v, N, BitOperations.Log2((uint)N));

    private void Rec<TV>(TV* v, int len, int lg) where TV : unmanaged, IFloatVector<TV>
    {
        if (len == 4)
        {
            Leaf4(v);
            return;
        }
        if (len == 2)
        {
            var ar = v[0]; var ai = v[1]; var br = v[2]; var bi = v[3];
            v[0] = ar + br; v[1] = ai + bi; v[2] = ar - br; v[3] = ai - bi;
            return;
        }
        if (len == 1) return;
        if ((lg & 1) == 1)
        {
            int h = len / 2;
            Rec(v, h, lg - 1);
            Rec(v + 2 * h, h, lg - 1);
            Radix2(v, h, levels[lg]);
        }
        else
        {
            int q = len / 4;
            Rec(v, q, lg - 2);
            Rec(v + 2 * q, q, lg - 2);
            Rec(v + 4 * q, q, lg - 2);
            Rec(v + 6 * q, q, lg - 2);
            Radix4(v, q, levels[lg]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Leaf4<TV>(TV* v) where TV : unmanaged, IFloatVector<TV>
    {
        // Bit-reversed: v holds x0, x2, x1, x3.
        var t0r = v[0] + v[2]; var t0i = v[1] + v[3];
        var t1r = v[0] - v[2]; var t1i = v[1] - v[3];
        var t2r = v[4] + v[6]; var t2i = v[5] + v[7];
        var t3r = v[4] - v[6]; var t3i = v[5] - v[7];
        v[0] = t0r + t2r; v[1] = t0i + t2i;
        v[4] = t0r - t2r; v[5] = t0i - t2i;
        v[2] = t1r + t3i; v[3] = t1i - t3r;
        v[6] = t1r - t3i; v[7] = t1i + t3r;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Radix2<TV>(TV* v, int h, float[] tw) where TV : unmanaged, IFloatVector<TV>
    {
        fixed (float* w0 = tw)
        {
            TV* u = v + 2 * h;
            for (int k = 0; k < h; k++)
            {
                Lane.Mul(u[2 * k], u[2 * k + 1], w0 + 3 * k, out var br, out var bi);
                var ar = v[2 * k]; var ai = v[2 * k + 1];
                v[2 * k] = ar + br; v[2 * k + 1] = ai + bi;
                u[2 * k] = ar - br; u[2 * k + 1] = ai - bi;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Radix4<TV>(TV* v, int q, float[] tw) where TV : unmanaged, IFloatVector<TV>
    {
        fixed (float* w0 = tw)
        {
            TV* q1 = v + 2 * q, q2 = v + 4 * q, q3 = v + 6 * q;
            for (int k = 0; k < q; k++)
            {
                float* w = w0 + 9 * k;
                int o = 2 * k;
                // Quarter 1 holds the transform of x[4j+2] (W^2k), quarter 2 that of x[4j+1] (W^k).
                var a0r = v[o]; var a0i = v[o + 1];
                Lane.Mul(q2[o], q2[o + 1], w, out var a1r, out var a1i);
                Lane.Mul(q1[o], q1[o + 1], w + 3, out var a2r, out var a2i);
                Lane.Mul(q3[o], q3[o + 1], w + 6, out var a3r, out var a3i);
                var t0r = a0r + a2r; var t0i = a0i + a2i;
                var t1r = a0r - a2r; var t1i = a0i - a2i;
                var t2r = a1r + a3r; var t2i = a1i + a3i;
                var t3r = a1r - a3r; var t3i = a1i - a3i;
                v[o] = t0r + t2r; v[o + 1] = t0i + t2i;
                q2[o] = t0r - t2r; q2[o + 1] = t0i - t2i;
                q1[o] = t1r + t3i; q1[o + 1] = t1i - t3r;
                q3[o] = t1r - t3i; q3[o + 1] = t1i + t3r;
            }
        }
    }
}
