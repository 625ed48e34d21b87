using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// GEMM operands read through maps whose entries leave their matrix (<see cref="GemmOperand.IndexBound"/>): matrix p
/// of an operand is the gather X[p · S + J[o]] of a larger buffer X. A mapped product equals the plain product of
/// the gathered operands, bit for bit on sets that say so (<see cref="IGemmGatherKernels"/>), within the GEMM
/// tolerance of the host reference elsewhere; maps and bounds that would read past the buffer are rejected before
/// anything is written. Written once, run per kernel set.
/// </summary>
public abstract class GemmGatherTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    /// <summary>The size knob of the case table.</summary>
    protected ShapeTier Tier => KernelSetTests.TierOf(GetType());

    /// <summary>How an operand's matrices sit in the buffer it is gathered from.</summary>
    public enum Layout
    {
        /// <summary>X is [matrix, batch] and matrix p is a permutation of column p: batch stride 1, entries up to (matrix - 1) · batch.</summary>
        PermutedColumns,
        /// <summary>Random entries (repeats allowed) below twice the matrix size plus 3, batch stride 5.</summary>
        Random,
        /// <summary>Random entries, one matrix shared by the batch (batch stride 0).</summary>
        Shared,
        /// <summary>A map per matrix, matrix + 3 entries apart, random entries; batch stride 2.</summary>
        PerMatrix,
        /// <summary>
        /// Runs of 11 consecutive entries in a shuffled order (a permute keeping its innermost axis): eight consecutive
        /// indices load plainly, runs across a seam gather; batch stride one past the bound.
        /// </summary>
        ShuffledRuns,
    }

    /// <summary>Which operands are gathered.</summary>
    public enum Gathered { A, B, Both }

    /// <summary>Cases: (batch, m, n, k, transA, transB, gathered, layout, alpha, beta).</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        var sizes = new List<(int Batch, int M, int N, int K)> { (1, 1, 1, 1), (3, 1, 7, 13), (1, 13, 1, 7), (3, 6, 10, 15), (2, 31, 67, 5) };
        if (tier == ShapeTier.Full)
        {
            sizes.Add((3, 33, 47, 29));
            sizes.Add((16, 20, 128, 128));   // the FNO's per-mode products: the batch spread over threads
            sizes.Add((1, 257, 263, 301));   // several k slices and row blocks, split over threads
            sizes.Add((2, 64, 3, 40));       // thin C: computed transposed (the roles of A and B swap)
        }
        int row = 0;
        foreach (var (batch, m, n, k) in sizes)
        foreach (var ta in new[] { false, true })
        foreach (var tb in new[] { false, true })
        {
            row++;
            var layout = (Layout)(row % 5);
            var gathered = (Gathered)(row / 3 % 3);
            yield return row % 2 == 0
                ? [batch, m, n, k, ta, tb, gathered, layout, 1f, 0f]
                : [batch, m, n, k, ta, tb, gathered, layout, 0.5f, 2f];
        }
    }

    /// <summary>An operand gathered from a larger buffer: the buffer, the maps, their bound, the batch strides of the buffer and the maps, and the gathered matrices.</summary>
    private sealed record Source(float[] X, int[] Map, long Bound, long Stride, long MapStride, float[] Dense);

    private static Source MakeSource(Random rng, int batch, int matrix, Layout layout)
    {
        int[] map;
        long stride, bound, mapStride = 0;
        if (layout == Layout.PermutedColumns)
        {
            var order = Inputs.Index(IndexPattern.Permutation, matrix, matrix, rng);
            map = order.Select(o => o * batch).ToArray();
            stride = 1;
            bound = (long)(matrix - 1) * batch + 1;
        }
        else if (layout == Layout.ShuffledRuns)
        {
            const int run = 11;
            int runs = (matrix + run - 1) / run;
            var order = Inputs.Index(IndexPattern.Permutation, runs, runs, rng);
            map = Enumerable.Range(0, matrix).Select(o => order[o / run] * run + o % run).ToArray();
            bound = (long)runs * run;
            stride = bound + 1;
        }
        else
        {
            bound = 2L * matrix + 3;
            mapStride = layout == Layout.PerMatrix ? matrix + 3 : 0;
            map = Enumerable.Range(0, (int)((batch - 1) * mapStride + matrix)).Select(_ => rng.Next((int)bound)).ToArray();
            stride = layout switch { Layout.Shared => 0, Layout.PerMatrix => 2, _ => 5 };
        }
        // The buffer ends where the last matrix's bound does: a read past the bound would leave it.
        var x = Inputs.Uniform(rng, (batch - 1) * stride + bound, -1, 1);
        var dense = new float[(long)batch * matrix];
        for (int p = 0; p < batch; p++)
            for (int o = 0; o < matrix; o++)
                dense[(long)p * matrix + o] = x[p * stride + map[p * mapStride + o]];
        return new Source(x, map, bound, stride, mapStride, dense);
    }

    /// <summary>The mapped product equals the product of the gathered operands; C starts NaN (beta 0) or random.</summary>
    [Theory, KernelCases(nameof(Cases))]
    public void MappedProductEqualsGatherThenProduct(int batch, int m, int n, int k, bool transA, bool transB, Gathered gathered, Layout layout,
        float alpha, float beta)
    {
        var rng = new Random(41 + m * 7 + n * 3 + k);
        int sizeA = m * k, sizeB = k * n, sizeC = m * n;
        var sa = MakeSource(rng, batch, sizeA, gathered == Gathered.B ? Layout.Random : layout);
        var sb = MakeSource(rng, batch, sizeB, gathered == Gathered.A ? Layout.Random : layout);
        bool mapA = gathered != Gathered.B, mapB = gathered != Gathered.A;
        var c = beta == 0 ? Enumerable.Repeat(float.NaN, batch * sizeC).ToArray() : Inputs.Uniform(rng, batch * sizeC, -1, 1);
        var what = $"gather batch={batch} m={m} n={n} k={k} transA={transA} transB={transB} {gathered} {layout} alpha={alpha} beta={beta}";

        using var denseA = DeviceData.Upload(K, sa.Dense);
        using var denseB = DeviceData.Upload(K, sb.Dense);
        using var plainC = DeviceData.Upload(K, c);
        var size = new GemmSize(batch, m, n, k);
        var output = new GemmOutput(plainC, sizeC) { Alpha = alpha, Beta = beta };
        K.Gemm(size, new GemmOperand(denseA, transA, sizeA), new GemmOperand(denseB, transB, sizeB), output);

        using var xa = DeviceData.Upload(K, sa.X);
        using var xb = DeviceData.Upload(K, sb.X);
        using var ja = DeviceData.Upload(K, sa.Map);
        using var jb = DeviceData.Upload(K, sb.Map);
        using var mappedC = DeviceData.Upload(K, c);
        var a = mapA ? new GemmOperand(xa, transA, sa.Stride).WithIndex(ja, sizeA, sa.Bound, sa.MapStride) : new GemmOperand(denseA, transA, sizeA);
        var b = mapB ? new GemmOperand(xb, transB, sb.Stride).WithIndex(jb, sizeB, sb.Bound, sb.MapStride) : new GemmOperand(denseB, transB, sizeB);
        K.Gemm(size, a, b, output with { Buffer = mappedC });

        if (K is IGemmGatherKernels gather && gather.GatherKeepsBits(size, transA, transB))
        {
            KernelAssert.Bitwise(plainC.ToArray(), mappedC.ToArray(), what);
            return;
        }
        var expected = HostReference.Gemm(batch, m, n, k, alpha, sa.Dense, sizeA, transA, sb.Dense, sizeB, transB, beta, c, sizeC, out var magnitude);
        KernelAssert.Close(expected, mappedC.ToArray(), i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i], what);
    }

    /// <summary>A bound whose reads would leave the operand's buffer is rejected, naming the operand, and C is untouched.</summary>
    [Fact]
    public void BoundPastTheBufferIsRejectedBeforeAnyWrite()
    {
        // Two 2 x 3 matrices of A at batch stride 4, read up to 5 past each start: the last read is element 9 of 9.
        using var x = DeviceData.Upload(K, new float[9]);
        using var map = DeviceData.Upload(K, new[] { 0, 1, 2, 3, 4, 5 });
        using var b = DeviceData.Upload(K, new float[6]);
        using var c = DeviceData.Filled(K, 8, float.NaN);
        var size = new GemmSize(2, 2, 2, 3);
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            K.Gemm(size, new GemmOperand(x, false, 4).WithIndex(map, 6, 6), new GemmOperand(b), new GemmOutput(c, 4)));
        Assert.Contains("Gemm", e.Message);
        Assert.Contains("a", e.ParamName);
        Assert.All(c.ToArray(), v => Assert.True(float.IsNaN(v)));
        // One element less and the same product runs.
        K.Gemm(size, new GemmOperand(x, false, 3).WithIndex(map, 6, 6), new GemmOperand(b), new GemmOutput(c, 4));
        Assert.All(c.ToArray(), v => Assert.Equal(0f, v));
    }

    /// <summary>Maps a batch would read past the end of their buffer are rejected, naming the map, and C is untouched.</summary>
    [Fact]
    public void MapsTooShortForTheBatchAreRejectedBeforeAnyWrite()
    {
        // Three 2 x 3 matrices of B, each with its own map 6 entries after the last: 18 entries needed, 17 held.
        using var a = DeviceData.Upload(K, new float[6]);
        using var x = DeviceData.Upload(K, new float[6]);
        using var maps = DeviceData.Upload(K, new int[17]);
        using var c = DeviceData.Filled(K, 12, float.NaN);
        var size = new GemmSize(3, 2, 2, 3);
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            K.Gemm(size, new GemmOperand(a), new GemmOperand(x, true).WithIndex(maps, 6, 0, 6), new GemmOutput(c, 4)));
        Assert.Contains("Gemm", e.Message);
        Assert.Equal("bIndex", e.ParamName);
        Assert.All(c.ToArray(), v => Assert.True(float.IsNaN(v)));
    }

    /// <summary>A negative bound is rejected, naming the operand.</summary>
    [Fact]
    public void NegativeBoundIsRejected()
    {
        using var a = DeviceData.Upload(K, new float[6]);
        using var map = DeviceData.Upload(K, new[] { 0, 1, 2, 3, 4, 5 });
        using var c = DeviceData.Filled(K, 4, float.NaN);
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            K.Gemm(GemmSize.Single(2, 2, 3), new GemmOperand(a), new GemmOperand(a, true).WithIndex(map, 6, -1), new GemmOutput(c)));
        Assert.Contains("negative bound", e.Message);
        Assert.Equal("b", e.ParamName);
        Assert.All(c.ToArray(), v => Assert.True(float.IsNaN(v)));
    }
}

