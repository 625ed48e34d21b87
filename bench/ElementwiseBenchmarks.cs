using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Engine.Kernels;

namespace Engine.Bench;

/// <summary>
/// Memory-bound kernels on 16M floats against a plain <see cref="Span{T}.CopyTo"/> of the same buffer split over the
/// kernels' threads (<see cref="ThreadedCopy"/>, the bandwidth baseline), with the one-thread copy beside it. GB/s
/// counts bytes read plus written: copy 8 B/element, add 12, sum 4, relu 8.
/// </summary>
[Config(typeof(Cfg))]
public class ElementwiseBenchmarks
{
    private const int N = 16 * 1024 * 1024;
    private DeviceBuffer<float> a = null!, b = null!, c = null!, s = null!;
    private float[] src = null!, dst = null!;
    private readonly IKernelSet k = Device.Cpu.Kernels;

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("GB/s", Bytes, 1e9));

        private static double Bytes(BenchmarkCase c) => c.Descriptor.WorkloadMethod.Name switch
        {
            nameof(Copy) => 8.0 * N,
            nameof(CopyOneThread) => 8.0 * N,
            nameof(Add) => 12.0 * N,
            nameof(Relu) => 8.0 * N,
            nameof(Sum) => 4.0 * N,
            nameof(AddBiasRows) => 8.0 * N,
            _ => 0,
        };
    }

    /// <summary>Allocates and fills the buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        src = new float[N];
        dst = new float[N];
        for (int i = 0; i < N; i++) src[i] = (i % 1000) * 1e-3f;
        a = k.Allocate(N); b = k.Allocate(N); c = k.Allocate(N); s = k.Allocate(1);
        a.CopyFromHost(src); b.CopyFromHost(src);
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        a.Dispose(); b.Dispose(); c.Dispose(); s.Dispose();
    }

    /// <summary>The bandwidth baseline: a copy on the kernels' threads.</summary>
    [Benchmark(Baseline = true)]
    public void Copy() => ThreadedCopy.Run(src, dst);

    /// <summary>The same copy on the calling thread alone.</summary>
    [Benchmark]
    public void CopyOneThread() => src.AsSpan().CopyTo(dst);

    /// <summary>c = a + b, same shapes.</summary>
    [Benchmark]
    public void Add() => k.Binary(BinaryOp.Add, a, [N], b, [N], c, [N]);

    /// <summary>c = a + bias over rows of 4096 (the broadcast fast path).</summary>
    [Benchmark]
    public void AddBiasRows() => k.Binary(BinaryOp.Add, a, [N / 4096, 4096], b, [4096], c, [N / 4096, 4096]);

    /// <summary>c = relu(a).</summary>
    [Benchmark]
    public void Relu() => k.Unary(UnaryOp.Relu, a, c);

    /// <summary>Sum of all elements.</summary>
    [Benchmark]
    public void Sum() => k.Reduce(ReduceOp.Sum, a, [N], [0], s);
}
