using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using static Engine.Kernels.ElementwiseExpression;

namespace Engine.Bench;

/// <summary>
/// The compiled FNO-1d step's broadcasting groups (width 64, 16 modes, batch 20: the [16, 2, 64, 2, 64] spectral
/// weights), each fused as one broadcasting tree beside the member calls it replaces, on the CPU set in the same run:
/// the weights' assembly a·p + b·q (three Binary calls against one <see cref="IFusedElementwiseKernels.ElementwiseTree"/>)
/// and a weight gradient's product summed over the broadcast axes (Binary then Reduce against one
/// <see cref="IFusedElementwiseKernels.ElementwiseTreeReduce"/>).
/// </summary>
[Config(typeof(Cfg))]
public class BroadcastTreeBenchmarks
{
    private static readonly int[] Full = [16, 2, 64, 2, 64], Half = [16, 1, 64, 1, 64], Small = [2, 1, 2, 1];
    private static readonly ElementwiseExpression Assembly = new Binary(BinaryOp.Add, new Binary(BinaryOp.Mul, new Input(0), new Input(1)),
        new Binary(BinaryOp.Mul, new Input(2), new Input(3)));
    private static readonly ElementwiseExpression Product = new Binary(BinaryOp.Mul, new Input(0), new Input(1));
    private readonly CpuKernelSet k = (CpuKernelSet)Device.Cpu.Kernels;
    private IFusedElementwiseKernels F => k;
    private DeviceBuffer<float> a = null!, b = null!, p = null!, q = null!, s = null!, t = null!, u = null!, r = null!;

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddLogicalGroupRules(BenchmarkLogicalGroupRule.ByCategory);
    }

    /// <summary>Fills the operands with uniform values.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        DeviceBuffer<float> Uniform(long n)
        {
            var buffer = k.Allocate(n);
            buffer.CopyFromHost(Enumerable.Range(0, (int)n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            return buffer;
        }
        (a, b, p, q) = (Uniform(16 * 64 * 64), Uniform(16 * 64 * 64), Uniform(4), Uniform(4));
        (s, t, u, r) = (Uniform(262144), Uniform(262144), Uniform(262144), Uniform(16 * 64 * 64));
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var buffer in new[] { a, b, p, q, s, t, u, r }) buffer.Dispose();
    }

    /// <summary>a·p and b·q, then their sum: three Binary calls.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("assembly")]
    public void AssemblyCalls()
    {
        k.Binary(BinaryOp.Mul, a, Half, p, Small, s, Full);
        k.Binary(BinaryOp.Mul, b, Half, q, Small, t, Full);
        k.Binary(BinaryOp.Add, s, Full, t, Full, u, Full);
    }

    /// <summary>a·p + b·q as one broadcasting tree.</summary>
    [Benchmark, BenchmarkCategory("assembly")]
    public void AssemblyTree() => F.ElementwiseTree(Assembly, [a, p, b, q], [Half, Small, Half, Small], u, Full);

    /// <summary>s·q, then its sum over axes 1 and 3: Binary then Reduce.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("gradient")]
    public void GradientCalls()
    {
        k.Binary(BinaryOp.Mul, s, Full, q, Small, t, Full);
        k.Reduce(ReduceOp.Sum, t, Full, [1, 3], r);
    }

    /// <summary>s·q summed over axes 1 and 3 as one tree-reduction.</summary>
    [Benchmark, BenchmarkCategory("gradient")]
    public void GradientTreeReduce() => F.ElementwiseTreeReduce(Product, [s, q], [Full, Small], Full, null, ReduceOp.Sum, [1, 3], r);

    /// <summary>
    /// Both pairs in interleaved rounds (the fused launch, then its member calls, every round), for a machine too busy
    /// for BenchmarkDotNet's separate runs: the median and minimum of each and the ratios.
    /// Run: <c>dotnet run -c Release --project bench -- broadcast-tree-interleaved [rounds]</c>.
    /// </summary>
    public static void Interleaved(int rounds, TextWriter log)
    {
        var bench = new BroadcastTreeBenchmarks();
        bench.Setup();
        try
        {
            var pairs = new (string Name, Action Fused, Action Calls)[]
            {
                ("assembly", bench.AssemblyTree, bench.AssemblyCalls), ("gradient", bench.GradientTreeReduce, bench.GradientCalls),
            };
            foreach (var (_, fused, calls) in pairs)
                for (int i = 0; i < 50; i++)
                {
                    fused();
                    calls();
                }
            var times = pairs.Select(_ => (Fused: new List<double>(), Calls: new List<double>())).ToArray();
            var sw = new System.Diagnostics.Stopwatch();
            double Time(Action run)
            {
                sw.Restart();
                for (int i = 0; i < 10; i++) run();
                return sw.Elapsed.TotalMilliseconds / 10;
            }
            for (int round = 0; round < rounds; round++)
                for (int i = 0; i < pairs.Length; i++)
                {
                    times[i].Fused.Add(Time(pairs[i].Fused));
                    times[i].Calls.Add(Time(pairs[i].Calls));
                }
            log.WriteLine($"FNO-1d spectral shapes [{string.Join(", ", Full)}], {CpuThreads.Count} thread(s), {rounds} interleaved rounds of 10: median (min) ms, fused vs calls");
            for (int i = 0; i < pairs.Length; i++)
            {
                var (fused, calls) = times[i];
                log.WriteLine($"  {pairs[i].Name,-9} {Statistics.Median(fused),6:F3} ({fused.Min(),6:F3})  vs {Statistics.Median(calls),6:F3} ({calls.Min(),6:F3})  " +
                              $"ratio {Statistics.Median(fused) / Statistics.Median(calls):F2} (min {fused.Min() / calls.Min():F2})");
            }
        }
        finally
        {
            bench.Cleanup();
        }
    }
}
