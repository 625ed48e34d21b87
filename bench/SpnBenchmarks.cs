using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Spn;

namespace Engine.Bench;

/// <summary>
/// One sum-product network training pass (forward log-likelihood, mean, backward) on the CPU kernel set at the plants
/// shape: 69 binary variables, 10 repetitions, I = S = 10, batch 512, region-graph depth 3 or 4. The data is random
/// binary with plants' density (18% ones), so the benchmark needs no files. Reports samples/s; the gradient-free
/// forward pass in the same run is the reference point for what the backward pass costs.
/// </summary>
[Config(typeof(Cfg))]
public class SpnStepBenchmarks
{
    private const int Batch = 512, Vars = 69, Reps = 10, K = 10;
    private Spn.Spn spn = null!;
    private Tensor x = null!;

    /// <summary>Depth of the region graph (2^depth leaf regions per repetition).</summary>
    [Params(3, 4)]
    public int Depth { get; set; }

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("samples/s", _ => Batch, 1));
    }

    /// <summary>Builds the network and the batch.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        spn = new Spn.Spn(RegionGraph.RandomBinary(Vars, Depth, Reps, 1), K, K, seed: 1, device: d);
        var rng = new Random(2);
        x = Tensor.FromArray(Enumerable.Range(0, Batch * Vars).Select(_ => rng.NextDouble() < 0.18 ? 1f : 0f).ToArray(), [Batch, Vars], d);
        Console.WriteLine($"spn: depth {Depth}, {spn.ParameterCount} parameters");
    }

    /// <summary>Frees the network.</summary>
    [GlobalCleanup]
    public void Cleanup() => spn.Dispose();

    /// <summary>Log-likelihood only, no tape.</summary>
    [Benchmark(Baseline = true)]
    public float Forward()
    {
        using var scope = new TensorScope();
        using var _ = GradMode.NoGrad();
        return spn.LogLikelihood(x).Mean().Item();
    }

    /// <summary>Log-likelihood, mean, backward to every parameter.</summary>
    [Benchmark]
    public float ForwardBackward()
    {
        using var scope = new TensorScope();
        spn.ZeroGrad();
        var loss = -spn.LogLikelihood(x).Mean();
        loss.Backward();
        return loss.Item();
    }
}

/// <summary>
/// The sum-layer kernel alone (log-sum-exp of x + log w over kIn, for every batch row, region and output) at the
/// largest sum layer of the depth-4 plants network: batch 512, 80 regions, kIn = 100 products, kOut = 10 sums;
/// against a plain host loop (scalar MathF.Exp/Log, max subtracted, one thread). Rate: terms (exp evaluations) per second.
/// </summary>
[Config(typeof(Cfg))]
public class SpnSumLayerBenchmarks
{
    private const int Batch = 512, Regions = 80, KIn = 100, KOut = 10;
    private float[] hx = null!, hw = null!, hy = null!;
    private DeviceBuffer<float> bx = null!, bw = null!, by = null!, bg = null!, bdx = null!, bdw = null!;
    private ISpnKernels k = null!;
    private static readonly SpnSumSize Size = new(Batch, Regions, KIn, KOut);

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("Gterms/s", _ => (double)Batch * Regions * KIn * KOut, 1e9));
    }

    /// <summary>Random log-densities and normalised log weights.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        hx = Enumerable.Range(0, Batch * Regions * KIn).Select(_ => (float)(-20 * rng.NextDouble())).ToArray();
        hw = Enumerable.Range(0, Regions * KOut * KIn).Select(_ => (float)(-Math.Log(KIn) + rng.NextDouble() - 0.5)).ToArray();
        hy = new float[Batch * Regions * KOut];
        var core = Device.Cpu.Kernels;
        k = core.SpnKernels();
        bx = core.Allocate(hx.Length); bx.CopyFromHost(hx);
        bw = core.Allocate(hw.Length); bw.CopyFromHost(hw);
        by = core.Allocate(hy.Length);
        bg = core.Allocate(hy.Length); core.Fill(bg, 1f);
        bdx = core.Allocate(hx.Length);
        bdw = core.Allocate(hw.Length);
        k.SpnSum(bx, bw, Size, false, by); // the backward benchmark reads the forward's output
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var b in new[] { bx, bw, by, bg, bdx, bdw }) b.Dispose();
    }

    /// <summary>Plain host log-sum-exp: three nested loops, scalar exp.</summary>
    [Benchmark(Baseline = true)]
    public float HostLogSumExp()
    {
        for (int n = 0; n < Batch; n++)
            for (int r = 0; r < Regions; r++)
                for (int o = 0; o < KOut; o++)
                {
                    int xo = (n * Regions + r) * KIn, wo = (r * KOut + o) * KIn;
                    float m = float.NegativeInfinity;
                    for (int q = 0; q < KIn; q++) m = Math.Max(m, hx[xo + q] + hw[wo + q]);
                    float s = 0;
                    for (int q = 0; q < KIn; q++) s += MathF.Exp(hx[xo + q] + hw[wo + q] - m);
                    hy[(n * Regions + r) * KOut + o] = m + MathF.Log(s);
                }
        return hy[0];
    }

    /// <summary>The CPU kernel set's SpnSum (SIMD exp, split over cores).</summary>
    [Benchmark]
    public void KernelSum() => k.SpnSum(bx, bw, Size, false, by);

    /// <summary>The CPU kernel set's SpnSumBackward (posteriors, input and weight gradients).</summary>
    [Benchmark]
    public void KernelSumBackward() => k.SpnSumBackward(bx, bw, by, bg, Size, bdx, bdw);
}

