using System.Runtime.CompilerServices;
using Engine.Kernels;

namespace Engine.Autodiff;

// Sum-product network layers, all in log space. Forward and plain backward passes are fused kernels (ISpnKernels, or
// their composite fallback). When the backward pass is itself recorded (createGraph), the gradients are built so they
// can be differentiated again: the categorical leaf is linear in its table, so its backward is its adjoint kernel,
// recorded with the forward kernel as its own backward; the other layers rebuild their gradient from differentiable
// ops.
public static partial class Ops
{
    private static void CheckSpnData(string op, Tensor x, SpnLeafLayout layout)
    {
        x.CheckAlive(op);
        if (x.Rank != 2 || x.shape[1] != layout.Variables)
            throw new ArgumentException($"{op}: data {x.Describe()} must be [batch, {layout.Variables}] (one column per variable of the leaf layout).");
    }

    // Data tensors whose values were checked for the categorical leaves (keyed by their buffer, so reshape views
    // share the mark), with the largest category seen: later forwards on the same data need no host copy. Writing
    // into a tensor (CopyFrom) drops its mark.
    private static readonly ConditionalWeakTable<DeviceBuffer<float>, StrongBox<int>> CheckedSpnData = new();

    /// <summary>
    /// Checks, on the host and before any kernel, that x [batch, vars] is data for categorical leaves of
    /// <paramref name="categories"/> categories: every value NaN (missing) or an integer in [0, categories). The
    /// check copies x to the host once; later calls (and the leaf layer) on the same tensor only look up the result,
    /// until the tensor is written with CopyFrom.
    /// </summary>
    /// <exception cref="ArgumentException">The shape disagrees with the layout, or a value is outside the support.</exception>
    public static void CheckSpnCategoricalData(Tensor x, SpnLeafLayout layout, int categories, string op = "spn_leaf_categorical")
    {
        ArgumentNullException.ThrowIfNull(layout);
        CheckSpnData(op, x, layout);
        if (CheckedSpnData.TryGetValue(x.Buffer, out var seen) && seen.Value < categories) return;
        var data = x.ToArray();
        int max = -1;
        for (int k = 0; k < data.Length; k++)
        {
            float v = data[k];
            if (float.IsNaN(v)) continue;
            if (v < 0 || v >= categories || v != MathF.Floor(v))
                throw new ArgumentException(
                    $"{op}: value {v} at row {k / layout.Variables}, variable {k % layout.Variables} is outside the leaves' support {{0, ..., {categories - 1}}} (use NaN for a missing value).");
            max = Math.Max(max, (int)v);
        }
        CheckedSpnData.AddOrUpdate(x.Buffer, new StrongBox<int>(max));
    }

    private static readonly ConditionalWeakTable<DeviceBuffer<float>, object> CheckedGaussianData = new();

    /// <summary>
    /// Checks, on the host and before any kernel, that x [batch, vars] is data for Gaussian leaves: no value is
    /// infinite (NaN = missing). Copies x to the host once; later calls on the same tensor only look up the result.
    /// </summary>
    /// <exception cref="ArgumentException">The shape disagrees with the layout, or a value is infinite.</exception>
    public static void CheckSpnGaussianData(Tensor x, SpnLeafLayout layout, string op = "spn_leaf_gaussian")
    {
        ArgumentNullException.ThrowIfNull(layout);
        CheckSpnData(op, x, layout);
        if (CheckedGaussianData.TryGetValue(x.Buffer, out _)) return;
        var data = x.ToArray();
        for (int k = 0; k < data.Length; k++)
            if (float.IsInfinity(data[k]))
                throw new ArgumentException($"{op}: value {data[k]} at row {k / layout.Variables}, variable {k % layout.Variables} is not finite (use NaN for a missing value).");
        CheckedGaussianData.AddOrUpdate(x.Buffer, CheckedGaussianData);
    }

    /// <summary>Records that x holds no infinite value, as checked on the host where the data entered (see <see cref="MarkSpnCategoricalDataChecked"/>).</summary>
    public static void MarkSpnGaussianDataChecked(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        x.CheckAlive("MarkSpnGaussianDataChecked");
        CheckedGaussianData.AddOrUpdate(x.Buffer, CheckedGaussianData);
    }

