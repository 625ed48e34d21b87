using System.Globalization;
using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Bench;

/// <summary>
/// The memory plan's slot policy on the compiled training steps of <see cref="CompiledStepHarness"/>: each model's step
/// compiled twice, once with a temporary put into the free slot freed last (the default) and once into the free slot
/// opened first (the baseline), replayed in interleaved rounds (the order alternating), with the medians, their ratio
/// and the median of the per-round ratios. Run: <c>dotnet run -c Release --project bench -- slot-policy [rounds]</c>.
/// </summary>
public static class SlotPolicyHarness
{
    private const int WarmupSteps = 50;

    /// <summary>Runs every model for <paramref name="rounds"/> rounds and writes a table to <paramref name="output"/>.</summary>
    public static void Run(int rounds, TextWriter output)
    {
        var d = Device.Cpu;
        output.WriteLine($"compiled steps, slot freed last against slot opened first, CPU set, {rounds} interleaved rounds (medians); load average {File.ReadAllText("/proc/loadavg").Trim()}");
        output.WriteLine("| model | slots | first-opened ms | last-freed ms | ratio of medians | median of round ratios |");
        output.WriteLine("|---|---|---|---|---|---|");
        foreach (var name in new[] { "mlp", "mixer", "fno1d", "spn" })
        {
            var (x, y) = CompiledStepHarness.Batch(name, d);
            using var firstNet = CompiledStepHarness.Make(name, d);
            using var recentNet = CompiledStepHarness.Make(name, d);
            using var first = Compiler.Compile((Tensor input, object target) => firstNet.Step(input, target), new CompileOptions { ReuseRecentSlots = false });
            using var recent = Compiler.Compile((Tensor input, object target) => recentNet.Step(input, target));
            for (int i = 0; i < WarmupSteps; i++)
            {
                first.Invoke(x, y).Dispose();
                recent.Invoke(x, y).Dispose();
            }
            var firstMs = new List<double>();
            var recentMs = new List<double>();
            var ratios = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                double f, n;
                if (r % 2 == 0)
                {
                    f = CompiledStepHarness.Time(() => first.Invoke(x, y).Dispose());
                    n = CompiledStepHarness.Time(() => recent.Invoke(x, y).Dispose());
                }
                else
                {
                    n = CompiledStepHarness.Time(() => recent.Invoke(x, y).Dispose());
                    f = CompiledStepHarness.Time(() => first.Invoke(x, y).Dispose());
                }
                firstMs.Add(f);
                recentMs.Add(n);
                ratios.Add(n / f);
            }
            double fm = Statistics.Median(firstMs), nm = Statistics.Median(recentMs);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {recent.LastGraph?.Slots} | {fm:F2} | {nm:F2} | {nm / fm:F3} | {Statistics.Median(ratios):F3} |"));
            x.Dispose();
            (y as IDisposable)?.Dispose();
        }
    }
}
