using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// Layer normalisation (<see cref="ILayerNormKernels"/>) against <see cref="HostReference"/>, on awkward shapes and
/// inputs whose mean dwarfs their spread, written once and run per kernel set, both on the set's own fused kernels and
/// on the composite fallback of core ops (<see cref="CoreOnlyKernelSet"/>), under the same tolerances (stated per
/// check below). Outputs are pre-filled with NaN.
/// </summary>
public abstract class LayerNormKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>The layer-norm kernels under test: the set's own, or the composite of its core.</summary>
    protected abstract ILayerNormKernels Norms { get; }

    private IKernelSet K => Device.Kernels;

    private DeviceBuffer<float> Upload(float[] data) => DeviceData.Upload(K, data);

    private DeviceBuffer<float> Filled(long n, float value) => DeviceData.Filled(K, n, value);

    private static object[] Row(params object[] values) => values;

    /// <summary>LayerNorm cases: (rows, cols, input offset). The offset makes |mean| ≫ std (two-pass accuracy).</summary>
    public static IEnumerable<object[]> LayerNormCases(ShapeTier tier)
    {
        yield return Row(1, 1, 0f);
        yield return Row(5, 1, 0f);
        yield return Row(1, 7, 0f);
        yield return Row(3, 13, 0f);
        yield return Row(2, 37, 3f);
        yield return Row(7, 33, 0f);
        yield return Row(7, 33, 3f);
        yield return Row(64, 257, 0f);
        if (tier == ShapeTier.Full)
        {
            yield return Row(1031, 1031, 3f);
            yield return Row(4099, 64, 0f);
            yield return Row(3, 100_003, 1f);
        }
    }

    private static float[] LayerNormInput(Random rng, int rows, int cols, float offset)
    {
        var x = Inputs.Uniform(rng, (long)rows * cols, -2, 2);
        for (long i = 0; i < x.Length; i++) x[i] += offset;
        return x;
    }

    /// <summary>y = (x - mean) · rstd · gamma + beta per row; mean and rstd saved.</summary>
    [Theory, KernelCases(nameof(LayerNormCases))]
    public void LayerNorm_MatchesReference(int rows, int cols, float offset)
    {
        var rng = new Random(61);
        var x = LayerNormInput(rng, rows, cols, offset);
        var gamma = Inputs.Uniform(rng, cols, -1.5, 1.5);
        var beta = Inputs.Uniform(rng, cols, -1, 1);
        CheckLayerNorm(x, gamma, beta, rows, cols, 1e-5f, $"LayerNorm {rows}x{cols} offset {offset}");
    }

    /// <summary>Constant rows (variance 0): finite output equal to beta, rstd = 1/sqrt(eps); mixed with ordinary rows.</summary>
    [Fact]
    public void LayerNorm_ConstantRows_GiveBeta()
    {
        const int rows = 4, cols = 19;
        var rng = new Random(67);
        var x = Inputs.Uniform(rng, rows * cols, -2, 2);
        for (int j = 0; j < cols; j++)
        {
            x[j] = 0.1f;
            x[2 * cols + j] = -7.25f;
        }
        var gamma = Inputs.Uniform(rng, cols, -1.5, 1.5);
        var beta = Inputs.Uniform(rng, cols, -1, 1);
        var (y, _, _) = CheckLayerNorm(x, gamma, beta, rows, cols, 1e-5f, "LayerNorm constant rows");
        foreach (var r in new[] { 0, 2 })
            for (int j = 0; j < cols; j++)
                Assert.True(Math.Abs(y[r * cols + j] - beta[j]) < 1e-3, $"constant row {r}: y[{j}] = {y[r * cols + j]}, beta {beta[j]}");
    }

    private (float[] Y, float[] Mean, float[] Rstd) CheckLayerNorm(float[] x, float[] gamma, float[] beta, int rows, int cols, float eps, string what)
    {
        var (ey, em, er) = HostReference.LayerNorm(x, gamma, beta, rows, cols, eps);
        using var xb = Upload(x);
        using var gb = Upload(gamma);
        using var bb = Upload(beta);
        using var yb = Filled(x.Length, float.NaN);
        using var mb = Filled(rows, float.NaN);
        using var rb = Filled(rows, float.NaN);
        Norms.LayerNorm(xb, gb, bb, yb, new LayerNormStats(mb, rb), new LayerNormSize(rows, cols), eps);
        var y = yb.ToArray();
        var mean = mb.ToArray();
        var rstd = rb.ToArray();
        Assert.All(y, v => Assert.True(float.IsFinite(v), $"{what}: non-finite output {v}"));
        // Float rounding of x - mean costs about ulp(|x|) · rstd in xhat; the rest is a few ulps of each factor.
        KernelAssert.Close(ey, y, i =>
        {
            long r = i / cols, j = i % cols;
            double xhat = Math.Abs((x[i] - em[r]) * er[r]);
            return 1e-6 + 1e-5 * (Math.Abs(gamma[j]) * (1 + xhat + Math.Abs(x[i]) * er[r]) + Math.Abs(beta[j]));
        }, what + " y");
        KernelAssert.Close(em, mean, r =>
        {
            double maxAbs = 0;
            for (int j = 0; j < cols; j++) maxAbs = Math.Max(maxAbs, Math.Abs(x[r * cols + j]));
            return 1e-6 + 2e-6 * maxAbs;
        }, what + " mean");
        KernelAssert.Close(er, rstd, new Tolerance(2e-5, 0), what + " rstd");
        return (y, mean, rstd);
    }

    /// <summary>Backward cases: the forward table.</summary>
    public static IEnumerable<object[]> LayerNormBackwardCases(ShapeTier tier) => LayerNormCases(tier);

    /// <summary>dx, dgamma, dbeta from the saved statistics; overwritten outputs; the column sums are deterministic.</summary>
    [Theory, KernelCases(nameof(LayerNormBackwardCases))]
    public void LayerNormBackward_MatchesReference(int rows, int cols, float offset)
    {
        var rng = new Random(73);
        var x = LayerNormInput(rng, rows, cols, offset);
        var gamma = Inputs.Uniform(rng, cols, -1.5, 1.5);
        var dy = Inputs.Uniform(rng, (long)rows * cols, -1, 1);
        var (_, em, er) = HostReference.LayerNorm(x, gamma, gamma, rows, cols, 1e-5f);
        var mean = Array.ConvertAll(em, v => (float)v);
        var rstd = Array.ConvertAll(er, v => (float)v);
        var (edx, edg, edb) = HostReference.LayerNormBackward(dy, x, mean, rstd, gamma, rows, cols);
        var what = $"LayerNormBackward {rows}x{cols} offset {offset}";

        using var dyb = Upload(dy);
        using var xb = Upload(x);
        using var mb = Upload(mean);
        using var rb = Upload(rstd);
        using var gb = Upload(gamma);
        using var dxb = Filled(x.Length, float.NaN);
        using var dgb = Filled(cols, float.NaN);
        using var dbb = Filled(cols, float.NaN);
        Norms.LayerNormBackward(dyb, xb, new LayerNormStats(mb, rb), gb, new LayerNormGradients(dxb, dgb, dbb), new LayerNormSize(rows, cols));
        var dx = dxb.ToArray();
        var dg = dgb.ToArray();
        var db = dbb.ToArray();

        // Per-row scales of the two row means (|terms|), for the dx tolerance.
        var s1 = new double[rows];
        var s2 = new double[rows];
        var colG = new double[cols];
        var colB = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < cols; j++)
            {
                long i = (long)r * cols + j;
                double h = Math.Abs((x[i] - (double)mean[r]) * rstd[r]) + Math.Abs(x[i]) * rstd[r] * 1e-1;
                double g = Math.Abs((double)dy[i] * gamma[j]);
                s1[r] += g;
                s2[r] += g * (1 + h);
                colG[j] += Math.Abs(dy[i]) * (1 + h);
                colB[j] += Math.Abs(dy[i]);
            }
            s1[r] /= cols;
            s2[r] /= cols;
        }
        KernelAssert.Close(edx, dx, i =>
        {
            long r = i / cols, j = i % cols;
            double h = Math.Abs((x[i] - (double)mean[r]) * rstd[r]) + Math.Abs(x[i]) * rstd[r];
            return 1e-6 + 2e-5 * rstd[r] * (Math.Abs(dy[i] * gamma[j]) + s1[r] + (1 + h) * s2[r]);
        }, what + " dx");
        KernelAssert.Close(edg, dg, j => 1e-6 + 2e-5 * colG[j], what + " dgamma");
        KernelAssert.Close(edb, db, j => Tolerance.SumAbs + 5 * Tolerance.SumRel * colB[j], what + " dbeta");

        // Same inputs, fresh outputs: bit-identical column sums (and dx).
        using var dxb2 = Filled(x.Length, 5f);
        using var dgb2 = Filled(cols, 5f);
        using var dbb2 = Filled(cols, 5f);
        Norms.LayerNormBackward(dyb, xb, new LayerNormStats(mb, rb), gb, new LayerNormGradients(dxb2, dgb2, dbb2), new LayerNormSize(rows, cols));
        KernelAssert.Bitwise(dx, dxb2.ToArray(), what + " dx rerun");
        KernelAssert.Bitwise(dg, dgb2.ToArray(), what + " dgamma rerun");
        KernelAssert.Bitwise(db, dbb2.ToArray(), what + " dbeta rerun");
    }

    /// <summary>No rows: dgamma and dbeta are overwritten with zeros; the forward writes nothing.</summary>
    [Fact]
    public void LayerNormBackward_NoRows_ZeroesParameterGradients()
    {
        using var empty = K.Allocate(0);
        using var gb = Filled(5, 1f);
        using var dgb = Filled(5, float.NaN);
        using var dbb = Filled(5, float.NaN);
        Norms.LayerNormBackward(empty, empty, new LayerNormStats(empty, empty), gb, new LayerNormGradients(empty, dgb, dbb), new LayerNormSize(0, 5));
        KernelAssert.Exact(new double[5], dgb.ToArray(), "dgamma, 0 rows");
        KernelAssert.Exact(new double[5], dbb.ToArray(), "dbeta, 0 rows");
        Norms.LayerNorm(empty, gb, gb, empty, new LayerNormStats(empty, empty), new LayerNormSize(0, 5), 1e-5f);
    }
}

