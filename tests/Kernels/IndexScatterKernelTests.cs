using Engine.Kernels;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="IIndexScatterKernels.IndexScatter"/>: an index-add into zeros in one call. On every axis position,
/// repeated and unused indices, an empty index, and (CPU) both ways the set splits the work, y (pre-filled with NaN) is
/// bit for bit the set's own <see cref="IKernelSet.Fill"/> with zero followed by <see cref="IKernelSet.IndexAdd"/>, and
/// agrees with a host scatter in double. Bad calls throw naming the method before anything is written. Written once,
/// run per kernel set, CPU width and ILGPU launch shape.
/// </summary>
public abstract class IndexScatterKernelTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    private IIndexScatterKernels S => (IIndexScatterKernels)K;

    /// <summary>(y's shape, axis, index length).</summary>
    public static IEnumerable<object[]> Scatters(ShapeTier tier)
    {
        yield return [new[] { 1 }, 0, 1];
        yield return [new[] { 690, 10, 2 }, 2, 1];
        yield return [new[] { 20, 1024, 2 }, 2, 1];
        yield return [new[] { 7, 13 }, 0, 5];
        yield return [new[] { 3, 11, 5 }, 1, 17];
        yield return [new[] { 4, 6 }, 1, 0];
        yield return [new[] { 0, 6 }, 1, 3];
        if (tier == ShapeTier.Full)
        {
            // The CPU set's column split (few outer slices, long rows) and its outer split, past the parallel grain.
            yield return [new[] { 1, 9, 8192 }, 1, 12];
            yield return [new[] { 4096, 33, 1 }, 1, 20];
        }
        for (int seed = 0; seed < 6; seed++)
        {
            var rng = new Random(seed);
            var shape = Enumerable.Range(0, rng.Next(1, 4)).Select(_ => rng.Next(1, 9)).ToArray();
            yield return [shape, rng.Next(shape.Length), rng.Next(0, 12)];
        }
    }

    /// <summary>y has the bits of a zero fill and the index-add; it agrees with a host scatter.</summary>
    [Theory, KernelCases(nameof(Scatters))]
    public void ScatterIsAZeroFillThenTheIndexAdd(int[] yShape, int axis, int indexLength)
    {
        var rng = new Random(yShape.Sum() * 31 + axis * 7 + indexLength);
        var srcShape = (int[])yShape.Clone();
        srcShape[axis] = indexLength;
        long outer = yShape[..axis].Aggregate(1L, (p, d) => p * d), inner = yShape[(axis + 1)..].Aggregate(1L, (p, d) => p * d);
        int extent = yShape[axis];
        var index = Enumerable.Range(0, indexLength).Select(_ => rng.Next(extent)).ToArray();
        var src = Inputs.Uniform(rng, outer * indexLength * inner, -4, 4);
        long n = outer * extent * inner;
        using var sb = DeviceData.Upload(K, src.Length == 0 ? [0f] : src);
        using var ib = DeviceData.Upload(K, index.Length == 0 ? [0] : index);
        using var expected = DeviceData.Filled(K, Math.Max(1, n), float.NaN);
        using var y = DeviceData.Filled(K, Math.Max(1, n), float.NaN);
        if (n > 0) K.Fill(expected, 0f);
        K.IndexAdd(sb, srcShape, axis, ib, expected, yShape);
        S.IndexScatter(sb, srcShape, axis, ib, y, yShape);
        string at = $"[{string.Join(", ", yShape)}] axis {axis}, {indexLength} indices";
        KernelAssert.Bitwise(expected.ToArray(), y.ToArray(), at);
        var host = new double[n];
        for (long o = 0; o < outer; o++)
            for (int j = 0; j < indexLength; j++)
                for (long c = 0; c < inner; c++)
                    host[(o * extent + index[j]) * inner + c] += src[(o * indexLength + j) * inner + c];
        KernelAssert.Close(host, y.ToArray().Take((int)n).ToArray(), new Tolerance(1e-5, 1e-5), $"against the host {at}");
    }

    /// <summary>Bad calls throw naming the method and the values, with nothing written.</summary>
    [Fact]
    public void BadCallsThrowBeforeAnyWork()
    {
        using var src = DeviceData.Filled(K, 3 * 2, 1f);
        using var index = DeviceData.Upload(K, [0, 3]);
        using var outOfRange = DeviceData.Upload(K, [0, 4]);
        using var y = DeviceData.Filled(K, 3 * 4, float.NaN);
        using var shortY = DeviceData.Filled(K, 3 * 4 - 1, float.NaN);
        void Throws(Action call)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Contains(nameof(IIndexScatterKernels.IndexScatter), e.Message);
            foreach (var buffer in new[] { y, shortY }) Assert.All(buffer.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        Throws(() => S.IndexScatter(src, [3, 2], 1, index, y, [2, 4]));
        Throws(() => S.IndexScatter(src, [3, 2], 2, index, y, [3, 4]));
        Throws(() => S.IndexScatter(src, [3, 2], 1, index, shortY, [3, 4]));
        if (K is not Engine.Kernels.Ilgpu.IlgpuKernelSet) Throws(() => S.IndexScatter(src, [3, 2], 1, outOfRange, y, [3, 4]));
    }
}

/// <summary>The CPU set at the machine's widest width, with the large scatters.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuIndexScatterKernelTests : IndexScatterKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;
}

/// <summary>The ILGPU set on the CPU emulator, its default launch shapes.</summary>
[Collection("ilgpu")]
public sealed class IlgpuIndexScatterKernelTests : IndexScatterKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;
}

/// <summary>The ILGPU set with a GPU's launch shapes (256-thread groups).</summary>
[Collection("ilgpu")]
public sealed class IlgpuGpuShapeIndexScatterKernelTests : IndexScatterKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => IlgpuGpuShapeTests.GpuShapes.Value;
}

/// <summary>The CPU set at one forced width, with the large scatters.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuIndexScatterWidthTests : IndexScatterKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuIndexScatterWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuIndexScatterTests512() : CpuIndexScatterWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuIndexScatterTests256() : CpuIndexScatterWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuIndexScatterTests128() : CpuIndexScatterWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuIndexScatterTestsScalar() : CpuIndexScatterWidthTests(SimdWidth.Scalar);
