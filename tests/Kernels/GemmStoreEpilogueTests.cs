using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// The residual and activation epilogues (<see cref="GemmEpilogue"/>) of each kernel set that runs them: the product stored with its bias, its
/// residual and its activation equals, bit for bit, the product followed by the separate elementwise calls the eager
/// engine makes (a broadcast addition of the bias, an addition of the residual, one unary or affine call per step), on
/// shapes that take every store path of the packed GEMM (full and edge tiles, thin C computed transposed, several k
/// slices, several row and column blocks, threads, batches spread over threads, k = 0, an operand read through an
/// index map, and the dedicated matrix-vector and tall-depth paths), with C, the residual and the activation output at an offset and with gaps between batch items (which
/// must stay untouched), and with either both stores (C keeps the pre-activation) or the activation alone.
/// </summary>
public abstract class GemmStoreEpilogueTests
{
    /// <summary>The kernel set under test.</summary>
    protected abstract IKernelSet K { get; }

    /// <summary>Activation chains: one op, and the fused chains the compiler meets (GELU's cdf, a tanh with an affine tail).</summary>
    private static readonly UnaryStep[][] Chains =
    [
        [UnaryOp.GeluErf],
        [UnaryOp.Relu],
        [UnaryStep.Affine(0.70710677f, 0f), UnaryOp.Erf, UnaryStep.Affine(1f, 1f), UnaryStep.Affine(0.5f, 0f)],
        [UnaryOp.Tanh, UnaryStep.Affine(2f, -1f)],
    ];

    /// <summary>What the epilogue holds besides the bias.</summary>
    public enum Store
    {
        /// <summary>A residual; C receives the sum.</summary>
        Residual,
        /// <summary>An activation into a second buffer; C keeps the pre-activation.</summary>
        ActivationBeside,
        /// <summary>An activation stored into C.</summary>
        ActivationOnly,
        /// <summary>A residual and an activation into a second buffer.</summary>
        ResidualAndActivation,
    }

    // batch, m, n, k, transA, transB, bias rows (0: no bias), C's offset, gap between batch items
    private static readonly (int Batch, int M, int N, int K, bool TransA, bool TransB, int BiasRows, int Offset, int Gap)[] Shapes =
    [
        (1, 1, 1, 1, false, false, 0, 0, 0),
        (1, 7, 13, 5, false, true, 1, 3, 0),
        (1, 64, 3, 17, true, false, 1, 0, 0),       // thin C: computed as C^T
        (1, 61, 2, 300, false, false, 61, 5, 0),    // thin C, two k slices, a matrix bias
        (3, 13, 37, 11, true, true, 13, 2, 7),
        (3, 64, 3, 9, false, false, 0, 0, 2),       // thin C, batched with gaps
        (4, 16, 256, 64, false, true, 1, 0, 0),
        (2, 130, 129, 131, false, false, 0, 1, 3),  // split over threads
        (64, 8, 24, 16, false, false, 4, 0, 5),     // batch spread over threads, a block of 4 rows repeated
        (2, 5, 9, 0, false, false, 10, 4, 2),       // k = 0: C = 0 + bias
        (1, 400, 40, 20, false, false, 1, 1, 0),    // several row blocks
        (1, 500, 300, 64, true, false, 1, 0, 0),    // split over threads, several row blocks per part
        (2, 4500, 2, 3, false, true, 0, 0, 5),      // thin C over two column blocks of C^T, batched with gaps
        (1, 300, 1, 37, false, true, 1, 3, 0),      // matrix-vector by rows
        (2, 1, 70, 33, true, false, 1, 0, 4),       // a row of C as a column of C^T, batched with gaps
        (3, 67, 1, 20, true, false, 67, 2, 3),      // matrix-vector by column groups, a matrix bias
        (1, 64, 48, 4500, true, false, 1, 0, 0),    // tall depth: k slices summed, then the epilogue
        (1, 256, 256, 64, false, true, 1, 0, 0),    // the small MLP's first product: split over threads into whole rows
        (1, 256, 128, 256, false, true, 256, 3, 0), // its second, with a matrix bias, at an offset
    ];

