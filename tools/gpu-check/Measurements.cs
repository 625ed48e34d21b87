using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Device = Engine.Kernels.Device;

namespace Engine.GpuCheck;

/// <summary>
/// The measured part of the check, each figure logged as soon as it is known: the device; its FP32 peak (an FMA loop)
/// and copy bandwidth; the CPU's FP32 peak; GEMM at 1024/2048/4096; rfft of 4096 rows of 1024; MLP, Mixer and FNO
/// training steps on the device and on the CPU, and on the device compiled beside eager; both spectral routes at the Burgers shape; and what the GEMM kernel
/// became (PTX instruction counts, and on CUDA the driver's register and local-memory figures).
/// </summary>
public static class Measurements
{
    /// <summary>Runs every measurement.</summary>
    public static void Run(Options o, ResultLog log)
    {
        log.Add("device", "selection", 0, "", Device.DescribeSelection());
        var gpu = ChooseDevice(o);
        log.Add("device", "ilgpu", 0, "", $"{gpu.Name}: {Device.Probe().FindingFor(gpu.Kind)}");
        Try(log, "peak", () => log.Add("peak", "fp32", FmaPeak(gpu, o.Small), "GFLOP/s", "FMA loop, 8 chains per thread"));
        Try(log, "peak", () => log.Add("peak", "copy", CopyBandwidth(gpu, o.Small), "GB/s", "device-to-device copy, read + write"));
        Try(log, "peak", () => log.Add("peak", "cpu-fp32", CpuFmaPeak(o.Small), "GFLOP/s", $"FMA loop on {Environment.ProcessorCount} cores"));
        Try(log, "gemm-kernel", () => GemmKernelFacts(gpu, log));
        foreach (int n in o.Small ? new[] { 64, 96 } : [1024, 2048, 4096])
            Try(log, "gemm", () => log.Add("gemm", n.ToString(), Gemm(gpu, n), "GFLOP/s", "m = n = k, fp32"));
        var (rows, len) = o.Small ? (64, 256) : (4096, 1024);
        Try(log, "rfft", () => log.Add("rfft", $"{rows}x{len}", Rfft(gpu, rows, len), "ms", "batch of rows, real to n/2+1 bins"));
        foreach (var device in new[] { gpu, Device.Cpu })
        foreach (var make in new Func<Device, bool, StepWorkload>[] { StepWorkload.Mlp, StepWorkload.Mixer, StepWorkload.Fno })
            Try(log, "step", () =>
            {
                using var w = make(device, o.Small);
                double ms = StepMs(w, device);
                log.Add("step", $"{w.Name}@{device.Name}", ms, "ms", FormattableString.Invariant($"{w.Flops / 1e9:G4} GFLOP of matrix products"));
            });
        foreach (var make in new Func<Device, bool, StepWorkload>[] { StepWorkload.Mlp, StepWorkload.Mixer, StepWorkload.Fno })
            Try(log, "compiled", () => CompiledStep(make, gpu, o.Small, log));
        Try(log, "route", () => SpectralRoutes(gpu, o.Small, log));
    }

