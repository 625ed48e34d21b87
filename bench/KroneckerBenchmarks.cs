using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Bench;

/// <summary>
/// Kronecker layers, forward + backward (gradients of the factors, the bias and the input), batch 128, CPU kernel
/// set, at widths S·C = 256·256 (A 256x256, B 256x256: 65536 features) and 64·512 (A 64x64, B 512x512: 32768).
/// <para>
/// How the comparison with a dense layer is made: the equivalent dense <see cref="Linear"/> would have a 65536x65536
/// (16 GiB) or 32768x32768 (4 GiB) weight, which does not fit, so it cannot be timed. The baseline is instead a dense
/// Linear 4096 -> 4096 at the same batch (fwd + bwd, 12.9 GFLOP), a size at which a dense layer is GEMM-bound, and the
/// comparison is FLOP-normalised: the dense layer of the Kronecker layer's width is taken to run at the baseline's
/// measured GFLOP/s. Then, with F the FLOPs of a row and T its time:
/// <c>FLOP adv</c> = F_dense(width) / F_row; <c>time adv</c> = (F_dense(width) / rate_baseline) / T_row, the
/// estimated speed-up over the dense layer; <c>time/FLOP</c> = time adv / FLOP adv = rate_row / rate_baseline. The
/// issue's target "time advantage at least half the FLOP advantage" is <c>time/FLOP</c> &gt;= 0.5. The
/// <c>GFLOP/s</c> column counts each row's own matrix-product FLOPs (3x the forward's).
/// </para>
/// <para>
/// Rows: <c>Kronecker</c> (y = (A ⊗ B) x + b), <c>KroneckerPermuted</c> (random J_in, J_out), <c>BlockDiagonal</c>
/// (the PK layer, A = I, identity permutations) and <c>BlockDiagonalPermuted</c> (random J_in, J_out, the RP-Mixer
/// layer); the permutation overhead is a permuted row's time over its unpermuted row's, minus one. Permuted rows run
/// the default <see cref="PermutationStrategy.GatherPasses"/>; the <c>...Fused</c> rows run the same layers with
/// <see cref="PermutationStrategy.FusedIntoGemm"/> (gathers folded into the GEMMs' loads and stores), the comparison
/// behind the default.
/// </para>
/// </summary>
[Config(typeof(Cfg))]
public class KroneckerBenchmarks
{
    private const int Batch = 128;
    private const int DenseWidth = 4096;

    private Linear dense = null!;
    private Tensor denseX = null!, denseG = null!;
    private KroneckerLinear kron = null!, bd = null!;
    private PermutedKroneckerLinear kronP = null!, bdP = null!, kronPF = null!, bdPF = null!;
    private Tensor x = null!, gKron = null!, gBd = null!;

    /// <summary>"S·C": A is S x S... see <see cref="Dims"/>.</summary>
    [Params("256x256", "64x512")]
    public string Shape { get; set; } = "256x256";

    /// <summary>(m, n, p, q) of the Kronecker layer: A is m x n = S x S, B is p x q = C x C.</summary>
    private static (int M, int N, int P, int Q) Dims(string shape)
    {
        var parts = shape.Split('x');
        int s = int.Parse(parts[0], CultureInfo.InvariantCulture), c = int.Parse(parts[1], CultureInfo.InvariantCulture);
        return (s, s, c, c);
    }

    /// <summary>Matrix-product FLOPs of one forward + backward of the row.</summary>
    private static double Flops(BenchmarkCase bc)
    {
        string method = bc.Descriptor.WorkloadMethod.Name;
        if (method == nameof(DenseLinear)) return 3 * 2.0 * Batch * DenseWidth * DenseWidth;
        var (m, n, p, q) = Dims((string)bc.Parameters["Shape"]);
        if (method.StartsWith("BlockDiagonal", StringComparison.Ordinal)) return 3 * 2.0 * Batch * n * p * q;
        double aFirst = (double)m * n * q + (double)m * q * p;
        double bFirst = (double)n * q * p + (double)m * n * p;
        return 3 * 2.0 * Batch * Math.Min(aFirst, bFirst);
    }

    /// <summary>FLOPs of the dense layer with the row's width (the baseline row: its own).</summary>
    private static double DenseFlops(BenchmarkCase bc)
    {
        if (bc.Descriptor.WorkloadMethod.Name == nameof(DenseLinear)) return Flops(bc);
        var (m, n, p, q) = Dims((string)bc.Parameters["Shape"]);
        return 3 * 2.0 * Batch * ((double)m * p) * ((double)n * q);
    }

