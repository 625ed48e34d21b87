using System.Globalization;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using MathNet.Numerics;
using MathNet.Numerics.IntegralTransforms;

namespace Engine.Bench;

/// <summary>
/// Real-input FFTs: a batch of 4096 rfft's of length 1024, and 256 rfft2's of 64 x 64. FFTW (<c>fftwf_plan_many_dft_r2c</c>,
/// planned once with FFTW_MEASURE; one thread is the baseline, the engine's thread count where <c>libfftw3f_threads</c>
/// loads) against the engine's CPU kernel set on its <see cref="CpuThreads.Count"/> threads and on one thread, and MathNet.Numerics (managed; <c>Fourier.ForwardReal</c>
/// per row for rfft, <c>Fourier.ForwardReal</c> per row then <c>Fourier.Forward</c> per kept column for rfft2, since its managed
/// provider has no 2-D transform). GFLOP/s by the usual convention,
/// 2.5 N log2 N per transform of N real points (N = h·w in 2-D), as FFTW's benchmarks count real transforms.
/// </summary>
[Config(typeof(FftConfig))]
public class FftBenchmarks
{
    private float[] input = [], output = [];
    private GCHandle inHandle, outHandle;
    private nint plan1, plan2;
    private DeviceBuffer<float>? dx, dy;
    private float[][] mathNetRows = [];
    private Complex32[] mathNetColumn = [];

    /// <summary>The problems benchmarked.</summary>
    public static IEnumerable<FftCase> Cases => [new(4096, 1, 1024), new(256, 64, 64)];

    /// <summary>The problem.</summary>
    [ParamsSource(nameof(Cases))]
    public FftCase Case { get; set; } = new(4096, 1, 1024);

    /// <summary>Allocates the data, plans FFTW, and uploads the input.</summary>
    [GlobalSetup]
    public unsafe void Setup()
    {
        var c = Case;
        input = GC.AllocateArray<float>(c.RealCount, pinned: true);
        output = GC.AllocateArray<float>(c.ComplexFloats, pinned: true);
        inHandle = GCHandle.Alloc(input, GCHandleType.Pinned);
        outHandle = GCHandle.Alloc(output, GCHandleType.Pinned);
        if (Fftw.IsAvailable)
        {
            // FFTW_MEASURE overwrites the arrays while planning: plan first, fill afterwards.
            int[] dims = c.H == 1 ? [c.W] : [c.H, c.W];
            plan1 = Fftw.PlanManyR2c(dims, c.Batch, (float*)inHandle.AddrOfPinnedObject(), (float*)outHandle.AddrOfPinnedObject(), Fftw.Measure, 1);
            if (Fftw.ThreadsAvailable)
                plan2 = Fftw.PlanManyR2c(dims, c.Batch, (float*)inHandle.AddrOfPinnedObject(), (float*)outHandle.AddrOfPinnedObject(), Fftw.Measure, CpuThreads.Count);
        }
        else
        {
            Console.WriteLine("// NOTE: " + Fftw.Note);
        }
        var rng = new Random(12345);
        for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 2 - 1);

        var k = Device.Cpu.Kernels;
        dx = k.Allocate(input.Length);
        dy = k.Allocate(output.Length);
        dx.CopyFromHost(input);

