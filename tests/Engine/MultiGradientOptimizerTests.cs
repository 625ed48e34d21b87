using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>
/// SAM, finite-difference and double-backprop gradient regularization, the closure step and flooding: the combined
/// gradients against their definitions, exact restore, and clear errors for bad input.
/// </summary>
public class MultiGradientOptimizerTests
{
    private static readonly Device D = Device.Cpu;

    /// <summary>A 5-7-3 tanh MLP with cross-entropy on a fixed batch of 11.</summary>
    private sealed class Mlp : IDisposable
    {
        public readonly Sequential Model;
        private readonly Tensor x;
        private readonly int[] labels;

        public Mlp(int seed = 3)
        {
            Model = new Sequential(new Linear(5, 7, seed: (ulong)seed, device: D), new Tanh(), new Linear(7, 3, seed: (ulong)seed + 1, device: D));
            x = Tensor.Normal([11, 5], (ulong)seed + 2, 0f, 1.5f, D);
            labels = Enumerable.Range(0, 11).Select(i => i % 3).ToArray();
        }

        public IReadOnlyList<Tensor> Parameters => Model.Parameters().ToList();

        public Tensor Loss() => Model.Forward(x).CrossEntropy(labels);

        /// <summary>Forward and backward, as the closure of Step.</summary>
        public Tensor LossAndBackward()
        {
            var l = Loss();
            l.Backward();
            return l;
        }

        public float[][] Values() => Parameters.Select(p => p.ToArray()).ToArray();

        public float[][] Grads() => Parameters.Select(p => p.Grad!.ToArray()).ToArray();

        public void Set(float[][] values)
        {
            for (int i = 0; i < values.Length; i++) Parameters[i].CopyFrom(values[i]);
        }

        public void Dispose()
        {
            Model.Dispose();
            x.Dispose();
        }
    }

