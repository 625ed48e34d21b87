using Engine.Kernels;
using Engine.Samples;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The implicit bias of finite-difference gradient regularization on the diagonal linear network w = u⊙u - v⊙v
/// (samples/GrDiagonalTask.cs) with its default settings, from a fixed seed: every optimizer except the full-batch
/// "gd" baseline steps on the same random mini-batches of 2 samples. The effective initialisation scale
/// sqrt(u_i v_i) / α, which gradient flow would leave at 1, selects the interpolator (smaller: sparser).
/// </summary>
/// <remarks>
/// The ordering gd &gt; sgd &gt; fgr-eps0.05 &gt; fgr-eps0.2 &gt; fgr-eps0.5 in test error held on every seed 1-8 of the sample
/// (notes/opt.md); fgr-eps0.5 / fgr-eps0.05 was 0.32-0.52 and fgr-eps0.05 / sgd 0.40-0.60 there. With full batches
/// for every optimizer the ordering reverses (notes/opt.md), so these tests rely on the mini-batches.
/// </remarks>
public class GrDiagonalTests
{
    private static readonly Lazy<Dictionary<string, GrDiagonalTask.RunResult>> Runs = new(() =>
        GrDiagonalTask.RunAll(new GrDiagonalTask.Config(), Device.Cpu));

    private static string All(Func<GrDiagonalTask.RunResult, string> show) =>
        string.Join(", ", Runs.Value.Select(kv => $"{kv.Key} {show(kv.Value)}"));

    [Fact]
    public void EveryOptimizerFitsTheTrainingData()
    {
        // Flooding holds the training loss near its level b by design (ascending whenever it drops below). SAM's ascent
        // keeps its loss fluctuating around 1e-4 (its last value moves by a factor of 3 with the rounding order of the
        // matrix products), so it gets a looser bound.
        foreach (var (name, r) in Runs.Value.Where(kv => !kv.Key.StartsWith("flood", StringComparison.Ordinal)))
            Assert.True(r.TrainLoss < (name == "sam" ? 1e-3 : 1e-4), $"{name}: final training loss {r.TrainLoss:G3}; {All(x => x.TrainLoss.ToString("G3"))}");
        var flood = Runs.Value.Single(kv => kv.Key.StartsWith("flood", StringComparison.Ordinal)).Value;
        Assert.InRange(flood.TrainLoss, 2e-4, 5e-3);
    }

    [Fact]
    public void ForwardFiniteDifferenceGrWithTheLargerAscentStepReachesTheLowerTestError()
    {
        // The issue's claim (Karakida et al. 2023): a larger ascent step picks a better minimum than a smaller one,
        // and both beat plain (stochastic and full-batch) gradient descent. Seed 1: 0.030 < 0.043 < 0.067 < 0.143 < 0.163.
        var r = Runs.Value;
        string all = All(x => $"{x.TestError:F4}");
        double large = r["fgr-eps0.5"].TestError, mid = r["fgr-eps0.2"].TestError, small = r["fgr-eps0.05"].TestError;
        Assert.True(large < mid && mid < small && large < 0.8 * small, $"test error must fall with eps: {all}");
        Assert.True(small < 0.8 * r["sgd"].TestError, $"F-GR must beat plain SGD on the same batches: {all}");
        Assert.True(small < 0.8 * r["gd"].TestError, $"F-GR must beat full-batch GD: {all}");
        // Backward F-GR (a descent step) weakens the bias: worse than forward F-GR at any of its steps.
        Assert.True(r["bgr-eps0.2"].TestError > 1.5 * small, $"backward F-GR must be worse: {all}");
    }

    [Fact]
    public void ForwardFiniteDifferenceGrShrinksTheEffectiveScaleOnAndOffTheSupport()
    {
        var r = Runs.Value;
        string all = All(x => $"{x.AlphaEffSupport:F3}/{x.AlphaEffOffSupport:F3}");
        // Plain steps keep u·v near α² (only their O(η²) discretisation shrinks it).
        Assert.True(r["gd"].AlphaEffSupport > 0.9 && r["sgd"].AlphaEffSupport > 0.8, all);
        // Forward F-GR shrinks it, more with ε while the finite difference is accurate (0.05 → 0.2), and on the
        // mini-batches the shrinkage reaches the coordinates off the support too (on full batches it does not).
        foreach (var name in new[] { "fgr-eps0.05", "fgr-eps0.2", "fgr-eps0.5" })
        {
            Assert.True(r[name].AlphaEffSupport < 0.6 * r["sgd"].AlphaEffSupport, $"{name}: {all}");
            Assert.True(r[name].AlphaEffOffSupport < 0.75 * r["sgd"].AlphaEffOffSupport, $"{name}: {all}");
        }
        Assert.True(r["fgr-eps0.2"].AlphaEffSupport < r["fgr-eps0.05"].AlphaEffSupport
            && r["fgr-eps0.2"].AlphaEffOffSupport < r["fgr-eps0.05"].AlphaEffOffSupport, all);
        // Backward F-GR at the same γ grows it back (its ε correction has the opposite sign).
        Assert.True(r["bgr-eps0.2"].AlphaEffSupport > 1.5 * r["fgr-eps0.2"].AlphaEffSupport, all);
    }
}
