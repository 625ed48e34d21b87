using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<int>, ArrayView<int>, ArrayView<int>, GemmParams>? kGemm;
    private DeviceBuffer<int>? noIndex;

    /// <inheritdoc />
    /// <remarks>The tiled GEMM kernel, with index maps applied in its tile loads and stores.</remarks>
    void IKernelSet.Gemm(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c) => GemmCore(size, a, b, c);

    private void GemmCore(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c)
    {
        const string opName = "Gemm";
        size.Check($"{Name}.{opName}");
        a.Check($"{Name}.{opName}", nameof(a));
        b.Check($"{Name}.{opName}", nameof(b));
        c.Check($"{Name}.{opName}");
        var (batch, m, n, k) = size;
        var av = View(a.Buffer, a.Offset + Extent(batch, a.BatchStride, (long)m * k), opName, nameof(a)).SubView(a.Offset);
        var bv = View(b.Buffer, b.Offset + Extent(batch, b.BatchStride, (long)k * n), opName, nameof(b)).SubView(b.Offset);
        var cv = View(c.Buffer, c.Offset + Extent(batch, c.BatchStride, (long)m * n), opName, nameof(c)).SubView(c.Offset);
        var ai = IndexView(a.Index, a.IndexLength, (long)m * k, opName, "aIndex");
        var bi = IndexView(b.Index, b.IndexLength, (long)k * n, opName, "bIndex");
        var ci = IndexView(c.Index, c.IndexLength, (long)m * n, opName, "cIndex");
        if (batch == 0 || m == 0 || n == 0) return;
        long strideA = a.BatchStride, strideB = b.BatchStride, strideC = c.BatchStride;
        bool transA = a.Transposed, transB = b.Transposed;
        float alpha = c.Alpha, beta = c.Beta;
        int aLen = a.IndexLength, bLen = b.IndexLength, cLen = c.IndexLength;
        DeviceBuffer<int>? aIndex = a.Index, bIndex = b.Index, cIndex = c.Index;

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
        Launch(opName, () => kernel(config, av, bv, cv, ai, bi, ci, p), a.Buffer, b.Buffer, c.Buffer, aIndex, bIndex, cIndex);
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
