using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Engine.Kernels.Elementwise;

namespace Engine.Kernels;

/// <summary>
/// Chains and trees of elementwise ops run as one kernel, a capability both built-in sets implement: the chain becomes
/// one composed op struct (<c>Compose&lt;,&gt;</c> and <c>Then&lt;,&gt;</c> over the ops' own structs; a tree,
/// <c>UnaryNode&lt;,&gt;</c> and <c>BinaryNode&lt;,,&gt;</c> over leaves <c>Input0</c>..<c>Input3</c>; built with
/// <see cref="Type.MakeGenericType"/>), which the set's generic elementwise kernel runs with every intermediate in a
/// register. Each op rounds to float exactly as its own kernel does, so a fused chain gives the bits of the ops run
/// one by one. A compiled graph uses it to fuse what the eager engine launches op by op.
/// </summary>
public interface IFusedElementwiseKernels
{
    /// <summary>y[i] = steps[k-1](...steps[0](x[i])) as one kernel (y may be x); at least one step.</summary>
    void UnaryChain(IReadOnlyList<UnaryStep> steps, DeviceBuffer<float> x, DeviceBuffer<float> y);

    /// <summary>
    /// y = tail[k-1](...tail[0](head(aSteps(a), bSteps(b)))) with NumPy broadcasting (as <see cref="IKernelSet.Binary"/>),
    /// as one kernel; each operand chain (possibly empty) applies to that operand's values as they are read.
    /// </summary>
    void BinaryChain(IReadOnlyList<UnaryStep> aSteps, BinaryOp head, IReadOnlyList<UnaryStep> bSteps, IReadOnlyList<UnaryStep> tail,
        DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape);

    /// <summary>
    /// y = tree(inputs) over <paramref name="shape"/> as one kernel: an expression tree of unary, affine and binary ops
    /// over up to <see cref="ElementwiseExpression.MaxInputs"/> input buffers, input k of
    /// <paramref name="inputShapes"/>[k], each broadcast to <paramref name="shape"/> with NumPy's rules (as
    /// <see cref="IKernelSet.Binary"/>: right-aligned, a dim of 1 or a missing dim repeats). A leaf may read an input
    /// several times; y (of the shape's element count) may be an input of the full shape, never one read through
    /// broadcasting. Each op rounds as its own kernel does, so the result has the bits of the ops run one by one.
    /// </summary>
    void ElementwiseTree(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes, DeviceBuffer<float> y,
        int[] shape);

    /// <summary>
    /// The tree over <paramref name="shape"/> (as <see cref="ElementwiseTree"/>: input k of
    /// <paramref name="inputShapes"/>[k], broadcast to the shape), stored into <paramref name="y"/> unless it is null,
    /// and reduced with <paramref name="op"/> (<see cref="ReduceOp.Sum"/> or <see cref="ReduceOp.Mean"/>) over
    /// <paramref name="axes"/> (sorted, distinct, in range) into <paramref name="r"/>, in one pass: each value is
    /// reduced while it is computed, never read back. The results have the bits of <see cref="ElementwiseTree"/>
    /// followed by <see cref="IKernelSet.Reduce"/> on the same set. y may be an input of the full shape; r may be
    /// neither an input nor y.
    /// </summary>
    void ElementwiseTreeReduce(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes, int[] shape,
        DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r);

    /// <summary>
    /// Two sibling reductions in one pass: <paramref name="first"/> and <paramref name="second"/>, both over
    /// <paramref name="inputs"/> and <paramref name="shape"/> (as <see cref="ElementwiseTreeReduce"/>), stored into
    /// <paramref name="y0"/> and <paramref name="y1"/> unless null, and reduced with the same <paramref name="op"/> over
    /// the same <paramref name="axes"/> into <paramref name="r0"/> and <paramref name="r1"/>. Each input element is
    /// loaded once for both trees. Each output has the bits of <see cref="ElementwiseTreeReduce"/> of its tree alone on
    /// the same set (same partition, same accumulation order). y0 may be an input of the full shape that only the first
    /// tree reads, y1 one that only the second reads; y0 and y1 are distinct; r0 and r1 are distinct, and neither is an
    /// input, y0 or y1.
    /// </summary>
    void ElementwiseTreeReducePair(ElementwiseExpression first, ElementwiseExpression second, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, DeviceBuffer<float>? y0, DeviceBuffer<float>? y1, ReduceOp op, int[] axes, DeviceBuffer<float> r0,
        DeviceBuffer<float> r1);

    /// <summary>
    /// The most bytes other launches may touch between a reduction's last use of its inputs and a later launch it
    /// would run with as an <see cref="ElementwiseTreeReducePair"/>, for a caller that schedules pairs (the compiler)
    /// to pair the two. Past it the inputs are re-read from memory instead of a cache, which costs more than the
    /// launch the pair saves. Unlimited by default: a set whose launches are dear pairs regardless of distance.
    /// </summary>
    long SiblingPairReach => long.MaxValue;

