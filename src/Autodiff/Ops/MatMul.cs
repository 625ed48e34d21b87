using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// Matrix product op(a) op(b) over the last two axes, op = transpose when the flag is set. Leading (batch) axes
    /// must be equal, or one operand is a plain matrix shared by every batch entry (one GEMM call with stride 0).
    /// </summary>
    public static Tensor MatMul(this Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        const string op = "matmul";
        var (m, n, ka, outShape, batch, sa, sb) = MatMulShapes(op, a, b, transA, transB);
        var y = Tensor.Empty(outShape, a.Device);
        a.K.Gemm(new GemmSize(batch, m, n, ka), new GemmOperand(a.Buffer, transA, sa), new GemmOperand(b.Buffer, transB, sb),
            new GemmOutput(y.Buffer, (long)m * n));
        return y.Record(op, [a, b], g => [
            a.RequiresGrad ? MatMulGradA(a, b, g, transA, transB) : null,
            b.RequiresGrad ? MatMulGradB(a, b, g, transA, transB) : null]);
    }

    /// <summary>
    /// Checks the operands of a (batched) product op(a) op(b) and returns m, n, k, the output shape, the batch count
    /// and the per-batch strides of a and b (0 for a matrix shared by every batch entry).
    /// </summary>
    private static (int M, int N, int K, int[] OutShape, int Batch, long StrideA, long StrideB) MatMulShapes(
        string op, Tensor a, Tensor b, bool transA, bool transB)
    {
        CheckSameDevice(op, a, b);
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"{op}: both operands need at least 2 axes; got {a.Describe()} and {b.Describe()}.");
        int m = transA ? a.shape[^1] : a.shape[^2];
        int ka = transA ? a.shape[^2] : a.shape[^1];
        int kb = transB ? b.shape[^1] : b.shape[^2];
        int n = transB ? b.shape[^2] : b.shape[^1];
        if (ka != kb)
            throw new ArgumentException(
                $"{op}: inner dimensions differ: {a.Describe()}{(transA ? "ᵀ" : "")} has {ka} columns, {b.Describe()}{(transB ? "ᵀ" : "")} has {kb} rows.");
        var batchA = a.shape[..^2];
        var batchB = b.shape[..^2];
        int[] batchShape;
        if (batchA.Length == 0) batchShape = batchB;
        else if (batchB.Length == 0 || Shape.Equal(batchA, batchB)) batchShape = batchA;
        else
            throw new ArgumentException(
                $"{op}: batch dimensions differ: {a.Describe()} and {b.Describe()} (they must be equal, or one operand must be a matrix).");
        var outShape = batchShape.Concat(new[] { m, n }).ToArray();
        long sa = batchA.Length == 0 ? 0 : (long)m * ka;
        long sb = batchB.Length == 0 ? 0 : (long)ka * n;
        return (m, n, ka, outShape, (int)Shape.Size(batchShape), sa, sb);
    }

    private static Tensor MatMulGradA(Tensor a, Tensor b, Tensor g, bool transA, bool transB)
    {
        // op(A) = G op(B)ᵀ.
        Tensor d = transA ? MatMul(b, g, transB, true) : MatMul(g, b, false, !transB);
        return ReduceBatch(d, a.shape);
    }

    private static Tensor MatMulGradB(Tensor a, Tensor b, Tensor g, bool transA, bool transB)
    {
        if (b.Rank == 2 && a.Rank > 2 && !transA)
        {
            // Batched A, shared B: fold the batch into the rows, one GEMM instead of a batched one and a sum.
            int k = a.shape[^1], n = g.shape[^1];
            var a2 = a.Reshape(-1, k);
            var g2 = g.Reshape(-1, n);
            return transB ? MatMul(g2, a2, true, false) : MatMul(a2, g2, true, false);
        }
        Tensor d = transB ? MatMul(g, a, true, transA) : MatMul(a, g, !transA, false);
        return ReduceBatch(d, b.shape);
    }

    /// <summary>Sums a batched gradient over its batch axes when the operand was a shared matrix.</summary>
    private static Tensor ReduceBatch(Tensor d, int[] shape)
    {
        if (d.Rank == shape.Length) return d;
        return Sum(d, Enumerable.Range(0, d.Rank - 2).ToArray());
    }
}