    /// <summary>
    /// Records that x holds only NaN or integers in [0, <paramref name="maxValue"/>], as checked on the host where the
    /// data entered (a data set validated when it was built, an indicator built by the caller), so the leaf layer
    /// need not copy x back to check it. The caller vouches for the values: the kernels index the leaf table with them.
    /// </summary>
    public static void MarkSpnCategoricalDataChecked(Tensor x, int maxValue)
    {
        ArgumentNullException.ThrowIfNull(x);
        x.CheckAlive("MarkSpnCategoricalDataChecked");
        CheckedSpnData.AddOrUpdate(x.Buffer, new StrongBox<int>(maxValue));
    }

    /// <summary>Drops what was recorded about x's values (it is being overwritten).</summary>
    internal static void ForgetDataChecks(Tensor x)
    {
        CheckedSpnData.Remove(x.Buffer);
        CheckedGaussianData.Remove(x.Buffer);
    }

    /// <summary>
    /// Categorical leaf layer: x [batch, vars] holds category indices as floats (NaN = missing), logTable
    /// [entries, components, categories] the leaves' log-probabilities (normalise them, e.g. with
    /// <see cref="LogSoftmax"/>, before the call). Returns [batch, regions, components]:
    /// y[b, r, i] = Σ over region r's present variables of logTable[e, i, x[b, var(e)]]. Missing values contribute 0,
    /// so the result is the exact marginal. x is data: no gradient flows to it.
    /// </summary>
    /// <remarks>The values are checked by <see cref="CheckSpnCategoricalData"/>: once per data tensor, not per call.</remarks>
    /// <exception cref="ArgumentException">Shapes disagree with the layout, or a value is not NaN or an integer in [0, categories).</exception>
    public static Tensor SpnLeafCategorical(Tensor x, Tensor logTable, SpnLeafLayout layout)
    {
        const string op = "spn_leaf_categorical";
        ArgumentNullException.ThrowIfNull(layout);
        CheckSpnData(op, x, layout);
        CheckSameDevice(op, x, logTable);
        if (logTable.Rank != 3 || logTable.shape[0] != layout.Entries)
            throw new ArgumentException($"{op}: table {logTable.Describe()} must be [{layout.Entries}, components, categories] (one row per leaf entry).");
        CheckSpnCategoricalData(x, layout, logTable.shape[2], op);
        return LeafCategoricalForward(x, logTable, layout);
    }

    private static Tensor LeafCategoricalForward(Tensor x, Tensor logTable, SpnLeafLayout layout)
    {
        int batch = x.shape[0], components = logTable.shape[1], categories = logTable.shape[2];
        var device = x.Device;
        var y = Tensor.Empty([batch, layout.Regions, components], device);
        x.K.SpnKernels().SpnLeafCategorical(x.Buffer, batch, layout.Map(device), logTable.Buffer, components, categories, y.Buffer);
        return y.Record("spn_leaf_categorical", [logTable], g => [LeafCategoricalAdjoint(x, g, layout, categories)]);
    }

    /// <summary>The adjoint of the (linear) categorical leaf layer: table gradient from a [batch, regions, components] gradient.</summary>
    private static Tensor LeafCategoricalAdjoint(Tensor x, Tensor g, SpnLeafLayout layout, int categories)
    {
        int batch = x.shape[0], components = g.shape[2];
        var device = x.Device;
        var d = Tensor.Empty([layout.Entries, components, categories], device);
        x.K.SpnKernels().SpnLeafCategoricalBackward(x.Buffer, batch, layout.Map(device), g.Buffer, components, categories, d.Buffer);
        return d.Record("spn_leaf_categorical_adjoint", [g], h => [LeafCategoricalForward(x, h, layout)]);
    }

