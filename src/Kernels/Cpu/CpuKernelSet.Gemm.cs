using Engine.Kernels.Cpu.Gemm;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet : IGemmEpilogueKernels, IGemmGatherKernels
{
    /// <inheritdoc />
    public bool RunsGemmEpilogue(bool bias, bool residual = false, IReadOnlyList<UnaryStep>? activation = null) => activation is not { Count: 0 };

    /// <inheritdoc />
    public bool RunsGemmTree(ElementwiseExpression tree) => tree.Arity <= ElementwiseExpression.MaxInputs;

    /// <inheritdoc />
    /// <remarks>
    /// A mapped product runs the packed GEMM: a mapped operand is gathered into the panels a plain one is copied into,
    /// and the k blocking (the order of each element's sum) depends on the extents alone. So the bits agree wherever
    /// the plain product runs the packed GEMM too, not where it takes a matrix-vector or split-depth path.
    /// </remarks>
    public bool GatherKeepsBits(GemmSize size, bool transposedA, bool transposedB) =>
        SgemmSkinny.Choose(size.Batch, size.M, size.N, size.K, transposedA, transposedB) == SgemmSkinny.Path.Packed;

    /// <summary>
    /// <see cref="IKernelSet.Gemm"/>: the packed, cache-blocked GEMM with an AVX-512 8x32 micro-kernel (AVX2 6x16 and
    /// scalar fallbacks), split over cores (see <see cref="SgemmPacked"/>); with index maps, the gathers are folded
    /// into operand packing (each mapped row segment is gathered into a per-thread staging buffer, AVX2 gathers,
    /// before the usual interleave) and the C scatter into the tile merge. Without maps, matrix-vector and tall-depth
    /// shapes take the dedicated paths of <see cref="SgemmSkinny"/>. An operand the whole batch shares (batch stride 0,
    /// no map) is packed once per call rather than once per matrix.
    /// </summary>
    internal unsafe void Gemm(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c)
    {
        const string op = "Gemm";
        size.Check(op);
        a.Check(op, nameof(a));
        b.Check(op, nameof(b));
        c.Check(op, runsEpilogues: true, size, runsTrees: true);
        var (batch, m, n, k) = size;
        float alpha = c.Alpha, beta = c.Beta;
        float[] aa = Arr(a.Buffer), ba = Arr(b.Buffer), ca = Arr(c.Buffer);
        var epilogue = c.Epilogue;
        float[] bias = epilogue.Bias is { } biasBuffer ? Arr(biasBuffer) : AbsentValues;
        float[] residual = epilogue.Residual is { } residualBuffer ? Arr(residualBuffer) : AbsentValues;
        float[] activated = epilogue.ActivationOutput is { } activatedBuffer ? Arr(activatedBuffer) : AbsentValues;
        var activation = epilogue.Activation is { } steps ? GemmActivation.For(steps) : null;
        var tree = epilogue.Tree is { } treeStep ? GemmTree.For(treeStep.Expression) : null;
        int[] ai = IndexArray(a.Index, a.IndexLength, a.IndexEntries(batch), a.EntryBound, "aIndex");
        int[] bi = IndexArray(b.Index, b.IndexLength, b.IndexEntries(batch), b.EntryBound, "bIndex");
        int[] ci = IndexArray(c.Index, c.IndexLength, c.IndexLength, c.IndexLength, "cIndex");
        if (batch == 0 || m == 0 || n == 0)
        {
            return;
        }

        // The engine works on raw pointers: check every batch item lies inside its buffer. A C offset stays inside
        // the block of len elements holding the unmapped one (its map is a permutation of [0, len)); an operand's
        // mapped reads stay below its entry bound past the start of their block (see GemmOperand.ReadExtent).
        CheckMapped(nameof(c), c.Index, c.IndexLength, (long)m * n);
        CheckExtent(nameof(c), ca.Length, c.Offset, (batch - 1) * c.BatchStride + (long)m * n);
        bool readsAb = k > 0 && alpha != 0f;
        if (readsAb)
        {
            CheckMapped(nameof(a), a.Index, a.IndexLength, (long)m * k);
            CheckMapped(nameof(b), b.Index, b.IndexLength, (long)k * n);
            CheckExtent(nameof(a), aa.Length, a.Offset, a.ReadExtent(batch, (long)m * k));
            CheckExtent(nameof(b), ba.Length, b.Offset, b.ReadExtent(batch, (long)k * n));
        }

        bool indexed = a.Index != null || b.Index != null || c.Index != null;
        fixed (float* pa0 = aa, pb0 = ba, pc0 = ca, pbias = bias, pr0 = residual, py0 = activated)
        fixed (int* pai = ai, pbi = bi, pci = ci)
        {
            // Operands a GEMM does not read (k = 0 or alpha = 0) may be shorter than their offset: never step past them.
            float* pa = readsAb ? pa0 + a.Offset : pa0, pb = readsAb ? pb0 + b.Offset : pb0, pc = pc0 + c.Offset;
            // The residual, the activation output and the tree's inputs are laid out as C: the same offset from their buffers' starts.
            var store = new SgemmPacked.StoreEpilogue(epilogue.Bias == null ? null : pbias, bias.Length / n, pc0,
                epilogue.Residual == null ? null : pr0, activation, epilogue.ActivationOutput == null ? null : py0, tree,
                epilogue.Tree is { } step ? GemmTreeInputs(step, pc0) : default);
            if (!indexed)
            {
                if (SgemmSkinny.TryGemm(batch, m, n, k, alpha, pa, a.BatchStride, a.Transposed, pb, b.BatchStride, b.Transposed,
                    beta, pc, c.BatchStride, store))
                {
                    return;
                }
                SgemmPacked.Gemm(batch, m, n, k, alpha, pa, a.BatchStride, a.Transposed, pb, b.BatchStride, b.Transposed,
                    beta, pc, c.BatchStride, store);
                return;
            }
            SgemmPacked.GemmIndexed(batch, m, n, k, alpha,
                pa, a.BatchStride, a.Transposed, a.Index == null ? null : pai, a.IndexLength,
                pb, b.BatchStride, b.Transposed, b.Index == null ? null : pbi, b.IndexLength,
                beta, pc, c.BatchStride, c.Index == null ? null : pci, c.IndexLength, store, a.IndexBatchStride, b.IndexBatchStride);
        }
    }

    /// <summary>What an absent epilogue buffer pins (never read or written): one shared array, not one per call.</summary>
    private static readonly float[] AbsentValues = [0f];

    /// <summary>What an absent index map pins (never read).</summary>
    private static readonly int[] AbsentIndex = [0];

    /// <summary>
    /// The host array of a map of <paramref name="length"/> entries per matrix, its first <paramref name="entries"/>
    /// (what the batch reads) checked to lie in [0, <paramref name="bound"/>).
    /// </summary>
    private static int[] IndexArray(DeviceBuffer<int>? index, int length, long entries, long bound, string name)
    {
        if (index == null)
        {
            return AbsentIndex;
        }
        int[] data = Arr(index);
        if (length <= 0 || length > data.Length)
        {
            throw new ArgumentException($"Gemm: {name} length {length} must be in [1, {data.Length}] (its buffer's size).", name);
        }
        if (entries > data.Length)
        {
            throw new ArgumentException($"Gemm: {name} needs {entries} entries for the batch, but its buffer holds {data.Length}.", name);
        }
        for (int i = 0; i < entries; i++)
        {
            if (data[i] < 0 || data[i] >= bound)
            {
                throw new ArgumentException($"Gemm: {name}[{i}] = {data[i]} is out of range [0, {bound}).", name);
            }
        }
        return data;
    }

    private static void CheckMapped(string name, DeviceBuffer<int>? index, int length, long size)
    {
        if (index != null && size % length != 0)
        {
            throw new ArgumentException($"Gemm: the map of {name} has length {length}, which does not divide the matrix size {size}.", name);
        }
    }

    /// <summary>Throws when <paramref name="extent"/> elements read or written from <paramref name="offset"/> leave the buffer.</summary>
    private static void CheckExtent(string name, long length, long offset, long extent)
    {
        long needed = offset + extent;
        if (needed > length)
        {
            throw new ArgumentException($"Gemm: {name} needs {needed} elements for the batch, but its buffer holds {length}.", name);
        }
    }
}
