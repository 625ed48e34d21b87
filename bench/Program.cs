using BenchmarkDotNet.Running;

namespace Engine.Bench;

/// <summary>
/// Runs the benchmark classes: `dotnet run -c Release --project bench -- --filter '*Gemm*'` (BenchmarkDotNet's
/// switcher: --list flat, --job short, ...).
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
        if (args.Length > 0 && args[0] == "fno-route")
        {
            FnoRouteHarness.Run(args[1..], Console.Out);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
