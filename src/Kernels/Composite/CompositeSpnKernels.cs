namespace Engine.Kernels.Composite;

/// <summary>
/// <see cref="ISpnKernels"/> written in core operations, for kernel sets without SPN kernels. Leaves: the entries'
/// values are gathered from x, a categorical leaf becomes a one-hot comparison with the categories times the table
/// (a batched GEMM per entry), a Gaussian leaf a chain of broadcast passes, and regions sum their entries with an
/// index-add. Products: two gathers and one broadcast add. Sums: a broadcast add, a max reduction, and
/// exp / sum / log around it (log-sum-exp with the maximum subtracted). Results match the fused kernels within float
/// rounding. One difference: a categorical table entry of -∞ (a probability of exactly 0) makes the one-hot GEMM
/// produce NaN (0 · -∞) where the fused kernel gives -∞, so tables must be finite (log-softmax of finite logits is).
/// </summary>
internal sealed class CompositeSpnKernels(IKernelSet k) : ISpnKernels
{
    private readonly object gate = new();
    private readonly Dictionary<int, DeviceBuffer<float>> categoryLists = new();
    private readonly Dictionary<float, DeviceBuffer<float>> constants = new();
    private static readonly int[] Scalar = [];

    /// <inheritdoc />
    public void SpnLeafCategorical(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> logTable, int components,
        int categories, DeviceBuffer<float> y)
    {
        CheckLeaves("SpnLeafCategorical", batch, leaves, components, categories);
        int e = leaves.Entries;
        using var onehot = OneHotEntries(x, batch, leaves, categories);
        // ye[e] = onehot[e] (batch x categories) · logTable[e]ᵀ (categories x components).
        using var ye = k.Allocate((long)e * batch * components);
        k.Gemm(new GemmSize(e, batch, components, categories),
            new GemmOperand(onehot, false, (long)batch * categories),
            new GemmOperand(logTable, true, (long)components * categories),
            new GemmOutput(ye, (long)batch * components));
        SumIntoRegions(ye, batch, leaves, components, y);
    }

