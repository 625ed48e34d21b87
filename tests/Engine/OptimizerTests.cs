using Engine.Autodiff;
using Engine.Kernels;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>Optimizers against the PyTorch update rules written out on the host, over several steps.</summary>
public class OptimizerTests
{
    private static (Tensor p, float[] grads0) Param(int n, int seed)
    {
        var rng = new Random(seed);
        var v = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var p = Tensor.FromArray(v, [n], Device.Cpu, requiresGrad: true);
        return (p, v);
    }

    private static float[] SetGrad(Tensor p, int step)
    {
        var g = Enumerable.Range(0, (int)p.Size).Select(i => MathF.Sin(i * 0.7f + step)).ToArray();
        p.ZeroGrad();
        (p * Tensor.FromArray(g, [g.Length], Device.Cpu)).Sum().Backward();
        return g;
    }

    [Theory]
    [InlineData(0f, 0f, 0f, false)]
    [InlineData(0.9f, 0f, 0f, false)]
    [InlineData(0.9f, 0.1f, 0.01f, false)]
    [InlineData(0.9f, 0f, 0.01f, true)]
    public void SgdMatchesReference(float momentum, float dampening, float wd, bool nesterov)
    {
        var (p, w) = Param(37, 1);
        var buf = new double[w.Length];
        var x = w.Select(v => (double)v).ToArray();
        using var opt = new Sgd([p], 0.05f, momentum, dampening, wd, nesterov);
        for (int step = 0; step < 4; step++)
        {
            var g = SetGrad(p, step);
            opt.Step();
            for (int i = 0; i < x.Length; i++)
            {
                double d = g[i] + wd * x[i];
                if (momentum != 0)
                {
                    buf[i] = step == 0 ? d : momentum * buf[i] + (1 - dampening) * d;
                    d = nesterov ? d + momentum * buf[i] : buf[i];
                }
                x[i] -= 0.05 * d;
            }
            var got = p.ToArray();
            for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], got[i], 1e-5);
        }
    }

    [Theory]
    [InlineData(0f, false)]
    [InlineData(0.1f, false)]
    [InlineData(0.1f, true)]
    public void AdamMatchesReference(float wd, bool decoupled)
    {
        var (p, w) = Param(29, 2);
        var x = w.Select(v => (double)v).ToArray();
        var m = new double[x.Length];
        var v2 = new double[x.Length];
        const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        using var opt = new Adam([p], (float)lr, (float)b1, (float)b2, (float)eps, wd, decoupled);
        for (int t = 1; t <= 5; t++)
        {
            var g = SetGrad(p, t);
            opt.Step();
            for (int i = 0; i < x.Length; i++)
            {
                double gi = g[i];
                if (decoupled) x[i] *= 1 - lr * wd;
                else gi += wd * x[i];
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v2[i] = b2 * v2[i] + (1 - b2) * gi * gi;
                double mh = m[i] / (1 - Math.Pow(b1, t)), vh = v2[i] / (1 - Math.Pow(b2, t));
                x[i] -= lr * mh / (Math.Sqrt(vh) + eps);
            }
            var got = p.ToArray();
            for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], got[i], 1e-5);
        }
    }

    [Fact]
    public void AdamCountsStepsPerParameter()
    {
        // A parameter without a gradient in the first step is skipped; its first update must use step 1's bias
        // correction, so it moves by lr·sign(g) (|m̂| / sqrt(v̂) = 1), exactly like a fresh optimizer's first step.
        var (a, _) = Param(4, 5);
        var (b, b0) = Param(4, 6);
        using var opt = new Adam([a, b], 0.01f);
        SetGrad(a, 0);
        b.ZeroGrad();
        opt.Step();
        var before = b.ToArray();
        Assert.Equal(b0, before);
        var g = SetGrad(b, 1);
        opt.Step();
        var after = b.ToArray();
        for (int i = 0; i < 4; i++)
            Assert.Equal(before[i] - 0.01 * Math.Sign(g[i]), after[i], 1e-5);
    }

    [Fact]
    public void BadHyperparametersAreRejected()
    {
        var (p, _) = Param(3, 3);
        Assert.Contains("momentum", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([p], 0.1f, momentum: -1)).Message);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, nesterov: true)).Message);
        Assert.Contains("beta1", Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([p], beta1: 1f)).Message);
        Assert.Contains("learning rate", Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([p], -1f)).Message);
        var notTrainable = Tensor.Zeros([2], Device.Cpu);
        Assert.Contains("requires gradients", Assert.Throws<ArgumentException>(() => new Sgd([notTrainable], 0.1f)).Message);
    }
}
