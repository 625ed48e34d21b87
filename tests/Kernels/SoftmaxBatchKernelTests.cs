using Engine.Kernels;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="ISoftmaxBatchKernels.Softmaxes"/>: independent softmaxes in one call (an SPN's weight and leaf-table
/// log-normalisations, scaled down, and random mixes of contiguous and strided axes, log or not, in place or not,
/// empty ones, lines long enough for the ILGPU group kernel, more calls than one ILGPU launch holds). Each result is bit
/// for bit the set's own <see cref="IKernelSet.Softmax"/> of that call alone; results are pre-filled with NaN. Bad
/// batches throw naming the method before anything is written. Written once, run per kernel set, CPU width and ILGPU
/// launch shape.
/// </summary>
public abstract class SoftmaxBatchKernelTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    private ISoftmaxBatchKernels B => (ISoftmaxBatchKernels)K;

    /// <summary>[outer, axisLength, inner, log, in place] per call, per batch.</summary>
    public static IEnumerable<object[]> Batches(ShapeTier tier)
    {
        // An SPN's: the leaf table over two categories, then its sum layers' weights.
        yield return [new[] { new[] { 690, 2, 1, 1, 0 }, [1, 1000, 1, 1, 0], [20, 100, 1, 1, 0], [40, 100, 1, 1, 0] }];
        yield return [new[] { new[] { 3, 5, 7, 0, 0 }, [1, 1, 1, 1, 1], [0, 4, 2, 0, 0], [2, 300, 1, 0, 1], [5, 3, 257, 1, 0] }];
        // Long lines (the ILGPU group kernel) beside short ones; more calls than one ILGPU launch takes.
        yield return [new[] { new[] { 2, 1031, 1, 1, 0 }, [7, 13, 1, 0, 0], [1, 4099, 1, 0, 1], [3, 3, 3, 1, 0] }];
        yield return [Enumerable.Range(0, 11).Select(i => new[] { 1 + i, 2 + 3 * i, 1 + i % 3, i % 2, i % 4 == 0 ? 1 : 0 }).ToArray()];
        if (tier == ShapeTier.Full)
        {
            // Past the CPU set's parallel grain, both kinds of axis.
            yield return [new[] { new[] { 4096, 64, 1, 1, 0 }, [64, 128, 300, 0, 0], [1, 70001, 1, 1, 1] }];
        }
        for (int seed = 0; seed < 8; seed++)
        {
            var rng = new Random(seed);
            yield return [Enumerable.Range(0, rng.Next(2, 6)).Select(_ => new[] { rng.Next(0, 9), rng.Next(1, 40), rng.Next(1, 5), rng.Next(2), rng.Next(2) }).ToArray()];
        }
    }

    /// <param name="spec">Per call: outer, axis length, inner, log (1) and in place (1).</param>
    [Theory, KernelCases(nameof(Batches))]
    public void EachResultIsItsSoftmaxAlone(int[][] spec)
    {
        var rng = new Random(spec.Length * 31 + spec[0][1]);
        var hosts = spec.Select(c => Inputs.Uniform(rng, (long)c[0] * c[1] * c[2], -8, 8)).ToArray();
        var expected = new List<float[]>();
        for (int i = 0; i < spec.Length; i++)
        {
            using var x = DeviceData.Upload(K, hosts[i]);
            using var y = DeviceData.Filled(K, hosts[i].Length, float.NaN);
            K.Softmax(x, y, spec[i][0], spec[i][1], spec[i][2], spec[i][3] == 1);
            expected.Add(y.ToArray());
        }
        var xs = hosts.Select(h => DeviceData.Upload(K, h)).ToList();
        var ys = spec.Select((c, i) => c[4] == 1 ? xs[i] : DeviceData.Filled(K, hosts[i].Length, float.NaN)).ToList();
        try
        {
            B.Softmaxes(spec.Select((c, i) => new SoftmaxCall(xs[i], ys[i], c[0], c[1], c[2], c[3] == 1)).ToList());
            for (int i = 0; i < spec.Length; i++)
                KernelAssert.Bitwise(expected[i], ys[i].ToArray(), $"call {i} of {spec.Length}: [{string.Join(", ", spec[i])}]");
        }
        finally
        {
            foreach (var b in xs.Concat(ys).Distinct()) b.Dispose();
        }
    }

    /// <summary>Bad batches throw naming the method and the values, with no result written.</summary>
    [Fact]
    public void BadBatchesThrowBeforeAnyWork()
    {
        using var x = DeviceData.Filled(K, 12, 1f);
        using var x2 = DeviceData.Filled(K, 12, 1f);
        using var y = DeviceData.Filled(K, 12, float.NaN);
        using var y2 = DeviceData.Filled(K, 12, float.NaN);
        using var shortY = DeviceData.Filled(K, 11, float.NaN);
        void Throws(IReadOnlyList<SoftmaxCall> calls, string fragment)
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => B.Softmaxes(calls));
            Assert.Contains(nameof(ISoftmaxBatchKernels.Softmaxes), e.Message);
            Assert.Contains(fragment, e.Message);
            foreach (var b in new[] { y, y2, shortY }) Assert.All(b.ToArray(), v => Assert.True(float.IsNaN(v)));
        }
        Throws([], "no calls");
        Throws([new(x, y, 3, 4, 1, true), new(x2, y2, 3, -4, 1, true)], "call 1 has a negative extent in [3, -4, 1]");
        Throws([new(x, y, 3, 4, 1, true), new(x2, shortY, 3, 4, 1, false)], "call 1 over [3, 4, 1] needs 12 elements; x holds 12, y 11");
        Throws([new(x, y, 3, 4, 1, true), new(y, y2, 3, 4, 1, true)], "call 0's y is call 1's x");
        Throws([new(x, y, 3, 4, 1, true), new(x2, y, 3, 4, 1, true)], "call 0's y is call 1's y");
    }
}

/// <summary>The CPU set at the machine's widest width, with the large batch.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuSoftmaxBatchKernelTests : SoftmaxBatchKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;
}

/// <summary>The ILGPU set on the CPU emulator, its default launch shapes.</summary>
[Collection("ilgpu")]
public sealed class IlgpuSoftmaxBatchKernelTests : SoftmaxBatchKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;
}

/// <summary>The ILGPU set with a GPU's launch shapes (256-thread groups, warp shuffles).</summary>
[Collection("ilgpu")]
public sealed class IlgpuGpuShapeSoftmaxBatchKernelTests : SoftmaxBatchKernelTests
{
    /// <inheritdoc />
    protected override IKernelSet K => IlgpuGpuShapeTests.GpuShapes.Value;
}

/// <summary>The CPU set at one forced width, with the large batch.</summary>
[ShapeTier(ShapeTier.Full)]
public abstract class CpuSoftmaxBatchWidthTests : SoftmaxBatchKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuSoftmaxBatchWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuSoftmaxBatchTests512() : CpuSoftmaxBatchWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuSoftmaxBatchTests256() : CpuSoftmaxBatchWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuSoftmaxBatchTests128() : CpuSoftmaxBatchWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuSoftmaxBatchTestsScalar() : CpuSoftmaxBatchWidthTests(SimdWidth.Scalar);