    private sealed class Cfg : ManualConfig
    {
        public Cfg()
        {
            AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring)
                .WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(7));
            AddColumn(new RateColumn("GFLOP/s", Flops, 1e9));
            AddColumn(new DenseColumn("FLOP adv", (_, _) => 1.0, absolute: true));
            AddColumn(new DenseColumn("time adv", (rate, _) => rate, absolute: false));
            AddColumn(new DenseColumn("time/FLOP", (rate, flopAdv) => rate / flopAdv, absolute: false));
        }
    }

    /// <summary>
    /// The FLOP-normalised comparison with the dense layer (see the class summary). <c>absolute</c>: the FLOP
    /// advantage, which needs no timing; otherwise f(time advantage, FLOP advantage).
    /// </summary>
    private sealed class DenseColumn(string name, Func<double, double, double> f, bool absolute) : IColumn
    {
        public string Id => "Dense." + name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 1;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => $"{name}: comparison with the dense layer of the same width, FLOP-normalised by the baseline's GFLOP/s";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

        public string GetValue(Summary summary, BenchmarkCase bc)
        {
            double flopAdv = DenseFlops(bc) / Flops(bc);
            if (absolute) return flopAdv.ToString("F1", CultureInfo.InvariantCulture);
            var baseline = summary.BenchmarksCases.FirstOrDefault(c => c.Descriptor.Baseline &&
                Equals(c.Parameters["Shape"], bc.Parameters["Shape"]));
            var tb = baseline == null ? null : summary[baseline]?.ResultStatistics;
            var ts = summary[bc]?.ResultStatistics;
            if (tb == null || ts == null || tb.Mean <= 0 || ts.Mean <= 0) return "-";
            double baseRate = Flops(baseline!) / tb.Mean;
            double timeAdv = DenseFlops(bc) / baseRate / ts.Mean;
            return f(timeAdv, flopAdv).ToString("F2", CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Builds the layers and data.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var d = Device.Cpu;
        var (m, n, p, q) = Dims(Shape);
        dense = new Linear(DenseWidth, DenseWidth, seed: 1, device: d);
        denseX = Tensor.Uniform([Batch, DenseWidth], 2, -1, 1, d);
        denseX.RequiresGrad = true;
        denseG = Tensor.Uniform([Batch, DenseWidth], 3, -1, 1, d);
        kron = new KroneckerLinear(m, n, p, q, seed: 4, device: d);
        kronP = new PermutedKroneckerLinear(m, n, p, q, Permutation.Random(n * q, 5), Permutation.Random(m * p, 6), seed: 4, device: d);
        bd = PermutedKroneckerLinear.BlockDiagonal(n, p, q, Permutation.Identity(n * q), Permutation.Identity(n * p), seed: 7, device: d);
        bdP = PermutedKroneckerLinear.BlockDiagonal(n, p, q, Permutation.Random(n * q, 8), Permutation.Random(n * p, 9), seed: 7, device: d);
        kronPF = new PermutedKroneckerLinear(m, n, p, q, kronP.InputPermutation, kronP.OutputPermutation, seed: 4, device: d)
        {
            Strategy = PermutationStrategy.FusedIntoGemm,
        };
        bdPF = PermutedKroneckerLinear.BlockDiagonal(n, p, q, bdP.InputPermutation, bdP.OutputPermutation, seed: 7, device: d);
        bdPF.Strategy = PermutationStrategy.FusedIntoGemm;
        x = Tensor.Uniform([Batch, n * q], 10, -1, 1, d);
        x.RequiresGrad = true;
        gKron = Tensor.Uniform([Batch, m * p], 11, -1, 1, d);
        gBd = Tensor.Uniform([Batch, n * p], 12, -1, 1, d);
    }

    /// <summary>Frees the layers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        dense.Dispose();
        kron.Dispose();
        kronP.Dispose();
        bd.Dispose();
        bdP.Dispose();
        kronPF.Dispose();
        bdPF.Dispose();
    }

    private static void Step(Module layer, Tensor input, Tensor grad, Func<Tensor, Tensor> forward)
    {
        using var scope = new TensorScope();
        layer.ZeroGrad();
        input.ZeroGrad();
        forward(input).Backward(grad);
    }

    /// <summary>Dense Linear 4096 -> 4096: the FLOP-rate baseline.</summary>
    [Benchmark(Baseline = true)]
    public void DenseLinear() => Step(dense, denseX, denseG, dense.Forward);

    /// <summary>(A ⊗ B) x + b, no permutations.</summary>
    [Benchmark]
    public void Kronecker() => Step(kron, x, gKron, kron.Forward);

    /// <summary>J_out (A ⊗ B) J_in x + b with random permutations (gather passes, the default).</summary>
    [Benchmark]
    public void KroneckerPermuted() => Step(kronP, x, gKron, kronP.Forward);

    /// <summary>The permuted layer with the gathers folded into the GEMMs.</summary>
    [Benchmark]
    public void KroneckerPermutedFused() => Step(kronPF, x, gKron, kronPF.Forward);

    /// <summary>(I ⊗ W) x + b (PK layer, identity permutations).</summary>
    [Benchmark]
    public void BlockDiagonal() => Step(bd, x, gBd, bd.Forward);

    /// <summary>J_out (I ⊗ W) J_in x + b with random permutations (RP-Mixer layer; gather passes, the default).</summary>
    [Benchmark]
    public void BlockDiagonalPermuted() => Step(bdP, x, gBd, bdP.Forward);

    /// <summary>The permuted PK layer with the gathers folded into the GEMM.</summary>
    [Benchmark]
    public void BlockDiagonalPermutedFused() => Step(bdPF, x, gBd, bdPF.Forward);
}
