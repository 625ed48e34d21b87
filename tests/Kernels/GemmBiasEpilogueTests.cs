using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// The bias epilogue (<see cref="GemmEpilogue"/>) of each kernel set: the product stored with its bias added equals the same
/// product followed by a float addition of the broadcast bias, bit for bit, on shapes that take every store path of
/// the packed GEMM (full and edge tiles, thin C computed transposed, several k slices, threads, batches spread over
/// threads, k = 0) and every kind of bias (a row vector, a matrix per batch item, a block repeated down the batch).
/// </summary>
public abstract class GemmBiasEpilogueTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    public static TheoryData<int, int, int, int, bool, bool, int> Cases => new()
    {
        // batch, m, n, k, transA, transB, bias rows (the bias holds rows x n values)
        { 1, 1, 1, 1, false, false, 1 },
        { 1, 7, 13, 5, false, true, 1 },
        { 1, 64, 3, 17, true, false, 1 },      // thin C: computed as C^T
        { 1, 61, 2, 300, false, false, 61 },   // thin C, two k slices, a matrix bias
        { 3, 13, 37, 11, true, true, 13 },
        { 4, 16, 256, 64, false, true, 1 },
        { 2, 130, 129, 131, false, false, 130 }, // split over threads
        { 64, 8, 24, 16, false, false, 4 },    // batch spread over threads, a block of 4 rows repeated
        { 2, 5, 9, 0, false, false, 10 },      // k = 0: C = 0 + bias
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheBiasIsAddedAsAFloatAdditionAfterTheProduct(int batch, int m, int n, int k, bool transA, bool transB, int biasRows)
    {
        var rng = new Random(batch * 1000 + m * 31 + n * 7 + k);
        float[] Values(long count) => Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        long matrix = (long)m * n;
        var a = Values((long)batch * m * k);
        var b = Values((long)batch * k * n);
        var bias = Values((long)biasRows * n);
        using var ab = Upload(a);
        using var bb = Upload(b);
        using var biasBuffer = Upload(bias);
        using var plain = Upload(Enumerable.Repeat(float.NaN, (int)(batch * matrix)).ToArray());
        using var fused = Upload(Enumerable.Repeat(float.NaN, (int)(batch * matrix)).ToArray());
        var size = new GemmSize(batch, m, n, k);
        var opA = new GemmOperand(ab, transA, (long)m * k);
        var opB = new GemmOperand(bb, transB, (long)k * n);
        K.Gemm(size, opA, opB, new GemmOutput(plain, matrix));
        K.Gemm(size, opA, opB, new GemmOutput(fused, matrix) { Epilogue = new GemmEpilogue(biasBuffer) });
        var product = plain.ToArray();
        var got = fused.ToArray();
        for (long f = 0; f < product.Length; f++)
        {
            long row = f / n, col = f % n;
            float expected = product[f] + bias[row % biasRows * n + col];
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got[f]),
                $"batch {batch} m {m} n {n} k {k}: element {f} (row {row}, column {col}) is {got[f]:R}, expected {expected:R}");
        }
    }

    [Fact]
    public void ABiasWhoseLengthIsNotAMultipleOfNIsRejectedBeforeAnyWork()
    {
        using var ab = Upload(new float[6]);
        using var bb = Upload(new float[6]);
        using var bias = Upload(new float[3]);
        using var cb = Upload([7f, 7f, 7f, 7f]);
        var e = Assert.Throws<ArgumentException>(() =>
            K.Gemm(GemmSize.Single(2, 2, 3), new GemmOperand(ab), new GemmOperand(bb), new GemmOutput(cb) { Epilogue = new GemmEpilogue(bias) }));
        Assert.Contains("bias epilogue holds 3 values; expected a positive multiple of N = 2", e.Message);
        Assert.Equal([7f, 7f, 7f, 7f], cb.ToArray());
    }

    [Fact]
    public void TheSetRunsBiasEpilogues() => Assert.True(((IGemmEpilogueKernels)K).RunsGemmEpilogue(bias: true));

    private DeviceBuffer<float> Upload(float[] data) => DeviceData.Upload(K, data);
}

/// <summary>The CPU set's bias epilogue.</summary>
public sealed class CpuGemmBiasEpilogueTests : GemmBiasEpilogueTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;
}

/// <summary>The ILGPU set's bias epilogue (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuGemmBiasEpilogueTests : GemmBiasEpilogueTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;
}
