using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// A fused group of elementwise calls, replayed as one <see cref="IFusedElementwiseKernels"/> launch: a unary chain, a
/// binary chain (one binary op, unary chains on its operands and after it), an expression tree, an expression tree
/// with the reduction that reads it, or two such sibling reductions over shared inputs.
/// </summary>
internal sealed class FusedOp : TraceOp
{
    private FusedOp(int calls, object?[] args)
    {
        Calls = calls;
        Args = args;
        foreach (var a in Args) ArgWalker.Collect(a, Buffers);
    }

    /// <summary>A group of unary steps only: x in, y out (<paramref name="steps"/> in the order they apply).</summary>
    public static FusedOp UnaryChain(int calls, List<UnaryStep> steps, object x, object y) => new(calls, [x, y]) { Steps = steps };

    /// <summary>A group with one binary op: <paramref name="head"/>'s call with its operands read through the operand chains, then <paramref name="tail"/>.</summary>
    public static FusedOp BinaryChain(int calls, KernelCallOp head, List<UnaryStep> aSteps, object a, List<UnaryStep> bSteps, object b, List<UnaryStep> tail, object y) =>
        new(calls, [a, head.Args[2], b, head.Args[4], y, head.Args[6]])
        {
            Head = (BinaryOp)head.Args[0]!,
            ASteps = aSteps,
            BSteps = bSteps,
            Steps = tail,
        };

    /// <summary>
    /// An expression tree over <paramref name="inputs"/> (its input i is inputs[i]), written into <paramref name="y"/>;
    /// with <paramref name="shape"/>, evaluated over that shape with input i of <paramref name="inputShapes"/>[i], read
    /// through broadcasting.
    /// </summary>
    public static FusedOp Tree(int calls, ElementwiseExpression tree, List<object> inputs, object y, int[]? shape = null, int[][]? inputShapes = null) =>
        new(calls, [.. inputs, y]) { Expression = tree, TreeShape = shape, InputShapes = inputShapes };

    /// <summary>
    /// An expression tree over <paramref name="inputs"/> evaluated over <paramref name="shape"/>, stored into
    /// <paramref name="y"/> (null: not stored) and reduced over <paramref name="axes"/> with <paramref name="reduce"/>'s
    /// op into its output (the shape and axes are <paramref name="reduce"/>'s, or a regrouping of them that reduces in
    /// the same order); with <paramref name="inputShapes"/>, input i is read through broadcasting as
    /// <paramref name="inputShapes"/>[i].
    /// </summary>
    public static FusedOp TreeReduce(int calls, ElementwiseExpression tree, List<object> inputs, object? y, KernelCallOp reduce, int[] shape, int[] axes,
        int[][]? inputShapes) =>
        new(calls, [.. inputs, y, reduce.Args[4]])
        {
            Expression = tree,
            InputShapes = inputShapes,
            Reduction = (ReduceOp)reduce.Args[0]!,
            ReduceShape = shape,
            ReduceAxes = axes,
        };

    /// <summary>
    /// Two sibling reductions as one launch: <paramref name="first"/> and <paramref name="second"/> over
    /// <paramref name="inputs"/> (input i of <paramref name="inputShapes"/>[i], broadcast to <paramref name="shape"/>),
    /// stored into y0 and y1 (null: not stored), each reduced with <paramref name="op"/> over <paramref name="axes"/>
    /// into r0 and r1.
    /// </summary>
    public static FusedOp TreeReducePair(int calls, ElementwiseExpression first, ElementwiseExpression second, List<object> inputs, int[][] inputShapes,
        object? y0, object? y1, object r0, object r1, ReduceOp op, int[] shape, int[] axes) =>
        new(calls, [.. inputs, y0, y1, r0, r1])
        {
            Expression = first,
            SecondExpression = second,
            InputShapes = inputShapes,
            Reduction = op,
            ReduceShape = shape,
            ReduceAxes = axes,
        };

    /// <summary>
    /// A reduction launch and the tree after it that reads its result back as one launch
    /// (<see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMap"/>): <paramref name="reduced"/> over
    /// <paramref name="inputs"/> (input i of <paramref name="inputShapes"/>[i], broadcast to <paramref name="shape"/>)
    /// reduced with <paramref name="op"/> over <paramref name="axes"/> into <paramref name="r"/>, then
    /// <paramref name="map"/> over <paramref name="mapInputs"/> (of <paramref name="mapShapes"/>, r among them) into
    /// <paramref name="y"/>.
    /// </summary>
    public static FusedOp ReduceThenMap(int calls, ElementwiseExpression reduced, List<object> inputs, int[][] inputShapes, ReduceOp op, int[] shape, int[] axes,
        object r, ElementwiseExpression map, List<object> mapInputs, int[][] mapShapes, object y) =>
        new(calls, [.. inputs, r, .. mapInputs, y])
        {
            Expression = reduced,
            InputShapes = inputShapes,
            Reduction = op,
            ReduceShape = shape,
            ReduceAxes = axes,
            MapExpression = map,
            MapInputShapes = mapShapes,
        };

    /// <summary>
    /// Independent reductions with their maps (<see cref="ReduceThenMap"/> groups) as one launch
    /// (<see cref="IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps"/>): its arguments are the members' in turn.
    /// </summary>
    public static FusedOp ReduceThenMaps(List<FusedOp> members) =>
        new(members.Sum(m => m.Calls), members.SelectMany(m => m.Args).ToArray()) { Members = members };

    /// <summary>The reductions with their maps of a batch of them (<see cref="ReduceThenMaps"/>), or null.</summary>
    public List<FusedOp>? Members { get; private init; }

    /// <summary>The tree that reads the reduction back, in a reduction with its map (<see cref="ReduceThenMap"/>), or null.</summary>
    public ElementwiseExpression? MapExpression { get; private init; }

    /// <summary>The shape of each of the map's inputs, with <see cref="MapExpression"/>.</summary>
    public int[][] MapInputShapes { get; private init; } = [];

    /// <summary>The second tree of a pair of sibling reductions, or null.</summary>
    public ElementwiseExpression? SecondExpression { get; private init; }

