#:project ../../src/Engine/Engine.csproj
#:property Nullable=enable
// Device counters over a training run at sample-task sizes (large enough for the CPU array pool, which keeps only
// buffers of 4,096 elements or more): bytes in use after step 1 and at the end, peak, what the pool caches at the
// end, after an idle pause and after Device.TrimCache. Usage: dotnet run tools/memory-rerun/memory-rerun.cs [steps]
using System.Diagnostics;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

int steps = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 3000;
var cpu = Device.Cpu;
int[] labels = [.. Enumerable.Range(0, 128).Select(i => i % 10)];

foreach (var kind in new[] { "mlp", "mixer", "fno1d" })
{
    var (model, x, loss) = Build(kind);
    using var _ = model;
    using var __ = x;
    using var opt = new Adam(model.Parameters(), 1e-3f);
    long start = cpu.Counters.BytesInUse, first = 0;
    cpu.Counters.ResetPeak();
    var watch = Stopwatch.StartNew();
    for (int step = 0; step < steps; step++)
    {
        using (var scope = new TensorScope()) opt.StepOnLoss(() => loss(model.Forward(x)));
        if (step == 0) first = cpu.Counters.BytesInUse;
    }
    long last = cpu.Counters.BytesInUse, peak = cpu.Counters.PeakBytes, cached = cpu.Counters.CachedBytes;
    Thread.Sleep(TimeSpan.FromSeconds(13)); // the pool empties itself after 10 s without use
    long cachedIdle = cpu.Counters.CachedBytes;
    cpu.TrimCache();
    Console.WriteLine($"{kind}: {steps} steps in {watch.Elapsed.TotalSeconds - 13:F1} s; bytes in use before step 1 {start}, after step 1 {first}, " +
        $"after step {steps} {last} ({(first == last ? "flat" : "NOT FLAT")}); peak {peak}; cached at the end {cached}, after 13 s idle {cachedIdle}, " +
        $"after TrimCache {cpu.Counters.CachedBytes}; pool hits {cpu.Counters.PoolHits}, allocations {cpu.Counters.Allocations}");
}

(Module, Tensor, Func<Tensor, Tensor>) Build(string kind) => kind switch
{
    "mlp" => (new Sequential(new Linear(64, 256, seed: 1, device: cpu), new ReLU(), new Linear(256, 10, seed: 2, device: cpu)),
        Tensor.Normal([128, 64], 3, device: cpu), y => Losses.CrossEntropy(y, labels)),
    "mixer" => (new Mixer(8, 2, 64, 2, 32, 128, 10, randomPermutations: true, seed: 1, device: cpu),
        Tensor.Normal([128, 64], 3, device: cpu), y => Losses.CrossEntropy(y, labels)),
    _ => (new Fno1d(16, 32, blocks: 2, projectionHidden: 64, seed: 1, device: cpu),
        Tensor.Normal([32, 128], 3, device: cpu), y => y.Square().Mean()),
};
