using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>
/// y = (A ⊗ B) x + b with A [m, n], B [p, q]: input [..., n·q], output [..., m·p]. Computed as Y = A X Bᵀ on each
/// sample's X = x viewed as [n, q]; A ⊗ B is never formed. Parameters: m·n + p·q (+ m·p bias) instead of m·p·n·q.
/// </summary>
public class KroneckerLinear : Module
{
    /// <summary>Creates the layer. Factors are uniform with bounds chosen so that A ⊗ B has the variance of a dense
    /// <see cref="Linear"/> with fan-in n·q (product of two U(±3^¼/√k) entries: variance 1/(3 n q)).</summary>
    /// <remarks>Without a seed, one is drawn from the global generator (<see cref="Engine.Random"/>).</remarks>
    public KroneckerLinear(int m, int n, int p, int q, bool bias = true, ulong? seed = null, Device? device = null)
        : this(m, n, p, q, bias, seed ?? Random.NextSeed(), device, identityA: false) { }

    private protected KroneckerLinear(int m, int n, int p, int q, bool bias, ulong seed, Device? device, bool identityA, bool tiedBias = false)
    {
        if (m <= 0 || n <= 0 || p <= 0 || q <= 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"{GetType().Name}: factor sizes must be positive; got A {m}x{n}, B {p}x{q}.");
        if (identityA && m != n)
            throw new ArgumentException($"{GetType().Name}: an identity A must be square; got {m}x{n}.");
        M = m; N = n; P = p; Q = q;
        var d = device ?? Device.Default;
        float root = MathF.Pow(3f, 0.25f);
        if (!identityA)
        {
            float ba = root / MathF.Sqrt(n);
            A = RegisterParameter("a", Tensor.Uniform([m, n], seed * 3 + 1, -ba, ba, d));
        }
        float bb = identityA ? 1f / MathF.Sqrt(q) : root / MathF.Sqrt(q);
        B = RegisterParameter("b", Tensor.Uniform([p, q], seed * 3 + 2, -bb, bb, d));
        if (bias)
        {
            float bound = 1f / MathF.Sqrt(n * q);
            Bias = RegisterParameter("bias", Tensor.Uniform([tiedBias ? p : m * p], seed * 3 + 3, -bound, bound, d));
        }
    }

    /// <summary>Rows of A.</summary>
    public int M { get; }
    /// <summary>Columns of A.</summary>
    public int N { get; }
    /// <summary>Rows of B.</summary>
    public int P { get; }
    /// <summary>Columns of B.</summary>
    public int Q { get; }
    /// <summary>Input features n·q.</summary>
    public int InFeatures => N * Q;
    /// <summary>Output features m·p.</summary>
    public int OutFeatures => M * P;
    /// <summary>The factor A [m, n], or null for A = I (see <see cref="PermutedKroneckerLinear"/>).</summary>
    public Tensor? A { get; }
    /// <summary>The factor B [p, q].</summary>
    public Tensor B { get; }
    /// <summary>The bias [m·p] (or [p] when tied across the blocks, see <see cref="PermutedKroneckerLinear.BlockDiagonal"/>), or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>For a tied bias, output unit r reads bias entry index[r]; null when every unit has its own.</summary>
    private protected virtual IndexTensor? BiasIndex => null;

    /// <summary>Gather applied to the input (null: none).</summary>
    private protected virtual IndexTensor? InputIndex => null;
    /// <summary>Gather applied to the output (null: none).</summary>
    private protected virtual IndexTensor? OutputIndex => null;
    /// <summary>How the gathers are applied (only permuted layers have any).</summary>
    private protected virtual PermutationStrategy Gathers => PermutationStrategy.GatherPasses;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var y = input.KroneckerMatMul(A, B, N, InputIndex, OutputIndex, Gathers);
        if (Bias == null) return y;
        return BiasIndex != null ? y + Bias.IndexSelect(0, BiasIndex) : y + Bias;
    }

    /// <summary>The bias of every output unit (m·p values; a tied bias expanded through the output permutation), or null.</summary>
    public float[]? UnitBias()
    {
        if (Bias == null) return null;
        var b = Bias.ToArray();
        return BiasIndex == null ? b : BiasIndex.ToArray().Select(i => b[i]).ToArray();
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"{InFeatures} → {OutFeatures}, A {(A == null ? "I" : "")}{M}x{N} ⊗ B {P}x{Q}";

    /// <summary>The equivalent dense weight W (m·p x n·q) including the permutations, for tests and inspection.</summary>
    public float[] DenseWeight()
    {
        var a = A?.ToArray();
        var b = B.ToArray();
        int rows = M * P, cols = N * Q;
        var w = new float[rows * cols];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                float aij = a == null ? (i == j ? 1f : 0f) : a[i * N + j];
                if (aij == 0f) continue;
                for (int k = 0; k < P; k++)
                    for (int l = 0; l < Q; l++)
                        w[(i * P + k) * cols + j * Q + l] = aij * b[k * Q + l];
            }
        var inIdx = InputIndex?.ToArray();
        var outIdx = OutputIndex?.ToArray();
        if (inIdx == null && outIdx == null) return w;
        // (J_out W J_in)[r, c]: row r reads row outIdx[r] of W; column inIdx[t] of W J_in is column t of W.
        var r2 = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            int src = outIdx?[r] ?? r;
            for (int t = 0; t < cols; t++)
            {
                int dst = inIdx?[t] ?? t;
                r2[r * cols + dst] += w[src * cols + t];
            }
        }
        return r2;
    }
}

