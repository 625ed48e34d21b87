using BenchmarkDotNet.Attributes;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Bench;

/// <summary>
/// One training step (forward, loss, backward, Adam) run eagerly (the baseline) and as a replay of its compiled graph
/// (<see cref="Compiler"/>), on the CPU set: the MLP 64-256-128-10 at batch 64 (the small MLP) and a Mixer of 4 blocks
/// on 64 tokens x 256 channels (32 x 32 images in 4 x 4 patches) at batch 64, by cross-entropy; an SPN at the plants
/// shape (69 binary variables, depth 3, 10 repetitions, 10 densities per region) at batch 512, by negative
/// log-likelihood, on random binary data of plants' density.
/// Setup prints each step's kernel launches and device allocations, eager and compiled, from the device counters.
/// </summary>
[MemoryDiagnoser]
public class CompiledStepBenchmarks
{
    // Two copies from the same seeds: an eager step frees the gradients a compiled graph owns (ZeroGrad), so the two
    // must not share a model.
    private (Module Model, Adam Opt) eager, compiledTwin;
    private Tensor x = null!;
    private IndexTensor labels = null!;
    private CompiledFunction<Tensor, IndexTensor> compiled = null!;

    /// <summary>The model: mlp, mixer or spn.</summary>
    [Params("mlp", "mixer", "spn")]
    public string Model { get; set; } = "mlp";

    /// <summary>Builds the model, warms the compiled step up (three eager calls, then a compiled graph) and prints the counts.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        int batch = Model == "spn" ? 512 : 64;
        eager = Make(d);
        compiledTwin = Make(d);
        if (Model == "spn")
        {
            var rng = new Random(2);
            x = Tensor.FromArray(Enumerable.Range(0, batch * 69).Select(_ => rng.NextDouble() < 0.18 ? 1f : 0f).ToArray(), [batch, 69], d);
            Ops.MarkSpnCategoricalDataChecked(x, 1);
        }
        else x = Model == "mlp" ? Tensor.Uniform([batch, 64], 5, 0, 1, d) : Tensor.Uniform([batch, 32 * 32], 5, 0, 1, d);
        labels = new IndexTensor(Enumerable.Range(0, batch).Select(i => i % 10).ToArray());
        compiled = Compiler.Compile((Tensor input, IndexTensor y) => Step(compiledTwin, input, y));
        for (int i = 0; i < 4; i++) compiled.Invoke(x, labels).Dispose();
        for (int i = 0; i < 2; i++) Eager();
        var eagerCost = Measure(() => Eager());
        var compiledCost = Measure(() => Compiled());
        var g = compiled.LastGraph ?? throw new InvalidOperationException("the step did not compile: " + string.Join("; ", compiled.Messages));
        Console.WriteLine($"// {Model}: eager {eagerCost.KernelLaunches} launches, {eagerCost.Allocations} allocations per step; " +
                          $"compiled {compiledCost.KernelLaunches} launches, {compiledCost.Allocations} allocations per step; " +
                          $"{g.Temporaries} temporaries ({g.TemporaryBytes} B) in {g.Slots} slots ({g.SlotBytes} B), {g.FusedGroups} fused groups");
    }

    private (Module, Adam) Make(Device d)
    {
        Module model = Model switch
        {
            "mlp" => new Sequential(new Linear(64, 256, seed: 1, device: d), new ReLU(), new Linear(256, 128, seed: 2, device: d), new ReLU(),
                new Linear(128, 10, seed: 3, device: d)),
            "spn" => new Spn.Spn(Spn.RegionGraph.RandomBinary(69, 3, 10, 1), 10, 10, seed: 1, device: d),
            // 32 x 32 images in 4 x 4 patches: 64 tokens of 256 channels.
            _ => new Mixer(32, 4, 256, 4, 128, 512, classes: 10, seed: 1, device: d),
        };
        return (model, new Adam(model.Parameters(), 1e-3f));
    }

    private static DeviceCounterSnapshot Measure(Action step)
    {
        var before = Device.Cpu.Counters.Snapshot();
        step();
        return Device.Cpu.Counters.Snapshot().Minus(before);
    }

    private static Tensor Step((Module Model, Adam Opt) net, Tensor input, IndexTensor y)
    {
        net.Opt.ZeroGrad();
        var loss = net.Model is Spn.Spn spn ? -spn.LogLikelihood(input).Mean() : Losses.CrossEntropy(net.Model.Forward(input), y);
        loss.Backward();
        net.Opt.Step();
        return loss;
    }

    /// <summary>Frees everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        compiled.Dispose();
        foreach (var (model, opt) in new[] { eager, compiledTwin })
        {
            opt.Dispose();
            model.Dispose();
        }
        x.Dispose();
    }

    /// <summary>The eager step, its intermediates freed at the end as the compiled function frees them.</summary>
    [Benchmark(Baseline = true)]
    public void Eager()
    {
        using var scope = new TensorScope();
        Step(eager, x, labels);
    }

    /// <summary>The replayed graph.</summary>
    [Benchmark]
    public void Compiled() => compiled.Invoke(x, labels).Dispose();
}
