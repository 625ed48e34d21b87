using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// KroneckerLinear, PermutedKroneckerLinear (identity, transpose, random and user permutations) and BlockDiagonal
/// against a dense computation with the materialised weight <see cref="KroneckerLinear.DenseWeight"/>: outputs and
/// the gradients of A, B, bias and x, in double on the host. Run per device by the subclasses.
/// </summary>
public abstract class KroneckerTests
{
    protected abstract Device Device { get; }

    /// <summary>Whether the sizes include ones past the GEMM tiles (CPU) or stay tiny (ILGPU emulator).</summary>
    protected abstract bool Large { get; }

    public enum Perm { Identity, Transpose, Random, User, TransposeSwapped }

    public enum Kind { Kronecker, Permuted, BlockDiagonal }

    private static Permutation MakePerm(Perm kind, int rows, int cols, int seed) => kind switch
    {
        Perm.Identity => Permutation.Identity(rows * cols),
        Perm.Transpose => Permutation.Transpose(rows, cols),
        // The Mixer's token-mixing input: blocks of the transposed [cols, rows] layout (GEMM-transpose fast path).
        Perm.TransposeSwapped => Permutation.Transpose(cols, rows),
        Perm.Random => Permutation.Random(rows * cols, seed),
        _ => Permutation.FromArray(Enumerable.Range(0, rows * cols).Select(i => (i * 7 + 3) % (rows * cols)).ToArray()
            is var a && IsPerm(a) ? a : Enumerable.Range(0, rows * cols).Reverse().ToArray(), rows * cols),
    };

    private static bool IsPerm(int[] a) => a.Distinct().Count() == a.Length;

    private KroneckerLinear Make(Kind kind, int m, int n, int p, int q, Perm pin, Perm pout, bool bias, ulong seed) => kind switch
    {
        Kind.Kronecker => new KroneckerLinear(m, n, p, q, bias, seed, Device),
        Kind.Permuted => new PermutedKroneckerLinear(m, n, p, q, MakePerm(pin, n, q, (int)seed + 1), MakePerm(pout, m, p, (int)seed + 2),
            bias, seed, Device),
        _ => PermutedKroneckerLinear.BlockDiagonal(n, p, q, MakePerm(pin, n, q, (int)seed + 1), MakePerm(pout, n, p, (int)seed + 2),
            bias, seed, Device),
    };

    public static IEnumerable<object[]> Cases(bool large)
    {
        var sizes = new List<(int M, int N, int P, int Q, int Batch)>
        {
            (1, 1, 1, 1, 1), (2, 3, 5, 7, 3), (7, 5, 3, 2, 2), (3, 1, 4, 1, 1), (1, 4, 1, 5, 2),
        };
        if (large)
        {
            sizes.Add((13, 17, 11, 37, 5));
            sizes.Add((41, 9, 35, 10, 3));
        }
        foreach (var (m, n, p, q, batch) in sizes)
        {
            yield return [Kind.Kronecker, m, n, p, q, batch, Perm.Identity, Perm.Identity, true];
            foreach (var pin in new[] { Perm.Identity, Perm.Transpose, Perm.Random, Perm.User })
            foreach (var pout in new[] { Perm.Identity, Perm.Transpose, Perm.Random, Perm.User })
            {
                if (pin == Perm.Identity && pout == Perm.Identity && m > 1) continue;
                yield return [Kind.Permuted, m, n, p, q, batch, pin, pout, (m + (int)pin) % 2 == 0];
                if ((int)pin == (int)pout || pout == Perm.Random)
                    yield return [Kind.BlockDiagonal, m, n, p, q, batch, pin, pout, true];
            }
            // Vec-transposes that Ops.KroneckerMatMul turns into transposed GEMM operands (no gather).
            yield return [Kind.BlockDiagonal, m, n, p, q, batch, Perm.TransposeSwapped, Perm.Identity, true];
            yield return [Kind.BlockDiagonal, m, n, p, q, batch, Perm.Identity, Perm.Transpose, false];
            yield return [Kind.BlockDiagonal, m, n, p, q, batch, Perm.TransposeSwapped, Perm.Transpose, true];
        }
    }

    /// <summary>The permuted cases whose permutations are gathers (not GEMM-absorbable transposes): the ones where the strategy matters.</summary>
    protected static IEnumerable<object[]> FusedSubset(IEnumerable<object[]> cases) =>
        cases.Where(c => (Kind)c[0] != Kind.Kronecker && ((Perm)c[6] is Perm.Random or Perm.User || (Perm)c[7] is Perm.Random or Perm.User));

