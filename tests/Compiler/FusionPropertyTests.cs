using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Compilation;

/// <summary>
/// Random elementwise graphs (up to 20 ops: unary ops, broadcasting binary ops, affine maps, sums and means over the
/// first or last axis, sibling reductions of two values computed from one, values reused by later ops) compiled with fusion: the replayed result equals eager bit for bit (each op rounds as its own kernel does), and
/// the launch count equals the number of groups the fusion rule predicts, computed here from the program alone. With
/// rematerialisation on (the default), the bits stay eager's and the launches fall exactly when a value was recomputed.
/// </summary>
public abstract class FusionPropertyTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    private enum Kind { Unary, Binary, Affine, Reduce }

    private sealed record Op(Kind Kind, int A, int B, int Code);

    /// <summary>
    /// Seeds 1 to 20 draw mixed programs; 21 to 36 broadcasting-heavy ones; 37 to 48 ones rich in sibling reductions;
    /// 49 to 64 ones rich in negated reductions and in independent reductions read back (see <see cref="Generate"/>).
    /// </summary>
    public static TheoryData<int> Seeds => new(Enumerable.Range(1, 64));

    [Theory]
    [MemberData(nameof(Seeds))]
    public void FusedGraphsMatchEagerAndLaunchThePredictedGroups(int seed)
    {
        var rng = new System.Random(seed);
        int rows = rng.Next(1, 6), cols = new[] { 1, 3, 7, 16, 33 }[rng.Next(5)];
        var program = Generate(rng, rng.Next(1, 21), broadcasting: seed is > 20 and <= 36, siblings: seed is > 36 and <= 48 ? 0.3 : 0.05,
            readBack: seed > 48 ? 0.25 : 0);
        Tensor Run(Tensor x, Tensor w)
        {
            var values = new List<Tensor> { x, w };
            foreach (var op in program) values.Add(Apply(op, values));
            return values[^1];
        }
        // The rule's own launches, and with values recomputed for their second readers (never more launches).
        using var f = Compiler.Compile<Tensor, Tensor>(Run, new CompileOptions { Recompute = false });
        using var recomputing = Compiler.Compile<Tensor, Tensor>(Run);
        for (int call = 0; call < 5; call++)
        {
            using var x = Tensor.Normal([rows, cols], seed: (ulong)(seed * 10 + call), device: Device);
            using var w = Tensor.Normal([cols], seed: (ulong)(seed * 10 + call + 5), device: Device);
            float[] expected;
            using (new TensorScope()) expected = Run(x, w).ToArray();
            foreach (var compiled in new[] { f, recomputing })
            {
                using var got = compiled.Invoke(x, w);
                var actual = got.ToArray();
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                        $"seed {seed}, call {call}, element {i}: compiled {actual[i]:R}, eager {expected[i]:R}; program {Describe(program)}\n{compiled.Explain()}");
            }
        }
        Assert.Equal((2, 2), (f.Replays, recomputing.Replays));
        var stats = f.LastGraph!;
        int predicted = PredictedGroups(program, rows, cols, out int pairs);
        Assert.True((predicted, 2 * pairs) == (stats.Launches, stats.ReductionsPaired),
            $"seed {seed}: {stats.Launches} launches with {stats.ReductionsPaired} reductions paired, the rule predicts {predicted} with {pairs} pairs; program {Describe(program)}\n{f.Explain()}");
        var recomputed = recomputing.LastGraph!;
        Assert.True(recomputed.Recomputed == 0 ? recomputed.Launches == stats.Launches : recomputed.Launches < stats.Launches,
            $"seed {seed}: {recomputed.Recomputed} repeats, {recomputed.Launches} launches against {stats.Launches} without; program {Describe(program)}\n{recomputing.Explain()}");
        Assert.Equal(0, stats.Recomputed);
    }

    [Fact]
    public void FusionOffLaunchesEveryCall()
    {
        var program = new List<Op> { new(Kind.Binary, 0, 1, 2), new(Kind.Unary, 2, 2, 0), new(Kind.Unary, 3, 3, 1) };
        Tensor Run(Tensor x, Tensor w)
        {
            var values = new List<Tensor> { x, w };
            foreach (var op in program) values.Add(Apply(op, values));
            return values[^1];
        }
        using var fused = Compiler.Compile<Tensor, Tensor>(Run);
        using var plain = Compiler.Compile<Tensor, Tensor>(Run, new CompileOptions { Fuse = false });
        using var x = Tensor.Normal([3, 5], seed: 1, device: Device);
        using var w = Tensor.Normal([5], seed: 2, device: Device);
        for (int i = 0; i < 4; i++)
        {
            fused.Invoke(x, w).Dispose();
            plain.Invoke(x, w).Dispose();
        }
        Assert.Equal(1, fused.LastGraph!.Launches);
        Assert.Equal((1, 3), (fused.LastGraph.FusedGroups, fused.LastGraph.FusedCalls));
        Assert.Equal(3, plain.LastGraph!.Launches);
        Assert.Contains("Fused[Binary Mul -> Tanh -> Sigmoid]", fused.Explain());
    }

    private static readonly UnaryOp[] Unaries = [UnaryOp.Tanh, UnaryOp.Sigmoid, UnaryOp.Neg, UnaryOp.Relu, UnaryOp.Abs, UnaryOp.Erf, UnaryOp.Square, UnaryOp.Step, UnaryOp.GeluErf];

    private static Tensor Apply(Op op, List<Tensor> values) => op.Kind switch
    {
        Kind.Unary => Unaries[op.Code] switch
        {
            UnaryOp.Tanh => values[op.A].Tanh(),
            UnaryOp.Sigmoid => values[op.A].Sigmoid(),
            UnaryOp.Neg => values[op.A].Neg(),
            UnaryOp.Relu => values[op.A].Relu(),
            UnaryOp.Erf => values[op.A].Erf(),
            UnaryOp.Square => values[op.A].Square(),
            UnaryOp.Step => values[op.A].Step(),
            UnaryOp.GeluErf => values[op.A].GeluErf(),
            _ => values[op.A].Abs(),
        },
        Kind.Binary => op.Code switch
        {
            0 => values[op.A] + values[op.B],
            1 => values[op.A] - values[op.B],
            _ => values[op.A] * values[op.B],
        },
        Kind.Reduce => op.Code switch
        {
            0 => values[op.A].Sum(0, keepDim: true),
            1 => values[op.A].Sum(values[op.A].Rank - 1, keepDim: true),
            2 => values[op.A].Mean(0, keepDim: true),
            _ => values[op.A].Mean(values[op.A].Rank - 1, keepDim: true),
        },
        _ => values[op.A].Affine(0.7f, 0.3f),
    };

    /// <summary>
    /// A program over values 0 (x [rows, cols]) and 1 (w [cols]): mostly a chain on the latest value, sometimes
    /// reading an earlier one (which gives that value a second user and so ends a group), and sometimes a small tree:
    /// two unary steps on one value (read twice) combined by a binary op; sometimes a sum or mean of the latest value
    /// over its first or last axis (kept as an axis of extent 1, which later binary ops broadcast). With
    /// <paramref name="broadcasting"/>, binary ops read w or the latest reduction as their second operand more often,
    /// reductions come more often, and the small trees are products with w summed: a·w + step(a). With probability
    /// <paramref name="siblings"/> a step is two sibling reductions: the same sum or mean of a unary step of a value and
    /// of its product with w or another value, the two results added. With probability <paramref name="readBack"/> each,
    /// a step is a negated sum or mean of a value, or two independent reductions each read back by the op right after
    /// it (a value minus its reduction; x or w times its own), whose results are squared and added.
    /// </summary>
    private static List<Op> Generate(System.Random rng, int count, bool broadcasting = false, double siblings = 0, double readBack = 0)
    {
        var ops = new List<Op>();
        int reduced = -1;
        int Second() => broadcasting && rng.NextDouble() < 0.6 ? (reduced >= 0 && rng.NextDouble() < 0.5 ? reduced : 1) : rng.Next(0, ops.Count + 2);
        while (ops.Count < count)
        {
            // The latest value is index ops.Count + 1 once there is an op; before, x.
            int a = ops.Count == 0 ? 0 : (rng.NextDouble() < 0.85 ? ops.Count + 1 : rng.Next(0, ops.Count + 2));
            if (rng.NextDouble() < siblings && ops.Count + 5 <= count)
            {
                int first = ops.Count + 2, code = rng.Next(4);
                ops.Add(new Op(Kind.Unary, a, a, rng.Next(Unaries.Length)));
                ops.Add(new Op(Kind.Reduce, first, first, code));
                ops.Add(new Op(Kind.Binary, a, rng.NextDouble() < 0.5 ? 1 : rng.Next(0, first), 2));
                ops.Add(new Op(Kind.Reduce, first + 2, first + 2, code));
                ops.Add(new Op(Kind.Binary, first + 1, first + 3, 0));
                reduced = first + 4;
                continue;
            }
            // A reduction of v no earlier op repeats (common-subexpression elimination would merge the two), or null.
            Op? FreshReduction(int v) => Enumerable.Range(0, 4).OrderBy(_ => rng.Next()).Select(code => new Op(Kind.Reduce, v, v, code))
                .FirstOrDefault(op => !ops.Contains(op));
            if (rng.NextDouble() < readBack && ops.Count + 2 <= count && FreshReduction(a) is { } negated)
            {
                int first = ops.Count + 2;
                ops.Add(negated);
                ops.Add(new Op(Kind.Unary, first, first, Array.IndexOf(Unaries, UnaryOp.Neg)));
                reduced = first + 1;
                continue;
            }
            int b = a == 0 ? 1 : 0;
            if (rng.NextDouble() < readBack && ops.Count + 7 <= count && FreshReduction(a) is { } ofA && FreshReduction(b) is { } ofB)
            {
                int first = ops.Count + 2;
                ops.Add(ofA);
                ops.Add(new Op(Kind.Binary, a, first, 1));
                ops.Add(ofB);
                ops.Add(new Op(Kind.Binary, b, first + 2, 2));
                ops.Add(new Op(Kind.Binary, first + 1, first + 1, 2));
                ops.Add(new Op(Kind.Binary, first + 3, first + 3, 2));
                ops.Add(new Op(Kind.Binary, first + 4, first + 5, 0));
                continue;
            }
            double r = rng.NextDouble();
            if (r < 0.15 && ops.Count + 3 <= count)
            {
                int first = ops.Count + 2;
                ops.Add(broadcasting ? new Op(Kind.Binary, a, 1, 2) : new Op(Kind.Unary, a, a, rng.Next(Unaries.Length)));
                ops.Add(rng.NextDouble() < 0.5 ? new Op(Kind.Unary, a, a, rng.Next(Unaries.Length)) : new Op(Kind.Affine, a, a, 0));
                ops.Add(new Op(Kind.Binary, first, first + 1, rng.Next(3)));
                continue;
            }
            if (r > (broadcasting ? 0.82 : 0.9) && ops.Count > 0)
            {
                // On the latest value only, so no two reductions repeat one another (common-subexpression elimination would merge them).
                reduced = ops.Count + 2;
                ops.Add(new Op(Kind.Reduce, ops.Count + 1, ops.Count + 1, rng.Next(4)));
                continue;
            }
            var op = r < 0.55 ? new Op(Kind.Unary, a, a, rng.Next(Unaries.Length))
                : r < 0.8 ? new Op(Kind.Binary, a, Second(), rng.Next(3))
                : new Op(Kind.Affine, a, a, 0);
            ops.Add(op);
        }
        return ops;
    }

    /// <summary>A group while the predictor forms it: the values its leaves read, per operand of its root, and how many binary ops it holds.</summary>
    private sealed record Group(List<int> LeavesA, List<int> LeavesB, int Binaries)
    {
        public IEnumerable<int> Leaves => LeavesA.Concat(LeavesB);
    }

    /// <summary>
    /// The passes, restated on the program (every value in a buffer of its own, so nothing is in place and nothing
    /// interferes). Dead-code elimination first: an op is live when the result reads it, directly or through live ops.
    /// Then fusion over the live ops in order (see <c>Fusion</c>): a value is private when it is an intermediate (not an
    /// argument, not the result) read by exactly one operand of one live op. An op absorbs the group that computed a
    /// private operand of the op's element count (a full operand; a broadcast or one-element operand stays a leaf, read
    /// through broadcasting) when the op is a unary step, or a binary op (broadcasting or not) and the leaves (a's
    /// decided first, b counting as a leaf) stay at most four distinct values. (A value has one shape, and every value
    /// of a group has the shape of its root up to leading 1s, so a value is read by a group's leaves in one way, and
    /// the group's shape always agrees with the op's.) A reduction absorbs the group that computed its operand when the
    /// operand is private or no live op between the group and the reduction reads it (the launch then still stores
    /// it). Each group left is one launch. Then a reduction launch that stores nothing runs with the launch right after it
    /// when that launch is not a reduction, has the reduction's shape (up to leading 1s) and reads its result. Then
    /// sibling reductions among the reductions left: each reduction launch, in order, joins the earliest
    /// unpaired reduction launch before it of the same op, shape and axis, when the two read at most four distinct
    /// values and neither the second nor any launch between reads what the first writes
    /// (its result, and the value it stores).
    /// </summary>
    private static int PredictedGroups(List<Op> traced, int rows, int cols, out int pairs)
    {
        int Value(int opIndex) => opIndex + 2;
        int result = Value(traced.Count - 1);
        var live = new bool[traced.Count];
        live[^1] = true;
        for (int i = traced.Count - 1; i >= 0; i--)
            if (live[i])
                foreach (var v in Operands(traced[i]))
                    if (v >= 2) live[v - 2] = true;
        var program = NegationsMoved(traced, live);
        var shapes = new List<int[]> { new[] { rows, cols }, new[] { cols } };
        foreach (var op in program)
            shapes.Add(op.Kind switch
            {
                Kind.Binary => Broadcast(shapes[op.A], shapes[op.B]),
                Kind.Reduce => shapes[op.A].Select((d, axis) => axis == (op.Code % 2 == 0 ? 0 : shapes[op.A].Length - 1) ? 1 : d).ToArray(),
                _ => shapes[op.A],
            });
        long Count(int v) => shapes[v].Aggregate(1L, (p, d) => p * d);
        var readers = new Dictionary<int, int>();
        for (int i = 0; i < program.Count; i++)
            if (live[i])
                foreach (var v in Operands(program[i]))
                    readers[v] = readers.GetValueOrDefault(v) + 1;
        bool Private(int v) => v >= 2 && v != result && readers.GetValueOrDefault(v) == 1;
        var groups = new Dictionary<int, Group>();
        int launches = 0;
        // Per op, whether a later group absorbed it, the values its launch reads and, for a reduction, the value it stores (or -1).
        var absorbed = new bool[program.Count];
        var reads = new List<int>[program.Count];
        var stores = new int[program.Count];
        for (int i = 0; i < program.Count; i++)
        {
            if (!live[i]) continue;
            var op = program[i];
            long n = Count(Value(i));
            launches++;
            if (op.Kind == Kind.Reduce)
            {
                bool readBetween = Enumerable.Range(op.A - 1, Math.Max(0, i - op.A + 1)).Any(j => j >= 0 && j < i && live[j] && Operands(program[j]).Contains(op.A));
                (reads[i], stores[i]) = ([op.A], -1);
                if (groups.TryGetValue(op.A, out var epilogue) && (Private(op.A) || !readBetween))
                {
                    groups.Remove(op.A);
                    absorbed[op.A - 2] = true;
                    (reads[i], stores[i]) = (epilogue.Leaves.ToList(), Private(op.A) ? -1 : op.A);
                    launches--;
                }
                continue;
            }
            if (op.Kind != Kind.Binary)
            {
                var group = new Group([op.A], [], 0);
                if (Private(op.A) && Count(op.A) == n && groups.Remove(op.A, out var child))
                {
                    group = child;
                    absorbed[op.A - 2] = true;
                    launches--;
                }
                groups[Value(i)] = group;
                reads[i] = group.Leaves.ToList();
                continue;
            }
            var g = new Group([op.A], [op.B], 1);
            for (int slot = 0; slot < 2; slot++)
            {
                int v = slot == 0 ? op.A : op.B;
                if (!Private(v) || !groups.TryGetValue(v, out var child) || Count(v) != n) continue;
                var leaves = slot == 0 ? child.Leaves.Concat(g.LeavesB) : g.LeavesA.Concat(child.Leaves);
                if (leaves.Distinct().Count() > 4) continue;
                g = slot == 0
                    ? g with { LeavesA = child.Leaves.ToList(), Binaries = g.Binaries + child.Binaries }
                    : g with { LeavesB = child.Leaves.ToList(), Binaries = g.Binaries + child.Binaries };
                groups.Remove(v);
                absorbed[v - 2] = true;
                launches--;
            }
            groups[Value(i)] = g;
            reads[i] = g.Leaves.ToList();
        }
        // A reduction launch that stores nothing, right before a launch of its shape that reads its result, runs with it.
        var order = Enumerable.Range(0, program.Count).Where(i => live[i] && !absorbed[i]).ToList();
        var mapped = new bool[program.Count];
        for (int k = 0; k + 1 < order.Count; k++)
        {
            int i = order[k], j = order[k + 1];
            if (program[i].Kind != Kind.Reduce || stores[i] >= 0 || program[j].Kind == Kind.Reduce || !reads[j].Contains(Value(i))) continue;
            if (!shapes[Value(j)].SkipWhile(d => d == 1).SequenceEqual(shapes[program[i].A].SkipWhile(d => d == 1))) continue;
            mapped[i] = true;
            launches--;
            k++;
        }
        pairs = PredictedPairs(program, shapes, live, absorbed, mapped, reads, stores, out var pairedWith);
        return launches - pairs - PredictedBatchSavings(program, live, absorbed, mapped, reads, pairedWith);
    }

    /// <summary>
    /// The negation rule restated: a live reduction whose next live op is a negation of its result, its only reader
    /// (and not the program's result), becomes the negation of the reduction's operand followed by the reduction of that.
    /// </summary>
    private static List<Op> NegationsMoved(List<Op> traced, bool[] live)
    {
        var program = traced.ToList();
        var readers = new Dictionary<int, int>();
        for (int i = 0; i < program.Count; i++)
            if (live[i])
                foreach (var v in Operands(program[i]))
                    readers[v] = readers.GetValueOrDefault(v) + 1;
        int neg = Array.IndexOf(Unaries, UnaryOp.Neg);
        for (int i = 0; i < program.Count; i++)
        {
            if (!live[i] || program[i].Kind != Kind.Reduce || i == program.Count - 1 || readers.GetValueOrDefault(i + 2) != 1) continue;
            int j = Enumerable.Range(i + 1, program.Count - i - 1).First(k => live[k]);
            if (program[j] is not { Kind: Kind.Unary } negation || negation.Code != neg || negation.A != i + 2) continue;
            (program[i], program[j]) = (new Op(Kind.Unary, program[i].A, program[i].A, neg), program[i] with { A = i + 2, B = i + 2 });
        }
        return program;
    }

    /// <summary>
    /// The launches the batching rule saves: over the launches in order (a paired reduction at its partner's place, a
    /// mapped reduction in the launch after it), a reduction with its map joins the open batch when it comes before
    /// every member's deadline (the first later launch that reads the member's reduction or map result), else it opens
    /// the next; each batch of k is one launch.
    /// </summary>
    private static int PredictedBatchSavings(List<Op> program, bool[] live, bool[] absorbed, bool[] mapped, List<int>[] reads, Dictionary<int, int> pairedWith)
    {
        var order = Enumerable.Range(0, program.Count).Where(i => live[i] && !absorbed[i] && !mapped[i] && !pairedWith.ContainsValue(i)).ToList();
        // The launch that ran each mapped reduction: the next launch after it.
        var mapOf = new Dictionary<int, int>();
        foreach (var i in Enumerable.Range(0, program.Count).Where(i => mapped[i])) mapOf[order.First(k => k > i)] = i;
        // What each launch reads: its own group's values, its paired or mapped reduction's too.
        IEnumerable<int> ReadsOf(int launch) => reads[launch]
            .Concat(pairedWith.TryGetValue(launch, out var earlier) ? reads[earlier] : [])
            .Concat(mapOf.TryGetValue(launch, out var reduction) ? reads[reduction] : []);
        int Deadline(int position)
        {
            int map = order[position], reduction = mapOf[map];
            for (int q = position + 1; q < order.Count; q++)
                if (ReadsOf(order[q]).Any(v => v == map + 2 || v == reduction + 2)) return q;
            return order.Count;
        }
        int saved = 0;
        var open = new List<int>();
        for (int q = 0; q < order.Count; q++)
        {
            if (!mapOf.ContainsKey(order[q])) continue;
            if (open.Count > 0 && open.All(p => q < Deadline(p))) open.Add(q);
            else
            {
                saved += Math.Max(0, open.Count - 1);
                open = [q];
            }
        }
        return saved + Math.Max(0, open.Count - 1);
    }

    /// <summary>The sibling reductions the rule pairs among the launches (see <see cref="PredictedGroups"/>).</summary>
    private static int PredictedPairs(List<Op> program, List<int[]> shapes, bool[] live, bool[] absorbed, bool[] mapped, List<int>[] reads, int[] stores,
        out Dictionary<int, int> pairedWith)
    {
        pairedWith = [];
        var launches = Enumerable.Range(0, program.Count).Where(i => live[i] && !absorbed[i]).ToList();
        bool IsReduce(int i) => program[i].Kind == Kind.Reduce && !mapped[i];
        int[] Shape(int i) => shapes[program[i].A];
        int Axis(int i) => program[i].Code % 2 == 0 ? 0 : Shape(i).Length - 1;
        int[] Writes(int i) => stores[i] >= 0 ? [i + 2, stores[i]] : [i + 2];
        var taken = new HashSet<int>();
        int pairs = 0;
        foreach (var later in launches.Where(IsReduce))
            foreach (var earlier in launches.Where(e => e < later && IsReduce(e) && !taken.Contains(e)))
            {
                if (program[earlier].Code / 2 != program[later].Code / 2 || !Shape(earlier).SequenceEqual(Shape(later)) || Axis(earlier) != Axis(later)) continue;
                if (reads[earlier].Union(reads[later]).Count() > 4) continue;
                var writes = Writes(earlier);
                if (launches.Any(k => k > earlier && k <= later && reads[k].Intersect(writes).Any())) continue;
                taken.Add(earlier);
                taken.Add(later);
                pairedWith[later] = earlier;
                pairs++;
                break;
            }
        return pairs;
    }

    /// <summary>NumPy broadcasting of two shapes.</summary>
    private static int[] Broadcast(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var shape = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int da = d - (rank - a.Length) >= 0 ? a[d - (rank - a.Length)] : 1, db = d - (rank - b.Length) >= 0 ? b[d - (rank - b.Length)] : 1;
            shape[d] = da == 1 ? db : da;
        }
        return shape;
    }

    /// <summary>The values an op reads, one per operand (a binary op reading one value twice lists it twice).</summary>
    private static int[] Operands(Op op) => op.Kind == Kind.Binary ? [op.A, op.B] : [op.A];

    private static string Describe(List<Op> program) =>
        string.Join("; ", program.Select((o, i) => $"v{i + 2}={o.Kind}{(o.Kind == Kind.Unary ? Unaries[o.Code].ToString() : o.Kind == Kind.Binary ? "+-*"[o.Code].ToString() : o.Kind == Kind.Reduce ? new[] { "Sum0", "SumLast", "Mean0", "MeanLast" }[o.Code] : "")}(v{o.A}{(o.Kind == Kind.Binary ? ",v" + o.B : "")})"));
}

/// <summary>Fusion on the CPU set.</summary>
public sealed class CpuFusionPropertyTests : FusionPropertyTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Fusion on the ILGPU set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuFusionPropertyTests : FusionPropertyTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
