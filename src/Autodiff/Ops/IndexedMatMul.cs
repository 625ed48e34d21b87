using System.Runtime.CompilerServices;
using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// <see cref="MatMul"/> with its operands read, and its result written, through index maps (the autodiff face of
    /// the index maps of <c>IKernelSet.Gemm</c>'s operand descriptors). A map J of length L applied to a tensor T
    /// (flattened) is the tensor T' with T'[o] = T[(o / L) L + J[o % L]]: a gather by J inside every block of L
    /// elements. The result r satisfies map_c(r) = op(map_a(a)) op(map_b(b)), i.e. C is scattered by
    /// <paramref name="mapC"/>. Every map must be a permutation of 0..L-1 whose length divides its operand's matrix size
    /// (callers check this once; the kernels check the range). The backward products are again mapped products: G is
    /// read through map_c, and each operand gradient is written through that operand's map, so no gather or scatter
    /// ever gets a pass of its own.
    /// </summary>
    internal static Tensor IndexedMatMul(Tensor a, IndexTensor? mapA, Tensor b, IndexTensor? mapB, IndexTensor? mapC,
        bool transA = false, bool transB = false)
    {
        const string op = "indexed_matmul";
        var (m, n, ka, outShape, batch, sa, sb) = MatMulShapes(op, a, b, transA, transB);
        CheckMap(op, "A", mapA, (long)m * ka);
        CheckMap(op, "B", mapB, (long)ka * n);
        CheckMap(op, "C", mapC, (long)m * n);
        var y = Tensor.Empty(outShape, a.Device);
        var dev = a.Device;
        a.K.Gemm(new GemmSize(batch, m, n, ka),
            new GemmOperand(a.Buffer, transA, sa).WithIndex(mapA?.On(dev), mapA?.Length ?? 0),
            new GemmOperand(b.Buffer, transB, sb).WithIndex(mapB?.On(dev), mapB?.Length ?? 0),
            new GemmOutput(y.Buffer, (long)m * n).WithIndex(mapC?.On(dev), mapC?.Length ?? 0));
        return y.Record(op, [a, b], g => [
            a.RequiresGrad ? IndexedMatMulGradA(a, mapA, b, mapB, g, mapC, transA, transB) : null,
            b.RequiresGrad ? IndexedMatMulGradB(a, mapA, b, mapB, g, mapC, transA, transB) : null]);
    }

    private static void CheckMap(string op, string name, IndexTensor? map, long size)
    {
        if (map != null && (map.Length == 0 || size % map.Length != 0))
            throw new ArgumentException($"{op}: the map of {name} has length {map.Length}, which does not divide its matrix size {size}.");
    }

    private static Tensor IndexedMatMulGradA(Tensor a, IndexTensor? mapA, Tensor b, IndexTensor? mapB, Tensor g, IndexTensor? mapC,
        bool transA, bool transB)
    {
        // op(A') = G' op(B')ᵀ with G' = map_c(G); A's gradient is scattered back through map_a.
        Tensor d = transA
            ? IndexedMatMul(b, mapB, g, mapC, mapA, transB, true)
            : IndexedMatMul(g, mapC, b, mapB, mapA, false, !transB);
        return ReduceBatch(d, a.shape);
    }

    private static Tensor IndexedMatMulGradB(Tensor a, IndexTensor? mapA, Tensor b, IndexTensor? mapB, Tensor g, IndexTensor? mapC,
        bool transA, bool transB)
    {
        if (b.Rank == 2 && a.Rank > 2 && !transA)
        {
            // Batched A, shared B: fold the batch into the rows (the maps act on flat offsets, so they carry over).
            int k = a.shape[^1], n = g.shape[^1];
            var a2 = a.Reshape(-1, k);
            var g2 = g.Reshape(-1, n);
            return transB ? IndexedMatMul(g2, mapC, a2, mapA, mapB, true, false) : IndexedMatMul(a2, mapA, g2, mapC, mapB, true, false);
        }
        Tensor d = transB
            ? IndexedMatMul(g, mapC, a, mapA, mapB, true, transA)
            : IndexedMatMul(a, mapA, g, mapC, mapB, !transA, false);
        return ReduceBatch(d, b.shape);
    }

    private static readonly ConditionalWeakTable<IndexTensor, IndexTensor> InverseCache = new();

    /// <summary>
    /// The inverse of a permutation index (cached per index tensor); throws naming <paramref name="op"/> when
    /// <paramref name="index"/> is not a permutation of 0..Length-1.
    /// </summary>
    internal static IndexTensor InversePermutation(string op, string what, IndexTensor index)
    {
        if (InverseCache.TryGetValue(index, out var cached)) return cached;
        int len = index.Length;
        var inv = new int[len];
        Array.Fill(inv, -1);
        for (int i = 0; i < len; i++)
        {
            int v = index[i];
            if (v < 0 || v >= len)
                throw new ArgumentException($"{op}: the {what} is not a permutation: index {v} at position {i} is out of range [0, {len}).");
            if (inv[v] >= 0)
                throw new ArgumentException($"{op}: the {what} is not a permutation: index {v} appears twice (positions {inv[v]} and {i}).");
            inv[v] = i;
        }
        var result = new IndexTensor(inv);
        InverseCache.AddOrUpdate(index, result);
        return result;
    }
}
