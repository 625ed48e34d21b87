using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>GradCheck through modules: Linear, both losses, and a 3-layer MLP, with respect to input and every parameter.</summary>
public class LayerGradCheckTests
{
    private static readonly Device Cpu = Device.Cpu;

    private static void CheckModule(Module m, Tensor x, Func<Tensor, Tensor> loss)
    {
        var ps = m.Parameters().ToArray();
        var inputs = ps.Prepend(x).ToArray();
        GradCheck.Assert(_ => loss(m.Forward(x)), inputs, maxEntriesPerInput: 24);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 5, 7)]
    [InlineData(4, 13, 2)]
    public void LinearGradCheck(int batch, int inF, int outF)
    {
        using var lin = new Linear(inF, outF, seed: 3, device: Cpu);
        var x = Tensor.Normal([batch, inF], 4, device: Cpu);
        x.RequiresGrad = true;
        CheckModule(lin, x, y => y);
    }

    [Fact]
    public void LinearOnRank3InputGradCheck()
    {
        using var lin = new Linear(5, 3, seed: 5, device: Cpu);
        var x = Tensor.Normal([2, 4, 5], 6, device: Cpu);
        x.RequiresGrad = true;
        CheckModule(lin, x, y => y);
    }

    [Fact]
    public void ThreeLayerMlpWithCrossEntropyGradCheck()
    {
        using var m = new Sequential(new Linear(6, 8, seed: 1, device: Cpu), new Tanh(), new Linear(8, 7, seed: 2, device: Cpu),
            new GELU(), new Linear(7, 4, seed: 3, device: Cpu));
        var x = Tensor.Normal([5, 6], 9, device: Cpu);
        x.RequiresGrad = true;
        CheckModule(m, x, y => Losses.CrossEntropy(y, [0, 3, 1, 2, 3]));
    }

    [Fact]
    public void ThreeLayerMlpWithMseGradCheck()
    {
        using var m = new Sequential(new Linear(3, 6, seed: 4, device: Cpu), new Sigmoid(), new Linear(6, 6, seed: 5, device: Cpu),
            new Tanh(), new Linear(6, 2, seed: 6, device: Cpu));
        var x = Tensor.Normal([4, 3], 10, device: Cpu);
        x.RequiresGrad = true;
        var target = Tensor.Normal([4, 2], 11, device: Cpu);
        CheckModule(m, x, y => Losses.Mse(y, target));
    }

    [Fact]
    public void CrossEntropyIsStableForHugeLogits()
    {
        var logits = Tensor.FromArray([1e4f, -1e4f, 0f, 3e4f, 3e4f, -3e4f], [2, 3], Cpu, requiresGrad: true);
        var loss = Losses.CrossEntropy(logits, [0, 2]);
        loss.Backward();
        // Row 0: label holds the max -> loss 0; row 1: label is 6e4 below the max -> loss 6e4 + log 2.
        Assert.Equal((0 + 6e4 + Math.Log(2)) / 2, loss.Item(), 1.0);
        Assert.All(logits.Grad!.ToArray(), g => Assert.True(float.IsFinite(g)));
    }
}
