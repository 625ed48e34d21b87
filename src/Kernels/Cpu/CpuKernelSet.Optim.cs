using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <inheritdoc />
    internal unsafe void SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep)
    {
        var pa = Data(param, 0, "SgdStep");
        long n = pa.LongLength;
        var ga = Data(grad, n, "SgdStep");
        float[]? va = null;
        if (momentum != 0f)
        {
            if (velocity == null) throw new ArgumentNullException(nameof(velocity), "SgdStep: momentum != 0 needs a velocity buffer.");
            va = Data(velocity, n, "SgdStep");
        }
        if (n == 0) return;
        var k = new SgdParams(lr, momentum, dampening, weightDecay, nesterov, firstStep);
        float* pp = Ptr(pa), pg = Ptr(ga), pv = va == null ? null : Ptr(va);
        if (n < 2 * CheapGrain) SgdLoop(k, pp, pg, pv, n);
        else For(n, CheapGrain, (s, e) => SgdLoop(k, pp + s, pg + s, pv == null ? null : pv + s, e - s));
    }

    private readonly record struct SgdParams(float Lr, float Momentum, float Dampening, float WeightDecay, bool Nesterov, bool FirstStep);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SgdLoop(SgdParams k, float* p, float* gr, float* vel, long n)
    {
        long i = 0;
        bool decay = k.WeightDecay != 0f, mom = k.Momentum != 0f && vel != null;
        float damp = 1f - k.Dampening;
        if (Vector512.IsHardwareAccelerated)
        {
            var wd = Vector512.Create(k.WeightDecay);
            var mu = Vector512.Create(k.Momentum);
            var dm = Vector512.Create(damp);
            var nlr = Vector512.Create(-k.Lr);
            for (; i <= n - 16; i += 16)
            {
                var pv = Vector512.Load(p + i);
                var g = Vector512.Load(gr + i);
                if (decay) g = Vector512.FusedMultiplyAdd(wd, pv, g);
                if (mom)
                {
                    var v = k.FirstStep ? g : Vector512.FusedMultiplyAdd(mu, Vector512.Load(vel + i), dm * g);
                    Vector512.Store(v, vel + i);
                    g = k.Nesterov ? Vector512.FusedMultiplyAdd(mu, v, g) : v;
                }
                Vector512.Store(Vector512.FusedMultiplyAdd(nlr, g, pv), p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var wd = Vector256.Create(k.WeightDecay);
            var mu = Vector256.Create(k.Momentum);
            var dm = Vector256.Create(damp);
            var nlr = Vector256.Create(-k.Lr);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.Load(p + i);
                var g = Vector256.Load(gr + i);
                if (decay) g = Vector256.FusedMultiplyAdd(wd, pv, g);
                if (mom)
                {
                    var v = k.FirstStep ? g : Vector256.FusedMultiplyAdd(mu, Vector256.Load(vel + i), dm * g);
                    Vector256.Store(v, vel + i);
                    g = k.Nesterov ? Vector256.FusedMultiplyAdd(mu, v, g) : v;
                }
                Vector256.Store(Vector256.FusedMultiplyAdd(nlr, g, pv), p + i);
            }
        }
        for (; i < n; i++)
        {
            float pv = p[i], g = gr[i];
            if (decay) g = MathF.FusedMultiplyAdd(k.WeightDecay, pv, g);
            if (mom)
            {
                float v = k.FirstStep ? g : MathF.FusedMultiplyAdd(k.Momentum, vel[i], damp * g);
                vel[i] = v;
                g = k.Nesterov ? MathF.FusedMultiplyAdd(k.Momentum, v, g) : v;
            }
            p[i] = MathF.FusedMultiplyAdd(-k.Lr, g, pv);
        }
    }

    /// <inheritdoc />
    internal unsafe void AdamStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> m, DeviceBuffer<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled, int step)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "AdamStep: step counts from 1.");
        var pa = Data(param, 0, "AdamStep");
        long n = pa.LongLength;
        var ga = Data(grad, n, "AdamStep");
        var ma = Data(m, n, "AdamStep");
        var va = Data(v, n, "AdamStep");
        if (n == 0) return;
        double bc1 = 1.0 - Math.Pow(beta1, step);
        double bc2 = 1.0 - Math.Pow(beta2, step);
        var k = new AdamParams(
            StepSize: (float)(lr / bc1),
            SqrtBc2: (float)Math.Sqrt(bc2),
            Beta1: beta1,
            Beta2: beta2,
            OneMinusBeta1: 1f - beta1,
            OneMinusBeta2: 1f - beta2,
            Eps: eps,
            WeightDecay: weightDecay,
            Coupled: !decoupled && weightDecay != 0f,
            Shrink: decoupled && weightDecay != 0f,
            ShrinkFactor: 1f - lr * weightDecay);
        float* pp = Ptr(pa), pg = Ptr(ga), pm = Ptr(ma), pv = Ptr(va);
        if (n < 2 * CheapGrain) AdamLoop(k, pp, pg, pm, pv, n);
        else For(n, CheapGrain, (s, e) => AdamLoop(k, pp + s, pg + s, pm + s, pv + s, e - s));
    }

    private readonly record struct AdamParams(float StepSize, float SqrtBc2, float Beta1, float Beta2, float OneMinusBeta1,
        float OneMinusBeta2, float Eps, float WeightDecay, bool Coupled, bool Shrink, float ShrinkFactor);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void AdamLoop(AdamParams k, float* p, float* gr, float* ms, float* vs, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var wd = Vector512.Create(k.WeightDecay);
            var shrink = Vector512.Create(k.ShrinkFactor);
            var b1 = Vector512.Create(k.Beta1);
            var b2 = Vector512.Create(k.Beta2);
            var c1 = Vector512.Create(k.OneMinusBeta1);
            var c2 = Vector512.Create(k.OneMinusBeta2);
            var sq = Vector512.Create(k.SqrtBc2);
            var eps = Vector512.Create(k.Eps);
            var nstep = Vector512.Create(-k.StepSize);
            for (; i <= n - 16; i += 16)
            {
                var pv = Vector512.Load(p + i);
                var g = Vector512.Load(gr + i);
                if (k.Coupled) g = Vector512.FusedMultiplyAdd(wd, pv, g);
                if (k.Shrink) pv *= shrink;
                var mv = Vector512.FusedMultiplyAdd(b1, Vector512.Load(ms + i), c1 * g);
                var vv = Vector512.FusedMultiplyAdd(b2, Vector512.Load(vs + i), c2 * g * g);
                Vector512.Store(mv, ms + i);
                Vector512.Store(vv, vs + i);
                var denom = Vector512.Sqrt(vv) / sq + eps;
                Vector512.Store(Vector512.FusedMultiplyAdd(nstep, mv / denom, pv), p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var wd = Vector256.Create(k.WeightDecay);
            var shrink = Vector256.Create(k.ShrinkFactor);
            var b1 = Vector256.Create(k.Beta1);
            var b2 = Vector256.Create(k.Beta2);
            var c1 = Vector256.Create(k.OneMinusBeta1);
            var c2 = Vector256.Create(k.OneMinusBeta2);
            var sq = Vector256.Create(k.SqrtBc2);
            var eps = Vector256.Create(k.Eps);
            var nstep = Vector256.Create(-k.StepSize);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.Load(p + i);
                var g = Vector256.Load(gr + i);
                if (k.Coupled) g = Vector256.FusedMultiplyAdd(wd, pv, g);
                if (k.Shrink) pv *= shrink;
                var mv = Vector256.FusedMultiplyAdd(b1, Vector256.Load(ms + i), c1 * g);
                var vv = Vector256.FusedMultiplyAdd(b2, Vector256.Load(vs + i), c2 * g * g);
                Vector256.Store(mv, ms + i);
                Vector256.Store(vv, vs + i);
                var denom = Vector256.Sqrt(vv) / sq + eps;
                Vector256.Store(Vector256.FusedMultiplyAdd(nstep, mv / denom, pv), p + i);
            }
        }
        for (; i < n; i++)
        {
            float pv = p[i], g = gr[i];
            if (k.Coupled) g = MathF.FusedMultiplyAdd(k.WeightDecay, pv, g);
            if (k.Shrink) pv *= k.ShrinkFactor;
            float mv = MathF.FusedMultiplyAdd(k.Beta1, ms[i], k.OneMinusBeta1 * g);
            float vv = MathF.FusedMultiplyAdd(k.Beta2, vs[i], k.OneMinusBeta2 * g * g);
            ms[i] = mv;
            vs[i] = vv;
            float denom = MathF.Sqrt(vv) / k.SqrtBc2 + k.Eps;
            p[i] = MathF.FusedMultiplyAdd(-k.StepSize, mv / denom, pv);
        }
    }
}
