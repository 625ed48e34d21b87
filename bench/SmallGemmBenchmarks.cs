using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Cpu.Gemm;

namespace Engine.Bench;

/// <summary>
/// The small and batched products of the ONNX MLP forward (batch 256), a Mixer step (64 x 256, batch 64) and an
/// FNO-1d step (width 64, batch 20), laid out as the compiled steps call them (transposes, a weight shared by the
/// whole batch, bias and activation epilogues): OpenBLAS <c>cblas_sgemm</c> (baseline, one call per batch item, the
/// product only), the engine's CPU set with the small-product paths off (<see cref="SgemmPacked.SmallProductPaths"/>:
/// the dispatch every shape took before them) and as it dispatches. A GFLOP/s column (2 batch m n k / mean time) is
/// added. <see cref="Interleaved"/> times the two engine dispatches in alternating rounds (bench `small-gemm`).
/// </summary>
[Config(typeof(Config))]
public class SmallGemmBenchmarks
{
    private float[] a = [], b = [], c = [];
    private DeviceBuffer<float>? da, db, dc, dbias;
    private UnaryStep[]? activation;

    /// <summary>The shapes: the MLP forward's three layers, the Mixer's token mixing and weight gradients, the FNO's DFTs.</summary>
    public static IEnumerable<SmallGemmShape> Shapes =>
    [
        new(1, 256, 256, 64, false, true, false, true, "bias+relu"),
        new(1, 256, 128, 256, false, true, false, true, "bias+relu"),
        new(1, 256, 10, 128, false, true, false, true, "bias"),
        new(64, 256, 128, 64, true, true, false, true, "bias+gelu"),
        new(64, 64, 256, 128, false, true, true, false, "bias"),
        new(64, 64, 128, 256, false, false, false, false, ""),
        new(64, 256, 128, 64, true, false, false, true, ""),
        new(64, 64, 256, 128, true, true, true, false, ""),
        new(64, 128, 64, 256, true, true, false, false, ""),
        new(1, 256, 512, 4096, true, false, false, false, ""),
        new(20, 32, 64, 1024, false, false, true, false, ""),
        new(20, 32, 64, 1024, true, false, true, false, ""),
        new(20, 1024, 64, 32, false, false, true, false, ""),
        new(20, 1024, 64, 32, true, false, true, false, ""),
    ];

    /// <summary>The product: C_p (M x N) = op(A_p) op(B_p) per batch item, then the epilogue.</summary>
    [ParamsSource(nameof(Shapes))]
    public SmallGemmShape Shape { get; set; } = new(1, 256, 256, 64, false, true, false, true, "bias+relu");

