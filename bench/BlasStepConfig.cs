using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace Engine.Bench;

/// <summary>
/// Columns of a training-step benchmark whose baseline, <see cref="BaselineMethod"/>, runs only the step's matrix
/// products through OpenBLAS: GFLOP/s (the step's GEMM FLOPs / mean time), samples/s, and a Ratio; all "n/a" on the
/// baseline's row when OpenBLAS is missing.
/// </summary>
internal abstract class BlasStepConfig : ManualConfig
{
    /// <summary>The name every step benchmark gives its OpenBLAS-only baseline method.</summary>
    public const string BaselineMethod = "OpenBlasGemmsOnly";

    /// <summary>Adds the columns for a step of <paramref name="stepFlops"/> GEMM FLOPs on <paramref name="batch"/> samples.</summary>
    protected BlasStepConfig(double stepFlops, int batch)
    {
        AddColumn(new RateColumn("GFLOP/s", bc => Ran(bc) ? stepFlops : double.NaN, 1e9));
        AddColumn(new RateColumn("samples/s", bc => Ran(bc) ? batch : double.NaN, 1));
        RatioColumn.UseRatioColumn(this, Ran);
    }

    private static bool Ran(BenchmarkCase bc) => bc.Descriptor.WorkloadMethod.Name != BaselineMethod || OpenBlas.IsAvailable;
}