    /// <summary>
    /// A reduction and the tree that reads it back, in one launch: <paramref name="reduced"/> over
    /// <paramref name="shape"/> reduced with <paramref name="op"/> over <paramref name="axes"/> into
    /// <paramref name="r"/> (as <see cref="ElementwiseTreeReduce"/> with no stored values), then y =
    /// <paramref name="map"/>(<paramref name="mapInputs"/>) over the same shape (as <see cref="ElementwiseTree"/>),
    /// where r is one of the map's inputs, read as the shape with the reduced axes of extent 1: each element reads the
    /// result of the reduction it took part in. So every output's elements can be reduced and then mapped by the same
    /// worker, with no pass over the whole tensor in between (a softmax's backward: a row sum, then each element of the
    /// row). r and y have the bits of the two calls made one after the other on the same set. y may be an input of the
    /// full shape (of the reduction or the map), never r.
    /// </summary>
    void ElementwiseTreeReduceThenMap(ElementwiseExpression reduced, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes, int[] shape,
        ReduceOp op, int[] axes, DeviceBuffer<float> r, ElementwiseExpression map, IReadOnlyList<DeviceBuffer<float>> mapInputs,
        IReadOnlyList<int[]> mapInputShapes, DeviceBuffer<float> y);

    /// <summary>
    /// Independent reductions with their maps in one launch where the set can (a horizontal fusion): each call as
    /// <see cref="ElementwiseTreeReduceThenMap"/> alone, with its bits. No call's r or y may be read or written by
    /// another call. Every call is checked before any runs (<see cref="ReduceThenMapCall.CheckAll"/>).
    /// </summary>
    void ElementwiseTreeReduceThenMaps(IReadOnlyList<ReduceThenMapCall> calls);
}

/// <summary>One call of <see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps"/>: the arguments of <see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMap"/>.</summary>
/// <param name="Reduced">The tree reduced.</param>
/// <param name="Inputs">Its inputs.</param>
/// <param name="InputShapes">The shape each input is read as.</param>
/// <param name="Shape">The shape the tree is evaluated over and reduced.</param>
/// <param name="Op">Sum or Mean.</param>
/// <param name="Axes">The reduced axes.</param>
/// <param name="R">The reduction's result.</param>
/// <param name="Map">The tree that reads r back.</param>
/// <param name="MapInputs">Its inputs (r among them).</param>
/// <param name="MapInputShapes">The shape each map input is read as.</param>
/// <param name="Y">The map's result.</param>
public sealed record ReduceThenMapCall(ElementwiseExpression Reduced, IReadOnlyList<DeviceBuffer<float>> Inputs, IReadOnlyList<int[]> InputShapes, int[] Shape,
    ReduceOp Op, int[] Axes, DeviceBuffer<float> R, ElementwiseExpression Map, IReadOnlyList<DeviceBuffer<float>> MapInputs, IReadOnlyList<int[]> MapInputShapes,
    DeviceBuffer<float> Y)
{
    /// <summary>
    /// Checks a batch before any work: at least one call, each as <see cref="TreeReduction.CheckThenMap"/> checks it
    /// alone, and no call's r or y among another call's inputs, map inputs, r or y (naming the calls). Returns each
    /// call's reduction walk and map layout.
    /// </summary>
    /// <param name="calls">The calls.</param>
    internal static (TreeReduction Plan, TreeBroadcast MapLayout)[] CheckAll(IReadOnlyList<ReduceThenMapCall> calls)
    {
        const string name = nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps);
        ArgumentNullException.ThrowIfNull(calls);
        if (calls.Count == 0) throw new ArgumentException($"{name}: no calls.", nameof(calls));
        var plans = new (TreeReduction, TreeBroadcast)[calls.Count];
        for (int i = 0; i < calls.Count; i++)
        {
            var c = calls[i] ?? throw new ArgumentNullException(nameof(calls), $"{name}: call {i} is null.");
            try
            {
                plans[i] = TreeReduction.CheckThenMap(c.Reduced, c.Inputs, c.InputShapes, c.Shape, c.Op, c.Axes, c.R, c.Map, c.MapInputs, c.MapInputShapes, c.Y);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{name}: call {i}: {e.Message}", e.ParamName, e);
            }
        }
        for (int i = 0; i < calls.Count; i++)
            for (int j = 0; j < calls.Count; j++)
            {
                if (i == j) continue;
                var other = calls[j];
                foreach (var (written, what) in new[] { (calls[i].R, "r"), (calls[i].Y, "y") })
                    if (other.Inputs.Contains(written) || other.MapInputs.Contains(written) || ReferenceEquals(written, other.R) || ReferenceEquals(written, other.Y))
                        throw new ArgumentException($"{name}: call {i}'s {what} is read or written by call {j}; the calls must be independent.", nameof(calls));
            }
        return plans;
    }
}

