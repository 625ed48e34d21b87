using System.Diagnostics;
using Engine.Data.Pde;
using Engine.Kernels;
using Engine.Nn;
using Engine.Training;
using Xunit.Abstractions;

namespace Engine.Tests.EngineTests;

/// <summary>End to end: an Fno1d learns the Burgers operator on a small generated set.</summary>
public class FnoLearningTests(ITestOutputHelper output)
{
    [Fact]
    public void Fno1dLearnsBurgersAtResolution128()
    {
        var sw = Stopwatch.StartNew();
        int ntrain = 300, ntest = 50;
        var all = Burgers.Generate(ntrain + ntest, 128, seed: 11, preset: BurgersPreset.PaperText.WithSolver(256, 200));
        var (train, test) = Samples.OperatorTask.Normalise(all, ntrain, ntest, centreInputs: false);
        double gen = sw.Elapsed.TotalSeconds;
        // Baselines on the same test pairs: predicting zero (error 1) and predicting u0 (the identity).
        var t = all.Slice(ntrain, ntest);
        double identity = 0;
        for (int i = 0; i < ntest; i++)
        {
            double e = 0, n = 0;
            for (int j = 0; j < 128; j++)
            {
                double y = t.Targets[i * 128 + j], x = t.Inputs[i * 128 + j];
                e += (x - y) * (x - y);
                n += y * y;
            }
            identity += Math.Sqrt(e / n) / ntest;
        }
        using var model = new Fno1d(modes: 12, width: 24, blocks: 4, projectionHidden: 64, seed: 2, device: Device.Cpu);
        var records = OperatorTraining.Fit(model, train, test, epochs: 8, batchSize: 20, learningRate: 3e-3f, weightDecay: 1e-4f,
            halveEvery: 4, seed: 3, Device.Cpu,
            (e, r) => output.WriteLine($"epoch {e}: train {r.TrainLoss:P2} test {r.TestError:P2} ({r.Seconds:F1} s)"));
        double err = records[^1].TestError;
        output.WriteLine($"data {gen:F1} s, total {sw.Elapsed.TotalSeconds:F1} s; test rel L2 {err:P2}; predicting u0: {identity:P1}, predicting 0: 100%");
        Assert.True(identity > 10, $"u0 is not a trivial predictor of u(1): {identity:G3}");
        // Measured 1.05% after 8 epochs (1.19% after 12); the threshold leaves a margin of about 5x.
        Assert.True(err < 0.05, $"test relative L2 {err:P2}");
    }
}