    /// <summary>
    /// Gaussian leaf layer: x [batch, vars] (NaN = missing), mean and logStd [entries, components]. Returns
    /// [batch, regions, components] with y[b, r, i] = Σ over region r's present variables of log N(x; mean, exp(logStd)²).
    /// x is data: no gradient flows to it.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes disagree with the layout, or a value is infinite.</exception>
    public static Tensor SpnLeafGaussian(Tensor x, Tensor mean, Tensor logStd, SpnLeafLayout layout)
    {
        const string op = "spn_leaf_gaussian";
        ArgumentNullException.ThrowIfNull(layout);
        CheckSpnData(op, x, layout);
        CheckSameDevice(op, x, mean);
        CheckSameDevice(op, x, logStd);
        if (mean.Rank != 2 || mean.shape[0] != layout.Entries || !Shape.Equal(mean.shape, logStd.shape))
            throw new ArgumentException($"{op}: mean {mean.Describe()} and log-std {logStd.Describe()} must both be [{layout.Entries}, components].");
        CheckSpnGaussianData(x, layout, op);
        int batch = x.shape[0], components = mean.shape[1];
        var device = x.Device;
        var y = Tensor.Empty([batch, layout.Regions, components], device);
        x.K.SpnKernels().SpnLeafGaussian(x.Buffer, batch, layout.Map(device), new SpnGaussianLeaves(mean.Buffer, logStd.Buffer), components,
            y.Buffer);
        return y.Record(op, [mean, logStd], g =>
        {
            if (!GradMode.IsEnabled)
            {
                var dm = Tensor.Empty(mean.shape, device);
                var ds = Tensor.Empty(mean.shape, device);
                x.K.SpnKernels().SpnLeafGaussianBackward(x.Buffer, batch, layout.Map(device), new SpnGaussianLeaves(mean.Buffer, logStd.Buffer),
                    components, g.Buffer, new SpnGaussianLeaves(dm.Buffer, ds.Buffer));
                return [KeepIf(dm, mean.RequiresGrad), KeepIf(ds, logStd.RequiresGrad)];
            }
            return LeafGaussianBackwardRecorded(x.ToArray(), batch, layout, mean, logStd, g);
        });
    }

    /// <summary>The Gaussian leaf gradient in differentiable ops (for createGraph).</summary>
    private static Tensor?[] LeafGaussianBackwardRecorded(float[] data, int batch, SpnLeafLayout layout, Tensor mean, Tensor logStd, Tensor g)
    {
        int e = layout.Entries;
        var xe = new float[batch * e];
        var present = new float[batch * e];
        for (int n = 0; n < batch; n++)
            for (int k = 0; k < e; k++)
            {
                float v = data[n * layout.Variables + layout.EntryVariable[k]];
                bool ok = !float.IsNaN(v);
                xe[n * e + k] = ok ? v : 0f;
                present[n * e + k] = ok ? 1f : 0f;
            }
        var device = mean.Device;
        var xt = Tensor.FromArray(xe, [batch, e, 1], device);
        var mt = Tensor.FromArray(present, [batch, e, 1], device);
        var ge = g.IndexSelect(1, layout.EntryRegion) * mt;         // [batch, entries, components], 0 where missing
        var inv = Exp(-logStd);
        var z = (xt - mean) * inv;
        Tensor? dm = mean.RequiresGrad ? (ge * z * inv).Sum(0) : null;
        Tensor? ds = logStd.RequiresGrad ? (ge * (z.Square() - 1f)).Sum(0) : null;
        return [dm, ds];
    }

