using System.Globalization;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Running;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using MathNet.Numerics;
using MathNet.Numerics.LinearAlgebra;

namespace Engine.Bench;

/// <summary>
/// Single-precision GEMM, C = A B (row-major, no transposes, beta = 0), on square sizes 128 to 2048 and a tall-skinny
/// 4096x256 times 256x256: OpenBLAS <c>cblas_sgemm</c> (baseline), the engine's CPU kernel set, MathNet.Numerics'
/// managed provider, and a naive triple loop (sizes up to 512 only). A GFLOP/s column (2 m n k / mean time) is added.
/// </summary>
[Config(typeof(GemmConfig))]
public class GemmBenchmarks
{
    /// <summary>The largest square size the naive triple loop runs at.</summary>
    public const int NaiveMaxSize = 512;

    private float[] a = [], b = [], c = [];
    private GCHandle aHandle, bHandle, cHandle;
    private DeviceBuffer<float>? da, db, dc;
    private Matrix<float>? ma, mb, mc;

    /// <summary>The shapes benchmarked: squares 128 to 2048 and a tall-skinny 4096x256 times 256x256.</summary>
    public static IEnumerable<GemmShape> Shapes =>
    [
        new(128, 128, 128), new(256, 256, 256), new(512, 512, 512), new(1024, 1024, 1024), new(2048, 2048, 2048),
        new(4096, 256, 256),
    ];

    /// <summary>The problem: C (M x N) = A (M x K) B (K x N).</summary>
    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = new(128, 128, 128);

    private int M => Shape.M;
    private int N => Shape.N;
    private int K => Shape.K;

    /// <summary>Allocates and fills the operands for every implementation.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(12345);
        a = new float[M * K];
        b = new float[K * N];
        c = new float[M * N];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (float)(rng.NextDouble() * 2 - 1);
        }
        for (int i = 0; i < b.Length; i++)
        {
            b[i] = (float)(rng.NextDouble() * 2 - 1);
        }
        aHandle = GCHandle.Alloc(a, GCHandleType.Pinned);
        bHandle = GCHandle.Alloc(b, GCHandleType.Pinned);
        cHandle = GCHandle.Alloc(c, GCHandleType.Pinned);

        IKernelSet kernels = Device.Cpu.Kernels;
        da = kernels.Allocate(a.Length);
        db = kernels.Allocate(b.Length);
        dc = kernels.Allocate(c.Length);
        da.CopyFromHost(a);
        db.CopyFromHost(b);

        Control.UseManaged();
        // MathNet stores column-major: the same data read as A^T (K x M) and B^T (N x K); B^T A^T = (A B)^T has the
        // same shape of work, 2 M N K flops.
        ma = Matrix<float>.Build.Dense(N, K, b);
        mb = Matrix<float>.Build.Dense(K, M, a);
        mc = Matrix<float>.Build.Dense(N, M);

        Console.WriteLine("// " + OpenBlas.Note);
    }

    /// <summary>Frees the operands.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        da?.Dispose();
        db?.Dispose();
        dc?.Dispose();
        aHandle.Free();
        bHandle.Free();
        cHandle.Free();
    }

    /// <summary>OpenBLAS <c>cblas_sgemm</c> (returns at once when the library is missing; see <see cref="OpenBlas.Note"/>).</summary>
    [Benchmark(Baseline = true)]
    public unsafe void OpenBlasSgemm()
    {
        if (!OpenBlas.IsAvailable)
        {
            return;
        }
        OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, M, N, K, 1f,
            (float*)aHandle.AddrOfPinnedObject(), K, (float*)bHandle.AddrOfPinnedObject(), N,
            0f, (float*)cHandle.AddrOfPinnedObject(), N);
    }

    /// <summary>The engine's CPU kernel set (packed GEMM at the machine's vector width, <see cref="CpuThreads.Count"/> threads).</summary>
    [Benchmark]
    public void EngineCpu() =>
        Device.Cpu.Kernels.Gemm(GemmSize.Single(M, N, K), new GemmOperand(da!), new GemmOperand(db!), new GemmOutput(dc!));

    /// <summary>MathNet.Numerics <c>Matrix&lt;float&gt;</c> multiply with the managed provider.</summary>
    [Benchmark]
    public void MathNetManaged() => ma!.Multiply(mb!, mc!);

    /// <summary>Naive i-k-j triple loop (filtered out above <see cref="NaiveMaxSize"/>).</summary>
    [Benchmark]
    public void NaiveLoop()
    {
        int m = M, n = N, k = K;
        float[] x = a, y = b, z = c;
        Array.Clear(z);
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++)
            {
                float v = x[i * k + p];
                int yRow = p * n, zRow = i * n;
                for (int j = 0; j < n; j++)
                {
                    z[zRow + j] += v * y[yRow + j];
                }
            }
        }
    }

    /// <summary>Adds the GFLOP/s column and drops naive runs above <see cref="NaiveMaxSize"/>.</summary>
    private sealed class GemmConfig : ManualConfig
    {
        public GemmConfig()
        {
            // GFLOP/s = 2 m n k / mean time; "n/a" for the OpenBLAS rows, and every ratio, when the library is absent.
            AddColumn(new RateColumn("GFLOP/s", bc => Ran(bc) ? ShapeOf(bc).Flops : double.NaN, 1e9));
            RatioColumn.UseRatioColumn(this, Ran);
            AddFilter(new SimpleFilter(bc =>
            {
                if (bc.Descriptor.WorkloadMethod.Name != nameof(NaiveLoop))
                {
                    return true;
                }
                GemmShape s = ShapeOf(bc);
                return Math.Max(s.M, Math.Max(s.N, s.K)) <= NaiveMaxSize;
            }));
        }
    }

    /// <summary>False for the OpenBLAS rows (of any GEMM class, named <c>OpenBlasSgemm</c>) when the library is absent.</summary>
    internal static bool Ran(BenchmarkCase bc) =>
        bc.Descriptor.WorkloadMethod.Name != nameof(OpenBlasSgemm) || OpenBlas.IsAvailable;

    private static GemmShape ShapeOf(BenchmarkCase bc) => (GemmShape)bc.Parameters[nameof(Shape)]!;
}

/// <summary>
/// A GEMM shape, C (M x N) = A (M x K) B (K x N). Shown as "N" when square, else "MxNxK"; ordered by work so
/// BenchmarkDotNet lists sizes in increasing order.
/// </summary>
public sealed record GemmShape(int M, int N, int K) : IComparable<GemmShape>, IComparable
{
    /// <summary>Floating-point operations of one product: 2 M N K.</summary>
    public double Flops => 2.0 * M * N * K;

    /// <inheritdoc />
    public int CompareTo(GemmShape? other) => other is null ? 1 : Flops.CompareTo(other.Flops);

    /// <inheritdoc />
    public int CompareTo(object? obj) => CompareTo(obj as GemmShape);

    /// <inheritdoc />
    public override string ToString() =>
        M == N && N == K ? M.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{M}x{N}x{K}");
}