/// <summary>
/// The flat forms of the tree calls, where every input holds the tree's element count or one element (a scalar read
/// by every element): shapes are not needed.
/// </summary>
public static class FusedElementwiseKernelsExtensions
{
    /// <summary>
    /// y[i] = tree(inputs[0][i], ..., inputs[k-1][i]) as one kernel, each input of y's length or of length 1 (a
    /// scalar); otherwise as <see cref="IFusedElementwiseKernels.ElementwiseTree"/>.
    /// </summary>
    /// <param name="kernels">The kernel set.</param>
    /// <param name="tree">The tree.</param>
    /// <param name="inputs">Its inputs, input k read by the leaves of index k.</param>
    /// <param name="y">The result (may be an input).</param>
    public static void ElementwiseTree(this IFusedElementwiseKernels kernels, ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs,
        DeviceBuffer<float> y)
    {
        ArgumentNullException.ThrowIfNull(kernels);
        ElementwiseExpression.Check(tree, inputs, y);
        kernels.ElementwiseTree(tree, inputs, inputs.Select(b => new[] { checked((int)b.Length) }).ToArray(), y, [checked((int)y.Length)]);
    }

    /// <summary>
    /// The tree over <paramref name="shape"/>, each input of the shape's element count or 1 (a scalar), stored and
    /// reduced as <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/> does.
    /// </summary>
    /// <param name="kernels">The kernel set.</param>
    /// <param name="tree">The tree.</param>
    /// <param name="inputs">Its inputs, input k read by the leaves of index k.</param>
    /// <param name="shape">The shape the tree is evaluated over.</param>
    /// <param name="y">Where the tree's values are stored, or null.</param>
    /// <param name="op">Sum or Mean.</param>
    /// <param name="axes">The reduced axes: sorted, distinct, in range.</param>
    /// <param name="r">The reduction's result: the kept dims' element count.</param>
    public static void ElementwiseTreeReduce(this IFusedElementwiseKernels kernels, ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs,
        int[] shape, DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r)
    {
        ArgumentNullException.ThrowIfNull(kernels);
        var plan = TreeReduction.Check(tree, inputs, null, shape, y, op, axes, r);
        kernels.ElementwiseTreeReduce(tree, inputs, inputs.Select(b => b.Length == plan.Count ? shape : []).ToArray(), shape, y, op, axes, r);
    }
}

/// <summary>
/// The iteration space of a tree over a shape with broadcasting inputs: the shape's dims with size-1 dims dropped and
/// neighbours merged wherever every input stays affine, as extents and per-input element strides (0 on broadcast
/// dims), outermost first; always at least one dim. Inputs beyond those given have zero strides.
/// </summary>
/// <param name="Count">Elements the tree computes.</param>
/// <param name="Extents">The collapsed extents, outermost first.</param>
/// <param name="Strides">Per input (<see cref="ElementwiseExpression.MaxInputs"/> of them), the stride of each collapsed dim.</param>
internal sealed record TreeBroadcast(long Count, long[] Extents, long[][] Strides)
{
    /// <summary>True when the space is one dim: every input is read contiguously or is a scalar.</summary>
    public bool Flat => Extents.Length == 1;

    /// <summary>The space of <paramref name="count"/> elements with every input read contiguously.</summary>
    public static TreeBroadcast Contiguous(long count) =>
        new(count, [count], Enumerable.Range(0, ElementwiseExpression.MaxInputs).Select(_ => new long[] { 1 }).ToArray());

    /// <summary>
    /// Checks a call of <see cref="IFusedElementwiseKernels.ElementwiseTree"/> before any work: as
    /// <see cref="Check(string, ElementwiseExpression, IReadOnlyList{DeviceBuffer{float}}, IReadOnlyList{int[]}, int[])"/>, and y alive
    /// and of the shape's element count.
    /// </summary>
    public static TreeBroadcast CheckTree(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes,
        DeviceBuffer<float> y, int[] shape)
    {
        const string op = nameof(IFusedElementwiseKernels.ElementwiseTree);
        ArgumentNullException.ThrowIfNull(y);
        y.ThrowIfDisposed(op);
        var layout = Check(op, tree, inputs, inputShapes, shape);
        if (y.Length != layout.Count)
            throw new ArgumentException($"{op}: y holds {y.Length} elements, expected shape [{string.Join(", ", shape)}]'s {layout.Count}.", nameof(y));
        return layout;
    }