        Control.UseManaged();
        mathNetRows = Enumerable.Range(0, c.H == 1 ? c.Batch : c.H).Select(_ => new float[c.W + 2]).ToArray();
        mathNetColumn = new Complex32[c.H];
    }

    /// <summary>Frees everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        Fftw.Destroy(plan1);
        Fftw.Destroy(plan2);
        plan1 = plan2 = 0;
        dx?.Dispose();
        dy?.Dispose();
        inHandle.Free();
        outHandle.Free();
    }

    /// <summary>FFTW, one thread (returns at once when the library is missing; see <see cref="Fftw.Note"/>).</summary>
    [Benchmark(Baseline = true)]
    public void FftwOneThread()
    {
        if (plan1 != 0) Fftw.Execute(plan1);
    }

    /// <summary>FFTW on as many threads as the engine's kernels (returns at once when libfftw3f_threads is missing).</summary>
    [Benchmark]
    public void FftwAllCores()
    {
        if (plan2 != 0) Fftw.Execute(plan2);
    }

    /// <summary>The engine's CPU kernel set, lane groups split over <see cref="CpuThreads.Count"/> threads.</summary>
    [Benchmark]
    public void EngineAllCores() => RunEngine();

    /// <summary>The engine's CPU kernel set on the calling thread only.</summary>
    [Benchmark]
    public void EngineOneThread()
    {
        CpuKernelSet.FftThreadLimit = 1;
        try { RunEngine(); }
        finally { CpuKernelSet.FftThreadLimit = 0; }
    }

    private void RunEngine()
    {
        var c = Case;
        var k = Device.Cpu.Kernels.FftKernels();
        if (c.H == 1) k.Rfft(dx!, dy!, c.Batch, c.W);
        else k.Rfft2(dx!, dy!, c.Batch, c.H, c.W);
    }

    /// <summary>MathNet.Numerics' managed FFT (per row real transforms; complex 2-D transforms per image).</summary>
    [Benchmark]
    public void MathNetManaged()
    {
        var c = Case;
        if (c.H == 1)
        {
            for (int r = 0; r < c.Batch; r++)
            {
                var row = mathNetRows[r];
                Array.Copy(input, (long)r * c.W, row, 0, c.W);
                Fourier.ForwardReal(row, c.W, FourierOptions.NoScaling);
            }
            return;
        }
        // The managed provider has no multi-dimensional transform: rows as real transforms, then the w/2 + 1 kept
        // columns as complex ones, as rfft2 does.
        int m = c.W / 2 + 1;
        for (int b = 0; b < c.Batch; b++)
        {
            for (int r = 0; r < c.H; r++)
            {
                var row = mathNetRows[r];
                Array.Copy(input, ((long)b * c.H + r) * c.W, row, 0, c.W);
                Fourier.ForwardReal(row, c.W, FourierOptions.NoScaling);
            }
            for (int k = 0; k < m; k++)
            {
                for (int r = 0; r < c.H; r++) mathNetColumn[r] = new Complex32(mathNetRows[r][2 * k], mathNetRows[r][2 * k + 1]);
                Fourier.Forward(mathNetColumn, FourierOptions.NoScaling);
            }
        }
    }

    /// <summary>Adds the GFLOP/s and Ratio columns ("n/a" for FFTW rows whose library is absent).</summary>
    private sealed class FftConfig : ManualConfig
    {
        public FftConfig()
        {
            AddColumn(new RateColumn("GFLOP/s", bc => Ran(bc) ? ((FftCase)bc.Parameters[nameof(Case)]!).Flops : double.NaN, 1e9));
            RatioColumn.UseRatioColumn(this, Ran);
        }

        private static bool Ran(BenchmarkCase bc) => bc.Descriptor.WorkloadMethod.Name switch
        {
            nameof(FftwOneThread) => Fftw.IsAvailable,
            nameof(FftwAllCores) => Fftw.ThreadsAvailable,
            _ => true,
        };
    }
}

/// <summary>
/// An FFT problem: <see cref="Batch"/> real transforms of shape [H, W] (H = 1: 1-D rfft of length W). Shown as
/// "rfft BxW" or "rfft2 BxHxW".
/// </summary>
public sealed record FftCase(int Batch, int H, int W) : IComparable<FftCase>, IComparable
{
    /// <summary>Real input floats.</summary>
    public int RealCount => Batch * H * W;

    /// <summary>Output floats: [Batch, H, W/2 + 1, 2].</summary>
    public int ComplexFloats => Batch * H * (W / 2 + 1) * 2;

    /// <summary>2.5 N log2 N per transform of N = H·W real points, times the batch.</summary>
    public double Flops => Batch * 2.5 * H * W * Math.Log2((double)H * W);

    /// <inheritdoc />
    public int CompareTo(FftCase? other) => other is null ? 1 : Flops.CompareTo(other.Flops);

    /// <inheritdoc />
    public int CompareTo(object? obj) => CompareTo(obj as FftCase);

    /// <inheritdoc />
    public override string ToString() => H == 1
        ? string.Create(CultureInfo.InvariantCulture, $"rfft {Batch}x{W}")
        : string.Create(CultureInfo.InvariantCulture, $"rfft2 {Batch}x{H}x{W}");
}