/// <summary>The CPU set (which also checks every entry against its bound), on the full table.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuGemmGatherTests : GemmGatherTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    /// <summary>
    /// Mapped products run the packed GEMM, so their bits match the plain product only where that runs the packed GEMM
    /// too: not on the matrix-vector path (M or N of 1) or the split-depth path (a tall-K weight gradient).
    /// </summary>
    [Theory]
    [InlineData(1, 20, 128, 128, false, false, true)]
    [InlineData(20, 1024, 64, 32, false, false, true)]
    [InlineData(1, 1, 128, 4096, true, false, false)]
    [InlineData(1, 4096, 1, 128, false, true, false)]
    [InlineData(1, 64, 64, 20480, true, false, false)]
    [InlineData(1, 64, 64, 20480, false, false, true)]
    public void MappedProductsKeepTheBitsWherePlainOnesRunThePackedGemm(int batch, int m, int n, int k, bool transA, bool transB, bool keeps) =>
        Assert.Equal(keeps, ((IGemmGatherKernels)K).GatherKeepsBits(new GemmSize(batch, m, n, k), transA, transB));

    /// <summary>An entry at or above its bound is rejected, naming the map, before C is written.</summary>
    [Theory]
    [InlineData(9, 9)]
    [InlineData(-1, 0)]
    [InlineData(6, 0)]
    public void EntryOutsideItsBoundIsRejected(int entry, long bound)
    {
        using var x = DeviceData.Upload(K, new float[20]);
        using var map = DeviceData.Upload(K, new[] { 0, 1, entry, 3, 4, 5 });
        using var b = DeviceData.Upload(K, new float[6]);
        using var c = DeviceData.Filled(K, 4, float.NaN);
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            K.Gemm(GemmSize.Single(2, 2, 3), new GemmOperand(x).WithIndex(map, 6, bound), new GemmOperand(b), new GemmOutput(c)));
        Assert.Contains($"aIndex[2] = {entry}", e.Message);
        Assert.All(c.ToArray(), v => Assert.True(float.IsNaN(v)));
    }
}

/// <summary>The ILGPU set on its CPU emulator, small shapes.</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuGemmGatherTests : GemmGatherTests
{
    /// <inheritdoc />
    protected override IKernelSet K => TestDevices.Ilgpu.Kernels;
}