    /// <summary>
    /// Checks a broadcasting tree call before any work: the tree and inputs as <see cref="ElementwiseExpression"/>
    /// requires them, one shape per input, each non-negative, of its buffer's length and broadcasting to
    /// <paramref name="shape"/>; returns the collapsed iteration space.
    /// </summary>
    public static TreeBroadcast Check(string op, ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]> inputShapes,
        int[] shape)
    {
        ArgumentNullException.ThrowIfNull(inputShapes);
        ArgumentNullException.ThrowIfNull(shape);
        long count = ElementwiseExpression.CheckShape(op, shape, "shape");
        ElementwiseExpression.CheckInputs(op, tree, inputs, -1, "");
        if (inputShapes.Count != inputs.Count)
            throw new ArgumentException($"{op}: {inputShapes.Count} input shapes for {inputs.Count} inputs.", nameof(inputShapes));
        string Fmt(int[] s) => "[" + string.Join(", ", s) + "]";
        for (int k = 0; k < inputs.Count; k++)
        {
            var s = inputShapes[k] ?? throw new ArgumentNullException($"{nameof(inputShapes)}[{k}]");
            long n = ElementwiseExpression.CheckShape(op, s, $"input {k}'s shape");
            if (inputs[k].Length != n)
                throw new ArgumentException($"{op}: input {k} holds {inputs[k].Length} elements, its shape {Fmt(s)} has {n}.", nameof(inputs));
            bool broadcasts = s.Length <= shape.Length;
            for (int d = 0; broadcasts && d < s.Length; d++)
                broadcasts = s[d] == 1 || s[d] == shape[shape.Length - s.Length + d];
            if (!broadcasts)
                throw new ArgumentException($"{op}: input {k} of shape {Fmt(s)} does not broadcast to the tree's shape {Fmt(shape)}.", nameof(inputShapes));
        }
        return Collapse(count, shape, inputShapes);
    }

    private static TreeBroadcast Collapse(long count, int[] shape, IReadOnlyList<int[]> inputShapes)
    {
        int rank = shape.Length, inputs = ElementwiseExpression.MaxInputs;
        // Per input, the element stride of each dim of the shape (0 where the input repeats).
        var full = new long[inputs][];
        for (int k = 0; k < inputs; k++)
        {
            full[k] = new long[rank];
            if (k >= inputShapes.Count) continue;
            var s = inputShapes[k];
            long stride = 1;
            for (int d = s.Length - 1; d >= 0; d--)
            {
                full[k][rank - s.Length + d] = s[d] == 1 ? 0 : stride;
                stride *= s[d];
            }
        }
        var ext = new List<long>();
        var strides = Enumerable.Range(0, inputs).Select(_ => new List<long>()).ToArray();
        // From the innermost dim outwards, merging a dim into the inner collapsed one when every input continues it.
        for (int d = rank - 1; d >= 0; d--)
        {
            if (shape[d] == 1) continue;
            int last = ext.Count - 1;
            if (last >= 0 && Enumerable.Range(0, inputs).All(k => full[k][d] == strides[k][last] * ext[last]))
            {
                ext[last] *= shape[d];
                continue;
            }
            ext.Add(shape[d]);
            for (int k = 0; k < inputs; k++) strides[k].Add(full[k][d]);
        }
        if (ext.Count == 0)
        {
            ext.Add(1);
            foreach (var st in strides) st.Add(0);
        }
        ext.Reverse();
        foreach (var st in strides) st.Reverse();
        return new TreeBroadcast(count, [.. ext], strides.Select(st => st.ToArray()).ToArray());
    }
}

/// <summary>
/// An elementwise expression tree (see <see cref="IFusedElementwiseKernels.ElementwiseTree"/>): leaves read inputs,
/// nodes apply a <see cref="UnaryStep"/> or a <see cref="BinaryOp"/> to their children. Value equality: equal trees
/// share one compiled kernel.
/// </summary>
public abstract record ElementwiseExpression
{
    /// <summary>Input buffers a tree may read.</summary>
    public const int MaxInputs = 4;

    private protected ElementwiseExpression() { }

    /// <summary>Inputs the tree reads: one more than its highest input index.</summary>
    public abstract int Arity { get; }

    /// <summary>Ops (unary steps and binary ops) in the tree.</summary>
    public abstract int Ops { get; }

    /// <summary>True when a leaf of the tree reads input <paramref name="index"/>.</summary>
    internal bool Reads(int index) => this switch
    {
        Input leaf => leaf.Index == index,
        Unary unary => unary.X.Reads(index),
        Binary binary => binary.A.Reads(index) || binary.B.Reads(index),
        _ => false,
    };

    /// <summary>The leaf reading input <paramref name="Index"/> (0 to <see cref="MaxInputs"/> - 1).</summary>
    /// <param name="Index">The input's position in the kernel's input list.</param>
    public sealed record Input(int Index) : ElementwiseExpression
    {
        /// <inheritdoc />
        public override int Arity => Index + 1;

        /// <inheritdoc />
        public override int Ops => 0;

        /// <inheritdoc />
        public override string ToString() => "x" + Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A unary step over a subtree.</summary>
    /// <param name="Step">The step.</param>
    /// <param name="X">Its operand.</param>
    public sealed record Unary(UnaryStep Step, ElementwiseExpression X) : ElementwiseExpression
    {
        /// <inheritdoc />
        public override int Arity => X.Arity;

        /// <inheritdoc />
        public override int Ops => 1 + X.Ops;

        /// <inheritdoc />
        public override string ToString() => $"{Step}({X})";
    }