    protected void CheckAgainstDense(Kind kind, int m, int n, int p, int q, int batch, Perm pin, Perm pout, bool bias,
        PermutationStrategy strategy = PermutationStrategy.GatherPasses)
    {
        using var layer = Make(kind, m, n, p, q, pin, pout, bias, seed: (ulong)(m * 31 + n * 7 + p * 3 + q));
        if (layer is PermutedKroneckerLinear pk0) pk0.Strategy = strategy;
        m = layer.M;
        int inF = layer.InFeatures, outF = layer.OutFeatures;
        var x = Tensor.Normal([batch, inF], 11, device: Device);
        x.RequiresGrad = true;
        var r = Tensor.Normal([batch, outF], 12, device: Device);
        var y = layer.Forward(x);
        Assert.Equal(new[] { batch, outF }, y.Shape);
        (y * r).Sum().Backward();

        var w = layer.DenseWeight();
        var xs = x.ToArray();
        var rs = r.ToArray();
        var bs = layer.Bias?.ToArray();
        // Dense: y = x Wᵀ + b; with dL/dy = R: dx = R W, dW = Rᵀ x, db = Σ_s R.
        var yRef = new double[batch * outF];
        var dx = new double[batch * inF];
        var dW = new double[outF * inF];
        double scale = 0;
        for (int s = 0; s < batch; s++)
            for (int o = 0; o < outF; o++)
            {
                double acc = bs?[o] ?? 0;
                for (int c = 0; c < inF; c++)
                {
                    acc += (double)w[o * inF + c] * xs[s * inF + c];
                    dx[s * inF + c] += (double)rs[s * outF + o] * w[o * inF + c];
                    dW[o * inF + c] += (double)rs[s * outF + o] * xs[s * inF + c];
                }
                yRef[s * outF + o] = acc;
                scale = Math.Max(scale, Math.Abs(acc));
            }
        string what = $"{kind} A {m}x{n} B {p}x{q} batch {batch} J_in {pin} J_out {pout} {strategy}";
        Close(yRef, y.ToArray(), 1e-4 * Math.Sqrt(inF), what + " output");
        Close(dx, x.Grad!.ToArray(), 1e-4 * Math.Sqrt(outF), what + " dx");

        // Factor gradients from dW: undo the permutations, then contract with the other factor.
        var pk = layer as PermutedKroneckerLinear;
        var inIdx = pk?.InputPermutation.Indices;
        var outIdx = pk?.OutputPermutation.Indices;
        var dWBase = new double[outF * inF];
        for (int o = 0; o < outF; o++)
            for (int t = 0; t < inF; t++)
                dWBase[(outIdx?[o] ?? o) * inF + t] = dW[o * inF + (inIdx?[t] ?? t)];
        var aVals = layer.A?.ToArray();
        var bVals = layer.B.ToArray();
        var dA = new double[m * n];
        var dB = new double[p * q];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < p; k++)
                    for (int l = 0; l < q; l++)
                    {
                        double g = dWBase[(i * p + k) * inF + j * q + l];
                        double aij = aVals == null ? (i == j ? 1 : 0) : aVals[i * n + j];
                        dA[i * n + j] += g * bVals[k * q + l];
                        dB[k * q + l] += g * aij;
                    }
        double tol = 1e-4 * Math.Sqrt(batch * inF * outF);
        if (layer.A != null) Close(dA, layer.A.Grad!.ToArray(), tol, what + " dA");
        Close(dB, layer.B.Grad!.ToArray(), tol, what + " dB");
        if (layer.Bias != null)
        {
            var db = new double[outF];
            for (int s = 0; s < batch; s++)
                for (int o = 0; o < outF; o++) db[o] += rs[s * outF + o];
            Close(db, layer.Bias.Grad!.ToArray(), 1e-4 * Math.Sqrt(batch), what + " dbias");
        }
    }

    private static void Close(double[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i]))))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} (tolerance {tol}).");
    }

    protected void GradCheckLayer(Kind kind, PermutationStrategy strategy)
    {
        using var layer = Make(kind, 2, 3, 3, 2, Perm.Random, kind == Kind.Kronecker ? Perm.Identity : Perm.Transpose, true, 5);
        if (layer is PermutedKroneckerLinear pk) pk.Strategy = strategy;
        var x = Tensor.Normal([2, layer.InFeatures], 21, device: Device);
        x.RequiresGrad = true;
        var inputs = layer.Parameters().Prepend(x).ToArray();
        GradCheck.Assert(_ => layer.Forward(x), inputs, maxEntriesPerInput: 24);
    }

    [Theory]
    [InlineData(Kind.Kronecker, PermutationStrategy.GatherPasses)]
    [InlineData(Kind.Permuted, PermutationStrategy.GatherPasses)]
    [InlineData(Kind.BlockDiagonal, PermutationStrategy.GatherPasses)]
    [InlineData(Kind.Permuted, PermutationStrategy.FusedIntoGemm)]
    [InlineData(Kind.BlockDiagonal, PermutationStrategy.FusedIntoGemm)]
    public void GradCheckPasses(Kind kind, PermutationStrategy strategy) => GradCheckLayer(kind, strategy);

    [Fact]
    public void InputWithWrongFeatureCount_NamesOpAndShapes()
    {
        using var layer = new KroneckerLinear(2, 3, 4, 5, device: Device);
        var x = Tensor.Normal([2, 14], 1, device: Device);
        var e = Assert.ThrowsAny<ArgumentException>(() => layer.Forward(x));
        Assert.Contains("kronecker", e.Message);
        Assert.Contains("[2, 14]", e.Message);
        Assert.Contains("15", e.Message);
    }

    [Fact]
    public void FactorNotMatchingN_NamesOpAndShapes()
    {
        var x = Tensor.Normal([2, 12], 1, device: Device);
        var a = Tensor.Normal([2, 4], 2, device: Device);
        var b = Tensor.Normal([5, 4], 3, device: Device);
        var e = Assert.ThrowsAny<ArgumentException>(() => x.KroneckerMatMul(a, b, 3));
        Assert.Contains("kronecker", e.Message);
        Assert.Contains("[2, 4]", e.Message);
    }

    [Theory]
    [InlineData(new[] { 0, 1, 1, 3 }, "twice")]
    [InlineData(new[] { 0, 1, 2, 4 }, "out of range")]
    [InlineData(new[] { -1, 1, 2, 3 }, "out of range")]
    public void IndexNotAPermutation_Throws(int[] idx, string expected)
    {
        var x = Tensor.Normal([2, 4], 1, device: Device);
        var b = Tensor.Normal([2, 2], 3, device: Device);
        var e = Assert.ThrowsAny<ArgumentException>(() => x.KroneckerMatMul(null, b, 2, new IndexTensor(idx)));
        Assert.Contains("kronecker", e.Message);
        Assert.Contains(expected, e.Message);
        var e2 = Assert.ThrowsAny<ArgumentException>(() => x.KroneckerMatMul(null, b, 2, null, new IndexTensor(idx)));
        Assert.Contains("output permutation", e2.Message);
        Assert.ThrowsAny<ArgumentException>(() => Permutation.FromArray(idx, 4));
    }

    [Fact]
    public void PermutationOfWrongLength_Throws()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Permutation.FromArray([0, 1, 2], 4));
        Assert.Contains("expected 4", e.Message);
        var e2 = Assert.ThrowsAny<ArgumentException>(() =>
            new PermutedKroneckerLinear(2, 3, 4, 5, Permutation.Identity(14), Permutation.Identity(8), device: Device));
        Assert.Contains("PermutedKroneckerLinear", e2.Message);
        Assert.Contains("15", e2.Message);
        var x = Tensor.Normal([2, 4], 1, device: Device);
        var b = Tensor.Normal([2, 2], 3, device: Device);
        var e3 = Assert.ThrowsAny<ArgumentException>(() => x.KroneckerMatMul(null, b, 2, new IndexTensor([0, 1, 2])));
        Assert.Contains("kronecker", e3.Message);
        Assert.Contains("3 entries", e3.Message);
    }
}