    private static double MaxAbsDiff(float[][] a, float[][] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < a[i].Length; j++) m = Math.Max(m, Math.Abs((double)a[i][j] - b[i][j]));
        return m;
    }

    private static double Norm(float[][] a) => Math.Sqrt(a.Sum(v => v.Sum(x => (double)x * x)));

    /// <summary>The gradient a wrapper hands its base optimizer: with SGD at learning rate 0 it is left in Grad and θ stays put.</summary>
    private static float[][] CombinedGradient(Mlp m, Func<Optimizer, Optimizer> wrap, bool forwardOnlyClosure = false)
    {
        using var scope = new TensorScope();
        using var opt = wrap(new Sgd(m.Parameters, 0f));
        opt.Step(forwardOnlyClosure ? m.Loss : m.LossAndBackward);
        return m.Grads();
    }

    [Fact]
    public void FiniteDifferenceGrConvergesToDoubleBackpropLinearlyInEpsilon()
    {
        using var m = new Mlp();
        const float gamma = 0.5f;
        var exact = CombinedGradient(m, o => new DoubleBackpropGr(o, gamma), forwardOnlyClosure: true);
        var plain = CombinedGradient(m, o => o);
        Assert.True(MaxAbsDiff(exact, plain) > 1e-3, "the penalty term must be visible for the test to mean anything");
        foreach (var dir in new[] { FdDirection.Forward, FdDirection.Backward })
        {
            float[] eps = [0.2f, 0.1f, 0.05f];
            var err = eps.Select(e => Norm(Diff(CombinedGradient(m, o => new FiniteDifferenceGr(o, gamma, e, dir)), exact))).ToArray();
            for (int i = 1; i < err.Length; i++)
            {
                double ratio = err[i - 1] / err[i];
                Assert.True(ratio > 1.6 && ratio < 2.5, $"{dir}: error {err[i - 1]:G3} at eps {eps[i - 1]}, {err[i]:G3} at eps {eps[i]}: ratio {ratio:F2}, expected ~2 (first order)");
            }
            Assert.True(err[^1] < 0.05 * Norm(exact), $"{dir}: error {err[^1]:G3} at eps {eps[^1]} vs |grad| {Norm(exact):G3}");
        }
    }

    private static float[][] Diff(float[][] a, float[][] b) =>
        a.Select((v, i) => v.Select((x, j) => x - b[i][j]).ToArray()).ToArray();

    [Fact]
    public void DoubleBackpropGrMatchesAnalyticGradientOfQuadratic()
    {
        // L = ½ θᵀAθ - bᵀθ: g = Aθ - b, ∇L̃ = g + γ A g.
        const int n = 6;
        const float gamma = 0.3f;
        var rng = new Random(5);
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) m[i, j] = rng.NextDouble() - 0.5;
        var a = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++) a[i, j] += m[k, i] * m[k, j];
        var b = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var th = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        using var scope = new TensorScope();
        var theta = Tensor.FromArray(th.Select(v => (float)v).ToArray(), [n, 1], D, requiresGrad: true);
        var at = Tensor.FromArray(Enumerable.Range(0, n * n).Select(i => (float)a[i / n, i % n]).ToArray(), [n, n], D);
        var bt = Tensor.FromArray(b.Select(v => (float)v).ToArray(), [n, 1], D);
        using var opt = new DoubleBackpropGr(new Sgd([theta], 0f), gamma);
        opt.Step(() => (theta * at.MatMul(theta)).Sum() * 0.5f - (bt * theta).Sum());
        var g = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) g[i] += a[i, j] * th[j];
            g[i] -= b[i];
        }
        var got = theta.Grad!.ToArray();
        for (int i = 0; i < n; i++)
        {
            double ag = 0;
            for (int j = 0; j < n; j++) ag += a[i, j] * g[j];
            Assert.Equal(g[i] + gamma * ag, got[i], 1e-5);
        }
        Assert.Equal(g.Sum(v => v * v), opt.LastGradientNormSquared, 1e-5);
    }

    [Fact]
    public void ForwardFiniteDifferenceGrWithEpsilonEqualGammaUsesTheGradientAtThetaPlusGammaG()
    {
        using var m = new Mlp();
        const float gamma = 0.1f, lr = 0.05f;
        using var scope = new TensorScope();
        var theta = m.Values();
        // g at θ and the host's θ + γ g.
        m.LossAndBackward();
        var g = m.Grads();
        foreach (var p in m.Parameters) p.ZeroGrad();
        float[][]? seen = null;
        int calls = 0;
        using var opt = new FiniteDifferenceGr(new Sgd(m.Parameters, lr), gamma, gamma, FdDirection.Forward);
        opt.Step(() =>
        {
            if (calls++ == 1) seen = m.Values();
            return m.LossAndBackward();
        });
        Assert.Equal(2, calls);
        var used = m.Parameters.Select(p => p.Grad!.ToArray()).ToArray();
        var after = m.Values();
        // The moved point is θ + γ g (one rounding per element).
        for (int i = 0; i < theta.Length; i++)
            for (int j = 0; j < theta[i].Length; j++)
                Assert.Equal(MathF.FusedMultiplyAdd(gamma, g[i][j], theta[i][j]), seen![i][j]);
        // The gradient used is bit for bit the gradient at that point, and SGD stepped from the restored θ with it.
        m.Set(seen!);
        foreach (var p in m.Parameters) p.ZeroGrad();
        m.LossAndBackward();
        var atMoved = m.Grads();
        for (int i = 0; i < used.Length; i++)
        {
            Assert.Equal(atMoved[i], used[i]);
            for (int j = 0; j < used[i].Length; j++)
                Assert.Equal(MathF.FusedMultiplyAdd(-lr, used[i][j], theta[i][j]), after[i][j]);
        }
    }

    [Theory]
    [InlineData(false, 0.05f)]
    [InlineData(true, 0.5f)]
    public void SamPerturbationHasNormRho(bool adaptive, float rho)
    {
        using var m = new Mlp();
        using var scope = new TensorScope();
        var theta = m.Values();
        float[][]? seen = null;
        int calls = 0;
        using var opt = new Sam(new Sgd(m.Parameters, 0.1f), rho, adaptive);
        opt.Step(() =>
        {
            if (calls++ == 1) seen = m.Values();
            return m.LossAndBackward();
        });
        double sq = 0;
        for (int i = 0; i < theta.Length; i++)
            for (int j = 0; j < theta[i].Length; j++)
            {
                double e = (double)seen![i][j] - theta[i][j];
                if (adaptive) e /= Math.Abs(theta[i][j]); // ASAM: ‖ε / |θ|‖ = ρ
                sq += e * e;
            }
        Assert.True(Math.Abs(Math.Sqrt(sq) - rho) < 2e-3 * rho, $"perturbation norm {Math.Sqrt(sq):G6}, expected {rho}");
        Assert.True(opt.LastGradientNorm > 0);
    }

    public static IEnumerable<object[]> Wrappers() =>
    [
        ["sam"], ["asam"], ["fgr-forward"], ["fgr-backward"],
    ];

    private static Optimizer Make(string which, Optimizer inner) => which switch
    {
        "sam" => new Sam(inner, 0.3f),
        "asam" => new Sam(inner, 2f, adaptive: true),
        "fgr-forward" => new FiniteDifferenceGr(inner, 0.1f, 0.3f, FdDirection.Forward),
        "fgr-backward" => new FiniteDifferenceGr(inner, 0.1f, 0.3f, FdDirection.Backward),
        _ => throw new ArgumentException(which),
    };

    [Theory]
    [MemberData(nameof(Wrappers))]
    public void ParametersAreRestoredBitExactlyEveryStep(string which)
    {
        using var m = new Mlp();
        // Learning rate 0: after the step θ must be exactly what it was, though the closure saw it moved.
        using var opt = Make(which, new Sgd(m.Parameters, 0f));
        for (int step = 0; step < 3; step++)
        {
            using var scope = new TensorScope();
            var before = m.Values();
            bool moved = false;
            int calls = 0;
            opt.Step(() =>
            {
                if (calls++ == 1) moved = MaxAbsDiff(m.Values(), before) > 0;
                return m.LossAndBackward();
            });
            Assert.True(moved, "the second evaluation must see perturbed parameters");
            var after = m.Values();
            for (int i = 0; i < before.Length; i++) Assert.Equal(before[i], after[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Wrappers))]
    public void ParametersAreRestoredWhenTheSecondClosureCallThrows(string which)
    {
        using var m = new Mlp();
        using var scope = new TensorScope();
        var before = m.Values();
        using var opt = Make(which, new Sgd(m.Parameters, 0.1f));
        int calls = 0;
        Assert.Throws<InvalidOperationException>(() => opt.Step(() =>
        {
            if (calls++ == 1) throw new InvalidOperationException("boom");
            return m.LossAndBackward();
        }));
        var after = m.Values();
        for (int i = 0; i < before.Length; i++) Assert.Equal(before[i], after[i]);
    }

    [Fact]
    public void SamWithAdamStepsFromRestoredThetaWithTheSamGradient()
    {
        using var m = new Mlp();
        using var m2 = new Mlp();
        using var scope = new TensorScope();
        using var sam = new Sam(new Adam(m.Parameters, 0.01f), 0.05f);
        using var adam = new Adam(m2.Parameters, 0.01f);
        float[][]? samGrad = null;
        int calls = 0;
        sam.Step(() =>
        {
            var l = m.LossAndBackward();
            if (calls++ == 1) samGrad = m.Grads();
            return l;
        });
        // The reference: Adam fed the same gradient at the same θ.
        for (int i = 0; i < samGrad!.Length; i++)
        {
            m2.Parameters[i].ZeroGrad();
            m2.Parameters[i].Grad = Tensor.FromArray(samGrad[i], m2.Parameters[i].Shape, D);
        }
        adam.Step();
        Assert.Equal(m2.Values().SelectMany(v => v), m.Values().SelectMany(v => v));
        Assert.Equal(1, sam.StepCount);
    }

    [Fact]
    public void ClosureStepOfAPlainOptimizerEqualsTheManualStep()
    {
        using var m = new Mlp();
        using var m2 = new Mlp();
        using var scope = new TensorScope();
        using var a = new Sgd(m.Parameters, 0.1f, momentum: 0.9f);
        using var b = new Sgd(m2.Parameters, 0.1f, momentum: 0.9f);
        for (int s = 0; s < 3; s++)
        {
            // The closure does not zero the gradients: Step(closure) does.
            var loss = a.Step(m.LossAndBackward);
            b.ZeroGrad();
            var loss2 = m2.LossAndBackward();
            b.Step();
            Assert.Equal(loss2.Item(), loss.Item());
        }
        Assert.Equal(m2.Values().SelectMany(v => v), m.Values().SelectMany(v => v));
    }

    [Fact]
    public void WrapperForwardsLearningRateAndRefusesPlainStep()
    {
        using var m = new Mlp();
        var inner = new Sgd(m.Parameters, 0.1f);
        using var opt = new Sam(inner, 0.05f);
        opt.LearningRate = 0.25f;
        Assert.Equal(0.25f, inner.LearningRate);
        var e = Assert.Throws<InvalidOperationException>(() => opt.Step());
        Assert.Contains("Step(closure)", e.Message);
        Assert.Throws<ArgumentException>(() => new Sam(new Sam(new Sgd(m.Parameters, 0.1f)), 0.05f));
    }

    [Fact]
    public void BadHyperparametersAreClearErrors()
    {
        using var m = new Mlp();
        Optimizer Sgd() => new Sgd(m.Parameters, 0.1f);
        Assert.Contains("rho", Assert.Throws<ArgumentOutOfRangeException>(() => new Sam(Sgd(), -0.1f)).Message);
        Assert.Contains("rho", Assert.Throws<ArgumentOutOfRangeException>(() => new Sam(Sgd(), float.NaN)).Message);
        Assert.Contains("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => new FiniteDifferenceGr(Sgd(), -1f, 0.1f)).Message);
        Assert.Contains("epsilon", Assert.Throws<ArgumentOutOfRangeException>(() => new FiniteDifferenceGr(Sgd(), 0.1f, -0.1f)).Message);
        Assert.Contains("epsilon", Assert.Throws<ArgumentOutOfRangeException>(() => new FiniteDifferenceGr(Sgd(), 0.1f, 0f)).Message);
        Assert.Contains("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => new DoubleBackpropGr(Sgd(), -0.5f)).Message);
        Assert.Contains("flood level", Assert.Throws<ArgumentOutOfRangeException>(() => new Flooding(-1f)).Message);
        Assert.Throws<ArgumentNullException>(() => new Sam(null!, 0.1f));
    }

    public static IEnumerable<object[]> AllClosureOptimizers() =>
    [
        ["sgd"], ["sam"], ["fgr-forward"], ["fgr-backward"], ["dbgr"],
    ];

    private static Optimizer MakeAny(string which, Mlp m) => which switch
    {
        "sgd" => new Sgd(m.Parameters, 0.1f),
        "dbgr" => new DoubleBackpropGr(new Sgd(m.Parameters, 0.1f), 0.1f),
        _ => Make(which, new Sgd(m.Parameters, 0.1f)),
    };

    [Theory]
    [MemberData(nameof(AllClosureOptimizers))]
    public void ClosureReturningNoLossIsAClearError(string which)
    {
        using var m = new Mlp();
        using var opt = MakeAny(which, m);
        var e = Assert.Throws<InvalidOperationException>(() => opt.Step(() => null));
        Assert.Contains("returned no loss", e.Message);
        Assert.Throws<ArgumentNullException>(() => opt.Step(null!));
    }

    [Theory]
    [MemberData(nameof(AllClosureOptimizers))]
    public void ClosureLeavingNoGradientsIsAClearError(string which)
    {
        using var m = new Mlp();
        using var scope = new TensorScope();
        using var opt = MakeAny(which, m);
        var before = m.Values();
        // Sgd/SAM/F-GR: forward without backward. DB-GR: a loss that does not depend on the parameters.
        Func<Tensor?> closure = which == "dbgr" ? () => Tensor.Scalar(1f, D) : m.Loss;
        var e = Assert.Throws<InvalidOperationException>(() => opt.Step(closure));
        Assert.Contains("no gradient", e.Message);
        Assert.Equal(before.SelectMany(v => v), m.Values().SelectMany(v => v));
    }

    [Fact]
    public void FloodingFlipsTheGradientBelowTheLevel()
    {
        using var scope = new TensorScope();
        var w = Tensor.FromArray([0.5f], [1], D, requiresGrad: true);
        var flood = new Flooding(1f);
        // L = w² = 0.25 < b = 1: flooded loss 1.75, gradient -2w.
        var l = flood.Apply((w * w).Sum());
        Assert.Equal(1.75f, l.Item(), 6);
        l.Backward();
        Assert.Equal(-1f, w.Grad!.ToArray()[0], 6);
        w.ZeroGrad();
        // Above the level it is the loss itself.
        var l2 = new Flooding(0.1f).Wrap(() => (w * w).Sum())();
        Assert.Equal(0.25f, l2.Item(), 6);
        l2.Backward();
        Assert.Equal(1f, w.Grad!.ToArray()[0], 6);
        Assert.Throws<ArgumentException>(() => flood.Apply(w * w * 1f + Tensor.Zeros([3], D)));
    }
}
