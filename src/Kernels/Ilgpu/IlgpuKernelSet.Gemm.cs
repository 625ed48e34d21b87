using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<int>, ArrayView<int>, ArrayView<int>, GemmParams>? kGemm;
    private DeviceBuffer<int>? noIndex;

    /// <inheritdoc />
    public void Gemm(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA,
        DeviceBuffer<float> b, long strideB, bool transB,
        float beta, DeviceBuffer<float> c, long strideC) =>
        GemmCore("Gemm", batch, m, n, k, alpha, a, strideA, transA, null, 0, b, strideB, transB, null, 0, beta, c, strideC, null, 0);

    /// <inheritdoc />
    /// <remarks>The tiled GEMM kernel with the maps applied in its tile loads and stores.</remarks>
    public void GemmIndexed(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA, DeviceBuffer<int>? aIndex, int aIndexLength,
        DeviceBuffer<float> b, long strideB, bool transB, DeviceBuffer<int>? bIndex, int bIndexLength,
        float beta, DeviceBuffer<float> c, long strideC, DeviceBuffer<int>? cIndex, int cIndexLength) =>
        GemmCore("GemmIndexed", batch, m, n, k, alpha, a, strideA, transA, aIndex, aIndexLength,
            b, strideB, transB, bIndex, bIndexLength, beta, c, strideC, cIndex, cIndexLength);

    private void GemmCore(string opName, int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA, DeviceBuffer<int>? aIndex, int aLen,
        DeviceBuffer<float> b, long strideB, bool transB, DeviceBuffer<int>? bIndex, int bLen,
        float beta, DeviceBuffer<float> c, long strideC, DeviceBuffer<int>? cIndex, int cLen)
    {
        if (batch < 0 || m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"{Name}.{opName}: negative extent (batch {batch}, m {m}, n {n}, k {k}).");
        if (strideA < 0 || strideB < 0 || strideC < 0)
            throw new ArgumentException($"{Name}.{opName}: negative stride ({strideA}, {strideB}, {strideC}).");
        var av = View(a, Extent(batch, strideA, (long)m * k), opName, nameof(a));
        var bv = View(b, Extent(batch, strideB, (long)k * n), opName, nameof(b));
        var cv = View(c, Extent(batch, strideC, (long)m * n), opName, nameof(c));
        var ai = IndexView(aIndex, aLen, (long)m * k, opName, nameof(aIndex));
        var bi = IndexView(bIndex, bLen, (long)k * n, opName, nameof(bIndex));
        var ci = IndexView(cIndex, cLen, (long)m * n, opName, nameof(cIndex));
        if (batch == 0 || m == 0 || n == 0) return;

        var p = new GemmParams
        {
            Batch = batch, M = m, N = n, K = k,
            StrideA = strideA, StrideB = strideB, StrideC = strideC,
            Alpha = alpha, Beta = beta,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
            TileLog2 = Log2(IlgpuKernels.GemmMicro * gemmGroup),
            SlabLog2 = Log2(gemmSlab),
            ALen = aIndex == null ? 0 : aLen, BLen = bIndex == null ? 0 : bLen, CLen = cIndex == null ? 0 : cLen,
        };
        int t = IlgpuKernels.GemmMicro * gemmGroup, g = gemmGroup;
        long tilesN = (n + t - 1) / t, tilesM = (m + t - 1) / t;
        KernelConfig config;
        if (gemmMaxGroups > 0)
        {
            // CPU emulator: a few groups walk all tiles (per-group setup and barriers dominate there).
            int gx = (int)Math.Min(tilesN, gemmMaxGroups);
            int gy = (int)Math.Min(tilesM, Math.Max(1, gemmMaxGroups / gx));
            int gz = (int)Math.Min(batch, Math.Max(1, gemmMaxGroups / (gx * gy)));
            config = new KernelConfig(new Index3D(gx, gy, gz), new Index3D(g, g, 1));
        }
        else
        {
            // GPU: one group per tile (grid-stride loops cover grids beyond the hardware limits).
            config = new KernelConfig(
                new Index3D((int)Math.Min(tilesN, 65535), (int)Math.Min(tilesM, 65535), Math.Min(batch, 65535)),
                new Index3D(g, g, 1));
        }
        var kernel = Kernel(ref kGemm, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<int>, GemmParams>(IlgpuKernels.Gemm));
        Launch(opName, () => kernel(config, av, bv, cv, ai, bi, ci, p), a, b, c, aIndex, bIndex, cIndex);
    }

    /// <summary>The view of an index map (a one-element dummy when null); checks its length divides the matrix.</summary>
    private ArrayView<int> IndexView(DeviceBuffer<int>? index, int length, long matrix, string op, string name)
    {
        if (index == null)
        {
            var dummy = Volatile.Read(ref noIndex);
            if (dummy == null)
            {
                lock (gate) { dummy = noIndex ??= AllocateInt(1); }
            }
            return View(dummy, 1, op, name);
        }
        if (length <= 0)
            throw new ArgumentException($"{Name}.{op}: map '{name}' needs a positive length, got {length}.", name);
        if (matrix % length != 0)
            throw new ArgumentException($"{Name}.{op}: map '{name}' has length {length}, which does not divide the matrix size {matrix}.", name);
        return View(index, length, op, name);
    }

    private static int Log2(int powerOfTwo) => System.Numerics.BitOperations.Log2((uint)powerOfTwo);

    /// <summary>Elements a batched operand spans: the last matrix starts at (batch - 1) * stride.</summary>
    private static long Extent(int batch, long stride, long matrix) =>
        batch == 0 || matrix == 0 ? 0 : (batch - 1) * stride + matrix;
}
