using Engine.Autodiff;
using Engine.Data;
using Engine.Kernels;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Data sets and the loader: host and device data sets give the same batches, subsets and random splits select the
/// right samples, and a settable epoch replays a run's order exactly. Run per kernel set (the device data set gathers
/// on the device).
/// </summary>
public abstract class DataLoaderTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    private static Dataset Host(int n) => new(
        Enumerable.Range(0, n * 3).Select(i => (float)i).ToArray(), [3], Enumerable.Range(0, n).Select(i => i % 4).ToArray(),
        Enumerable.Range(0, n * 2).Select(i => -(float)i).ToArray(), [2]);

    private static List<(float[] X, int[] Labels, float[] T)> Drain(DataLoader loader)
    {
        var r = new List<(float[], int[], float[])>();
        foreach (var b in loader.NextEpoch())
            using (b) r.Add((b.X.ToArray(), b.Labels!, b.Targets!.ToArray()));
        return r;
    }

    [Fact]
    public void Device_data_set_gives_the_host_data_sets_batches_on_its_device()
    {
        using var scope = new TensorScope();
        var host = Host(11);
        var features = Tensor.FromArray(host.Features, [11, 3], Device);
        var targets = Tensor.FromArray(host.Targets!, [11, 2], Device);
        var onDevice = new TensorDataset(features, host.Labels, targets);
        var a = new DataLoader(host, 4, seed: 3, device: Device);
        var b = new DataLoader(onDevice, 4, seed: 3);
        Assert.Same(Device, b.Device);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var ba = Drain(a);
            var bb = Drain(b);
            Assert.Equal(3, bb.Count);
            for (int i = 0; i < ba.Count; i++)
            {
                Assert.Equal(ba[i].X, bb[i].X);
                Assert.Equal(ba[i].Labels, bb[i].Labels);
                Assert.Equal(ba[i].T, bb[i].T);
            }
        }
        foreach (var batch in new DataLoader(onDevice, 4).NextEpoch()) using (batch) Assert.Same(Device, batch.X.Device);
        Assert.Throws<ArgumentException>(() => new TensorDataset(features, [1, 2]));
    }

    [Fact]
    public void Subsets_and_random_splits_select_disjoint_samples()
    {
        using var scope = new TensorScope();
        var host = Host(10);
        var parts = Subset.RandomSplit(host, [0.7, 0.3], seed: 5);
        Assert.Equal([7, 3], parts.Select(p => p.Count).ToArray());
        var all = parts.SelectMany(p => p.Indices).OrderBy(i => i).ToArray();
        Assert.Equal(Enumerable.Range(0, 10).ToArray(), all);
        Assert.Equal(parts[1].Indices, Subset.RandomSplit(host, [7, 3], seed: 5)[1].Indices);
        Assert.Equal([4, 3, 3], Subset.RandomSplit(host, [1 / 3.0, 1 / 3.0, 1 / 3.0], 1).Select(p => p.Count).ToArray());
        var pick = new Subset(host, [9, 2, 2]);
        var batch = Drain(new DataLoader(pick, 8, shuffle: false, device: Device)).Single();
        Assert.Equal(new float[] { 27, 28, 29, 6, 7, 8, 6, 7, 8 }, batch.X);
        Assert.Equal([1, 2, 2], batch.Labels);
        // A subset of a device data set stays on the device.
        var dev = new TensorDataset(Tensor.FromArray(host.Features, [10, 3], Device), host.Labels);
        Assert.Same(Device, new DataLoader(new Subset(dev, [1]), 1).Device);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Subset(host, [10]));
        Assert.Throws<ArgumentException>(() => Subset.RandomSplit(host, [5, 4], 1));
        Assert.Throws<ArgumentException>(() => Subset.RandomSplit(host, [0.5, 0.6], 1));
    }

    [Fact]
    public void Setting_the_epoch_replays_the_order_of_an_interrupted_run()
    {
        using var scope = new TensorScope();
        var host = Host(9);
        var run = new DataLoader(host, 2, seed: 8, device: Device);
        var epochs = Enumerable.Range(0, 3).Select(_ => Drain(run)).ToList();
        Assert.Equal(3, run.Epoch);
        var resumed = new DataLoader(host, 2, seed: 8, device: Device) { Epoch = 2 };
        var third = Drain(resumed);
        Assert.Equal(epochs[2].Select(b => b.Labels), third.Select(b => b.Labels));
        Assert.NotEqual(epochs[1].SelectMany(b => b.Labels), epochs[2].SelectMany(b => b.Labels));
        Assert.Equal(resumed.Order(2), run.Order(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => resumed.Epoch = -1);
    }
}

/// <summary>Data sets and the loader on the CPU SIMD kernel set.</summary>
public sealed class CpuDataLoaderTests : DataLoaderTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Data sets and the loader on the ILGPU kernel set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuDataLoaderTests : DataLoaderTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