    /// <summary>The buffers the launch writes: its output, or a reduction's stored values (when stored) and result(s).</summary>
    public IEnumerable<object> Written
    {
        get
        {
            if (Members != null) return Members.SelectMany(m => m.Written);
            if (MapExpression != null) return [Args[InputShapes!.Length]!, Args[^1]!];
            if (SecondExpression != null) return Args[^4..].Where(a => a != null).Select(a => a!);
            if (Reduction != null) return Args[^2..].Where(a => a != null).Select(a => a!);
            return Head != null ? [Args[4]!] : [Args[^1]!];
        }
    }

    /// <summary>The reduction of a tree with its reduction, or null.</summary>
    public ReduceOp? Reduction { get; private init; }

    /// <summary>The shape the tree is evaluated over and the reduction reduces, with <see cref="Reduction"/>.</summary>
    public int[] ReduceShape { get; private init; } = [];

    /// <summary>The reduced axes, with <see cref="Reduction"/>.</summary>
    public int[] ReduceAxes { get; private init; } = [];

    /// <summary>The shape a tree with broadcasting inputs is evaluated over (its reduction's shape for a tree with its reduction), or null.</summary>
    public int[]? TreeShape { get; private init; }

    /// <summary>The shape of each input of a tree with broadcasting inputs, or null when every input is of the tree's element count or one element.</summary>
    public int[][]? InputShapes { get; private init; }

    /// <summary>The binary op of a binary chain, or null.</summary>
    public BinaryOp? Head { get; private init; }

    /// <summary>The tree of a tree group, or null.</summary>
    public ElementwiseExpression? Expression { get; private init; }

    /// <summary>The unary chain's steps, or the binary chain's tail.</summary>
    public List<UnaryStep> Steps { get; private init; } = [];

    /// <summary>Steps applied to operand a (b) as it is read, in a binary chain.</summary>
    public List<UnaryStep> ASteps { get; private init; } = [];

    /// <inheritdoc cref="ASteps"/>
    public List<UnaryStep> BSteps { get; private init; } = [];

    /// <summary>Kernel calls the group replaces.</summary>
    public int Calls { get; }

    /// <summary>
    /// (x, y) for a unary chain, (a, aShape, b, bShape, y, yShape) for a binary chain, (inputs..., y) for a tree,
    /// (inputs..., y or null, r) for a tree with its reduction, (inputs..., y0 or null, y1 or null, r0, r1) for a pair,
    /// (inputs..., r, map inputs..., y) for a reduction with its map, the members' in turn for a batch of those.
    /// </summary>
    public object?[] Args { get; }

    public override string Name
    {
        get
        {
            if (Members != null) return $"Fused batch of {Members.Count}: " + string.Join("; ", Members.Select(m => m.Name));
            if (Expression is { } reducedTree && MapExpression is { } mapTree)
                return $"Fused[{reducedTree}] + Reduce({Reduction}, axes [{string.Join(", ", ReduceAxes)}]) then [{mapTree}]";
            if (Expression is { } first && SecondExpression is { } second)
                return $"Fused pair[{first}; {second}] + Reduce({Reduction}, axes [{string.Join(", ", ReduceAxes)}])";
            if (Expression is { } tree)
                return "Fused[" + tree + "]" + (Reduction is { } op ? $" + Reduce({op}, axes [{string.Join(", ", ReduceAxes)}])" : "");
            if (Head is not { } head) return "Fused[" + string.Join(" -> ", Steps) + "]";
            string Operand(string name, List<UnaryStep> steps) => steps.Count == 0 ? "" : $" {name}={string.Join(" -> ", steps)}";
            return "Fused[Binary " + head + Operand("a", ASteps) + Operand("b", BSteps) + string.Concat(Steps.Select(s => " -> " + s)) + "]";
        }
    }

    /// <summary>
    /// A binary chain as the tree of the same ops in the same order (the same bits): its inputs (a, and b unless b is
    /// a read as a again) with the shapes they are read as.
    /// </summary>
    public (ElementwiseExpression Tree, object[] Inputs, int[][] Shapes) ChainTree()
    {
        var (a, b) = (Args[0]!, Args[2]!);
        var (aShape, bShape) = ((int[])Args[1]!, (int[])Args[3]!);
        bool same = ReferenceEquals(a, b) && aShape.SequenceEqual(bShape);
        var tree = Chain(Steps, new ElementwiseExpression.Binary(Head!.Value, Chain(ASteps, new ElementwiseExpression.Input(0)),
            Chain(BSteps, new ElementwiseExpression.Input(same ? 0 : 1))));
        return (tree, same ? [a] : [a, b], same ? [aShape] : [aShape, bShape]);
    }

    /// <summary><paramref name="steps"/> applied in order to <paramref name="x"/>, as a tree.</summary>
    public static ElementwiseExpression Chain(IEnumerable<UnaryStep> steps, ElementwiseExpression x) =>
        steps.Aggregate(x, (inner, step) => new ElementwiseExpression.Unary(step, inner));

    /// <summary>A reduction with its map's call, with <paramref name="args"/> (its <see cref="Args"/>, rebound).</summary>
    private ReduceThenMapCall ReduceThenMapCall(object?[] args)
    {
        int count = InputShapes!.Length;
        var inputs = args[..count].Select(a => (DeviceBuffer<float>)a!).ToArray();
        var mapInputs = args[(count + 1)..^1].Select(a => (DeviceBuffer<float>)a!).ToArray();
        return new ReduceThenMapCall(Expression!, inputs, InputShapes, ReduceShape, Reduction!.Value, ReduceAxes, (DeviceBuffer<float>)args[count]!, MapExpression!,
            mapInputs, MapInputShapes, (DeviceBuffer<float>)args[^1]!);
    }

