using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Fft;

/// <summary>
/// Lengths whose prime factors are all 2, 3, 5 or 7: recursive out-of-place mixed-radix decimation in time (the
/// structure of KISS FFT). n = p·m: p strided sub-transforms of length m (stride p in the input) written to
/// consecutive blocks of the output, then one radix-p pass over them with twiddles W_n^{q·k·stride}. Factors: 4s first,
/// then 2, 3, 5, 7. The radix-p butterfly is a direct p-point DFT (p ≤ 7).
/// </summary>
internal sealed unsafe class MixedRadixPlan : LanePlan
{
    private readonly int[] factors;
    private readonly int[] identity;
    /// <summary>W_n^k for k &lt; n as (c, s, -s).</summary>
    private readonly float[] twiddles;

    public MixedRadixPlan(int n) : base(n)
    {
        var f = new List<int>();
        int r = n;
        while (r % 4 == 0) { f.Add(4); r /= 4; }
        foreach (int p in new[] { 2, 3, 5, 7 })
            while (r % p == 0) { f.Add(p); r /= p; }
        if (r != 1) throw new ArgumentException($"fft: length {n} has a prime factor above 7; use Bluestein.");
        factors = [.. f];
        identity = Enumerable.Range(0, n).ToArray();
        twiddles = GC.AllocateUninitializedArray<float>(3 * n, pinned: true);
        fixed (float* p = twiddles)
            for (int k = 0; k < n; k++) Twiddle(k, n, p + 3 * k);
    }

    public override int BufferLength => N;

    public override int[] Position => identity;

    public override TV* Execute<TV>(TV* a, TV* b)
    {
        fixed (float* tw = twiddles)
            Work(b, a, 1, 0, N, tw);
        return b;
    }

    private void Work<TV>(TV* output, TV* input, int fstride, int fi, int len, float* tw) where TV : unmanaged, IFloatVector<TV>
    {
        int p = factors[fi], m = len / p;
        if (m == 1)
        {
            for (int j = 0; j < p; j++)
            {
                output[2 * j] = input[2L * j * fstride];
                output[2 * j + 1] = input[2L * j * fstride + 1];
            }
        }
        else
        {
            for (int j = 0; j < p; j++)
                Work(output + 2L * j * m, input + 2L * j * fstride, fstride * p, fi + 1, m, tw);
        }
        Butterfly(output, fstride, p, m, tw);
    }

    /// <summary>Radix-p pass: for k &lt; m, y[k + u·m] = Σ_q W_p^{uq} · W_n^{q·k·fstride} · x[k + q·m].</summary>
    private void Butterfly<TV>(TV* v, int fstride, int p, int m, float* tw) where TV : unmanaged, IFloatVector<TV>
    {
        TV* s = stackalloc TV[14];
        int rootStep = N / p;
        for (int k = 0; k < m; k++)
        {
            s[0] = v[2 * k];
            s[1] = v[2 * k + 1];
            for (int q = 1; q < p; q++)
            {
                long at = 2L * (k + q * m);
                Lane.Mul(v[at], v[at + 1], tw + 3L * q * k * fstride, out s[2 * q], out s[2 * q + 1]);
            }
            for (int u = 0; u < p; u++)
            {
                var yr = s[0];
                var yi = s[1];
                for (int q = 1; q < p; q++)
                {
                    float* w = tw + 3L * (u * q % p) * rootStep;
                    var c = TV.Create(w[0]);
                    var sn = TV.Create(w[1]);
                    var ns = TV.Create(w[2]);
                    yr = TV.FusedMultiplyAdd(s[2 * q], c, TV.FusedMultiplyAdd(s[2 * q + 1], ns, yr));
                    yi = TV.FusedMultiplyAdd(s[2 * q], sn, TV.FusedMultiplyAdd(s[2 * q + 1], c, yi));
                }
                long at = 2L * (k + u * m);
                v[at] = yr;
                v[at + 1] = yi;
            }
        }
    }
}
