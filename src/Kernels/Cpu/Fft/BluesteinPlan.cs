using System.Numerics;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Fft;

/// <summary>
/// Lengths with a prime factor above 7: Bluestein's chirp-z transform. With w_j = e^{-iπ j²/n},
/// X_k = w_k Σ_j (x_j w_j) conj(w_{k-j}), a linear convolution of length 2n - 1 done as a cyclic one of the power of
/// two M ≥ 2n - 1: forward FFT of the chirped, zero-padded input, multiply by the precomputed FFT of the chirp (with the
/// 1/M of the inverse folded in), inverse FFT (as a forward FFT of the conjugate), multiply by the chirp again.
/// The chirp uses j² mod 2n (exact in integers) so its angle stays accurate for long lengths; the chirp's spectrum is
/// computed in double precision.
/// </summary>
internal sealed unsafe class BluesteinPlan : LanePlan
{
    private readonly Pow2Plan inner;
    private readonly int[] identity;
    /// <summary>w_j for j &lt; n as (c, s, -s).</summary>
    private readonly float[] chirp;
    /// <summary>FFT_M of the conjugate chirp, divided by M, as (c, s, -s).</summary>
    private readonly float[] kernel;

    public BluesteinPlan(int n) : base(n)
    {
        int m = (int)BitOperations.RoundUpToPowerOf2((uint)(2 * n - 1));
        inner = (Pow2Plan)Get(m);
        identity = Enumerable.Range(0, n).ToArray();
        chirp = GC.AllocateUninitializedArray<float>(3 * n, pinned: true);
        var re = new double[m];
        var im = new double[m];
        for (int j = 0; j < n; j++)
        {
            long jj = (long)j * j % (2L * n);
            double t = Math.PI * jj / n;
            double c = Math.Cos(t), s = -Math.Sin(t);
            chirp[3 * j] = (float)c;
            chirp[3 * j + 1] = (float)s;
            chirp[3 * j + 2] = (float)-s;
            // b_j = conj(w_j), placed at j and (for j > 0) at M - j.
            re[j] = c;
            im[j] = -s;
            if (j > 0)
            {
                re[m - j] = c;
                im[m - j] = -s;
            }
        }
        DoubleFft(re, im);
        kernel = GC.AllocateUninitializedArray<float>(3 * m, pinned: true);
        for (int k = 0; k < m; k++)
        {
            kernel[3 * k] = (float)(re[k] / m);
            kernel[3 * k + 1] = (float)(im[k] / m);
            kernel[3 * k + 2] = (float)(-im[k] / m);
        }
    }

    public override int BufferLength => inner.N;

    public override int[] Position => identity;

    public override TV* Execute<TV>(TV* a, TV* b)
    {
        int n = N, m = inner.N;
        var pos = inner.Position;
        fixed (float* w = chirp, kh = kernel)
        {
            for (int j = 0; j < m; j++)
            {
                long at = 2L * pos[j];
                if (j < n)
                {
                    Lane.Mul(a[2 * j], a[2 * j + 1], w + 3 * j, out b[at], out b[at + 1]);
                }
                else
                {
                    b[at] = TV.Zero;
                    b[at + 1] = TV.Zero;
                }
            }
            inner.Transform(b);
            for (int k = 0; k < m; k++)
            {
                Lane.Mul(b[2 * k], b[2 * k + 1], kh + 3 * k, out var tr, out var ti);
                long at = 2L * pos[k];
                a[at] = tr;
                a[at + 1] = -ti;
            }
            inner.Transform(a);
            for (int k = 0; k < n; k++)
                Lane.Mul(a[2 * k], -a[2 * k + 1], w + 3 * k, out a[2 * k], out a[2 * k + 1]);
        }
        return a;
    }

    /// <summary>In-place forward FFT of a power-of-two length in double precision (plan construction only).</summary>
    private static void DoubleFft(double[] re, double[] im)
    {
        int n = re.Length;
        for (int i = 1, j = 0; i < n; i++)
        {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
            }
        }
        for (int len = 2; len <= n; len <<= 1)
        {
            double ang = -2 * Math.PI / len;
            for (int i = 0; i < n; i += len)
                for (int k = 0; k < len / 2; k++)
                {
                    double c = Math.Cos(ang * k), s = Math.Sin(ang * k);
                    int u = i + k, v = i + k + len / 2;
                    double vr = re[v] * c - im[v] * s, vi = re[v] * s + im[v] * c;
                    re[v] = re[u] - vr;
                    im[v] = im[u] - vi;
                    re[u] += vr;
                    im[u] += vi;
                }
        }
    }
}
