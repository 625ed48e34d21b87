namespace Engine.Kernels;

/// <summary>
/// Extents of a batched matrix product: <see cref="Batch"/> products C_p (M x N) = op(A_p) (M x K) · op(B_p) (K x N).
/// </summary>
/// <param name="Batch">Number of products (0 does nothing).</param>
/// <param name="M">Rows of op(A) and C.</param>
/// <param name="N">Columns of op(B) and C.</param>
/// <param name="K">Columns of op(A), rows of op(B) (0: C = beta · C).</param>
public readonly record struct GemmSize(int Batch, int M, int N, int K)
{
    /// <summary>One product (batch 1).</summary>
    public static GemmSize Single(int m, int n, int k) => new(1, m, n, k);

    /// <summary>Throws naming <paramref name="op"/> when an extent is negative.</summary>
    internal void Check(string op)
    {
        if (Batch < 0 || M < 0 || N < 0 || K < 0)
            throw new ArgumentException($"{op}: negative extent (batch {Batch}, m {M}, n {N}, k {K}).");
    }
}

/// <summary>
/// An elementwise step applied to an operand's values as a GEMM loads them: v' = Op(v) · Multiplier[offset of v]
/// (either part optional). Room for the compiler, which will fuse activation gradients into the loads of a backward
/// product; no kernel set implements one yet, and every set rejects a non-identity prologue with
/// <see cref="NotSupportedException"/> before any work.
/// </summary>
/// <param name="Op">Applied to each loaded value, or null.</param>
/// <param name="Multiplier">A buffer shaped like the operand whose values multiply the loaded ones, or null.</param>
public readonly record struct GemmPrologue(UnaryOp? Op = null, DeviceBuffer<float>? Multiplier = null)
{
    /// <summary>True when the prologue changes nothing (the only kind the kernel sets run today).</summary>
    public bool IsIdentity => Op == null && Multiplier == null;
}

/// <summary>
/// An elementwise step applied to C as a GEMM stores it: C = Activation(alpha · op(A) op(B) + beta · C + bias), the
/// product rounded to float first and the bias added in float, so the result has the bits of the product followed by
/// a separate broadcasting addition. The bias holds L values, L a positive multiple of N: the element C_p[i, j] adds
/// Bias[((p · M + i) mod (L / N)) · N + j], so L = N is a vector added to every row, and L = R · N a matrix of R rows
/// repeated down the rows of the whole batch (the broadcasting of a trailing-dimensions bias over a flattened
/// result). Kernel sets that run it say so through <see cref="IGemmEpilogueKernels"/>; the others reject any epilogue
/// with <see cref="NotSupportedException"/> before any work, as every set does for an activation (not implemented yet).
/// </summary>
/// <param name="Bias">The bias values (L, a multiple of N), or null.</param>
/// <param name="Activation">Applied to each stored value, or null (reserved: no set runs one yet).</param>
public readonly record struct GemmEpilogue(DeviceBuffer<float>? Bias = null, UnaryOp? Activation = null)
{
    /// <summary>True when the epilogue changes nothing.</summary>
    public bool IsIdentity => Bias == null && Activation == null;
}

/// <summary>
/// An input operand of <see cref="IKernelSet.Gemm"/>: where its matrices live and how to read them. Matrix p starts
/// at <see cref="Offset"/> + p · <see cref="BatchStride"/> and is stored row-major, as the operand itself (A: M x K,
/// B: K x N) or, when <see cref="Transposed"/>, as its transpose (A: K x M, B: N x K). A batch stride of 0 shares one
/// matrix across the batch.
/// </summary>
/// <remarks>
/// An optional index map gathers the operand as it is loaded: with a map J of length L = <see cref="IndexLength"/>,
/// the element at (unmapped) offset o of matrix p (o = row · columns + column of the stored matrix) is read from
/// offset <c>(o / L) · L + J[o % L]</c> of that matrix. Every index must lie in [0, L) and L must divide the matrix
/// size. Used to fold a permutation into the product (the Kronecker layers' J_in).
/// </remarks>
/// <param name="Buffer">The buffer holding the matrices.</param>
/// <param name="Transposed">True when the matrices are stored transposed.</param>
/// <param name="BatchStride">Elements between consecutive matrices (0: one shared matrix).</param>
public readonly record struct GemmOperand(DeviceBuffer<float> Buffer, bool Transposed = false, long BatchStride = 0)
{
    /// <summary>Elements before the first matrix.</summary>
    public long Offset { get; init; }

    /// <summary>The gather map (null: none).</summary>
    public DeviceBuffer<int>? Index { get; init; }

    /// <summary>Length L of <see cref="Index"/> (ignored without a map).</summary>
    public int IndexLength { get; init; }

    /// <summary>Elementwise step applied on load (reserved; only the identity runs today).</summary>
    public GemmPrologue Prologue { get; init; }

    /// <summary>This operand read through <paramref name="index"/> of <paramref name="length"/> entries (null: no map).</summary>
    public GemmOperand WithIndex(DeviceBuffer<int>? index, int length) =>
        this with { Index = index, IndexLength = index == null ? 0 : length };

    /// <summary>Throws naming <paramref name="op"/> for what no kernel set runs yet or for negative offsets and strides.</summary>
    internal void Check(string op, string name)
    {
        ArgumentNullException.ThrowIfNull(Buffer, name);
        if (Offset < 0 || BatchStride < 0)
            throw new ArgumentException($"{op}: operand {name} has a negative offset ({Offset}) or batch stride ({BatchStride}).", name);
        if (!Prologue.IsIdentity)
            throw new NotSupportedException($"{op}: operand {name} has a prologue ({Prologue}); GEMM prologues are not implemented by any kernel set yet.");
    }
}

