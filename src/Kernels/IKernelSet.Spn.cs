namespace Engine.Kernels;

// ---- Sum-product networks (issue 5): leaf, product and sum layers in log space, and their backward passes ----
public partial interface IKernelSet
{
    /// <summary>
    /// Categorical (and Bernoulli) leaf layer of a sum-product network, in log space. x is [batch, vars] with integer
    /// category values stored as floats, NaN meaning missing (the caller validates the values). The leaf regions are
    /// given as a CSR list of entries: region r owns entries e in [regionStart[r], regionStart[r+1]), entry e reads
    /// variable entryVar[e] and owns the log-probability table rows logTable[e, i, :] ([entries, components,
    /// categories]). y[b, r, i] = Σ_e logTable[e, i, x[b, entryVar[e]]] over the region's entries whose value is
    /// present; a missing value contributes log 1 = 0 (exact marginalisation).
    /// </summary>
    void SpnLeafCategorical(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> logTable, int components, int categories,
        DeviceBuffer<int> regionStart, DeviceBuffer<int> entryVar, int regions, DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnLeafCategorical"/> with respect to the table (the op is linear in it):
    /// dTable[e, i, c] = Σ_b dy[b, entryRegion[e], i] · [x[b, entryVar[e]] == c] (missing values add nothing).
    /// Overwrites dTable ([entries, components, categories]); deterministic (fixed summation order over b).
    /// </summary>
    void SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> dy, int components, int categories,
        DeviceBuffer<int> entryRegion, DeviceBuffer<int> entryVar, int entries, int regions, DeviceBuffer<float> dTable);

    /// <summary>
    /// Gaussian leaf layer: as <see cref="SpnLeafCategorical"/> with, per entry and component, mean mean[e, i] and
    /// log standard deviation logStd[e, i]: y[b, r, i] = Σ_e -½ z² - logStd[e, i] - ½ ln 2π with
    /// z = (x[b, entryVar[e]] - mean[e, i]) · exp(-logStd[e, i]); NaN (missing) values contribute 0.
    /// </summary>
    void SpnLeafGaussian(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> mean, DeviceBuffer<float> logStd, int components,
        DeviceBuffer<int> regionStart, DeviceBuffer<int> entryVar, int regions, DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnLeafGaussian"/> for both parameters (overwritten, [entries, components]):
    /// dMean[e, i] = Σ_b dy[b, r(e), i] · z · exp(-logStd), dLogStd[e, i] = Σ_b dy[b, r(e), i] · (z² - 1), over present values.
    /// </summary>
    void SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> mean, DeviceBuffer<float> logStd,
        DeviceBuffer<float> dy, int components, DeviceBuffer<int> entryRegion, DeviceBuffer<int> entryVar, int entries, int regions,
        DeviceBuffer<float> dMean, DeviceBuffer<float> dLogStd);

    /// <summary>
    /// Product layer: the outer sum of two children's log-densities. a is [batch, aRegions, k1], b is [batch, bRegions, k2];
    /// y[n, r, i·k2 + j] = a[n, left[r], i] + b[n, right[r], j], y [batch, regions, k1·k2].
    /// </summary>
    void SpnProduct(DeviceBuffer<float> a, int aRegions, int k1, DeviceBuffer<float> b, int bRegions, int k2,
        DeviceBuffer<int> left, DeviceBuffer<int> right, int batch, int regions, DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnProduct"/> for one side. With <paramref name="side"/> 0 (the a side, k1 entries):
    /// dChild[n, c, i] = Σ_{r ∈ parents(c)} Σ_j dy[n, r, i·k2 + j]; with side 1 (the b side, k2 entries):
    /// dChild[n, c, j] = Σ_{r ∈ parents(c)} Σ_i dy[n, r, i·k2 + j]. parents(c) is the CSR list
    /// parents[parentStart[c] .. parentStart[c+1]) (the regions whose left, or right, child is c). Overwrites dChild
    /// ([batch, childRegions, k1 or k2]); a child no region uses gets 0.
    /// </summary>
    void SpnProductBackward(DeviceBuffer<float> dy, int batch, int regions, int k1, int k2, int side,
        DeviceBuffer<int> parentStart, DeviceBuffer<int> parents, int childRegions, DeviceBuffer<float> dChild);

    /// <summary>
    /// Sum layer, numerically stable: y[n, r, o] = log Σ_k exp(x[n, r, k] + logW[r, o, k]) with the maximum over k
    /// subtracted first, x [batch, regions, kIn], logW [regions, kOut, kIn] (already normalised log weights), y
    /// [batch, regions, kOut]. With <paramref name="max"/>, y is the maximum instead (max-product, for MPE). When every
    /// term is -∞, y is -∞ (never NaN).
    /// </summary>
    void SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, int batch, int regions, int kIn, int kOut, bool max, DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnSum"/> (log-sum-exp form) from its output y: with the posterior
    /// p[n, r, o, k] = exp(x + logW - y) (0 where y is -∞), dx[n, r, k] = Σ_o dy[n, r, o] · p and
    /// dLogW[r, o, k] = Σ_n dy[n, r, o] · p. Both outputs are overwritten; dLogW's sum over the batch is deterministic.
    /// </summary>
    void SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        int batch, int regions, int kIn, int kOut, DeviceBuffer<float> dx, DeviceBuffer<float> dLogW);
}
