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
/// Elementwise steps applied to C as a GEMM stores it: z = alpha · op(A) op(B) + beta · C, rounded to float, then
/// z + bias, then z + R (each addition in float, so the result has the bits of the product followed by separate
/// additions), then the activation y = steps[k-1](...steps[0](z)) (each step rounding as its own elementwise kernel
/// does). C receives z, and <see cref="ActivationOutput"/> y; without an activation output, C receives y.
/// </summary>
/// <remarks>
/// The bias holds L values, L a positive multiple of N: the element C_p[i, j] adds Bias[((p · M + i) mod (L / N)) · N +
/// j], so L = N is a vector added to every row, and L = R · N a matrix of R rows repeated down the rows of the whole
/// batch (the broadcasting of a trailing-dimensions bias over a flattened result). The residual R and the activation
/// output are laid out as C: C_p[i, j] at C's offset + p · C's batch stride + i · N + j, the same position in each
/// buffer. Neither may be C's own buffer, and C's matrices may not overlap (batch stride at least M · N). Kernel sets
/// that run epilogues say so through <see cref="IGemmEpilogueKernels"/>; the others reject any epilogue with
/// <see cref="NotSupportedException"/> before any work.
/// </remarks>
/// <param name="Bias">The bias values (L, a multiple of N), or null.</param>
/// <param name="Activation">The steps applied to each stored value (at least one), or null.</param>
public readonly record struct GemmEpilogue(DeviceBuffer<float>? Bias = null, IReadOnlyList<UnaryStep>? Activation = null)
{
    /// <summary>The residual added after the bias (laid out as C), or null.</summary>
    public DeviceBuffer<float>? Residual { get; init; }

    /// <summary>Where the activation's values go (laid out as C), C then keeping the pre-activation; null: into C.</summary>
    public DeviceBuffer<float>? ActivationOutput { get; init; }

    /// <summary>
    /// A last step after the activation: an elementwise tree over the value made so far and other buffers, whose
    /// result C receives (see <see cref="GemmTreeStep"/>); null: none. Only sets whose
    /// <see cref="IGemmEpilogueKernels.RunsGemmTree"/> says so run one; it cannot go with an activation output.
    /// </summary>
    public GemmTreeStep? Tree { get; init; }

    /// <summary>True when the epilogue changes nothing.</summary>
    public bool IsIdentity => Bias == null && Activation == null && Residual == null && Tree == null;

    /// <summary>
    /// Throws naming <paramref name="op"/> for an epilogue that cannot run on output <paramref name="c"/> of
    /// <paramref name="size"/>: a bias whose length is not a positive multiple of N, an empty activation, an activation
    /// output without an activation, a residual or activation output that is C's buffer or too short for C's layout,
    /// overlapping C matrices, or any epilogue with a C map.
    /// </summary>
    internal void Check(string op, in GemmOutput c, GemmSize size)
    {
        if (IsIdentity && ActivationOutput == null) return;
        if (c.Index != null)
            throw new NotSupportedException($"{op}: an epilogue with a C index map is not supported.");
        if (Bias is { } bias && size.N > 0 && (bias.Length == 0 || bias.Length % size.N != 0))
            throw new ArgumentException($"{op}: the bias epilogue holds {bias.Length} values; expected a positive multiple of N = {size.N}.", "c");
        if (Activation is { Count: 0 })
            throw new ArgumentException($"{op}: the activation epilogue has no steps.", "c");
        if (ActivationOutput != null && Activation == null)
            throw new ArgumentException($"{op}: the epilogue has an activation output but no activation.", "c");
        if (Tree != null && ActivationOutput != null)
            throw new ArgumentException($"{op}: the epilogue has both a tree step and an activation output; the tree's result goes to C, so C cannot keep the pre-activation.", "c");
        if (Residual == null && Activation == null && Tree == null) return;
        long matrix = (long)size.M * size.N;
        if (size.Batch > 1 && c.BatchStride < matrix)
            throw new ArgumentException($"{op}: a residual, activation or tree epilogue needs C matrices that do not overlap (batch stride {c.BatchStride} < M · N = {matrix}).", "c");
        long needed = size.Batch == 0 || matrix == 0 ? 0 : c.Offset + (size.Batch - 1) * c.BatchStride + matrix;
        CheckLaidOutAsC(op, "residual", Residual, c.Buffer, needed);
        CheckLaidOutAsC(op, "activation output", ActivationOutput, c.Buffer, needed);
        Tree?.Check(op, c.Buffer, needed);
    }

    internal static void CheckLaidOutAsC(string op, string name, DeviceBuffer<float>? buffer, DeviceBuffer<float> c, long needed)
    {
        if (buffer == null) return;
        if (ReferenceEquals(buffer, c))
            throw new ArgumentException($"{op}: the {name} of the epilogue is C's own buffer.", "c");
        if (buffer.Length < needed)
            throw new ArgumentException($"{op}: the {name} of the epilogue holds {buffer.Length} elements; C's layout needs {needed}.", "c");
    }
}