    /// <summary>A binary op over two subtrees.</summary>
    /// <param name="Op">The op.</param>
    /// <param name="A">Its first operand.</param>
    /// <param name="B">Its second operand.</param>
    public sealed record Binary(BinaryOp Op, ElementwiseExpression A, ElementwiseExpression B) : ElementwiseExpression
    {
        /// <inheritdoc />
        public override int Arity => Math.Max(A.Arity, B.Arity);

        /// <inheritdoc />
        public override int Ops => 1 + A.Ops + B.Ops;

        /// <inheritdoc />
        public override string ToString() => $"{Op}({A}, {B})";
    }

    /// <summary>
    /// Checks a call of <see cref="IFusedElementwiseKernels.ElementwiseTree"/> before any work: 1 to
    /// <see cref="MaxInputs"/> inputs, every leaf's index among them, each input alive and of y's length or 1.
    /// </summary>
    internal static void Check(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, DeviceBuffer<float> y)
    {
        const string op = nameof(IFusedElementwiseKernels.ElementwiseTree);
        ArgumentNullException.ThrowIfNull(y);
        y.ThrowIfDisposed(op);
        CheckInputs(op, tree, inputs, y.Length, "y's");
    }

    /// <summary>
    /// Checks a tree and its inputs: 1 to <see cref="MaxInputs"/> inputs, every leaf's index among them, each input
    /// alive and of <paramref name="count"/> elements (described as <paramref name="countName"/>) or 1; any length when
    /// <paramref name="count"/> is negative (the caller checks the inputs' shapes).
    /// </summary>
    internal static void CheckInputs(string op, ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, long count, string countName)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count is < 1 or > MaxInputs)
            throw new ArgumentException($"{op}: {inputs.Count} inputs, expected 1 to {MaxInputs}.", nameof(inputs));
        if (tree.Arity > inputs.Count)
            throw new ArgumentException($"{op}: the tree {tree} reads input {tree.Arity - 1}, but {inputs.Count} inputs were given.", nameof(tree));
        for (int k = 0; k < inputs.Count; k++)
        {
            ArgumentNullException.ThrowIfNull(inputs[k], $"{nameof(inputs)}[{k}]");
            inputs[k].ThrowIfDisposed(op);
            if (count >= 0 && inputs[k].Length != count && inputs[k].Length != 1)
                throw new ArgumentException($"{op}: input {k} holds {inputs[k].Length} elements, expected {countName} {count} or 1 (a scalar).", nameof(inputs));
        }
    }

    /// <summary>The element count of <paramref name="shape"/> (described as <paramref name="what"/>), checked non-negative.</summary>
    internal static long CheckShape(string op, int[] shape, string what)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"{op}: negative extent {d} in {what} [{string.Join(", ", shape)}].", nameof(shape));
            count *= d;
        }
        return count;
    }
}

