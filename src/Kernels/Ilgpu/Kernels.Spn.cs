using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>Extents of one sum-product network layer launch (packed so the kernels keep few parameters).</summary>
internal struct SpnDims
{
    public int Batch, Vars, Components, Categories, Regions, Entries;
    public int ARegions, K1, BRegions, K2, Side, ChildRegions;
    public int KIn, KOut, Max;

    /// <summary>1 when a fused product and sum stores the products it computes.</summary>
    public int Store;
}

// Sum-product network layers (issue 5): one thread per output element (grid-stride), each a short gather plus
// reduction; every parameter gradient is owned by one thread that loops over the batch in order (deterministic).
internal static partial class IlgpuKernels
{
    private const float SpnHalfLog2Pi = 0.918938533204672742f;

    /// <summary>y[b, r, i] = Σ_e logTable[e, i, x[b, var[e]]] over region r's present values.</summary>
    internal static void SpnLeafCategorical(ArrayView<float> x, ArrayView<float> table, ArrayView<int> regionStart, ArrayView<int> entryVar,
        ArrayView<float> y, SpnDims d)
    {
        long total = (long)d.Batch * d.Regions * d.Components;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int i = (int)(t % d.Components);
            long q = t / d.Components;
            int r = (int)(q % d.Regions);
            long n = q / d.Regions;
            float s = 0f;
            for (int e = regionStart[r]; e < regionStart[r + 1]; e++)
            {
                float v = x[n * d.Vars + entryVar[e]];
                if (float.IsNaN(v)) continue;
                s += table[((long)e * d.Components + i) * d.Categories + (int)v];
            }
            y[t] = s;
        }
    }

    /// <summary>dTable[e, i, c] = Σ_b dy[b, r(e), i] · [x[b, var[e]] == c], one thread per table entry.</summary>
    internal static void SpnLeafCategoricalBackward(ArrayView<float> x, ArrayView<float> dy, ArrayView<int> entryRegion, ArrayView<int> entryVar,
        ArrayView<float> dTable, SpnDims d)
    {
        long total = (long)d.Entries * d.Components * d.Categories;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int c = (int)(t % d.Categories);
            long q = t / d.Categories;
            int i = (int)(q % d.Components);
            int e = (int)(q / d.Components);
            int v = entryVar[e];
            int r = entryRegion[e];
            float s = 0f;
            for (long n = 0; n < d.Batch; n++)
            {
                float xv = x[n * d.Vars + v];
                if (!float.IsNaN(xv) && (int)xv == c) s += dy[(n * d.Regions + r) * d.Components + i];
            }
            dTable[t] = s;
        }
    }

    /// <summary>Gaussian leaves: y[b, r, i] = Σ_e -½ z² - logStd - ½ ln 2π over region r's present values.</summary>
    internal static void SpnLeafGaussian(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> logStd, ArrayView<int> regionStart,
        ArrayView<int> entryVar, ArrayView<float> y, SpnDims d)
    {
        long total = (long)d.Batch * d.Regions * d.Components;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int i = (int)(t % d.Components);
            long q = t / d.Components;
            int r = (int)(q % d.Regions);
            long n = q / d.Regions;
            float s = 0f;
            for (int e = regionStart[r]; e < regionStart[r + 1]; e++)
            {
                float v = x[n * d.Vars + entryVar[e]];
                if (float.IsNaN(v)) continue;
                long o = (long)e * d.Components + i;
                float z = (v - mean[o]) * MathF.Exp(-logStd[o]);
                s += -0.5f * z * z - logStd[o] - SpnHalfLog2Pi;
            }
            y[t] = s;
        }
    }

    /// <summary>Gaussian leaf gradients for mean and log-std, one thread per (entry, component).</summary>
    internal static void SpnLeafGaussianBackward(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> logStd, ArrayView<float> dy,
        ArrayView<int> entryRegion, ArrayView<int> entryVar, ArrayView<float> dMean, ArrayView<float> dLogStd, SpnDims d)
    {
        long total = (long)d.Entries * d.Components;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int i = (int)(t % d.Components);
            int e = (int)(t / d.Components);
            int v = entryVar[e];
            int r = entryRegion[e];
            float mu = mean[t], inv = MathF.Exp(-logStd[t]);
            float sm = 0f, ss = 0f;
            for (long n = 0; n < d.Batch; n++)
            {
                float xv = x[n * d.Vars + v];
                if (float.IsNaN(xv)) continue;
                float g = dy[(n * d.Regions + r) * d.Components + i];
                float z = (xv - mu) * inv;
                sm += g * z * inv;
                ss += g * (z * z - 1f);
            }
            dMean[t] = sm;
            dLogStd[t] = ss;
        }
    }

    /// <summary>y[n, r, i·k2 + j] = a[n, left[r], i] + b[n, right[r], j].</summary>
    internal static void SpnProduct(ArrayView<float> a, ArrayView<float> b, ArrayView<int> left, ArrayView<int> right, ArrayView<float> y, SpnDims d)
    {
        long kk = (long)d.K1 * d.K2;
        long total = (long)d.Batch * d.Regions * kk;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            long w = t % kk;
            long q = t / kk;
            int r = (int)(q % d.Regions);
            long n = q / d.Regions;
            int i = (int)(w / d.K2), j = (int)(w % d.K2);
            y[t] = a[(n * d.ARegions + left[r]) * d.K1 + i] + b[(n * d.BRegions + right[r]) * d.K2 + j];
        }
    }

    /// <summary>One side of the product backward: dChild[n, c, u] sums dy over c's parents and the other side's index.</summary>
    internal static void SpnProductBackward(ArrayView<float> dy, ArrayView<int> parentStart, ArrayView<int> parents, ArrayView<float> dChild, SpnDims d)
    {
        int kc = d.Side == 0 ? d.K1 : d.K2;
        long total = (long)d.Batch * d.ChildRegions * kc;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int u = (int)(t % kc);
            long q = t / kc;
            dChild[t] = ProductBackwardSum(dy, parentStart, parents, q / d.ChildRegions, (int)(q % d.ChildRegions), u, d.Side != 0, d);
        }
    }

    /// <summary>
    /// Both sides of the product backward for one input (K1 = K2): the left side's sum plus the right side's, each
    /// summed as the one-side kernel sums it.
    /// </summary>
    internal static void SpnProductBackwardBoth(ArrayView<float> dy, ArrayView<int> leftStart, ArrayView<int> leftParents,
        ArrayView<int> rightStart, ArrayView<int> rightParents, ArrayView<float> dChild, SpnDims d)
    {
        long total = (long)d.Batch * d.ChildRegions * d.K1;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int u = (int)(t % d.K1);
            long q = t / d.K1;
            long n = q / d.ChildRegions;
            int c = (int)(q % d.ChildRegions);
            float left = ProductBackwardSum(dy, leftStart, leftParents, n, c, u, false, d);
            float right = ProductBackwardSum(dy, rightStart, rightParents, n, c, u, true, d);
            dChild[t] = left + right;
        }
    }

    /// <summary>Σ over child c's parents of dy[n, parent] summed over the other side's index, at index u of this side.</summary>
    private static float ProductBackwardSum(ArrayView<float> dy, ArrayView<int> parentStart, ArrayView<int> parents, long n, int c, int u,
        bool right, SpnDims d)
    {
        long kk = (long)d.K1 * d.K2;
        float s = 0f;
        for (int p = parentStart[c]; p < parentStart[c + 1]; p++)
        {
            long g = (n * d.Regions + parents[p]) * kk;
            if (!right)
                for (int j = 0; j < d.K2; j++) s += dy[g + (long)u * d.K2 + j];
            else
                for (int i = 0; i < d.K1; i++) s += dy[g + (long)i * d.K2 + u];
        }
        return s;
    }

    /// <summary>y[n, r, o] = log Σ_k exp(x[n, r, k] + logW[r, o, k]) (max subtracted), or the max when d.Max is 1.</summary>
    internal static void SpnSum(ArrayView<float> x, ArrayView<float> logW, ArrayView<float> y, SpnDims d)
    {
        long total = (long)d.Batch * d.Regions * d.KOut;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int o = (int)(t % d.KOut);
            long q = t / d.KOut;
            int r = (int)(q % d.Regions);
            y[t] = SumOutput(new StoredSumInputs { X = x, Base = q * d.KIn }, logW, ((long)r * d.KOut + o) * d.KIn, d);
        }
    }

    /// <summary>Where a sum output reads its inputs x[k], k &lt; KIn.</summary>
    private interface ISumInputs
    {
        /// <summary>Input k.</summary>
        float Input(int k);
    }

    /// <summary>Inputs stored in a view from Base on.</summary>
    private struct StoredSumInputs : ISumInputs
    {
        public ArrayView<float> X;
        public long Base;

        public readonly float Input(int k) => X[Base + k];
    }

    /// <summary>Inputs computed from the product layer's children (<see cref="ProductOfSumInput"/>).</summary>
    private struct ProductSumInputs : ISumInputs
    {
        public ArrayView<float> A, B;
        public ArrayView<int> Left, Right;
        public long N;
        public int R;
        public SpnDims D;

        public readonly float Input(int k) => ProductOfSumInput(A, B, Left, Right, N, R, k, D);
    }

    /// <summary>
    /// One sum output: log Σ_k exp(x[k] + logW[wb + k]) with the maximum subtracted first, or the maximum when d.Max
    /// is 1 or it is -∞ or NaN.
    /// </summary>
    private static float SumOutput<TInputs>(TInputs x, ArrayView<float> logW, long wb, SpnDims d) where TInputs : struct, ISumInputs
    {
        float m = float.NegativeInfinity;
        for (int k = 0; k < d.KIn; k++)
        {
            float v = x.Input(k) + logW[wb + k];
            if (v > m || float.IsNaN(v)) m = v;
        }
        if (d.Max != 0 || float.IsNegativeInfinity(m) || float.IsNaN(m)) return m;
        float s = 0f;
        for (int k = 0; k < d.KIn; k++) s += MathF.Exp(x.Input(k) + logW[wb + k] - m);
        return m + MathF.Log(s);
    }

    /// <summary>
    /// The product layer and the sum layer that reads it, one thread per sum output: as <see cref="SpnSum"/>, with each
    /// input x[n, r, k] computed where it is read as <see cref="SpnProduct"/> computes it (the same single rounded
    /// addition, so the same bits). With d.Store, the thread of output o also stores the products k with k mod KOut = o.
    /// </summary>
    internal static void SpnProductSum(ArrayView<float> a, ArrayView<float> b, ArrayView<int> left, ArrayView<int> right, ArrayView<float> logW,
        ArrayView<float> product, ArrayView<float> y, SpnDims d)
    {
        long total = (long)d.Batch * d.Regions * d.KOut;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            int o = (int)(t % d.KOut);
            long q = t / d.KOut;
            int r = (int)(q % d.Regions);
            long n = q / d.Regions;
            var inputs = new ProductSumInputs { A = a, B = b, Left = left, Right = right, N = n, R = r, D = d };
            if (d.Store != 0)
                for (int k = o; k < d.KIn; k += d.KOut) product[q * d.KIn + k] = inputs.Input(k);
            y[t] = SumOutput(inputs, logW, ((long)r * d.KOut + o) * d.KIn, d);
        }
    }

    /// <summary>Input k of sum region r for sample n: the product of layer region r·P + k / (K1·K2) at k mod (K1·K2).</summary>
    private static float ProductOfSumInput(ArrayView<float> a, ArrayView<float> b, ArrayView<int> left, ArrayView<int> right, long n, int r, int k, SpnDims d)
    {
        int kk = d.K1 * d.K2;
        int region = r * (d.KIn / kk) + k / kk, w = k % kk;
        return a[(n * d.ARegions + left[region]) * d.K1 + w / d.K2] + b[(n * d.BRegions + right[region]) * d.K2 + w % d.K2];
    }

    /// <summary>
    /// Both gradients of the sum layer in one launch, one thread per element of dx then of dLogW (grid-stride over
    /// both): dx[n, r, k] = Σ_o dy[n, r, o] · exp(x + logW - y) and dLogW[r, o, k] = Σ_n dy[n, r, o] · exp(x + logW - y),
    /// each weight's sum over the batch in order.
    /// </summary>
    internal static void SpnSumBackward(ArrayView<float> x, ArrayView<float> logW, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx,
        ArrayView<float> dLogW, SpnDims d)
    {
        long nx = (long)d.Batch * d.Regions * d.KIn, total = nx + (long)d.Regions * d.KOut * d.KIn;
        for (long t = GlobalStart; t < total; t += GlobalStride)
        {
            if (t < nx) dx[t] = SumInputGradient(x, logW, y, dy, t, d);
            else dLogW[t - nx] = SumWeightGradient(x, logW, y, dy, t - nx, d);
        }
    }

    /// <summary>dx[t] for input element t = (n, r, k): Σ_o dy[n, r, o] · exp(x + logW - y).</summary>
    private static float SumInputGradient(ArrayView<float> x, ArrayView<float> logW, ArrayView<float> y, ArrayView<float> dy, long t, SpnDims d)
    {
        int k = (int)(t % d.KIn);
        long q = t / d.KIn;
        int r = (int)(q % d.Regions);
        float xv = x[t];
        float s = 0f;
        for (int o = 0; o < d.KOut; o++)
        {
            float yo = y[q * d.KOut + o];
            float g = dy[q * d.KOut + o];
            if (g == 0f || float.IsNegativeInfinity(yo)) continue;
            s += g * MathF.Exp(xv + logW[((long)r * d.KOut + o) * d.KIn + k] - yo);
        }
        return s;
    }

    /// <summary>dLogW[t] for weight t = (r, o, k): Σ_n dy[n, r, o] · exp(x + logW - y), over the batch in order.</summary>
    private static float SumWeightGradient(ArrayView<float> x, ArrayView<float> logW, ArrayView<float> y, ArrayView<float> dy, long t, SpnDims d)
    {
        int k = (int)(t % d.KIn);
        long q = t / d.KIn;
        int o = (int)(q % d.KOut);
        int r = (int)(q / d.KOut);
        float w = logW[t];
        float s = 0f;
        for (long n = 0; n < d.Batch; n++)
        {
            long yi = (n * d.Regions + r) * d.KOut + o;
            float yo = y[yi];
            float g = dy[yi];
            if (g == 0f || float.IsNegativeInfinity(yo)) continue;
            s += g * MathF.Exp(x[(n * d.Regions + r) * d.KIn + k] + w - yo);
        }
        return s;
    }
}
