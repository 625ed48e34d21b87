using Engine.Kernels;
using Engine.Samples;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The implicit bias of finite-difference gradient regularization on the diagonal linear network w = u⊙u - v⊙v
/// (samples/GrDiagonalTask.cs), from a fixed seed: the effective initialisation scale sqrt(u_i v_i) that selects the
/// interpolator, which gradient flow would leave at α.
/// </summary>
public class GrDiagonalTests
{
    private static readonly Lazy<Dictionary<string, GrDiagonalTask.RunResult>> Runs = new(() =>
        GrDiagonalTask.RunAll(new GrDiagonalTask.Config(Steps: 2000), Device.Cpu));

    [Fact]
    public void EveryOptimizerInterpolatesTheTrainingData()
    {
        foreach (var (name, r) in Runs.Value)
            Assert.True(r.TrainLoss < 1e-4, $"{name}: final training loss {r.TrainLoss:G3}");
    }

    [Fact]
    public void ForwardFiniteDifferenceGrShrinksTheEffectiveScaleMoreTheLargerTheAscentStep()
    {
        var r = Runs.Value;
        double gd = r["gd"].AlphaEffSupport, f1 = r["fgr-eps0.1"].AlphaEffSupport, f2 = r["fgr-eps0.5"].AlphaEffSupport,
            f3 = r["fgr-eps2"].AlphaEffSupport, b = r["bgr-eps2"].AlphaEffSupport;
        string all = string.Join(", ", r.Select(kv => $"{kv.Key} {kv.Value.AlphaEffSupport:F3}/{kv.Value.AlphaEffOffSupport:F3}"));
        // GD keeps u·v near α² (only its O(η²) discretisation shrinks it); GR shrinks it, more with ε.
        Assert.True(gd > 0.98 && gd <= 1.0, all);
        Assert.True(gd > f1 && f1 > f2 && f2 > f3, $"support scales must fall with eps: {all}");
        Assert.True(b > gd, $"backward F-GR must grow the scale: {all}");
        // The shrinkage follows ∫r_i²: far larger on the support of w* than off it.
        Assert.True(1 - r["fgr-eps2"].AlphaEffSupport > 5 * (1 - r["fgr-eps2"].AlphaEffOffSupport), all);
    }

    [Fact]
    public void TheSparserScaleOnTheSupportRaisesTheTestError()
    {
        // The measured consequence in this model (see notes/opt.md): shrinking the support's scale more than the rest
        // makes the support costlier under the potential, so the forward solutions spread weight off the support.
        var r = Runs.Value;
        string all = string.Join(", ", r.Select(kv => $"{kv.Key} {kv.Value.TestError:F4} (l1 {kv.Value.L1:F3})"));
        Assert.True(r["fgr-eps2"].TestError > r["fgr-eps0.1"].TestError && r["fgr-eps0.1"].TestError > r["gd"].TestError, all);
        Assert.True(r["bgr-eps2"].TestError < r["gd"].TestError, all);
        Assert.True(r["fgr-eps2"].L1 > r["gd"].L1 && r["bgr-eps2"].L1 < r["gd"].L1, all);
    }
}
