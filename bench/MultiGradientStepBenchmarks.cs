using BenchmarkDotNet.Attributes;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Bench;

/// <summary>
/// Cost of one step of the multi-gradient optimizers relative to a plain SGD step (the baseline, Ratio column), on
/// the CPU kernel set:
/// <list type="bullet">
/// <item>mlp: the 784-1024-1024-10 ReLU MLP of <see cref="MlpStepBenchmarks"/> at batch 256;</item>
/// <item>mixer: 2 <see cref="MixerBlock"/>s at 64 tokens x 128 channels (token hidden 64, channel hidden 256), final
/// LayerNorm, mean over tokens, Linear(128, 10), batch 32: a smaller version of <see cref="MixerStepBenchmarks"/>'s
/// model, so the double-backprop step stays quick.</item>
/// </list>
/// Every step: forward, cross-entropy, backward (SAM and F-GR twice; double-backprop GR: a recorded backward pass and
/// a backward pass through it), SGD update. Targets: SAM and F-GR at most 2.1x SGD.
/// </summary>
public class MultiGradientStepBenchmarks
{
    private Module model = null!;
    private Tensor x = null!;
    private IndexTensor labels = null!;
    private Optimizer sgd = null!, sam = null!, fgrForward = null!, fgrBackward = null!, dbgr = null!;

    /// <summary>Which model.</summary>
    [Params("mlp", "mixer")]
    public string Model { get; set; } = "mlp";

