using System.Diagnostics;
using System.Globalization;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Spn;
using Engine.Training;

namespace Engine.Bench;

/// <summary>
/// Eager against compiled training steps (forward, loss, backward, Adam) on the CPU set, at the sizes the compiler's
/// goals name: MLP 784-1024-1024-10 (batch 256), Mixer 64 tokens x 256 channels, 4 blocks (batch 64), FNO-1d width 64
/// (batch 20, 1024 points), SPN at the plants shape (69 variables, depth 3, batch 512). Rounds interleave one eager
/// step, one compiled step and one 512^3 SGEMM (our own rate, measured in the same run), and medians are reported, so
/// a busy machine slows all three alike. Also per step: kernel launches and device allocations (device counters), and
/// the GEMM-bound fraction: the step's matrix-product FLOPs (from the compiled graph) at the measured SGEMM rate,
/// divided by the step time. Both steps first run 100 times each, so the times are those of the code a long training
/// run executes once the runtime has tiered it up. Run: <c>dotnet run -c Release --project bench -- compiled-steps [rounds]</c>.
/// </summary>
public static class CompiledStepHarness
{
    private const int WarmupSteps = 100;

    internal sealed class Net(Func<IEnumerable<Tensor>> parameters, Func<Tensor, object, Tensor> loss, IDisposable owner, float learningRate)
        : IDisposable
    {
        public Adam Opt { get; } = new(parameters(), learningRate);

        public Tensor Step(Tensor x, object y)
        {
            Opt.ZeroGrad();
            var l = loss(x, y);
            l.Backward();
            Opt.Step();
            return l;
        }

        public void Dispose()
        {
            Opt.Dispose();
            owner.Dispose();
        }
    }