/// <summary>
/// A product layer and the sum layer reading it, at the first level of the depth-3 plants network (batch 512, 80 child
/// regions of 10 densities on each side, 40 product regions of 100 products, 40 sum regions of 10 sums): the two
/// calls (the baseline, what an eager step launches) against one <see cref="ISpnProductSumKernels.SpnProductSum"/> call
/// storing the products (a compiled training step) or not (a compiled forward pass). Rate: sum terms per second.
/// </summary>
[Config(typeof(Cfg))]
public class SpnProductSumBenchmarks
{
    private const int Batch = 512, Children = 80, K = 10, Regions = 40, KOut = 10;
    private DeviceBuffer<float> a = null!, w = null!, products = null!, y = null!;
    private DeviceBuffer<int>[] maps = null!;
    private SpnProductMap map;
    private ISpnKernels spn = null!;
    private ISpnProductSumKernels fused = null!;
    private static readonly SpnSumSize Size = new(Batch, Regions, K * K, KOut);

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("Gterms/s", _ => (double)Batch * Regions * K * K * KOut, 1e9));
    }

    /// <summary>Random children, a random pairing of them, normalised log weights.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(4);
        var core = Device.Cpu.Kernels;
        (spn, fused) = (core.SpnKernels(), (ISpnProductSumKernels)core);
        float[] Uniform(long n, double lo, double hi) => Enumerable.Range(0, (int)n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();
        DeviceBuffer<float> Up(float[] h)
        {
            var b = core.Allocate(h.Length);
            b.CopyFromHost(h);
            return b;
        }
        a = Up(Uniform((long)Batch * Children * K, -20, 0));
        w = Up(Uniform((long)Regions * KOut * K * K, -Math.Log(K * K) - 0.5, -Math.Log(K * K) + 0.5));
        products = core.Allocate((long)Batch * Regions * K * K);
        y = core.Allocate((long)Batch * Regions * KOut);
        var left = Enumerable.Range(0, Regions).Select(r => 2 * r).ToArray();
        var right = Enumerable.Range(0, Regions).Select(r => 2 * r + 1).ToArray();
        DeviceBuffer<int> UpInt(int[] h)
        {
            var b = core.AllocateInt(h.Length);
            b.CopyFromHost(h);
            return b;
        }
        // Each child has one parent: ParentStart counts 0 or 1 per child.
        int[] Starts(int[] child) => Enumerable.Range(0, Children + 1).Select(c => child.Count(v => v < c)).ToArray();
        maps = [UpInt(left), UpInt(Starts(left)), UpInt(Enumerable.Range(0, Regions).ToArray()), UpInt(right), UpInt(Starts(right)),
            UpInt(Enumerable.Range(0, Regions).ToArray())];
        map = new SpnProductMap(new SpnChildMap(maps[0], maps[1], maps[2], Children), new SpnChildMap(maps[3], maps[4], maps[5], Children), Regions);
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var b in new[] { a, w, products, y }) b.Dispose();
        foreach (var b in maps) b.Dispose();
    }

    /// <summary>The product layer, then the sum layer over its stored result.</summary>
    [Benchmark(Baseline = true)]
    public void TwoCalls()
    {
        spn.SpnProduct(a, K, a, K, Batch, map, products);
        spn.SpnSum(products, w, Size, false, y);
    }

    /// <summary>One call that stores the products too.</summary>
    [Benchmark]
    public void OneCallStoringProducts() => fused.SpnProductSum(a, K, a, K, map, w, Size, false, products, y);

    /// <summary>One call that stores only the sums.</summary>
    [Benchmark]
    public void OneCallSumsOnly() => fused.SpnProductSum(a, K, a, K, map, w, Size, false, null, y);
}
