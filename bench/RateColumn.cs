using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Engine.Bench;

/// <summary>
/// A summary column turning the mean time per operation into a rate: work-per-op (bytes, flops, samples) divided by
/// time, scaled (1e9 for GB/s or GFLOP/s, 1 for samples/s). A work of NaN shows "n/a" (a baseline that could not run).
/// </summary>
public sealed class RateColumn(string name, Func<BenchmarkCase, double> workPerOp, double scale) : IColumn
{
    /// <inheritdoc />
    public string Id => "Rate." + name;
    /// <inheritdoc />
    public string ColumnName => name;
    /// <inheritdoc />
    public bool AlwaysShow => true;
    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;
    /// <inheritdoc />
    public int PriorityInCategory => 0;
    /// <inheritdoc />
    public bool IsNumeric => true;
    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;
    /// <inheritdoc />
    public string Legend => $"{name}: work per operation / mean time";
    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var report = summary[benchmarkCase];
        var stats = report?.ResultStatistics;
        if (stats == null || stats.Mean <= 0) return "-";
        double work = workPerOp(benchmarkCase);
        if (double.IsNaN(work)) return "n/a";
        double seconds = stats.Mean * 1e-9;
        return (work / seconds / scale).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
}