/// <summary>What a checked <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/> call covers.</summary>
/// <param name="Count">Elements the tree computes (the shape's element count).</param>
/// <param name="Outputs">Elements of r.</param>
/// <param name="Reduced">For each dim of the shape, whether it is reduced.</param>
/// <param name="Layout">How the tree reads its inputs over the shape.</param>
internal readonly record struct TreeReduction(long Count, long Outputs, bool[] Reduced, TreeBroadcast Layout)
{
    /// <summary>Elements reduced into each output.</summary>
    public long PerOutput => Outputs == 0 ? 0 : Count / Outputs;

    /// <summary>
    /// Checks a call of <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/> before any work: the tree and
    /// inputs as <see cref="ElementwiseExpression"/> requires them (each input of the shape's element count or 1 when
    /// <paramref name="inputShapes"/> is null, else of its shape, broadcasting to the shape), y of the shape's count,
    /// a sum or a mean over sorted, distinct axes in range, r of the kept dims' count and distinct from the inputs and y.
    /// </summary>
    public static TreeReduction Check(ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]>? inputShapes, int[] shape,
        DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r) =>
        Check(nameof(IFusedElementwiseKernels.ElementwiseTreeReduce), tree, inputs, inputShapes, shape, y, op, axes, r);

    /// <summary>
    /// Checks a call of <see cref="IFusedElementwiseKernels.ElementwiseTreeReducePair"/> before any work: each tree with
    /// its y and r as <see cref="Check(ElementwiseExpression, IReadOnlyList{DeviceBuffer{float}}, IReadOnlyList{int[]}, int[], DeviceBuffer{float}, ReduceOp, int[], DeviceBuffer{float})"/>
    /// requires them, y0 and y1 distinct and neither an input the other tree reads, r0 and r1 distinct and neither the
    /// other tree's y. Both trees share the returned walk.
    /// </summary>
    public static TreeReduction CheckPair(ElementwiseExpression first, ElementwiseExpression second, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, DeviceBuffer<float>? y0, DeviceBuffer<float>? y1, ReduceOp op, int[] axes, DeviceBuffer<float> r0,
        DeviceBuffer<float> r1)
    {
        const string name = nameof(IFusedElementwiseKernels.ElementwiseTreeReducePair);
        ArgumentNullException.ThrowIfNull(inputShapes);
        var plan = Check(name, first, inputs, inputShapes, shape, y0, op, axes, r0);
        Check(name, second, inputs, inputShapes, shape, y1, op, axes, r1);
        if (ReferenceEquals(r0, r1)) throw new ArgumentException($"{name}: r0 is r1; each reduction needs its own output.", nameof(r1));
        if (y0 != null && ReferenceEquals(y0, y1)) throw new ArgumentException($"{name}: y0 is y1; each tree needs its own stored values.", nameof(y1));
        if (ReferenceEquals(r0, y1)) throw new ArgumentException($"{name}: r0 is y1.", nameof(r0));
        if (ReferenceEquals(r1, y0)) throw new ArgumentException($"{name}: r1 is y0.", nameof(r1));
        for (int k = 0; k < inputs.Count; k++)
        {
            if (y0 != null && ReferenceEquals(inputs[k], y0) && second.Reads(k))
                throw new ArgumentException($"{name}: y0 is input {k}, which the second tree {second} reads.", nameof(y0));
            if (y1 != null && ReferenceEquals(inputs[k], y1) && first.Reads(k))
                throw new ArgumentException($"{name}: y1 is input {k}, which the first tree {first} reads.", nameof(y1));
        }
        return plan;
    }

    /// <summary>
    /// Checks a call of <see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMap"/> before any work: the
    /// reduction as <see cref="Check(ElementwiseExpression, IReadOnlyList{DeviceBuffer{float}}, IReadOnlyList{int[]}, int[], DeviceBuffer{float}, ReduceOp, int[], DeviceBuffer{float})"/>
    /// requires it (nothing stored), the map as <see cref="TreeBroadcast.CheckTree"/> does over the same shape; the
    /// map reads r, and only as the shape with the reduced axes of extent 1; y is not r. (An input read through
    /// broadcasting holds fewer elements than y, so it is never y.) Returns the reduction's walk and the map's layout.
    /// </summary>
    public static (TreeReduction Plan, TreeBroadcast MapLayout) CheckThenMap(ElementwiseExpression reduced, IReadOnlyList<DeviceBuffer<float>> inputs,
        IReadOnlyList<int[]> inputShapes, int[] shape, ReduceOp op, int[] axes, DeviceBuffer<float> r, ElementwiseExpression map,
        IReadOnlyList<DeviceBuffer<float>> mapInputs, IReadOnlyList<int[]> mapInputShapes, DeviceBuffer<float> y)
    {
        const string name = nameof(IFusedElementwiseKernels.ElementwiseTreeReduceThenMap);
        ArgumentNullException.ThrowIfNull(inputShapes);
        ArgumentNullException.ThrowIfNull(y);
        var plan = Check(name, reduced, inputs, inputShapes, shape, null, op, axes, r);
        y.ThrowIfDisposed(name);
        var mapLayout = TreeBroadcast.Check(name, map, mapInputs, mapInputShapes, shape);
        string Fmt(int[] s) => "[" + string.Join(", ", s) + "]";
        if (y.Length != plan.Count)
            throw new ArgumentException($"{name}: y holds {y.Length} elements, expected shape {Fmt(shape)}'s {plan.Count}.", nameof(y));
        if (ReferenceEquals(y, r)) throw new ArgumentException($"{name}: y is r.", nameof(y));
        var rowShape = shape.Select((d, axis) => plan.Reduced[axis] ? 1 : d).ToArray();
        bool readsR = false;
        for (int k = 0; k < mapInputs.Count; k++)
        {
            if (!map.Reads(k)) continue;
            if (ReferenceEquals(mapInputs[k], r))
            {
                if (!SameWithoutLeadingOnes(mapInputShapes[k], rowShape))
                    throw new ArgumentException($"{name}: the map reads r (input {k}) as shape {Fmt(mapInputShapes[k])}, expected {Fmt(rowShape)}: the shape with the reduced axes of extent 1.",
                        nameof(mapInputShapes));
                readsR = true;
            }
        }
        if (!readsR) throw new ArgumentException($"{name}: the map {map} does not read r.", nameof(map));
        return (plan, mapLayout);
    }

    /// <summary>True when the shapes are equal once leading 1s are dropped (they broadcast alike).</summary>
    private static bool SameWithoutLeadingOnes(int[] a, int[] b) => a.SkipWhile(d => d == 1).SequenceEqual(b.SkipWhile(d => d == 1));

    private static TreeReduction Check(string name, ElementwiseExpression tree, IReadOnlyList<DeviceBuffer<float>> inputs, IReadOnlyList<int[]>? inputShapes,
        int[] shape, DeviceBuffer<float>? y, ReduceOp op, int[] axes, DeviceBuffer<float> r)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(axes);
        ArgumentNullException.ThrowIfNull(r);
        if (op is not (ReduceOp.Sum or ReduceOp.Mean))
            throw new ArgumentOutOfRangeException(nameof(op), op, $"{name}: the op must be Sum or Mean, got {op}.");
        string Shape() => "[" + string.Join(", ", shape) + "]";
        long count = ElementwiseExpression.CheckShape(name, shape, "shape");
        var reduced = new bool[shape.Length];
        int previous = -1;
        foreach (var axis in axes)
        {
            if (axis <= previous || axis >= shape.Length)
                throw new ArgumentException($"{name}: axes [{string.Join(", ", axes)}] must be sorted, distinct and below rank {shape.Length} of shape {Shape()}.", nameof(axes));
            reduced[axis] = true;
            previous = axis;
        }
        long outputs = 1;
        for (int d = 0; d < shape.Length; d++)
            if (!reduced[d]) outputs *= shape[d];
        r.ThrowIfDisposed(name);
        TreeBroadcast layout;
        if (inputShapes == null)
        {
            ElementwiseExpression.CheckInputs(name, tree, inputs, count, $"shape {Shape()}'s");
            layout = TreeBroadcast.Check(name, tree, inputs, inputs.Select(b => b.Length == count ? shape : []).ToArray(), shape);
        }
        else layout = TreeBroadcast.Check(name, tree, inputs, inputShapes, shape);
        for (int k = 0; k < inputs.Count; k++)
            if (ReferenceEquals(inputs[k], r))
                throw new ArgumentException($"{name}: r is input {k}; the reduction must not overwrite what the tree reads.", nameof(r));
        if (y != null)
        {
            y.ThrowIfDisposed(name);
            if (y.Length != count)
                throw new ArgumentException($"{name}: y holds {y.Length} elements, expected shape {Shape()}'s {count}.", nameof(y));
            if (ReferenceEquals(y, r)) throw new ArgumentException($"{name}: r is y.", nameof(r));
        }
        if (r.Length != outputs)
            throw new ArgumentException($"{name}: r holds {r.Length} elements, expected {outputs} (shape {Shape()} without axes [{string.Join(", ", axes)}]).", nameof(r));
        return new TreeReduction(count, outputs, reduced, layout);
    }
}

