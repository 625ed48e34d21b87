using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Cpu.Gemm;

using static Engine.Tests.Kernels.GemmTestData;

namespace Engine.Tests.Kernels;

/// <summary>
/// The CPU set's dedicated paths for degenerate and tall-skinny products (<see cref="SgemmSkinny"/>): matrix-vector
/// (M = 1 or N = 1) and tall depth split into k slices, each
/// against the double host reference on shapes around its dispatch boundaries, every transpose combination, beta 0
/// (C prefilled with NaN) and 1, batches with gaps between matrices (which must stay untouched) and a shared operand;
/// and the same bits for one and two threads and on every call. The epilogues on these paths are checked bit for bit
/// against the separate calls in <see cref="GemmStoreEpilogueTests"/>.
/// </summary>
public sealed class GemmSkinnyTests
{
    private static readonly IKernelSet K = Device.Get(DeviceKind.Cpu).Kernels;

    // batch, m, n, k, the path every transpose combination takes (SplitK: only A transposed and B not; the others pack)
    private static readonly (int Batch, int M, int N, int K, SgemmSkinny.Path Path)[] Shapes =
    [
        (1, 1, 1, 1, SgemmSkinny.Path.Gemv),
        (1, 1, 1, 1000, SgemmSkinny.Path.Gemv),
        (1, 1, 129, 67, SgemmSkinny.Path.Gemv),      // a row of C: computed as a column of C^T
        (1, 67, 1, 129, SgemmSkinny.Path.Gemv),      // two full column groups and a ragged one
        (3, 257, 1, 33, SgemmSkinny.Path.Gemv),      // batched, several row parts
        (2, 1, 100, 65, SgemmSkinny.Path.Gemv),
        (1, 300, 1, 2, SgemmSkinny.Path.Gemv),
        (1, 8, 9, 4096, SgemmSkinny.Path.SplitK),     // exactly two slices, the smallest side taken
        (1, 64, 7, 20480, SgemmSkinny.Path.Packed),   // one side too small: bound by reading the operands
        (1, 64, 48, 4500, SgemmSkinny.Path.SplitK),   // a short last slice
        (1, 130, 126, 4097, SgemmSkinny.Path.SplitK), // M · N at the bound, ragged tiles in every slice
        (1, 8, 9, 4095, SgemmSkinny.Path.Packed),     // one short of two slices
        (2, 64, 48, 4500, SgemmSkinny.Path.Packed),   // batched: the packed path spreads the batch
    ];

    public static TheoryData<int, bool, bool, float> Cases()
    {
        var data = new TheoryData<int, bool, bool, float>();
        for (int s = 0; s < Shapes.Length; s++)
            foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            foreach (float beta in new[] { 0f, 1f })
                data.Add(s, ta, tb, beta);
        return data;
    }

    /// <summary>
    /// C_p = alpha op(A_p) op(B_p) + beta C_p against the double reference: operands with NaN between batch items (not
    /// read), C with NaN gaps (untouched) and NaN everywhere when beta = 0 (not read); the second half of a batch of
    /// three shares its B (batch stride 0) on the odd shapes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void TheProductMatchesTheReference(int shape, bool transA, bool transB, float beta)
    {
        var (batch, m, n, k, path) = Shapes[shape];
        var expectedPath = path == SgemmSkinny.Path.SplitK && !(transA && !transB) ? SgemmSkinny.Path.Packed : path;
        Assert.Equal(expectedPath, SgemmSkinny.Choose(batch, m, n, k, transA, transB));

        var rng = new Random(shape * 8 + (transA ? 4 : 0) + (transB ? 2 : 0) + (int)beta);
        float alpha = beta == 0f ? 1f : 0.5f;
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        long strideA = sizeA + 3, strideB = shape % 2 == 1 ? 0 : sizeB + 2, strideC = sizeC + 5;
        var a = Laid(rng, batch, sizeA, strideA, 2);
        var b = Laid(rng, batch, sizeB, strideB, 1);
        var c = beta == 0f ? Nans((int)((batch - 1) * strideC + sizeC + 4)) : Laid(rng, batch, sizeC, strideC, 4);

        var expected = HostReference.Gemm(batch, m, n, k, alpha, a, strideA, transA, b, strideB, transB, beta, c, strideC, out var magnitude);
        float[] actual = Run(K, new GemmSize(batch, m, n, k), a, strideA, transA, b, strideB, transB, c, strideC, alpha, beta);
        KernelAssert.Close(expected, actual, i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i],
            $"Gemm {batch}x{m}x{n}x{k} transA={transA} transB={transB} beta={beta} ({expectedPath})");
    }

    public static TheoryData<int, int, int, int, bool, bool> ThreadCases() => new()
    {
        { 1, 20480, 1, 128, false, true },  // matrix-vector by rows
        { 1, 1, 256, 4096, true, false },   // matrix-vector by column groups
        { 1, 64, 64, 20480, true, false },  // tall depth
    };

    /// <summary>One thread, two threads and a repeated call give the same bits (the work is cut by the shape alone).</summary>
    [Theory]
    [MemberData(nameof(ThreadCases))]
    public void TheBitsDoNotDependOnTheThreadCount(int batch, int m, int n, int k, bool transA, bool transB)
    {
        var rng = new Random(m + n + k);
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        var a = Laid(rng, batch, sizeA, sizeA, 0);
        var b = Laid(rng, batch, sizeB, sizeB, 0);
        var c = Laid(rng, batch, sizeC, sizeC, 0);
        var size = new GemmSize(batch, m, n, k);
        Assert.NotEqual(SgemmSkinny.Path.Packed, SgemmSkinny.Choose(batch, m, n, k, transA, transB));

        int saved = CpuThreads.Count;
        try
        {
            CpuThreads.Count = 1;
            float[] one = Run(K, size, a, sizeA, transA, b, sizeB, transB, c, sizeC, 0.75f, 1f);
            CpuThreads.Count = 2;
            float[] two = Run(K, size, a, sizeA, transA, b, sizeB, transB, c, sizeC, 0.75f, 1f);
            float[] again = Run(K, size, a, sizeA, transA, b, sizeB, transB, c, sizeC, 0.75f, 1f);
            Assert.Equal(Bits(one), Bits(two));
            Assert.Equal(Bits(two), Bits(again));
        }
        finally
        {
            CpuThreads.Count = saved;
        }
    }
}