    /// <summary>Logs a failed measurement instead of stopping the check.</summary>
    private static void Try(ResultLog log, string kind, Action run)
    {
        try
        {
            run();
        }
        catch (Exception e)
        {
            log.Add(kind, "error", double.NaN, "", $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>The device of the GPU rows: <c>--device</c>, else CUDA when present, else the emulator.</summary>
    internal static Device ChooseDevice(Options o)
    {
        if (o.Device != null) return Device.Parse(o.Device);
        return Device.Available().Contains(DeviceKind.Cuda) ? Device.Get(DeviceKind.Cuda) : Device.Get(DeviceKind.IlgpuCpu);
    }

    private static Accelerator AcceleratorOf(Device d) =>
        (d.Kernels as IlgpuKernelSet)?.Accelerator ?? throw new ArgumentException($"{d.Name} is not an ILGPU device.");

    /// <summary>
    /// Seconds per call of <paramref name="run"/>: one warm-up call (kernel compilation), then batches of doubling size
    /// until a batch takes <paramref name="minSeconds"/>; the best of three such batches.
    /// </summary>
    private static double SecondsPerCall(Action run, Action sync, double minSeconds)
    {
        run();
        sync();
        double best = double.MaxValue;
        int reps = 1;
        for (int round = 0; round < 3; round++)
        {
            while (true)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < reps; i++) run();
                sync();
                double s = sw.Elapsed.TotalSeconds;
                if (s >= minSeconds || reps >= 1 << 20)
                {
                    best = Math.Min(best, s / reps);
                    break;
                }
                reps *= 2;
            }
        }
        return best;
    }

    private static void FmaLoopKernel(Index1D i, ArrayView<float> y, int iterations)
    {
        float a0 = i, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
        const float m = 0.9999999f, c = 1e-7f;
        for (int t = 0; t < iterations; t++)
        {
            a0 = KernelMath.Fma(a0, m, c); a1 = KernelMath.Fma(a1, m, c); a2 = KernelMath.Fma(a2, m, c); a3 = KernelMath.Fma(a3, m, c);
            a4 = KernelMath.Fma(a4, m, c); a5 = KernelMath.Fma(a5, m, c); a6 = KernelMath.Fma(a6, m, c); a7 = KernelMath.Fma(a7, m, c);
        }
        y[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    }

    /// <summary>FP32 GFLOP/s of independent FMA chains filling the device (the attainable peak).</summary>
    private static double FmaPeak(Device d, bool small)
    {
        var acc = AcceleratorOf(d);
        int threads = small ? 256 : Math.Max(1, acc.NumMultiprocessors) * acc.MaxNumThreadsPerMultiprocessor * 4;
        int iterations = small ? 256 : 4096;
        var k = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int>(FmaLoopKernel);
        using var y = acc.Allocate1D<float>(threads);
        double s = SecondsPerCall(() => k(threads, y.View, iterations), acc.Synchronize, small ? 0.05 : 0.3);
        return 2.0 * 8 * iterations * threads / s / 1e9;
    }

    /// <summary>GB/s (bytes read + written) of a device-to-device copy of 256 MB.</summary>
    private static double CopyBandwidth(Device d, bool small)
    {
        long n = small ? 1 << 16 : 64L << 20;
        var k = d.Kernels;
        using var a = k.Allocate(n);
        using var b = k.Allocate(n);
        k.Fill(a, 1f);
        double s = SecondsPerCall(() => k.Copy(a, 0, b, 0, n), k.Synchronize, small ? 0.05 : 0.3);
        return 2.0 * 4 * n / s / 1e9;
    }

    /// <summary>FP32 GFLOP/s of independent vector FMA chains on every core.</summary>
    private static double CpuFmaPeak(bool small)
    {
        int cores = Environment.ProcessorCount;
        long iterations = small ? 1 << 16 : 1 << 24;
        int lanes = Vector256.IsHardwareAccelerated ? Vector256<float>.Count : Vector128<float>.Count;
        var sw = Stopwatch.StartNew();
        var sink = new float[cores];
        Parallel.For(0, cores, c =>
        {
            var m = Vector256.Create(0.9999999f);
            var add = Vector256.Create(1e-7f);
            Vector256<float> a0 = Vector256.Create((float)c), a1 = a0 + add, a2 = a1 + add, a3 = a2 + add;
            Vector256<float> a4 = a3 + add, a5 = a4 + add, a6 = a5 + add, a7 = a6 + add;
            for (long t = 0; t < iterations; t++)
            {
                a0 = Vector256.FusedMultiplyAdd(a0, m, add); a1 = Vector256.FusedMultiplyAdd(a1, m, add);
                a2 = Vector256.FusedMultiplyAdd(a2, m, add); a3 = Vector256.FusedMultiplyAdd(a3, m, add);
                a4 = Vector256.FusedMultiplyAdd(a4, m, add); a5 = Vector256.FusedMultiplyAdd(a5, m, add);
                a6 = Vector256.FusedMultiplyAdd(a6, m, add); a7 = Vector256.FusedMultiplyAdd(a7, m, add);
            }
            sink[c] = Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
        });
        return 2.0 * 8 * lanes * iterations * cores / sw.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>GFLOP/s of C = A B for n x n fp32 matrices through the kernel set.</summary>
    private static double Gemm(Device d, int n)
    {
        var k = d.Kernels;
        long size = (long)n * n;
        using var a = k.Allocate(size);
        using var b = k.Allocate(size);
        using var c = k.Allocate(size);
        k.RandomUniform(a, 1, -1, 1);
        k.RandomUniform(b, 2, -1, 1);
        double s = SecondsPerCall(() => k.Gemm(GemmSize.Single(n, n, n), new GemmOperand(a), new GemmOperand(b), new GemmOutput(c)), k.Synchronize, 0.3);
        return 2.0 * n * n * n / s / 1e9;
    }

    /// <summary>Milliseconds of one batched rfft.</summary>
    private static double Rfft(Device d, int rows, int n)
    {
        var k = d.Kernels;
        using var x = k.Allocate((long)rows * n);
        using var y = k.Allocate((long)rows * (n / 2 + 1) * 2);
        k.RandomUniform(x, 3, -1, 1);
        return 1e3 * SecondsPerCall(() => k.FftKernels().Rfft(x, y, rows, n), k.Synchronize, 0.3);
    }

    /// <summary>Median milliseconds of a training step (after two warm-up steps).</summary>
    private static double StepMs(StepWorkload w, Device d)
    {
        w.Step();
        w.Step();
        return MedianMs(() => w.Step(), d);
    }

    /// <summary>Median wall ms of <paramref name="step"/>, the device synchronised after each: at least 5 runs, up to 30 or 2 s.</summary>
    private static double MedianMs(Action step, Device d)
    {
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 5 || (times.Count < 30 && total.Elapsed.TotalSeconds < 2))
        {
            var sw = Stopwatch.StartNew();
            step();
            d.Kernels.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>
    /// A model's training step eager and compiled (<see cref="Compiler"/>), on two copies made from the same seeds:
    /// the losses of the first 6 steps of each (the compiled function runs its first three calls eagerly while it
    /// traces, then replays), the median step time of each afterwards, the launches and allocations of one step of each
    /// (the device's counters), and the kernels the compiled graph loaded with their time. Logged as "compiled" rows:
    /// the compiled step's ms, the rest in the note.
    /// </summary>
    private static void CompiledStep(Func<Device, bool, StepWorkload> make, Device d, bool small, ResultLog log)
    {
        using var eager = make(d, small);
        using var traced = make(d, small);
        using var compiled = traced.Compile();
        float CompiledStep()
        {
            using var loss = compiled.Call(traced.X, traced.Y);
            return loss.Item();
        }
        const int compared = 6;
        int bitwise = 0;
        double worst = 0;
        for (int s = 0; s < compared; s++)
        {
            float le = eager.Step(), lc = CompiledStep();
            if (BitConverter.SingleToInt32Bits(le) == BitConverter.SingleToInt32Bits(lc)) bitwise++;
            worst = Math.Max(worst, Math.Abs(le - (double)lc) / Math.Max(Math.Abs(le), 1e-30));
        }
        var before = d.Counters.Snapshot();
        eager.Step();
        var eagerCost = d.Counters.Snapshot().Minus(before);
        before = d.Counters.Snapshot();
        CompiledStep();
        var replayCost = d.Counters.Snapshot().Minus(before);
        double eagerMs = MedianMs(() => eager.Step(), d), compiledMs = MedianMs(() => CompiledStep(), d);
        var graph = compiled.LastGraph;
        log.Add("compiled", $"{eager.Name}@{d.Name}", compiledMs, "ms", FormattableString.Invariant(
            $"eager {eagerMs:G4} ms; launches {eagerCost.KernelLaunches} / {replayCost.KernelLaunches}; allocations {eagerCost.Allocations} / {replayCost.Allocations}; ") +
            (graph is null
                ? $"not compiled: {string.Join(" ", compiled.Messages)}"
                : FormattableString.Invariant($"{graph.KernelLoads} kernels loaded in {graph.KernelLoadMilliseconds:F0} ms; ")) +
            FormattableString.Invariant($"losses of {compared} steps: {bitwise} bitwise equal, largest relative difference {worst:G3}"));
    }

    /// <summary>
    /// Both spectral routes at the Burgers shape (x [20, 1024, 64], 16 modes): transform, inverse, backward; median ms.
    /// The numbers <see cref="Engine.Nn.SpectralRoutePolicy"/> needs to set the device kind's factor.
    /// </summary>
    private static void SpectralRoutes(Device d, bool small, ResultLog log)
    {
        int batch = small ? 2 : 20, n = small ? 64 : 1024, width = small ? 8 : 64;
        foreach (int modes in small ? new[] { 4 } : [16, 64, 256])
        foreach (var route in new[] { SpectralRoute.Gemm, SpectralRoute.Fft })
        {
            using var x = Tensor.Normal([batch, n, width], 2, device: d);
            x.RequiresGrad = true;
            var times = new List<double>();
            for (int i = 0; i < (small ? 3 : 7); i++)
            {
                var sw = Stopwatch.StartNew();
                using (var scope = new TensorScope())
                {
                    var xh = SpectralTransform.RfftModes(x, modes, axis: 1, route);
                    var back = SpectralTransform.IrfftModes(xh, n, axis: 1, route);
                    (back * back).Sum().Backward();
                    d.Kernels.Synchronize();
                }
                x.ZeroGrad();
                if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            log.Add("route", $"{route.ToString().ToLowerInvariant()} n={n} modes={modes}", times[times.Count / 2], "ms",
                $"[{batch}, {n}, {width}] rfft+irfft+backward on {d.Name}");
        }
    }

    [DllImport("libcuda.so.1")]
    private static extern int cuFuncGetAttribute(out int value, int attribute, IntPtr function);

    /// <summary>The GEMM kernel as the GPU runs it: PTX counts here, and on CUDA registers and local memory per thread.</summary>
    private static void GemmKernelFacts(Device d, ResultLog log)
    {
        var kernel = IlgpuKernelSet.GemmTiledKernel(16, false, false, true).Method;
        using (var codegen = new IlgpuCodegen())
            log.Add("gemm-kernel", "ptx", 0, "", "inner loop per 8-step slab and epilogue: " + IlgpuCodegen.Facts(codegen.Ptx(kernel)));
        if (AcceleratorOf(d) is not CudaAccelerator cuda) return;
        cuda.Bind();
        using var loaded = (CudaKernel)cuda.LoadKernel(kernel);
        // CU_FUNC_ATTRIBUTE_NUM_REGS = 4, LOCAL_SIZE_BYTES = 3, SHARED_SIZE_BYTES = 1.
        foreach (var (attribute, name, unit) in new[] { (4, "registers", "per thread"), (3, "local", "bytes per thread"), (1, "shared", "bytes per group") })
        {
            int status = cuFuncGetAttribute(out int value, attribute, loaded.FunctionPtr);
            log.Add("gemm-kernel", name, status == 0 ? value : double.NaN, unit, status == 0 ? null : $"cuFuncGetAttribute error {status}");
        }
    }
}