    /// <summary>Builds the model, data and one optimizer of each kind (all over the same parameters).</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        int batch;
        if (Model == "mlp")
        {
            batch = 256;
            model = new Sequential(new Linear(784, 1024, seed: 1, device: d), new ReLU(),
                new Linear(1024, 1024, seed: 2, device: d), new ReLU(), new Linear(1024, 10, seed: 3, device: d));
            x = Tensor.Uniform([batch, 784], 5, 0, 1, d);
        }
        else
        {
            const int s = 64, c = 128;
            batch = 32;
            model = new MixerHead(new Sequential(
                new MixerBlock(s, c, 64, 256, seed: 1, device: d), new MixerBlock(s, c, 64, 256, seed: 2, device: d)), s, c, d);
            x = Tensor.Normal([batch, s * c], 5, device: d);
        }
        labels = new IndexTensor(Enumerable.Range(0, batch).Select(i => i % 10).ToArray());
        var ps = model.Parameters();
        // Learning rate 0: every benchmark sees the same parameters, whatever ran before.
        sgd = new Sgd(ps, 0f);
        sam = new Sam(new Sgd(ps, 0f), 0.05f);
        fgrForward = new FiniteDifferenceGr(new Sgd(ps, 0f), 0.05f, 0.05f, FdDirection.Forward);
        fgrBackward = new FiniteDifferenceGr(new Sgd(ps, 0f), 0.05f, 0.05f, FdDirection.Backward);
        dbgr = new DoubleBackpropGr(new Sgd(ps, 0f), 0.05f);
    }

    /// <summary>The model's classifier head on a Mixer trunk: LayerNorm over channels, mean over tokens, Linear.</summary>
    private sealed class MixerHead : Module
    {
        private readonly Sequential blocks;
        private readonly LayerNorm norm;
        private readonly Linear head;
        private readonly int s, c;

        public MixerHead(Sequential blocks, int s, int c, Device d)
        {
            this.blocks = RegisterModule("blocks", blocks);
            norm = RegisterModule("norm", new LayerNorm(c, device: d));
            head = RegisterModule("head", new Linear(c, 10, seed: 9, device: d));
            this.s = s;
            this.c = c;
        }

        public override Tensor Forward(Tensor input)
        {
            var h = blocks.Forward(input);
            return head.Forward(norm.Forward(h.Reshape(input.Shape[0], s, c)).Mean(1));
        }
    }

    /// <summary>Frees everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var o in new[] { sgd, sam, fgrForward, fgrBackward, dbgr }) o.Dispose();
        foreach (var buffer in (scratch ?? []).SelectMany(b => b)) buffer.Dispose();
        scratch = null;
        squaredNorm?.Dispose();
        scale?.Dispose();
        squaredNorm = scale = null;
        model.Dispose();
        x.Dispose();
    }

    private Tensor LossAndBackward()
    {
        var loss = model.Forward(x).CrossEntropy(labels);
        loss.Backward();
        return loss;
    }

    private Tensor LossOnly() => model.Forward(x).CrossEntropy(labels);

    private float Run(Optimizer opt, Func<Tensor> closure)
    {
        using var scope = new TensorScope();
        return opt.Step(closure).Item();
    }

    /// <summary>Plain SGD: one forward and backward pass.</summary>
    [Benchmark(Baseline = true)]
    public float SgdStep() => Run(sgd, LossAndBackward);

    /// <summary>SAM (ρ = 0.05).</summary>
    [Benchmark]
    public float SamStep() => Run(sam, LossAndBackward);

    /// <summary>Forward finite-difference GR (γ = ε = 0.05).</summary>
    [Benchmark]
    public float ForwardFgrStep() => Run(fgrForward, LossAndBackward);

    /// <summary>Backward finite-difference GR (γ = ε = 0.05).</summary>
    [Benchmark]
    public float BackwardFgrStep() => Run(fgrBackward, LossAndBackward);

    /// <summary>Exact GR by double backpropagation (γ = 0.05).</summary>
    [Benchmark]
    public float DoubleBackpropGrStep() => Run(dbgr, LossOnly);

    private DeviceBuffer<float>[][]? scratch;
    private DeviceScalar? squaredNorm, scale;

    /// <summary>
    /// SAM's extra work besides the second forward and backward pass, on buffers shaped like the model's parameters
    /// (value, gradient, backup each): the global gradient norm, the scale, save-and-move and restore, all on the device.
    /// </summary>
    public float SamKernelsOnly()
    {
        var k = Device.Cpu.Kernels;
        var o = k.OptimizerKernels();
        squaredNorm ??= new DeviceScalar(Device.Cpu);
        scale ??= new DeviceScalar(Device.Cpu);
        scratch ??= model.Parameters().Select(p =>
        {
            var bufs = new[] { k.Allocate(p.Size), k.Allocate(p.Size), k.Allocate(p.Size) };
            k.RandomUniform(bufs[0], 1, -1, 1);
            k.RandomUniform(bufs[1], 2, -1, 1);
            return bufs;
        }).ToArray();
        o.SumOfSquares(scratch.Select(b => b[1]).ToList(), null, squaredNorm);
        o.PerturbationScale(squaredNorm, 0.05f, scale);
        foreach (var b in scratch) o.Perturb(b[0], b[1], b[2], scale, false);
        foreach (var b in scratch) o.Restore(b[2], b[0]);
        return scratch.Length;
    }

    /// <summary>
    /// Round-robin timing for a loaded machine: every round times one step of each optimizer in turn, so load
    /// changes hit all of them alike; prints the median per optimizer and its ratio to SGD's median. Run with
    /// <c>dotnet run -c Release --project bench -- multigrad-interleaved [rounds]</c>.
    /// </summary>
    public static void Interleaved(int rounds, TextWriter log)
    {
        foreach (var modelName in new[] { "mlp", "mixer" })
        {
            var b = new MultiGradientStepBenchmarks { Model = modelName };
            b.Setup();
            try
            {
                var steps = new (string Name, Func<float> Run)[]
                {
                    ("sgd", b.SgdStep), ("sam", b.SamStep), ("fgr-forward", b.ForwardFgrStep),
                    ("fgr-backward", b.BackwardFgrStep), ("dbgr", b.DoubleBackpropGrStep), ("sam-kernels", b.SamKernelsOnly),
                };
                foreach (var (_, run) in steps) { run(); run(); } // warm-up: JIT, pools, optimizer state
                var times = steps.Select(_ => new List<double>()).ToArray();
                var sw = new System.Diagnostics.Stopwatch();
                for (int r = 0; r < rounds; r++)
                    for (int i = 0; i < steps.Length; i++)
                    {
                        sw.Restart();
                        steps[i].Run();
                        times[i].Add(sw.Elapsed.TotalMilliseconds);
                    }
                double baseMs = Statistics.Median(times[0]);
                log.WriteLine($"{modelName}: {rounds} interleaved rounds, median ms per step (ratio to SGD)");
                for (int i = 0; i < steps.Length; i++)
                    log.WriteLine($"  {steps[i].Name,-13} {Statistics.Median(times[i]),9:F1} ms  {Statistics.Median(times[i]) / baseMs,5:F2}x   (min {times[i].Min():F1}, max {times[i].Max():F1})");
            }
            finally
            {
                b.Cleanup();
            }
        }
    }
}
