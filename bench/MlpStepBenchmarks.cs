using BenchmarkDotNet.Attributes;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Bench;

/// <summary>
/// One training step (forward, cross-entropy, backward, Adam) of a 784-1024-1024-10 ReLU MLP at batch 256 on the
/// CPU kernel set, against the baseline of OpenBLAS running only the step's eight matrix products (3 forward, 3
/// weight gradients, 2 input gradients: 2.45 GFLOP). The Ratio column is then "our whole step / BLAS-only time",
/// and GFLOP/s counts the same 2.45 GFLOP for both.
/// </summary>
[Config(typeof(Cfg))]
public class MlpStepBenchmarks
{
    private const int Batch = 256;
    private static readonly int[] Widths = [784, 1024, 1024, 10];
    private Sequential model = null!;
    private Adam opt = null!;
    private Tensor x = null!;
    private IndexTensor labels = null!;
    private float[][] acts = null!, grads = null!, weights = null!, wgrads = null!;

    /// <summary>Matrix-product FLOPs of one step (the input gradient of the first layer is not needed).</summary>
    public static double StepFlops
    {
        get
        {
            double f = 0;
            for (int l = 0; l < 3; l++)
            {
                double mnk = 2.0 * Batch * Widths[l] * Widths[l + 1];
                f += mnk * (l == 0 ? 2 : 3);
            }
            return f;
        }
    }

    private sealed class Cfg() : BlasStepConfig(StepFlops, Batch);

    /// <summary>Builds the model, data and the baseline's buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        model = new Sequential(new Linear(784, 1024, seed: 1, device: d), new ReLU(),
            new Linear(1024, 1024, seed: 2, device: d), new ReLU(), new Linear(1024, 10, seed: 3, device: d));
        opt = new Adam(model.Parameters(), 1e-3f);
        x = Tensor.Uniform([Batch, 784], 5, 0, 1, d);
        labels = new IndexTensor(Enumerable.Range(0, Batch).Select(i => i % 10).ToArray());
        acts = Widths.Select(w => new float[Batch * w]).ToArray();
        grads = Widths.Select(w => new float[Batch * w]).ToArray();
        weights = Enumerable.Range(0, 3).Select(l => new float[Widths[l] * Widths[l + 1]]).ToArray();
        wgrads = Enumerable.Range(0, 3).Select(l => new float[Widths[l] * Widths[l + 1]]).ToArray();
        Console.WriteLine("// " + OpenBlas.Note);
    }

    /// <summary>Frees the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        opt.Dispose();
        model.Dispose();
    }

    /// <summary>The eight GEMMs of a step, through OpenBLAS, nothing else.</summary>
    [Benchmark(Baseline = true)]
    public void OpenBlasGemmsOnly()
    {
        if (!OpenBlas.IsAvailable) return;
        for (int l = 0; l < 3; l++)
            OpenBlas.Sgemm(false, true, Batch, Widths[l + 1], Widths[l], 1f, acts[l], weights[l], 0f, acts[l + 1]);
        for (int l = 2; l >= 0; l--)
        {
            OpenBlas.Sgemm(true, false, Widths[l + 1], Widths[l], Batch, 1f, grads[l + 1], acts[l], 0f, wgrads[l]);
            if (l > 0) OpenBlas.Sgemm(false, false, Batch, Widths[l], Widths[l + 1], 1f, grads[l + 1], weights[l], 0f, grads[l]);
        }
    }

    /// <summary>Forward, loss, backward and Adam through the engine.</summary>
    [Benchmark]
    public float EngineStep()
    {
        using var scope = new TensorScope();
        opt.ZeroGrad();
        var loss = model.Forward(x).CrossEntropy(labels);
        loss.Backward();
        opt.Step();
        return loss.Item();
    }
}
