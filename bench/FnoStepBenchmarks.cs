using BenchmarkDotNet.Attributes;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Bench;

/// <summary>
/// One training step (forward, relative-L2 loss, backward, Adam with weight decay) of the paper's 1-D Burgers FNO:
/// <see cref="Fno1d"/> with width 64, 16 modes, 4 blocks, projection 64 → 128 → 1, at s = 1024 and batch 20, on the CPU
/// kernel set, with the spectral transforms as truncated-DFT GEMMs. Baseline: OpenBLAS running only the step's matrix
/// products (lifting, per block the forward DFT, the per-mode complex mixing as one real [2Cin, 2Cout] product, the
/// inverse DFT and the pointwise layer, and the two projections; forward, input gradients and weight gradients),
/// nothing else. GFLOP/s counts those FLOPs for both.
/// </summary>
[Config(typeof(Cfg))]
public class FnoStepBenchmarks
{
    private const int Batch = 20, N = 1024, Width = 64, Modes = 16, Blocks = 4, Hidden = 128;
    private Fno1d model = null!;
    private Adam opt = null!;
    private Tensor x = null!, y = null!;
    private float[][] a = null!, b = null!, c = null!;

    /// <summary>The step's GEMMs: C[M, N] = op(A)[M, K] op(B)[K, N], Count times (batched or repeated).</summary>
    private static readonly (int M, int N, int K, int Count, bool TA, bool TB)[] Gemms = BuildGemms();

    private static (int, int, int, int, bool, bool)[] BuildGemms()
    {
        int rows = Batch * N, k2 = 2 * Modes;
        var l = new List<(int, int, int, int, bool, bool)>();
        void Dense(int inF, int outF)
        {
            l.Add((rows, outF, inF, 1, false, true));   // y = x Wᵀ
            l.Add((rows, inF, outF, 1, false, false));  // dx = g W
            l.Add((outF, inF, rows, 1, true, false));   // dW = gᵀ x
        }
        Dense(2, Width);
        for (int i = 0; i < Blocks; i++)
        {
            l.Add((k2, Width, N, Batch, false, false));             // x̂ = F x per sample
            l.Add((N, Width, k2, Batch, true, false));              // dx = Fᵀ dx̂
            l.Add((Batch, 2 * Width, 2 * Width, Modes, false, false)); // ŷ = x̂ W_m per mode
            l.Add((Batch, 2 * Width, 2 * Width, Modes, false, true));  // dx̂ = dŷ W_mᵀ
            l.Add((2 * Width, 2 * Width, Batch, Modes, true, false));  // dW_m = x̂ᵀ dŷ
            l.Add((N, Width, k2, Batch, false, false));             // y = G ŷ
            l.Add((k2, Width, N, Batch, true, false));              // dŷ = Gᵀ dy
            Dense(Width, Width);
        }
        Dense(Width, Hidden);
        Dense(Hidden, 1);
        return l.ToArray();
    }

    /// <summary>Matrix-product FLOPs of one step.</summary>
    public static double StepFlops => Gemms.Sum(g => 2.0 * g.M * g.N * g.K * g.Count);

    private sealed class Cfg() : BlasStepConfig(StepFlops, Batch);

    /// <summary>Builds the model, a random batch and the baseline's buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        model = new Fno1d(Modes, Width, Blocks, Hidden, seed: 1, device: d);
        opt = new Adam(model.Parameters(), 1e-3f, weightDecay: 1e-4f);
        x = Tensor.Normal([Batch, N], 2, device: d);
        y = Tensor.Normal([Batch, N], 3, device: d);
        var rnd = new Random(1);
        float[] Rand(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)rnd.NextDouble() - 0.5f).ToArray();
        a = Gemms.Select(g => Rand((long)g.M * g.K)).ToArray();
        b = Gemms.Select(g => Rand((long)g.K * g.N)).ToArray();
        c = Gemms.Select(g => new float[(long)g.M * g.N]).ToArray();
        Console.WriteLine($"fno step: {StepFlops / 1e9:F2} GFLOP of matrix products per step");
        Console.WriteLine("// " + OpenBlas.Note);
    }

    /// <summary>Frees the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        opt.Dispose();
        model.Dispose();
        x.Dispose();
        y.Dispose();
    }

    /// <summary>The step's GEMMs through OpenBLAS, nothing else.</summary>
    [Benchmark(Baseline = true)]
    public void OpenBlasGemmsOnly()
    {
        if (!OpenBlas.IsAvailable) return;
        for (int i = 0; i < Gemms.Length; i++)
        {
            var (m, n, k, count, ta, tb) = Gemms[i];
            for (int r = 0; r < count; r++) OpenBlas.Sgemm(ta, tb, m, n, k, 1f, a[i], b[i], 0f, c[i]);
        }
    }

    /// <summary>Forward, loss, backward and Adam through the engine.</summary>
    [Benchmark]
    public float EngineStep()
    {
        using var scope = new TensorScope();
        opt.ZeroGrad();
        var loss = OperatorTraining.RelativeL2(model.Forward(x), y);
        loss.Backward();
        opt.Step();
        return loss.Item();
    }
}
