using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;
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
}
