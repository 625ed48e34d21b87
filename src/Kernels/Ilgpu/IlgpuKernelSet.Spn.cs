using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

// Sum-product network layers: host-side checks, then one launch per layer (two for the sum backward). The sizes of
// the index lists (entries, links) come from the host-side maps, so no call reads the device back.
public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>? kSpnLeafCat;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>? kSpnLeafCatBack;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>? kSpnLeafGauss;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SpnDims>? kSpnLeafGaussBack;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>? kSpnProduct;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>? kSpnProductBack;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>? kSpnProductBackBoth;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SpnDims>? kSpnSum;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        SpnDims>? kSpnProductSum;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SpnDims>? kSpnSumBack;

    private void CheckSpnExtents(string op, params int[] extents)
    {
        foreach (var e in extents)
            if (e < 0) throw new ArgumentException($"{Name}.{op}: extents [{string.Join(", ", extents)}] must be non-negative.");
    }

    /// <inheritdoc />
    internal void SpnLeafCategorical(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> logTable, int components, int categories,
        DeviceBuffer<int> regionStart, DeviceBuffer<int> entryVar, int regions, int entries, DeviceBuffer<float> y)
    {
        const string op = "SpnLeafCategorical";
        CheckSpnExtents(op, batch, vars, components, categories, regions, entries);
        var xv = View(x, (long)batch * vars, op, nameof(x));
        var tv = View(logTable, (long)entries * components * categories, op, nameof(logTable));
        var sv = View(regionStart, regions + 1L, op, nameof(regionStart));
        var vv = View(entryVar, entries, op, nameof(entryVar));
        long total = (long)batch * regions * components;
        var yv = View(y, total, op, nameof(y));
        if (total == 0) return;
        var d = new SpnDims { Batch = batch, Vars = vars, Components = components, Categories = categories, Regions = regions, Entries = entries };
        var k = Kernel(ref kSpnLeafCat, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnLeafCategorical));
        Launch(op, () => k(Config1D(total), xv, tv, sv, vv, yv, d), x, logTable, regionStart, entryVar, y);
    }

    /// <inheritdoc />
    internal void SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> dy, int components, int categories,
        DeviceBuffer<int> entryRegion, DeviceBuffer<int> entryVar, int entries, int regions, DeviceBuffer<float> dTable)
    {
        const string op = "SpnLeafCategoricalBackward";
        CheckSpnExtents(op, batch, vars, components, categories, entries, regions);
        var xv = View(x, (long)batch * vars, op, nameof(x));
        var gv = View(dy, (long)batch * regions * components, op, nameof(dy));
        var rv = View(entryRegion, entries, op, nameof(entryRegion));
        var vv = View(entryVar, entries, op, nameof(entryVar));
        long total = (long)entries * components * categories;
        var dv = View(dTable, total, op, nameof(dTable));
        if (total == 0) return;
        var d = new SpnDims { Batch = batch, Vars = vars, Components = components, Categories = categories, Regions = regions, Entries = entries };
        var k = Kernel(ref kSpnLeafCatBack, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnLeafCategoricalBackward));
        Launch(op, () => k(Config1D(total), xv, gv, rv, vv, dv, d), x, dy, entryRegion, entryVar, dTable);
    }

    /// <inheritdoc />
    internal void SpnLeafGaussian(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> mean, DeviceBuffer<float> logStd, int components,
        DeviceBuffer<int> regionStart, DeviceBuffer<int> entryVar, int regions, int entries, DeviceBuffer<float> y)
    {
        const string op = "SpnLeafGaussian";
        CheckSpnExtents(op, batch, vars, components, regions, entries);
        var xv = View(x, (long)batch * vars, op, nameof(x));
        var mv = View(mean, (long)entries * components, op, nameof(mean));
        var lv = View(logStd, (long)entries * components, op, nameof(logStd));
        var sv = View(regionStart, regions + 1L, op, nameof(regionStart));
        var vv = View(entryVar, entries, op, nameof(entryVar));
        long total = (long)batch * regions * components;
        var yv = View(y, total, op, nameof(y));
        if (total == 0) return;
        var d = new SpnDims { Batch = batch, Vars = vars, Components = components, Regions = regions, Entries = entries };
        var k = Kernel(ref kSpnLeafGauss, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnLeafGaussian));
        Launch(op, () => k(Config1D(total), xv, mv, lv, sv, vv, yv, d), x, mean, logStd, regionStart, entryVar, y);
    }

    /// <inheritdoc />
    internal void SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, int vars, DeviceBuffer<float> mean, DeviceBuffer<float> logStd,
        DeviceBuffer<float> dy, int components, DeviceBuffer<int> entryRegion, DeviceBuffer<int> entryVar, int entries, int regions,
        DeviceBuffer<float> dMean, DeviceBuffer<float> dLogStd)
    {
        const string op = "SpnLeafGaussianBackward";
        CheckSpnExtents(op, batch, vars, components, entries, regions);
        long total = (long)entries * components;
        var xv = View(x, (long)batch * vars, op, nameof(x));
        var mv = View(mean, total, op, nameof(mean));
        var lv = View(logStd, total, op, nameof(logStd));
        var gv = View(dy, (long)batch * regions * components, op, nameof(dy));
        var rv = View(entryRegion, entries, op, nameof(entryRegion));
        var vv = View(entryVar, entries, op, nameof(entryVar));
        var dmv = View(dMean, total, op, nameof(dMean));
        var dsv = View(dLogStd, total, op, nameof(dLogStd));
        if (total == 0) return;
        var d = new SpnDims { Batch = batch, Vars = vars, Components = components, Regions = regions, Entries = entries };
        var k = Kernel(ref kSpnLeafGaussBack, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnLeafGaussianBackward));
        Launch(op, () => k(Config1D(total), xv, mv, lv, gv, rv, vv, dmv, dsv, d), x, mean, logStd, dy, entryRegion, entryVar, dMean, dLogStd);
    }

    /// <inheritdoc />
    internal void SpnProduct(DeviceBuffer<float> a, int aRegions, int k1, DeviceBuffer<float> b, int bRegions, int k2,
        DeviceBuffer<int> left, DeviceBuffer<int> right, int batch, int regions, DeviceBuffer<float> y)
    {
        const string op = "SpnProduct";
        CheckSpnExtents(op, aRegions, k1, bRegions, k2, batch, regions);
        var av = View(a, (long)batch * aRegions * k1, op, nameof(a));
        var bv = View(b, (long)batch * bRegions * k2, op, nameof(b));
        var lv = View(left, regions, op, nameof(left));
        var rv = View(right, regions, op, nameof(right));
        long total = (long)batch * regions * k1 * k2;
        var yv = View(y, total, op, nameof(y));
        if (total == 0) return;
        var d = new SpnDims { Batch = batch, Regions = regions, ARegions = aRegions, K1 = k1, BRegions = bRegions, K2 = k2 };
        var k = Kernel(ref kSpnProduct, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnProduct));
        Launch(op, () => k(Config1D(total), av, bv, lv, rv, yv, d), a, b, left, right, y);
    }

    /// <summary>
    /// Backward of the product layer for one side or, with <see cref="SpnSide.Both"/>, for one input on both sides (the
    /// left result plus the right result, in one kernel).
    /// </summary>
    internal void SpnProductBackward(DeviceBuffer<float> dy, int batch, in SpnProductMap map, int k1, int k2, SpnSide side, DeviceBuffer<float> dChild)
    {
        const string op = "SpnProductBackward";
        map.CheckBackwardSide(op, side, k1, k2);
        var child = side == SpnSide.Right ? map.Right : map.Left;
        var right = map.Right;
        int regions = map.Regions, childRegions = child.ChildRegions;
        CheckSpnExtents(op, batch, regions, k1, k2, childRegions);
        // Every output region reads exactly one child on each side, so the inverse lists hold one entry per region.
        int links = regions;
        var gv = View(dy, (long)batch * regions * k1 * k2, op, nameof(dy));
        var sv = View(child.ParentStart, childRegions + 1L, op, nameof(child.ParentStart));
        var pv = View(child.Parents, links, op, nameof(child.Parents));
        long total = (long)batch * childRegions * (side == SpnSide.Right ? k2 : k1);
        var dv = View(dChild, total, op, nameof(dChild));
        var d = new SpnDims { Batch = batch, Regions = regions, K1 = k1, K2 = k2, Side = (int)side, ChildRegions = childRegions };
        if (side == SpnSide.Both)
        {
            var rsv = View(right.ParentStart, childRegions + 1L, op, nameof(right.ParentStart));
            var rpv = View(right.Parents, links, op, nameof(right.Parents));
            if (total == 0) return;
            var both = Kernel(ref kSpnProductBackBoth, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>,
                ArrayView<float>, SpnDims>(IlgpuKernels.SpnProductBackwardBoth));
            Launch(op, () => both(Config1D(total), gv, sv, pv, rsv, rpv, dv, d), dy, child.ParentStart, child.Parents, right.ParentStart, right.Parents, dChild);
            return;
        }
        if (total == 0) return;
        var k = Kernel(ref kSpnProductBack, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnProductBackward));
        Launch(op, () => k(Config1D(total), gv, sv, pv, dv, d), dy, child.ParentStart, child.Parents, dChild);
    }

    /// <inheritdoc />
    internal void SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, int batch, int regions, int kIn, int kOut, bool max, DeviceBuffer<float> y)
    {
        const string op = "SpnSum";
        CheckSpnExtents(op, batch, regions, kIn, kOut);
        var xv = View(x, (long)batch * regions * kIn, op, nameof(x));
        var wv = View(logW, (long)regions * kOut * kIn, op, nameof(logW));
        long total = (long)batch * regions * kOut;
        var yv = View(y, total, op, nameof(y));
        if (total == 0) return;
        var d = new SpnDims { Batch = batch, Regions = regions, KIn = kIn, KOut = kOut, Max = max ? 1 : 0 };
        var k = Kernel(ref kSpnSum, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnSum));
        Launch(op, () => k(Config1D(total), xv, wv, yv, d), x, logW, y);
    }

    /// <summary>The product layer and the sum layer that reads it, in one kernel (<see cref="IlgpuKernels.SpnProductSum"/>).</summary>
    internal void SpnProductSum(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, in SpnProductMap map, DeviceBuffer<float> logW,
        in SpnSumSize size, bool max, DeviceBuffer<float>? product, DeviceBuffer<float> y)
    {
        const string op = nameof(ISpnProductSumKernels.SpnProductSum);
        SpnProductSumCall.Check(a, k1, b, k2, map, logW, size, product, y);
        int batch = size.Batch;
        var av = View(a, (long)batch * map.Left.ChildRegions * k1, op, nameof(a));
        var bv = View(b, (long)batch * map.Right.ChildRegions * k2, op, nameof(b));
        var lv = View(map.Left.Child, map.Regions, op, nameof(map.Left));
        var rv = View(map.Right.Child, map.Regions, op, nameof(map.Right));
        var wv = View(logW, (long)size.Regions * size.KOut * size.KIn, op, nameof(logW));
        long total = (long)batch * size.Regions * size.KOut;
        var yv = View(y, total, op, nameof(y));
        // Without a product buffer the kernel stores nothing; y stands in for the view it never writes.
        var pv = product == null ? yv : View(product, (long)batch * size.Regions * size.KIn, op, nameof(product));
        if (total == 0) return;
        var d = new SpnDims
        {
            Batch = batch, Regions = size.Regions, KIn = size.KIn, KOut = size.KOut, Max = max ? 1 : 0, ARegions = map.Left.ChildRegions, K1 = k1,
            BRegions = map.Right.ChildRegions, K2 = k2, Store = product == null ? 0 : 1,
        };
        var k = Kernel(ref kSpnProductSum, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, SpnDims>(IlgpuKernels.SpnProductSum));
        Launch(op, () => k(Config1D(total), av, bv, lv, rv, wv, pv, yv, d), a, b, map.Left.Child, map.Right.Child, logW, product, y);
    }

    /// <inheritdoc />
    internal void SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        int batch, int regions, int kIn, int kOut, DeviceBuffer<float> dx, DeviceBuffer<float> dLogW)
    {
        const string op = "SpnSumBackward";
        CheckSpnExtents(op, batch, regions, kIn, kOut);
        long nx = (long)batch * regions * kIn, nw = (long)regions * kOut * kIn, ny = (long)batch * regions * kOut;
        var xv = View(x, nx, op, nameof(x));
        var wv = View(logW, nw, op, nameof(logW));
        var yv = View(y, ny, op, nameof(y));
        var gv = View(dy, ny, op, nameof(dy));
        var dxv = View(dx, nx, op, nameof(dx));
        var dwv = View(dLogW, nw, op, nameof(dLogW));
        var d = new SpnDims { Batch = batch, Regions = regions, KIn = kIn, KOut = kOut };
        if (nx + nw == 0) return;
        var k = Kernel(ref kSpnSumBack, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, SpnDims>(IlgpuKernels.SpnSumBackward));
        Launch(op, () => k(Config1D(nx + nw), xv, wv, yv, gv, dxv, dwv, d), x, logW, y, dy, dx, dLogW);
    }
}
