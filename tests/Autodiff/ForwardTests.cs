using Engine.Autodiff;
using Engine.Kernels;
using Engine.Tests.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// A forward-value case: the op on device tensors against <see cref="HostReference"/> (double precision from the
/// same float inputs). Tolerance (llm.c style): |device - reference| ≤ Atol + Rtol·|reference|.
/// </summary>
public sealed record FwdSpec(string Name, In[] Inputs, Func<Tensor[], Tensor> F,
    Func<float[][], int[][], (double[] Values, int[] Shape)> Reference, double Atol = 1e-5, double Rtol = 1e-4)
{
    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>The forward-value table.</summary>
public static class FwdSpecs
{
    /// <summary>All cases.</summary>
    public static readonly IReadOnlyList<FwdSpec> All = Build();

    /// <summary>Cases by name.</summary>
    public static readonly IReadOnlyDictionary<string, FwdSpec> ByName = All.ToDictionary(s => s.Name);

    /// <summary>Theory data.</summary>
    public static TheoryData<string> Names() => new(All.Select(s => s.Name));

    private static FwdSpec Map(string name, Func<Tensor, Tensor> f, UnaryOp reference, Gen gen, int[]? shape = null) =>
        new(name, [new In(shape ?? [3, 5], gen)], xs => f(xs[0]), (v, s) => (HostReference.Unary(reference, v[0]), s[0]));

    private static FwdSpec Map(string name, Func<Tensor, Tensor> f, Func<double, double> reference, Gen gen) =>
        new(name, [new In([3, 5], gen)], xs => f(xs[0]), (v, s) => (HostReference.Map(v[0], reference), s[0]));

    private static FwdSpec Bin(string name, int[] sa, int[] sb, Func<Tensor, Tensor, Tensor> f, BinaryOp reference, Gen ga, Gen gb) =>
        new($"{name} {Shape.Format(sa)},{Shape.Format(sb)}", [new In(sa, ga), new In(sb, gb)], xs => f(xs[0], xs[1]),
            (v, s) => (HostReference.Binary(reference, v[0], s[0], v[1], s[1], out var shape), shape));

    private static FwdSpec MatMul(int[] sa, int[] sb, bool ta, bool tb) =>
        new($"matmul {Shape.Format(sa)}{(ta ? "ᵀ" : "")}x{Shape.Format(sb)}{(tb ? "ᵀ" : "")}",
            [new In(sa, Gens.Normal()), new In(sb, Gens.Normal())], xs => Ops.MatMul(xs[0], xs[1], ta, tb),
            (v, s) => (HostReference.MatMul(v[0], s[0], v[1], s[1], ta, tb, out var shape), shape));

    private static FwdSpec Reduce(string name, int[] shape, Func<Tensor, Tensor> f, ReduceOp op, int[]? axes, bool keepDim, Gen gen) =>
        new(name, [new In(shape, gen)], xs => f(xs[0]), (v, s) => (HostReference.Reduce(op, v[0], s[0], axes, keepDim, out var ys), ys));

    /// <summary>Data movement: the reference's float values, exact.</summary>
    private static double[] D(float[] x) => Array.ConvertAll(x, v => (double)v);

    private static IReadOnlyList<FwdSpec> Build()
    {
        var wide = Gens.Normal(3);
        var list = new List<FwdSpec>
        {
            Map("neg", x => x.Neg(), UnaryOp.Neg, wide),
            Map("exp", x => x.Exp(), UnaryOp.Exp, wide),
            Map("log", x => x.Log(), UnaryOp.Log, Gens.Uniform(0.01, 50)),
            Map("sqrt", x => x.Sqrt(), UnaryOp.Sqrt, Gens.Uniform(0, 50)),
            Map("relu", x => x.Relu(), UnaryOp.Relu, wide),
            Map("gelu_tanh", x => x.GeluTanh(), UnaryOp.GeluTanh, wide),
            Map("gelu_erf", x => x.GeluErf(), UnaryOp.GeluErf, wide),
            Map("tanh", x => x.Tanh(), UnaryOp.Tanh, wide),
            Map("sigmoid", x => x.Sigmoid(), UnaryOp.Sigmoid, Gens.Normal(6)),
            Map("erf", x => x.Erf(), UnaryOp.Erf, wide),
            Map("abs", x => x.Abs(), UnaryOp.Abs, wide),
            Map("sign", x => x.Sign(), UnaryOp.Sign, wide),
            Map("step", x => x.Step(), UnaryOp.Step, wide),
            Map("square", x => x.Square(), UnaryOp.Square, wide),
            Map("reciprocal", x => x.Reciprocal(), UnaryOp.Reciprocal, Gens.AwayFromZero(0.1, 5)),
            Map("affine", x => x.Affine(-1.5f, 0.25f), x => -1.5 * x + 0.25, wide),
            Map("pow x^2.5", x => x.Pow(2.5f), x => Math.Pow(x, 2.5), Gens.Uniform(0.1, 3)),
            Map("x / 4", x => x / 4f, x => x / 4, wide),
            Map("2 - x", x => 2f - x, x => 2 - x, wide),
            Map("exp on [2, 3, 17] (odd length, SIMD tail)", x => x.Exp(), UnaryOp.Exp, wide, [2, 3, 17]),

            Bin("add", [3, 4], [4], (a, b) => a + b, BinaryOp.Add, wide, wide),
            Bin("sub", [4], [3, 4], (a, b) => a - b, BinaryOp.Sub, wide, wide),
            Bin("mul", [2, 1, 3], [4, 1], (a, b) => a * b, BinaryOp.Mul, wide, wide),
            Bin("div", [5, 1], [1, 7], (a, b) => a / b, BinaryOp.Div, wide, Gens.AwayFromZero(0.3, 3)),
            Bin("add", [], [5], (a, b) => a + b, BinaryOp.Add, wide, wide),
            Bin("maximum", [2, 1, 3], [4, 1], Ops.Maximum, BinaryOp.Maximum, wide, wide),
            Bin("minimum", [3, 4], [3, 4], Ops.Minimum, BinaryOp.Minimum, wide, wide),
            Bin("pow", [3, 4], [4], Ops.Pow, BinaryOp.Pow, Gens.Uniform(0.1, 3), Gens.Uniform(-2, 2)),
            Bin("equal", [3, 4], [4], Ops.Equal, BinaryOp.Equal, Gens.Grid(1, 0), Gens.Grid(1, 0)),
            Bin("greater", [3, 4], [4], Ops.Greater, BinaryOp.Greater, Gens.Grid(1, 0), Gens.Grid(1, 0)),

            new("broadcast_to [3, 1]->[2, 3, 4]", [new In([3, 1], wide)], xs => xs[0].BroadcastTo([2, 3, 4]),
                (v, s) => (D(HostReference.BroadcastTo(v[0], s[0], [2, 3, 4])), [2, 3, 4])),

            Reduce("sum [2, 3, 4] axes [0, 2]", [2, 3, 4], x => x.Sum([0, 2]), ReduceOp.Sum, [0, 2], false, wide),
            Reduce("sum [2, 3, 4] all keepDim", [2, 3, 4], x => x.Sum(null, keepDim: true), ReduceOp.Sum, null, true, wide),
            Reduce("mean [2, 3, 4] axis 1 keepDim", [2, 3, 4], x => x.Mean(1, keepDim: true), ReduceOp.Mean, [1], true, wide),
            Reduce("max [2, 3, 4] axis -1", [2, 3, 4], x => x.Max(-1), ReduceOp.Max, [-1], false, wide),
            Reduce("max [2, 3, 4] axes [0, 1]", [2, 3, 4], x => x.Max([0, 1]), ReduceOp.Max, [0, 1], false, wide),
            Reduce("max of all-negative values", [3, 5], x => x.Max(), ReduceOp.Max, null, false, Gens.Uniform(-9, -1)),

            MatMul([7, 5], [5, 3], false, false),
            MatMul([5, 7], [3, 5], true, true),
            MatMul([5, 7], [5, 3], true, false),
            MatMul([7, 5], [3, 5], false, true),
            MatMul([1, 3], [3, 1], false, false),
            MatMul([2, 7, 5], [5, 3], false, false),
            MatMul([7, 5], [2, 5, 3], false, false),
            MatMul([2, 5, 7], [2, 3, 5], true, true),

            new("permute [2, 3, 4] by [2, 0, 1]", [new In([2, 3, 4], wide)], xs => xs[0].Permute(2, 0, 1),
                (v, s) => (D(HostReference.Permute(v[0], s[0], [2, 0, 1])), HostReference.PermutedShape(s[0], [2, 0, 1]))),
            new("transpose [3, 5]", [new In([3, 5], wide)], xs => xs[0].Transpose(),
                (v, s) => (D(HostReference.Permute(v[0], s[0], [1, 0])), HostReference.PermutedShape(s[0], [1, 0]))),
            new("reshape [2, 3, 4]->[4, -1]", [new In([2, 3, 4], wide)], xs => xs[0].Reshape(4, -1),
                (v, s) => (D(v[0]), [4, 6])),
            new("index_select [3, 5] axis 1 repeated", [new In([3, 5], wide)], xs => xs[0].IndexSelect(1, new IndexTensor(new[] { 4, 0, 0, 2 })),
                (v, s) => (D(HostReference.IndexSelect(v[0], s[0], 1, [4, 0, 0, 2])), HostReference.WithExtent(s[0], 1, 4))),
            new("index_add [2, 4, 3] axis 1 repeated", [new In([2, 4, 3], wide)], xs => xs[0].IndexAdd(1, new IndexTensor(new[] { 1, 1, 0, 1 }), 3),
                (v, s) =>
                {
                    var shape = HostReference.WithExtent(s[0], 1, 3);
                    return (HostReference.IndexAdd(v[0], s[0], 1, [1, 1, 0, 1], new float[HostReference.Numel(shape)], shape), shape);
                }),
            new("softmax [2, 3, 4] axis 1", [new In([2, 3, 4], wide)], xs => xs[0].Softmax(1),
                (v, s) => (HostReference.Softmax(v[0], s[0], 1, false), s[0])),
            new("log_softmax [2, 3, 4] axis 0", [new In([2, 3, 4], wide)], xs => xs[0].LogSoftmax(0),
                (v, s) => (HostReference.Softmax(v[0], s[0], 0, true), s[0])),
            new("softmax of large logits (stability)", [new In([2, 5], Gens.Uniform(80, 120))], xs => xs[0].Softmax(-1),
                (v, s) => (HostReference.Softmax(v[0], s[0], 1, false), s[0])),
            new("cross_entropy [4, 5]", [new In([4, 5], wide)], xs => xs[0].CrossEntropy(new[] { 1, 0, 4, 2 }),
                (v, s) => ([HostReference.CrossEntropy(v[0], [1, 0, 4, 2], 4, 5).Average()], [])),
            new("cross_entropy of large logits (stability)", [new In([3, 4], Gens.Uniform(80, 120))], xs => xs[0].CrossEntropy(new[] { 3, 0, 1 }),
                (v, s) => ([HostReference.CrossEntropy(v[0], [3, 0, 1], 3, 4).Average()], []), Atol: 1e-4),
            new("mse_loss [3, 4]", [new In([3, 4], wide), new In([3, 4], wide)], xs => xs[0].MseLoss(xs[1]),
                (v, s) => ([HostReference.Binary(BinaryOp.Sub, v[0], s[0], v[1], s[1], out _).Average(d => d * d)], [])),
            new("clone", [new In([3, 4], wide)], xs => xs[0].Clone(), (v, s) => (D(v[0]), s[0])),
            new("layer_norm [2, 3, 5]", [new In([2, 3, 5], wide), new In([5], wide), new In([5], wide)], xs => xs[0].LayerNorm(xs[1], xs[2]),
                (v, s) => (HostReference.LayerNorm(v[0], v[1], v[2], 6, 5, 1e-5f).Y, s[0])),
            new("layer_norm cols = 1 gives beta", [new In([4, 1], wide), new In([1], wide), new In([1], wide)], xs => xs[0].LayerNorm(xs[1], xs[2]),
                (v, s) => ([v[2][0], v[2][0], v[2][0], v[2][0]], s[0])),
            new("layer_norm constant rows (variance 0)", [new In([3, 4], (rng, n) => Enumerable.Repeat(0.3f, n).ToArray()), new In([4], wide), new In([4], wide)],
                xs => xs[0].LayerNorm(xs[1], xs[2]),
                (v, s) => (HostReference.LayerNorm(v[0], v[1], v[2], 3, 4, 1e-5f).Y, s[0]), Atol: 1e-4),
        };
        list.AddRange(TensorOpSpecs.ForwardSpecs());
        return list;
    }
}

public abstract partial class AutodiffOpTests
{
    /// <summary>The forward table's names.</summary>
    public static TheoryData<string> ForwardCases => FwdSpecs.Names();

    [Theory]
    [MemberData(nameof(ForwardCases))]
    public void Forward_matches_host_reference(string name)
    {
        var spec = FwdSpecs.ByName[name];
        using var scope = new TensorScope();
        var rng = new Random(4321);
        var hostInputs = spec.Inputs.Select(i => i.Gen(rng, (int)HostReference.Numel(i.Shape))).ToArray();
        var inputs = spec.Inputs.Select((i, k) => Tensor.FromArray(hostInputs[k], i.Shape, Device)).ToArray();
        var y = spec.F(inputs);
        var (expected, expectedShape) = spec.Reference(hostInputs, spec.Inputs.Select(i => i.Shape).ToArray());
        Assert.Equal(expectedShape, y.Shape);
        Assert.Equal(Device, y.Device);
        var actual = y.ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            Assert.True(err <= spec.Atol + spec.Rtol * Math.Abs(expected[i]),
                $"{name} on {Device.Name}: element {i} is {actual[i]:G9}, reference {expected[i]:G9} (|diff| {err:G3}).");
        }
    }
}
