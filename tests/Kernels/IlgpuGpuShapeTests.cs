using Engine.Kernels;
using Engine.Kernels.Ilgpu;

namespace Engine.Tests.Kernels;

/// <summary>
/// The ILGPU kernels with the launch shapes a GPU uses (16 x 16 GEMM groups computing 128 x 128 tiles, 256-thread
/// trees, warp shuffles over 32-lane warps, FFT groups of 256), proved on ILGPU's CPU emulator with shapes small enough
/// to stay fast and awkward enough to reach every edge: tiles cut by M, N and K, K larger than M, single elements,
/// reductions split over several groups, long softmax rows, FFTs in shared memory and pass by pass over global memory.
/// (The whole kernel table also runs with these shapes: <c>ENGINE_ILGPU_CPU_PROFILE=gpu dotnet test --filter
/// FullyQualifiedName~IlgpuKernelSetTests</c>, about five minutes.)
/// </summary>
[Collection("ilgpu")]
public sealed class IlgpuGpuShapeTests
{
    /// <summary>The emulator's kernel set with a GPU's launch shapes, shared by the tests that need them.</summary>
    internal static readonly Lazy<IlgpuKernelSet> GpuShapes = new(() =>
        new IlgpuKernelSet(Device.Get(DeviceKind.IlgpuCpu), DeviceKind.IlgpuCpu, IlgpuCpuOptions.GpuShapes));

    /// <summary>GPU shapes with the shared-memory FFT limited to 8 points, so longer transforms run pass by pass.</summary>
    private static readonly Lazy<IlgpuKernelSet> GlobalFft = new(() =>
        new IlgpuKernelSet(Device.Get(DeviceKind.IlgpuCpu), DeviceKind.IlgpuCpu, IlgpuCpuOptions.GpuShapes with { FftSharedMax = 8 }));

    private static IKernelSet K => GpuShapes.Value;

    private static DeviceBuffer<float> Upload(IKernelSet k, float[] data)
    {
        var b = k.Allocate(Math.Max(1, data.Length));
        b.CopyFromHost(data);
        return b;
    }

    private static DeviceBuffer<float> Nans(IKernelSet k, long n) => Upload(k, Enumerable.Repeat(float.NaN, (int)Math.Max(1, n)).ToArray());

    /// <summary>GEMM cases: (m, n, k, transA, transB, batch, shared operand, alpha, beta).</summary>
    public static IEnumerable<object[]> GemmCases()
    {
        // Two 128-tiles cut by M and N, 5 slabs with a partial one, every transpose combination.
        foreach (var ta in new[] { false, true })
        foreach (var tb in new[] { false, true })
            yield return [130, 129, 37, ta, tb, 1, 'n', 1f, 0f];
        // Multiples of 4: the 16-byte vector loads and stores, with a partial column tile and beta.
        yield return [128, 132, 20, false, false, 1, 'n', 1f, 0f];
        yield return [128, 132, 20, true, true, 1, 'n', 0.5f, 2f];
        // K far larger than M and N (38 slabs), single elements, primes.
        yield return [5, 7, 300, false, false, 1, 'n', 1f, 0f];
        yield return [1, 1, 1, false, false, 1, 'n', 1f, 0f];
        yield return [131, 3, 29, false, true, 1, 'n', 1f, 0f];
        // Batched, one operand shared (stride 0), strided C.
        yield return [17, 140, 9, true, false, 3, 'b', 0.5f, 2f];
        yield return [36, 12, 44, false, false, 2, 'a', 1f, 0f];
    }

