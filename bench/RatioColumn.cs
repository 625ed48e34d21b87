using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Engine.Bench;

/// <summary>
/// The Ratio column (mean time / mean time of the baseline with the same parameters), printing "n/a" where the
/// baseline or the row itself could not run. A benchmark whose native library is missing returns at once, and
/// BenchmarkDotNet's own Ratio would divide by that empty call; <see cref="UseRatioColumn"/> puts this column in its
/// place.
/// </summary>
public sealed class RatioColumn(Func<BenchmarkCase, bool> ran) : IColumn
{
    /// <summary>
    /// Replaces BenchmarkDotNet's Ratio and RatioSD columns in <paramref name="config"/> with a <see cref="RatioColumn"/>
    /// that asks <paramref name="ran"/> whether a case really ran.
    /// </summary>
    public static void UseRatioColumn(ManualConfig config, Func<BenchmarkCase, bool> ran)
    {
        config.HideColumns(new HideBuiltInRatio());
        config.AddColumn(new RatioColumn(ran));
    }

    /// <inheritdoc />
    public string Id => "Ratio.RanOnly";
    /// <inheritdoc />
    public string ColumnName => "Ratio";
    /// <inheritdoc />
    public bool AlwaysShow => true;
    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Baseline;
    /// <inheritdoc />
    public int PriorityInCategory => 0;
    /// <inheritdoc />
    public bool IsNumeric => true;
    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;
    /// <inheritdoc />
    public string Legend => "Ratio: mean time / the baseline's mean time in the same run; n/a where either could not run";
    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => summary.HasBaselines();

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var baseline = summary.GetBaseline(summary.GetLogicalGroupKey(benchmarkCase));
        if (baseline == null) return "-";
        if (!ran(benchmarkCase) || !ran(baseline)) return "n/a";
        var own = summary[benchmarkCase]?.ResultStatistics;
        var reference = summary[baseline]?.ResultStatistics;
        if (own == null || reference == null || reference.Mean <= 0) return "-";
        return (own.Mean / reference.Mean).ToString("F2", CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    /// <summary>Hides BenchmarkDotNet's mean and standard-deviation ratio columns.</summary>
    private sealed class HideBuiltInRatio : IColumnHidingRule
    {
        public bool NeedToHide(IColumn column) => column is BaselineRatioColumn;
    }
}
