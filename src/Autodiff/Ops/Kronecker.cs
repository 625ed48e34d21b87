namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// y = J_out (A ⊗ B) J_in x over the last axis of <paramref name="x"/> ([..., n·q] to [..., m·p]) without forming
    /// A ⊗ B. With row-major flattening, x viewed as X [n, q] gives Y = A X Bᵀ [m, p], two small GEMMs per sample;
    /// the order (A first or Bᵀ first) is chosen for fewer FLOPs. <paramref name="a"/> null means A = I_n (the PK
    /// layer's shared block): one GEMM over all blocks. The optional index tensors are gathers, (J v)[i] = v[J[i]],
    /// and must be permutations. Vec-transposes around I_n ⊗ B (the Mixer's token mixing) become transposed GEMM
    /// operands and cost nothing; other permutations are applied as <paramref name="strategy"/> says (see
    /// <see cref="PermutationStrategy"/> for why gather passes are the default).
    /// </summary>
    public static Tensor KroneckerMatMul(this Tensor x, Tensor? a, Tensor b, int n, IndexTensor? inputIndex = null, IndexTensor? outputIndex = null,
        PermutationStrategy strategy = PermutationStrategy.GatherPasses)
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

        // Validates both permutations (and caches the inverses that the backward gathers use).
        IndexTensor? outInverse = null;
        if (inputIndex != null)
            InversePermutation(op, $"input permutation ({inputIndex.Length} entries)", inputIndex);
        if (outputIndex != null)
            outInverse = InversePermutation(op, $"output permutation ({outputIndex.Length} entries)", outputIndex);
        if (strategy is not (PermutationStrategy.GatherPasses or PermutationStrategy.FusedIntoGemm))
            throw new ArgumentOutOfRangeException(nameof(strategy), $"{op}: unknown permutation strategy {strategy}.");

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
        else if (strategy == PermutationStrategy.GatherPasses && (inputIndex != null || outputIndex != null))
        {
            // One gather pass each way; the gathered input is what the GEMMs save for the factor gradients, and the
            // backward gathers by the inverses (IndexSelect's adjoint for a permutation), so no scatter runs.
            var xp = inputIndex != null ? x.IndexSelect(-1, inputIndex) : x;
            var yp = KroneckerMatMul(xp, a, b, n, strategy: strategy);
            y = outputIndex != null ? yp.IndexSelect(-1, outputIndex) : yp;
        }
        else if (a == null)
        {
            // I_n ⊗ B: every q-block times Bᵀ, one GEMM with all blocks of all samples as rows. With fused maps the
            // input is read through J_in itself; the output, y = J_out y', holds y'[h] at position J_out⁻¹[h], so C
            // is written through J_out⁻¹ (IndexedMatMul carries the maps into the backward products too).
            y = IndexedMatMul(x.Reshape(-1, q), inputIndex, b, null, outInverse, transB: true);
        }
        else
        {
            double aFirst = (double)m * n * q + (double)m * q * p;
            double bFirst = (double)n * q * p + (double)m * n * p;
            if (aFirst <= bFirst)
            {
                var t = IndexedMatMul(a, null, x.Reshape(-1, n, q), inputIndex, null);          // [S, m, q]
                y = IndexedMatMul(t.Reshape(-1, q), null, b, null, outInverse, transB: true);   // [S·m, p]
            }
            else
            {
                var u = IndexedMatMul(x.Reshape(-1, q), inputIndex, b, null, null, transB: true); // [S·n, p]
                y = IndexedMatMul(a, null, u.Reshape(-1, n, p), null, outInverse);                // [S, m, p]
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

/// <summary>How <see cref="Ops.KroneckerMatMul"/> applies permutations that are not GEMM-absorbable transposes.</summary>
/// <remarks>
/// A random permutation of a wide layer makes every access a cache miss of its own, whatever does it. With fused maps
/// each of the three products of a forward + backward reads its permuted operands through the map, six mapped operand
/// reads in all (x twice, the output gradient twice, and the stores of y and dx). Gather passes touch each permuted
/// tensor once: x and y in the forward, the output gradient and dx in the backward; the gathered x is what the GEMMs
/// save, so the factor gradient reads it contiguously. On the CPU set at width 256·256, batch 128 (see
/// <c>KroneckerBenchmarks</c>), the gather passes were the faster of the two, for the general and the block-diagonal
/// layer alike, so they are the default.
/// </remarks>
public enum PermutationStrategy
{
    /// <summary>Gather x by J_in and y by J_out in passes of their own (hardware gathers); plain GEMMs in between.</summary>
    GatherPasses,

    /// <summary>Fold the gathers into the GEMMs' operand loads and C stores (GEMM operand index maps, <c>GemmOperand.Index</c>).</summary>
    FusedIntoGemm,
}
