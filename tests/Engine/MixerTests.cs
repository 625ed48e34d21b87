using System.Diagnostics;
using Engine.Autodiff;
using Engine.Data;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Tests.EngineTests;

/// <summary>
/// MixerBlock and Mixer: the PK-layer block against the textbook Mixer (reshape, transpose, matrix products), against
/// the dense wide MLP it stands for, gradient checks, parameter counts, input errors and a short optdigits run.
/// </summary>
public class MixerTests
{
    private static readonly Device Cpu = Device.Cpu;

    /// <summary>The textbook block: LN, transpose, per-channel MLP, transpose back, residual; LN, per-token MLP, residual.</summary>
    private static Tensor TextbookBlock(MixerBlock blk, Tensor x)
    {
        int b = x.Shape[0], s = blk.Tokens, c = blk.Channels, ht = blk.TokenHidden, hc = blk.ChannelHidden;
        var u = x.Reshape(b, s, c).LayerNorm(blk.Norm1.Gamma, blk.Norm1.Beta, blk.Norm1.Eps);
        var ut = u.Transpose(1, 2).Reshape(b * c, s);                                       // [B·C, S]
        var h = ut.MatMul(blk.Token1.B, transB: true).Reshape(b, c * ht) + blk.Token1.Bias!; // [B, C·Ht]
        h = h.Gelu().Reshape(b * c, ht).MatMul(blk.Token2.B, transB: true);                  // [B·C, S]
        var back = h.Reshape(b, c, s).Transpose(1, 2).Reshape(b, s * c) + blk.Token2.Bias!;  // [B, S·C]
        var x1 = x + back;
        var v = x1.Reshape(b, s, c).LayerNorm(blk.Norm2.Gamma, blk.Norm2.Beta, blk.Norm2.Eps).Reshape(b * s, c);
        var g = v.MatMul(blk.Channel1.B, transB: true).Reshape(b, s * hc) + blk.Channel1.Bias!;
        g = g.Gelu().Reshape(b * s, hc).MatMul(blk.Channel2.B, transB: true).Reshape(b, s * c) + blk.Channel2.Bias!;
        return x1 + g;
    }

    /// <summary>The block as a dense MLP of width S·C with each PK layer's equivalent dense weight.</summary>
    private static Tensor DenseBlock(MixerBlock blk, Tensor x)
    {
        int b = x.Shape[0], s = blk.Tokens, c = blk.Channels;
        Tensor Dense(KroneckerLinear l, Tensor v) =>
            v.MatMul(Tensor.FromArray(l.DenseWeight(), [l.OutFeatures, l.InFeatures], Cpu), transB: true) + l.Bias!;
        var u = x.Reshape(b, s, c).LayerNorm(blk.Norm1.Gamma, blk.Norm1.Beta).Reshape(b, s * c);
        var x1 = x + Dense(blk.Token2, Dense(blk.Token1, u).Gelu());
        var v = x1.Reshape(b, s, c).LayerNorm(blk.Norm2.Gamma, blk.Norm2.Beta).Reshape(b, s * c);
        return x1 + Dense(blk.Channel2, Dense(blk.Channel1, v).Gelu());
    }

