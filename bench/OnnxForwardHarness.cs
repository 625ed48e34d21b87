using System.Diagnostics;
using System.Globalization;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Cpu.Gemm;
using Engine.Nn;
using Engine.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench;

/// <summary>
/// Interleaved stopwatch rounds for the small MLP's forward (64-256-128-10, batch 256; the `mlp` row of
/// <see cref="OnnxForwardBenchmarks"/>): `dotnet run -c Release --project bench -- onnx-interleaved [rounds] [calls]`.
/// Each round times, one after another, ONNX Runtime on the exported model, our compiled forward (with the GEMM
/// epilogue paths, and as before them: <see cref="SgemmPacked.EpilogueCutsRows"/>, <see cref="SgemmPacked.TileEpilogue"/>), the
/// three products of the compiled forward alone (A [256, in] times W^T with the bias and ReLU epilogues: the replay's
/// kernels without the replay, its output or the copy to the host), and each product plain and with its epilogue on
/// one and two threads; prints the median over rounds of each, its ratio to its baseline in the same rounds, the compiled
/// forward's per-step replay profile and the load average.
/// </summary>
public static class OnnxForwardHarness
{
    private const int Batch = 256, Pixels = 64;

    /// <summary>Runs <paramref name="rounds"/> rounds of <paramref name="calls"/> calls per case.</summary>
    public static void Run(int rounds, int calls, TextWriter log)
    {
        var d = Device.Cpu;
        using var model = new Sequential(new Linear(Pixels, 256, seed: 1, device: d), new ReLU(),
            new Linear(256, 128, seed: 2, device: d), new ReLU(), new Linear(128, 10, seed: 3, device: d));
        var data = Enumerable.Range(0, Batch * Pixels).Select(i => (float)Math.Sin(i * 0.37)).ToArray();
        using var x = Tensor.FromArray(data, [Batch, Pixels], d);
        using var session = new InferenceSession(OnnxExporter.Export(model, [-1, Pixels]));
        using var ortInput = OrtValue.CreateTensorValueFromMemory(data, [Batch, Pixels]);
        using var runOptions = new RunOptions();
        string[] inputNames = ["input"], outputNames = ["output"];
        using var compiled = Compiler.Compile(input => model.Forward(input));
        using var profiled = Compiler.Compile(input => model.Forward(input), new CompileOptions { ProfileReplays = true });
        using var products = new Products(d.Kernels);

        var cases = new List<(string Name, string Baseline, Action Call)>
        {
            ("onnx runtime", "onnx runtime", () =>
            {
                using var outputs = session.Run(runOptions, inputNames, [ortInput], outputNames);
            }),
            ("compiled", "onnx runtime", () => Compiled(compiled, x, true)),
            ("compiled, epilogues as before", "onnx runtime", () => Compiled(compiled, x, false)),
            ("its three products with epilogues, one after another", "compiled", () =>
            {
                for (int i = 0; i < Products.Count; i++) products.Run(i, CpuThreads.Count, true, true);
            }),
        };
        foreach (int threads in new[] { 2, 1 })
        {
            for (int i = 0; i < Products.Count; i++)
            {
                int product = i;
                string name = $"{products.Name(product)} {threads}t";
                cases.Add(($"{name} plain", $"{name} plain", () => products.Run(product, threads, false, true)));
                cases.Add(($"{name} epilogue as before", $"{name} plain", () => products.Run(product, threads, true, false)));
                cases.Add(($"{name} epilogue", $"{name} epilogue as before", () => products.Run(product, threads, true, true)));
            }
        }

        using (GradMode.NoGrad())
        {
            foreach (var (_, _, call) in cases)
                for (int i = 0; i < 20; i++) call();
            var times = cases.Select(_ => new List<double>()).ToArray();
            for (int r = 0; r < rounds; r++)
            {
                for (int c = 0; c < cases.Count; c++)
                {
                    long start = Stopwatch.GetTimestamp();
                    for (int i = 0; i < calls; i++) cases[c].Call();
                    times[c].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / calls);
                }
            }

            log.WriteLine($"// small MLP forward, batch {Batch}: {rounds} interleaved rounds of {calls} calls, kernel {SgemmPacked.KernelName}, " +
                $"{CpuThreads.Count} threads, load average {LoadAverage()}");
            log.WriteLine($"{"case",-52} {"median µs",10} {"best µs",9}  ratio to");
            for (int c = 0; c < cases.Count; c++)
            {
                var (name, baseline, _) = cases[c];
                int b = cases.FindIndex(e => e.Name == baseline);
                // The ratio of the medians of per-round ratios: both sides of each ratio ran in the same round.
                double ratio = Median(times[c].Zip(times[b], (t, tb) => t / tb).ToList());
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-52} {Median(times[c]),10:F1} {times[c].Min(),9:F1}  {(b == c ? "" : $"{ratio:F2}x {baseline}")}"));
            }

