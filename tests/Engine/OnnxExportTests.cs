using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Onnx;
using Engine.Optim;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = Engine.Autodiff.Tensor;

namespace Engine.Tests.EngineTests;

/// <summary>Exported models run in ONNX Runtime and match our forward pass.</summary>
public class OnnxExportTests
{
    private static readonly Device Cpu = Device.Cpu;

    /// <summary>A few Adam steps on random targets, so the exported weights are not the initial ones.</summary>
    private static void Train(Module m, int inputs, int outputs, ulong seed)
    {
        using var opt = new Adam(m.Parameters(), 1e-2f);
        for (int i = 0; i < 3; i++)
        {
            opt.ZeroGrad();
            using var x = Tensor.Normal([8, inputs], seed + (ulong)i, device: Cpu);
            using var t = Tensor.Normal([8, outputs], seed + 100 + (ulong)i, device: Cpu);
            var loss = (m.Forward(x) - t).Square().Mean();
            loss.Backward();
            opt.Step();
        }
    }

    private static float[] RunOrt(byte[] model, float[] input, int[] shape)
    {
        using var session = new InferenceSession(model);
        var tensor = new DenseTensor<float>(input, shape);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", tensor)]);
        return results.Single(r => r.Name == "output").AsTensor<float>().ToArray();
    }