public sealed class CpuKroneckerTests : KroneckerTests
{
    protected override Device Device => Device.Cpu;
    protected override bool Large => true;

    public static IEnumerable<object[]> CpuCases() => Cases(true);

    [Theory, MemberData(nameof(CpuCases))]
    public void MatchesDense(Kind kind, int m, int n, int p, int q, int batch, Perm pin, Perm pout, bool bias) =>
        CheckAgainstDense(kind, m, n, p, q, batch, pin, pout, bias);

    public static IEnumerable<object[]> FusedCases() => FusedSubset(Cases(true));

    [Theory, MemberData(nameof(FusedCases))]
    public void MatchesDense_FusedIntoGemm(Kind kind, int m, int n, int p, int q, int batch, Perm pin, Perm pout, bool bias) =>
        CheckAgainstDense(kind, m, n, p, q, batch, pin, pout, bias, PermutationStrategy.FusedIntoGemm);
}

[Collection("ilgpu")]
public sealed class IlgpuKroneckerTests : KroneckerTests
{
    protected override Device Device => TestDevices.Ilgpu;
    protected override bool Large => false;

    public static IEnumerable<object[]> IlgpuCases() => Cases(false).Where((_, i) => i % 3 == 0);

    [Theory, MemberData(nameof(IlgpuCases))]
    public void MatchesDense(Kind kind, int m, int n, int p, int q, int batch, Perm pin, Perm pout, bool bias) =>
        CheckAgainstDense(kind, m, n, p, q, batch, pin, pout, bias);

    public static IEnumerable<object[]> FusedCases() => FusedSubset(Cases(false)).Where((_, i) => i % 3 == 0);

    [Theory, MemberData(nameof(FusedCases))]
    public void MatchesDense_FusedIntoGemm(Kind kind, int m, int n, int p, int q, int batch, Perm pin, Perm pout, bool bias) =>
        CheckAgainstDense(kind, m, n, p, q, batch, pin, pout, bias, PermutationStrategy.FusedIntoGemm);
}
