using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Engine.Kernels;
using Engine.Kernels.Cpu.Gemm;

namespace Engine.Bench;

/// <summary>
/// The degenerate and tall-skinny products of an FNO-1d and a Mixer training step (weight gradients with a deep k,
/// matrix-vector products, the patch embedding's k = 16): OpenBLAS <c>cblas_sgemm</c> (baseline, one call per batch
/// item, the product only: a bias is not added), the engine's CPU set on its packed path alone
/// (<see cref="SgemmSkinny.Enabled"/> off, the path every shape took before the dedicated ones), and the engine's CPU
/// set as it dispatches (the dedicated matrix-vector and tall-depth paths where the shape takes them). A GFLOP/s
/// column (2 batch m n k / mean time) is added.
/// </summary>
[Config(typeof(Config))]
public class SkinnyGemmBenchmarks
{
    private float[] a = [], b = [], c = [];
    private DeviceBuffer<float>? da, db, dc, dbias;

    /// <summary>The shapes: FNO-1d's (batch 20 x 1024 positions, width 64) and the Mixer's (64 x 256 x 16 patches).</summary>
    public static IEnumerable<SkinnyShape> Shapes =>
    [
        new(1, 64, 64, 20480, true, false, false),
        new(1, 128, 64, 20480, true, false, false),
        new(1, 64, 2, 20480, true, false, false),
        new(1, 256, 16, 4096, true, false, false),
        new(1, 20480, 1, 128, false, true, true),
        new(1, 1, 128, 20480, true, false, false),
        new(1, 20480, 128, 1, false, false, false),
        new(1, 20480, 64, 2, false, true, true),
        new(1, 20480, 64, 64, false, true, true),
        new(1, 4096, 256, 16, false, false, false),
    ];

    /// <summary>The product: C (M x N) = op(A) op(B) per batch item (+ a bias of N values when asked).</summary>
    [ParamsSource(nameof(Shapes))]
    public SkinnyShape Shape { get; set; } = new(1, 64, 64, 20480, true, false, false);

    /// <summary>Allocates and fills the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var s = Shape;
        var rng = new Random(12345);
        a = BenchData.Uniform(rng, (long)s.Batch * s.M * s.K);
        b = BenchData.Uniform(rng, (long)s.Batch * s.K * s.N);
        c = new float[(long)s.Batch * s.M * s.N];
        IKernelSet kernels = Device.Cpu.Kernels;
        da = BenchData.OnCpu(a);
        db = BenchData.OnCpu(b);
        dc = kernels.Allocate(c.Length);
        dbias = s.Bias ? kernels.Allocate(s.N) : null;
        dbias?.CopyFromHost(BenchData.Uniform(rng, s.N));
        Console.WriteLine("// " + OpenBlas.Note);
    }

    /// <summary>Frees the operands and turns the dedicated paths back on.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        SgemmSkinny.Enabled = true;
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
        OpenBlas.SgemmBatch(s.Batch, s.M, s.N, s.K, s.TransA, s.TransB, a, (long)s.M * s.K, b, (long)s.K * s.N, c);
    }

    /// <summary>The engine's CPU set on the packed path alone.</summary>
    [Benchmark]
    public void EnginePacked()
    {
        SgemmSkinny.Enabled = false;
        RunEngine();
    }

    /// <summary>The engine's CPU set as it dispatches.</summary>
    [Benchmark]
    public void EngineDispatched()
    {
        SgemmSkinny.Enabled = true;
        RunEngine();
    }

    private void RunEngine()
    {
        var s = Shape;
        Device.Cpu.Kernels.Gemm(new GemmSize(s.Batch, s.M, s.N, s.K),
            new GemmOperand(da!, s.TransA, (long)s.M * s.K), new GemmOperand(db!, s.TransB, (long)s.K * s.N),
            new GemmOutput(dc!, (long)s.M * s.N) { Epilogue = new GemmEpilogue(dbias) });
    }

    /// <summary>Adds the GFLOP/s column and the ratios to OpenBLAS (absent when the library is).</summary>
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new RateColumn("GFLOP/s", bc => GemmBenchmarks.Ran(bc) ? ((SkinnyShape)bc.Parameters[nameof(Shape)]!).Flops : double.NaN, 1e9));
            RatioColumn.UseRatioColumn(this, GemmBenchmarks.Ran);
        }
    }
}

/// <summary>
/// A batched product shape: C_p (M x N) = op(A_p) (M x K) op(B_p) (K x N), A and B stored transposed when asked, with
/// or without a bias epilogue. Shown as "BxMxNxK" with the transposes (T or F, A then B) and "+bias".
/// </summary>
public sealed record SkinnyShape(int Batch, int M, int N, int K, bool TransA, bool TransB, bool Bias)
{
    /// <summary>Floating-point operations: 2 batch M N K.</summary>
    public double Flops => 2.0 * Batch * M * N * K;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Batch}x{M}x{N}x{K} {(TransA ? 'T' : 'F')}{(TransB ? 'T' : 'F')}{(Bias ? "+bias" : "")}");
}
