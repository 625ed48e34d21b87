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

/// <summary>
/// Up to <see cref="Capacity"/> segments of a multi-tensor launch: per segment up to five views (A to E, their roles
/// set by the kernel) and its end in the joint index range, the segments laid end to end from 0 in order.
/// </summary>
internal struct SegmentTable
{
    /// <summary>Segments one table holds.</summary>
    public const int Capacity = 8;

    public Octet<ArrayView<float>> A, B, C, D, E;
    public Octet<long> End;
    public int Count;

    /// <summary>Where segment <paramref name="k"/> starts in the joint index range.</summary>
    public readonly long StartOf(int k) => k == 0 ? 0 : End[k - 1];

    /// <summary>The segment holding joint index <paramref name="i"/> (empty segments are skipped).</summary>
    public readonly int SegmentOf(long i)
    {
        int k = 0;
        while (k < Count - 1 && i >= End[k]) k++;
        return k;
    }
}

// Kernels of the fused optimizer steps and of the device scalars they read.
internal static partial class IlgpuKernels
{
    internal static void Sgd(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> velocity, ArrayView<float> lr, SgdHyperParams p)
    {
        float rate = lr[0];
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
            SgdElement(param, grad, velocity, i, rate, p);
    }

    /// <summary>One element of an SGD step: the arithmetic <see cref="Sgd"/> and <see cref="SgdSegments"/> share.</summary>
    private static void SgdElement(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> velocity, long i, float rate, SgdHyperParams p)
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

    /// <summary>
    /// <see cref="Sgd"/> over the segments of <paramref name="table"/> as one index range of
    /// <paramref name="total"/> elements (velocity views are read only with momentum).
    /// </summary>
    internal static void SgdSegments(SegmentTable table, ArrayView<float> lr, SgdHyperParams p, long total)
    {
        float rate = lr[0];
        for (long i = GlobalStart; i < total; i += GlobalStride)
        {
            int k = table.SegmentOf(i);
            SgdElement(table.A[k], table.B[k], table.C[k], i - table.StartOf(k), rate, p);
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
            AdamElement(param, grad, m, v, i, rate, bc1, bc2, p);
    }

    /// <summary>One element of an Adam step: the arithmetic <see cref="Adam"/> and <see cref="AdamSegments"/> share.</summary>
    private static void AdamElement(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, long i,
        float rate, float bc1, float bc2, AdamHyperParams p)
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

    /// <summary>
    /// <see cref="Adam"/> over the segments of <paramref name="table"/> (parameters, gradients, first and second
    /// moments, step counts) as one index range of <paramref name="total"/> elements. Each segment's t is its step
    /// count plus one, formed as <see cref="AdvanceStep"/> forms it; the counts themselves are advanced afterwards by
    /// <see cref="AdvanceSteps"/>, since threads of this launch still read them.
    /// </summary>
    internal static void AdamSegments(SegmentTable table, ArrayView<float> lr, AdamHyperParams p, long total)
    {
        float rate = lr[0];
        for (long i = GlobalStart; i < total; i += GlobalStride)
        {
            int k = table.SegmentOf(i);
            var step = table.E[k];
            float hi = step[0], lo = step[1];
            DoubleFloat.Add(ref hi, ref lo, 1f, 0f);
            float t = hi + lo;
            float bc1 = 1f - MathF.Pow(p.Beta1, t);
            float bc2 = 1f - MathF.Pow(p.Beta2, t);
            AdamElement(table.A[k], table.B[k], table.C[k], table.D[k], i - table.StartOf(k), rate, bc1, bc2, p);
        }
    }

    /// <summary>Adds 1 to the step count (view E) of every segment of <paramref name="table"/>, one thread per segment.</summary>
    internal static void AdvanceSteps(SegmentTable table)
    {
        for (long k = GlobalStart; k < table.Count; k += GlobalStride)
        {
            var step = table.E[(int)k];
            float hi = step[0], lo = step[1];
            DoubleFloat.Add(ref hi, ref lo, 1f, 0f);
            step[0] = hi;
            step[1] = lo;
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