            for (int i = 0; i < 200; i++) profiled.Invoke(x).Dispose();
            log.WriteLine("// compiled forward, mean time per replayed step:");
            foreach (var step in profiled.ReplayProfile())
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   {step.Index,3} {step.Milliseconds * 1000,8:F1} µs  {step.Name}"));
        }
    }

    private static void Compiled(CompiledFunction<Tensor> compiled, Tensor x, bool epiloguePaths)
    {
        UseEpiloguePaths(epiloguePaths);
        try
        {
            using var y = compiled.Invoke(x);
            _ = y.ToArray()[0];
        }
        finally
        {
            UseEpiloguePaths(true);
        }
    }

    /// <summary>Turns the whole-row split and the micro-kernel's bias and ReLU store on or off together.</summary>
    private static void UseEpiloguePaths(bool on)
    {
        SgemmPacked.EpilogueCutsRows = on;
        SgemmPacked.TileEpilogue = on;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The forward's three products with their operands, outputs and epilogues.</summary>
    private sealed class Products : IDisposable
    {
        public const int Count = 3;
        private static readonly (int In, int Out, bool Relu)[] Layers = [(Pixels, 256, true), (256, 128, true), (128, 10, false)];
        private static readonly UnaryStep[] Relu = [UnaryOp.Relu];
        private readonly IKernelSet kernels;
        private readonly DeviceBuffer<float>[] inputs = new DeviceBuffer<float>[Count], weights = new DeviceBuffer<float>[Count],
            biases = new DeviceBuffer<float>[Count], outputs = new DeviceBuffer<float>[Count];

        public Products(IKernelSet kernels)
        {
            this.kernels = kernels;
            var rng = new Random(1);
            DeviceBuffer<float> Values(int count) => BenchData.OnCpu(BenchData.Uniform(rng, count));
            for (int i = 0; i < Count; i++)
            {
                var (inputs_, outputs_, _) = Layers[i];
                inputs[i] = Values(Batch * inputs_);
                weights[i] = Values(outputs_ * inputs_);
                biases[i] = Values(outputs_);
                outputs[i] = Values(Batch * outputs_);
            }
        }

        public string Name(int i) => $"{Batch}x{Layers[i].Out}x{Layers[i].In}";

        public void Run(int i, int threads, bool epilogue, bool epiloguePaths)
        {
            var (k, n, relu) = Layers[i];
            int saved = CpuThreads.Count;
            CpuThreads.Count = threads;
            UseEpiloguePaths(epiloguePaths);
            try
            {
                var output = new GemmOutput(outputs[i]);
                if (epilogue)
                {
                    output = output with { Epilogue = new GemmEpilogue(biases[i], relu ? Relu : null) };
                }
                kernels.Gemm(new GemmSize(1, Batch, n, k), new GemmOperand(inputs[i]), new GemmOperand(weights[i], true), output);
            }
            finally
            {
                UseEpiloguePaths(true);
                CpuThreads.Count = saved;
            }
        }

        public void Dispose()
        {
            foreach (var buffer in inputs.Concat(weights).Concat(biases).Concat(outputs))
                buffer.Dispose();
        }
    }
}
