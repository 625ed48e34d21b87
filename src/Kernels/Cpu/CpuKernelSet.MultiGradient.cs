using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

// Kernels of the multi-gradient optimizers (SAM, finite-difference and double-backprop gradient regularization):
// perturb-and-save, exact restore, gradient combination and the global squared gradient norm.
public sealed partial class CpuKernelSet
{
    /// <summary>
    /// Elements per block of <see cref="SumOfSquares"/>. Blocks depend on the length only (never on the core count), and
    /// their double partials are added in block order, so the norm is bit-identical on every machine and every run.
    /// </summary>
    private const long SumOfSquaresBlock = 64 * 1024;

    /// <inheritdoc />
    public unsafe void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, float scale, bool squareParam)
    {
        const string op = "Perturb";
        var pa = Data(param, 0, op);
        long n = pa.LongLength;
        var ga = Data(grad, n, op);
        var ba = Data(backup, n, op);
        if (ReferenceEquals(pa, ba)) throw new ArgumentException($"{op}: the backup buffer must differ from the parameter buffer.");
        if (n == 0) return;
        float* pp = Ptr(pa), pg = Ptr(ga), pb = Ptr(ba);
        if (n < 2 * CheapGrain) PerturbLoop(pp, pg, pb, scale, squareParam, n);
        else For(n, CheapGrain, (s, e) => PerturbLoop(pp + s, pg + s, pb + s, scale, squareParam, e - s));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PerturbLoop(float* p, float* g, float* backup, float scale, bool square, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(scale);
            for (; i <= n - 16; i += 16)
            {
                var pv = Vector512.Load(p + i);
                Vector512.Store(pv, backup + i);
                var t = square ? vs * pv * pv : vs;
                Vector512.Store(Vector512.FusedMultiplyAdd(t, Vector512.Load(g + i), pv), p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.Load(p + i);
                Vector256.Store(pv, backup + i);
                var t = square ? vs * pv * pv : vs;
                Vector256.Store(Vector256.FusedMultiplyAdd(t, Vector256.Load(g + i), pv), p + i);
            }
        }
        for (; i < n; i++)
        {
            float pv = p[i];
            backup[i] = pv;
            float t = square ? scale * pv * pv : scale;
            p[i] = MathF.FusedMultiplyAdd(t, g[i], pv);
        }
    }

    /// <inheritdoc />
    public void Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param)
    {
        const string op = "Restore";
        var pa = Data(param, 0, op);
        var ba = Data(backup, pa.LongLength, op);
        // A plain copy of the saved bits: subtracting the perturbation again would not round back to θ.
        Array.Copy(ba, pa, pa.LongLength);
    }

    /// <inheritdoc />
    public unsafe void CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b)
    {
        const string op = "CombineGradients";
        var ga = Data(grad, 0, op);
        long n = ga.LongLength;
        var g2 = Data(grad2, n, op);
        if (n == 0) return;
        float* pg = Ptr(ga), p2 = Ptr(g2);
        if (n < 2 * CheapGrain) CombineLoop(pg, p2, a, b, n);
        else For(n, CheapGrain, (s, e) => CombineLoop(pg + s, p2 + s, a, b, e - s));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void CombineLoop(float* g, float* g2, float a, float b, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            var vb = Vector512.Create(b);
            for (; i <= n - 16; i += 16)
                Vector512.Store(Vector512.FusedMultiplyAdd(vb, Vector512.Load(g2 + i), va * Vector512.Load(g + i)), g + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            var vb = Vector256.Create(b);
            for (; i <= n - 8; i += 8)
                Vector256.Store(Vector256.FusedMultiplyAdd(vb, Vector256.Load(g2 + i), va * Vector256.Load(g + i)), g + i);
        }
        for (; i < n; i++) g[i] = MathF.FusedMultiplyAdd(b, g2[i], a * g[i]);
    }

    /// <inheritdoc />
    public unsafe double SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights = null)
    {
        const string op = "SumOfSquares";
        ArgumentNullException.ThrowIfNull(buffers);
        if (weights != null && weights.Count != buffers.Count)
            throw new ArgumentException($"{op}: {weights.Count} weight entries for {buffers.Count} buffers.", nameof(weights));
        // Validate everything before any work.
        var xs = new float[buffers.Count][];
        var ws = new float[]?[buffers.Count];
        for (int k = 0; k < buffers.Count; k++)
        {
            xs[k] = Data(buffers[k], 0, op);
            var w = weights?[k];
            ws[k] = w == null ? null : Data(w, xs[k].LongLength, op);
        }
        double total = 0;
        for (int k = 0; k < xs.Length; k++)
        {
            var xa = xs[k];
            var wa = ws[k];
            long n = xa.LongLength;
            if (n == 0) continue;
            float* px = Ptr(xa), pw = wa == null ? null : Ptr(wa);
            long blocks = (n + SumOfSquaresBlock - 1) / SumOfSquaresBlock;
            if (blocks == 1)
            {
                total += SquaresLoop(px, pw, n);
                continue;
            }
            var partials = new double[blocks];
            For(blocks, 1, (b0, b1) =>
            {
                for (long b = b0; b < b1; b++)
                {
                    long s = b * SumOfSquaresBlock, len = Math.Min(SumOfSquaresBlock, n - s);
                    partials[b] = SquaresLoop(px + s, pw == null ? null : pw + s, len);
                }
            }, 1);
            foreach (var v in partials) total += v;
            GC.KeepAlive(xa);
            GC.KeepAlive(wa);
        }
        return total;
    }

    /// <summary>Σ (w[i]·x[i])² (or Σ x[i]² when w is null): the product formed in float, squared and summed in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double SquaresLoop(float* x, float* w, long n)
    {
        long i = 0;
        double s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s0 = Vector512<double>.Zero;
            var s1 = Vector512<double>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                if (w != null) v *= Vector512.Load(w + i);
                var (l, h) = Vector512.Widen(v);
                s0 = Vector512.FusedMultiplyAdd(l, l, s0);
                s1 = Vector512.FusedMultiplyAdd(h, h, s1);
            }
            s = Vector512.Sum(s0 + s1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s0 = Vector256<double>.Zero;
            var s1 = Vector256<double>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                if (w != null) v *= Vector256.Load(w + i);
                var (l, h) = Vector256.Widen(v);
                s0 = Vector256.FusedMultiplyAdd(l, l, s0);
                s1 = Vector256.FusedMultiplyAdd(h, h, s1);
            }
            s = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++)
        {
            double v = w == null ? x[i] : x[i] * w[i];
            s += v * v;
        }
        return s;
    }
}
