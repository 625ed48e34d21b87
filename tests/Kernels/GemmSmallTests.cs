using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Cpu.Gemm;

using static Engine.Tests.Kernels.GemmTestData;

namespace Engine.Tests.Kernels;

/// <summary>
/// The CPU set's small-product paths of the packed GEMM (<see cref="SgemmPacked.SmallProductPaths"/>): an operand
/// shared by the batch (batch stride 0) packed once per call, and the vector packing of six-row panels. Each product
/// against the double host reference on shapes around the tile and slice boundaries, with A, B, both or neither
/// shared, every transpose combination, beta 0 (C prefilled with NaN) and 1, gaps between batch items that stay
/// untouched; the bias, residual and activation epilogues bit for bit against the product and the host's
/// elementwise steps; and the same bits with the paths off, for one and two threads and on every call; and the same bits
/// for products with a store epilogue whichever way they are split over threads (<see cref="SgemmPacked.EpilogueCutsRows"/>)
/// and wherever the epilogue runs (<see cref="SgemmPacked.TileEpilogue"/>).
/// </summary>
public sealed class GemmSmallTests
{
    private static readonly IKernelSet K = Device.Get(DeviceKind.Cpu).Kernels;

    /// <summary>Which operands the batch shares.</summary>
    public enum Shared
    {
        /// <summary>Every matrix has its own A and B.</summary>
        None,
        /// <summary>One A for the batch.</summary>
        A,
        /// <summary>One B for the batch.</summary>
        B,
        /// <summary>One A and one B for the batch.</summary>
        Both,
    }

    // batch, m, n, k: single matrices and batches, sides of 1, 2 and primes, edges of the six- and eight-row panels,
    // several k slices (257: two), the MLP's N = 10, and batches large enough to spread over threads
    private static readonly (int Batch, int M, int N, int K)[] Shapes =
    [
        (1, 7, 13, 5),
        (2, 1, 1, 1),
        (2, 2, 3, 2),
        (3, 5, 17, 8),
        (3, 6, 16, 16),
        (2, 13, 10, 31),
        (4, 11, 29, 257),
        (5, 37, 41, 64),
        (3, 64, 10, 128),
        (9, 32, 64, 300),
        (16, 48, 24, 32),
    ];

    public static TheoryData<int, Shared, bool, bool, float> Cases()
    {
        var data = new TheoryData<int, Shared, bool, bool, float>();
        for (int s = 0; s < Shapes.Length; s++)
            foreach (var shared in Enum.GetValues<Shared>())
                foreach (bool ta in new[] { false, true })
                    foreach (bool tb in new[] { false, true })
                        data.Add(s, shared, ta, tb, (s + (int)shared) % 2 == 0 ? 0f : 1f);
        return data;
    }

