using ILGPU;

namespace Engine.Kernels.Ilgpu;

// Kernels of the multi-gradient optimizers (SAM, finite-difference and double-backprop gradient regularization).
internal static partial class IlgpuKernels
{
    /// <summary>backup[i] = p[i]; p[i] += t · g[i] with t = s · p[i]² (square != 0) or s, s = scale[0] (a device scalar's hi).</summary>
    internal static void Perturb(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> backup, ArrayView<float> scale, int square)
    {
        float s = scale[0];
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float p = param[i];
            backup[i] = p;
            float t = square != 0 ? s * p * p : s;
            param[i] = KernelMath.Fma(t, grad[i], p);
        }
    }

    /// <summary>g[i] = a · g[i] + b · g2[i].</summary>
    internal static void CombineGradients(ArrayView<float> grad, ArrayView<float> grad2, float a, float b)
    {
        for (long i = GlobalStart; i < grad.Length; i += GlobalStride) grad[i] = KernelMath.Fma(b, grad2[i], a * grad[i]);
    }
}