    /// <summary>Each element within 1e-4 relative to the larger of its own size and the output's RMS.</summary>
    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double rms = Math.Sqrt(expected.Average(v => (double)v * v));
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = 1e-4 * Math.Max(Math.Abs(expected[i]), rms);
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol,
                $"element {i}: ours {expected[i]}, ONNX Runtime {actual[i]} (tolerance {tol:G3})");
        }
    }

    private static byte[] CheckAgainstOrt(Module m, int features, int opset, params int[] batches)
    {
        var bytes = OnnxExporter.Export(m, [-1, features], new OnnxExportOptions { Opset = opset });
        foreach (var batch in batches)
        {
            using var x = Tensor.Normal([batch, features], (ulong)(batch * 31 + opset), device: Cpu);
            float[] ours;
            using (GradMode.NoGrad()) ours = m.Forward(x).ToArray();
            AssertClose(ours, RunOrt(bytes, x.ToArray(), [batch, features]));
        }
        return bytes;
    }

    [Theory]
    [InlineData(17)]
    [InlineData(20)]
    public void TrainedMlpMatchesOnnxRuntime(int opset)
    {
        using var m = new Sequential(
            new Linear(20, 32, seed: 1, device: Cpu), new ReLU(),
            new Linear(32, 24, seed: 2, device: Cpu), new GELU(),
            new Linear(24, 16, seed: 3, device: Cpu), new Tanh(),
            new Linear(16, 12, seed: 4, device: Cpu), new GELU(approximate: true),
            new Linear(12, 8, seed: 5, device: Cpu), new Sigmoid(),
            new Linear(8, 5, bias: false, seed: 6, device: Cpu), new Softmax());
        Train(m, 20, 5, 10);
        CheckAgainstOrt(m, 20, opset, 1, 7);
    }

    [Theory]
    [InlineData(false, 2, 17)]
    [InlineData(true, 2, 17)]
    [InlineData(true, 4, 18)]
    [InlineData(false, 8, 20)]
    public void TrainedMixerMatchesOnnxRuntime(bool randomPermutations, int patch, int opset)
    {
        using var m = new Mixer(8, patch, 6, 2, 5, 10, 10, randomPermutations, seed: 3, device: Cpu);
        Train(m, 64, 10, 20);
        var bytes = CheckAgainstOrt(m, 64, opset, 1, 5);
        // Random permutations need Gather; the textbook Mixer's transposes are exported as Transpose (op_type strings
        // appear verbatim in the protobuf bytes).
        Assert.Equal(randomPermutations, System.Text.Encoding.ASCII.GetString(bytes).Contains("Gather", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TrainedMixerWithTiedBiasesMatchesOnnxRuntime(bool randomPermutations)
    {
        using var m = new Mixer(8, 2, 6, 2, 5, 10, 10, randomPermutations, seed: 4, device: Cpu, tiedBiases: true);
        Train(m, 64, 10, 20);
        CheckAgainstOrt(m, 64, 17, 1, 5);
    }

    [Fact]
    public void GeneralKroneckerWithPermutationsMatchesOnnxRuntime()
    {
        using var m = new Sequential(
            new KroneckerLinear(3, 4, 2, 5, seed: 1, device: Cpu), new ReLU(),
            new PermutedKroneckerLinear(2, 3, 4, 2, Permutation.Random(6, 1), Permutation.Random(8, 2), seed: 2, device: Cpu));
        Train(m, 20, 8, 30);
        CheckAgainstOrt(m, 20, 17, 3);
    }

    [Theory]
    [InlineData(64, 8, 16, 2, SpectralInit.He, 17)]
    [InlineData(64, 8, 16, 2, SpectralInit.ScaledUniform, 20)]
    [InlineData(37, 19, 6, 3, SpectralInit.HeGaussian, 18)] // odd n, every mode (n/2 + 1) kept
    public void TrainedFno1dMatchesOnnxRuntime(int n, int modes, int width, int blocks, SpectralInit init, int opset)
    {
        using var m = new Fno1d(modes, width, blocks, projectionHidden: 32, init: init, seed: 5, device: Cpu);
        Train(m, n, n, 40);
        var bytes = CheckAgainstOrt(m, n, opset, 1, 5);
        // Portable form: the spectral convolution is MatMuls with constant DFT matrices, no DFT op.
        Assert.DoesNotContain("DFT", System.Text.Encoding.ASCII.GetString(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void TrainedReluFno1dWithTheEdgeOfChaosInitMatchesOnnxRuntime()
    {
        using var m = new Fno1d(8, 16, 3, projectionHidden: 32, init: SpectralInit.EdgeOfChaos, seed: 6, device: Cpu, activation: FnoActivation.Relu);
        Train(m, 64, 64, 40);
        var bytes = CheckAgainstOrt(m, 64, 17, 1, 4);
        Assert.Contains("Relu", System.Text.Encoding.ASCII.GetString(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void Fno1dExportRejectsTooFewPoints()
    {
        using var m = new Fno1d(8, 4, 1, projectionHidden: 4, device: Cpu);
        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(m, [-1, 12]));
        Assert.Contains("n/2 + 1 = 7", e.Message);
    }

    /// <summary>A model on inputs [batch, ..sample]: exported, run in ONNX Runtime at two batch sizes, matched with ours.</summary>
    private static byte[] CheckShapedAgainstOrt(Module m, int[] sample, int opset, Func<int, Tensor>? makeInput = null)
    {
        var bytes = OnnxExporter.Export(m, [-1, .. sample], new OnnxExportOptions { Opset = opset });
        m.Eval();
        foreach (var batch in new[] { 1, 5 })
        {
            using var x = makeInput?.Invoke(batch) ?? Tensor.Normal([batch, .. sample], (ulong)(batch * 17 + opset), device: Cpu);
            float[] ours;
            using (GradMode.NoGrad()) ours = m.Forward(x).ToArray();
            AssertClose(ours, RunOrt(bytes, x.ToArray(), [batch, .. sample]));
        }
        return bytes;
    }

    [Theory]
    [InlineData(17)]
    [InlineData(20)]
    public void ConvolutionsDropoutAndEmbeddingMatchOnnxRuntime(int opset)
    {
        using var conv = new Sequential(
            new Conv2d(3, 4, (3, 2), stride: (2, 1), padding: 1, seed: 1, device: Cpu), new ReLU(), new Dropout(0.3f),
            new Conv2d(4, 6, 3, padding: 2, dilation: 2, groups: 2, seed: 2, device: Cpu), new Flatten(), new Linear(6 * 4 * 6, 3, seed: 7, device: Cpu));
        CheckShapedAgainstOrt(conv, [3, 7, 5], opset);
        using var conv1 = new Sequential(new Conv1d(2, 3, 3, stride: 2, padding: 1, seed: 3, device: Cpu), new GELU(),
            new Conv1d(3, 3, 2, groups: 3, bias: false, seed: 4, device: Cpu));
        CheckShapedAgainstOrt(conv1, [2, 9], opset);
        using var emb = new Sequential(new Embedding(7, 4, seed: 5, device: Cpu), new Linear(4, 2, seed: 6, device: Cpu));
        CheckShapedAgainstOrt(emb, [3], opset, batch => Tensor.FromArray(Enumerable.Range(0, batch * 3).Select(i => (float)(i * 5 % 7)).ToArray(), [batch, 3], Cpu));
    }

    [Theory]
    [InlineData(false, 17)]
    [InlineData(true, 18)]
    public void NonSquareMultichannelMixerMatchesOnnxRuntime(bool randomPermutations, int opset)
    {
        using var m = new Mixer((4, 6), (2, 3), 6, 2, 5, 7, 10, randomPermutations, seed: 3, device: Cpu, inputChannels: 2);
        CheckShapedAgainstOrt(m, [2, 4, 6], opset);
        CheckShapedAgainstOrt(m, [48], opset);
        using var block = new MixerBlock(3, 4, 5, 6, randomPermutations, seed: 2, device: Cpu);
        CheckShapedAgainstOrt(block, [3, 4], opset);
    }

    [Fact]
    public void Fno1dWithSeveralChannelsMatchesOnnxRuntime()
    {
        using var m = new Fno1d(5, 6, 2, projectionHidden: 8, seed: 2, device: Cpu, inChannels: 3, outChannels: 2);
        CheckShapedAgainstOrt(m, [16, 3], 17);
    }

    private sealed class Unknown : Module
    {
        public override Tensor Forward(Tensor input) => input;
    }

    [Fact]
    public void UnsupportedModuleAndBadArgumentsAreClearErrors()
    {
        using var m = new Sequential(new Linear(4, 4, device: Cpu), new Unknown());
        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.Export(m, [-1, 4]));
        Assert.Contains("no converter for Unknown", e.Message);
        var shape = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(new Linear(4, 2, device: Cpu), [-1, 5]));
        Assert.Contains("expects [..., 4]", shape.Message);
        Assert.Throws<ArgumentException>(() => OnnxExporter.Export(new Linear(4, 2, device: Cpu), [-1, 4], new OnnxExportOptions { Opset = 12 }));
    }

    [Fact]
    public void RegisteredConverterExtendsTheExporter()
    {
        // How a new layer plugs in: Doubler (x + x) as one Add node.
        OnnxExporter.Register<Doubler>((b, _, x) => b.Elementwise("Add", x, x));
        using var m = new Sequential(new Linear(3, 4, seed: 9, device: Cpu), new Doubler());
        CheckAgainstOrt(m, 3, 17, 2);
    }

    private sealed class Doubler : Module
    {
        public override Tensor Forward(Tensor input) => input + input;
    }

    [Fact]
    public void SaveWritesTheSameBytesAsExport()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-onnx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using var m = new Sequential(new Linear(3, 2, seed: 1, device: Cpu), new ReLU());
            var path = Path.Combine(dir, "m.onnx");
            OnnxExporter.Save(m, path, [-1, 3]);
            Assert.Equal(OnnxExporter.Export(m, [-1, 3]), File.ReadAllBytes(path));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