/// <summary>
/// The output of <see cref="IKernelSet.Gemm"/>: C_p = <see cref="Alpha"/> · op(A_p) op(B_p) + <see cref="Beta"/> · C_p,
/// C_p (M x N, row-major) starting at <see cref="Offset"/> + p · <see cref="BatchStride"/>. With beta 0, C is not
/// read (NaN in C does not leak).
/// </summary>
/// <remarks>
/// An optional index map scatters C as it is stored: the element at (unmapped) offset o of C_p is written to offset
/// <c>(o / L) · L + J[o % L]</c>; the map must be a permutation of 0..L-1 (each element is stored exactly once) and L
/// must divide M · N. Used for the Kronecker layers' J_out.
/// </remarks>
/// <param name="Buffer">The buffer receiving the products.</param>
/// <param name="BatchStride">Elements between consecutive C matrices.</param>
public readonly record struct GemmOutput(DeviceBuffer<float> Buffer, long BatchStride = 0)
{
    /// <summary>Elements before the first matrix.</summary>
    public long Offset { get; init; }

    /// <summary>Scale of the product (default 1).</summary>
    public float Alpha { get; init; } = 1f;

    /// <summary>Scale of the old C (default 0: C is overwritten without being read).</summary>
    public float Beta { get; init; }

    /// <summary>The scatter map (null: none).</summary>
    public DeviceBuffer<int>? Index { get; init; }

    /// <summary>Length L of <see cref="Index"/> (ignored without a map).</summary>
    public int IndexLength { get; init; }

    /// <summary>Elementwise step applied on store (see <see cref="GemmEpilogue"/>; only sets implementing <see cref="IGemmEpilogueKernels"/> run one).</summary>
    public GemmEpilogue Epilogue { get; init; }

    /// <summary>This output written through <paramref name="index"/> of <paramref name="length"/> entries (null: no map).</summary>
    public GemmOutput WithIndex(DeviceBuffer<int>? index, int length) =>
        this with { Index = index, IndexLength = index == null ? 0 : length };

    /// <summary>
    /// Throws naming <paramref name="op"/> for negative offsets and strides, and for an epilogue the calling set does not
    /// run: any activation, and a bias unless <paramref name="runsBias"/> (then also a bias whose length is not a
    /// positive multiple of <paramref name="n"/>, or one combined with a C map).
    /// </summary>
    internal void Check(string op, bool runsBias = false, int n = 0)
    {
        ArgumentNullException.ThrowIfNull(Buffer, "c");
        if (Offset < 0 || BatchStride < 0)
            throw new ArgumentException($"{op}: output C has a negative offset ({Offset}) or batch stride ({BatchStride}).", "c");
        if (Epilogue.Activation != null || (Epilogue.Bias != null && !runsBias))
            throw new NotSupportedException($"{op}: output C has an epilogue ({Epilogue}) this kernel set does not run" +
                                            (Epilogue.Activation != null ? " (no set runs an activation epilogue yet)." : "."));
        if (Epilogue.Bias is { } bias)
        {
            if (Index != null)
                throw new NotSupportedException($"{op}: a bias epilogue with a C index map is not supported.");
            if (n > 0 && (bias.Length == 0 || bias.Length % n != 0))
                throw new ArgumentException($"{op}: the bias epilogue holds {bias.Length} values; expected a positive multiple of N = {n}.", "c");
        }
    }
}
