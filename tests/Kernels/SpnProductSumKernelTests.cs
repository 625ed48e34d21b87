using Engine.Kernels;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="ISpnProductSumKernels.SpnProductSum"/>: an SPN product layer and the sum layer reading it in one call.
/// On random layers (shared and unused children, several partitions per sum region, one output or many, max or
/// log-sum-exp, -∞ children and weights, awkward and long rows), the products and sums are bit for bit the set's own
/// <see cref="ISpnKernels.SpnProduct"/> followed by <see cref="ISpnKernels.SpnSum"/>, with the products stored or not,
/// and the sums agree with a host log-sum-exp in double. Bad calls throw naming the method before anything is written.
/// Written once, run per kernel set, CPU width and ILGPU launch shape.
/// </summary>
public abstract class SpnProductSumKernelTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    private ISpnProductSumKernels F => (ISpnProductSumKernels)K;

    /// <summary>(batch, left child regions, k1, right child regions, k2, sum regions, partitions per sum region, kOut, max).</summary>
    public static IEnumerable<object[]> Layers(ShapeTier tier)
    {
        yield return [1, 1, 1, 1, 1, 1, 1, 1, false];
        yield return [3, 4, 2, 5, 3, 2, 1, 3, false];
        yield return [2, 3, 5, 3, 5, 3, 2, 7, true];
        yield return [5, 7, 3, 2, 7, 1, 5, 1, false];
        yield return [4, 8, 10, 8, 10, 4, 1, 10, false];
        yield return [2, 2, 37, 3, 2, 2, 3, 2, false];
        yield return [1, 1, 1, 1, 1031, 1, 1, 3, false];
        yield return [0, 2, 2, 2, 2, 1, 2, 2, false];
        yield return [3, 2, 2, 2, 2, 0, 2, 2, false];
        if (tier == ShapeTier.Full)
        {
            // An SPN's layers, past the CPU set's parallel grain.
            yield return [64, 80, 10, 80, 10, 40, 1, 10, false];
            yield return [64, 20, 10, 20, 10, 1, 10, 1, false];
        }
        for (int seed = 0; seed < 6; seed++)
        {
            var rng = new Random(seed);
            yield return [rng.Next(1, 6), rng.Next(1, 5), rng.Next(1, 6), rng.Next(1, 5), rng.Next(1, 6), rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 6),
                rng.Next(4) == 0];
        }
    }

    /// <summary>Products and sums with the bits of the two calls; sums against a host log-sum-exp.</summary>
    [Theory, KernelCases(nameof(Layers))]
    public void ProductsAndSumsAreTheTwoCallsBitForBit(int batch, int aRegions, int k1, int bRegions, int k2, int regions, int partitions, int kOut, bool max)
    {
        var rng = new Random(batch + 7 * aRegions + 31 * k1 + 101 * k2 + 1009 * regions + 7919 * partitions);
        int kk = k1 * k2, kIn = partitions * kk, productRegions = regions * partitions;
        var left = Enumerable.Range(0, productRegions).Select(_ => rng.Next(aRegions)).ToArray();
        var right = Enumerable.Range(0, productRegions).Select(_ => rng.Next(bRegions)).ToArray();
        var a = WithNegativeInfinity(rng, Inputs.Uniform(rng, (long)batch * aRegions * k1, -12, 0));
        var b = WithNegativeInfinity(rng, Inputs.Uniform(rng, (long)batch * bRegions * k2, -12, 0));
        var w = WithNegativeInfinity(rng, Inputs.Uniform(rng, (long)regions * kOut * kIn, -6, 0));
        using var ab = DeviceData.Upload(K, a);
        using var bb = DeviceData.Upload(K, b);
        using var wb = DeviceData.Upload(K, w);
        var (leftMap, leftBuffers) = ChildMap(left, aRegions);
        var (rightMap, rightBuffers) = ChildMap(right, bRegions);
        var map = new SpnProductMap(leftMap, rightMap, productRegions);
        var size = new SpnSumSize(batch, regions, kIn, kOut);
        long np = (long)batch * productRegions * kk, ny = (long)batch * regions * kOut;
        using var expectedProducts = DeviceData.Filled(K, Math.Max(1, np), float.NaN);
        using var expectedSums = DeviceData.Filled(K, Math.Max(1, ny), float.NaN);
        using var products = DeviceData.Filled(K, Math.Max(1, np), float.NaN);
        using var sums = DeviceData.Filled(K, Math.Max(1, ny), float.NaN);
        using var unstored = DeviceData.Filled(K, Math.Max(1, ny), float.NaN);
        try
        {
            var spn = K.SpnKernels();
            spn.SpnProduct(ab, k1, bb, k2, batch, map, expectedProducts);
            spn.SpnSum(expectedProducts, wb, size, max, expectedSums);
            F.SpnProductSum(ab, k1, bb, k2, map, wb, size, max, products, sums);
            F.SpnProductSum(ab, k1, bb, k2, map, wb, size, max, null, unstored);
            string at = $"[{batch}, {aRegions}, {k1}, {bRegions}, {k2}, {regions}, {partitions}, {kOut}, {max}]";
            KernelAssert.Bitwise(expectedProducts.ToArray(), products.ToArray(), $"products {at}");
            KernelAssert.Bitwise(expectedSums.ToArray(), sums.ToArray(), $"sums {at}");
            KernelAssert.Bitwise(expectedSums.ToArray(), unstored.ToArray(), $"sums, products not stored {at}");
            var reference = HostSums(a, b, w, left, right, batch, aRegions, k1, bRegions, k2, regions, kIn, kOut, max);
            KernelAssert.Close(reference, sums.ToArray().Take((int)ny).ToArray(), new Tolerance(1e-5, 1e-5), $"sums against the host {at}");
        }
        finally
        {
            foreach (var buffer in leftBuffers.Concat(rightBuffers)) buffer.Dispose();
        }
    }

    /// <summary>Bad calls throw naming the method and the values, with nothing written.</summary>
    [Fact]
    public void BadCallsThrowBeforeAnyWork()
    {
        using var a = DeviceData.Filled(K, 2 * 3 * 2, -1f);
        using var b = DeviceData.Filled(K, 2 * 3 * 3, -1f);
        using var w = DeviceData.Filled(K, 2 * 4 * 6, -1f);
        using var products = DeviceData.Filled(K, 2 * 2 * 6, float.NaN);
        using var y = DeviceData.Filled(K, 2 * 2 * 4, float.NaN);
        using var shortY = DeviceData.Filled(K, 2 * 2 * 4 - 1, float.NaN);
        var (leftMap, leftBuffers) = ChildMap([0, 2], 3);
        var (rightMap, rightBuffers) = ChildMap([1, 1], 3);
        var map = new SpnProductMap(leftMap, rightMap, 2);
        var size = new SpnSumSize(2, 2, 6, 4);
        void Throws(Action call, string fragment)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Contains(nameof(ISpnProductSumKernels.SpnProductSum), e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var buffer in new[] { products, y, shortY }) Assert.All(buffer.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        try
        {
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size with { KIn = 4 }, false, products, y), "must be whole partitions");
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size with { Regions = 1 }, false, products, y), "must be whole partitions");
            Throws(() => F.SpnProductSum(a, 0, b, 3, map, w, size, false, products, y), "k1 and k2 must be positive; got 0 and 3");
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size with { KOut = -1 }, false, products, y), "must be non-negative");
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size, false, products, shortY), "y holds 15 elements; the call needs 16");
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size with { Batch = 3 }, false, products, y), "a holds 12 elements; the call needs 18");
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size, false, y, y), "y is product");
            Throws(() => F.SpnProductSum(a, 2, b, 3, map, w, size, false, a, y), "product is a");
        }
        finally
        {
            foreach (var buffer in leftBuffers.Concat(rightBuffers)) buffer.Dispose();
        }
    }

    /// <summary>About one value in twelve set to -∞ (a probability of 0).</summary>
    private static float[] WithNegativeInfinity(Random rng, float[] values)
    {
        for (int i = 0; i < values.Length; i++)
            if (rng.Next(12) == 0) values[i] = float.NegativeInfinity;
        return values;
    }

    /// <summary>One side's map: the child of each region and the inverse lists.</summary>
    private (SpnChildMap Map, DeviceBuffer<int>[] Buffers) ChildMap(int[] child, int childRegions)
    {
        var start = new int[childRegions + 1];
        foreach (var c in child) start[c + 1]++;
        for (int c = 0; c < childRegions; c++) start[c + 1] += start[c];
        var next = (int[])start.Clone();
        var parents = new int[child.Length];
        for (int r = 0; r < child.Length; r++) parents[next[child[r]]++] = r;
        var buffers = new[] { DeviceData.Upload(K, child), DeviceData.Upload(K, start), DeviceData.Upload(K, parents) };
        return (new SpnChildMap(buffers[0], buffers[1], buffers[2], childRegions), buffers);
    }

    /// <summary>y[n, r, o] = log Σ_k exp(x + w) (or the max) in double, with x the products of region r's partitions.</summary>
    private static double[] HostSums(float[] a, float[] b, float[] w, int[] left, int[] right, int batch, int aRegions, int k1, int bRegions, int k2,
        int regions, int kIn, int kOut, bool max)
    {
        int kk = k1 * k2, partitions = kIn / kk;
        var y = new double[batch * regions * kOut];
        for (int n = 0; n < batch; n++)
            for (int r = 0; r < regions; r++)
                for (int o = 0; o < kOut; o++)
                {
                    var terms = Enumerable.Range(0, kIn).Select(k =>
                    {
                        int region = r * partitions + k / kk, i = k % kk / k2, j = k % kk % k2;
                        return (double)a[(n * aRegions + left[region]) * k1 + i] + b[(n * bRegions + right[region]) * k2 + j]
                            + w[((long)r * kOut + o) * kIn + k];
                    }).ToArray();
                    double m = terms.Length == 0 ? double.NegativeInfinity : terms.Max();
                    y[(n * regions + r) * kOut + o] = max || double.IsNegativeInfinity(m) ? m : m + Math.Log(terms.Sum(t => Math.Exp(t - m)));
                }
        return y;
    }
}

/// <summary>The CPU set at the machine's widest width, with the large layers.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuSpnProductSumKernelTests : SpnProductSumKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;
}

/// <summary>The ILGPU set on the CPU emulator, its default launch shapes.</summary>
[Collection("ilgpu")]
public sealed class IlgpuSpnProductSumKernelTests : SpnProductSumKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;
}

/// <summary>The ILGPU set with a GPU's launch shapes (256-thread groups).</summary>
[Collection("ilgpu")]
public sealed class IlgpuGpuShapeSpnProductSumKernelTests : SpnProductSumKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => IlgpuGpuShapeTests.GpuShapes.Value;
}

/// <summary>The CPU set at one forced width, with the large layers.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuSpnProductSumWidthTests : SpnProductSumKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuSpnProductSumWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuSpnProductSumTests512() : CpuSpnProductSumWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuSpnProductSumTests256() : CpuSpnProductSumWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuSpnProductSumTests128() : CpuSpnProductSumWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuSpnProductSumTestsScalar() : CpuSpnProductSumWidthTests(SimdWidth.Scalar);
