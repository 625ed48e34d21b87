using System.Collections.Concurrent;

namespace Engine.Data.Pde;

/// <summary>
/// A small in-place radix-2 complex FFT in double for the PDE solvers (host code, power-of-two lengths), with
/// twiddles and the bit-reversal permutation precomputed per length. Not the engine's FFT: data generation only.
/// </summary>
internal static class HostFft
{
    private sealed record Plan(int[] BitReverse, double[] Cos, double[] Sin);

    private static readonly ConcurrentDictionary<int, Plan> Plans = new();

    /// <summary>True for 1, 2, 4, ...</summary>
    public static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    /// <summary>
    /// X_k = Σ_t x_t e^{∓2πi k t / n} in place (minus sign forward); the inverse is unscaled (divide by n yourself).
    /// </summary>
    public static void Transform(double[] re, double[] im, bool inverse)
    {
        int n = re.Length;
        if (!IsPowerOfTwo(n) || im.Length != n)
            throw new ArgumentException($"HostFft: needs two arrays of one power-of-two length; got {re.Length} and {im.Length}.");
        var p = Plans.GetOrAdd(n, Build);
        for (int i = 0; i < n; i++)
        {
            int j = p.BitReverse[i];
            if (j > i)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
            }
        }
        double sign = inverse ? 1 : -1;
        for (int len = 2; len <= n; len <<= 1)
        {
            int half = len >> 1, step = n / len;
            for (int start = 0; start < n; start += len)
                for (int k = 0; k < half; k++)
                {
                    double wr = p.Cos[k * step], wi = sign * p.Sin[k * step];
                    int a = start + k, b = a + half;
                    double tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
        }
    }

    private static Plan Build(int n)
    {
        int bits = 0;
        while ((1 << bits) < n) bits++;
        var rev = new int[n];
        for (int i = 0; i < n; i++)
        {
            int r = 0;
            for (int b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
            rev[i] = r;
        }
        var c = new double[Math.Max(1, n / 2)];
        var s = new double[c.Length];
        for (int k = 0; k < c.Length; k++)
        {
            c[k] = Math.Cos(2 * Math.PI * k / n);
            s[k] = Math.Sin(2 * Math.PI * k / n);
        }
        return new Plan(rev, c, s);
    }
}