/// <summary>
/// y = J_out (A ⊗ B) J_in x + b with fixed permutations J_in, J_out (identity, vec-transpose, seeded random or
/// user-given), stored with the layer. <see cref="BlockDiagonal"/> builds the PK layer J_out (I_n ⊗ W) J_in, which
/// runs as one GEMM with the shared block W.
/// </summary>
public sealed class PermutedKroneckerLinear : KroneckerLinear
{
    private IndexTensor? inputIndex, outputIndex, biasIndex;

    /// <summary>A general permuted Kronecker layer (unseeded: a seed is drawn from <see cref="Engine.Random"/>).</summary>
    public PermutedKroneckerLinear(int m, int n, int p, int q, Permutation inputPermutation, Permutation outputPermutation,
        bool bias = true, ulong? seed = null, Device? device = null)
        : this(m, n, p, q, inputPermutation, outputPermutation, bias, seed ?? Random.NextSeed(), device, identityA: false) { }

    private PermutedKroneckerLinear(int m, int n, int p, int q, Permutation inputPermutation, Permutation outputPermutation,
        bool bias, ulong seed, Device? device, bool identityA, bool tiedBias = false)
        : base(m, n, p, q, bias, seed, device, identityA, tiedBias)
    {
        if (inputPermutation.Length != n * q)
            throw new ArgumentException($"PermutedKroneckerLinear: input permutation has {inputPermutation.Length} entries, the input has n·q = {n * q} features.");
        if (outputPermutation.Length != m * p)
            throw new ArgumentException($"PermutedKroneckerLinear: output permutation has {outputPermutation.Length} entries, the output has m·p = {m * p} features.");
        InputPermutation = inputPermutation;
        OutputPermutation = outputPermutation;
        inputIndex = inputPermutation.IsIdentity ? null : inputPermutation.ToIndexTensor();
        outputIndex = outputPermutation.IsIdentity ? null : outputPermutation.ToIndexTensor();
        TiedBias = tiedBias && bias;
        biasIndex = TiedBias ? TiedBiasIndex(outputPermutation, p) : null;
        // The permutations are part of the layer's state (a random one cannot be rebuilt without its seed), so
        // checkpoints save and restore them; a loaded array must be a permutation of the right length.
        RegisterBuffer("input_permutation", new IndexBuffer(n * q, () => InputPermutation.Indices.ToArray(),
            v => Permutation.FromArray(v, n * q), v => SetInputPermutation(Permutation.FromArray(v, n * q))));
        RegisterBuffer("output_permutation", new IndexBuffer(m * p, () => OutputPermutation.Indices.ToArray(),
            v => Permutation.FromArray(v, m * p), v => SetOutputPermutation(Permutation.FromArray(v, m * p))));
    }

    private void SetInputPermutation(Permutation value)
    {
        if (value.Indices.SequenceEqual(InputPermutation.Indices)) return; // keep the original kind (transpose, ...)
        inputIndex?.Dispose();
        InputPermutation = value;
        inputIndex = value.IsIdentity ? null : value.ToIndexTensor();
    }

    private void SetOutputPermutation(Permutation value)
    {
        if (value.Indices.SequenceEqual(OutputPermutation.Indices)) return;
        outputIndex?.Dispose();
        OutputPermutation = value;
        outputIndex = value.IsIdentity ? null : value.ToIndexTensor();
        if (TiedBias)
        {
            biasIndex?.Dispose();
            biasIndex = TiedBiasIndex(value, P);
        }
    }

    /// <summary>
    /// Output r of J_out z is z[J_out[r]], and a bias tied across the blocks of z = (I ⊗ W) x has entry j % p at
    /// position j of z, so output r reads bias entry J_out[r] % p.
    /// </summary>
    private static IndexTensor TiedBiasIndex(Permutation output, int p) =>
        new(output.Indices.ToArray().Select(j => j % p).ToArray());

    /// <summary>
    /// The PK layer J_out ((I_n ⊗ W) J_in x + b) with the shared block W [p, q]. The bias has one entry per output
    /// unit (n·p, the wide MLP's bias) or, with <paramref name="tiedBias"/>, one per row of W shared by the n blocks
    /// (p entries, added before J_out): the textbook Mixer's per-channel (or per-token) bias. Unseeded, a seed is drawn
    /// from <see cref="Engine.Random"/>.
    /// </summary>
    public static PermutedKroneckerLinear BlockDiagonal(int n, int p, int q, Permutation inputPermutation, Permutation outputPermutation,
        bool bias = true, ulong? seed = null, Device? device = null, bool tiedBias = false) =>
        new(n, n, p, q, inputPermutation, outputPermutation, bias, seed ?? Random.NextSeed(), device, identityA: true, tiedBias);

    /// <summary>True when the bias is tied across the blocks (p entries instead of n·p).</summary>
    public bool TiedBias { get; }

    /// <summary>J_in (replaced when a checkpoint is loaded).</summary>
    public Permutation InputPermutation { get; private set; }
    /// <summary>J_out (replaced when a checkpoint is loaded).</summary>
    public Permutation OutputPermutation { get; private set; }

    /// <summary>
    /// How the permutations run: gather passes (the default, measured faster on the CPU set) or folded into the GEMMs'
    /// loads and stores. Both compute the same values; see <see cref="PermutationStrategy"/>.
    /// </summary>
    public PermutationStrategy Strategy { get; set; } = PermutationStrategy.GatherPasses;

    private protected override PermutationStrategy Gathers => Strategy;

    private protected override IndexTensor? InputIndex => inputIndex;
    private protected override IndexTensor? OutputIndex => outputIndex;
    private protected override IndexTensor? BiasIndex => biasIndex;

    /// <summary>Frees the parameters and the index tensors' device copies.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inputIndex?.Dispose();
            outputIndex?.Dispose();
            biasIndex?.Dispose();
        }
        base.Dispose(disposing);
    }
}
