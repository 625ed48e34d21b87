using ILGPU;

namespace Engine.Kernels.Ilgpu;

// Kernels of the multi-gradient optimizers (SAM, finite-difference and double-backprop gradient regularization).
internal static partial class IlgpuKernels
{
    /// <summary>backup[i] = p[i]; p[i] += t · g[i] with t = scale · p[i]² (square != 0) or scale.</summary>
    internal static void Perturb(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> backup, float scale, int square)
    {
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float p = param[i];
            backup[i] = p;
            float t = square != 0 ? scale * p * p : scale;
            param[i] = KernelMath.Fma(t, grad[i], p);
        }
    }

    /// <summary>g[i] = a · g[i] + b · g2[i].</summary>
    internal static void CombineGradients(ArrayView<float> grad, ArrayView<float> grad2, float a, float b)
    {
        for (long i = GlobalStart; i < grad.Length; i += GlobalStride) grad[i] = KernelMath.Fma(b, grad2[i], a * grad[i]);
    }

    /// <summary>
    /// Partial sums of squares: group q folds Σ (w[i]·x[i])² (or Σ x[i]² when weighted == 0) over its grid-stride
    /// share of [0, n) with Kahan-compensated float per thread, combines its threads with a shared-memory tree and
    /// writes partials[offset + q]. Group size must be a power of two.
    /// </summary>
    internal static void SumOfSquaresGroup(ArrayView<float> x, ArrayView<float> w, ArrayView<float> partials, long n, int weighted, int offset)
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        float sum = 0f, comp = 0f;
        for (long i = GlobalStart; i < n; i += GlobalStride)
        {
            float v = weighted != 0 ? x[i] * w[i] : x[i];
            float t = v * v - comp;
            float s = sum + t;
            comp = (s - sum) - t;
            sum = s;
        }
        shared[tid] = sum;
        Group.Barrier();
        for (int s = groupSize / 2; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] += shared[tid + s];
            Group.Barrier();
        }
        if (tid == 0) partials[offset + Grid.IdxX] = shared[0];
    }
}