    /// <summary>Runs the group with <paramref name="args"/> (this group's <see cref="Args"/>, rebound) as one launch.</summary>
    public void Run(IFusedElementwiseKernels kernels, object?[] args)
    {
        if (Members != null)
        {
            var calls = new List<ReduceThenMapCall>(Members.Count);
            int at = 0;
            foreach (var member in Members)
            {
                calls.Add(member.ReduceThenMapCall(args[at..(at + member.Args.Length)]));
                at += member.Args.Length;
            }
            kernels.ElementwiseTreeReduceThenMaps(calls);
        }
        else if (MapExpression != null)
        {
            var c = ReduceThenMapCall(args);
            kernels.ElementwiseTreeReduceThenMap(c.Reduced, c.Inputs, c.InputShapes, c.Shape, c.Op, c.Axes, c.R, c.Map, c.MapInputs, c.MapInputShapes, c.Y);
        }
        else if (Expression is { } first && SecondExpression is { } second)
        {
            var inputs = args[..^4].Select(a => (DeviceBuffer<float>)a!).ToArray();
            kernels.ElementwiseTreeReducePair(first, second, inputs, InputShapes!, ReduceShape, (DeviceBuffer<float>?)args[^4], (DeviceBuffer<float>?)args[^3],
                Reduction!.Value, ReduceAxes, (DeviceBuffer<float>)args[^2]!, (DeviceBuffer<float>)args[^1]!);
        }
        else if (Expression is { } reduced && Reduction is { } op)
        {
            var inputs = args[..^2].Select(a => (DeviceBuffer<float>)a!).ToArray();
            if (InputShapes is { } shapes)
                kernels.ElementwiseTreeReduce(reduced, inputs, shapes, ReduceShape, (DeviceBuffer<float>?)args[^2], op, ReduceAxes, (DeviceBuffer<float>)args[^1]!);
            else kernels.ElementwiseTreeReduce(reduced, inputs, ReduceShape, (DeviceBuffer<float>?)args[^2], op, ReduceAxes, (DeviceBuffer<float>)args[^1]!);
        }
        else if (Expression is { } tree)
        {
            var inputs = args[..^1].Select(a => (DeviceBuffer<float>)a!).ToArray();
            if (InputShapes is { } shapes) kernels.ElementwiseTree(tree, inputs, shapes, (DeviceBuffer<float>)args[^1]!, TreeShape!);
            else kernels.ElementwiseTree(tree, inputs, (DeviceBuffer<float>)args[^1]!);
        }
        else if (Head is { } head)
            kernels.BinaryChain(ASteps, head, BSteps, Steps, (DeviceBuffer<float>)args[0]!, (int[])args[1]!, (DeviceBuffer<float>)args[2]!, (int[])args[3]!,
                (DeviceBuffer<float>)args[4]!, (int[])args[5]!);
        else
            kernels.UnaryChain(Steps, (DeviceBuffer<float>)args[0]!, (DeviceBuffer<float>)args[1]!);
    }
}

/// <summary>
/// The fusion pass. Elementwise calls are <see cref="IKernelSet.Unary"/> and <see cref="IKernelSet.Affine"/> calls
/// (unary steps), <see cref="IKernelSet.Binary"/> calls and <see cref="IKernelSet.BroadcastTo"/> calls, each over whole
/// buffers. An operand of a binary call is <i>full</i> when it has the result's element count, a <i>scalar</i> when it
/// has one element, else <i>broadcast</i> (NumPy's rules: never larger than the result); a binary call with a
/// broadcast operand is <i>broadcasting</i>. A BroadcastTo call computes nothing: its group is one leaf that reads its
/// input through broadcasting. A value is what one call writes into a buffer; it is <i>private</i> when exactly one
/// operand of one later call reads it and nothing reads it after the traced call: the buffer is a temporary, or a later
/// call writes it again (a call that writes its input in place starts a new value of the buffer, so an in-place step's
/// result can be private even in the output buffer).
/// <para>
/// A group is a tree whose every value has the group's element count; its leaves read buffers that are full, scalars,
/// or broadcast to the group's shape (each broadcast leaf with its own shape). The group's shape is known once it holds
/// a broadcast leaf (the shape of the result of the call that reads it), else only its element count. Two shapes
/// <i>agree</i> when they are equal once leading 1s are dropped (broadcasting aligns to the right, so a leaf that
/// broadcasts to one broadcasts to the other).
/// </para>
/// <para>
/// Rule, over the calls in program order: a unary step or binary call C <i>absorbs</i> the group G that wrote one of
/// its full operands, as that operand's subtree, when the operand's value is private, G's values have C's element
/// count, G's shape agrees with C's group's (where both are known), the group then reads at most
/// <see cref="ElementwiseExpression.MaxInputs"/> distinct inputs (a buffer with the shape it is read as; operand a is
/// decided before b, counting b as an input), and no call between G's first call and C other than G's own writes a
/// buffer that one of G's calls before it reads or touches a buffer one of them writes (G's calls move to C's place).
/// A scalar or broadcast operand stays a leaf: a tree never evaluates a subtree at a smaller shape (nor reads one
/// larger than its root). A BroadcastTo absorbs nothing. Every call starts a group of its own; a group is its last
/// call (its root) with everything it absorbed. A group of two or more calls is one launch: a unary chain or a binary
/// chain (at most one binary op, no BroadcastTo) through the chain kernels, else an expression tree
/// (<see cref="IFusedElementwiseKernels.ElementwiseTree"/>, an input read by several leaves is loaded once; given the
/// group's shape and each input's when a leaf broadcasts); its intermediates disappear from the memory plan. GEMMs,
/// reductions, copies and capability calls are never absorbed into an elementwise group. GELU's backward (x·pdf(x) +
/// cdf(x), times the incoming gradient) is one tree; so are the loss backward's in-place (p - onehot) · scale, the
/// FNO's spectral weights a·p + b·q (p and q broadcast) and an SPN's x - exp(y)·w (w broadcast).
/// </para>
/// <para>
/// Reduction epilogues: a <see cref="IKernelSet.Reduce"/> call R with Sum or Mean absorbs the group G (one call or
/// more, a lone BroadcastTo included) that wrote its input when R's input buffer holds exactly the element count of R's
/// shape, G's values have that count, G's shape (where known) agrees with R's or R's reduction <i>regroups</i> onto it
/// (both shapes, size-1 dims dropped and reduced or kept neighbours merged, give the same runs: a sum of [20480, 1] over
/// axis 0 is a sum of [20, 1024] over axes 0 and 1, reduced in the same order), R's output is neither read nor written
/// by G, and nothing interferes as above (G's calls move to R's place). G and R become one launch
/// (<see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/>, over R's shape or G's): each value is reduced as it
/// is computed. When the value is private to R it is not stored at all (its buffer leaves the memory plan); when anything
/// else reads it, the launch still stores it. The bias gradient after GELU's backward, a residual gradient's sum before
/// its bias gradient, the loss backward's tree (its broadcast incoming gradient a leaf) before its reduction, and a
/// product with a broadcast operand summed over the broadcast axes each become one launch.
/// </para>
/// <para>
/// Sibling reductions: then each reduction launch (a group with its reduction, or a plain Reduce with Sum or Mean as
/// above), in program order, joins the earliest reduction launch before it that is not yet in a pair when both reduce
/// the same shape over the same axes with the same op (Sum with Sum, Mean with Mean: the paired kernel takes one op,
/// and Max is never a fused reduction), they read at most <see cref="ElementwiseExpression.MaxInputs"/> distinct inputs
/// together (a buffer with the shape it is read as), and the earlier can move to the later's place: no host step lies
/// between them, no launch between touches what the earlier writes (its result, its stored value) or writes what it
/// reads, and the later neither reads nor writes what the earlier writes nor writes what it reads. The two become one
/// launch at the later's place, where all the later's inputs are ready
/// (<see cref="IFusedElementwiseKernels.ElementwiseTreeReducePair"/>): each input element is loaded once for both
/// trees, and each result has the bits of its own launch. A launch holds at most two reductions. The
/// FNO's two spectral-weight gradients of each block (s·p and s·q summed over p's and q's broadcast axes) and the
/// relative-L2 loss's two sums ((x - y)² and y², both reading y) each become one launch; so do two bias gradients of
/// one shape that read nothing in common (two sums of [batch, width] over the batch). Where the GEMMs take the
/// elementwise trees that read their products (<see cref="GemmTreeFusion"/>), pairing comes after them: a tree the
/// product applies as it stores saves a pass over the product, and the plain sum it leaves behind (a bias gradient
/// beside its activation's gradient) still pairs.
/// </para>
/// </summary>
internal static class Fusion
{
    /// <summary>
    /// <paramref name="ops"/> with every group of the rule replaced by one <see cref="FusedOp"/>, reductions run with the
    /// launch that reads them back (<see cref="ReduceThenMapFusion"/>) and sibling reductions paired.
    /// </summary>
    public static List<TraceOp> Fuse(List<TraceOp> ops, Func<object, bool> isTemporary) =>
        PairSiblings(ReduceThenMapFusion.Run(Fuse(ops, isTemporary, out _), out _), out _);

