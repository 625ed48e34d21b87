using Engine.Kernels.Elementwise;
using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>Scalars of one fused SGD step.</summary>
internal struct SgdParams
{
    public float Lr, Momentum, Dampening, WeightDecay;
    /// <summary>1 when momentum is used (a velocity buffer is passed).</summary>
    public int UseMomentum;
    public int Nesterov;
    public int FirstStep;
}

/// <summary>Scalars of one fused Adam/AdamW step; bias corrections precomputed on the host.</summary>
internal struct AdamParams
{
    public float Lr, Beta1, Beta2, Eps, WeightDecay, BiasCorrection1, BiasCorrection2;
    public int Decoupled;
}

internal static partial class IlgpuKernels
{
    internal static void Fill(ArrayView<float> dst, float value)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride) dst[i] = value;
    }

    internal static void RandomUniform(ArrayView<float> dst, ulong seed, float low, float high)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride)
            dst[i] = CounterRng.Uniform(seed, (ulong)i, low, high);
    }

    internal static void RandomNormal(ArrayView<float> dst, ulong seed, float mean, float std)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride)
            dst[i] = mean + std * CounterRng.Normal(seed, (ulong)i);
    }

    /// <summary>y[i] = op(x[i]): one kernel per op struct type (ILGPU specialises the generic method per type argument).</summary>
    internal static void Unary<TOp>(ArrayView<float> x, ArrayView<float> y, TOp op) where TOp : unmanaged, IUnaryOp
    {
        for (long i = GlobalStart; i < x.Length; i += GlobalStride) y[i] = op.Scalar(x[i]);
    }

    /// <summary>y[i] = op(a[i], b[i]) over same-shape operands (y may be a or b).</summary>
    internal static void Zip<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, TOp op) where TOp : unmanaged, IBinaryOp
    {
        for (long i = GlobalStart; i < a.Length; i += GlobalStride) y[i] = op.Scalar(a[i], b[i]);
    }

    /// <summary>y[i] = op(a[offA(i)], b[offB(i)]) over <paramref name="count"/> outputs.</summary>
    internal static void Binary<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, long count, StridedLayout layout, TOp op)
        where TOp : unmanaged, IBinaryOp
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
        {
            var o = Offsets(i, layout);
            y[i] = op.Scalar(a[o.A], b[o.B]);
        }
    }

    /// <summary>y[i] = x[offA(i)]: broadcasting and permutation.</summary>
    internal static void Gather(ArrayView<float> x, ArrayView<float> y, long count, StridedLayout layout)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
            y[i] = x[Offsets(i, layout).A];
    }

    internal static void Sgd(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> velocity, SgdParams p)
    {
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float w = param[i];
            float g = grad[i] + p.WeightDecay * w;
            if (p.UseMomentum != 0)
            {
                float v = p.FirstStep != 0 ? g : p.Momentum * velocity[i] + (1f - p.Dampening) * g;
                velocity[i] = v;
                g = p.Nesterov != 0 ? g + p.Momentum * v : v;
            }
            param[i] = w - p.Lr * g;
        }
    }

    internal static void Adam(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, AdamParams p)
    {
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float w = param[i];
            float g = grad[i];
            if (p.Decoupled != 0) w *= 1f - p.Lr * p.WeightDecay;
            else g += p.WeightDecay * w;
            float mi = p.Beta1 * m[i] + (1f - p.Beta1) * g;
            float vi = p.Beta2 * v[i] + (1f - p.Beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            param[i] = w - p.Lr * (mi / p.BiasCorrection1) / (MathF.Sqrt(vi / p.BiasCorrection2) + p.Eps);
        }
    }

    /// <summary>y[r, c] = labels[r] == c, over rows * classes outputs.</summary>
    internal static void OneHot(ArrayView<int> labels, ArrayView<float> y, int classes, long count)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
        {
            long r = i / classes;
            int c = (int)(i - r * classes);
            y[i] = labels[r] == c ? 1f : 0f;
        }
    }
}