    public static TheoryData<int, Store> Cases()
    {
        var data = new TheoryData<int, Store>();
        for (int s = 0; s < Shapes.Length; s++)
            foreach (var store in Enum.GetValues<Store>())
                data.Add(s, store);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheEpilogueHasTheBitsOfTheSeparateCalls(int shape, Store store)
    {
        var (batch, m, n, k, transA, transB, biasRows, offset, gap) = Shapes[shape];
        var chain = Chains[(shape + (int)store) % Chains.Length];
        var rng = new Random(shape * 10 + (int)store);
        using var ab = Upload(Values(rng, (long)batch * m * k));
        using var bb = Upload(Values(rng, (long)batch * k * n));
        var opA = new GemmOperand(ab, transA, (long)m * k);
        var opB = new GemmOperand(bb, transB, (long)k * n);
        Check(new GemmSize(batch, m, n, k), opA, opB, biasRows, offset, gap, store, chain, rng);
    }

    [Theory]
    [InlineData(Store.ResidualAndActivation)]
    [InlineData(Store.ActivationOnly)]
    public void TheEpilogueRunsWithAnOperandReadThroughAnIndexMap(Store store)
    {
        const int m = 12, n = 20, k = 8;
        var rng = new Random(5);
        using var ab = Upload(Values(rng, m * k));
        using var bb = Upload(Values(rng, k * n));
        using var map = DeviceData.Upload(K, Enumerable.Range(0, k).OrderBy(_ => rng.Next()).ToArray());
        var opA = new GemmOperand(ab).WithIndex(map, k);
        Check(GemmSize.Single(m, n, k), opA, new GemmOperand(bb, true), 1, 2, 0, store, Chains[2], rng);
    }

    /// <summary>
    /// Runs the product with the epilogue into NaN-filled buffers laid out at <paramref name="offset"/> with
    /// <paramref name="gap"/> between batch items, and the same product followed by the eager calls into contiguous
    /// buffers, and compares every element bit for bit (the gaps must stay NaN).
    /// </summary>
    private void Check(GemmSize size, GemmOperand opA, GemmOperand opB, int biasRows, int offset, int gap, Store store,
        UnaryStep[] chain, Random rng)
    {
        var (batch, m, n, _) = size;
        long matrix = (long)m * n, total = batch * matrix, stride = matrix + gap;
        int length = (int)(offset + (batch - 1) * stride + matrix + 3);
        int[] shape = biasRows > 0 ? [(int)(total / n / biasRows), biasRows, n] : [(int)(total / n), n];
        var bias = biasRows > 0 ? Values(rng, (long)biasRows * n) : null;
        var residual = Values(rng, length);
        bool hasResidual = store is Store.Residual or Store.ResidualAndActivation;
        bool hasActivation = store != Store.Residual;
        bool beside = store is Store.ActivationBeside or Store.ResidualAndActivation;

        // The eager calls on contiguous buffers.
        using var z = Upload(new float[total]);
        K.Gemm(size, opA, opB, new GemmOutput(z, matrix));
        using var biasBuffer = bias == null ? null : Upload(bias);
        if (biasBuffer != null) K.Binary(BinaryOp.Add, z, shape, biasBuffer, [biasRows, n], z, shape);
        using var packedResidual = Upload(Gather(residual, batch, matrix, offset, stride));
        if (hasResidual) K.Binary(BinaryOp.Add, packedResidual, shape, z, shape, z, shape);
        using var y = Upload(z.ToArray());
        foreach (var step in chain)
        {
            if (step.IsAffine) K.Affine(y, y, step.Scale, step.Shift);
            else K.Unary(step.Op, y, y);
        }

        // The product with the epilogue.
        using var c = Upload(Nans(length));
        using var r = Upload(residual);
        using var activated = Upload(Nans(length));
        var epilogue = new GemmEpilogue(biasBuffer, hasActivation ? chain : null)
        {
            Residual = hasResidual ? r : null,
            ActivationOutput = beside ? activated : null,
        };
        K.Gemm(size, opA, opB, new GemmOutput(c, stride) { Offset = offset, Epilogue = epilogue });

        string what = $"{size} {store} [{string.Join(", ", chain)}] offset {offset} gap {gap}";
        Same(store == Store.ActivationOnly ? y.ToArray() : z.ToArray(), c.ToArray(), batch, matrix, offset, stride, what + ": C");
        if (beside) Same(y.ToArray(), activated.ToArray(), batch, matrix, offset, stride, what + ": activation output");
        else Assert.All(activated.ToArray(), v => Assert.True(float.IsNaN(v), what + ": an unused activation output was written"));
        Assert.Equal(residual, r.ToArray());
    }

    /// <summary>The matrices of a buffer laid out at <paramref name="offset"/>, <paramref name="stride"/> apart, packed.</summary>
    internal static float[] Gather(float[] laidOut, int batch, long matrix, int offset, long stride)
    {
        var packed = new float[batch * matrix];
        for (int p = 0; p < batch; p++) Array.Copy(laidOut, offset + p * stride, packed, p * matrix, matrix);
        return packed;
    }

    /// <summary>Every matrix element of <paramref name="actual"/> has the bits of <paramref name="expected"/>'s; everything else is NaN.</summary>
    internal static void Same(float[] expected, float[] actual, int batch, long matrix, int offset, long stride, string what)
    {
        var inside = new bool[actual.Length];
        for (int p = 0; p < batch; p++)
            for (long e = 0; e < matrix; e++)
            {
                long at = offset + p * stride + e;
                inside[at] = true;
                float want = expected[p * matrix + e];
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(actual[at]),
                    $"{what}: batch item {p}, element {e} is {actual[at]:R}, expected {want:R}");
            }
        for (int i = 0; i < actual.Length; i++)
            if (!inside[i]) Assert.True(float.IsNaN(actual[i]), $"{what}: element {i} outside the matrices was written ({actual[i]:R})");
    }

