using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

// Kernels of the multi-gradient optimizers (SAM, finite-difference and double-backprop gradient regularization):
// perturb-and-save, exact restore and gradient combination (the global squared norm: CpuKernelSet.SumOfSquares.cs).
public sealed partial class CpuKernelSet
{
    /// <inheritdoc />
    internal unsafe void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, float scale, bool squareParam)
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
    internal void Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param)
    {
        const string op = "Restore";
        var pa = Data(param, 0, op);
        var ba = Data(backup, pa.LongLength, op);
        // A plain copy of the saved bits: subtracting the perturbation again would not round back to θ.
        Array.Copy(ba, pa, pa.LongLength);
    }

    /// <inheritdoc />
    internal unsafe void CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b)
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
}
