using Engine.Autodiff;
using Engine.Kernels;
using Engine.Tests.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>Fills an input of <paramref name="n"/> elements; seeded, so every run and device sees the same data.</summary>
public delegate float[] Gen(Random rng, int n);

/// <summary>One input of an op spec: its shape, how to fill it, and whether gradients are checked for it.</summary>
public sealed record In(int[] Shape, Gen Gen, bool RequiresGrad = true);

/// <summary>
/// One row of the gradcheck table: the op under test as a function of its inputs, the inputs, and the tolerances
/// passed to <see cref="GradCheck"/> (an entry passes when |analytic - numeric| ≤ Atol + Rtol·|numeric|).
/// <paramref name="SecondOrder"/> marks ops whose gradient depends smoothly on the inputs: for those the gradient
/// itself (taken with createGraph) is gradchecked again.
/// </summary>
public sealed record OpSpec(string Name, In[] Inputs, Func<Tensor[], Tensor> F,
    double Eps = 1e-3, double Atol = 1e-3, double Rtol = 1e-2, bool SecondOrder = false)
{
    /// <summary>Creates the leaf inputs on <paramref name="device"/>.</summary>
    public Tensor[] MakeInputs(Device device, int seed = 1234)
    {
        var rng = new Random(seed);
        return Inputs.Select(i =>
        {
            var data = i.Gen(rng, (int)HostReference.Numel(i.Shape));
            return Tensor.FromArray(data, i.Shape, device, i.RequiresGrad);
        }).ToArray();
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>Input generators: keep values where the op is smooth (away from kinks, ties and poles).</summary>
public static class Gens
{
    /// <summary>Standard normal times <paramref name="scale"/>.</summary>
    public static Gen Normal(double scale = 1) => (rng, n) =>
        Enumerable.Range(0, n).Select(_ =>
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            return (float)(scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }).ToArray();

    /// <summary>Uniform in [lo, hi).</summary>
    public static Gen Uniform(double lo, double hi) => (rng, n) =>
        Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();

    /// <summary>|x| uniform in [lo, hi) with a random sign: away from 0 (abs, relu, reciprocal, divisors).</summary>
    public static Gen AwayFromZero(double lo = 0.2, double hi = 1.5) => (rng, n) =>
        Enumerable.Range(0, n).Select(_ => (float)((rng.Next(2) == 0 ? -1 : 1) * (lo + (hi - lo) * rng.NextDouble()))).ToArray();

    /// <summary>
    /// The grid offset + step·(k - n/2), k &lt; n, shuffled: values distinct by at least <paramref name="step"/>
    /// (no ties for max). Two grids with offsets differing by step/2 never come closer than step/2 (maximum/minimum).
    /// </summary>
    public static Gen Grid(double step, double offset) => (rng, n) =>
        Enumerable.Range(0, n).Select(k => (float)(offset + step * (k - n / 2))).OrderBy(_ => rng.Next()).ToArray();

    /// <summary>Distinct values, all with |x| ≥ 0.1: for relu and max.</summary>
    public static Gen Distinct => Grid(0.25, 0.12);
}

/// <summary>The gradcheck table: every differentiable op of src/Autodiff/Ops, with broadcasting and layout variants.</summary>
public static class OpSpecs
{
    /// <summary>All specs, in table order.</summary>
    public static readonly IReadOnlyList<OpSpec> All = Build();

    /// <summary>Specs by name.</summary>
    public static readonly IReadOnlyDictionary<string, OpSpec> ByName = All.ToDictionary(s => s.Name);

    /// <summary>Names of all specs (theory data).</summary>
    public static TheoryData<string> Names() => new(All.Select(s => s.Name));

    /// <summary>Names of the specs whose gradient is gradchecked again (theory data).</summary>
    public static TheoryData<string> SecondOrderNames() => new(All.Where(s => s.SecondOrder).Select(s => s.Name));

    private static string F(int[] s) => Shape.Format(s);

    private static OpSpec Unary(string name, Func<Tensor, Tensor> f, Gen gen, int[]? shape = null, bool second = false,
        double eps = 1e-3, double atol = 1e-3, double rtol = 1e-2) =>
        new(name, [new In(shape ?? [3, 4], gen)], xs => f(xs[0]), eps, atol, rtol, second);

    private static OpSpec Binary(string name, int[] sa, int[] sb, Func<Tensor, Tensor, Tensor> f, Gen ga, Gen gb,
        bool second = false) =>
        new($"{name} {F(sa)},{F(sb)}", [new In(sa, ga), new In(sb, gb)], xs => f(xs[0], xs[1]), SecondOrder: second);

    /// <summary>Broadcasting patterns every binary op runs through (operand order matters for sub, div, pow).</summary>
    private static (int[] A, int[] B)[] Patterns =>
    [
        ([3, 4], [3, 4]),
        ([3, 4], [4]),
        ([4], [3, 4]),
        ([2, 1, 3], [4, 1]),
        ([], [5]),
        ([5], []),
        ([5, 1], [1, 7]),
    ];

    private static OpSpec MatMul(int[] sa, int[] sb, bool ta = false, bool tb = false, bool second = true) =>
        new($"matmul {F(sa)}{(ta ? "ᵀ" : "")}x{F(sb)}{(tb ? "ᵀ" : "")}", [new In(sa, Gens.Normal()), new In(sb, Gens.Normal())],
            xs => Ops.MatMul(xs[0], xs[1], ta, tb), SecondOrder: second);

    private static IReadOnlyList<OpSpec> Build()
    {
        var specs = OpTable.Unary.Select(r => Unary(r.Name, r.Forward, r.GradInputs, second: r.SecondOrder)).ToList();
        specs.AddRange(new List<OpSpec>
        {
            // ----- unary: the op table's rows, then variants -----
            Unary("gelu(approximate)", x => x.Gelu(approximate: true), Gens.Normal(2)),
            Unary("affine(-1.5, 0.5)", x => x.Affine(-1.5f, 0.5f), Gens.Normal()),
            Unary("unary on scalar []", x => x.Tanh(), Gens.Normal(), shape: [], second: true),
            Unary("unary on prime [7, 1, 3]", x => x.Sigmoid(), Gens.Normal(), shape: [7, 1, 3]),

            // ----- scalar operators -----
            Unary("x + 2", x => x + 2f, Gens.Normal()),
            Unary("2 + x", x => 2f + x, Gens.Normal()),
            Unary("x - 2", x => x - 2f, Gens.Normal()),
            Unary("2 - x", x => 2f - x, Gens.Normal()),
            Unary("x * 3", x => x * 3f, Gens.Normal()),
            Unary("3 * x", x => 3f * x, Gens.Normal()),
            Unary("x / 4", x => x / 4f, Gens.Normal()),
            Unary("-x", x => -x, Gens.Normal()),

            // ----- pow with a constant exponent -----
            Unary("pow x^3", x => x.Pow(3f), Gens.Normal(), second: true),
            Unary("pow x^2 (negative base)", x => x.Pow(2f), Gens.AwayFromZero(), second: true),
            Unary("pow x^2.5", x => x.Pow(2.5f), Gens.Uniform(0.5, 2), second: true),
            Unary("pow x^-1.5", x => x.Pow(-1.5f), Gens.Uniform(0.5, 2), second: true),
            Unary("pow x^0.5", x => x.Pow(0.5f), Gens.Uniform(0.5, 2), second: true),
        });

        // ----- binary ops (the op table's rows), every broadcasting pattern -----
        foreach (var (a, b) in Patterns)
        foreach (var r in OpTable.Binary)
            specs.Add(Binary(r.Name, a, b, r.Forward, r.GradA, r.GradB, r.SecondOrder));
        specs.Add(Binary("add (same tensor twice)", [3, 4], [3, 4], (x, _) => x + x, Gens.Normal(), Gens.Normal()));
        specs.Add(new("mul (one constant input)", [new In([3, 4], Gens.Normal()), new In([4], Gens.Normal(), RequiresGrad: false)],
            xs => xs[0] * xs[1], SecondOrder: false));
        specs.Add(new("pow (constant exponent tensor)", [new In([3, 4], Gens.Uniform(0.5, 2)), new In([4], Gens.Uniform(-2, 2), RequiresGrad: false)],
            xs => Ops.Pow(xs[0], xs[1]), SecondOrder: true));

        // ----- broadcast_to -----
        foreach (var (from, to) in new (int[], int[])[] { ([3, 1], [2, 3, 4]), ([], [2, 2]), ([4], [3, 4]), ([2, 1, 3], [2, 4, 3]), ([3, 4], [3, 4]) })
            specs.Add(new($"broadcast_to {F(from)}->{F(to)}", [new In(from, Gens.Normal())], xs => xs[0].BroadcastTo(to)));

        // ----- reductions -----
        var reductions = new (string Name, Func<Tensor, int[]?, bool, Tensor> Op, Gen Gen)[]
        {
            ("sum", (x, ax, k) => x.Sum(ax, k), Gens.Normal()),
            ("mean", (x, ax, k) => x.Mean(ax, k), Gens.Normal()),
            ("max", (x, ax, k) => x.Max(ax, k), Gens.Distinct),
        };
        var axesCases = new (int[]? Axes, bool Keep)[]
        {
            ([0], false), ([1], false), ([1], true), ([-1], false), ([-1], true),
            ([0, 2], false), ([2, 0], true), ([0, 1, 2], false), (null, false), (null, true),
        };
        foreach (var (name, op, gen) in reductions)
        {
            foreach (var (axes, keep) in axesCases)
                specs.Add(new($"{name} [2, 3, 4] axes {(axes == null ? "all" : F(axes))}{(keep ? " keepDim" : "")}",
                    [new In([2, 3, 4], gen)], xs => op(xs[0], axes, keep)));
            specs.Add(new($"{name} scalar input", [new In([], gen)], xs => op(xs[0], null, false)));
            specs.Add(new($"{name} [1, 5] axis 0", [new In([1, 5], gen)], xs => op(xs[0], [0], false)));
        }
        specs.Add(new("sum(axis) overload keepDim", [new In([3, 5], Gens.Normal())], xs => xs[0].Sum(1, keepDim: true)));
        specs.Add(new("mean(axis) overload", [new In([3, 5], Gens.Normal())], xs => xs[0].Mean(0)));
        specs.Add(new("max(axis) overload keepDim", [new In([3, 5], Gens.Distinct)], xs => xs[0].Max(-1, keepDim: true)));

        // ----- matmul -----
        specs.Add(MatMul([7, 5], [5, 3]));
        specs.Add(MatMul([5, 7], [5, 3], ta: true));
        specs.Add(MatMul([7, 5], [3, 5], tb: true));
        specs.Add(MatMul([5, 7], [3, 5], ta: true, tb: true));
        specs.Add(MatMul([1, 3], [3, 1]));
        specs.Add(MatMul([3, 1], [1, 4]));
        specs.Add(MatMul([1, 1], [1, 1]));
        specs.Add(MatMul([2, 7, 5], [2, 5, 3]));
        specs.Add(MatMul([2, 5, 7], [2, 3, 5], ta: true, tb: true));
        specs.Add(MatMul([2, 7, 5], [5, 3]));
        specs.Add(MatMul([2, 7, 5], [3, 5], tb: true));
        specs.Add(MatMul([2, 5, 7], [5, 3], ta: true));
        specs.Add(MatMul([2, 5, 7], [3, 5], ta: true, tb: true));
        specs.Add(MatMul([7, 5], [2, 5, 3]));
        specs.Add(MatMul([5, 7], [2, 5, 3], ta: true));
        specs.Add(MatMul([7, 5], [2, 3, 5], tb: true));
        specs.Add(MatMul([2, 2, 3, 5], [2, 2, 5, 2]));
        specs.Add(MatMul([2, 2, 3, 5], [5, 2]));
        specs.Add(MatMul([3, 5], [2, 2, 5, 2], tb: false));
        specs.Add(new("matmul A x A (same tensor)", [new In([4, 4], Gens.Normal())], xs => Ops.MatMul(xs[0], xs[0]), SecondOrder: true));
        specs.Add(new("matmul A x Aᵀ (same tensor)", [new In([3, 4], Gens.Normal())], xs => Ops.MatMul(xs[0], xs[0], false, true), SecondOrder: true));
        specs.Add(new("matmul constant B", [new In([3, 4], Gens.Normal()), new In([4, 2], Gens.Normal(), RequiresGrad: false)],
            xs => Ops.MatMul(xs[0], xs[1])));

        // ----- layout -----
        specs.Add(new("reshape [2, 3, 4]->[6, 4]", [new In([2, 3, 4], Gens.Normal())], xs => xs[0].Reshape(6, 4)));
        specs.Add(new("reshape [2, 3, 4]->[-1, 2]", [new In([2, 3, 4], Gens.Normal())], xs => xs[0].Reshape(-1, 2)));
        specs.Add(new("reshape [2, 3, 4]->[24]", [new In([2, 3, 4], Gens.Normal())], xs => xs[0].Reshape(24)));
        specs.Add(new("reshape []->[1, 1]", [new In([], Gens.Normal())], xs => xs[0].Reshape(1, 1)));
        specs.Add(new("reshape then exp", [new In([2, 6], Gens.Normal())], xs => xs[0].Reshape(3, 4).Exp() * xs[0].Reshape(3, 4)));
        foreach (var perm in new[] { new[] { 2, 0, 1 }, new[] { 1, 2, 0 }, new[] { 0, 2, 1 }, new[] { -1, 0, 1 }, new[] { 0, 1, 2 } })
            specs.Add(new($"permute [2, 3, 4] by {F(perm)}", [new In([2, 3, 4], Gens.Normal())], xs => xs[0].Permute(perm)));
        specs.Add(new("transpose [3, 4]", [new In([3, 4], Gens.Normal())], xs => xs[0].Transpose()));
        specs.Add(new("transpose [2, 3, 4] axes 0,2", [new In([2, 3, 4], Gens.Normal())], xs => xs[0].Transpose(0, 2)));

        var perm5 = new IndexTensor(new[] { 3, 0, 4, 1, 2 });
        var perm4 = new IndexTensor(new[] { 2, 3, 1, 0 });
        var repeated6 = new IndexTensor(new[] { 0, 2, 2, 4, 0, 1 });
        var repeated3 = new IndexTensor(new[] { 1, 1, 1 });
        specs.Add(new("index_select [5, 3] axis 0 permutation", [new In([5, 3], Gens.Normal())], xs => xs[0].IndexSelect(0, perm5)));
        specs.Add(new("index_select [3, 5] axis 1 repeated", [new In([3, 5], Gens.Normal())], xs => xs[0].IndexSelect(1, repeated6)));
        specs.Add(new("index_select [2, 5, 3] axis -2 repeated", [new In([2, 5, 3], Gens.Normal())], xs => xs[0].IndexSelect(-2, repeated6)));
        specs.Add(new("index_select [4] axis 0 all the same", [new In([4], Gens.Normal())], xs => xs[0].IndexSelect(0, repeated3)));
        specs.Add(new("index_add [4, 2] axis 0 permutation", [new In([4, 2], Gens.Normal())], xs => xs[0].IndexAdd(0, perm4, 4)));
        specs.Add(new("index_add [3, 6] axis 1 repeated into 5", [new In([3, 6], Gens.Normal())], xs => xs[0].IndexAdd(1, repeated6, 5)));
        specs.Add(new("index_add [3, 2] axis 0 repeated into 2", [new In([3, 2], Gens.Normal())], xs => xs[0].IndexAdd(0, repeated3, 2)));

        // ----- softmax -----
        foreach (var axis in new[] { 0, 1, 2, -1 })
        {
            specs.Add(new($"softmax [2, 3, 4] axis {axis}", [new In([2, 3, 4], Gens.Normal(2))], xs => xs[0].Softmax(axis), SecondOrder: true));
            specs.Add(new($"log_softmax [2, 3, 4] axis {axis}", [new In([2, 3, 4], Gens.Normal(2))], xs => xs[0].LogSoftmax(axis), SecondOrder: true));
        }
        specs.Add(new("softmax [1, 5] axis 1", [new In([1, 5], Gens.Normal(2))], xs => xs[0].Softmax(1), SecondOrder: true));
        specs.Add(new("log_softmax [5, 1] axis 1 (one class)", [new In([5, 1], Gens.Normal(2))], xs => xs[0].LogSoftmax(1)));

        // ----- losses -----
        specs.Add(new("cross_entropy [4, 5]", [new In([4, 5], Gens.Normal(2))], xs => xs[0].CrossEntropy(new[] { 1, 0, 4, 2 }), SecondOrder: true));
        specs.Add(new("cross_entropy [1, 3]", [new In([1, 3], Gens.Normal(2))], xs => xs[0].CrossEntropy(new[] { 2 }), SecondOrder: true));
        specs.Add(new("cross_entropy [6, 2] repeated labels", [new In([6, 2], Gens.Normal(2))], xs => xs[0].CrossEntropy(new[] { 1, 1, 0, 1, 0, 0 }), SecondOrder: true));
        var labels = new IndexTensor(new[] { 2, 0, 1 });
        specs.Add(new("cross_entropy [3, 3] IndexTensor", [new In([3, 3], Gens.Normal(2))], xs => xs[0].CrossEntropy(labels), SecondOrder: true));
        specs.Add(new("mse_loss [3, 4]", [new In([3, 4], Gens.Normal()), new In([3, 4], Gens.Normal())], xs => xs[0].MseLoss(xs[1]), SecondOrder: true));
        specs.Add(new("mse_loss [5] constant target", [new In([5], Gens.Normal()), new In([5], Gens.Normal(), RequiresGrad: false)],
            xs => xs[0].MseLoss(xs[1]), SecondOrder: true));

        // ----- copies -----
        specs.Add(new("clone", [new In([3, 4], Gens.Normal())], xs => xs[0].Clone()));
        specs.Add(new("clone then mul", [new In([3, 4], Gens.Normal())], xs => xs[0].Clone() * xs[0], SecondOrder: true));
        specs.Add(new("to(same device)", [new In([3, 4], Gens.Normal())], xs => xs[0].To(xs[0].Device)));

        // ----- compositions (chains through several backward rules) -----
        specs.Add(new("mlp: log_softmax(gelu(x W + b) V)",
            [new In([4, 3], Gens.Normal()), new In([3, 5], Gens.Normal()), new In([5], Gens.Normal()), new In([5, 2], Gens.Normal())],
            // Its gradients reach |g| ≈ 8, where float32 rounding alone puts ~2e-4 per ulp into a central difference with
            // ε = 1e-3 (GradCheck's remarks); ε = 1e-2 brings that noise under the tolerance on both kernel sets.
            xs => (Ops.MatMul(xs[0], xs[1]) + xs[2]).GeluErf().MatMul(xs[3]).LogSoftmax(-1), Eps: 1e-2, SecondOrder: true));
        specs.Add(new("layer norm over last axis",
            [new In([3, 5], Gens.Normal())],
            xs =>
            {
                var x = xs[0];
                var c = x - x.Mean(-1, keepDim: true);
                return c / (c.Square().Mean(-1, keepDim: true) + 1e-3f).Sqrt();
            }, SecondOrder: true));
        // ----- layer norm (fused kernels; the createGraph path rebuilds the gradient from differentiable ops) -----
        specs.Add(new("layer_norm [3, 5]",
            [new In([3, 5], Gens.Normal()), new In([5], Gens.Normal()), new In([5], Gens.Normal())],
            xs => xs[0].LayerNorm(xs[1], xs[2]), SecondOrder: true));
        specs.Add(new("layer_norm [2, 3, 4]",
            [new In([2, 3, 4], Gens.Normal(2)), new In([4], Gens.Normal()), new In([4], Gens.Normal())],
            xs => xs[0].LayerNorm(xs[1], xs[2], 1e-3f), SecondOrder: true));
        specs.Add(new("layer_norm [7] rank 1",
            [new In([7], Gens.Normal()), new In([7], Gens.Normal()), new In([7], Gens.Normal())],
            xs => xs[0].LayerNorm(xs[1], xs[2]), SecondOrder: true));
        specs.Add(new("layer_norm [4, 1] cols = 1",
            [new In([4, 1], Gens.Normal()), new In([1], Gens.Normal()), new In([1], Gens.Normal())],
            xs => xs[0].LayerNorm(xs[1], xs[2])));
        specs.Add(new("layer_norm [3, 6] x without grad",
            [new In([3, 6], Gens.Normal(), RequiresGrad: false), new In([6], Gens.Normal()), new In([6], Gens.Normal())],
            xs => xs[0].LayerNorm(xs[1], xs[2]) * xs[0]));
        specs.Add(new("layer_norm [3, 6] params without grad, then tanh",
            [new In([3, 6], Gens.Normal()), new In([6], Gens.Normal(), RequiresGrad: false), new In([6], Gens.Normal(), RequiresGrad: false)],
            xs => xs[0].LayerNorm(xs[1], xs[2]).Tanh(), SecondOrder: true));
        specs.Add(new("cross_entropy of relu mlp",
            [new In([4, 3], Gens.Normal()), new In([3, 6], Gens.Normal()), new In([6, 3], Gens.Normal())],
            xs => xs[0].MatMul(xs[1]).Tanh().MatMul(xs[2]).CrossEntropy(new[] { 0, 2, 1, 2 }), SecondOrder: true));
        specs.Add(new("attention-like batched",
            [new In([2, 3, 4], Gens.Normal()), new In([2, 3, 4], Gens.Normal()), new In([2, 3, 4], Gens.Normal())],
            xs => Ops.MatMul(Ops.MatMul(xs[0], xs[1], false, true).Softmax(-1), xs[2]), SecondOrder: true));
        specs.AddRange(TensorOpSpecs.GradSpecs());
        return specs;
    }
}

/// <summary>
/// Gradcheck and forward-value tests over the op table, written once and run per kernel set by thin subclasses.
/// </summary>
public abstract partial class AutodiffOpTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>Entries probed per input by gradcheck (fewer on the slow ILGPU CPU emulator).</summary>
    protected virtual int MaxEntriesPerInput => 48;

    /// <summary>The gradcheck table's names.</summary>
    public static TheoryData<string> GradCases => OpSpecs.Names();

    /// <summary>Names of the specs whose gradients are gradchecked again.</summary>
    public static TheoryData<string> SecondOrderCases => OpSpecs.SecondOrderNames();

    [Theory]
    [MemberData(nameof(GradCases))]
    public void Gradient_matches_central_differences(string name)
    {
        var spec = OpSpecs.ByName[name];
        using var scope = new TensorScope();
        var inputs = spec.MakeInputs(Device);
        var r = GradCheck.Check(spec.F, inputs, spec.Eps, spec.Atol, spec.Rtol, MaxEntriesPerInput);
        AssertPassed(r, $"{name} on {Device.Name}: gradcheck");
        Assert.True(r.Checked > 0);
        foreach (var x in inputs) Assert.Null(x.Grad); // gradcheck leaves no gradients behind
    }

    /// <summary>
    /// Gradchecks the gradient itself: for each input j, the function xs ↦ ∂(Σ w ⊙ f(xs))/∂xⱼ, computed with createGraph,
    /// is differentiated again (one block row of the Hessian per j). Passes only if the backward rules are recorded in
    /// differentiable ops (double backpropagation, exact gradient regularization). Gradients that do not depend on
    /// any input (a linear op's) are skipped; each spec flagged SecondOrder has at least one that does.
    /// </summary>
    [Theory]
    [MemberData(nameof(SecondOrderCases))]
    public void Gradient_of_gradient_matches_central_differences(string name)
    {
        var spec = OpSpecs.ByName[name];
        using var scope = new TensorScope();
        var inputs = spec.MakeInputs(Device);
        int checkedRows = 0;
        for (int j = 0; j < inputs.Length; j++)
        {
            if (!inputs[j].RequiresGrad) continue;
            int jj = j;
            Func<Tensor[], Tensor> grad = xs => GradOf(spec.F, xs, jj);
            if (!grad(inputs).RequiresGrad) continue;
            var r = GradCheck.Check(grad, inputs, spec.Eps, spec.Atol, spec.Rtol,
                maxEntriesPerInput: Math.Max(4, MaxEntriesPerInput / 2));
            AssertPassed(r, $"{name} on {Device.Name}: gradcheck of the gradient for input {j}");
            checkedRows++;
        }
        Assert.True(checkedRows > 0, $"{name}: no gradient depends on the inputs; the spec should not be flagged SecondOrder.");
    }

    /// <summary>Asserts that a gradcheck passed; the failure message names <paramref name="what"/> and carries the report.</summary>
    private static void AssertPassed(GradCheck.Result r, string what) =>
        Assert.True(r.Passed, $"{what} failed ({r.Checked} entries, max |diff| {r.MaxAbsError:G3}):\n{r.Report}");

    /// <summary>∂(Σ w ⊙ f(xs))/∂xs[j] with a fixed random w, recorded (createGraph); leaves every Grad as it found it.</summary>
    internal static Tensor GradOf(Func<Tensor[], Tensor> f, Tensor[] xs, int j)
    {
        var saved = xs.Select(x => x.Grad).ToArray();
        try
        {
            using var mode = GradMode.EnableGrad();
            foreach (var x in xs) x.Grad = null;
            var y = f(xs);
            var rng = new Random(99);
            var w = Tensor.FromArray(Enumerable.Range(0, (int)y.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), y.Shape, y.Device);
            (y * w).Sum().Backward(createGraph: true);
            return xs[j].Grad ?? xs[j].ZerosLike();
        }
        finally
        {
            for (int i = 0; i < xs.Length; i++) xs[i].Grad = saved[i];
        }
    }
}

public abstract partial class AutodiffOpTests
{
    /// <summary>The fused LayerNorm backward (plain pass) and the recorded one (createGraph) give the same gradients.</summary>
    [Fact]
    public void LayerNorm_fused_and_recorded_backward_agree()
    {
        using var scope = new TensorScope();
        var spec = OpSpecs.ByName["layer_norm [2, 3, 4]"];
        var inputs = spec.MakeInputs(Device, seed: 7);
        var w = Tensor.FromArray(Gens.Normal()(new Random(3), 24), [2, 3, 4], Device);
        (spec.F(inputs) * w).Sum().Backward();
        var fused = inputs.Select(x => x.Grad!.ToArray()).ToArray();
        foreach (var x in inputs) x.Grad = null;
        (spec.F(inputs) * w).Sum().Backward(createGraph: true);
        for (int k = 0; k < inputs.Length; k++)
        {
            var recorded = inputs[k].Grad!.ToArray();
            for (int i = 0; i < recorded.Length; i++)
                Assert.True(Math.Abs(recorded[i] - fused[k][i]) <= 1e-4 + 1e-4 * Math.Abs(recorded[i]),
                    $"input {k}[{i}]: fused {fused[k][i]:G9}, recorded {recorded[i]:G9}");
        }
    }

    /// <summary>Constant rows (variance 0): output beta, finite gradients; dbeta counts the rows, dgamma is 0.</summary>
    [Fact]
    public void LayerNorm_constant_rows_are_finite()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(Enumerable.Repeat(0.3f, 12).ToArray(), [3, 4], Device, requiresGrad: true);
        var gamma = Tensor.FromArray([1f, -2f, 0.5f, 3f], [4], Device, requiresGrad: true);
        var beta = Tensor.FromArray([0.25f, -1f, 2f, 0f], [4], Device, requiresGrad: true);
        var y = x.LayerNorm(gamma, beta);
        var yv = y.ToArray();
        for (int i = 0; i < yv.Length; i++) Assert.True(Math.Abs(yv[i] - beta.ToArray()[i % 4]) < 1e-3, $"y[{i}] = {yv[i]}");
        y.Sum().Backward();
        // dx = rstd · (gamma - mean(gamma)) with rstd = 1/sqrt(eps): large but finite.
        var dx = x.Grad!.ToArray();
        double rstd = 1 / Math.Sqrt(1e-5);
        float[] g = [1f, -2f, 0.5f, 3f];
        for (int i = 0; i < dx.Length; i++)
        {
            double expected = rstd * (g[i % 4] - 0.625);
            Assert.True(float.IsFinite(dx[i]) && Math.Abs(dx[i] - expected) <= 1e-3 * Math.Abs(expected), $"dx[{i}] = {dx[i]}, expected {expected}");
        }
        Assert.All(gamma.Grad!.ToArray(), v => Assert.True(float.IsFinite(v) && Math.Abs(v) < 1e-2, $"dgamma {v}"));
        Assert.All(beta.Grad!.ToArray(), v => Assert.Equal(3f, v));
    }
}

/// <summary>The op table on the hand-written SIMD CPU kernel set.</summary>
public sealed class CpuAutodiffTests : AutodiffOpTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>The op table on the ILGPU kernel set, run by ILGPU's CPU accelerator (an emulator: tiny shapes, few probes).</summary>
[Collection("ilgpu")]
public sealed class IlgpuAutodiffTests : AutodiffOpTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;

    /// <inheritdoc />
    protected override int MaxEntriesPerInput => 12;

    /// <summary>Moving between devices is differentiable: the gradient travels back to the source device.</summary>
    [Fact]
    public void Gradient_flows_through_to_between_devices()
    {
        var cpu = Device.Get(DeviceKind.Cpu);
        using var scope = new TensorScope();
        var x = Tensor.FromArray([0.5f, -1f, 2f], [3], cpu, requiresGrad: true);
        var y = x.To(Device);
        Assert.Equal(Device, y.Device);
        Assert.True(y.RequiresGrad);
        GradCheck.Assert(xs => xs[0].To(Device).Tanh().To(cpu) * xs[0], [x]);
    }
}
