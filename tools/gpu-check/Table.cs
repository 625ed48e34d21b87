using System.Globalization;

namespace Engine.GpuCheck;

/// <summary>
/// The check's one table, from DIR/results.jsonl (this tool) and DIR/baselines.jsonl (baselines.py: cuBLAS and
/// cuFFT through PyTorch). Rows whose figures are missing say so; ratios are ours / baseline for rates and baseline /
/// ours for times (above 1: ours is faster); "of peak" is against the peaks measured in the same run.
/// </summary>
public static class Table
{
    /// <summary>Prints the table of a result folder.</summary>
    public static void Print(string dir, TextWriter w)
    {
        var ours = ResultLog.Read(Path.Combine(dir, "results.jsonl"));
        var baselines = ResultLog.Read(Path.Combine(dir, "baselines.jsonl"));
        double Get(List<Result> list, string kind, string name) =>
            list.LastOrDefault(r => r.Kind == kind && r.Name == name)?.Value ?? double.NaN;
        string? Note(List<Result> list, string kind, string name) => list.LastOrDefault(r => r.Kind == kind && r.Name == name)?.Note;
        static string F(double v, string format = "F1") => double.IsNaN(v) ? "-" : v.ToString(format, CultureInfo.InvariantCulture);

        double peak = Get(ours, "peak", "fp32"), copy = Get(ours, "peak", "copy"), cpuPeak = Get(ours, "peak", "cpu-fp32");
        w.WriteLine();
        w.WriteLine("| item | ours | baseline | ratio | of peak |");
        w.WriteLine("|---|---:|---:|---:|---:|");
        w.WriteLine($"| device | {Note(ours, "device", "ilgpu") ?? "-"} | {Note(baselines, "device", "torch") ?? "no PyTorch baselines"} | | |");
        var tests = ours.LastOrDefault(r => r.Kind == "tests" && r.Unit == "passed");
        w.WriteLine(tests is null ? "| tests | not run | | | |" : $"| tests on {tests.Name} | {F(tests.Value, "F0")} passed; {tests.Note} | | | |");
        w.WriteLine($"| FP32 peak (FMA loop) | {F(peak, "F0")} GFLOP/s | | | 1.00 |");
        w.WriteLine($"| copy bandwidth | {F(copy, "F0")} GB/s | | | |");
        w.WriteLine($"| CPU FP32 peak | {F(cpuPeak, "F0")} GFLOP/s | | | |");
        foreach (var g in ours.Where(r => r.Kind == "gemm" && r.Name != "error"))
        {
            double cublas = Get(baselines, "baseline", "sgemm " + g.Name), tf32 = Get(baselines, "baseline", "tf32 " + g.Name);
            w.WriteLine($"| GEMM {g.Name} fp32 | {F(g.Value, "F0")} GFLOP/s | cuBLAS {F(cublas, "F0")} (TF32 {F(tf32, "F0")}) | {F(g.Value / cublas, "F2")} | {F(g.Value / peak, "F2")} |");
        }
        foreach (var f in ours.Where(r => r.Kind == "rfft" && r.Name != "error"))
        {
            double cufft = Get(baselines, "baseline", "rfft " + f.Name);
            var parts = f.Name.Split('x');
            double rows = double.Parse(parts[0], CultureInfo.InvariantCulture), n = double.Parse(parts[1], CultureInfo.InvariantCulture);
            double gbs = (rows * n * 4 + rows * (n / 2 + 1) * 8) / (f.Value / 1e3) / 1e9;
            w.WriteLine($"| rfft {f.Name} | {F(f.Value, "F3")} ms ({F(gbs, "F0")} GB/s) | cuFFT {F(cufft, "F3")} ms | {F(cufft / f.Value, "F2")} | {F(gbs / copy, "F2")} of copy |");
        }
        foreach (var model in new[] { "mlp", "mixer", "fno" })
        {
            var onGpu = ours.LastOrDefault(r => r.Kind == "step" && r.Name.StartsWith(model + "@", StringComparison.Ordinal) && !r.Name.EndsWith("@cpu", StringComparison.Ordinal));
            var onCpu = ours.LastOrDefault(r => r.Kind == "step" && r.Name == model + "@cpu");
            double flops = GflopOf(onGpu ?? onCpu);
            double gpuRate = onGpu is null ? double.NaN : flops / (onGpu.Value / 1e3);
            double cpuRate = onCpu is null ? double.NaN : flops / (onCpu.Value / 1e3);
            w.WriteLine($"| {model} step ({F(flops, "F2")} GFLOP) | {(onGpu is null ? "-" : $"{F(onGpu.Value, "F2")} ms on {onGpu.Name[(model.Length + 1)..]}")} | cpu {F(onCpu?.Value ?? double.NaN, "F1")} ms | cpu/gpu {F((onCpu?.Value ?? double.NaN) / (onGpu?.Value ?? double.NaN), "F1")}x | gpu {F(gpuRate / peak, "F3")}, cpu {F(cpuRate / cpuPeak, "F2")} |");
        }
        foreach (var r in ours.Where(r => r.Kind == "compiled" && r.Name != "error"))
            w.WriteLine($"| {r.Name} step compiled | {F(r.Value, "F2")} ms | {r.Note} | | |");
        foreach (var r in ours.Where(r => r.Kind == "route" && r.Name.StartsWith("gemm", StringComparison.Ordinal)))
        {
            double fft = Get(ours, "route", "fft" + r.Name[4..]);
            w.WriteLine($"| spectral route{r.Name[4..]} | GEMM {F(r.Value, "F2")} ms | FFT {F(fft, "F2")} ms | FFT/GEMM {F(fft / r.Value, "F2")} | |");
        }
        var regs = Get(ours, "gemm-kernel", "registers");
        w.WriteLine($"| GEMM kernel | {F(regs, "F0")} registers, {F(Get(ours, "gemm-kernel", "local"), "F0")} B local, {F(Get(ours, "gemm-kernel", "shared"), "F0")} B shared | | | |");
        w.WriteLine($"| GEMM PTX | {Note(ours, "gemm-kernel", "ptx") ?? "-"} | | | |");
        foreach (var e in ours.Concat(baselines).Where(r => r.Name == "error" || double.IsNaN(r.Value) && r.Note != null && r.Kind != "device"))
            w.WriteLine($"| error ({e.Kind}) | {e.Note} | | | |");
        foreach (var n in baselines.Where(r => r.Kind == "note"))
            w.WriteLine($"| note | {n.Note} | | | |");
    }

    /// <summary>The GFLOP count in a step result's note ("1.234 GFLOP of matrix products").</summary>
    private static double GflopOf(Result? r)
    {
        if (r?.Note is null) return double.NaN;
        var first = r.Note.Split(' ')[0];
        return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
    }
}