/// <summary>The CPU set's fused layer norm on the full tables.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuLayerNormKernelTests : LayerNormKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override ILayerNormKernels Norms => Device.Kernels.LayerNormKernels();

    /// <summary>
    /// The CPU set's column sums, restated on the host: blocks of 16 384 / cols rows (at least one), each column summed
    /// in double from +0 row after row (dy · xhat with xhat = (x - mean) · rstd formed in float), the blocks added in
    /// order, rounded to float. Equal to the bit, so the sums never depend on the core count or the vector width.
    /// </summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 33)]
    [InlineData(4099, 64)]
    [InlineData(1031, 1031)]
    [InlineData(4096, 256)]
    [InlineData(3, 20_011)]
    public void LayerNormBackward_ColumnSums_FollowTheBlockOrder(int rows, int cols)
    {
        var rng = new Random(rows + cols);
        var x = Inputs.Uniform(rng, (long)rows * cols, -2, 2);
        var gamma = Inputs.Uniform(rng, cols, -1.5, 1.5);
        var dy = Inputs.Uniform(rng, (long)rows * cols, -1, 1);
        var (_, em, er) = HostReference.LayerNorm(x, gamma, gamma, rows, cols, 1e-5f);
        var mean = Array.ConvertAll(em, v => (float)v);
        var rstd = Array.ConvertAll(er, v => (float)v);
        int rowsPerBlock = Math.Max(1, 16 * 1024 / cols);
        var totalG = new double[cols];
        var totalB = new double[cols];
        for (int r0 = 0; r0 < rows; r0 += rowsPerBlock)
        {
            var blockG = new double[cols];
            var blockB = new double[cols];
            for (int r = r0; r < Math.Min(rows, r0 + rowsPerBlock); r++)
                for (int j = 0; j < cols; j++)
                {
                    long i = (long)r * cols + j;
                    float xhat = (x[i] - mean[r]) * rstd[r];
                    blockG[j] += (double)dy[i] * xhat;
                    blockB[j] += dy[i];
                }
            for (int j = 0; j < cols; j++)
            {
                totalG[j] = r0 == 0 ? blockG[j] : totalG[j] + blockG[j];
                totalB[j] = r0 == 0 ? blockB[j] : totalB[j] + blockB[j];
            }
        }
        using var dyb = DeviceData.Upload(Device.Kernels, dy);
        using var xb = DeviceData.Upload(Device.Kernels, x);
        using var mb = DeviceData.Upload(Device.Kernels, mean);
        using var rb = DeviceData.Upload(Device.Kernels, rstd);
        using var gb = DeviceData.Upload(Device.Kernels, gamma);
        using var dxb = Device.Kernels.Allocate(x.Length);
        using var dgb = DeviceData.Filled(Device.Kernels, cols, float.NaN);
        using var dbb = DeviceData.Filled(Device.Kernels, cols, float.NaN);
        Norms.LayerNormBackward(dyb, xb, new LayerNormStats(mb, rb), gb, new LayerNormGradients(dxb, dgb, dbb), new LayerNormSize(rows, cols));
        KernelAssert.Bitwise(Array.ConvertAll(totalG, v => (float)v), dgb.ToArray(), $"dgamma {rows}x{cols}");
        KernelAssert.Bitwise(Array.ConvertAll(totalB, v => (float)v), dbb.ToArray(), $"dbeta {rows}x{cols}");
    }

    /// <summary>
    /// A call at a Mixer's shape allocates no scratch on the calling thread once warm: the column partials (a quarter
    /// of a megabyte here) come from the array pool, not a fresh array per call.
    /// </summary>
    [Fact]
    public void LayerNormBackward_WarmCall_AllocatesNoScratch()
    {
        const int rows = 4096, cols = 256;
        var k = Device.Kernels;
        using var dy = DeviceData.Filled(k, (long)rows * cols, 0.5f);
        using var x = DeviceData.Upload(k, Inputs.Uniform(new Random(3), (long)rows * cols, -2, 2));
        using var mean = DeviceData.Filled(k, rows, 0.1f);
        using var rstd = DeviceData.Filled(k, rows, 1.3f);
        using var gamma = DeviceData.Filled(k, cols, 1f);
        using var dx = k.Allocate((long)rows * cols);
        using var dg = k.Allocate(cols);
        using var db = k.Allocate(cols);
        void Call() => Norms.LayerNormBackward(dy, x, new LayerNormStats(mean, rstd), gamma, new LayerNormGradients(dx, dg, db), new LayerNormSize(rows, cols));
        Call();
        Call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 4; i++) Call();
        long perCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 4;
        Assert.True(perCall < 16 * 1024, $"LayerNormBackward {rows}x{cols}: {perCall} bytes allocated per warm call on the calling thread");
    }
}

/// <summary>The composite layer norm over the CPU set's core ops (small tables: the core ops' large-shape paths have their own tests).</summary>
[ShapeTier(ShapeTier.Small)]
public sealed class CpuCompositeLayerNormKernelTests : LayerNormKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override ILayerNormKernels Norms => CoreOnlyKernelSet.Of(Device.Kernels).LayerNormKernels();
}

/// <summary>The ILGPU set's fused layer norm on the CPU emulator, small tables.</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuLayerNormKernelTests : LayerNormKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override ILayerNormKernels Norms => Device.Kernels.LayerNormKernels();
}

/// <summary>The composite layer norm over the ILGPU set's core ops on the CPU emulator, small tables.</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuCompositeLayerNormKernelTests : LayerNormKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override ILayerNormKernels Norms => CoreOnlyKernelSet.Of(Device.Kernels).LayerNormKernels();
}
