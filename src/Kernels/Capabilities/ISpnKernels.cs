namespace Engine.Kernels;

/// <summary>
/// Which variables each leaf region of a sum-product network reads, as device index lists: region r owns the entries
/// e in [RegionStart[r], RegionStart[r + 1]) (a CSR list, Regions + 1 long), entry e reads variable
/// EntryVariable[e] and belongs to region EntryRegion[e] (both Entries long). Entry e owns row e of the leaf
/// parameter tables. <see cref="Entries"/> equals RegionStart[Regions]: kernels take the count from here, so no call
/// reads the list back to the host.
/// </summary>
/// <param name="RegionStart">CSR starts of the regions' entries.</param>
/// <param name="EntryVariable">Variable read by each entry.</param>
/// <param name="EntryRegion">Region owning each entry.</param>
/// <param name="Variables">Columns of the data x.</param>
/// <param name="Regions">Number of leaf regions.</param>
/// <param name="Entries">Number of (region, variable) entries.</param>
public readonly record struct SpnLeafMap(DeviceBuffer<int> RegionStart, DeviceBuffer<int> EntryVariable, DeviceBuffer<int> EntryRegion,
    int Variables, int Regions, int Entries);

/// <summary>The two parameter tables of Gaussian leaves (or their gradients), both [entries, components].</summary>
/// <param name="Mean">Means.</param>
/// <param name="LogStd">Natural logarithms of the standard deviations.</param>
public readonly record struct SpnGaussianLeaves(DeviceBuffer<float> Mean, DeviceBuffer<float> LogStd);

/// <summary>
/// One input side of a product layer: output region r reads region Child[r] of this input (Regions of the layer
/// long); the inverse lists say which output regions read each child: those of child c are
/// Parents[ParentStart[c] .. ParentStart[c + 1]) (ParentStart is ChildRegions + 1 long; Parents is the layer's Regions
/// long, since every output region reads exactly one child of each side).
/// </summary>
/// <param name="Child">Child region of each output region.</param>
/// <param name="ParentStart">CSR starts of the inverse lists.</param>
/// <param name="Parents">Output regions grouped by child.</param>
/// <param name="ChildRegions">Regions of this input.</param>
public readonly record struct SpnChildMap(DeviceBuffer<int> Child, DeviceBuffer<int> ParentStart, DeviceBuffer<int> Parents, int ChildRegions);

/// <summary>The partitions of a product layer: its two input sides and its number of output regions.</summary>
/// <param name="Left">The a (left) side.</param>
/// <param name="Right">The b (right) side.</param>
/// <param name="Regions">Output regions.</param>
public readonly record struct SpnProductMap(SpnChildMap Left, SpnChildMap Right, int Regions)
{
    /// <summary>The input on <paramref name="side"/> (Left or Right).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="side"/> is not Left or Right.</exception>
    public SpnChildMap Of(SpnSide side) => side switch
    {
        SpnSide.Left => Left,
        SpnSide.Right => Right,
        _ => throw new ArgumentOutOfRangeException(nameof(side), side, "SpnProductMap: side must be Left or Right."),
    };

    /// <summary>
    /// Checks that a backward call for <paramref name="side"/> can run: for <see cref="SpnSide.Both"/>, the two sides
    /// must be one input (<paramref name="k1"/> = <paramref name="k2"/>, equal child regions).
    /// </summary>
    /// <exception cref="ArgumentException">Both sides are asked for and they differ.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="side"/> is not a <see cref="SpnSide"/>.</exception>
    public void CheckBackwardSide(string op, SpnSide side, int k1, int k2)
    {
        if (side is not (SpnSide.Left or SpnSide.Right or SpnSide.Both))
            throw new ArgumentOutOfRangeException(nameof(side), side, $"{op}: side must be Left, Right or Both.");
        if (side == SpnSide.Both && (k1 != k2 || Left.ChildRegions != Right.ChildRegions))
            throw new ArgumentException(
                $"{op}: side Both needs one input on both sides: k1 = k2 and equal child regions, got k1 {k1}, k2 {k2}, " +
                $"{Left.ChildRegions} left and {Right.ChildRegions} right child regions.");
    }
}

/// <summary>Which input of a product layer a backward call differentiates.</summary>
public enum SpnSide
{
    /// <summary>The a (left) input, k1 densities per region.</summary>
    Left,
    /// <summary>The b (right) input, k2 densities per region.</summary>
    Right,
    /// <summary>
    /// Both inputs when they are one tensor (k1 = k2, the same child regions on each side): the Left result plus the
    /// Right result.
    /// </summary>
    Both,
}

/// <summary>Extents of a sum layer: x [Batch, Regions, KIn], log-weights [Regions, KOut, KIn], y [Batch, Regions, KOut].</summary>
/// <param name="Batch">Samples.</param>
/// <param name="Regions">Regions.</param>
/// <param name="KIn">Input densities per region.</param>
/// <param name="KOut">Output densities per region.</param>
public readonly record struct SpnSumSize(int Batch, int Regions, int KIn, int KOut);

