using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Kernels;

namespace Engine.Bench;

/// <summary>
/// The CPU kernels beyond plain streaming (see <see cref="ElementwiseBenchmarks"/> for those): transcendental unary
/// ops, broadcasting binaries, softmax, cross-entropy, LayerNorm forward and backward, fused optimizer steps, the
/// squared-norm reduction and reductions over an axis, on 1M-float operands (4 MB: in L2/L3 rather than memory, so
/// compute shows), all through the public <see cref="IKernelSet"/> (so the same class measures any version of the
/// kernels). The baseline is a plain <see cref="Span{T}.CopyTo"/> of one operand on the kernels' threads
/// (<see cref="ThreadedCopy"/>). Compare versions of the kernels by the ratio of the same row across runs.
/// </summary>
[Config(typeof(Cfg))]
public class CpuKernelBenchmarks
{
    private const int Rows = 1024, Cols = 1024, N = Rows * Cols;
    private readonly IKernelSet k = Device.Cpu.Kernels;
    private float[] src = null!, dst = null!;
    private DeviceBuffer<float> x = null!, x2 = null!, y = null!, row = null!, col = null!, mean = null!, rstd = null!,
        gamma = null!, beta = null!, dx = null!, dgamma = null!, dbeta = null!, m = null!, v = null!, loss = null!;
    private DeviceBuffer<int> labels = null!;
    private DeviceScalar lr = null!, step = null!, sum = null!;

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("Melem/s", _ => N, 1e6));
    }

    /// <summary>Allocates and fills the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        src = Enumerable.Range(0, N).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        dst = new float[N];
        x = Up(src);
        x2 = Up(src.Select(t => t * 0.5f + 0.1f).ToArray());
        y = k.Allocate(N);
        row = Up(src.Take(Cols).ToArray());
        col = Up(src.Take(Rows).ToArray());
        mean = k.Allocate(Rows);
        rstd = k.Allocate(Rows);
        gamma = Up(src.Take(Cols).Select(t => 1 + 0.1f * t).ToArray());
        beta = Up(src.Skip(Cols).Take(Cols).ToArray());
        dx = k.Allocate(N);
        dgamma = k.Allocate(Cols);
        dbeta = k.Allocate(Cols);
        m = Up(new float[N]);
        v = Up(new float[N]);
        loss = k.Allocate(Rows);
        labels = k.AllocateInt(Rows);
        labels.CopyFromHost(Enumerable.Range(0, Rows).Select(i => i * 7 % Cols).ToArray());
        k.LayerNormKernels().LayerNorm(x, gamma, beta, y, new LayerNormStats(mean, rstd), new LayerNormSize(Rows, Cols), 1e-5f);
        lr = new DeviceScalar(Device.Cpu, 1e-3);
        step = new DeviceScalar(Device.Cpu, 10);
        sum = new DeviceScalar(Device.Cpu);
    }

    private DeviceBuffer<float> Up(float[] data)
    {
        var b = k.Allocate(data.Length);
        b.CopyFromHost(data);
        return b;
    }

    /// <summary>Frees the operands.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var b in new[] { x, x2, y, row, col, mean, rstd, gamma, beta, dx, dgamma, dbeta, m, v, loss }) b.Dispose();
        labels.Dispose();
        lr.Dispose();
        step.Dispose();
        sum.Dispose();
    }

    /// <summary>The baseline: a copy of one operand on the kernels' threads.</summary>
    [Benchmark(Baseline = true)]
    public void Copy() => ThreadedCopy.Run(src, dst);

    /// <summary>e^x.</summary>
    [Benchmark]
    public void Exp() => k.Unary(UnaryOp.Exp, x, y);

    /// <summary>tanh x.</summary>
    [Benchmark]
    public void Tanh() => k.Unary(UnaryOp.Tanh, x, y);

    /// <summary>GELU, erf form.</summary>
    [Benchmark]
    public void GeluErf() => k.Unary(UnaryOp.GeluErf, x, y);

    /// <summary>ln x.</summary>
    [Benchmark]
    public void Log() => k.Unary(UnaryOp.Log, x2, y);

    /// <summary>x · w over rows (a [1024] row broadcast).</summary>
    [Benchmark]
    public void MulRow() => k.Binary(BinaryOp.Mul, x, [Rows, Cols], row, [Cols], y, [Rows, Cols]);

    /// <summary>max(x, c) with a column broadcast ([1024, 1]).</summary>
    [Benchmark]
    public void MaximumColumn() => k.Binary(BinaryOp.Maximum, x, [Rows, Cols], col, [Rows, 1], y, [Rows, Cols]);

    /// <summary>Softmax over rows of 1024.</summary>
    [Benchmark]
    public void Softmax() => k.Softmax(x, y, Rows, Cols, 1, log: false);

    /// <summary>Log-softmax over the first axis (strided).</summary>
    [Benchmark]
    public void LogSoftmaxStrided() => k.Softmax(x, y, 1, Rows, Cols, log: true);

    /// <summary>Fused cross-entropy over 1024 rows of 1024 classes.</summary>
    [Benchmark]
    public void CrossEntropy() => k.CrossEntropy(x, labels, Rows, Cols, loss);

    /// <summary>LayerNorm forward over rows of 1024.</summary>
    [Benchmark]
    public void LayerNorm() => k.LayerNormKernels().LayerNorm(x, gamma, beta, y, new LayerNormStats(mean, rstd), new LayerNormSize(Rows, Cols), 1e-5f);

    /// <summary>LayerNorm backward over rows of 1024.</summary>
    [Benchmark]
    public void LayerNormBackward() => k.LayerNormKernels().LayerNormBackward(x2, x, new LayerNormStats(mean, rstd), gamma, new LayerNormGradients(dx, dgamma, dbeta), new LayerNormSize(Rows, Cols));

    /// <summary>One fused Adam step.</summary>
    [Benchmark]
    public void Adam() => k.OptimizerKernels().AdamStep(new AdamBuffers(y, x2, m, v), new AdamHyper(0.9f, 0.999f, 1e-8f, 0.01f, true), lr, step);

    /// <summary>One fused SGD step with Nesterov momentum and weight decay.</summary>
    [Benchmark]
    public void Sgd() => k.OptimizerKernels().SgdStep(y, x2, m, new SgdHyper(0.9f, 0f, 1e-4f, true), lr, false);

    /// <summary>Σ x² in double.</summary>
    [Benchmark]
    public void SumOfSquares() => k.OptimizerKernels().SumOfSquares([x], null, sum);

    /// <summary>Sum over the first axis (accumulating rows).</summary>
    [Benchmark]
    public void SumAxis0() => k.Reduce(ReduceOp.Sum, x, [Rows, Cols], [0], row);

    /// <summary>Max over the last axis (one run per output).</summary>
    [Benchmark]
    public void MaxAxis1() => k.Reduce(ReduceOp.Max, x, [Rows, Cols], [1], col);
}
