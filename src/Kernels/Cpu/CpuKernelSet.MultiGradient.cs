using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;
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
        Simd.Run(new PerturbKernel(Ptr(pa), Ptr(ga), Ptr(ba), scale, squareParam, n));
    }

    private readonly unsafe struct PerturbKernel(float* p, float* g, float* backup, float scale, bool square, long n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => PerturbPar<TV>(p, g, backup, scale, square, n);
    }

    private static unsafe void PerturbPar<TV>(float* p, float* g, float* backup, float scale, bool square, long n)
        where TV : unmanaged, IFloatVector<TV>
    {
        if (n < 2 * CheapGrain) PerturbLoop<TV>(p, g, backup, scale, square, n);
        else For(n, CheapGrain, (s, e) => PerturbLoop<TV>(p + s, g + s, backup + s, scale, square, e - s));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PerturbLoop<TV>(float* p, float* g, float* backup, float scale, bool square, long n)
        where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        if (TV.Count > 1)
        {
            var vs = TV.Create(scale);
            for (; i <= n - TV.Count; i += TV.Count)
            {
                var pv = TV.Load(p + i);
                TV.Store(pv, backup + i);
                var t = square ? vs * pv * pv : vs;
                TV.Store(TV.FusedMultiplyAdd(t, TV.Load(g + i), pv), p + i);
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
        Simd.Run(new CombineKernel(Ptr(ga), Ptr(g2), a, b, n));
    }

    private readonly unsafe struct CombineKernel(float* g, float* g2, float a, float b, long n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => CombinePar<TV>(g, g2, a, b, n);
    }

    private static unsafe void CombinePar<TV>(float* g, float* g2, float a, float b, long n) where TV : unmanaged, IFloatVector<TV>
    {
        if (n < 2 * CheapGrain) CombineLoop<TV>(g, g2, a, b, n);
        else For(n, CheapGrain, (s, e) => CombineLoop<TV>(g + s, g2 + s, a, b, e - s));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void CombineLoop<TV>(float* g, float* g2, float a, float b, long n) where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        if (TV.Count > 1)
        {
            var va = TV.Create(a);
            var vb = TV.Create(b);
            for (; i <= n - TV.Count; i += TV.Count)
                TV.Store(TV.FusedMultiplyAdd(vb, TV.Load(g2 + i), va * TV.Load(g + i)), g + i);
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

    /// <summary>Σ (w[i]·x[i])² (or Σ x[i]² when w is null) at the current width; see <see cref="SquaresLoop{TV, TD}"/>.</summary>
    private static unsafe double SquaresLoop(float* x, float* w, long n) => Simd.Run<SquaresKernel, double>(new SquaresKernel(x, w, n));

    private readonly unsafe struct SquaresKernel(float* x, float* w, long n) : IWidthFunc<double>
    {
        double IWidthFunc<double>.Run<TV, TD>() => SquaresLoop<TV, TD>(x, w, n);
    }

    /// <summary>Σ (w[i]·x[i])² (or Σ x[i]² when w is null): the product formed in float, squared and summed in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double SquaresLoop<TV, TD>(float* x, float* w, long n)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long i = 0;
        double s = 0;
        if (TV.Count > 1)
        {
            var s0 = TD.Zero;
            var s1 = TD.Zero;
            for (; i <= n - TV.Count; i += TV.Count)
            {
                var v = TV.Load(x + i);
                if (w != null) v *= TV.Load(w + i);
                TV.Widen(v, out var l, out var h);
                s0 = TD.FusedMultiplyAdd(l, l, s0);
                s1 = TD.FusedMultiplyAdd(h, h, s1);
            }
            s = TD.Sum(s0 + s1);
        }
        for (; i < n; i++)
        {
            double v = w == null ? x[i] : x[i] * w[i];
            s += v * v;
        }
        return s;
    }
}