    /// <summary>Allocates and fills the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var s = Shape;
        var rng = new Random(12345);
        a = BenchData.Uniform(rng, (s.SharedA ? 1 : s.Batch) * (long)s.M * s.K);
        b = BenchData.Uniform(rng, (s.SharedB ? 1 : s.Batch) * (long)s.K * s.N);
        c = new float[(long)s.Batch * s.M * s.N];
        IKernelSet kernels = Device.Cpu.Kernels;
        da = BenchData.OnCpu(a);
        db = BenchData.OnCpu(b);
        dc = kernels.Allocate(c.Length);
        dbias = s.Epilogue.StartsWith("bias", StringComparison.Ordinal) ? kernels.Allocate(s.N) : null;
        dbias?.CopyFromHost(BenchData.Uniform(rng, s.N));
        activation = s.Epilogue.EndsWith("relu", StringComparison.Ordinal) ? [UnaryOp.Relu]
            : s.Epilogue.EndsWith("gelu", StringComparison.Ordinal) ? [UnaryOp.GeluErf] : null;
    }

    /// <summary>Frees the operands and turns the small-product paths back on.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        SgemmPacked.SmallProductPaths = true;
        da?.Dispose();
        db?.Dispose();
        dc?.Dispose();
        dbias?.Dispose();
    }

    /// <summary>OpenBLAS <c>cblas_sgemm</c>, one call per batch item (returns at once when the library is missing).</summary>
    [Benchmark(Baseline = true)]
    public void OpenBlasSgemm()
    {
        var s = Shape;
        OpenBlas.SgemmBatch(s.Batch, s.M, s.N, s.K, s.TransA, s.TransB,
            a, s.SharedA ? 0 : (long)s.M * s.K, b, s.SharedB ? 0 : (long)s.K * s.N, c);
    }

    /// <summary>The engine's CPU set with the small-product paths off.</summary>
    [Benchmark]
    public void EngineBaseline()
    {
        SgemmPacked.SmallProductPaths = false;
        RunEngine();
    }

    /// <summary>The engine's CPU set as it dispatches.</summary>
    [Benchmark]
    public void EngineDispatched()
    {
        SgemmPacked.SmallProductPaths = true;
        RunEngine();
    }

    private void RunEngine()
    {
        var s = Shape;
        Device.Cpu.Kernels.Gemm(new GemmSize(s.Batch, s.M, s.N, s.K),
            new GemmOperand(da!, s.TransA, s.SharedA ? 0 : (long)s.M * s.K),
            new GemmOperand(db!, s.TransB, s.SharedB ? 0 : (long)s.K * s.N),
            new GemmOutput(dc!, (long)s.M * s.N) { Epilogue = new GemmEpilogue(dbias, activation) });
    }

    /// <summary>
    /// Times every shape's two engine dispatches (small-product paths off, then on) in <paramref name="rounds"/>
    /// alternating rounds of <paramref name="calls"/> calls each (OpenBLAS too, when present) and writes the median and
    /// least time per call with their ratio.
    /// </summary>
    public static void Interleaved(int rounds, int calls, TextWriter log)
    {
        log.WriteLine($"{CpuThreads.Count} thread(s), kernel {SgemmPacked.KernelName}, {rounds} interleaved rounds of {calls} calls: " +
                      "median (min) ms per call, small-product paths on vs off");
        var sw = new Stopwatch();
        foreach (var shape in Shapes)
        {
            var bench = new SmallGemmBenchmarks { Shape = shape };
            bench.Setup();
            try
            {
                var on = new List<double>();
                var off = new List<double>();
                var blas = new List<double>();
                double Time(Action run)
                {
                    sw.Restart();
                    for (int i = 0; i < calls; i++)
                    {
                        run();
                    }
                    return sw.Elapsed.TotalMilliseconds / calls;
                }
                bench.EngineDispatched();
                bench.EngineBaseline();
                for (int r = 0; r < rounds; r++)
                {
                    on.Add(Time(bench.EngineDispatched));
                    off.Add(Time(bench.EngineBaseline));
                    if (OpenBlas.IsAvailable)
                    {
                        blas.Add(Time(bench.OpenBlasSgemm));
                    }
                }
                double mOn = Statistics.Median(on), mOff = Statistics.Median(off);
                string blasRate = blas.Count == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $"  OpenBLAS {shape.Flops / Statistics.Median(blas) / 1e6,6:F1} GF/s");
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {shape,-32} {mOn,8:F4} ({on.Min(),8:F4}) {shape.Flops / mOn / 1e6,6:F1} GF/s  vs {mOff,8:F4} ({off.Min(),8:F4}) " +
                    $"{shape.Flops / mOff / 1e6,6:F1} GF/s  ratio {mOn / mOff:F2} (min {on.Min() / off.Min():F2}){blasRate}"));
            }
            finally
            {
                bench.Cleanup();
            }
        }
    }

    /// <summary>Adds the GFLOP/s column and the ratios to OpenBLAS (absent when the library is), with room for the shapes' names.</summary>
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new RateColumn("GFLOP/s", bc => GemmBenchmarks.Ran(bc) ? ((SmallGemmShape)bc.Parameters[nameof(Shape)]!).Flops : double.NaN, 1e9));
            RatioColumn.UseRatioColumn(this, GemmBenchmarks.Ran);
            // The shapes' names are longer than BenchmarkDotNet's default parameter column (20 characters).
            SummaryStyle = BenchmarkDotNet.Reports.SummaryStyle.Default.WithMaxParameterColumnWidth(40);
        }
    }
}

/// <summary>
/// A batched product as a compiled step calls it: C_p (M x N) = op(A_p) (M x K) op(B_p) (K x N), A and B stored
/// transposed when asked, one A or B shared by the batch (batch stride 0) when asked, and an epilogue ("", "bias",
/// "bias+relu" or "bias+gelu"). Shown as "BxMxNxK" with the transposes (T or F, A then B), "sA"/"sB" for a shared
/// operand and the epilogue.
/// </summary>
public sealed record SmallGemmShape(int Batch, int M, int N, int K, bool TransA, bool TransB, bool SharedA, bool SharedB, string Epilogue)
{
    /// <summary>Floating-point operations: 2 batch M N K.</summary>
    public double Flops => 2.0 * Batch * M * N * K;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Batch}x{M}x{N}x{K} {(TransA ? 'T' : 'F')}{(TransB ? 'T' : 'F')}{(SharedA ? " sA" : "")}{(SharedB ? " sB" : "")}" +
        $"{(Epilogue.Length > 0 ? " +" + Epilogue : "")}");
}
