using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>The README's library example, kept compiling and learning.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void ReadmeExampleRunsAndLowersTheLoss()
    {
        var device = Device.Cpu;
        using var model = new Sequential(new Linear(64, 128, seed: 1, device: device), new ReLU(), new Linear(128, 10, seed: 2, device: device));
        using var opt = new Adam(model.Parameters(), 1e-3f);
        var x = Tensor.Uniform([32, 64], seed: 7, device: device);
        int[] labels = Enumerable.Range(0, 32).Select(i => i % 10).ToArray();
        float first = 0, last = 0;
        for (int step = 0; step < 100; step++)
        {
            using var scope = new TensorScope();
            opt.ZeroGrad();
            var loss = Losses.CrossEntropy(model.Forward(x), labels);
            loss.Backward();
            opt.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first * 0.2f, $"loss {first} -> {last}");
    }
}