    /// <summary>
    /// C_p = alpha op(A_p) op(B_p) + beta C_p against the double reference: operands with NaN between batch items (not
    /// read), C with NaN gaps (untouched) and NaN everywhere when beta = 0 (not read).
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void TheProductMatchesTheReference(int shape, Shared shared, bool transA, bool transB, float beta)
    {
        var (batch, m, n, k) = Shapes[shape];
        var rng = new Random(shape * 16 + (int)shared * 4 + (transA ? 2 : 0) + (transB ? 1 : 0));
        float alpha = beta == 0f ? 1f : 0.5f;
        var (a, strideA, b, strideB) = Operands(rng, batch, m, n, k, shared);
        long sizeC = (long)m * n, strideC = sizeC + 5;
        var c = beta == 0f ? Nans((int)((batch - 1) * strideC + sizeC + 4)) : Laid(rng, batch, sizeC, strideC, 4);

        var expected = HostReference.Gemm(batch, m, n, k, alpha, a, strideA, transA, b, strideB, transB, beta, c, strideC, out var magnitude);
        float[] actual = Run(K, new GemmSize(batch, m, n, k), a, strideA, transA, b, strideB, transB, c, strideC, alpha, beta);
        KernelAssert.Close(expected, actual, i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i],
            $"Gemm {batch}x{m}x{n}x{k} shared={shared} transA={transA} transB={transB} beta={beta}");
    }

    public static TheoryData<int, Shared, bool, bool, bool> EpilogueCases()
    {
        var data = new TheoryData<int, Shared, bool, bool, bool>();
        foreach (int s in new[] { 2, 5, 6, 8, 10 })
            foreach (var shared in new[] { Shared.A, Shared.B })
                foreach (bool ta in new[] { false, true })
                    data.Add(s, shared, ta, !ta, (s + (ta ? 1 : 0)) % 2 == 0);
        return data;
    }

    /// <summary>
    /// A product with a bias, a residual and a ReLU stored in its epilogue (into C, or beside it with C keeping the
    /// pre-activation) equals, bit for bit, the same product followed by the host's float additions and ReLU (in the
    /// epilogue's order), with a shared operand; the gaps between batch items stay NaN.
    /// </summary>
    [Theory]
    [MemberData(nameof(EpilogueCases))]
    public void TheEpilogueRunsOnTheSharedPath(int shape, Shared shared, bool transA, bool transB, bool beside)
    {
        var (batch, m, n, k) = Shapes[shape];
        var rng = new Random(shape * 7 + (int)shared);
        var (a, strideA, b, strideB) = Operands(rng, batch, m, n, k, shared);
        long sizeC = (long)m * n, strideC = sizeC + 3;
        int length = (int)((batch - 1) * strideC + sizeC + 2);
        var size = new GemmSize(batch, m, n, k);
        float[] bias = Laid(rng, 1, n, n, 0), residual = Laid(rng, batch, sizeC, strideC, 2);
        float[] plain = Run(K, size, a, strideA, transA, b, strideB, transB, Nans(length), strideC, 1f, 0f);

        using var ab = DeviceData.Upload(K, a);
        using var bb = DeviceData.Upload(K, b);
        using var cb = DeviceData.Upload(K, Nans(length));
        using var biasBuffer = DeviceData.Upload(K, bias);
        using var residualBuffer = DeviceData.Upload(K, residual);
        using var activated = DeviceData.Upload(K, Nans(length));
        var epilogue = new GemmEpilogue(biasBuffer, [UnaryOp.Relu]) { Residual = residualBuffer, ActivationOutput = beside ? activated : null };
        K.Gemm(size, new GemmOperand(ab, transA, strideA), new GemmOperand(bb, transB, strideB),
            new GemmOutput(cb, strideC) { Epilogue = epilogue });

        float[] sums = Nans(length), relus = Nans(length);
        for (int p = 0; p < batch; p++)
            for (int e = 0; e < sizeC; e++)
            {
                long at = p * strideC + e;
                sums[at] = plain[at] + bias[e % n] + residual[at];
                relus[at] = sums[at] > 0f ? sums[at] : 0f;
            }
        Assert.Equal(beside ? sums : relus, cb.ToArray());
        Assert.Equal(beside ? relus : Nans(length), activated.ToArray());
    }

    public static TheoryData<int, Shared, bool, bool> BitCases() => new()
    {
        { 6, Shared.B, false, true },
        { 7, Shared.A, false, false },
        { 9, Shared.A, true, false },
        { 10, Shared.B, true, true },
        { 10, Shared.None, false, true },
    };

    /// <summary>
    /// The small-product paths keep the bits of the packed GEMM without them (same packed values, same k slices), and
    /// one thread, two threads and a repeated call agree bit for bit.
    /// </summary>
    [Theory]
    [MemberData(nameof(BitCases))]
    public void TheBitsDoNotDependOnThePathOrTheThreadCount(int shape, Shared shared, bool transA, bool transB)
    {
        var (batch, m, n, k) = Shapes[shape];
        var rng = new Random(shape + 100);
        var (a, strideA, b, strideB) = Operands(rng, batch, m, n, k, shared);
        long sizeC = (long)m * n;
        var c = Laid(rng, batch, sizeC, sizeC, 0);
        var size = new GemmSize(batch, m, n, k);
        float[] Call() => Run(K, size, a, strideA, transA, b, strideB, transB, c, sizeC, 0.75f, 1f);

        int saved = CpuThreads.Count;
        try
        {
            SgemmPacked.SmallProductPaths = false;
            CpuThreads.Count = 2;
            float[] before = Call();
            SgemmPacked.SmallProductPaths = true;
            CpuThreads.Count = 1;
            float[] one = Call();
            CpuThreads.Count = 2;
            float[] two = Call();
            float[] again = Call();
            Assert.Equal(Bits(before), Bits(one));
            Assert.Equal(Bits(one), Bits(two));
            Assert.Equal(Bits(two), Bits(again));
        }
        finally
        {
            SgemmPacked.SmallProductPaths = true;
            CpuThreads.Count = saved;
        }
    }

    /// <summary>What a product stores besides C in <see cref="TheEpilogueBitsDoNotDependOnTheSplitOrTheThreadCount"/>.</summary>
    public enum Epilogue
    {
        /// <summary>No epilogue.</summary>
        None,
        /// <summary>A bias row.</summary>
        Bias,
        /// <summary>A ReLU stored into C.</summary>
        Relu,
        /// <summary>A bias and a ReLU stored into C (the MLP's hidden layers).</summary>
        BiasRelu,
        /// <summary>A bias and a ReLU stored into C = 0.5 C + A B (beta != 0: C is read).</summary>
        BiasReluOntoC,
        /// <summary>A bias and GELU (erf) stored into C.</summary>
        BiasGelu,
        /// <summary>A residual.</summary>
        Residual,
        /// <summary>A bias of as many rows as C, a residual and a ReLU stored beside C (C keeps the pre-activation).</summary>
        MatrixBiasResidualReluBeside,
    }

    // m, n, k of one product: the small MLP's three (A [256, in] times W^T), sides of 1, primes, non-multiples of the
    // six- and eight-row panels and of the 16- and 32-column panels, N = 10, several k slices
    private static readonly (int M, int N, int K)[] SplitShapes =
    [
        (256, 256, 64),
        (256, 128, 256),
        (256, 10, 128),
        (1, 37, 20),
        (97, 61, 53),
        (130, 129, 131),
        (7, 300, 5),
        (300, 7, 300),
        (61, 13, 257),
    ];

    public static TheoryData<int, Epilogue> SplitCases()
    {
        var data = new TheoryData<int, Epilogue>();
        for (int s = 0; s < SplitShapes.Length; s++)
            foreach (var epilogue in Enum.GetValues<Epilogue>())
                data.Add(s, epilogue);
        return data;
    }

    /// <summary>
    /// A product with a store epilogue, split over two threads the way it is split without one (blocks side by side in
    /// C's rows) with the epilogue's passes over each block after it, split into whole rows
    /// (<see cref="SgemmPacked.EpilogueCutsRows"/>), with a bias row and a ReLU stored by the micro-kernel where it can
    /// (<see cref="SgemmPacked.TileEpilogue"/>), and on one thread: the same bits in C and in the activation output, on
    /// every call.
    /// </summary>
    [Theory]
    [MemberData(nameof(SplitCases))]
    public void TheEpilogueBitsDoNotDependOnTheSplitOrTheThreadCount(int shape, Epilogue epilogue)
    {
        var (m, n, k) = SplitShapes[shape];
        var rng = new Random(shape * 8 + (int)epilogue);
        long sizeC = (long)m * n;
        using var ab = DeviceData.Upload(K, Laid(rng, 1, (long)m * k, 0, 0));
        using var bb = DeviceData.Upload(K, Laid(rng, 1, (long)n * k, 0, 0));
        int biasRows = epilogue == Epilogue.MatrixBiasResidualReluBeside ? m : 1;
        using var bias = DeviceData.Upload(K, Laid(rng, 1, (long)biasRows * n, 0, 0));
        using var residual = DeviceData.Upload(K, Laid(rng, 1, sizeC, 0, 0));
        var store = epilogue switch
        {
            Epilogue.None => default,
            Epilogue.Bias => new GemmEpilogue(bias),
            Epilogue.Relu => new GemmEpilogue(null, [UnaryOp.Relu]),
            Epilogue.BiasRelu or Epilogue.BiasReluOntoC => new GemmEpilogue(bias, [UnaryOp.Relu]),
            Epilogue.BiasGelu => new GemmEpilogue(bias, [UnaryOp.GeluErf]),
            Epilogue.Residual => new GemmEpilogue(null) { Residual = residual },
            _ => new GemmEpilogue(bias, [UnaryOp.Relu]) { Residual = residual },
        };
        bool beside = epilogue == Epilogue.MatrixBiasResidualReluBeside, ontoC = epilogue == Epilogue.BiasReluOntoC;
        float[] initialC = ontoC ? Laid(rng, 1, sizeC, 0, 0) : Nans((int)sizeC);
        (int[] C, int[] Activated) Call()
        {
            using var c = DeviceData.Upload(K, initialC);
            using var activated = DeviceData.Upload(K, Nans((int)sizeC));
            K.Gemm(new GemmSize(1, m, n, k), new GemmOperand(ab), new GemmOperand(bb, true),
                new GemmOutput(c) { Beta = ontoC ? 0.5f : 0f, Epilogue = beside ? store with { ActivationOutput = activated } : store });
            return (Bits(c.ToArray()), Bits(activated.ToArray()));
        }

        int saved = CpuThreads.Count;
        try
        {
            SgemmPacked.EpilogueCutsRows = false;
            SgemmPacked.TileEpilogue = false;
            CpuThreads.Count = 2;
            var sideBySide = Call();
            SgemmPacked.EpilogueCutsRows = true;
            var blockPasses = Call();
            SgemmPacked.TileEpilogue = true;
            var rows = Call();
            var again = Call();
            CpuThreads.Count = 1;
            var one = Call();
            Assert.DoesNotContain(sideBySide.C, bits => float.IsNaN(BitConverter.Int32BitsToSingle(bits)));
            Assert.Equal(sideBySide.C, blockPasses.C);
            Assert.Equal(sideBySide.Activated, blockPasses.Activated);
            Assert.Equal(sideBySide.C, rows.C);
            Assert.Equal(sideBySide.Activated, rows.Activated);
            Assert.Equal(rows.C, again.C);
            Assert.Equal(rows.Activated, again.Activated);
            Assert.Equal(rows.C, one.C);
            Assert.Equal(rows.Activated, one.Activated);
        }
        finally
        {
            SgemmPacked.EpilogueCutsRows = true;
            SgemmPacked.TileEpilogue = true;
            CpuThreads.Count = saved;
        }
    }

    /// <summary>
    /// Two parts of the MLP's products: side by side in C's rows without a preference (the cheaper split by the cost
    /// model), one above the other when whole rows are preferred, and side by side again for C^T (whose columns are
    /// the caller's rows); a preference the panels cannot meet (one row panel) falls back to the other cut.
    /// </summary>
    [Theory]
    [InlineData(256, 256, 64)]
    [InlineData(256, 128, 256)]
    [InlineData(6, 256, 64)]
    public void ThePartitionKeepsWholeRowsWhenAsked(int m, int n, int k)
    {
        bool oneRowPanel = m <= Avx2Kernel6x16.MR;
        SgemmPacked.Partition<Avx2Kernel6x16>(m, n, k, 2, out int anyRows, out int anyCols);
        SgemmPacked.Partition<Avx2Kernel6x16>(m, n, k, 2, out int rows, out int rowsCols, prefer: SgemmPacked.Cut.Rows);
        SgemmPacked.Partition<Avx2Kernel6x16>(m, n, k, 2, out int columnsRows, out int columns, prefer: SgemmPacked.Cut.Columns);
        Assert.Equal((1, 2), (anyRows, anyCols));
        Assert.Equal(oneRowPanel ? (1, 2) : (2, 1), (rows, rowsCols));
        Assert.Equal((1, 2), (columnsRows, columns));
    }

    /// <summary>
    /// A deep product is cut the cheaper way even against the preference: the preference costs a fixed amount per
    /// element of the block, which at depth 784 is less than packing B again for each of four row blocks (the
    /// compiled MLP's 256 x 1024 x 784 product with its bias and ReLU); at depth 64 the same preference decides.
    /// </summary>
    [Fact]
    public void ADeepProductCutsAgainstThePreferenceWhereRepackingBCostsMore()
    {
        SgemmPacked.Partition<Avx2Kernel6x16>(256, 1024, 784, 4, out int anyRows, out int anyCols);
        SgemmPacked.Partition<Avx2Kernel6x16>(256, 1024, 784, 4, out int rows, out int cols, prefer: SgemmPacked.Cut.Rows);
        Assert.Equal((1, 4), (anyRows, anyCols));
        Assert.Equal((1, 4), (rows, cols));
        SgemmPacked.Partition<Avx2Kernel6x16>(256, 1024, 64, 4, out int shallowRows, out int shallowCols, prefer: SgemmPacked.Cut.Rows);
        Assert.Equal((4, 1), (shallowRows, shallowCols));
    }

    public static TheoryData<bool, int, int> PackCases()
    {
        var data = new TheoryData<bool, int, int>();
        foreach (bool trans in new[] { false, true })
            foreach (int rows in new[] { 1, 5, 6, 7, 12, 13 })
                foreach (int depth in new[] { 1, 7, 8, 9, 24, 31 })
                    data.Add(trans, rows, depth);
        return data;
    }

    /// <summary>
    /// Six-row A panels (the AVX2 kernel's) packed with the vector routines equal the element-by-element packing,
    /// zero padding included, and nothing past the panels is written.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackCases))]
    public unsafe void SixRowPanelsMatchTheElementwisePacking(bool transA, int rows, int depth)
    {
        var rng = new Random(rows * 64 + depth);
        int lda = (transA ? rows : depth) + 3;
        float[] a = Laid(rng, 1, (long)(transA ? depth : rows) * lda, 0, 0);
        int panels = (rows + 5) / 6, length = panels * 6 * depth;
        float[] Pack(bool vector)
        {
            float[] dst = Nans(length + 8);
            SgemmPacked.SmallProductPaths = vector;
            try
            {
                fixed (float* pa = a, pd = dst)
                    GemmPacking.PackA<Avx2Kernel6x16>(pa, lda, transA, 0, 0, rows, depth, pd);
            }
            finally
            {
                SgemmPacked.SmallProductPaths = true;
            }
            return dst;
        }
        float[] vectorPacked = Pack(true), elementwise = Pack(false);
        Assert.Equal(Bits(elementwise), Bits(vectorPacked));
        Assert.All(vectorPacked[length..], v => Assert.True(float.IsNaN(v)));
    }

    /// <summary>A and B with NaN between batch items, one matrix when shared (batch stride 0).</summary>
    private static (float[] A, long StrideA, float[] B, long StrideB) Operands(Random rng, int batch, int m, int n, int k, Shared shared)
    {
        long sizeA = (long)m * k, sizeB = (long)k * n;
        long strideA = shared is Shared.A or Shared.Both ? 0 : sizeA + 3;
        long strideB = shared is Shared.B or Shared.Both ? 0 : sizeB + 2;
        return (Laid(rng, batch, sizeA, strideA, 2), strideA, Laid(rng, batch, sizeB, strideB, 1), strideB);
    }
}
