using Engine.Autodiff;
using Engine.Data;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Tests.EngineTests;

/// <summary>End-to-end learning: small MLPs must fit XOR and two-moons, reproducibly.</summary>
public class LearningTests
{
    private static (Sequential Model, double TrainAccuracy, float[] Weights) Fit(Dataset data, int hidden, int epochs, float lr, int seed, int batch)
    {
        var d = Device.Cpu;
        ulong s = (ulong)seed;
        var model = new Sequential(
            new Linear(2, hidden, seed: s + 1, device: d), new Tanh(),
            new Linear(hidden, hidden, seed: s + 2, device: d), new Tanh(),
            new Linear(hidden, 2, seed: s + 3, device: d));
        using var opt = new Adam(model.Parameters(), lr);
        var loader = new DataLoader(data, batch, shuffle: true, seed: seed, device: d);
        for (int e = 0; e < epochs; e++) ClassifierTraining.Epoch(model, loader, opt);
        var acc = Evaluation.Classify(model, data, device: d).Accuracy;
        var weights = model.Parameters().SelectMany(p => p.ToArray()).ToArray();
        return (model, acc, weights);
    }

    [Fact]
    public void MlpLearnsXor()
    {
        var (m, acc, _) = Fit(ToyData.Xor(), 8, 300, 0.02f, 11, 4);
        using (m) Assert.Equal(1.0, acc);
    }

    [Fact]
    public void MlpLearnsTwoMoons()
    {
        var (m, acc, _) = Fit(ToyData.TwoMoons(200, 0.05f, 3), 32, 150, 0.01f, 5, 32);
        using (m) Assert.Equal(1.0, acc);
    }

    [Fact]
    public void SameSeedGivesBitwiseSameWeights()
    {
        var data = ToyData.TwoMoons(128, 0.1f, 9);
        var (m1, _, w1) = Fit(data, 16, 5, 0.01f, 4, 16);
        var (m2, _, w2) = Fit(data, 16, 5, 0.01f, 4, 16);
        m1.Dispose();
        m2.Dispose();
        Assert.Equal(w1.Select(BitConverter.SingleToInt32Bits), w2.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void DataLoaderCoversEverySampleOncePerEpochAndReshuffles()
    {
        var x = Enumerable.Range(0, 10).Select(i => (float)i).ToArray();
        var data = new Dataset(x, [1], Enumerable.Range(0, 10).ToArray());
        var loader = new DataLoader(data, 3, shuffle: true, seed: 2, device: Device.Cpu);
        Assert.Equal(4, loader.BatchCount);
        var e1 = loader.NextEpoch().SelectMany(b => { using (b) return b.Labels!; }).ToArray();
        var e2 = loader.NextEpoch().SelectMany(b => { using (b) return b.Labels!; }).ToArray();
        Assert.Equal(Enumerable.Range(0, 10), e1.OrderBy(v => v));
        Assert.Equal(Enumerable.Range(0, 10), e2.OrderBy(v => v));
        Assert.NotEqual(e1, e2);
        var dropLast = new DataLoader(data, 3, shuffle: false, dropLast: true, device: Device.Cpu);
        Assert.Equal(3, dropLast.NextEpoch().Count());
    }

    [Fact]
    public void DatasetRejectsMismatchedLabels()
    {
        var e = Assert.Throws<ArgumentException>(() => new Dataset(new float[6], [2], [0, 1]));
        Assert.Contains("3 samples but 2 labels", e.Message);
    }
}
