using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// The sum-product network kernels (leaf, product, sum layers and their backward passes) against plain host loops in
/// double, on awkward shapes (1, primes), with missing values and -∞ inputs; one subclass per kernel set, on the set's
/// own kernels and on the composite fallback of core ops (same tolerances).
/// </summary>
public abstract class SpnKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    /// <summary>The SPN kernels under test: the set's own, or (composite subclasses) the fallback over its core.</summary>
    protected virtual ISpnKernels S => K.SpnKernels();

    private DeviceBuffer<float> Up(float[] d)
    {
        var b = K.Allocate(Math.Max(1, d.Length));
        if (d.Length > 0) b.CopyFromHost(d);
        return b;
    }

    private DeviceBuffer<int> Up(int[] d)
    {
        var b = K.AllocateInt(Math.Max(1, d.Length));
        if (d.Length > 0) b.CopyFromHost(d);
        return b;
    }

    private DeviceBuffer<float> Nan(long n)
    {
        var h = new float[Math.Max(1, n)];
        Array.Fill(h, float.NaN);
        return Up(h);
    }

    private static float[] Slice(float[] a, long n) => a.Take((int)n).ToArray();

    /// <summary>Random leaf regions: each region a random non-empty subset of the variables (may repeat across regions).</summary>
    private static (int[] Start, int[] Var, int[] Region) Layout(Random rng, int vars, int regions)
    {
        var start = new int[regions + 1];
        var v = new List<int>();
        var reg = new List<int>();
        for (int r = 0; r < regions; r++)
        {
            int n = 1 + rng.Next(Math.Min(vars, 4));
            foreach (var x in Enumerable.Range(0, vars).OrderBy(_ => rng.Next()).Take(n)) { v.Add(x); reg.Add(r); }
            start[r + 1] = v.Count;
        }
        return (start, v.ToArray(), reg.ToArray());
    }

    private static float[] Data(Random rng, int batch, int vars, int categories, double missing)
    {
        var x = new float[batch * vars];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < missing ? float.NaN : rng.Next(categories);
        return x;
    }

    private static float[] Uniform(Random rng, long n, double lo, double hi) =>
        Enumerable.Range(0, (int)n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();

    /// <summary>(batch, vars, components, categories, regions).</summary>
    public static IEnumerable<object[]> LeafCases() =>
    [
        [1, 1, 1, 2, 1],
        [3, 5, 2, 2, 4],
        [7, 11, 3, 5, 6],
        [13, 16, 10, 2, 9],
    ];

    /// <summary>Categorical leaf forward and table gradient against the host loops.</summary>
    [Theory, MemberData(nameof(LeafCases))]
    public void LeafCategorical_MatchesReference(int batch, int vars, int I, int C, int regions)
    {
        var rng = new Random(batch * 31 + vars);
        var (start, ev, er) = Layout(rng, vars, regions);
        int E = ev.Length;
        var x = Data(rng, batch, vars, C, 0.2);
        var table = Uniform(rng, (long)E * I * C, -5, 0);
        var g = Uniform(rng, (long)batch * regions * I, -1, 1);
        var ey = new double[batch * regions * I];
        var ed = new double[E * I * C];
        for (int n = 0; n < batch; n++)
            for (int r = 0; r < regions; r++)
                for (int e = start[r]; e < start[r + 1]; e++)
                {
                    float v = x[n * vars + ev[e]];
                    if (float.IsNaN(v)) continue;
                    for (int i = 0; i < I; i++)
                    {
                        ey[(n * regions + r) * I + i] += table[(e * I + i) * C + (int)v];
                        ed[(e * I + i) * C + (int)v] += g[(n * regions + r) * I + i];
                    }
                }
        using var xb = Up(x);
        using var tb = Up(table);
        using var sb = Up(start);
        using var vb = Up(ev);
        using var rb = Up(er);
        using var gb = Up(g);
        using var yb = Nan(ey.Length);
        using var db = Nan(ed.Length);
        var leaves = new SpnLeafMap(sb, vb, rb, vars, regions, E);
        S.SpnLeafCategorical(xb, batch, leaves, tb, I, C, yb);
        S.SpnLeafCategoricalBackward(xb, batch, leaves, gb, I, C, db);
        KernelAssert.Close(ey, Slice(yb.ToArray(), ey.Length), new Tolerance(1e-5, 1e-5), $"SpnLeafCategorical {batch}x{vars} I={I} C={C}");
        KernelAssert.Close(ed, Slice(db.ToArray(), ed.Length), new Tolerance(1e-5, 1e-5), "SpnLeafCategoricalBackward");
    }

    /// <summary>Gaussian leaf forward and both parameter gradients against the host loops.</summary>
    [Theory, MemberData(nameof(LeafCases))]
    public void LeafGaussian_MatchesReference(int batch, int vars, int I, int _, int regions)
    {
        var rng = new Random(batch * 17 + vars);
        var (start, ev, er) = Layout(rng, vars, regions);
        int E = ev.Length;
        var x = Uniform(rng, (long)batch * vars, -2, 2);
        for (int i = 0; i < x.Length; i++) if (rng.NextDouble() < 0.2) x[i] = float.NaN;
        var mean = Uniform(rng, (long)E * I, -1, 1);
        var ls = Uniform(rng, (long)E * I, -0.5, 0.5);
        var g = Uniform(rng, (long)batch * regions * I, -1, 1);
        var ey = new double[batch * regions * I];
        var edm = new double[E * I];
        var eds = new double[E * I];
        for (int n = 0; n < batch; n++)
            for (int r = 0; r < regions; r++)
                for (int e = start[r]; e < start[r + 1]; e++)
                {
                    double v = x[n * vars + ev[e]];
                    if (double.IsNaN(v)) continue;
                    for (int i = 0; i < I; i++)
                    {
                        int o = e * I + i;
                        double inv = Math.Exp(-ls[o]), z = (v - mean[o]) * inv;
                        double gg = g[(n * regions + r) * I + i];
                        ey[(n * regions + r) * I + i] += -0.5 * z * z - ls[o] - 0.5 * Math.Log(2 * Math.PI);
                        edm[o] += gg * z * inv;
                        eds[o] += gg * (z * z - 1);
                    }
                }
        using var xb = Up(x);
        using var mb = Up(mean);
        using var lb = Up(ls);
        using var sb = Up(start);
        using var vb = Up(ev);
        using var rb = Up(er);
        using var gb = Up(g);
        using var yb = Nan(ey.Length);
        using var dmb = Nan(edm.Length);
        using var dsb = Nan(eds.Length);
        var leaves = new SpnLeafMap(sb, vb, rb, vars, regions, E);
        S.SpnLeafGaussian(xb, batch, leaves, new SpnGaussianLeaves(mb, lb), I, yb);
        S.SpnLeafGaussianBackward(xb, batch, leaves, new SpnGaussianLeaves(mb, lb), I, gb, new SpnGaussianLeaves(dmb, dsb));
        var tol = new Tolerance(1e-4, 1e-4);
        KernelAssert.Close(ey, Slice(yb.ToArray(), ey.Length), tol, "SpnLeafGaussian");
        KernelAssert.Close(edm, Slice(dmb.ToArray(), edm.Length), tol, "SpnLeafGaussianBackward dMean");
        KernelAssert.Close(eds, Slice(dsb.ToArray(), eds.Length), tol, "SpnLeafGaussianBackward dLogStd");
    }

    /// <summary>(batch, aRegions, k1, bRegions, k2, regions).</summary>
    public static IEnumerable<object[]> ProductCases() =>
    [
        [1, 1, 1, 1, 1, 1],
        [3, 4, 2, 4, 3, 2],
        [5, 7, 5, 3, 2, 11],
        [2, 16, 10, 16, 10, 8],
        [2, 3, 4, 3, 37, 2],
    ];

    /// <summary>Product forward (outer sum) and both sides' backward (with children shared by several parents, and unused ones).</summary>
    [Theory, MemberData(nameof(ProductCases))]
    public void Product_MatchesReference(int batch, int ra, int k1, int rb, int k2, int regions)
    {
        var rng = new Random(batch + 100 * regions);
        var left = Enumerable.Range(0, regions).Select(_ => rng.Next(ra)).ToArray();
        var right = Enumerable.Range(0, regions).Select(_ => rng.Next(rb)).ToArray();
        var a = Uniform(rng, (long)batch * ra * k1, -10, 0);
        var b = Uniform(rng, (long)batch * rb * k2, -10, 0);
        var g = Uniform(rng, (long)batch * regions * k1 * k2, -1, 1);
        int kk = k1 * k2;
        var ey = new double[batch * regions * kk];
        var eda = new double[a.Length];
        var edb = new double[b.Length];
        for (int n = 0; n < batch; n++)
            for (int r = 0; r < regions; r++)
                for (int i = 0; i < k1; i++)
                    for (int j = 0; j < k2; j++)
                    {
                        int t = (n * regions + r) * kk + i * k2 + j;
                        ey[t] = (double)a[(n * ra + left[r]) * k1 + i] + b[(n * rb + right[r]) * k2 + j];
                        eda[(n * ra + left[r]) * k1 + i] += g[t];
                        edb[(n * rb + right[r]) * k2 + j] += g[t];
                    }
        (int[] S, int[] P) Inv(int[] child, int count)
        {
            var s = new int[count + 1];
            foreach (var c in child) s[c + 1]++;
            for (int c = 0; c < count; c++) s[c + 1] += s[c];
            var f = (int[])s.Clone();
            var p = new int[child.Length];
            for (int r = 0; r < child.Length; r++) p[f[child[r]]++] = r;
            return (s, p);
        }
        var (ls, lp) = Inv(left, ra);
        var (rs, rp) = Inv(right, rb);
        using var ab = Up(a);
        using var bb = Up(b);
        using var lb = Up(left);
        using var rbuf = Up(right);
        using var gb = Up(g);
        using var lsb = Up(ls);
        using var lpb = Up(lp);
        using var rsb = Up(rs);
        using var rpb = Up(rp);
        using var yb = Nan(ey.Length);
        using var dab = Nan(eda.Length);
        using var dbb = Nan(edb.Length);
        var map = new SpnProductMap(new SpnChildMap(lb, lsb, lpb, ra), new SpnChildMap(rbuf, rsb, rpb, rb), regions);
        S.SpnProduct(ab, k1, bb, k2, batch, map, yb);
        S.SpnProductBackward(gb, batch, map, k1, k2, SpnSide.Left, dab);
        S.SpnProductBackward(gb, batch, map, k1, k2, SpnSide.Right, dbb);
        KernelAssert.Close(ey, Slice(yb.ToArray(), ey.Length), new Tolerance(1e-6, 1e-6), "SpnProduct");
        var tol = new Tolerance(1e-5, 1e-5);
        KernelAssert.Close(eda, Slice(dab.ToArray(), eda.Length), tol, "SpnProductBackward left");
        KernelAssert.Close(edb, Slice(dbb.ToArray(), edb.Length), tol, "SpnProductBackward right");
    }

    /// <summary>(batch, child regions, k, regions).</summary>
    public static IEnumerable<object[]> ProductBothCases() =>
    [
        [1, 1, 1, 1],
        [3, 4, 3, 2],
        [5, 7, 5, 11],
        [2, 16, 10, 8],
        [2, 3, 37, 5],
        [1, 2, 1031, 3],
    ];

    /// <summary>
    /// One input on both sides: the Both backward equals the Left result plus the Right result bit for bit (children
    /// shared by several parents, unused children, long rows).
    /// </summary>
    [Theory, MemberData(nameof(ProductBothCases))]
    public void ProductBackwardBoth_IsLeftPlusRightBitForBit(int batch, int childRegions, int k, int regions)
    {
        var rng = new Random(7 * batch + 13 * regions + k);
        var left = Enumerable.Range(0, regions).Select(_ => rng.Next(childRegions)).ToArray();
        var right = Enumerable.Range(0, regions).Select(_ => rng.Next(childRegions)).ToArray();
        var g = Uniform(rng, (long)batch * regions * k * k, -1, 1);
        // The layout the product op uses builds the inverse lists (the product test above checks them independently).
        using var layout = new SpnProductLayout(left, childRegions, right, childRegions);
        var map = layout.Map(Device);
        using var gb = Up(g);
        long length = (long)batch * childRegions * k;
        using var dl = Nan(length);
        using var dr = Nan(length);
        using var both = Nan(length);
        S.SpnProductBackward(gb, batch, map, k, k, SpnSide.Left, dl);
        S.SpnProductBackward(gb, batch, map, k, k, SpnSide.Right, dr);
        S.SpnProductBackward(gb, batch, map, k, k, SpnSide.Both, both);
        var l = dl.ToArray();
        var r = dr.ToArray();
        var got = both.ToArray();
        for (long i = 0; i < length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(l[i] + r[i]) == BitConverter.SingleToInt32Bits(got[i]),
                $"SpnProductBackward Both at {i}: {got[i]:R}, left + right = {l[i] + r[i]:R}");
    }

    /// <summary>Both sides of one call need one input: different k or child regions throw, naming the op, and write nothing.</summary>
    [Fact]
    public void ProductBackwardBoth_RejectsTwoDifferentInputs()
    {
        using var child2 = Up(new[] { 0, 1 });
        using var child1 = Up(new[] { 0, 0 });
        using var start2 = Up(new[] { 0, 1, 2 });
        using var start1 = Up(new[] { 0, 2 });
        using var parents = Up(new[] { 0, 1 });
        using var g = Up(new float[2 * 2 * 3]);
        using var d = Nan(2 * 2);
        var twoChildren = new SpnChildMap(child2, start2, parents, 2);
        var oneChild = new SpnChildMap(child1, start1, parents, 1);
        var kDiffers = Assert.Throws<ArgumentException>(() =>
            S.SpnProductBackward(g, 1, new SpnProductMap(twoChildren, twoChildren, 2), 2, 3, SpnSide.Both, d));
        Assert.Contains("SpnProductBackward", kDiffers.Message);
        Assert.Contains("k1 2, k2 3", kDiffers.Message);
        var regionsDiffer = Assert.Throws<ArgumentException>(() =>
            S.SpnProductBackward(g, 1, new SpnProductMap(twoChildren, oneChild, 2), 2, 2, SpnSide.Both, d));
        Assert.Contains("2 left and 1 right child regions", regionsDiffer.Message);
        Assert.All(d.ToArray(), v => Assert.True(float.IsNaN(v)));
    }

    /// <summary>(batch, regions, kIn, kOut, input scale).</summary>
    public static IEnumerable<object[]> SumCases() =>
    [
        [1, 1, 1, 1, 1f],
        [3, 2, 5, 3, 5f],
        [4, 3, 17, 2, 30f],
        [2, 5, 100, 10, 10f],
        [5, 1, 37, 1, 1e4f],
    ];

    private static (double[] Y, double[] Dx, double[] Dw) SumReference(float[] x, float[] w, float[] g, int batch, int regions, int kIn, int kOut, bool max)
    {
        var y = new double[batch * regions * kOut];
        var dx = new double[x.Length];
        var dw = new double[w.Length];
        for (int n = 0; n < batch; n++)
            for (int r = 0; r < regions; r++)
                for (int o = 0; o < kOut; o++)
                {
                    double m = double.NegativeInfinity;
                    for (int k = 0; k < kIn; k++) m = Math.Max(m, (double)x[(n * regions + r) * kIn + k] + w[(r * kOut + o) * kIn + k]);
                    int yi = (n * regions + r) * kOut + o;
                    if (max || double.IsNegativeInfinity(m)) { y[yi] = m; continue; }
                    double s = 0;
                    for (int k = 0; k < kIn; k++) s += Math.Exp((double)x[(n * regions + r) * kIn + k] + w[(r * kOut + o) * kIn + k] - m);
                    y[yi] = m + Math.Log(s);
                    for (int k = 0; k < kIn; k++)
                    {
                        double p = Math.Exp((double)x[(n * regions + r) * kIn + k] + w[(r * kOut + o) * kIn + k] - y[yi]) * g[yi];
                        dx[(n * regions + r) * kIn + k] += p;
                        dw[(r * kOut + o) * kIn + k] += p;
                    }
                }
        return (y, dx, dw);
    }

    /// <summary>
    /// Sum forward (log-sum-exp and max) and backward; inputs scaled up to 1e4 in magnitude (log-densities near -1e4)
    /// and a row of -∞ (zero probability) must stay finite or exactly -∞, never NaN.
    /// </summary>
    [Theory, MemberData(nameof(SumCases))]
    public void Sum_MatchesReference(int batch, int regions, int kIn, int kOut, float scale)
    {
        var rng = new Random(kIn * 7 + batch);
        var x = Uniform(rng, (long)batch * regions * kIn, -scale, 0);
        if (x.Length >= 2 * kIn) for (int k = 0; k < kIn; k++) x[kIn + k] = float.NegativeInfinity; // one all -∞ row
        var w = Uniform(rng, (long)regions * kOut * kIn, -scale, 0);
        var g = Uniform(rng, (long)batch * regions * kOut, -1, 1);
        using var xb = Up(x);
        using var wb = Up(w);
        using var gb = Up(g);
        foreach (var max in new[] { false, true })
        {
            var (ey, edx, edw) = SumReference(x, w, g, batch, regions, kIn, kOut, max);
            using var yb = Nan(ey.Length);
            S.SpnSum(xb, wb, new SpnSumSize(batch, regions, kIn, kOut), max, yb);
            var y = Slice(yb.ToArray(), ey.Length);
            KernelAssert.Close(ey, y, i => 1e-5 * Math.Abs(ey[i]) + 2e-5 * Math.Max(1, Math.Log(kIn)), $"SpnSum max={max} {batch}x{regions}x{kIn}->{kOut} scale {scale}");
            Assert.DoesNotContain(y, float.IsNaN);
            if (max) continue;
            using var dxb = Nan(edx.Length);
            using var dwb = Nan(edw.Length);
            S.SpnSumBackward(xb, wb, yb, gb, new SpnSumSize(batch, regions, kIn, kOut), dxb, dwb);
            // Posteriors are in [0, 1]: the error scale is a few ulps of the largest |x + w| (through exp of a difference).
            double tol = 1e-6 * Math.Max(1, scale) * 4 + 1e-5;
            var dx = Slice(dxb.ToArray(), edx.Length);
            var dw = Slice(dwb.ToArray(), edw.Length);
            KernelAssert.Close(edx, dx, _ => tol * kOut, "SpnSumBackward dx");
            KernelAssert.Close(edw, dw, _ => tol * batch, "SpnSumBackward dLogW");
        }
    }
}

/// <summary>The SPN kernels on the SIMD CPU kernel set.</summary>
public sealed class CpuSpnKernelTests : SpnKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>The SPN kernels on the ILGPU kernel set (CPU emulator; tiny shapes).</summary>
[Collection("ilgpu")]
public sealed class IlgpuSpnKernelTests : SpnKernelTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;
}

/// <summary>The composite SPN layers over the CPU set's core ops.</summary>
public sealed class CpuCompositeSpnKernelTests : SpnKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override ISpnKernels S => CoreOnlyKernelSet.Of(Device.Kernels).SpnKernels();
}

/// <summary>The composite SPN layers over the ILGPU set's core ops (CPU emulator; tiny shapes).</summary>
[Collection("ilgpu")]
public sealed class IlgpuCompositeSpnKernelTests : SpnKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override ISpnKernels S => CoreOnlyKernelSet.Of(Device.Kernels).SpnKernels();
}