    private static void AssertClose(float[] expected, float[] actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= tol * (1 + MathF.Abs(expected[i])),
                $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [InlineData(3, 4, 5, 6, 7)]
    [InlineData(2, 1, 3, 2, 5)]
    [InlineData(1, 7, 2, 3, 1)]
    public void BlockEqualsTextbookMixerInOutputAndGradients(int batch, int s, int c, int ht, int hc)
    {
        using var blk = new MixerBlock(s, c, ht, hc, seed: 3, device: Cpu);
        // Non-trivial LayerNorm parameters so their gradients are exercised too.
        blk.Norm1.Gamma.CopyFrom(Enumerable.Range(0, c).Select(i => 1f + 0.1f * i).ToArray());
        blk.Norm2.Beta.CopyFrom(Enumerable.Range(0, c).Select(i => 0.05f * i).ToArray());
        var x = Tensor.Normal([batch, s * c], 7, device: Cpu);
        x.RequiresGrad = true;
        var w = Tensor.Normal([batch, s * c], 8, device: Cpu);
        var ps = blk.Parameters().Prepend(x).ToArray();

        var y = blk.Forward(x);
        Ops.Sum(y * w).Backward();
        var yOurs = y.ToArray();
        var gOurs = ps.Select(p => p.Grad!.ToArray()).ToArray();
        foreach (var p in ps) p.ZeroGrad();

        var yRef = TextbookBlock(blk, x);
        Ops.Sum(yRef * w).Backward();
        AssertClose(yRef.ToArray(), yOurs, 1e-4f, "output");
        for (int i = 0; i < ps.Length; i++)
            AssertClose(ps[i].Grad!.ToArray(), gOurs[i], 1e-4f, i == 0 ? "dx" : "d" + blk.NamedParameters()[i - 1].Name);
    }

    /// <summary>The textbook block with the textbook's tied biases: one per hidden unit (token or channel), shared across the other axis.</summary>
    private static Tensor TextbookBlockTied(MixerBlock blk, Tensor x)
    {
        int b = x.Shape[0], s = blk.Tokens, c = blk.Channels, ht = blk.TokenHidden, hc = blk.ChannelHidden;
        var ut = x.Reshape(b, s, c).LayerNorm(blk.Norm1.Gamma, blk.Norm1.Beta, blk.Norm1.Eps).Transpose(1, 2).Reshape(b * c, s);
        var h = (ut.MatMul(blk.Token1.B, transB: true) + blk.Token1.Bias!).Gelu();                  // [B·C, Ht] + [Ht]
        var t = h.MatMul(blk.Token2.B, transB: true) + blk.Token2.Bias!;                             // [B·C, S] + [S]
        var x1 = x + t.Reshape(b, c, s).Transpose(1, 2).Reshape(b, s * c);
        var v = x1.Reshape(b, s, c).LayerNorm(blk.Norm2.Gamma, blk.Norm2.Beta, blk.Norm2.Eps).Reshape(b * s, c);
        var g = (v.MatMul(blk.Channel1.B, transB: true) + blk.Channel1.Bias!).Gelu();                // [B·S, Hc] + [Hc]
        g = g.MatMul(blk.Channel2.B, transB: true) + blk.Channel2.Bias!;                             // [B·S, C] + [C]
        return x1 + g.Reshape(b, s * c);
    }

    [Theory]
    [InlineData(2, 4, 5, 6, 7)]
    [InlineData(3, 1, 3, 2, 5)]
    public void TiedBiasBlockEqualsTheTextbookMixerInOutputAndGradients(int batch, int s, int c, int ht, int hc)
    {
        using var blk = new MixerBlock(s, c, ht, hc, seed: 5, device: Cpu, tiedBiases: true);
        Assert.Equal([ht], blk.Token1.Bias!.Shape);
        Assert.Equal([s], blk.Token2.Bias!.Shape);
        Assert.Equal([hc], blk.Channel1.Bias!.Shape);
        Assert.Equal([c], blk.Channel2.Bias!.Shape);
        Assert.Equal(MixerBlock.CountParameters(s, c, ht, hc, tiedBiases: true), blk.ParameterCount);
        var x = Tensor.Normal([batch, s * c], 17, device: Cpu);
        x.RequiresGrad = true;
        var w = Tensor.Normal([batch, s * c], 18, device: Cpu);
        var ps = blk.Parameters().Prepend(x).ToArray();
        var y = blk.Forward(x);
        Ops.Sum(y * w).Backward();
        var yOurs = y.ToArray();
        var gOurs = ps.Select(p => p.Grad!.ToArray()).ToArray();
        foreach (var p in ps) p.ZeroGrad();
        var yRef = TextbookBlockTied(blk, x);
        Ops.Sum(yRef * w).Backward();
        AssertClose(yRef.ToArray(), yOurs, 1e-4f, "output");
        for (int i = 0; i < ps.Length; i++)
            AssertClose(ps[i].Grad!.ToArray(), gOurs[i], 1e-4f, i == 0 ? "dx" : "d" + blk.NamedParameters()[i - 1].Name);
    }

    [Fact]
    public void TiedBiasOfAPermutedLayerFollowsTheOutputPermutation()
    {
        // y = J_out ((I_n ⊗ W) J_in x + 1_n ⊗ b): output r reads bias entry J_out[r] mod p, for a random J_out too.
        int n = 3, p = 4, q = 2;
        var jIn = Permutation.Random(n * q, 5);
        var jOut = Permutation.Random(n * p, 6);
        using var layer = PermutedKroneckerLinear.BlockDiagonal(n, p, q, jIn, jOut, seed: 2, device: Cpu, tiedBias: true);
        Assert.True(layer.TiedBias);
        var x = Tensor.Normal([2, n * q], 3, device: Cpu);
        var dense = x.MatMul(Tensor.FromArray(layer.DenseWeight(), [n * p, n * q], Cpu), transB: true).ToArray();
        var bias = layer.Bias!.ToArray();
        var expected = dense.Select((v, i) => v + bias[jOut.Indices[i % (n * p)] % p]).ToArray();
        AssertClose(expected, layer.Forward(x).ToArray(), 1e-5f, "output");
    }

    [Theory]
    [InlineData(28, 7, 12, 2, 16, 24)]
    [InlineData(8, 2, 5, 1, 16, 10)]
    public void WeightCountLeavesOutBiasesAndLayerNorms(int image, int patch, int c, int n, int ht, int hc)
    {
        using var m = new Mixer(image, patch, c, n, ht, hc, seed: 1, device: Cpu, tiedBiases: true);
        long weights = m.NamedParameters().Where(np => !np.Name.EndsWith("bias") && !np.Name.Contains("norm"))
            .Sum(np => (long)np.Value.Size);
        Assert.Equal(weights, Mixer.CountWeights(image, patch, c, n, ht, hc));
        Assert.Equal(Mixer.CountParameters(image, patch, c, n, ht, hc, tiedBiases: true), m.ParameterCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BlockEqualsDenseWideMlp(bool random)
    {
        using var blk = new MixerBlock(4, 3, 5, 6, random, seed: 9, device: Cpu);
        var x = Tensor.Normal([3, 12], 11, device: Cpu);
        AssertClose(DenseBlock(blk, x).ToArray(), blk.Forward(x).ToArray(), 1e-4f, "output");
        // Each token-mixing weight has 1/C non-zeros, each channel-mixing weight 1/S.
        Assert.Equal(3 * 5 * 4, blk.Token1.DenseWeight().Count(v => v != 0));
        Assert.Equal(4 * 6 * 3, blk.Channel1.DenseWeight().Count(v => v != 0));
    }

    [Fact]
    public void RandomPermutedBlockDiffersFromMixerButSharesShapes()
    {
        using var a = new MixerBlock(4, 3, 5, 6, false, seed: 2, device: Cpu);
        using var b = new MixerBlock(4, 3, 5, 6, true, seed: 2, device: Cpu);
        Assert.Equal("transpose", a.Token1.InputPermutation.Kind);
        Assert.Equal("random", b.Token1.InputPermutation.Kind);
        Assert.Equal("random", b.Token2.OutputPermutation.Kind);
        var x = Tensor.Normal([2, 12], 1, device: Cpu);
        Assert.NotEqual(a.Forward(x).ToArray(), b.Forward(x).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BlockGradCheck(bool random)
    {
        using var blk = new MixerBlock(3, 2, 4, 3, random, seed: 5, device: Cpu);
        var x = Tensor.Normal([2, 6], 4, device: Cpu);
        x.RequiresGrad = true;
        var inputs = blk.Parameters().Prepend(x).ToArray();
        GradCheck.Assert(_ => blk.Forward(x), inputs, eps: 1e-2, atol: 2e-3, rtol: 2e-2, maxEntriesPerInput: 24);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TinyMixerGradCheck(bool random)
    {
        using var m = new Mixer(4, 2, 3, 2, 3, 4, classes: 3, randomPermutations: random, seed: 1, device: Cpu);
        var x = Tensor.Normal([3, 16], 6, device: Cpu);
        x.RequiresGrad = true;
        var inputs = m.Parameters().Prepend(x).ToArray();
        GradCheck.Assert(_ => Losses.CrossEntropy(m.Forward(x), [0, 2, 1]), inputs, eps: 1e-2, atol: 2e-3, rtol: 2e-2,
            maxEntriesPerInput: 16);
    }

    [Theory]
    [InlineData(8, 2, 16, 2, 8, 32)]
    [InlineData(8, 4, 24, 3, 4, 48)]
    [InlineData(8, 1, 8, 1, 32, 16)]
    [InlineData(8, 8, 5, 1, 2, 7)]
    public void RandomPermutedMixerHasTheSameParameterCount(int image, int patch, int c, int n, int ht, int hc)
    {
        using var a = new Mixer(image, patch, c, n, ht, hc, randomPermutations: false, seed: 4, device: Cpu);
        using var b = new Mixer(image, patch, c, n, ht, hc, randomPermutations: true, seed: 4, device: Cpu);
        Assert.Equal(a.ParameterCount, b.ParameterCount);
        Assert.Equal(Mixer.CountParameters(image, patch, c, n, ht, hc), a.ParameterCount);
        Assert.Equal(a.ParameterCount, a.LayerInfos().Sum(l => l.Parameters) + 2L * c * n * 2 + 2L * c);
        int s = (image / patch) * (image / patch);
        Assert.Equal(s * c, a.EffectiveWidth);
        Assert.All(a.LayerInfos().Where(l => l.Name.Contains("token2") || l.Name.Contains("channel2")),
            l => Assert.Equal(s * c, l.EffectiveWidth));
    }

    [Fact]
    public void PatchesAreTheGridOfSquares()
    {
        using var m = new Mixer(4, 2, 1, 0, 1, 1, classes: 2, device: Cpu);
        var img = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (float)i).ToArray(), [1, 16], Cpu);
        // 4x4 image 0..15, row-major; patch (0,1) holds pixels 2,3,6,7.
        Assert.Equal(new float[] { 0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15 }, m.Patches(img).ToArray());
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        using var m = new Mixer(8, 2, 4, 1, 4, 4, device: Cpu);
        var e = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros([2, 63], Cpu)));
        Assert.Contains("[B, 64]", e.Message);
        Assert.Contains("[2, 63]", e.Message);
        using var blk = new MixerBlock(4, 3, 2, 2, device: Cpu);
        e = Assert.Throws<ArgumentException>(() => blk.Forward(Tensor.Zeros([2, 13], Cpu)));
        Assert.Contains("4·3 = 12", e.Message);
        Assert.Contains("[2, 13]", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Mixer(8, 3, 4, 1, 4, 4, device: Cpu));
        Assert.Contains("patch size 3", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MixerBlock(4, 0, 2, 2, device: Cpu));
    }

    /// <summary>4 tokens (4x4 patches) x 32 channels, 1 block, 4 epochs of Adam: at least 80% test accuracy (chance 10%).</summary>
    [Fact]
    public void ShortTrainingRunOnOptdigitsBeatsEightyPercent()
    {
        var folder = Optdigits.Locate();
        var (train, test) = Samples.MlpTask.Standardize(Optdigits.Load(Path.Combine(folder, "optdigits.tra")),
            Optdigits.Load(Path.Combine(folder, "optdigits.tes")));
        using var m = new Mixer(8, 4, 32, 1, 8, 64, seed: 1, device: Cpu);
        using var opt = new Adam(m.Parameters(), 3e-3f);
        var loader = new DataLoader(train, 64, shuffle: true, seed: 1, device: Cpu);
        var sw = Stopwatch.StartNew();
        for (int epoch = 0; epoch < 4; epoch++)
            foreach (var batch in loader.NextEpoch())
            {
                using var scope = new TensorScope();
                using (batch)
                {
                    opt.ZeroGrad();
                    Losses.CrossEntropy(m.Forward(batch.X), batch.LabelIndex!).Backward();
                    opt.Step();
                }
            }
        var (_, acc) = Evaluation.Classify(m, test, device: Cpu);
        Assert.True(acc >= 0.80, $"test accuracy {acc:P2} < 80% after {sw.Elapsed.TotalSeconds:F1} s");
    }
}