    /// <summary>
    /// Product layer: the outer sum of two children's log-densities. a [batch, leftRegions, k1], b [batch, rightRegions, k2]
    /// (may be the same tensor); returns [batch, regions, k1·k2] with y[n, r, i·k2 + j] = a[n, left[r], i] + b[n, right[r], j].
    /// </summary>
    public static Tensor SpnProduct(Tensor a, Tensor b, SpnProductLayout layout)
    {
        const string op = "spn_product";
        ArgumentNullException.ThrowIfNull(layout);
        CheckSameDevice(op, a, b);
        if (a.Rank != 3 || b.Rank != 3 || a.shape[0] != b.shape[0] || a.shape[1] != layout.LeftRegions || b.shape[1] != layout.RightRegions)
            throw new ArgumentException(
                $"{op}: children {a.Describe()} and {b.Describe()} must be [batch, {layout.LeftRegions}, k1] and [batch, {layout.RightRegions}, k2].");
        int batch = a.shape[0], k1 = a.shape[2], k2 = b.shape[2], regions = layout.Regions;
        var device = a.Device;
        var y = Tensor.Empty([batch, regions, k1 * k2], device);
        a.K.SpnKernels().SpnProduct(a.Buffer, k1, b.Buffer, k2, batch, layout.Map(device), y.Buffer);
        return y.Record(op, [a, b], g =>
        {
            if (!GradMode.IsEnabled)
            {
                Tensor? da = null, db = null;
                if (ReferenceEquals(a, b) && a.RequiresGrad)
                {
                    // One input on both sides (each level of a region graph's layers reads one tensor twice): one
                    // kernel writes both sides' sum, which the tape would otherwise add from two.
                    da = Tensor.Empty(a.shape, device);
                    a.K.SpnKernels().SpnProductBackward(g.Buffer, batch, layout.Map(device), k1, k2, SpnSide.Both, da.Buffer);
                    return [da, null];
                }
                if (a.RequiresGrad)
                {
                    da = Tensor.Empty(a.shape, device);
                    a.K.SpnKernels().SpnProductBackward(g.Buffer, batch, layout.Map(device), k1, k2, SpnSide.Left, da.Buffer);
                }
                if (b.RequiresGrad)
                {
                    db = Tensor.Empty(b.shape, device);
                    a.K.SpnKernels().SpnProductBackward(g.Buffer, batch, layout.Map(device), k1, k2, SpnSide.Right, db.Buffer);
                }
                return [da, db];
            }
            var g4 = g.Reshape(batch, regions, k1, k2);
            return [a.RequiresGrad ? g4.Sum(3).IndexAdd(1, layout.Left, layout.LeftRegions) : null,
                    b.RequiresGrad ? g4.Sum(2).IndexAdd(1, layout.Right, layout.RightRegions) : null];
        });
    }

    /// <summary>
    /// Sum layer: y[n, r, o] = log Σ_k w[r, o, k] · exp(x[n, r, k]) computed stably as
    /// m + log Σ_k exp(x + logW - m) with m the maximum term. x [batch, regions, kIn], logWeights [regions, kOut, kIn]
    /// (normalised log weights, e.g. <see cref="LogSoftmax"/> of free parameters over the last axis); returns
    /// [batch, regions, kOut]. With <paramref name="max"/> the result is the max-product value max_k (x + logW),
    /// which is not differentiable (for MPE inference; it throws when an input requires gradients and grad mode is on).
    /// </summary>
    public static Tensor SpnSum(Tensor x, Tensor logWeights, bool max = false)
    {
        const string op = "spn_sum";
        CheckSameDevice(op, x, logWeights);
        if (x.Rank != 3 || logWeights.Rank != 3 || logWeights.shape[0] != x.shape[1] || logWeights.shape[2] != x.shape[2])
            throw new ArgumentException(
                $"{op}: input {x.Describe()} must be [batch, regions, kIn] and weights {logWeights.Describe()} [regions, kOut, kIn] with the same regions and kIn.");
        if (max && GradMode.IsEnabled && (x.RequiresGrad || logWeights.RequiresGrad))
            throw new InvalidOperationException($"{op}: the max-product form is not differentiable; evaluate it under GradMode.NoGrad() (MPE inference).");
        int batch = x.shape[0], regions = x.shape[1], kIn = x.shape[2], kOut = logWeights.shape[1];
        var device = x.Device;
        var y = Tensor.Empty([batch, regions, kOut], device);
        var size = new SpnSumSize(batch, regions, kIn, kOut);
        x.K.SpnKernels().SpnSum(x.Buffer, logWeights.Buffer, size, max, y.Buffer);
        if (max) return y;
        return y.Record(op, [x, logWeights], g =>
        {
            if (!GradMode.IsEnabled)
            {
                var dx = Tensor.Empty(x.shape, device);
                var dw = Tensor.Empty(logWeights.shape, device);
                x.K.SpnKernels().SpnSumBackward(x.Buffer, logWeights.Buffer, y.Buffer, g.Buffer, size, dx.Buffer, dw.Buffer);
                return [KeepIf(dx, x.RequiresGrad), KeepIf(dw, logWeights.RequiresGrad)];
            }
            // Recorded: the posterior p = exp(x + logW - y) from differentiable ops (y is this op's recorded output).
            var p = Exp(x.Reshape(batch, regions, 1, kIn) + logWeights.Reshape(1, regions, kOut, kIn) - y.Reshape(batch, regions, kOut, 1));
            var gp = g.Reshape(batch, regions, kOut, 1) * p;
            return [x.RequiresGrad ? gp.Sum(2) : null, logWeights.RequiresGrad ? gp.Sum(0) : null];
        });
    }
}
