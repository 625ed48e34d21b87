namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// y = J_out (A ⊗ B) J_in x over the last axis of <paramref name="x"/> ([..., n·q] to [..., m·p]) without forming
    /// A ⊗ B. With row-major flattening, x viewed as X [n, q] gives Y = A X Bᵀ [m, p], two small GEMMs per sample;
    /// the order (A first or Bᵀ first) is chosen for fewer FLOPs. <paramref name="a"/> null means A = I_n (the PK
    /// layer's shared block): one GEMM over all blocks. The optional index tensors are gathers, (J v)[i] = v[J[i]],
    /// and must be permutations. They cost no pass of their own: J_in is folded into the loads of the first GEMM's
    /// x operand and J_out (as the scatter by J_out⁻¹) into the stores of the last GEMM (<c>IKernelSet.GemmIndexed</c>);
    /// the backward products carry the same maps (see <see cref="IndexedMatMul"/>).
    /// </summary>
    public static Tensor KroneckerMatMul(this Tensor x, Tensor? a, Tensor b, int n, IndexTensor? inputIndex = null, IndexTensor? outputIndex = null)
    {
        const string op = "kronecker";
        x.CheckAlive(op);
        if (a != null) CheckSameDevice(op, x, a);
        CheckSameDevice(op, x, b);
        if (b.Rank != 2 || (a != null && a.Rank != 2))
            throw new ArgumentException($"{op}: factors must be matrices; got A {a?.Describe() ?? "I"} and B {b.Describe()}.");
        if (n <= 0)
            throw new ArgumentException($"{op}: n must be positive; got {n}.");
        int p = b.shape[0], q = b.shape[1];
        int m = a?.shape[0] ?? n;
        if (a != null && a.shape[1] != n)
            throw new ArgumentException($"{op}: A {a.Describe()} has {a.shape[1]} columns but n = {n}.");
        if (x.Rank < 1 || x.shape[^1] != n * q)
            throw new ArgumentException(
                $"{op}: input {x.Describe()} must end in n·q = {n}·{q} = {n * q} features for A {(a == null ? $"I_{n}" : a.Describe())} ⊗ B {b.Describe()}.");
        if (inputIndex != null && inputIndex.Length != n * q)
            throw new ArgumentException($"{op}: the input permutation has {inputIndex.Length} entries, the input {x.Describe()} has n·q = {n * q} features.");
        if (outputIndex != null && outputIndex.Length != m * p)
            throw new ArgumentException($"{op}: the output permutation has {outputIndex.Length} entries, the output has m·p = {m * p} features.");
        if (x.Size == 0)
            throw new ArgumentException($"{op}: input {x.Describe()} is empty.");

        // Maps as IndexedMatMul reads them: the input is read through J_in itself; the output, y = J_out y', holds
        // y'[h] at position J_out⁻¹[h], so C is written through J_out⁻¹.
        IndexTensor? inMap = null, outMap = null;
        if (inputIndex != null)
        {
            InversePermutation(op, $"input permutation ({inputIndex.Length} entries)", inputIndex);
            inMap = inputIndex;
        }
        if (outputIndex != null)
            outMap = InversePermutation(op, $"output permutation ({outputIndex.Length} entries)", outputIndex);

        var lead = x.shape[..^1];
        Tensor y;
        if (a == null && TransposesOnly(inputIndex, outputIndex, n, p, q, out bool inT, out bool outT))
        {
            // The Mixer's vec-transposes (token mixing) need no gather at all: they become transposed GEMM operands.
            // inT: the input is X [q, n] read as Xᵀ; outT: the output is the transpose of Z [n, p].
            var xs = inT ? x.Reshape(-1, q, n) : x.Reshape(-1, n, q);
            y = (inT, outT) switch
            {
                (true, false) => MatMul(xs, b, transA: true, transB: true), // Xᵀ Bᵀ      [S, n, p]
                (false, true) => MatMul(b, xs, transB: true),               // (X Bᵀ)ᵀ    [S, p, n]
                _ => MatMul(b, xs),                                         // (Xᵀ Bᵀ)ᵀ   [S, p, n]
            };
        }
        else if (a == null)
        {
            // I_n ⊗ B: every q-block times Bᵀ, one GEMM with all blocks of all samples as rows.
            y = IndexedMatMul(x.Reshape(-1, q), inMap, b, null, outMap, transB: true);
        }
        else
        {
            double aFirst = (double)m * n * q + (double)m * q * p;
            double bFirst = (double)n * q * p + (double)m * n * p;
            if (aFirst <= bFirst)
            {
                var t = IndexedMatMul(a, null, x.Reshape(-1, n, q), inMap, null);              // [S, m, q]
                y = IndexedMatMul(t.Reshape(-1, q), null, b, null, outMap, transB: true);      // [S·m, p]
            }
            else
            {
                var u = IndexedMatMul(x.Reshape(-1, q), inMap, b, null, null, transB: true);   // [S·n, p]
                y = IndexedMatMul(a, null, u.Reshape(-1, n, p), null, outMap);                 // [S, m, p]
            }
        }
        return y.Reshape([.. lead, m * p]);
    }

    /// <summary>
    /// True when every given permutation of an I_n ⊗ B product is a vec-transpose that a transposed GEMM operand can
    /// absorb (and at least one is given): J_in = transpose of [q, n], J_out = transpose of [n, p].
    /// </summary>
    private static bool TransposesOnly(IndexTensor? inputIndex, IndexTensor? outputIndex, int n, int p, int q, out bool inT, out bool outT)
    {
        inT = inputIndex != null && inputIndex.IsTranspose(q, n);
        outT = outputIndex != null && outputIndex.IsTranspose(n, p);
        return (inT || outT) && (inputIndex == null || inT) && (outputIndex == null || outT);
    }
}