/// <summary>One step of a fused elementwise chain: a <see cref="UnaryOp"/>, or the affine map scale · x + shift (one rounding).</summary>
/// <param name="Op">The op (ignored when <paramref name="IsAffine"/>).</param>
/// <param name="Scale">The affine map's scale.</param>
/// <param name="Shift">The affine map's shift.</param>
/// <param name="IsAffine">True for the affine map, as <see cref="IKernelSet.Affine"/>.</param>
public readonly record struct UnaryStep(UnaryOp Op, float Scale, float Shift, bool IsAffine)
{
    /// <summary>The step of <paramref name="op"/>.</summary>
    public static implicit operator UnaryStep(UnaryOp op) => new(op, 1f, 0f, false);

    /// <summary>The affine step scale · x + shift.</summary>
    public static UnaryStep Affine(float scale, float shift) => new(default, scale, shift, true);

    /// <inheritdoc />
    public override string ToString() => IsAffine
        ? $"Affine({Scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture)},{Shift.ToString("R", System.Globalization.CultureInfo.InvariantCulture)})"
        : Op.ToString();
}

/// <summary>Builds composed op structs for a chain or tree and calls a kernel set's generic elementwise kernel with them.</summary>
internal static class ElementwiseChains
{
    private static readonly ConcurrentDictionary<(Type Set, string Kernel, Type Op, Type? Second), MethodInfo> Kernels = new();
    private static readonly ConcurrentDictionary<string, object> Ops = new();

    /// <summary>The composed unary op struct (boxed) of steps[k-1] ∘ ... ∘ steps[0] (the identity when empty), made once per chain.</summary>
    public static object Unary(IReadOnlyList<UnaryStep> steps) =>
        Ops.GetOrAdd("u:" + string.Join(",", steps), _ =>
        {
            if (steps.Count == 0) return new IdentityOp();
            object chain = Box(steps[0]);
            for (int i = 1; i < steps.Count; i++)
            {
                var outer = Box(steps[i]);
                chain = Activator.CreateInstance(typeof(Compose<,>).MakeGenericType(outer.GetType(), chain.GetType()), outer, chain)!;
            }
            return chain;
        });

    /// <summary>The binary op struct (boxed) of tail ∘ head ∘ (aSteps, bSteps).</summary>
    public static object Binary(IReadOnlyList<UnaryStep> aSteps, BinaryOp head, IReadOnlyList<UnaryStep> bSteps, IReadOnlyList<UnaryStep> tail) =>
        Ops.GetOrAdd("b:" + string.Join(",", aSteps) + ":" + head + ":" + string.Join(",", bSteps) + ":" + string.Join(",", tail), _ =>
        {
            var binary = ElementwiseOps.Visit<Boxer, object>(head, default);
            if (aSteps.Count > 0 || bSteps.Count > 0)
            {
                var first = Unary(aSteps);
                var second = Unary(bSteps);
                binary = Activator.CreateInstance(typeof(OnOperands<,,>).MakeGenericType(binary.GetType(), first.GetType(), second.GetType()), binary, first, second)!;
            }
            if (tail.Count == 0) return binary;
            var unary = Unary(tail);
            return Activator.CreateInstance(typeof(Then<,>).MakeGenericType(binary.GetType(), unary.GetType()), binary, unary)!;
        });