    /// <summary>
    /// <paramref name="ops"/> with every group of the rule replaced by one <see cref="FusedOp"/>, siblings not yet
    /// paired (<see cref="PairSiblings(List{TraceOp}, out int, long)"/>); <paramref name="reductionEpilogues"/>: the reductions that absorbed the
    /// group before them.
    /// </summary>
    public static List<TraceOp> Fuse(List<TraceOp> ops, Func<object, bool> isTemporary, out int reductionEpilogues)
    {
        var flow = new ValueFlow(ops);
        var groups = new Group?[ops.Count];
        var absorbed = new bool[ops.Count];
        var reductions = new Dictionary<int, (Group Group, bool Store, int[] Shape, int[] Axes)>();
        for (int c = 0; c < ops.Count; c++)
        {
            if (ops[c] is KernelCallOp reduce && IsFusableReduce(reduce))
            {
                var x = reduce.Args[1]!;
                int writer = flow.Writer(c, 0);
                if (writer < 0 || groups[writer] is not { } child || absorbed[writer]) continue;
                if (child.Count != ((DeviceBuffer<float>)x).Length || !ReferenceEquals(child.Output, x)) continue;
                var (shape, axes) = ((int[])reduce.Args[2]!, (int[])reduce.Args[3]!);
                if (child.Shape != null && !child.Shape.SequenceEqual(shape))
                {
                    // Over the group's own shape: its leaves broadcast to it (a shape that merely agrees may be of lower rank).
                    if (Regroup(shape, axes, child.Shape!) is not { } regrouped) continue;
                    (shape, axes) = (child.Shape!, regrouped);
                }
                var r = reduce.Args[4]!;
                if (child.Inputs.Contains(r) || child.Written.Contains(r) || Interferes(ops, child, c)) continue;
                reductions[c] = (child, !flow.IsPrivate(x, writer, isTemporary(x)), shape, axes);
                absorbed[writer] = true;
                continue;
            }
            if (ops[c] is not KernelCallOp call || Group.Start(c, call) is not { } group) continue;
            for (int slot = 0; slot < group.Operands; slot++)
            {
                var buffer = group.OperandBuffer(slot);
                int writer = flow.Writer(c, slot);
                if (writer < 0 || groups[writer] is not { } child || absorbed[writer]) continue;
                if (!flow.IsPrivate(buffer, writer, isTemporary(buffer))) continue;
                if (!group.CanAbsorb(slot, child) || Interferes(ops, child, c)) continue;
                group.Absorb(slot, child);
                absorbed[writer] = true;
            }
            groups[c] = group;
        }
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            if (absorbed[i]) continue;
            if (reductions.TryGetValue(i, out var epilogue)) result.Add(epilogue.Group.ToTreeReduce((KernelCallOp)ops[i], epilogue.Store, epilogue.Shape, epilogue.Axes));
            else result.Add(groups[i] is { Members.Count: > 1 } group ? group.ToOp() : ops[i]);
        }
        reductionEpilogues = reductions.Count;
        return result;
    }

    /// <summary>
    /// <paramref name="ops"/> (a fused program) with sibling reductions paired: each reduction launch, in order, joins
    /// the earliest unpaired reduction launch before it that <see cref="Merge"/> accepts, that can move to its place
    /// (<see cref="BlocksMove"/>), and whose inputs see at most <paramref name="reach"/> bytes of other launches' buffers
    /// pass before that place (<see cref="StreamedPast"/>; the set's
    /// <see cref="IFusedElementwiseKernels.SiblingPairReach"/>). <paramref name="paired"/>: the reductions paired, two
    /// per launch.
    /// </summary>
    public static List<TraceOp> PairSiblings(List<TraceOp> ops, out int paired, long reach = long.MaxValue) =>
        PairSiblings(ops, out paired, reach, out _);

    /// <summary>
    /// <see cref="PairSiblings(List{TraceOp}, out int, long)"/>, and <paramref name="leftApart"/>: the reduction
    /// launches that found no partner only because every one the rule accepts lay beyond the reach.
    /// </summary>
    public static List<TraceOp> PairSiblings(List<TraceOp> ops, out int paired, long reach, out int leftApart)
    {
        var units = ops.Select(ReductionLaunch.Of).ToArray();
        var merged = new FusedOp?[ops.Count];
        var joined = new bool[ops.Count];
        var beyondReach = new bool[ops.Count];
        paired = 0;
        for (int later = 0; later < ops.Count; later++)
        {
            if (units[later] is not { } second) continue;
            for (int earlier = 0; earlier < later; earlier++)
            {
                if (units[earlier] is not { } first || joined[earlier] || merged[earlier] != null) continue;
                if (Merge(first, second) is not { } pair || BlocksMove(ops, earlier, later, first, second)) continue;
                if (StreamedPast(ops, earlier, later, first) > reach)
                {
                    beyondReach[later] = true;
                    continue;
                }
                merged[later] = pair;
                joined[earlier] = true;
                paired += 2;
                break;
            }
        }
        // Counted once every pair is chosen: a launch refused as the later of a pair may still be the earlier of one.
        leftApart = Enumerable.Range(0, ops.Count).Count(i => beyondReach[i] && merged[i] == null && !joined[i]);
        if (paired == 0) return ops;
        var result = new List<TraceOp>(ops.Count - paired / 2);
        for (int i = 0; i < ops.Count; i++)
            if (!joined[i]) result.Add(merged[i] ?? ops[i]);
        return result;
    }

    /// <summary>
    /// Bytes the launches between <paramref name="earlier"/> and <paramref name="later"/> touch (each buffer once) after
    /// the last of them that touches one of <paramref name="first"/>'s inputs: what streams through the caches between
    /// the inputs' last use and their read at the later place.
    /// </summary>
    private static long StreamedPast(List<TraceOp> ops, int earlier, int later, ReductionLaunch first)
    {
        var inputs = first.Inputs.ToHashSet(ReferenceEqualityComparer.Instance);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        long bytes = 0;
        for (int i = later - 1; i > earlier && !ops[i].Buffers.Any(inputs.Contains); i--)
            foreach (var b in ops[i].Buffers)
                if (seen.Add(b)) bytes += TraceBuffers.Bytes(b);
        return bytes;
    }

    /// <summary>
    /// The pair of <paramref name="first"/> and <paramref name="second"/> as one launch, or null unless both reduce the
    /// same shape over the same axes with the same op and read at most
    /// <see cref="ElementwiseExpression.MaxInputs"/> distinct inputs together (a buffer with the shape it is read as).
    /// </summary>
    private static FusedOp? Merge(ReductionLaunch first, ReductionLaunch second)
    {
        if (first.Op != second.Op || !first.Shape.SequenceEqual(second.Shape) || !first.Axes.SequenceEqual(second.Axes)) return null;
        var inputs = first.Inputs.ToList();
        var shapes = first.Shapes.ToList();
        var map = new int[second.Inputs.Count];
        for (int k = 0; k < map.Length; k++)
        {
            int at = Enumerable.Range(0, inputs.Count).FirstOrDefault(i => ReferenceEquals(inputs[i], second.Inputs[k]) && shapes[i].SequenceEqual(second.Shapes[k]), -1);
            if (at < 0)
            {
                at = inputs.Count;
                inputs.Add(second.Inputs[k]);
                shapes.Add(second.Shapes[k]);
            }
            map[k] = at;
        }
        if (inputs.Count > ElementwiseExpression.MaxInputs) return null;
        return FusedOp.TreeReducePair(first.Calls + second.Calls, first.Tree, Renumber(second.Tree, map), inputs, [.. shapes], first.Y, second.Y, first.R, second.R,
            first.Op, first.Shape, first.Axes);
    }

    /// <summary><paramref name="tree"/> with input i read as input map[i].</summary>
    private static ElementwiseExpression Renumber(ElementwiseExpression tree, int[] map) => tree switch
    {
        ElementwiseExpression.Input leaf => new ElementwiseExpression.Input(map[leaf.Index]),
        ElementwiseExpression.Unary u => u with { X = Renumber(u.X, map) },
        ElementwiseExpression.Binary b => b with { A = Renumber(b.A, map), B = Renumber(b.B, map) },
        _ => throw new InvalidOperationException("unknown expression node."),
    };

    /// <summary>
    /// True when the launch at <paramref name="earlier"/> (<paramref name="first"/>) cannot move to
    /// <paramref name="later"/>'s place and run with <paramref name="second"/>: a host step lies between, a launch
    /// between touches what the first writes or writes what it reads, or the second reads or writes what the first
    /// writes or writes what the first reads.
    /// </summary>
    private static bool BlocksMove(List<TraceOp> ops, int earlier, int later, ReductionLaunch first, ReductionLaunch second)
    {
        var writes = first.Writes.ToHashSet(ReferenceEqualityComparer.Instance);
        var reads = first.Inputs.ToHashSet(ReferenceEqualityComparer.Instance);
        for (int i = earlier + 1; i < later; i++)
        {
            if (ops[i] is HostStepOp || ops[i].Buffers.Any(writes.Contains)) return true;
            if (TraceBuffers.WrittenByLaunch(ops[i]).Any(reads.Contains)) return true;
        }
        return second.Inputs.Any(writes.Contains) || second.Writes.Any(b => writes.Contains(b) || reads.Contains(b));
    }

    /// <summary>
    /// A reduction launch of the fused program, as a tree over its inputs (input k read as <paramref name="Shapes"/>[k],
    /// broadcast to <paramref name="Shape"/>): a tree with its reduction, or a plain Sum or Mean (the tree x0).
    /// </summary>
    internal sealed record ReductionLaunch(int Calls, ElementwiseExpression Tree, List<object> Inputs, int[][] Shapes, object? Y, object R, ReduceOp Op, int[] Shape,
        int[] Axes)
    {
        /// <summary>The buffers the launch writes: the stored values (when stored) and the result.</summary>
        public IEnumerable<object> Writes => Y == null ? [R] : [Y, R];

        /// <summary>The reduction launch <paramref name="op"/> is, or null.</summary>
        public static ReductionLaunch? Of(TraceOp op)
        {
            if (op is KernelCallOp call && IsFusableReduce(call))
            {
                var shape = (int[])call.Args[2]!;
                return new ReductionLaunch(1, new ElementwiseExpression.Input(0), [call.Args[1]!], [shape], null, call.Args[4]!, (ReduceOp)call.Args[0]!, shape,
                    (int[])call.Args[3]!);
            }
            if (op is not FusedOp { Expression: { } tree, Reduction: { } reduction, SecondExpression: null, MapExpression: null } group) return null;
            var inputs = group.Args[..^2].Select(a => a!).ToList();
            long count = Count(group.ReduceShape);
            var shapes = group.InputShapes ?? inputs.Select(b => ((DeviceBuffer<float>)b).Length == count ? group.ReduceShape : []).ToArray();
            return new ReductionLaunch(group.Calls, tree, inputs, shapes, group.Args[^2], group.Args[^1]!, reduction, group.ReduceShape, group.ReduceAxes);
        }
    }

    /// <summary>
    /// True for a Reduce call with Sum or Mean whose input buffer holds exactly its shape's elements and whose output
    /// exactly the kept dims' (axes sorted and in range, as the fused kernel takes them).
    /// </summary>
    private static bool IsFusableReduce(KernelCallOp call)
    {
        if (!call.IsCore(nameof(IKernelSet.Reduce)) || call.Args[0] is not (ReduceOp.Sum or ReduceOp.Mean)) return false;
        if (call.Args[1] is not DeviceBuffer<float> x || call.Args[2] is not int[] shape || call.Args[3] is not int[] axes || call.Args[4] is not DeviceBuffer<float> r)
            return false;
        long kept = 1;
        for (int d = 0, a = 0; d < shape.Length; d++)
        {
            if (a < axes.Length && axes[a] == d) a++;
            else kept *= shape[d];
        }
        bool sorted = axes.Select((axis, i) => i == 0 ? axis >= 0 : axis > axes[i - 1]).All(ok => ok) && axes.All(axis => axis < shape.Length);
        return sorted && x.Length == Count(shape) && r.Length == kept;
    }

    /// <summary>
    /// True when moving <paramref name="child"/>'s calls to <paramref name="root"/>'s place could change what anything
    /// reads: a call in between writes a buffer that one of the group's calls before it reads, or touches a buffer
    /// one of them writes. (The group's calls after it stay after it.)
    /// </summary>
    private static bool Interferes(List<TraceOp> ops, Group child, int root)
    {
        var members = child.Members.ToHashSet();
        var read = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var written = new HashSet<object>(ReferenceEqualityComparer.Instance);
        for (int i = child.Members.Min(); i < root; i++)
        {
            var op = ops[i];
            if (members.Contains(i))
            {
                var effects = OpEffects.Of(op)!.Value;
                read.UnionWith(effects.Reads);
                written.Add(effects.Writes);
                continue;
            }
            if (op.Buffers.Any(written.Contains)) return true;
            if (TraceBuffers.Writes(op).Any(read.Contains)) return true;
        }
        return false;
    }

    private static bool IsUnaryStep(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Unary)) || op.IsCore(nameof(IKernelSet.Affine));

    /// <summary>The step a unary or affine call applies.</summary>
    public static UnaryStep StepOf(KernelCallOp op) =>
        op.IsCore(nameof(IKernelSet.Affine)) ? UnaryStep.Affine((float)op.Args[2]!, (float)op.Args[3]!) : (UnaryStep)(UnaryOp)op.Args[0]!;

    /// <summary>The buffer a unary step reads.</summary>
    public static object InputOf(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Affine)) ? op.Args[0]! : op.Args[1]!;

    /// <summary>The buffer a unary step writes.</summary>
    public static object OutputOf(KernelCallOp op) => op.IsCore(nameof(IKernelSet.Affine)) ? op.Args[1]! : op.Args[2]!;

    /// <summary>
    /// The axes of <paramref name="over"/> (of the same element count as <paramref name="shape"/>) that reduce as
    /// <paramref name="axes"/> of <paramref name="shape"/> do: both collapse (size-1 dims dropped, reduced or kept
    /// neighbours merged) to the same runs, so each kernel set walks them in the same order. Null when a dim of
    /// <paramref name="over"/> straddles two runs, or a shape is empty.
    /// </summary>
    private static int[]? Regroup(int[] shape, int[] axes, int[] over)
    {
        if (shape.Contains(0) || over.Contains(0)) return null;
        var runs = new List<(long Extent, bool Reduced)>();
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1) continue;
            bool reduced = axes.Contains(d);
            if (runs.Count > 0 && runs[^1].Reduced == reduced) runs[^1] = (runs[^1].Extent * shape[d], reduced);
            else runs.Add((shape[d], reduced));
        }
        var result = new List<int>();
        int run = 0;
        long covered = 1;
        for (int d = 0; d < over.Length; d++)
        {
            if (over[d] == 1) continue;
            if (run == runs.Count) return null;
            covered *= over[d];
            if (runs[run].Extent % covered != 0) return null;
            if (runs[run].Reduced) result.Add(d);
            if (covered == runs[run].Extent)
            {
                run++;
                covered = 1;
            }
        }
        return run == runs.Count ? [.. result] : null;
    }

    /// <summary>True when both shapes are known and equal once leading 1s are dropped, or either is unknown.</summary>
    internal static bool Agree(int[]? a, int[]? b) => a == null || b == null || a.SkipWhile(d => d == 1).SequenceEqual(b.SkipWhile(d => d == 1));

    private static long Count(int[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    /// <summary>
    /// Which call wrote the value each operand of an elementwise call reads, and how many operands read each value.
    /// A call whose effects are not known exactly reads and writes every buffer it touches.
    /// </summary>
    private sealed class ValueFlow
    {
        private readonly Dictionary<int, int[]> writers = new();
        private readonly Dictionary<object, Dictionary<int, int>> readers = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<(object Buffer, int Writer)> overwritten = new(new ValueComparer());

        public ValueFlow(List<TraceOp> ops)
        {
            var last = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
            void Read(object b)
            {
                int w = last.GetValueOrDefault(b, -1);
                if (!readers.TryGetValue(b, out var byWriter)) readers[b] = byWriter = new Dictionary<int, int>();
                byWriter[w] = byWriter.GetValueOrDefault(w) + 1;
            }
            void Write(object b, int i)
            {
                if (last.TryGetValue(b, out int previous)) overwritten.Add((b, previous));
                last[b] = i;
            }
            for (int i = 0; i < ops.Count; i++)
            {
                var op = ops[i];
                if (op is KernelCallOp call && Group.OperandsOf(call) is { } operands)
                {
                    writers[i] = operands.Select(b => last.GetValueOrDefault(b, -1)).ToArray();
                    foreach (var b in operands) Read(b);
                    Write(OpEffects.Of(call)!.Value.Writes, i);
                    continue;
                }
                if (op is KernelCallOp reduce && IsFusableReduce(reduce)) writers[i] = [last.GetValueOrDefault(reduce.Args[1]!, -1)];
                var effects = OpEffects.Of(op);
                var reads = effects is { } e ? e.Reads : op.Buffers.Distinct(ReferenceEqualityComparer.Instance).ToArray()!;
                foreach (var b in reads) Read(b!);
                foreach (var b in TraceBuffers.Writes(op)) Write(b, i);
            }
        }

        /// <summary>The call that wrote the value operand <paramref name="slot"/> of call <paramref name="call"/> (elementwise, or a fusable reduction's input) reads, or -1.</summary>
        public int Writer(int call, int slot) => writers[call][slot];

        /// <summary>
        /// True when exactly one operand of one call reads the value <paramref name="writer"/> wrote into
        /// <paramref name="buffer"/>, and nothing reads it after the traced call: the buffer is a temporary, or a later
        /// call writes it again.
        /// </summary>
        public bool IsPrivate(object buffer, int writer, bool temporary) =>
            readers.TryGetValue(buffer, out var byWriter) && byWriter.GetValueOrDefault(writer) == 1 && (temporary || overwritten.Contains((buffer, writer)));

        private sealed class ValueComparer : IEqualityComparer<(object Buffer, int Writer)>
        {
            public bool Equals((object Buffer, int Writer) x, (object Buffer, int Writer) y) => ReferenceEquals(x.Buffer, y.Buffer) && x.Writer == y.Writer;

            public int GetHashCode((object Buffer, int Writer) v) => HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(v.Buffer), v.Writer);
        }
    }

    /// <summary>A node of a group's tree: a buffer read, a unary step, or a binary call's op.</summary>
    private abstract record Node;

    /// <summary>A buffer read: full or a scalar (<paramref name="Shape"/> null), or broadcast from <paramref name="Shape"/> to the group's shape.</summary>
    private sealed record Leaf(object Buffer, int[]? Shape) : Node;

    private sealed record Step(UnaryStep Op, Node X) : Node;

    private sealed record Combine(KernelCallOp Call, Node A, Node B) : Node;

    /// <summary>A group being formed: its root call, the tree it computes, its calls and what they read and write.</summary>
    private sealed class Group
    {
        private Node tree;
        private readonly KernelCallOp root;

        private Group(int index, KernelCallOp root, Node tree, long count, int[]? shape)
        {
            this.root = root;
            this.tree = tree;
            Count = count;
            Shape = shape;
            HasBroadcastTo = IsBroadcastTo(root);
            Members = [index];
            Written.Add(Output);
        }

        /// <summary>The calls, by index in the program.</summary>
        public List<int> Members { get; }

        /// <summary>Elements of every value the group computes.</summary>
        public long Count { get; }

        /// <summary>The shape of the group's values once a broadcast leaf fixes it (its leaves' shapes broadcast to it), else null.</summary>
        public int[]? Shape { get; private set; }

        /// <summary>The buffer the root writes.</summary>
        public object Output => OpEffects.Of(root)!.Value.Writes;

        /// <summary>Operands of the root call (1 or 2).</summary>
        public int Operands => root.IsCore(nameof(IKernelSet.Binary)) ? 2 : 1;

        /// <summary>True when one of the group's calls is a BroadcastTo (its leaf may be a scalar or broadcast under a unary step).</summary>
        private bool HasBroadcastTo { get; set; }

        /// <summary>The buffers the group reads.</summary>
        public HashSet<object> Inputs => Leaves(tree).Select(l => l.Buffer).ToHashSet(ReferenceEqualityComparer.Instance);

        /// <summary>The buffers the group's calls write, its output included.</summary>
        public HashSet<object> Written { get; } = new(ReferenceEqualityComparer.Instance);

        /// <summary>The buffer operand <paramref name="slot"/> of the root reads.</summary>
        public object OperandBuffer(int slot) => OperandsOf(root)![slot];

        private static bool IsBroadcastTo(KernelCallOp call) => call.IsCore(nameof(IKernelSet.BroadcastTo));

        /// <summary>The operand buffers of an elementwise call over whole buffers (1 or 2), or null for any other call.</summary>
        public static object[]? OperandsOf(KernelCallOp call)
        {
            if (IsUnaryStep(call))
            {
                var (x, y) = (InputOf(call), OutputOf(call));
                return x is DeviceBuffer<float> xb && y is DeviceBuffer<float> yb && xb.Length == yb.Length ? [x] : null;
            }
            if (IsBroadcastTo(call))
            {
                bool wholeCopy = call.Args[0] is DeviceBuffer<float> x && x.Length == Count((int[])call.Args[1]!)
                                 && call.Args[2] is DeviceBuffer<float> y && y.Length == Count((int[])call.Args[3]!) && x.Length <= y.Length;
                return wholeCopy ? [call.Args[0]!] : null;
            }
            if (!call.IsCore(nameof(IKernelSet.Binary))) return null;
            long n = Count((int[])call.Args[6]!);
            bool whole = call.Args[1] is DeviceBuffer<float> a && a.Length == Count((int[])call.Args[2]!) && a.Length <= n
                         && call.Args[3] is DeviceBuffer<float> b && b.Length == Count((int[])call.Args[4]!) && b.Length <= n
                         && call.Args[5] is DeviceBuffer<float> y2 && y2.Length == n;
            return whole ? [call.Args[1]!, call.Args[3]!] : null;
        }

        /// <summary>The one-call group of <paramref name="call"/>, or null when it is not an elementwise call over whole buffers.</summary>
        public static Group? Start(int index, KernelCallOp call)
        {
            if (OperandsOf(call) is not { } operands) return null;
            if (IsUnaryStep(call))
                return new Group(index, call, new Step(StepOf(call), new Leaf(operands[0], null)), ((DeviceBuffer<float>)operands[0]).Length, null);
            var (shapes, yShape) = IsBroadcastTo(call)
                ? (new[] { (int[])call.Args[1]! }, (int[])call.Args[3]!)
                : (new[] { (int[])call.Args[2]!, (int[])call.Args[4]! }, (int[])call.Args[6]!);
            long n = Count(yShape);
            var leaves = operands.Select((o, k) => ((DeviceBuffer<float>)o).Length is var m && m != n && m != 1 ? new Leaf(o, shapes[k]) : new Leaf(o, null)).ToArray();
            var shape = leaves.Any(l => l.Shape != null) ? yShape : null;
            Node node = IsBroadcastTo(call) ? leaves[0] : new Combine(call, leaves[0], leaves[1]);
            return new Group(index, call, node, n, shape);
        }

        /// <summary>True when the rule lets the root absorb <paramref name="child"/> as operand <paramref name="slot"/> (interference aside).</summary>
        public bool CanAbsorb(int slot, Group child)
        {
            if (IsBroadcastTo(root) || child.Count != Count || !Agree(Shape, child.Shape)) return false;
            return DistinctInputs(WithOperand(slot, child.tree)).Count <= ElementwiseExpression.MaxInputs;
        }

        /// <summary>Takes <paramref name="child"/> in as operand <paramref name="slot"/>.</summary>
        public void Absorb(int slot, Group child)
        {
            tree = WithOperand(slot, child.tree);
            Members.AddRange(child.Members);
            Written.UnionWith(child.Written);
            // Of two agreeing shapes the one of higher rank: every leaf broadcasts to it.
            if (Shape == null || (child.Shape != null && child.Shape.Length > Shape.Length)) Shape = child.Shape;
            HasBroadcastTo |= child.HasBroadcastTo;
        }

        private Node WithOperand(int slot, Node operand)
        {
            // The root's own node is the top of the tree until something absorbs the group.
            return tree switch
            {
                Step s => s with { X = operand },
                Combine c when slot == 0 => c with { A = operand },
                Combine c => c with { B = operand },
                _ => throw new InvalidOperationException("a group's tree is rooted at its call."),
            };
        }

        private static IEnumerable<Leaf> Leaves(Node node) => node switch
        {
            Leaf l => [l],
            Step s => Leaves(s.X),
            Combine c => Leaves(c.A).Concat(Leaves(c.B)),
            _ => [],
        };

        /// <summary>The distinct inputs a tree reads, in leaf order: a buffer with the shape it is read as (null: full or a scalar).</summary>
        private static List<Leaf> DistinctInputs(Node node)
        {
            var inputs = new List<Leaf>();
            foreach (var leaf in Leaves(node))
                if (!inputs.Any(l => ReferenceEquals(l.Buffer, leaf.Buffer) && SameShape(l.Shape, leaf.Shape))) inputs.Add(leaf);
            return inputs;
        }

        private static bool SameShape(int[]? a, int[]? b) => a == null ? b == null : b != null && a.SequenceEqual(b);

        private static int Binaries(Node node) => node switch
        {
            Step s => Binaries(s.X),
            Combine c => 1 + Binaries(c.A) + Binaries(c.B),
            _ => 0,
        };

        /// <summary>Steps from a leaf outward to <paramref name="node"/>, and the leaf; null when a binary op lies between.</summary>
        private static (List<UnaryStep> Steps, object Buffer)? Chain(Node node)
        {
            var steps = new List<UnaryStep>();
            while (node is Step s)
            {
                steps.Add(s.Op);
                node = s.X;
            }
            steps.Reverse();
            return node is Leaf leaf ? (steps, leaf.Buffer) : null;
        }

        /// <summary>The group as one launch: a unary chain, a binary chain, or a tree.</summary>
        public FusedOp ToOp()
        {
            // A BroadcastTo's leaf may be a scalar or broadcast where a chain kernel expects a full operand: trees only.
            if (!HasBroadcastTo && Chain(tree) is { } unary) return FusedOp.UnaryChain(Members.Count, unary.Steps, unary.Buffer, Output);
            if (!HasBroadcastTo && Binaries(tree) == 1)
            {
                var tail = new List<UnaryStep>();
                var node = tree;
                while (node is Step s)
                {
                    tail.Add(s.Op);
                    node = s.X;
                }
                tail.Reverse();
                var head = (Combine)node;
                var (a, b) = (Chain(head.A)!.Value, Chain(head.B)!.Value);
                return FusedOp.BinaryChain(Members.Count, head.Call, a.Steps, a.Buffer, b.Steps, b.Buffer, tail, Output);
            }
            var (expression, inputs, shapes) = Expression(Shape);
            return FusedOp.Tree(Members.Count, expression, inputs, Output, shapes == null ? null : Shape, shapes);
        }

        /// <summary>
        /// The group and <paramref name="reduce"/> (the Reduce call reading its value) as one launch over
        /// <paramref name="shape"/> (agreeing with the group's) and <paramref name="axes"/>; the value is stored when
        /// <paramref name="store"/>.
        /// </summary>
        public FusedOp ToTreeReduce(KernelCallOp reduce, bool store, int[] shape, int[] axes)
        {
            var (expression, inputs, shapes) = Expression(Shape == null ? null : shape);
            return FusedOp.TreeReduce(Members.Count + 1, expression, inputs, store ? Output : null, reduce, shape, axes, shapes);
        }

        /// <summary>
        /// The group as an expression tree over its distinct inputs (input i is inputs[i]) and, when the group's shape is
        /// known, evaluated over <paramref name="over"/> (a shape agreeing with it), each input's shape: its broadcast
        /// shape, <paramref name="over"/> when full, [] when a scalar.
        /// </summary>
        private (ElementwiseExpression Tree, List<object> Inputs, int[][]? Shapes) Expression(int[]? over)
        {
            var leaves = DistinctInputs(tree);
            ElementwiseExpression Build(Node node) => node switch
            {
                Leaf l => new ElementwiseExpression.Input(leaves.FindIndex(i => ReferenceEquals(i.Buffer, l.Buffer) && SameShape(i.Shape, l.Shape))),
                Step s => new ElementwiseExpression.Unary(s.Op, Build(s.X)),
                Combine c => new ElementwiseExpression.Binary((BinaryOp)c.Call.Args[0]!, Build(c.A), Build(c.B)),
                _ => throw new InvalidOperationException("unknown node."),
            };
            var shapes = over == null ? null : leaves.Select(l => l.Shape ?? (((DeviceBuffer<float>)l.Buffer).Length == Count ? over : [])).ToArray();
            return (Build(tree), leaves.Select(l => l.Buffer).ToList(), shapes);
        }
    }
}
