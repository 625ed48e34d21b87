using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;

namespace Engine.Bench;

/// <summary>
/// erf, GELU (erf form) and GELU's backward tree on a [20480, 128] activation (2.6M floats, the size of a Mixer
/// block's hidden layer), each beside the same kernel running the previous erf (the exp form, kept here as
/// <see cref="ExpFormErf"/>; for the backward, the same tree with that erf) in the same run, through the same CPU set
/// entry points (threads, vector width). On a shared machine, <c>ENGINE_CPU_THREADS=1</c>
/// keeps the ratios steady: with both cores, another process's burst lands on one row and not its baseline.
/// </summary>
[Config(typeof(Cfg))]
public class ErfBenchmarks
{
    private const int N = 20480 * 128;
    private readonly CpuKernelSet k = (CpuKernelSet)Device.Cpu.Kernels;
    private DeviceBuffer<float> x = null!, g = null!, y = null!;

    private sealed class Cfg : ManualConfig
    {
        public Cfg()
        {
            AddColumn(new RateColumn("Melem/s", _ => N, 1e6));
            AddLogicalGroupRules(BenchmarkLogicalGroupRule.ByCategory);
        }
    }

    /// <summary>Fills x with N(0, 1.5) values (GELU inputs) and g with gradients.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        float Normal() => (float)(1.5 * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        x = k.Allocate(N);
        g = k.Allocate(N);
        y = k.Allocate(N);
        x.CopyFromHost(Enumerable.Range(0, N).Select(_ => Normal()).ToArray());
        g.CopyFromHost(Enumerable.Range(0, N).Select(_ => Normal()).ToArray());
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        x.Dispose();
        g.Dispose();
        y.Dispose();
    }

    /// <summary>erf through the previous fit.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("erf")]
    public void ErfPrevious() => k.Unary(new ExpFormErf.Op(), x, y);

    /// <summary>erf (the kernel set's op).</summary>
    [Benchmark, BenchmarkCategory("erf")]
    public void Erf() => k.Unary(UnaryOp.Erf, x, y);

    /// <summary>GELU through the previous erf.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("gelu")]
    public void GeluPrevious() => k.Unary(new ExpFormErf.GeluOp(), x, y);

    /// <summary>GELU (the kernel set's op).</summary>
    [Benchmark, BenchmarkCategory("gelu")]
    public void Gelu() => k.Unary(UnaryOp.GeluErf, x, y);

    /// <summary>GELU's backward tree as the compiler fuses the backward rule, with the previous erf.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("gelu-backward")]
    public void GeluBackwardPrevious() => k.ElementwiseTree(PreviousGeluBackward, [x, g], TreeBroadcast.Contiguous(N), y);

    /// <summary>GELU's backward tree as the compiler fuses the backward rule, with the kernel set's erf.</summary>
    [Benchmark, BenchmarkCategory("gelu-backward")]
    public void GeluBackward() => k.ElementwiseTree(CurrentGeluBackward, [x, g], TreeBroadcast.Contiguous(N), y);

    /// <summary>
    /// The three pairs in interleaved rounds (each kernel, then its baseline, every round), for a machine too busy for
    /// BenchmarkDotNet's separate runs: the median and the minimum of each, and each ratio to its baseline.
    /// Run: <c>dotnet run -c Release --project bench -- erf-interleaved [rounds]</c>.
    /// </summary>
    public static void Interleaved(int rounds, TextWriter log)
    {
        var b = new ErfBenchmarks();
        b.Setup();
        try
        {
            var pairs = new (string Name, Action Current, Action Previous)[]
            {
                ("erf", b.Erf, b.ErfPrevious), ("gelu", b.Gelu, b.GeluPrevious), ("gelu-backward", b.GeluBackward, b.GeluBackwardPrevious),
            };
            foreach (var (_, current, previous) in pairs) { current(); previous(); }
            var times = pairs.Select(_ => (Current: new List<double>(), Previous: new List<double>())).ToArray();
            var sw = new System.Diagnostics.Stopwatch();
            double Time(Action run)
            {
                sw.Restart();
                run();
                return sw.Elapsed.TotalMilliseconds;
            }
            for (int r = 0; r < rounds; r++)
                for (int i = 0; i < pairs.Length; i++)
                {
                    times[i].Current.Add(Time(pairs[i].Current));
                    times[i].Previous.Add(Time(pairs[i].Previous));
                }
            log.WriteLine($"{N} elements, {CpuThreads.Count} thread(s), {rounds} interleaved rounds: median (min) ms, current vs previous");
            for (int i = 0; i < pairs.Length; i++)
            {
                var (c, p) = times[i];
                log.WriteLine($"  {pairs[i].Name,-14} {Statistics.Median(c),7:F2} ({c.Min(),6:F2})  vs {Statistics.Median(p),7:F2} ({p.Min(),6:F2})  " +
                              $"ratio {Statistics.Median(c) / Statistics.Median(p):F2} (min {c.Min() / p.Min():F2})");
            }
        }
        finally
        {
            b.Cleanup();
        }
    }

    /// <summary>g · (0.5 erf(x/√2) + 0.5 + x e^(-x²/2 - ln √(2π))): the tree of <c>Ops.GeluErf</c>'s backward rule.</summary>
    private static readonly BinaryNode<MulOp, Input1, BinaryNode<AddOp,
        UnaryNode<AffineOp, UnaryNode<ErfOp, UnaryNode<AffineOp, Input0>>>,
        BinaryNode<MulOp, Input0, UnaryNode<ExpOp, UnaryNode<AffineOp, UnaryNode<SquareOp, Input0>>>>>> CurrentGeluBackward = GeluBackwardTree<ErfOp>();

    /// <summary>The same tree with the previous erf.</summary>
    private static readonly BinaryNode<MulOp, Input1, BinaryNode<AddOp,
        UnaryNode<AffineOp, UnaryNode<ExpFormErf.Op, UnaryNode<AffineOp, Input0>>>,
        BinaryNode<MulOp, Input0, UnaryNode<ExpOp, UnaryNode<AffineOp, UnaryNode<SquareOp, Input0>>>>>> PreviousGeluBackward = GeluBackwardTree<ExpFormErf.Op>();

    private static BinaryNode<MulOp, Input1, BinaryNode<AddOp,
        UnaryNode<AffineOp, UnaryNode<TErf, UnaryNode<AffineOp, Input0>>>,
        BinaryNode<MulOp, Input0, UnaryNode<ExpOp, UnaryNode<AffineOp, UnaryNode<SquareOp, Input0>>>>>> GeluBackwardTree<TErf>()
        where TErf : unmanaged, IUnaryOp =>
        new(default, default, new(default,
            new(new(0.5f, 0.5f), new(default, new(new(ScalarMath.InvSqrt2, 0f), default))),
            new(default, default, new(default, new(new(-0.5f, -0.9189385f), new(default, default))))));
}