    /// <summary>Runs every model for <paramref name="rounds"/> rounds and writes a table to <paramref name="output"/>.</summary>
    public static void Run(int rounds, TextWriter output)
    {
        var d = Device.Cpu;
        output.WriteLine($"compiled vs eager training steps, CPU set, {rounds} interleaved rounds (medians); load average {File.ReadAllText("/proc/loadavg").Trim()}");
        output.WriteLine("| model | eager ms | compiled ms | speed-up | launches eager / compiled | allocations eager / compiled | GEMM GFLOP per step | SGEMM GFLOP/s | GEMM-bound eager / compiled |");
        output.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var name in new[] { "mlp", "mixer", "fno1d", "spn" })
        {
            var (x, y) = Batch(name, d);
            using var eager = Make(name, d);
            using var twin = Make(name, d);
            using var step = Compiler.Compile((Tensor input, object target) => twin.Step(input, target));
            // Past the runtime's tiering (a method is recompiled, fully optimised, after 30 calls), so that both steps
            // are timed in the code a long training run executes: code that a recompilation made slower shows only
            // after dozens of steps.
            for (int i = 0; i < WarmupSteps; i++)
            {
                step.Invoke(x, y).Dispose();
                EagerStep(eager, x, y);
            }
            if (step.LastGraph is not { } stats)
            {
                output.WriteLine($"| {name} | the step runs eagerly: {string.Join("; ", step.Messages)} |");
                x.Dispose();
                (y as IDisposable)?.Dispose();
                continue;
            }
            var eagerCost = Count(d, () => EagerStep(eager, x, y));
            var compiledCost = Count(d, () => step.Invoke(x, y).Dispose());
            var eagerMs = new List<double>();
            var compiledMs = new List<double>();
            var gemmRate = new List<double>();
            using var ga = Tensor.Normal([512, 512], 1, device: d);
            using var gb = Tensor.Normal([512, 512], 2, device: d);
            for (int r = 0; r < rounds; r++)
            {
                eagerMs.Add(Time(() => EagerStep(eager, x, y)));
                compiledMs.Add(Time(() => step.Invoke(x, y).Dispose()));
                gemmRate.Add(2.0 * 512 * 512 * 512 / (Time(() =>
                {
                    using var _ = GradMode.NoGrad();
                    ga.MatMul(gb).Dispose();
                }) * 1e-3));
            }
            double e = Statistics.Median(eagerMs), c = Statistics.Median(compiledMs), rate = Statistics.Median(gemmRate);
            double bound = stats.GemmFlops / rate * 1e3;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {e:F2} | {c:F2} | {e / c:F2}x | {eagerCost.KernelLaunches} / {compiledCost.KernelLaunches} | {eagerCost.Allocations} / {compiledCost.Allocations} | " +
                $"{stats.GemmFlops / 1e9:F3} | {rate / 1e9:F1} | {bound / e:P0} / {bound / c:P0} |"));
            x.Dispose();
            (y as IDisposable)?.Dispose();
        }
    }

    /// <summary>
    /// One model's compiled step replayed in <paramref name="chunks"/> chunks of 10 replays, each chunk's median
    /// written with the seconds since the start: a change of speed inside one process tells whether it comes from the
    /// process (its buffers, its code) or from the machine over time. With <paramref name="learningRate"/> 0 the
    /// parameters stay put, so the values the kernels see stay the same too. Run:
    /// <c>dotnet run -c Release --project bench -- step-timeline [model] [chunks] [learning rate]</c>.
    /// </summary>
    public static void Timeline(string name, int chunks, float learningRate, TextWriter output)
    {
        var d = Device.Cpu;
        var (x, y) = Batch(name, d);
        using var net = Make(name, d, learningRate);
        using var step = Compiler.Compile((Tensor input, object target) => net.Step(input, target));
        for (int i = 0; i < 20; i++) step.Invoke(x, y).Dispose();
        output.WriteLine($"{name} compiled step, learning rate {learningRate.ToString(CultureInfo.InvariantCulture)}: seconds since start, median ms of 10 replays; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        var clock = Stopwatch.StartNew();
        for (int c = 0; c < chunks; c++)
        {
            var times = Enumerable.Range(0, 10).Select(_ => Time(() => step.Invoke(x, y).Dispose())).ToList();
            output.Write(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:F1}s {Statistics.Median(times):F1}{(c % 8 == 7 ? "\n" : " | ")}"));
        }
        output.WriteLine();
        x.Dispose();
        (y as IDisposable)?.Dispose();
    }

    internal static (Tensor X, object Y) Batch(string name, Device d) => name switch
    {
        "mlp" => (Tensor.Uniform([256, 784], 5, 0, 1, d), Labels(256)),
        "mixer" => (Tensor.Uniform([64, 32 * 32], 5, 0, 1, d), Labels(64)),
        "fno1d" => (Tensor.Normal([20, 1024], 2, device: d), Tensor.Normal([20, 1024], 3, device: d)),
        _ => (SpnBatch(d), Tensor.Zeros([1], d)),
    };

    /// <summary>Random binary data at plants' density (18% ones), checked once as a data loader does, so no step reads it back.</summary>
    private static Tensor SpnBatch(Device d)
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 512 * 69).Select(i => ((uint)i * 2654435761u >> 7) % 100 < 18 ? 1f : 0f).ToArray(), [512, 69], d);
        Ops.MarkSpnCategoricalDataChecked(x, 1);
        return x;
    }

    private static IndexTensor Labels(int rows) => new(Enumerable.Range(0, rows).Select(i => i % 10).ToArray());

    internal static Net Make(string name, Device d, float learningRate = 1e-3f)
    {
        switch (name)
        {
            case "mlp":
            {
                var m = new Sequential(new Linear(784, 1024, seed: 1, device: d), new ReLU(), new Linear(1024, 1024, seed: 2, device: d), new ReLU(),
                    new Linear(1024, 10, seed: 3, device: d));
                return new Net(m.Parameters, (x, y) => Losses.CrossEntropy(m.Forward(x), (IndexTensor)y), m, learningRate);
            }
            case "mixer":
            {
                var m = new Mixer(32, 4, 256, 4, 128, 512, classes: 10, seed: 1, device: d);
                return new Net(m.Parameters, (x, y) => Losses.CrossEntropy(m.Forward(x), (IndexTensor)y), m, learningRate);
            }
            case "fno1d":
            {
                var m = new Fno1d(16, 64, 4, 128, seed: 1, device: d);
                return new Net(m.Parameters, (x, y) => OperatorTraining.RelativeL2(m.Forward(x), (Tensor)y), m, learningRate);
            }
            default:
            {
                var s = new Spn.Spn(RegionGraph.RandomBinary(69, 3, 10, 1), 10, 10, seed: 1, device: d);
                return new Net(s.Parameters, (x, _) => -s.LogLikelihood(x).Mean(), s, learningRate);
            }
        }
    }

    private static void EagerStep(Net net, Tensor x, object y)
    {
        using var scope = new TensorScope();
        net.Step(x, y);
    }

    private static DeviceCounterSnapshot Count(Device d, Action step)
    {
        var before = d.Counters.Snapshot();
        step();
        return d.Counters.Snapshot().Minus(before);
    }

    internal static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalMilliseconds;
    }
}
