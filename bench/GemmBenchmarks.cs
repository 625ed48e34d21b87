using System.Globalization;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Kernels;
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

    /// <summary>The problem, "N" for N x N times N x N, or "MxNxK" (C is M x N, inner dimension K).</summary>
    [Params("128", "256", "512", "1024", "2048", "4096x256x256")]
    public string Shape { get; set; } = "128";

    /// <summary>Rows of C.</summary>
    public int M { get; private set; }

    /// <summary>Columns of C.</summary>
    public int N { get; private set; }

    /// <summary>The inner dimension.</summary>
    public int K { get; private set; }

    /// <summary>Parses <see cref="Shape"/>: "N" or "MxNxK".</summary>
    public static (int M, int N, int K) ParseShape(string shape)
    {
        string[] parts = shape.Split('x');
        int[] v = parts.Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return v.Length switch
        {
            1 => (v[0], v[0], v[0]),
            3 => (v[0], v[1], v[2]),
            _ => throw new FormatException($"GemmBenchmarks: shape '{shape}' is neither 'N' nor 'MxNxK'."),
        };
    }

    /// <summary>Allocates and fills the operands for every implementation.</summary>
    [GlobalSetup]
    public void Setup()
    {
        (M, N, K) = ParseShape(Shape);
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

        if (!OpenBlas.IsAvailable)
        {
            Console.WriteLine("// NOTE: " + OpenBlas.Note);
        }
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
    [Benchmark(Baseline = true, Description = "OpenBLAS")]
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

    /// <summary>The engine's CPU kernel set (packed AVX-512 GEMM, all cores).</summary>
    [Benchmark(Description = "Engine CPU")]
    public void EngineCpu() =>
        Device.Cpu.Kernels.Gemm(1, M, N, K, 1f, da!, 0, false, db!, 0, false, 0f, dc!, 0);

    /// <summary>MathNet.Numerics <c>Matrix&lt;float&gt;</c> multiply with the managed provider.</summary>
    [Benchmark(Description = "MathNet managed")]
    public void MathNetManaged() => ma!.Multiply(mb!, mc!);

    /// <summary>Naive i-k-j triple loop (filtered out above <see cref="NaiveMaxSize"/>).</summary>
    [Benchmark(Description = "Naive loop")]
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
            AddColumn(new GflopsColumn());
            AddFilter(new SimpleFilter(bc =>
            {
                if (bc.Descriptor.WorkloadMethod.Name != nameof(NaiveLoop))
                {
                    return true;
                }
                var (m, n, k) = ParseShape(ShapeOf(bc));
                return Math.Max(m, Math.Max(n, k)) <= NaiveMaxSize;
            }));
        }
    }

    private static string ShapeOf(BenchmarkCase bc) => (string)bc.Parameters[nameof(Shape)]!;

    /// <summary>GFLOP/s = 2 m n k / mean time.</summary>
    private sealed class GflopsColumn : IColumn
    {
        public string Id => nameof(GflopsColumn);
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Throughput: 2 m n k floating-point operations divided by the mean time";

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            if (benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(OpenBlasSgemm) && !OpenBlas.IsAvailable)
            {
                return "n/a (no OpenBLAS)";
            }
            double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
            if (meanNs is not > 0)
            {
                return "-";
            }
            var (m, n, k) = ParseShape(ShapeOf(benchmarkCase));
            double gflops = 2.0 * m * n * k / meanNs.Value; // flops per ns = GFLOP/s
            return gflops.ToString("F1", CultureInfo.InvariantCulture);
        }

        public override string ToString() => ColumnName;
    }
}
