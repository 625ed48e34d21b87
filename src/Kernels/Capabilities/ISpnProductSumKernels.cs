namespace Engine.Kernels;

/// <summary>
/// A product layer and the sum layer that reads it in one launch, a capability a kernel set may implement (the CPU and
/// ILGPU sets do). Eager steps never call it: the compiler replaces an <see cref="ISpnKernels.SpnProduct"/> directly
/// followed by the <see cref="ISpnKernels.SpnSum"/> of its result with one call, which computes each sum's inputs where
/// it reads them instead of loading them back.
/// </summary>
public interface ISpnProductSumKernels
{
    /// <summary>
    /// <see cref="ISpnKernels.SpnProduct"/>(a, k1, b, k2, size.Batch, map) into <paramref name="product"/> (unless null:
    /// then the products are not stored), then <see cref="ISpnKernels.SpnSum"/>(product, logW, size, max) into y, each
    /// with the bits of that call alone on the same set. The sum's region r reads the products of the layer's regions
    /// r·P .. r·P + P - 1 with P = size.KIn / (k1·k2), so map.Regions = size.Regions · P. Checked before any work
    /// (<see cref="SpnProductSumCall.Check"/>).
    /// </summary>
    void SpnProductSum(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, in SpnProductMap map, DeviceBuffer<float> logW, in SpnSumSize size,
        bool max, [Writes] DeviceBuffer<float>? product, [Writes] DeviceBuffer<float> y);
}

/// <summary>The checks of a <see cref="ISpnProductSumKernels.SpnProductSum"/> call.</summary>
public static class SpnProductSumCall
{
    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming the method and the values unless every extent is positive where
    /// the layers meet (k1, k2) and non-negative elsewhere, the sum's inputs are whole partitions of the product
    /// (size.KIn a multiple of k1·k2, map.Regions = size.Regions · size.KIn / (k1·k2)), every buffer is live and long
    /// enough, and y is none of a, b, logW and product, nor product one of a, b and logW.
    /// </summary>
    /// <param name="a">The left children.</param>
    /// <param name="k1">Densities per left child.</param>
    /// <param name="b">The right children.</param>
    /// <param name="k2">Densities per right child.</param>
    /// <param name="map">The product layer's partitions.</param>
    /// <param name="logW">The sum layer's log-weights.</param>
    /// <param name="size">The sum layer's extents.</param>
    /// <param name="product">The products, or null.</param>
    /// <param name="y">The sums.</param>
    public static void Check(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, in SpnProductMap map, DeviceBuffer<float> logW,
        in SpnSumSize size, DeviceBuffer<float>? product, DeviceBuffer<float> y)
    {
        const string op = nameof(ISpnProductSumKernels.SpnProductSum);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(logW);
        ArgumentNullException.ThrowIfNull(y);
        if (k1 < 1 || k2 < 1) throw new ArgumentException($"{op}: k1 and k2 must be positive; got {k1} and {k2}.");
        if (size.Batch < 0 || size.Regions < 0 || size.KIn < 0 || size.KOut < 0 || map.Regions < 0 || map.Left.ChildRegions < 0 || map.Right.ChildRegions < 0)
            throw new ArgumentException($"{op}: extents must be non-negative; got size {size}, {map.Regions} product regions, "
                + $"{map.Left.ChildRegions} and {map.Right.ChildRegions} child regions.");
        long kk = (long)k1 * k2;
        if (size.KIn % kk != 0 || (long)map.Regions * kk != (long)size.Regions * size.KIn)
            throw new ArgumentException($"{op}: the sum's {size.Regions} regions of {size.KIn} inputs must be whole partitions of the product's "
                + $"{map.Regions} regions of {k1}·{k2} = {kk} values.");
        foreach (var buffer in new[] { a, b, logW, y }) buffer.ThrowIfDisposed(op);
        product?.ThrowIfDisposed(op);
        foreach (var (other, name) in new[] { (a, "a"), (b, "b"), (logW, "logW"), (product, "product") })
            if (ReferenceEquals(y, other)) throw new ArgumentException($"{op}: y is {name}; the sums need a buffer of their own.");
        foreach (var (other, name) in new[] { (a, "a"), (b, "b"), (logW, "logW") })
            if (product != null && ReferenceEquals(product, other))
                throw new ArgumentException($"{op}: product is {name}; the products need a buffer of their own.");
        Need(a, (long)size.Batch * map.Left.ChildRegions * k1, "a");
        Need(b, (long)size.Batch * map.Right.ChildRegions * k2, "b");
        Need(logW, (long)size.Regions * size.KOut * size.KIn, "logW");
        Need(y, (long)size.Batch * size.Regions * size.KOut, "y");
        if (product != null) Need(product, (long)size.Batch * size.Regions * size.KIn, "product");

        static void Need(DeviceBuffer<float> buffer, long length, string name)
        {
            if (buffer.Length < length) throw new ArgumentException($"{op}: {name} holds {buffer.Length} elements; the call needs {length}.");
        }
    }
}
