using BenchmarkDotNet.Attributes;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Bench;

/// <summary>
/// One training step (forward, cross-entropy, backward, Adam) of 4 <see cref="MixerBlock"/>s at 64 tokens x 256
/// channels (token hidden 128, channel hidden 512), then final LayerNorm, mean over tokens and a Linear(256, 10) head,
/// at batch 64 on the CPU kernel set. The input is random features already in token layout [64, 64·256] (no patch
/// embedding). Baseline: OpenBLAS running only the step's matrix products (each of the 16 PK layers and the head:
/// forward, weight gradient, input gradient, 51 GEMMs, 32.2 GFLOP), nothing else. GFLOP/s counts those FLOPs for both.
/// </summary>
[Config(typeof(Cfg))]
public class MixerStepBenchmarks
{
    private const int Batch = 64, S = 64, C = 256, TokenHidden = 128, ChannelHidden = 512, Blocks = 4, Classes = 10;
    private Sequential blocks = null!;
    private LayerNorm norm = null!;
    private Linear head = null!;
    private Adam opt = null!;
    private Tensor x = null!;
    private IndexTensor labels = null!;
    private float[][] ins = null!, outs = null!, weights = null!, wgrads = null!;

    /// <summary>The GEMMs of one PK layer J_out (I_n ⊗ W) J_in with W [p, q] on the batch: rows = Batch·n, then p, q.</summary>
    private static readonly (int Rows, int P, int Q)[] Layers = BuildLayers();

    private static (int, int, int)[] BuildLayers()
    {
        var l = new List<(int, int, int)>();
        for (int b = 0; b < Blocks; b++)
        {
            l.Add((Batch * C, TokenHidden, S));
            l.Add((Batch * C, S, TokenHidden));
            l.Add((Batch * S, ChannelHidden, C));
            l.Add((Batch * S, C, ChannelHidden));
        }
        l.Add((Batch, Classes, C));
        return l.ToArray();
    }

    /// <summary>Matrix-product FLOPs of one step: forward, weight gradient and input gradient of every layer.</summary>
    public static double StepFlops => Layers.Sum(l => 3 * 2.0 * l.Rows * l.P * l.Q);

    private sealed class Cfg() : BlasStepConfig(StepFlops, Batch);

    /// <summary>Builds the model, data and the baseline's buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        blocks = new Sequential(Enumerable.Range(0, Blocks)
            .Select(i => (Module)new MixerBlock(S, C, TokenHidden, ChannelHidden, seed: i + 1, device: d)).ToArray());
        norm = new LayerNorm(C, device: d);
        head = new Linear(C, Classes, seed: 9, device: d);
        opt = new Adam(blocks.Parameters().Concat(norm.Parameters()).Concat(head.Parameters()), 1e-3f);
        x = Tensor.Normal([Batch, S * C], 5, device: d);
        labels = new IndexTensor(Enumerable.Range(0, Batch).Select(i => i % Classes).ToArray());
        var rnd = new Random(1);
        float[] Rand(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)rnd.NextDouble() - 0.5f).ToArray();
        ins = Layers.Select(l => Rand((long)l.Rows * l.Q)).ToArray();
        outs = Layers.Select(l => Rand((long)l.Rows * l.P)).ToArray();
        weights = Layers.Select(l => Rand((long)l.P * l.Q)).ToArray();
        wgrads = Layers.Select(l => new float[l.P * l.Q]).ToArray();
        Console.WriteLine($"mixer step: {StepFlops / 1e9:F2} GFLOP of matrix products per step");
        Console.WriteLine("// " + OpenBlas.Note);
    }

    /// <summary>Frees the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        opt.Dispose();
        blocks.Dispose();
        norm.Dispose();
        head.Dispose();
    }

    /// <summary>The step's GEMMs through OpenBLAS, nothing else (input gradients overwrite the inputs' buffers).</summary>
    [Benchmark(Baseline = true)]
    public void OpenBlasGemmsOnly()
    {
        if (!OpenBlas.IsAvailable) return;
        for (int i = 0; i < Layers.Length; i++)
        {
            var (rows, p, q) = Layers[i];
            OpenBlas.Sgemm(false, true, rows, p, q, 1f, ins[i], weights[i], 0f, outs[i]);
        }
        for (int i = Layers.Length - 1; i >= 0; i--)
        {
            var (rows, p, q) = Layers[i];
            OpenBlas.Sgemm(true, false, p, q, rows, 1f, outs[i], ins[i], 0f, wgrads[i]);
            OpenBlas.Sgemm(false, false, rows, q, p, 1f, outs[i], weights[i], 0f, ins[i]);
        }
    }

    /// <summary>Forward, loss, backward and Adam through the engine.</summary>
    [Benchmark]
    public float EngineStep()
    {
        using var scope = new TensorScope();
        opt.ZeroGrad();
        var h = blocks.Forward(x);
        var logits = head.Forward(norm.Forward(h.Reshape(Batch, S, C)).Mean(1));
        var loss = logits.CrossEntropy(labels);
        loss.Backward();
        opt.Step();
        return loss.Item();
    }
}