/// <summary>
/// The erf the kernels ran before the piecewise fit, kept as the benchmarks' baseline: x + x·P(x²) below |x| = 1,
/// 1 - e^Q(min(|x|, 4)) above (P, Q of degree 5, fused multiply-adds, VecMath's exp without its clamp), both branches
/// computed per vector and blended.
/// </summary>
internal static class ExpFormErf
{
    private const float P0 = 0.12837912f, P1 = -0.37612325f, P2 = 0.1128018f, P3 = -0.02671131f, P4 = 0.004917548f,
        P5 = -0.00056314096f;
    private const float Q0 = -0.0026716036f, Q1 = -1.1174388f, Q2 = -0.65448844f, Q3 = -0.088634536f, Q4 = 0.014778244f,
        Q5 = -0.0011504388f;

    /// <summary>erf per lane, not inlined (as the kernels call it).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static TV Erf<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => Body(x);

    /// <summary>GELU, erf form, per lane, not inlined.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static TV Gelu<TV>(TV x) where TV : unmanaged, IFloatVector<TV> =>
        TV.Create(0.5f) * x * (TV.One + Body(x * TV.Create(ScalarMath.InvSqrt2)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Body<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        var a = TV.Abs(x);
        var s = x * x;
        var p = TV.FusedMultiplyAdd(TV.Create(P5), s, TV.Create(P4));
        p = TV.FusedMultiplyAdd(p, s, TV.Create(P3));
        p = TV.FusedMultiplyAdd(p, s, TV.Create(P2));
        p = TV.FusedMultiplyAdd(p, s, TV.Create(P1));
        p = TV.FusedMultiplyAdd(p, s, TV.Create(P0));
        var small = TV.FusedMultiplyAdd(p, x, x);
        var t = TV.MinNative(TV.Create(4f), a);
        var q = TV.FusedMultiplyAdd(TV.Create(Q5), t, TV.Create(Q4));
        q = TV.FusedMultiplyAdd(q, t, TV.Create(Q3));
        q = TV.FusedMultiplyAdd(q, t, TV.Create(Q2));
        q = TV.FusedMultiplyAdd(q, t, TV.Create(Q1));
        q = TV.FusedMultiplyAdd(q, t, TV.Create(Q0));
        var large = (TV.One - VecMath.ExpInRange(q)) | (x & TV.Create(-0f));
        return TV.Select(TV.LessThan(a, TV.One), small, large);
    }

    /// <summary>The previous erf as a unary op struct.</summary>
    public readonly struct Op : IUnaryOp
    {
        public static int Cost => 4;
        public float Scalar(float x) => Erf<Vec1>(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => Erf(x);
    }

    /// <summary>GELU through the previous erf as a unary op struct.</summary>
    public readonly struct GeluOp : IUnaryOp
    {
        public static int Cost => 4;
        public float Scalar(float x) => Gelu<Vec1>(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => Gelu(x);
    }
}
