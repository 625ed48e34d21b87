using System.Diagnostics;
using System.Globalization;
using Engine.Autodiff;
using Engine.Distributed;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.Distributed;

/// <summary>
/// Times one training step (forward, cross-entropy, backward, Adam) of the bench's MLP and Mixer steps
/// (bench/MlpStepBenchmarks.cs, bench/MixerStepBenchmarks.cs) in one run of every rank. Each round runs, in turn,
/// the single-process step on the whole global batch on every rank at once (each on its own core, no communication:
/// the baseline), the data-parallel step on the rank's share with the bucket all-reduces overlapping the backward
/// pass, and the same without overlap, so the three see the same machine load. Run it as
/// <c>mpirun -np 2 -x ENGINE_CPU_THREADS=1 dotnet Engine.Tests.Distributed.dll measure OUT [ROUNDS]</c>; rank 0
/// prints a table and writes OUT/measure.txt.
/// </summary>
public static class StepTiming
{
    private sealed record Workload(string Name, int GlobalBatch, Func<Module> CreateModel, int[] SampleShape, int Classes);

    private static Device Cpu => Device.Cpu;

    private static readonly Workload[] Workloads =
    [
        new("mlp 784-1024-1024-10", 256, () => new Sequential(new Linear(784, 1024, seed: 1, device: Cpu), new ReLU(),
            new Linear(1024, 1024, seed: 2, device: Cpu), new ReLU(), new Linear(1024, 10, seed: 3, device: Cpu)), [784], 10),
        new("mixer 4 blocks 64x256", 64, MixerStep, [64 * 256], 10),
    ];

    private static Module MixerStep() => new MixerStepModel();

    /// <summary>The bench's Mixer step model: blocks on [B, 64·256] tokens, LayerNorm, mean over tokens, linear head.</summary>
    private sealed class MixerStepModel : Module
    {
        private const int S = 64, C = 256;
        private readonly Sequential blocks;
        private readonly LayerNorm norm;
        private readonly Linear head;

        public MixerStepModel()
        {
            blocks = RegisterModule("blocks", new Sequential(Enumerable.Range(0, 4)
                .Select(i => (Module)new MixerBlock(S, C, 128, 512, seed: i + 1, device: Cpu)).ToArray()));
            norm = RegisterModule("norm", new LayerNorm(C, device: Cpu));
            head = RegisterModule("head", new Linear(C, 10, seed: 9, device: Cpu));
        }

        public override Tensor Forward(Tensor input)
        {
            var h = blocks.Forward(input);
            return head.Forward(norm.Forward(h.Reshape(input.Shape[0], S, C)).Mean(1));
        }
    }

    /// <summary>Bucket cap of the measured runs: small enough that the steps have several buckets to overlap.</summary>
    public const double BucketCapMegabytes = 1;

    /// <summary>Runs the measurement; every rank calls it.</summary>
    public static void Run(Communicator comm, string output, int steps)
    {
        var lines = new List<string>
        {
            $"{comm.Size} ranks ({comm.Backend}), {Kernels.Cpu.CpuThreads.Count} CPU kernel thread(s) per rank, buckets of {BucketCapMegabytes} MB; "
                + $"{steps} rounds after 2 warm-up rounds, each round one step of every configuration in turn; median step time",
            "workload | single process, whole batch | data-parallel step (vs single) | all-reduce per step | hidden behind backward | exposed wait per step | data-parallel, no overlap",
            "---|---:|---:|---:|---:|---:|---:",
        };
        foreach (var w in Workloads)
        {
            using var single = new Replica(w, comm, null);
            using var overlapped = new Replica(w, comm, true);
            using var serial = new Replica(w, comm, false);
            var configurations = new[] { single, overlapped, serial };
            var times = configurations.Select(_ => new List<double>()).ToArray();
            comm.Barrier();
            for (int round = 0; round < steps + 2; round++)
            {
                if (round == 2) overlapped.Wrapper!.ResetStatistics();
                for (int c = 0; c < configurations.Length; c++)
                {
                    var sw = Stopwatch.StartNew();
                    configurations[c].Step();
                    if (round >= 2) times[c].Add(sw.Elapsed.TotalMilliseconds);
                }
            }
            comm.Barrier();
            var stats = overlapped.Wrapper!.Statistics;
            double one = Median(times[0]), parallel = Median(times[1]), noOverlap = Median(times[2]);
            double perStep(TimeSpan t) => t.TotalMilliseconds / stats.Synchronizations;
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{w.Name} | {one:F1} ms (batch {w.GlobalBatch}) | {parallel:F1} ms ({parallel / one:F2}x) | {perStep(stats.AllReduce):F2} ms ({stats.Bytes / stats.Synchronizations / 1e6:F1} MB, {stats.Buckets / stats.Synchronizations} buckets) | {stats.HiddenFraction:P0} | {perStep(stats.ExposedWait):F2} ms | {noOverlap:F1} ms"));
        }
        if (comm.Rank != 0) return;
        foreach (var l in lines) Console.WriteLine(l);
        File.WriteAllLines(Path.Combine(output, "measure.txt"), lines);
    }

    /// <summary>
    /// One configuration of a workload on this rank: the whole global batch without communication (no overlap setting),
    /// or a <see cref="DistributedDataParallel"/> replica on this rank's share, with or without overlap.
    /// </summary>
    private sealed class Replica : IDisposable
    {
        private readonly Module model;
        private readonly Optimizer optimizer;
        private readonly Tensor x;
        private readonly IndexTensor labels;

        public Replica(Workload w, Communicator comm, bool? overlap)
        {
            model = w.CreateModel();
            if (overlap is bool o)
                Wrapper = new DistributedDataParallel(model, comm,
                    new DistributedDataParallelOptions { OverlapWithBackward = o, BucketCapMegabytes = BucketCapMegabytes });
            optimizer = new Adam(model.Parameters(), 1e-3f);
            int size = overlap == null ? w.GlobalBatch : w.GlobalBatch / comm.Size, seed = 5 + (overlap == null ? 0 : comm.Rank);
            x = Tensor.Normal([size, .. w.SampleShape], (ulong)seed, device: Cpu);
            labels = new IndexTensor(Enumerable.Range(0, size).Select(i => (i + seed) % w.Classes).ToArray());
        }

        public DistributedDataParallel? Wrapper { get; }

        public void Step() => StepTiming.Step((Module?)Wrapper ?? model, optimizer, x, labels);

        public void Dispose()
        {
            optimizer.Dispose();
            Wrapper?.Dispose();
            model.Dispose();
            x.Dispose();
        }
    }

    private static void Step(Module model, Optimizer opt, Tensor x, IndexTensor labels)
    {
        using var scope = new TensorScope();
        opt.ZeroGrad();
        Losses.CrossEntropy(model.Forward(x), labels).Backward();
        opt.Step();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