    /// <inheritdoc />
    public void SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> dy, int components,
        int categories, DeviceBuffer<float> dTable)
    {
        CheckLeaves("SpnLeafCategoricalBackward", batch, leaves, components, categories);
        int e = leaves.Entries;
        using var onehot = OneHotEntries(x, batch, leaves, categories);
        using var dye = EntryGradients(dy, batch, leaves, components);
        // dTable[e] (components x categories) = dye[e]ᵀ (components x batch) · onehot[e] (batch x categories).
        k.Gemm(new GemmSize(e, components, categories, batch),
            new GemmOperand(dye, true, (long)batch * components),
            new GemmOperand(onehot, false, (long)batch * categories),
            new GemmOutput(dTable, (long)components * categories));
    }

    /// <inheritdoc />
    public void SpnLeafGaussian(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters, int components,
        DeviceBuffer<float> y)
    {
        CheckLeaves("SpnLeafGaussian", batch, leaves, components, 1);
        int e = leaves.Entries;
        int[] full = [batch, e, components], table = [e, components], present = [batch, e, 1];
        using var g = GaussianTerms(x, batch, leaves, parameters, components, out var mask, out var inv);
        using (mask)
        using (inv)
        {
            // log N = -½ z² - ½ ln 2π - logStd, times 1 where the value is present and 0 where it is missing.
            k.Unary(UnaryOp.Square, g, g);
            k.Affine(g, g, -0.5f, -0.5f * MathF.Log(2f * MathF.PI));
            k.Binary(BinaryOp.Sub, g, full, parameters.LogStd, table, g, full);
            k.Binary(BinaryOp.Mul, g, full, mask, present, g, full);
        }
        using var ye = k.Allocate(g.Length);
        k.Permute(g, full, [1, 0, 2], ye);
        SumIntoRegions(ye, batch, leaves, components, y);
    }

    /// <inheritdoc />
    public void SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters,
        int components, DeviceBuffer<float> dy, in SpnGaussianLeaves gradients)
    {
        CheckLeaves("SpnLeafGaussianBackward", batch, leaves, components, 1);
        int e = leaves.Entries;
        int[] full = [batch, e, components], table = [e, components], present = [batch, e, 1];
        using var z = GaussianTerms(x, batch, leaves, parameters, components, out var mask, out var inv);
        using (mask)
        using (inv)
        {
            using var ge = k.Allocate(z.Length);
            k.IndexSelect(dy, [batch, leaves.Regions, components], 1, leaves.EntryRegion, e, ge);
            k.Binary(BinaryOp.Mul, ge, full, mask, present, ge, full);
            using var tmp = k.Allocate(z.Length);
            // dMean = Σ_b g · z · exp(-logStd); dLogStd = Σ_b g · (z² - 1).
            k.Binary(BinaryOp.Mul, ge, full, z, full, tmp, full);
            k.Binary(BinaryOp.Mul, tmp, full, inv, table, tmp, full);
            k.Reduce(ReduceOp.Sum, tmp, full, [0], gradients.Mean);
            k.Unary(UnaryOp.Square, z, tmp);
            k.Affine(tmp, tmp, 1f, -1f);
            k.Binary(BinaryOp.Mul, tmp, full, ge, full, tmp, full);
            k.Reduce(ReduceOp.Sum, tmp, full, [0], gradients.LogStd);
        }
    }

    /// <inheritdoc />
    public void SpnProduct(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, int batch, in SpnProductMap map, DeviceBuffer<float> y)
    {
        if (batch < 0 || k1 < 0 || k2 < 0 || map.Regions < 0)
            throw new ArgumentException($"SpnProduct: negative extent (batch {batch}, k1 {k1}, k2 {k2}, regions {map.Regions}).");
        int r = map.Regions;
        using var left = k.Allocate((long)batch * r * k1);
        using var right = k.Allocate((long)batch * r * k2);
        k.IndexSelect(a, [batch, map.Left.ChildRegions, k1], 1, map.Left.Child, r, left);
        k.IndexSelect(b, [batch, map.Right.ChildRegions, k2], 1, map.Right.Child, r, right);
        k.Binary(BinaryOp.Add, left, [batch, r, k1, 1], right, [batch, r, 1, k2], y, [batch, r, k1, k2]);
    }

    /// <inheritdoc />
    public void SpnProductBackward(DeviceBuffer<float> dy, int batch, in SpnProductMap map, int k1, int k2, SpnSide side, DeviceBuffer<float> dChild)
    {
        if (batch < 0 || k1 < 0 || k2 < 0 || map.Regions < 0)
            throw new ArgumentException($"SpnProductBackward: negative extent (batch {batch}, k1 {k1}, k2 {k2}, regions {map.Regions}).");
        map.CheckBackwardSide("SpnProductBackward", side, k1, k2);
        if (side == SpnSide.Both)
        {
            // The two one-side results, then their sum: the bits the contract names.
            long length = (long)batch * map.Left.ChildRegions * k1;
            using var left = k.Allocate(Math.Max(1, length));
            using var right = k.Allocate(Math.Max(1, length));
            SpnProductBackward(dy, batch, map, k1, k2, SpnSide.Left, left);
            SpnProductBackward(dy, batch, map, k1, k2, SpnSide.Right, right);
            int[] shape = [batch, map.Left.ChildRegions, k1];
            k.Binary(BinaryOp.Add, left, shape, right, shape, dChild, shape);
            return;
        }
        var child = map.Of(side);
        int r = map.Regions;
        bool isLeft = side == SpnSide.Left;
        int kc = isLeft ? k1 : k2;
        using var sums = k.Allocate((long)batch * r * kc);
        k.Reduce(ReduceOp.Sum, dy, [batch, r, k1, k2], [isLeft ? 3 : 2], sums);
        int[] childShape = [batch, child.ChildRegions, kc];
        k.Fill(dChild, 0f);
        k.IndexAdd(sums, [batch, r, kc], 1, child.Child, dChild, childShape);
    }

    /// <inheritdoc />
    public void SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, in SpnSumSize size, bool max, DeviceBuffer<float> y)
    {
        var (batch, regions, kIn, kOut) = CheckSum("SpnSum", size);
        int[] terms = [batch, regions, kOut, kIn], outShape = [batch, regions, kOut];
        using var t = Terms(x, logW, size);
        if (max)
        {
            k.Reduce(ReduceOp.Max, t, terms, [3], y);
            return;
        }
        // m + log Σ exp(t - m), with m floored at -float.MaxValue so that all -∞ terms give -∞ rather than NaN.
        using var m = k.Allocate((long)batch * regions * kOut);
        k.Reduce(ReduceOp.Max, t, terms, [3], m);
        k.Binary(BinaryOp.Maximum, m, outShape, Constant(-float.MaxValue), Scalar, m, outShape);
        k.Binary(BinaryOp.Sub, t, terms, m, [batch, regions, kOut, 1], t, terms);
        k.Unary(UnaryOp.Exp, t, t);
        k.Reduce(ReduceOp.Sum, t, terms, [3], y);
        k.Unary(UnaryOp.Log, y, y);
        k.Binary(BinaryOp.Add, y, outShape, m, outShape, y, outShape);
    }

    /// <inheritdoc />
    public void SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        in SpnSumSize size, DeviceBuffer<float> dx, DeviceBuffer<float> dLogW)
    {
        var (batch, regions, kIn, kOut) = CheckSum("SpnSumBackward", size);
        int[] terms = [batch, regions, kOut, kIn], outShape = [batch, regions, kOut], column = [batch, regions, kOut, 1];
        using var p = Terms(x, logW, size);
        using var ys = k.Allocate((long)batch * regions * kOut);
        // p = exp(x + logW - y), 0 where y is -∞ (y floored at -float.MaxValue keeps -∞ - -∞ from giving NaN).
        k.Binary(BinaryOp.Maximum, y, outShape, Constant(-float.MaxValue), Scalar, ys, outShape);
        k.Binary(BinaryOp.Sub, p, terms, ys, column, p, terms);
        k.Unary(UnaryOp.Exp, p, p);
        k.Binary(BinaryOp.Mul, p, terms, dy, column, p, terms);
        k.Reduce(ReduceOp.Sum, p, terms, [2], dx);
        k.Reduce(ReduceOp.Sum, p, terms, [0], dLogW);
    }

    // ---- pieces ----

    /// <summary>t[n, r, o, k] = x[n, r, k] + logW[r, o, k], a new buffer.</summary>
    private DeviceBuffer<float> Terms(DeviceBuffer<float> x, DeviceBuffer<float> logW, in SpnSumSize size)
    {
        var (batch, regions, kIn, kOut) = size;
        var t = k.Allocate((long)batch * regions * kOut * kIn);
        try
        {
            k.Binary(BinaryOp.Add, x, [batch, regions, 1, kIn], logW, [regions, kOut, kIn], t, [batch, regions, kOut, kIn]);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>[entries, batch, categories]: 1 where entry e's value in row b is category c, else 0 (NaN: all 0).</summary>
    private DeviceBuffer<float> OneHotEntries(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, int categories)
    {
        int e = leaves.Entries;
        using var values = k.Allocate((long)batch * e);
        k.IndexSelect(x, [batch, leaves.Variables], 1, leaves.EntryVariable, e, values);
        using var onehot = k.Allocate((long)batch * e * categories);
        k.Binary(BinaryOp.Equal, values, [batch, e, 1], Categories(categories), [categories], onehot, [batch, e, categories]);
        var perEntry = k.Allocate(onehot.Length);
        k.Permute(onehot, [batch, e, categories], [1, 0, 2], perEntry);
        return perEntry;
    }

    /// <summary>[entries, batch, components]: the output gradient of each entry's region.</summary>
    private DeviceBuffer<float> EntryGradients(DeviceBuffer<float> dy, int batch, in SpnLeafMap leaves, int components)
    {
        int e = leaves.Entries;
        using var ge = k.Allocate((long)batch * e * components);
        k.IndexSelect(dy, [batch, leaves.Regions, components], 1, leaves.EntryRegion, e, ge);
        var perEntry = k.Allocate(ge.Length);
        k.Permute(ge, [batch, e, components], [1, 0, 2], perEntry);
        return perEntry;
    }

    /// <summary>
    /// z = (x_e - mean) · exp(-logStd) as [batch, entries, components] with missing values replaced by 0, plus the
    /// presence mask [batch, entries] and exp(-logStd) [entries, components].
    /// </summary>
    private DeviceBuffer<float> GaussianTerms(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters,
        int components, out DeviceBuffer<float> mask, out DeviceBuffer<float> inv)
    {
        int e = leaves.Entries;
        int[] values = [batch, e], full = [batch, e, components], table = [e, components];
        using var xe = k.Allocate((long)batch * e);
        k.IndexSelect(x, [batch, leaves.Variables], 1, leaves.EntryVariable, e, xe);
        mask = k.Allocate(xe.Length);
        k.Binary(BinaryOp.Equal, xe, values, xe, values, mask, values);
        // NaN → 0 and every number kept: max(x, 0) + min(x, 0), where a NaN first operand loses both comparisons.
        using var low = k.Allocate(xe.Length);
        k.Binary(BinaryOp.Minimum, xe, values, Constant(0f), Scalar, low, values);
        k.Binary(BinaryOp.Maximum, xe, values, Constant(0f), Scalar, xe, values);
        k.Binary(BinaryOp.Add, xe, values, low, values, xe, values);
        inv = k.Allocate((long)e * components);
        k.Unary(UnaryOp.Neg, parameters.LogStd, inv);
        k.Unary(UnaryOp.Exp, inv, inv);
        var z = k.Allocate((long)batch * e * components);
        k.Binary(BinaryOp.Sub, xe, [batch, e, 1], parameters.Mean, table, z, full);
        k.Binary(BinaryOp.Mul, z, full, inv, table, z, full);
        return z;
    }

    /// <summary>y[b, r, i] = Σ over region r's entries of ye[e, b, i].</summary>
    private void SumIntoRegions(DeviceBuffer<float> ye, int batch, in SpnLeafMap leaves, int components, DeviceBuffer<float> y)
    {
        int r = leaves.Regions;
        using var regions = k.Allocate((long)r * batch * components);
        k.Fill(regions, 0f);
        k.IndexAdd(ye, [leaves.Entries, batch, components], 0, leaves.EntryRegion, regions, [r, batch, components]);
        k.Permute(regions, [r, batch, components], [1, 0, 2], y);
    }

    /// <summary>A cached buffer holding 0, 1, ..., count - 1.</summary>
    private DeviceBuffer<float> Categories(int count)
    {
        lock (gate)
        {
            if (categoryLists.TryGetValue(count, out var b)) return b;
            b = k.Allocate(count);
            b.CopyFromHost(Enumerable.Range(0, count).Select(i => (float)i).ToArray());
            categoryLists[count] = b;
            return b;
        }
    }

    /// <summary>A cached one-element buffer holding <paramref name="value"/>.</summary>
    private DeviceBuffer<float> Constant(float value)
    {
        lock (gate)
        {
            if (constants.TryGetValue(value, out var b)) return b;
            b = k.Allocate(1);
            k.Fill(b, value);
            constants[value] = b;
            return b;
        }
    }

    private static void CheckLeaves(string op, int batch, in SpnLeafMap leaves, int components, int categories)
    {
        if (batch < 0 || components < 0 || categories < 0 || leaves.Entries < 0 || leaves.Regions < 0 || leaves.Variables < 0)
            throw new ArgumentException(
                $"{op}: negative extent (batch {batch}, components {components}, categories {categories}, entries {leaves.Entries}, regions {leaves.Regions}, variables {leaves.Variables}).");
        ArgumentNullException.ThrowIfNull(leaves.EntryVariable, nameof(leaves));
        ArgumentNullException.ThrowIfNull(leaves.EntryRegion, nameof(leaves));
    }

    private static SpnSumSize CheckSum(string op, in SpnSumSize size)
    {
        if (size.Batch < 0 || size.Regions < 0 || size.KIn < 0 || size.KOut < 0)
            throw new ArgumentException($"{op}: negative extent {size}.");
        return size;
    }
}