    /// <summary>The tiled GEMM with 16 x 16 groups against the double reference (NaN in C when beta = 0).</summary>
    [Theory, MemberData(nameof(GemmCases))]
    public void Gemm(int m, int n, int k, bool transA, bool transB, int batch, char shared, float alpha, float beta)
    {
        var rng = new Random(m * 131 + n * 7 + k);
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        long strideA = shared == 'a' ? 0 : sizeA, strideB = shared == 'b' ? 0 : sizeB, strideC = sizeC;
        var a = Inputs.Uniform(rng, shared == 'a' ? sizeA : batch * sizeA, -1, 1);
        var b = Inputs.Uniform(rng, shared == 'b' ? sizeB : batch * sizeB, -1, 1);
        var c = beta == 0 ? Enumerable.Repeat(float.NaN, (int)(batch * sizeC)).ToArray() : Inputs.Uniform(rng, batch * sizeC, -1, 1);
        var expected = HostReference.Gemm(batch, m, n, k, alpha, a, strideA, transA, b, strideB, transB, beta, c, strideC, out var magnitude);
        using var ab = Upload(K, a);
        using var bb = Upload(K, b);
        using var cb = Upload(K, c);
        K.Gemm(new GemmSize(batch, m, n, k), new GemmOperand(ab, transA, strideA), new GemmOperand(bb, transB, strideB),
            new GemmOutput(cb, strideC) { Alpha = alpha, Beta = beta });
        KernelAssert.Close(expected, cb.ToArray(), i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i],
            $"Gemm {m}x{n}x{k} transA={transA} transB={transB} batch={batch}");
    }

    /// <summary>The mapped GEMM (index maps on A, B and C) with 16 x 16 groups (64 x 64 tiles) across two tiles.</summary>
    [Fact]
    public void GemmIndexed()
    {
        const int m = 70, n = 33, k = 19;
        var rng = new Random(5);
        var a = Inputs.Uniform(rng, m * k, -1, 1);
        var b = Inputs.Uniform(rng, k * n, -1, 1);
        var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
        int[] ma = Inputs.Index(IndexPattern.Permutation, m * k, m * k, rng);
        int[] mb = Inputs.Index(IndexPattern.Permutation, k * n, k * n, rng);
        int[] mc = Inputs.Index(IndexPattern.Permutation, m * n, m * n, rng);
        var expected = HostReference.GemmIndexed(1, m, n, k, 1f, a, m * k, false, ma, b, k * n, true, mb, 0f, c, m * n, mc, out var magnitude);
        using var ab = Upload(K, a);
        using var bb = Upload(K, b);
        using var cb = Upload(K, c);
        using var mab = K.AllocateInt(ma.Length);
        using var mbb = K.AllocateInt(mb.Length);
        using var mcb = K.AllocateInt(mc.Length);
        mab.CopyFromHost(ma);
        mbb.CopyFromHost(mb);
        mcb.CopyFromHost(mc);
        K.Gemm(GemmSize.Single(m, n, k), new GemmOperand(ab, false, m * k).WithIndex(mab, ma.Length),
            new GemmOperand(bb, true, k * n).WithIndex(mbb, mb.Length), new GemmOutput(cb, m * n).WithIndex(mcb, mc.Length));
        KernelAssert.Close(expected, cb.ToArray(), i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i], "GemmIndexed 70x33x19");
    }

    /// <summary>Reduce cases: (shape, axes, op): long reductions split over groups, and many outputs.</summary>
    public static IEnumerable<object[]> ReduceCases()
    {
        foreach (var op in Enum.GetValues<ReduceOp>()) yield return [new[] { 20_000 }, new[] { 0 }, op];
        yield return [new[] { 3, 5_000 }, new[] { 1 }, ReduceOp.Sum];
        yield return [new[] { 4, 7, 900 }, new[] { 0, 2 }, ReduceOp.Mean];
        yield return [new[] { 3_000, 5 }, new[] { 0 }, ReduceOp.Sum];
        yield return [new[] { 600, 9 }, new[] { 1 }, ReduceOp.Max];
    }

    /// <summary>Reductions with 256-thread groups, warp shuffles and the two-pass split.</summary>
    [Theory, MemberData(nameof(ReduceCases))]
    public void Reduce(int[] shape, int[] axes, ReduceOp op)
    {
        var x = Inputs.Uniform(new Random(shape.Sum()), HostReference.Numel(shape), -2, 2);
        var expected = HostReference.Reduce(op, x, shape, axes, out var magnitude);
        using var xb = Upload(K, x);
        using var yb = Nans(K, expected.Length);
        K.Reduce(op, xb, shape, axes, yb);
        var what = $"Reduce {op} [{string.Join(",", shape)}] axes [{string.Join(",", axes)}]";
        var y = yb.ToArray()[..expected.Length];
        if (op == ReduceOp.Max) KernelAssert.Exact(expected, y, what);
        else KernelAssert.Close(expected, y, i => Tolerance.SumAbs + Tolerance.SumRel * magnitude[i], what);
    }

    /// <summary>Softmax and log-softmax along long axes (a group per line), contiguous and strided.</summary>
    [Theory]
    [InlineData(2, 3000, 1, true)]
    [InlineData(1, 700, 3, false)]
    [InlineData(300, 129, 1, false)]
    public void Softmax(int outer, int axis, int inner, bool log)
    {
        var x = Inputs.Uniform(new Random(axis), (long)outer * axis * inner, -6, 6);
        var expected = HostReference.Softmax(x, outer, axis, inner, log);
        using var xb = Upload(K, x);
        using var yb = Nans(K, x.Length);
        K.Softmax(xb, yb, outer, axis, inner, log);
        var tol = log
            ? new Tolerance(Tolerance.Transcendental.Rel, Tolerance.Transcendental.Abs + Tolerance.ShiftUlps * 6)
            : Tolerance.Transcendental;
        KernelAssert.Close(expected, yb.ToArray(), tol, $"Softmax [{outer},{axis},{inner}] log={log}");
    }

    /// <summary>Cross-entropy over many classes (a group per row).</summary>
    [Fact]
    public void CrossEntropy()
    {
        const int rows = 3, classes = 2000;
        var rng = new Random(9);
        var logits = Inputs.Uniform(rng, rows * classes, -5, 5);
        int[] labels = [0, 1999, 777];
        var expected = HostReference.CrossEntropy(logits, labels, rows, classes);
        using var lb = Upload(K, logits);
        using var tb = K.AllocateInt(rows);
        tb.CopyFromHost(labels);
        using var yb = Nans(K, rows);
        K.CrossEntropy(lb, tb, rows, classes, yb);
        KernelAssert.Close(expected, yb.ToArray(),
            new Tolerance(Tolerance.Transcendental.Rel, Tolerance.Transcendental.Abs + Tolerance.ShiftUlps * 5), "CrossEntropy 3x2000");
    }

    /// <summary>Layer norm of long rows (a group per row), forward statistics against the double reference.</summary>
    [Fact]
    public void LayerNorm()
    {
        const int rows = 2, cols = 3000;
        var rng = new Random(13);
        var x = Inputs.Uniform(rng, rows * cols, 3, 5);
        var gamma = Inputs.Uniform(rng, cols, -1.5, 1.5);
        var beta = Inputs.Uniform(rng, cols, -1, 1);
        var (ey, em, er) = HostReference.LayerNorm(x, gamma, beta, rows, cols, 1e-5f);
        using var xb = Upload(K, x);
        using var gb = Upload(K, gamma);
        using var bb = Upload(K, beta);
        using var yb = Nans(K, x.Length);
        using var mb = Nans(K, rows);
        using var rb = Nans(K, rows);
        K.LayerNormKernels().LayerNorm(xb, gb, bb, yb, new LayerNormStats(mb, rb), new LayerNormSize(rows, cols), 1e-5f);
        KernelAssert.Close(em, mb.ToArray()[..rows], new Tolerance(2e-6, 1e-6), "LayerNorm mean");
        KernelAssert.Close(er, rb.ToArray()[..rows], new Tolerance(2e-5, 0), "LayerNorm rstd");
        KernelAssert.Close(ey, yb.ToArray(), new Tolerance(1e-4, 1e-4), "LayerNorm y");
    }

    /// <summary>(batch, n, global passes) FFT cases: powers of two in shared memory and pass by pass, other lengths by DFT.</summary>
    public static IEnumerable<object[]> FftCases()
    {
        foreach (var n in new[] { 2, 8, 64, 1024 }) yield return [2, n, false];
        foreach (var n in new[] { 16, 32 }) yield return [2, n, true];
        yield return [2, 12, false];
    }

    /// <summary>Complex FFT, rfft and irfft of rows against the naive double DFTs (relative L2 error below 1e-5).</summary>
    [Theory, MemberData(nameof(FftCases))]
    public void Fft(int batch, int n, bool globalPasses)
    {
        var k = globalPasses ? GlobalFft.Value : GpuShapes.Value;
        var rng = new Random(n);
        var complex = Inputs.Uniform(rng, batch * n * 2, -1, 1);
        using (var xb = Upload(k, complex))
        using (var yb = Nans(k, complex.Length))
        {
            k.Fft(xb, yb, batch, n, inverse: false, 1f);
            AssertRelL2(FftKernelTests.NaiveDft(complex, batch, n, -1, 1), yb.ToArray(), $"Fft n={n}");
            k.Fft(xb, yb, batch, n, inverse: true, 1f / n);
            AssertRelL2(FftKernelTests.NaiveDft(complex, batch, n, 1, 1.0 / n), yb.ToArray(), $"ifft n={n}");
        }
        var real = Inputs.Uniform(rng, batch * n, -1, 1);
        int bins = n / 2 + 1;
        using (var xb = Upload(k, real))
        using (var yb = Nans(k, batch * bins * 2))
        using (var back = Nans(k, batch * n))
        {
            k.Rfft(xb, yb, batch, n);
            var spectrum = yb.ToArray()[..(batch * bins * 2)];
            AssertRelL2(FftKernelTests.NaiveRfft(real, batch, n), spectrum, $"Rfft n={n}");
            k.Irfft(yb, back, batch, n);
            AssertRelL2(FftKernelTests.NaiveIrfft(spectrum, batch, n), back.ToArray(), $"Irfft n={n}");
        }
    }

    /// <summary>2-D real transforms: rows and columns of powers of two, and an odd height (DFT columns).</summary>
    [Theory]
    [InlineData(2, 32, 16)]
    [InlineData(1, 17, 32)]
    public void Rfft2(int batch, int h, int w)
    {
        var x = Inputs.Uniform(new Random(h * w), batch * h * w, -1, 1);
        int m = w / 2 + 1;
        using var xb = Upload(K, x);
        using var yb = Nans(K, batch * h * m * 2);
        using var back = Nans(K, batch * h * w);
        K.FftKernels().Rfft2(xb, yb, batch, h, w);
        var spectrum = yb.ToArray();
        AssertRelL2(FftKernelTests.NaiveRfft2(x, batch, h, w), spectrum, $"Rfft2 {h}x{w}");
        K.FftKernels().Irfft2(yb, back, batch, h, w);
        AssertRelL2(FftKernelTests.NaiveIrfft2(spectrum, batch, h, w), back.ToArray(), $"Irfft2 {h}x{w}");
    }

    private static void AssertRelL2(double[] expected, float[] actual, string what)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"{what}: output {i} is NaN (not written?)");
            num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        double rel = Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
        Assert.True(rel < 1e-5, $"{what}: relative L2 error {rel:G3}");
    }
}