    /// <summary>
    /// The tree op struct of each expression object seen, so that a call with a tree seen before (every replay of a
    /// compiled graph) neither formats the tree as a key nor looks it up: expressions are immutable records.
    /// </summary>
    private static readonly ConditionalWeakTable<ElementwiseExpression, object> TreeOps = new();

    /// <summary>The tree op struct (boxed) of <paramref name="tree"/>, made once per tree (equal trees share one).</summary>
    public static object Tree(ElementwiseExpression tree) =>
        TreeOps.GetValue(tree, static t => Ops.GetOrAdd("t:" + t, _ => BuildTree(t)));

    private static object BuildTree(ElementwiseExpression tree)
    {
        switch (tree)
        {
            case ElementwiseExpression.Input leaf:
                return leaf.Index switch
                {
                    0 => new Input0(),
                    1 => new Input1(),
                    2 => new Input2(),
                    3 => new Input3(),
                    _ => throw new ArgumentOutOfRangeException(nameof(tree), leaf.Index, $"input index must be below {ElementwiseExpression.MaxInputs}."),
                };
            case ElementwiseExpression.Unary unary:
                var op = Box(unary.Step);
                var child = BuildTree(unary.X);
                return Activator.CreateInstance(typeof(UnaryNode<,>).MakeGenericType(op.GetType(), child.GetType()), op, child)!;
            case ElementwiseExpression.Binary binary:
                var bop = ElementwiseOps.Visit<Boxer, object>(binary.Op, default);
                var left = BuildTree(binary.A);
                var right = BuildTree(binary.B);
                if (Calls(right) && !Calls(left))
                {
                    // A node computes its first child first: only the right one calls, so it goes first (as the first
                    // child of the flipped op, the same op on the same operands), and nothing of the left one is held
                    // across the call. Operands are pure: every bit stays as it is.
                    var flipped = Activator.CreateInstance(typeof(Flip<>).MakeGenericType(bop.GetType()), bop)!;
                    return Activator.CreateInstance(typeof(BinaryNode<,,>).MakeGenericType(flipped.GetType(), right.GetType(), left.GetType()),
                        flipped, right, left)!;
                }
                return Activator.CreateInstance(typeof(BinaryNode<,,>).MakeGenericType(bop.GetType(), left.GetType(), right.GetType()), bop, left, right)!;
            default:
                throw new ArgumentException($"unknown expression node {tree.GetType().Name}.", nameof(tree));
        }
    }

    /// <summary>The static <see cref="ITreeOp.Calls"/> of a tree op struct.</summary>
    private static bool Calls(object treeOp) =>
        (bool)treeOp.GetType().GetProperty(nameof(ITreeOp.Calls), BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;

    private static object Box(UnaryStep step) =>
        step.IsAffine ? new AffineOp(step.Scale, step.Shift) : ElementwiseOps.Visit<Boxer, object>(step.Op, default);

    /// <summary>Calls <paramref name="set"/>'s generic kernel <paramref name="kernel"/>&lt;TOp&gt;(op, rest...) with the boxed op.</summary>
    public static void Run(object set, string kernel, object op, params object?[] rest) => Invoke(set, kernel, [op], rest);

    /// <summary>
    /// Calls <paramref name="set"/>'s generic kernel <paramref name="kernel"/>&lt;TFirst, TSecond&gt;(first, second,
    /// rest...) with two boxed op structs (a pair of trees).
    /// </summary>
    public static void RunPair(object set, string kernel, object first, object second, params object?[] rest) => Invoke(set, kernel, [first, second], rest);

    private static void Invoke(object set, string kernel, object[] ops, object?[] rest)
    {
        var method = Kernels.GetOrAdd((set.GetType(), kernel, ops[0].GetType(), ops.Length > 1 ? ops[1].GetType() : null), key =>
            key.Set.GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                .Single(m => m.Name == key.Kernel && m.IsGenericMethodDefinition && m.GetGenericArguments().Length == (key.Second == null ? 1 : 2))
                .MakeGenericMethod(key.Second == null ? [key.Op] : [key.Op, key.Second]));
        try
        {
            method.Invoke(set, [.. ops, .. rest]);
        }
        catch (TargetInvocationException e) when (e.InnerException != null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }
    }

    private readonly struct Boxer : IUnaryOpVisitor<object>, IBinaryOpVisitor<object>
    {
        object IUnaryOpVisitor<object>.Visit<TOp>(TOp op) => op;

        object IBinaryOpVisitor<object>.Visit<TOp>(TOp op) => op;
    }
}
