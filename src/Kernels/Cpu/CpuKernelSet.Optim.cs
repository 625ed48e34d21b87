using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;
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
        Simd.Run(new SgdKernel(k, Ptr(pa), Ptr(ga), va == null ? null : Ptr(va), n));
    }

    /// <summary>
    /// SGD on several parameter buffers at once, their elements one index range split over the cores (the same
    /// arithmetic per element as one buffer at a time). Every buffer is checked before any is updated.
    /// </summary>
    internal unsafe void SgdSteps(IReadOnlyList<SgdBuffers> buffers, float lr, in SgdHyper hyper, bool firstStep)
    {
        const string op = "SgdSteps";
        var k = new SgdParams(lr, hyper.Momentum, hyper.Dampening, hyper.WeightDecay, hyper.Nesterov, firstStep);
        var segments = new SgdSegment[buffers.Count];
        long total = 0;
        for (int i = 0; i < buffers.Count; i++)
        {
            var (param, grad, velocity) = buffers[i];
            var pa = Data(param, 0, op);
            long n = pa.LongLength;
            var ga = Data(grad, n, op);
            float* v = null;
            if (hyper.Momentum != 0f)
            {
                if (velocity == null) throw new ArgumentNullException(nameof(buffers), $"{op}: momentum != 0 needs a velocity buffer (entry {i}).");
                v = Ptr(Data(velocity, n, op));
            }
            segments[i] = new SgdSegment(Ptr(pa), Ptr(ga), v, total, n);
            total += n;
        }
        if (total > 0) Simd.Run(new SgdMultiKernel(k, segments, total));
    }

    private readonly unsafe struct SgdSegment(float* p, float* g, float* v, long start, long length)
    {
        public readonly float* P = p, G = g, V = v;
        public readonly long Start = start, Length = length;
    }

    private readonly struct SgdMultiKernel(SgdParams k, SgdSegment[] segments, long total) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>()
        {
            var (parameters, segs) = (k, segments);
            For(total, CheapGrain, (s, e) => SgdRange<TV>(parameters, segs, s, e));
        }
    }

    /// <summary>SGD on the elements [start, end) of the segments' joint index range.</summary>
    private static unsafe void SgdRange<TV>(SgdParams k, SgdSegment[] segments, long start, long end) where TV : unmanaged, IFloatVector<TV>
    {
        foreach (var g in segments)
        {
            long s = Math.Max(start, g.Start), e = Math.Min(end, g.Start + g.Length);
            if (s >= e) continue;
            long o = s - g.Start;
            SgdLoop<TV>(k, g.P + o, g.G + o, g.V == null ? null : g.V + o, e - s);
        }
    }

    private readonly unsafe struct SgdKernel(SgdParams k, float* p, float* g, float* v, long n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => SgdPar<TV>(k, p, g, v, n);
    }

    private static unsafe void SgdPar<TV>(SgdParams k, float* p, float* g, float* v, long n) where TV : unmanaged, IFloatVector<TV>
    {
        if (n < 2 * CheapGrain) SgdLoop<TV>(k, p, g, v, n);
        else For(n, CheapGrain, (s, e) => SgdLoop<TV>(k, p + s, g + s, v == null ? null : v + s, e - s));
    }

    private readonly record struct SgdParams(float Lr, float Momentum, float Dampening, float WeightDecay, bool Nesterov, bool FirstStep);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SgdLoop<TV>(SgdParams k, float* p, float* gr, float* vel, long n) where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        bool decay = k.WeightDecay != 0f, mom = k.Momentum != 0f && vel != null;
        float damp = 1f - k.Dampening;
        if (TV.Count > 1)
        {
            var wd = TV.Create(k.WeightDecay);
            var mu = TV.Create(k.Momentum);
            var dm = TV.Create(damp);
            var nlr = TV.Create(-k.Lr);
            for (; i <= n - TV.Count; i += TV.Count)
            {
                var pv = TV.Load(p + i);
                var g = TV.Load(gr + i);
                if (decay) g = TV.FusedMultiplyAdd(wd, pv, g);
                if (mom)
                {
                    var v = k.FirstStep ? g : TV.FusedMultiplyAdd(mu, TV.Load(vel + i), dm * g);
                    TV.Store(v, vel + i);
                    g = k.Nesterov ? TV.FusedMultiplyAdd(mu, v, g) : v;
                }
                TV.Store(TV.FusedMultiplyAdd(nlr, g, pv), p + i);
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
        var k = AdamParamsOf(lr, beta1, beta2, eps, weightDecay, decoupled, step);
        Simd.Run(new AdamKernel(k, Ptr(pa), Ptr(ga), Ptr(ma), Ptr(va), n));
    }

    private static AdamParams AdamParamsOf(float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled, int step)
    {
        double bc1 = 1.0 - Math.Pow(beta1, step);
        double bc2 = 1.0 - Math.Pow(beta2, step);
        return new AdamParams(
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
    }

    /// <summary>
    /// Adam on several parameter buffers at once: their elements form one index range split over the cores, each
    /// chunk running <see cref="AdamLoop"/> on the parts of the buffers it covers (the same arithmetic per element as
    /// one buffer at a time, so the results are bitwise those of separate steps).
    /// </summary>
    internal unsafe void AdamSteps(IReadOnlyList<AdamBuffers> buffers, float lr, in AdamHyper hyper, int[] steps)
    {
        const string op = "AdamSteps";
        var segments = new AdamSegment[buffers.Count];
        long total = 0;
        for (int i = 0; i < buffers.Count; i++)
        {
            if (steps[i] < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps[i], $"{op}: step counts from 1.");
            var (param, grad, m, v) = buffers[i];
            var pa = Data(param, 0, op);
            long n = pa.LongLength;
            segments[i] = new AdamSegment(AdamParamsOf(lr, hyper.Beta1, hyper.Beta2, hyper.Eps, hyper.WeightDecay, hyper.Decoupled, steps[i]),
                Ptr(pa), Ptr(Data(grad, n, op)), Ptr(Data(m, n, op)), Ptr(Data(v, n, op)), total, n);
            total += n;
        }
        if (total > 0) Simd.Run(new AdamMultiKernel(segments, total));
    }

    private readonly unsafe struct AdamSegment(AdamParams k, float* p, float* g, float* m, float* v, long start, long length)
    {
        public readonly AdamParams K = k;
        public readonly float* P = p, G = g, M = m, V = v;
        public readonly long Start = start, Length = length;
    }

    private readonly struct AdamMultiKernel(AdamSegment[] segments, long total) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>()
        {
            var segs = segments;
            For(total, CheapGrain, (s, e) => AdamRange<TV>(segs, s, e));
        }
    }

    /// <summary>Adam on the elements [start, end) of the segments' joint index range.</summary>
    private static unsafe void AdamRange<TV>(AdamSegment[] segments, long start, long end) where TV : unmanaged, IFloatVector<TV>
    {
        foreach (var g in segments)
        {
            long s = Math.Max(start, g.Start), e = Math.Min(end, g.Start + g.Length);
            if (s >= e) continue;
            long o = s - g.Start;
            AdamLoop<TV>(g.K, g.P + o, g.G + o, g.M + o, g.V + o, e - s);
        }
    }

    private readonly unsafe struct AdamKernel(AdamParams k, float* p, float* g, float* m, float* v, long n) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => AdamPar<TV>(k, p, g, m, v, n);
    }

    private static unsafe void AdamPar<TV>(AdamParams k, float* p, float* g, float* m, float* v, long n) where TV : unmanaged, IFloatVector<TV>
    {
        if (n < 2 * CheapGrain) AdamLoop<TV>(k, p, g, m, v, n);
        else For(n, CheapGrain, (s, e) => AdamLoop<TV>(k, p + s, g + s, m + s, v + s, e - s));
    }

    private readonly record struct AdamParams(float StepSize, float SqrtBc2, float Beta1, float Beta2, float OneMinusBeta1,
        float OneMinusBeta2, float Eps, float WeightDecay, bool Coupled, bool Shrink, float ShrinkFactor);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void AdamLoop<TV>(AdamParams k, float* p, float* gr, float* ms, float* vs, long n) where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        if (TV.Count > 1)
        {
            var wd = TV.Create(k.WeightDecay);
            var shrink = TV.Create(k.ShrinkFactor);
            var b1 = TV.Create(k.Beta1);
            var b2 = TV.Create(k.Beta2);
            var c1 = TV.Create(k.OneMinusBeta1);
            var c2 = TV.Create(k.OneMinusBeta2);
            var sq = TV.Create(k.SqrtBc2);
            var eps = TV.Create(k.Eps);
            var nstep = TV.Create(-k.StepSize);
            for (; i <= n - TV.Count; i += TV.Count)
            {
                var pv = TV.Load(p + i);
                var g = TV.Load(gr + i);
                if (k.Coupled) g = TV.FusedMultiplyAdd(wd, pv, g);
                if (k.Shrink) pv *= shrink;
                var mv = TV.FusedMultiplyAdd(b1, TV.Load(ms + i), c1 * g);
                var vv = TV.FusedMultiplyAdd(b2, TV.Load(vs + i), c2 * g * g);
                TV.Store(mv, ms + i);
                TV.Store(vv, vs + i);
                var denom = TV.Sqrt(vv) / sq + eps;
                TV.Store(TV.FusedMultiplyAdd(nstep, mv / denom, pv), p + i);
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
