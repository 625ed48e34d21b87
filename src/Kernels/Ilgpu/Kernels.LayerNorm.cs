using ILGPU;

namespace Engine.Kernels.Ilgpu;

internal static partial class IlgpuKernels
{
    /// <summary>Adds v to a Kahan-compensated float sum (sum, comp).</summary>
    private static void KahanAdd(ref float sum, ref float comp, float v)
    {
        float t = v - comp;
        float s = sum + t;
        comp = (s - sum) - t;
        sum = s;
    }

    /// <summary>
    /// Layer normalisation of [rows, cols], one thread per row (grid-stride): two compensated passes (mean, then the
    /// squared deviations), then y = (x - mean) · rstd · gamma + beta. Needs cols ≥ 1.
    /// </summary>
    internal static void LayerNorm(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        ArrayView<float> mean, ArrayView<float> rstd, int rows, int cols, float eps)
    {
        for (long r = GlobalStart; r < rows; r += GlobalStride)
        {
            long b = r * cols;
            float sum = 0f, comp = 0f;
            for (int j = 0; j < cols; j++) KahanAdd(ref sum, ref comp, x[b + j]);
            float m = sum / cols;
            sum = 0f;
            comp = 0f;
            for (int j = 0; j < cols; j++)
            {
                float d = x[b + j] - m;
                KahanAdd(ref sum, ref comp, d * d);
            }
            float rs = 1f / MathF.Sqrt(sum / cols + eps);
            mean[r] = m;
            rstd[r] = rs;
            for (int j = 0; j < cols; j++) y[b + j] = (x[b + j] - m) * rs * gamma[j] + beta[j];
        }
    }

    /// <summary>Sum of every thread's <paramref name="v"/> in the group by a shared-memory tree; all threads get it.</summary>
    private static float GroupSum(ArrayView<float> shared, float v)
    {
        int tid = Group.IdxX;
        shared[tid] = v;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] += shared[tid + s];
            Group.Barrier();
        }
        float total = shared[0];
        Group.Barrier();
        return total;
    }

    /// <summary>
    /// Layer normalisation, one group per row (grid-stride over rows) with shared-memory trees for the two sums: for
    /// few long rows. Group size must be a power of two.
    /// </summary>
    internal static void LayerNormGroup(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        ArrayView<float> mean, ArrayView<float> rstd, int rows, int cols, float eps)
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long b = r * cols;
            float sum = 0f, comp = 0f;
            for (int j = tid; j < cols; j += groupSize) KahanAdd(ref sum, ref comp, x[b + j]);
            float m = GroupSum(shared, sum) / cols;
            sum = 0f;
            comp = 0f;
            for (int j = tid; j < cols; j += groupSize)
            {
                float d = x[b + j] - m;
                KahanAdd(ref sum, ref comp, d * d);
            }
            float rs = 1f / MathF.Sqrt(GroupSum(shared, sum) / cols + eps);
            if (tid == 0)
            {
                mean[r] = m;
                rstd[r] = rs;
            }
            for (int j = tid; j < cols; j += groupSize) y[b + j] = (x[b + j] - m) * rs * gamma[j] + beta[j];
        }
    }

    /// <summary>
    /// LayerNorm backward for dx, one thread per row (grid-stride): the row sums Σ dxhat and Σ dxhat · xhat
    /// (compensated), then dx = rstd · (dxhat - Σdxhat / cols - xhat · Σ(dxhat · xhat) / cols).
    /// </summary>
    internal static void LayerNormBackwardRows(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, ArrayView<float> dx, int rows, int cols)
    {
        for (long r = GlobalStart; r < rows; r += GlobalStride)
        {
            long b = r * cols;
            float m = mean[r], rs = rstd[r];
            float s1 = 0f, c1 = 0f, s2 = 0f, c2 = 0f;
            for (int j = 0; j < cols; j++)
            {
                float g = dy[b + j] * gamma[j];
                KahanAdd(ref s1, ref c1, g);
                KahanAdd(ref s2, ref c2, g * ((x[b + j] - m) * rs));
            }
            float a1 = s1 / cols, a2 = s2 / cols;
            for (int j = 0; j < cols; j++)
            {
                float h = (x[b + j] - m) * rs;
                dx[b + j] = rs * (dy[b + j] * gamma[j] - a1 - h * a2);
            }
        }
    }

    /// <summary>LayerNorm backward for dx, one group per row with shared-memory trees: for few long rows.</summary>
    internal static void LayerNormBackwardRowsGroup(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, ArrayView<float> dx, int rows, int cols)
    {
        var shared = SharedMemory.Allocate<float>(MaxTreeGroup);
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        for (long r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long b = r * cols;
            float m = mean[r], rs = rstd[r];
            float s1 = 0f, c1 = 0f, s2 = 0f, c2 = 0f;
            for (int j = tid; j < cols; j += groupSize)
            {
                float g = dy[b + j] * gamma[j];
                KahanAdd(ref s1, ref c1, g);
                KahanAdd(ref s2, ref c2, g * ((x[b + j] - m) * rs));
            }
            float a1 = GroupSum(shared, s1) / cols;
            float a2 = GroupSum(shared, s2) / cols;
            for (int j = tid; j < cols; j += groupSize)
            {
                float h = (x[b + j] - m) * rs;
                dx[b + j] = rs * (dy[b + j] * gamma[j] - a1 - h * a2);
            }
        }
    }

    /// <summary>
    /// LayerNorm backward for the parameters, one thread per column (grid-stride) looping over the rows in order:
    /// dgamma[j] = Σ_r dy · xhat, dbeta[j] = Σ_r dy (compensated; deterministic).
    /// </summary>
    internal static void LayerNormBackwardParams(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dgamma, ArrayView<float> dbeta, int rows, int cols)
    {
        for (long j = GlobalStart; j < cols; j += GlobalStride)
        {
            float sg = 0f, cg = 0f, sb = 0f, cb = 0f;
            for (long r = 0; r < rows; r++)
            {
                long k = r * cols + j;
                float d = dy[k];
                KahanAdd(ref sg, ref cg, d * ((x[k] - mean[r]) * rstd[r]));
                KahanAdd(ref sb, ref cb, d);
            }
            dgamma[j] = sg;
            dbeta[j] = sb;
        }
    }
}
