using BenchmarkDotNet.Running;
using Engine.Kernels.Cpu;
using Engine.Kernels.Vectors;

namespace Engine.Bench;

/// <summary>
/// Runs the benchmark classes: `dotnet run -c Release --project bench -- --filter '*Gemm*'` (BenchmarkDotNet's
/// switcher: --list flat, --job medium, ...). `-- baselines` prints what the baselines run on (OpenBLAS core type and
/// threads, FFTW) and the engine's vector width and threads; `-- erf-interleaved [rounds]` times erf, GELU and its
/// backward beside the previous erf in interleaved rounds; `-- broadcast-tree-interleaved [rounds]` the FNO's broadcasting
/// trees beside their member calls; `-- small-gemm [rounds] [calls]` times the small and batched products with the
/// small-product paths on and off in interleaved rounds; `-- onnx-interleaved [rounds] [calls]` the small MLP's forward
/// beside ONNX Runtime and its three products with and without epilogues; `-- slot-policy [rounds]` the compiled steps
/// with the memory plan's two slot policies; `-- step-timeline [model] [chunks] [learning rate]` one compiled step's
/// speed over time in one process; bench/remeasure.sh runs the README's figures.
/// </summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "multigrad-interleaved")
        {
            MultiGradientStepBenchmarks.Interleaved(args.Length > 1 ? int.Parse(args[1]) : 20, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "erf-interleaved")
        {
            ErfBenchmarks.Interleaved(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "broadcast-tree-interleaved")
        {
            BroadcastTreeBenchmarks.Interleaved(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "small-gemm")
        {
            SmallGemmBenchmarks.Interleaved(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20,
                args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "fno-route")
        {
            FnoRouteHarness.Run(args[1..], Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "onnx-interleaved")
        {
            OnnxForwardHarness.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 100,
                args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "compiled-steps")
        {
            CompiledStepHarness.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "step-timeline")
        {
            CompiledStepHarness.Timeline(args.Length > 1 ? args[1] : "fno1d", args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 60,
                args.Length > 3 ? float.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 1e-3f, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "slot-policy")
        {
            SlotPolicyHarness.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 30, Console.Out);
            return;
        }
        if (args.Length > 0 && args[0] == "baselines")
        {
            PrintBaselines(Console.Out);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }

    private static void PrintBaselines(TextWriter output)
    {
        output.WriteLine($"engine CPU kernels: {CpuThreads.Count} thread(s) ({CpuThreads.EnvironmentVariable}), " +
            $"{(int)Simd.Width} float lanes per vector ({Simd.EnvironmentVariable})");
        output.WriteLine(OpenBlas.Note);
        output.WriteLine(Fftw.Note);
    }
}