    // ------------------------------------------------------------------ bad input

    public static TheoryData<string, string> BadEpilogues => new()
    {
        { "short residual", "residual of the epilogue holds 5 elements; C's layout needs 6" },
        { "short activation output", "activation output of the epilogue holds 5 elements; C's layout needs 6" },
        { "residual is C", "residual of the epilogue is C's own buffer" },
        { "activation output is C", "activation output of the epilogue is C's own buffer" },
        { "activation output without activation", "activation output but no activation" },
        { "empty activation", "activation epilogue has no steps" },
        { "overlapping C", "C matrices that do not overlap" },
    };

    [Theory]
    [MemberData(nameof(BadEpilogues))]
    public void ABadEpilogueIsRejectedBeforeAnyWork(string bad, string message)
    {
        using var ab = Upload(new float[12]);
        using var bb = Upload(new float[12]);
        using var cb = Upload([7f, 7f, 7f, 7f, 7f, 7f]);
        using var shortBuffer = Upload(new float[5]);
        using var other = Upload(new float[6]);
        var size = GemmSize.Single(2, 3, 2);
        var output = new GemmOutput(cb);
        output = bad switch
        {
            "short residual" => output with { Epilogue = new GemmEpilogue { Residual = shortBuffer } },
            "short activation output" => output with { Epilogue = new GemmEpilogue(Activation: [UnaryOp.Relu]) { ActivationOutput = shortBuffer } },
            "residual is C" => output with { Epilogue = new GemmEpilogue { Residual = cb } },
            "activation output is C" => output with { Epilogue = new GemmEpilogue(Activation: [UnaryOp.Relu]) { ActivationOutput = cb } },
            "activation output without activation" => output with { Epilogue = new GemmEpilogue { ActivationOutput = other } },
            "empty activation" => output with { Epilogue = new GemmEpilogue(Activation: []) },
            _ => output with { BatchStride = 1, Epilogue = new GemmEpilogue { Residual = other } },
        };
        if (bad == "overlapping C") size = new GemmSize(2, 1, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => K.Gemm(size, new GemmOperand(ab), new GemmOperand(bb), output));
        Assert.Contains("Gemm: ", e.Message);
        Assert.Contains(message, e.Message);
        Assert.Equal([7f, 7f, 7f, 7f, 7f, 7f], cb.ToArray());
    }

    [Fact]
    public void AnEpilogueWithACMapIsNotSupported()
    {
        using var ab = Upload(new float[4]);
        using var bb = Upload(new float[4]);
        using var cb = Upload([7f, 7f, 7f, 7f]);
        using var r = Upload(new float[4]);
        using var map = DeviceData.Upload(K, [1, 0]);
        var output = new GemmOutput(cb) { Epilogue = new GemmEpilogue { Residual = r } }.WithIndex(map, 2);
        var e = Assert.Throws<NotSupportedException>(() => K.Gemm(GemmSize.Single(2, 2, 2), new GemmOperand(ab), new GemmOperand(bb), output));
        Assert.Contains("Gemm: an epilogue with a C index map", e.Message);
        Assert.Equal([7f, 7f, 7f, 7f], cb.ToArray());
    }

    [Fact]
    public void TheSetRunsEveryEpilogue()
    {
        var epilogues = (IGemmEpilogueKernels)K;
        Assert.True(epilogues.RunsGemmEpilogue(bias: true, residual: true, activation: Chains[2]));
        Assert.False(epilogues.RunsGemmEpilogue(bias: false, activation: []));
    }

    internal static float[] Values(Random rng, long count) =>
        Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();

    internal static float[] Nans(int count) => Enumerable.Repeat(float.NaN, count).ToArray();

    private DeviceBuffer<float> Upload(float[] data) => DeviceData.Upload(K, data);
}

/// <summary>The CPU set's epilogues, on every store path of the packed GEMM.</summary>
public sealed class CpuGemmStoreEpilogueTests : GemmStoreEpilogueTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;
}

/// <summary>The ILGPU set's epilogues (CPU emulator): the tiled kernel's scalar and 16-byte stores, and the mapped kernel.</summary>
[Collection("ilgpu")]
public sealed class IlgpuGemmStoreEpilogueTests : GemmStoreEpilogueTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;
}
