using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench;

/// <summary>
/// Inference (forward only, no tape) of the samples' models at batch 256 on the CPU kernel set against ONNX Runtime
/// (default CPU execution provider, all optimizations) running the same model exported by <see cref="OnnxExporter"/>:
/// the `mlp` task's 64-256-128-10 ReLU MLP and the `mixer` task's Mixer (8x8 images, patch 2: 16 tokens x 32
/// channels, 2 blocks, hidden 32/64), plus `fno1d`: the `fno-burgers` network (16 modes, width 64, 4 blocks, projection
/// 128) on batch 256 of n = 64 points (exported with its truncated-DFT matrices as MatMuls; batch 256 as the others, so
/// n is small to keep the activations cache-sized). ONNX Runtime is the baseline; our eager forward and its compiled
/// replay beside it; samples/s for all.
/// </summary>
[Config(typeof(Cfg))]
public class OnnxForwardBenchmarks
{
    private const int Batch = 256, Pixels = 64;
    private Module model = null!;
    private Tensor x = null!;
    private InferenceSession session = null!;
    private OrtValue ortInput = null!;
    private RunOptions runOptions = null!;
    private string[] inputNames = null!, outputNames = null!;
    private CompiledFunction<Tensor> compiled = null!;

    /// <summary>Which model.</summary>
    [Params("mlp", "mixer", "fno1d")]
    public string Model { get; set; } = "mlp";

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("samples/s", _ => Batch, 1));
    }

    /// <summary>Builds the model, exports it and opens the ONNX Runtime session.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        model = Model switch
        {
            "mlp" => new Sequential(new Linear(Pixels, 256, seed: 1, device: d), new ReLU(), new Linear(256, 128, seed: 2, device: d), new ReLU(),
                new Linear(128, 10, seed: 3, device: d)),
            "fno1d" => new Fno1d(16, 64, 4, init: SpectralInit.He, seed: 1, device: d),
            _ => new Mixer(8, 2, 32, 2, 32, 64, 10, seed: 1, device: d),
        };
        var data = Enumerable.Range(0, Batch * Pixels).Select(i => (float)Math.Sin(i * 0.37)).ToArray();
        x = Tensor.FromArray(data, [Batch, Pixels], d);
        session = new InferenceSession(OnnxExporter.Export(model, [-1, Pixels]));
        ortInput = OrtValue.CreateTensorValueFromMemory(data, [Batch, Pixels]);
        runOptions = new RunOptions();
        inputNames = ["input"];
        outputNames = ["output"];
        compiled = Compiler.Compile(input => model.Forward(input));
        using (GradMode.NoGrad())
            for (int i = 0; i < 4; i++) compiled.Invoke(x).Dispose();
        Console.WriteLine($"// {Model} compiled forward: {compiled.LastGraph?.Launches} launches per replay; " + compiled.Explain().Split('\n')[1]);
    }

    /// <summary>Frees everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        compiled.Dispose();
        session.Dispose();
        ortInput.Dispose();
        runOptions.Dispose();
        x.Dispose();
        model.Dispose();
    }

    /// <summary>ONNX Runtime on the exported model.</summary>
    [Benchmark(Baseline = true)]
    public float OnnxRuntime()
    {
        using var outputs = session.Run(runOptions, inputNames, [ortInput], outputNames);
        return outputs[0].GetTensorDataAsSpan<float>()[0];
    }

    /// <summary>Our forward pass under no-grad.</summary>
    [Benchmark]
    public float Engine()
    {
        using var _ = GradMode.NoGrad();
        using var scope = new TensorScope();
        return model.Forward(x).ToArray()[0];
    }

    /// <summary>The same forward pass compiled (<see cref="Compiler"/>): a replay of its graph, passes and fusion applied.</summary>
    [Benchmark]
    public float EngineCompiled()
    {
        using var _ = GradMode.NoGrad();
        using var y = compiled.Invoke(x);
        return y.ToArray()[0];
    }
}