/// <summary>
/// The tree step of a <see cref="GemmEpilogue"/>: y = <paramref name="Expression"/>(x_0, ..., x_{k-1}) for every
/// element of C, where input <paramref name="ValueInput"/> is the element's value after the bias, residual and
/// activation, and every other input k is <paramref name="Inputs"/>[k]: a buffer laid out as C (its element at C's
/// element's position) or holding one element (a scalar every element reads). C receives y. Each op of the tree rounds
/// as its own kernel does, so the result has the bits of the product followed by
/// <see cref="IFusedElementwiseKernels.ElementwiseTree"/> over the same buffers. The compiler folds an elementwise group
/// that reads a product's result this way (the gradient of an activation, applied as the backward product stores).
/// </summary>
/// <param name="Expression">The tree (at most <see cref="ElementwiseExpression.MaxInputs"/> inputs).</param>
/// <param name="ValueInput">The input that reads the product's value.</param>
/// <param name="Inputs">One entry per input of the tree: the buffers of the others (the entry at <paramref name="ValueInput"/> is null).</param>
public readonly record struct GemmTreeStep(ElementwiseExpression Expression, int ValueInput, IReadOnlyList<DeviceBuffer<float>?> Inputs)
{
    /// <summary>
    /// Throws naming <paramref name="op"/> for a tree step that cannot run on C (<paramref name="needed"/> elements of
    /// <paramref name="c"/>): an input count other than the tree's, a value input out of range or given a buffer, or
    /// another input missing, C's own buffer, or neither one element nor laid out as C.
    /// </summary>
    internal void Check(string op, DeviceBuffer<float> c, long needed)
    {
        ArgumentNullException.ThrowIfNull(Expression, "c");
        ArgumentNullException.ThrowIfNull(Inputs, "c");
        int arity = Expression.Arity;
        if (arity > ElementwiseExpression.MaxInputs || Inputs.Count != arity)
            throw new ArgumentException($"{op}: the tree epilogue {Expression} reads {arity} inputs (at most {ElementwiseExpression.MaxInputs}); {Inputs.Count} are given.", "c");
        if (ValueInput < 0 || ValueInput >= arity)
            throw new ArgumentException($"{op}: the tree epilogue's value input {ValueInput} is not one of its {arity} inputs.", "c");
        for (int k = 0; k < arity; k++)
        {
            var input = Inputs[k];
            if (k == ValueInput)
            {
                if (input != null) throw new ArgumentException($"{op}: the tree epilogue's value input {k} reads the product; its buffer entry must be null.", "c");
                continue;
            }
            if (input == null) throw new ArgumentException($"{op}: the tree epilogue's input {k} has no buffer.", "c");
            input.ThrowIfDisposed(op);
            // One element is a scalar (for a C of one element, also the element laid out as C).
            if (input.Length != 1 || ReferenceEquals(input, c)) GemmEpilogue.CheckLaidOutAsC(op, $"tree input {k}", input, c, needed);
        }
    }
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
/// offset <c>(o / L) · L + J_p[o % L]</c> of that matrix, i.e. from <c>Offset + p · BatchStride + (o / L) · L +
/// J_p[o % L]</c> of the buffer, where J_p = J[p · <see cref="IndexBatchStride"/> ..] (by default one map J for every
/// matrix). L must divide the matrix size, and every index must lie in [0, B), B the
/// <see cref="IndexBound"/> (by default L: a permutation within each block of L elements, as the Kronecker layers'
/// J_in). A bound above L lets a read leave its block and its matrix: with L the matrix size and B up to the buffer's
/// length, matrix p is any gather of the buffer shifted by p · BatchStride, such as a permutation of a larger tensor
/// read in place (the compiler folds a permute into the product this way); with a map per matrix (index batch stride
/// L, batch stride 0), each matrix is any gather of the buffer. The operand's reads span
/// <c>(batch - 1) · BatchStride + matrix size - L + B</c> elements from <see cref="Offset"/>, which must fit the buffer,
/// and the map buffer must hold <c>(batch - 1) · IndexBatchStride + L</c> entries.
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

    /// <summary>
    /// Exclusive upper bound B of the map's entries, counted from the start of each block of L elements (0, the
    /// default: L; ignored without a map). See the remarks for what a bound above L allows.
    /// </summary>
    public long IndexBound { get; init; }

    /// <summary>Entries of <see cref="Index"/> between the maps of consecutive matrices (0, the default: one map for all).</summary>
    public long IndexBatchStride { get; init; }

    /// <summary>Elementwise step applied on load (reserved; only the identity runs today).</summary>
    public GemmPrologue Prologue { get; init; }

    /// <summary>
    /// This operand read through <paramref name="index"/> of <paramref name="length"/> entries, each below
    /// <paramref name="bound"/> (0: below <paramref name="length"/>), matrix p through the entries from
    /// p · <paramref name="batchStride"/> on; null: no map.
    /// </summary>
    public GemmOperand WithIndex(DeviceBuffer<int>? index, int length, long bound = 0, long batchStride = 0) =>
        this with
        {
            Index = index, IndexLength = index == null ? 0 : length, IndexBound = index == null ? 0 : bound,
            IndexBatchStride = index == null ? 0 : batchStride,
        };

    /// <summary>Entries of the map that <paramref name="batch"/> matrices read (L for a single shared map).</summary>
    internal long IndexEntries(int batch) => Math.Max(batch - 1, 0) * IndexBatchStride + IndexLength;

    /// <summary>The bound every map entry must stay below: <see cref="IndexBound"/>, or L when it is 0.</summary>
    internal long EntryBound => IndexBound > 0 ? IndexBound : IndexLength;

    /// <summary>
    /// Elements after <see cref="Offset"/> that <paramref name="batch"/> matrices of <paramref name="matrix"/> elements
    /// read (through the map, when there is one): the last matrix starts at (batch - 1) · BatchStride.
    /// </summary>
    internal long ReadExtent(int batch, long matrix) =>
        batch == 0 || matrix == 0 ? 0
        : (batch - 1) * BatchStride + (Index == null ? matrix : matrix - IndexLength + EntryBound);

    /// <summary>Throws naming <paramref name="op"/> for what no kernel set runs yet or for negative offsets and strides.</summary>
    internal void Check(string op, string name)
    {
        ArgumentNullException.ThrowIfNull(Buffer, name);
        if (Offset < 0 || BatchStride < 0)
            throw new ArgumentException($"{op}: operand {name} has a negative offset ({Offset}) or batch stride ({BatchStride}).", name);
        if (Index != null && (IndexBound < 0 || IndexBatchStride < 0))
            throw new ArgumentException($"{op}: the map of operand {name} has a negative bound ({IndexBound}) or batch stride ({IndexBatchStride}).", name);
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
    /// run: any, unless <paramref name="runsEpilogues"/> (then one that cannot run on C of <paramref name="size"/>, see
    /// <see cref="GemmEpilogue"/>).
    /// </summary>
    internal void Check(string op, bool runsEpilogues = false, GemmSize size = default, bool runsTrees = false)
    {
        ArgumentNullException.ThrowIfNull(Buffer, "c");
        if (Offset < 0 || BatchStride < 0)
            throw new ArgumentException($"{op}: output C has a negative offset ({Offset}) or batch stride ({BatchStride}).", "c");
        if (!runsEpilogues && !Epilogue.IsIdentity)
            throw new NotSupportedException($"{op}: output C has an epilogue ({Epilogue}) this kernel set does not run.");
        if (!runsTrees && Epilogue.Tree is { } tree)
            throw new NotSupportedException($"{op}: output C has a tree epilogue ({tree.Expression}) this kernel set does not run.");
        Epilogue.Check(op, this, size);
    }
}
