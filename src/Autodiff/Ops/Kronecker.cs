namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// y = J_out (A ⊗ B) J_in x over the last axis of <paramref name="x"/> ([..., n·q] to [..., m·p]) without forming
    /// A ⊗ B. With row-major flattening, x viewed as X [n, q] gives Y = A X Bᵀ [m, p], two small GEMMs per sample;
    /// the order (A first or Bᵀ first) is chosen for fewer FLOPs. <paramref name="a"/> null means A = I_n (the PK
    /// layer's shared block): one GEMM over all blocks. The optional index tensors are gathers: (J v)[i] = v[J[i]].
    /// </summary>
    public static Tensor KroneckerMatMul(this Tensor x, Tensor? a, Tensor b, int n, IndexTensor? inputIndex = null, IndexTensor? outputIndex = null)
    {
        const string op = "kronecker";
        x.CheckAlive(op);
        if (a != null) CheckSameDevice(op, x, a);
        CheckSameDevice(op, x, b);
        if (b.Rank != 2 || (a != null && a.Rank != 2))
            throw new ArgumentException($"{op}: factors must be matrices; got A {a?.Describe() ?? "I"} and B {b.Describe()}.");
        int p = b.shape[0], q = b.shape[1];
        int m = a?.shape[0] ?? n;
        if (a != null && a.shape[1] != n)
            throw new ArgumentException($"{op}: A {a.Describe()} has {a.shape[1]} columns but n = {n}.");
        if (x.Rank < 1 || x.shape[^1] != n * q)
            throw new ArgumentException(
                $"{op}: input {x.Describe()} must end in n·q = {n}·{q} = {n * q} features for A {(a == null ? $"I_{n}" : a.Describe())} ⊗ B {b.Describe()}.");
        if (inputIndex != null && inputIndex.Length != n * q)
            throw new ArgumentException($"{op}: the input permutation has {inputIndex.Length} entries, the input has {n * q} features.");
        if (outputIndex != null && outputIndex.Length != m * p)
            throw new ArgumentException($"{op}: the output permutation has {outputIndex.Length} entries, the output has {m * p} features.");

        var lead = x.shape[..^1];
        var v = inputIndex != null ? x.IndexSelect(-1, inputIndex) : x;
        Tensor y;
        if (a == null)
        {
            // I_n ⊗ B: every q-block times Bᵀ, one GEMM with all blocks of all samples as rows.
            y = v.Reshape(-1, q).MatMul(b, transB: true);
        }
        else
        {
            var xs = v.Reshape(-1, n, q);
            long batch = xs.shape[0];
            double aFirst = (double)m * n * q + (double)m * q * p;
            double bFirst = (double)n * q * p + (double)m * n * p;
            y = aFirst <= bFirst
                ? a.MatMul(xs).MatMul(b, transB: true)
                : a.MatMul(xs.Reshape(-1, q).MatMul(b, transB: true).Reshape((int)batch, n, p));
        }
        y = y.Reshape([.. lead, m * p]);
        return outputIndex != null ? y.IndexSelect(-1, outputIndex) : y;
    }
}
