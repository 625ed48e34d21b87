using Engine.Autodiff;

namespace Engine.Tests.Autodiff;

/// <summary>
/// A forward-value case: the op on device tensors against a plain double-precision host reference. Tolerance (llm.c
/// style): |device - reference| ≤ Atol + Rtol·|reference|.
/// </summary>
public sealed record FwdSpec(string Name, In[] Inputs, Func<Tensor[], Tensor> F,
    Func<double[][], int[][], (double[] Values, int[] Shape)> Reference, double Atol = 1e-5, double Rtol = 1e-4)
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
    public static TheoryData<string> Names()
    {
        var d = new TheoryData<string>();
        foreach (var s in All) d.Add(s.Name);
        return d;
    }

    private static FwdSpec Map(string name, Func<Tensor, Tensor> f, Func<double, double> reference, Gen gen, int[]? shape = null) =>
        new(name, [new In(shape ?? [3, 5], gen)], xs => f(xs[0]), (v, s) => (HostRef.Map(v[0], reference), s[0]));

    private static FwdSpec Bin(string name, int[] sa, int[] sb, Func<Tensor, Tensor, Tensor> f, Func<double, double, double> reference, Gen ga, Gen gb) =>
        new($"{name} {Shape.Format(sa)},{Shape.Format(sb)}", [new In(sa, ga), new In(sb, gb)], xs => f(xs[0], xs[1]),
            (v, s) => HostRef.Binary(v[0], s[0], v[1], s[1], reference));

    private static FwdSpec MatMul(int[] sa, int[] sb, bool ta, bool tb) =>
        new($"matmul {Shape.Format(sa)}{(ta ? "ᵀ" : "")}x{Shape.Format(sb)}{(tb ? "ᵀ" : "")}",
            [new In(sa, Gens.Normal()), new In(sb, Gens.Normal())], xs => Ops.MatMul(xs[0], xs[1], ta, tb),
            (v, s) => HostRef.MatMul(v[0], s[0], v[1], s[1], ta, tb));

    private static IReadOnlyList<FwdSpec> Build()
    {
        var wide = Gens.Normal(3);
        var list = new List<FwdSpec>
        {
            Map("neg", x => x.Neg(), x => -x, wide),
            Map("exp", x => x.Exp(), Math.Exp, wide),
            Map("log", x => x.Log(), Math.Log, Gens.Uniform(0.01, 50)),
            Map("sqrt", x => x.Sqrt(), Math.Sqrt, Gens.Uniform(0, 50)),
            Map("relu", x => x.Relu(), x => Math.Max(x, 0), wide),
            Map("gelu_tanh", x => x.GeluTanh(), HostRef.GeluTanh, wide),
            Map("gelu_erf", x => x.GeluErf(), HostRef.GeluErf, wide),
            Map("tanh", x => x.Tanh(), Math.Tanh, wide),
            Map("sigmoid", x => x.Sigmoid(), HostRef.Sigmoid, Gens.Normal(6)),
            Map("erf", x => x.Erf(), HostRef.Erf, wide),
            Map("abs", x => x.Abs(), Math.Abs, wide),
            Map("sign", x => x.Sign(), x => Math.Sign(x), wide),
            Map("step", x => x.Step(), x => x > 0 ? 1 : 0, wide),
            Map("square", x => x.Square(), x => x * x, wide),
            Map("reciprocal", x => x.Reciprocal(), x => 1 / x, Gens.AwayFromZero(0.1, 5)),
            Map("affine", x => x.Affine(-1.5f, 0.25f), x => -1.5 * x + 0.25, wide),
            Map("pow x^2.5", x => x.Pow(2.5f), x => Math.Pow(x, 2.5), Gens.Uniform(0.1, 3)),
            Map("x / 4", x => x / 4f, x => x / 4, wide),
            Map("2 - x", x => 2f - x, x => 2 - x, wide),
            Map("exp on [2, 3, 17] (odd length, SIMD tail)", x => x.Exp(), Math.Exp, wide, [2, 3, 17]),

            Bin("add", [3, 4], [4], (a, b) => a + b, (a, b) => a + b, wide, wide),
            Bin("sub", [4], [3, 4], (a, b) => a - b, (a, b) => a - b, wide, wide),
            Bin("mul", [2, 1, 3], [4, 1], (a, b) => a * b, (a, b) => a * b, wide, wide),
            Bin("div", [5, 1], [1, 7], (a, b) => a / b, (a, b) => a / b, wide, Gens.AwayFromZero(0.3, 3)),
            Bin("add", [], [5], (a, b) => a + b, (a, b) => a + b, wide, wide),
            Bin("maximum", [2, 1, 3], [4, 1], Ops.Maximum, Math.Max, wide, wide),
            Bin("minimum", [3, 4], [3, 4], Ops.Minimum, Math.Min, wide, wide),
            Bin("pow", [3, 4], [4], Ops.Pow, Math.Pow, Gens.Uniform(0.1, 3), Gens.Uniform(-2, 2)),
            Bin("equal", [3, 4], [4], Ops.Equal, (a, b) => a == b ? 1 : 0, Gens.Grid(1, 0), Gens.Grid(1, 0)),
            Bin("greater", [3, 4], [4], Ops.Greater, (a, b) => a > b ? 1 : 0, Gens.Grid(1, 0), Gens.Grid(1, 0)),

            new("broadcast_to [3, 1]->[2, 3, 4]", [new In([3, 1], wide)], xs => xs[0].BroadcastTo([2, 3, 4]),
                (v, s) => (HostRef.BroadcastTo(v[0], s[0], [2, 3, 4]), [2, 3, 4])),

            new("sum [2, 3, 4] axes [0, 2]", [new In([2, 3, 4], wide)], xs => xs[0].Sum([0, 2]),
                (v, s) => HostRef.Reduce(v[0], s[0], [0, 2], false, g => g.Sum())),
            new("sum [2, 3, 4] all keepDim", [new In([2, 3, 4], wide)], xs => xs[0].Sum(null, keepDim: true),
                (v, s) => HostRef.Reduce(v[0], s[0], null, true, g => g.Sum())),
            new("mean [2, 3, 4] axis 1 keepDim", [new In([2, 3, 4], wide)], xs => xs[0].Mean(1, keepDim: true),
                (v, s) => HostRef.Reduce(v[0], s[0], [1], true, g => g.Average())),
            new("max [2, 3, 4] axis -1", [new In([2, 3, 4], wide)], xs => xs[0].Max(-1),
                (v, s) => HostRef.Reduce(v[0], s[0], [-1], false, g => g.Max())),
            new("max [2, 3, 4] axes [0, 1]", [new In([2, 3, 4], wide)], xs => xs[0].Max([0, 1]),
                (v, s) => HostRef.Reduce(v[0], s[0], [0, 1], false, g => g.Max())),
            new("max of all-negative values", [new In([3, 5], Gens.Uniform(-9, -1))], xs => xs[0].Max(),
                (v, s) => HostRef.Reduce(v[0], s[0], null, false, g => g.Max())),

            MatMul([7, 5], [5, 3], false, false),
            MatMul([5, 7], [3, 5], true, true),
            MatMul([5, 7], [5, 3], true, false),
            MatMul([7, 5], [3, 5], false, true),
            MatMul([1, 3], [3, 1], false, false),
            MatMul([2, 7, 5], [5, 3], false, false),
            MatMul([7, 5], [2, 5, 3], false, false),
            MatMul([2, 5, 7], [2, 3, 5], true, true),

            new("permute [2, 3, 4] by [2, 0, 1]", [new In([2, 3, 4], wide)], xs => xs[0].Permute(2, 0, 1),
                (v, s) => HostRef.Permute(v[0], s[0], [2, 0, 1])),
            new("transpose [3, 5]", [new In([3, 5], wide)], xs => xs[0].Transpose(),
                (v, s) => HostRef.Permute(v[0], s[0], [1, 0])),
            new("reshape [2, 3, 4]->[4, -1]", [new In([2, 3, 4], wide)], xs => xs[0].Reshape(4, -1),
                (v, s) => (v[0], [4, 6])),
            new("index_select [3, 5] axis 1 repeated", [new In([3, 5], wide)], xs => xs[0].IndexSelect(1, new IndexTensor(new[] { 4, 0, 0, 2 })),
                (v, s) => HostRef.IndexSelect(v[0], s[0], 1, [4, 0, 0, 2])),
            new("index_add [2, 4, 3] axis 1 repeated", [new In([2, 4, 3], wide)], xs => xs[0].IndexAdd(1, new IndexTensor(new[] { 1, 1, 0, 1 }), 3),
                (v, s) => HostRef.IndexAdd(v[0], s[0], 1, [1, 1, 0, 1], 3)),
            new("softmax [2, 3, 4] axis 1", [new In([2, 3, 4], wide)], xs => xs[0].Softmax(1),
                (v, s) => (HostRef.Softmax(v[0], s[0], 1, false), s[0])),
            new("log_softmax [2, 3, 4] axis 0", [new In([2, 3, 4], wide)], xs => xs[0].LogSoftmax(0),
                (v, s) => (HostRef.Softmax(v[0], s[0], 0, true), s[0])),
            new("softmax of large logits (stability)", [new In([2, 5], Gens.Uniform(80, 120))], xs => xs[0].Softmax(-1),
                (v, s) => (HostRef.Softmax(v[0], s[0], 1, false), s[0])),
            new("cross_entropy [4, 5]", [new In([4, 5], wide)], xs => xs[0].CrossEntropy(new[] { 1, 0, 4, 2 }),
                (v, s) =>
                {
                    var ls = HostRef.Softmax(v[0], s[0], 1, true);
                    int[] labels = [1, 0, 4, 2];
                    return ([-labels.Select((c, r) => ls[r * 5 + c]).Average()], []);
                }),
            new("cross_entropy of large logits (stability)", [new In([3, 4], Gens.Uniform(80, 120))], xs => xs[0].CrossEntropy(new[] { 3, 0, 1 }),
                (v, s) =>
                {
                    var ls = HostRef.Softmax(v[0], s[0], 1, true);
                    int[] labels = [3, 0, 1];
                    return ([-labels.Select((c, r) => ls[r * 4 + c]).Average()], []);
                }, Atol: 1e-4),
            new("mse_loss [3, 4]", [new In([3, 4], wide), new In([3, 4], wide)], xs => xs[0].MseLoss(xs[1]),
                (v, s) => ([v[0].Zip(v[1], (a, b) => (a - b) * (a - b)).Average()], [])),
            new("clone", [new In([3, 4], wide)], xs => xs[0].Clone(), (v, s) => (v[0], s[0])),
        };
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
        var hostInputs = spec.Inputs.Select(i => i.Gen(rng, (int)HostRef.Size(i.Shape))).ToArray();
        var inputs = spec.Inputs.Select((i, k) => Tensor.FromArray(hostInputs[k], i.Shape, Device)).ToArray();
        var y = spec.F(inputs);
        var (expected, expectedShape) = spec.Reference(
            hostInputs.Select(a => a.Select(v => (double)v).ToArray()).ToArray(),
            spec.Inputs.Select(i => i.Shape).ToArray());
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
