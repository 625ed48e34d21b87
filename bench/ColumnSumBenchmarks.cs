using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Kernels;
using Engine.Kernels.Cpu;

namespace Engine.Bench;

/// <summary>
/// Sums over the rows of a matrix (a kept innermost dim under a reduced one) on the CPU set: the compiled steps' bias
/// gradients, the Mixer's token-bias gradient (64 x 32768, the batch summed) and the FNO-1d's (20480 x 64 and
/// 20480 x 128, the batch and grid summed), read from memory and, for the Mixer's, computed by a fused tree (x0 + x1)
/// as the compiled step runs it. The baseline is the same reduction adding one row at a time
/// (<see cref="CpuKernelSet.GroupedColumnSums"/> off); the grouped rows give the same bits.
/// </summary>
[Config(typeof(Cfg))]
public class ColumnSumBenchmarks
{
    private readonly IKernelSet k = Device.Cpu.Kernels;
    private DeviceBuffer<float> x = null!, x2 = null!, y = null!;
    private int[] shape = null!;

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("GB/s of x", b => 4.0 * ((string)b.Parameters["Shape"]).Split('x').Select(double.Parse).Aggregate((p, q) => p * q), 1e9));
    }

    /// <summary>The summed matrix, rows x columns.</summary>
    [Params("64x32768", "20480x64", "20480x128")]
    public string Shape { get; set; } = "64x32768";

    /// <summary>Allocates and fills the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        shape = Shape.Split('x').Select(int.Parse).ToArray();
        int n = shape[0] * shape[1];
        var rng = new Random(5);
        x = BenchData.OnCpu(BenchData.Uniform(rng, n));
        x2 = BenchData.OnCpu(BenchData.Uniform(rng, n));
        y = k.Allocate(shape[1]);
    }

    /// <summary>Frees the operands and turns the row groups back on.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        CpuKernelSet.GroupedColumnSums = true;
        x.Dispose();
        x2.Dispose();
        y.Dispose();
    }

    /// <summary>The baseline: one row at a time.</summary>
    [Benchmark(Baseline = true)]
    public void RowByRow()
    {
        CpuKernelSet.GroupedColumnSums = false;
        k.Reduce(ReduceOp.Sum, x, shape, [0], y);
    }

    /// <summary>The rows that share their outputs a strip of columns at a time.</summary>
    [Benchmark]
    public void Grouped()
    {
        CpuKernelSet.GroupedColumnSums = true;
        k.Reduce(ReduceOp.Sum, x, shape, [0], y);
    }

    /// <summary>The baseline of the fused sum of x0 + x1 (rows computed, then summed).</summary>
    [Benchmark]
    public void TreeRowByRow()
    {
        CpuKernelSet.GroupedColumnSums = false;
        ((IFusedElementwiseKernels)k).ElementwiseTreeReduce(new ElementwiseExpression.Binary(BinaryOp.Add, new ElementwiseExpression.Input(0),
            new ElementwiseExpression.Input(1)), [x, x2], [shape, shape], shape, null, ReduceOp.Sum, [0], y);
    }

    /// <summary>The fused sum with grouped rows.</summary>
    [Benchmark]
    public void TreeGrouped()
    {
        CpuKernelSet.GroupedColumnSums = true;
        ((IFusedElementwiseKernels)k).ElementwiseTreeReduce(new ElementwiseExpression.Binary(BinaryOp.Add, new ElementwiseExpression.Input(0),
            new ElementwiseExpression.Input(1)), [x, x2], [shape, shape], shape, null, ReduceOp.Sum, [0], y);
    }
}
