using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>Constant scalars of one fused SGD step (the learning rate comes from a device scalar).</summary>
internal struct SgdHyperParams
{
    public float Momentum, Dampening, WeightDecay;
    /// <summary>1 when momentum is used (a velocity buffer is passed).</summary>
    public int UseMomentum;
    public int Nesterov;
    public int FirstStep;
}

/// <summary>Constant scalars of one fused Adam/AdamW step (learning rate and step count come from device scalars).</summary>
internal struct AdamHyperParams
{
    public float Beta1, Beta2, Eps, WeightDecay;
    public int Decoupled;
}

// Kernels of the fused optimizer steps and of the device scalars they read.
internal static partial class IlgpuKernels
{
    internal static void Sgd(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> velocity, ArrayView<float> lr, SgdHyperParams p)
    {
        float rate = lr[0];
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
            param[i] = w - rate * g;
        }
    }

    /// <summary>Adam with lr = lr[0] and t = step[0] + step[1] (already advanced by <see cref="AdvanceStep"/>).</summary>
    internal static void Adam(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v,
        ArrayView<float> lr, ArrayView<float> step, AdamHyperParams p)
    {
        float rate = lr[0];
        float t = step[0] + step[1];
        float bc1 = 1f - MathF.Pow(p.Beta1, t);
        float bc2 = 1f - MathF.Pow(p.Beta2, t);
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float w = param[i];
            float g = grad[i];
            if (p.Decoupled != 0) w *= 1f - rate * p.WeightDecay;
            else g += p.WeightDecay * w;
            float mi = p.Beta1 * m[i] + (1f - p.Beta1) * g;
            float vi = p.Beta2 * v[i] + (1f - p.Beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            param[i] = w - rate * (mi / bc1) / (MathF.Sqrt(vi / bc2) + p.Eps);
        }
    }

    /// <summary>Adds 1 to a step count held as a device scalar (hi, lo), in two-float arithmetic (exact up to 2^48). One thread.</summary>
    internal static void AdvanceStep(ArrayView<float> step)
    {
        if (GlobalStart != 0) return;
        float hi = step[0], lo = step[1];
        DoubleFloat.Add(ref hi, ref lo, 1f, 0f);
        step[0] = hi;
        step[1] = lo;
    }

    /// <summary>scale = radius / (sqrt(sum) + 1e-12) in double, rounded to float, from the scalar (hi, lo). One thread.</summary>
    internal static void PerturbationScale(ArrayView<float> sum, ArrayView<float> scale, float radius)
    {
        if (GlobalStart != 0) return;
        double s = (double)sum[0] + sum[1];
        scale[0] = (float)(radius / (Math.Sqrt(s) + 1e-12));
        scale[1] = 0f;
    }

    /// <summary><see cref="PerturbationScale"/> in two-float arithmetic for devices without fp64. One thread.</summary>
    internal static void PerturbationScaleDoubleFloat(ArrayView<float> sum, ArrayView<float> scale, float radius, float tinyHi, float tinyLo)
    {
        if (GlobalStart != 0) return;
        scale[0] = DoubleFloat.InverseNormScale(sum[0], sum[1], radius, tinyHi, tinyLo);
        scale[1] = 0f;
    }
}