/// <summary>
/// Sum-product network layers in log space (leaf, product and sum layers and their backward passes), a capability a
/// kernel set may implement (both built-in sets do). Without it, <see cref="KernelCapabilities.SpnKernels"/> hands out
/// a composite of core gathers, broadcast adds, GEMMs and max-shifted log-sum-exp reductions. Every method validates
/// its buffers on the host; the caller validates the index lists and data values.
/// </summary>
public interface ISpnKernels
{
    /// <summary>
    /// Categorical (and Bernoulli) leaf layer. x is [batch, variables] with integer category values stored as floats,
    /// NaN meaning missing; logTable is [entries, components, categories]. y[b, r, i] = Σ_e logTable[e, i,
    /// x[b, EntryVariable[e]]] over the region's entries whose value is present; a missing value contributes
    /// log 1 = 0 (exact marginalisation). y is [batch, regions, components].
    /// </summary>
    void SpnLeafCategorical(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> logTable, int components,
        int categories, [Writes] DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnLeafCategorical"/> with respect to the table (the op is linear in it):
    /// dTable[e, i, c] = Σ_b dy[b, EntryRegion[e], i] · [x[b, EntryVariable[e]] == c] (missing values add nothing).
    /// Overwrites dTable ([entries, components, categories]); deterministic (fixed summation order over b).
    /// </summary>
    void SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> dy, int components,
        int categories, [Writes] DeviceBuffer<float> dTable);

    /// <summary>
    /// Gaussian leaf layer: as <see cref="SpnLeafCategorical"/> with, per entry and component, mean Mean[e, i] and log
    /// standard deviation LogStd[e, i]: y[b, r, i] = Σ_e -½ z² - LogStd[e, i] - ½ ln 2π with
    /// z = (x[b, EntryVariable[e]] - Mean[e, i]) · exp(-LogStd[e, i]); NaN (missing) values contribute 0.
    /// </summary>
    void SpnLeafGaussian(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters, int components,
        [Writes] DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnLeafGaussian"/> for both tables (overwritten, [entries, components]):
    /// dMean[e, i] = Σ_b dy[b, r(e), i] · z · exp(-LogStd), dLogStd[e, i] = Σ_b dy[b, r(e), i] · (z² - 1), over
    /// present values.
    /// </summary>
    void SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters,
        int components, DeviceBuffer<float> dy, [Writes] in SpnGaussianLeaves gradients);

    /// <summary>
    /// Product layer: the outer sum of two children's log-densities. a is [batch, Left.ChildRegions, k1], b is
    /// [batch, Right.ChildRegions, k2]; y[n, r, i·k2 + j] = a[n, Left.Child[r], i] + b[n, Right.Child[r], j],
    /// y [batch, regions, k1·k2].
    /// </summary>
    void SpnProduct(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, int batch, in SpnProductMap map, [Writes] DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnProduct"/> for one side. Left (k1 entries):
    /// dChild[n, c, i] = Σ_{r ∈ parents(c)} Σ_j dy[n, r, i·k2 + j]; Right (k2 entries):
    /// dChild[n, c, j] = Σ_{r ∈ parents(c)} Σ_i dy[n, r, i·k2 + j], parents(c) from that side's inverse lists.
    /// Overwrites dChild ([batch, ChildRegions, k1 or k2]); a child no region uses gets 0. <see cref="SpnSide.Both"/>
    /// (a and b one tensor: k1 = k2 and Left.ChildRegions = Right.ChildRegions) writes the Left result plus the Right
    /// result, with the bits of the two one-side calls followed by a <see cref="BinaryOp.Add"/> of their outputs.
    /// </summary>
    void SpnProductBackward(DeviceBuffer<float> dy, int batch, in SpnProductMap map, int k1, int k2, SpnSide side, [Writes] DeviceBuffer<float> dChild);

    /// <summary>
    /// Sum layer, numerically stable: y[n, r, o] = log Σ_k exp(x[n, r, k] + logW[r, o, k]) with the maximum over k
    /// subtracted first (logW: already normalised log weights). With <paramref name="max"/>, y is the maximum instead
    /// (max-product, for MPE). When every term is -∞, y is -∞ (never NaN).
    /// </summary>
    void SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, in SpnSumSize size, bool max, [Writes] DeviceBuffer<float> y);

    /// <summary>
    /// Backward of <see cref="SpnSum"/> (log-sum-exp form) from its output y: with the posterior
    /// p[n, r, o, k] = exp(x + logW - y) (0 where y is -∞), dx[n, r, k] = Σ_o dy[n, r, o] · p and
    /// dLogW[r, o, k] = Σ_n dy[n, r, o] · p. Both outputs are overwritten; dLogW's sum over the batch is deterministic.
    /// </summary>
    void SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        in SpnSumSize size, [Writes] DeviceBuffer<float> dx, [Writes] DeviceBuffer<float> dLogW);
}
