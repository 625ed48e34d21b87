using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Spn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The mission's layers on the shapes users have: a Mixer on non-square, multi-channel images with rectangular patches,
/// a MixerBlock on [B, S, C], FNOs with several input and output channels and a cached grid, an SPN over a user's own
/// partition with several root sums.
/// </summary>
public class UserShapeTests
{
    private static readonly Device Cpu = Device.Cpu;

    [Fact]
    public void Mixer_patches_non_square_multichannel_images_channel_major()
    {
        // 2 channels of 4x6 pixels, 2x3 patches: a 2x2 grid of tokens, 12 values per patch.
        using var m = new Mixer((4, 6), (2, 3), channels: 5, blocks: 1, tokenHidden: 3, channelHidden: 4, classes: 3, inputChannels: 2, device: Cpu);
        Assert.Equal(4, m.Tokens);
        Assert.Equal(48, m.Pixels);
        var img = Tensor.FromArray(Enumerable.Range(0, 96).Select(i => (float)i).ToArray(), [2, 2, 4, 6], Cpu);
        var p = m.Patches(img);
        Assert.Equal([2, 4, 12], p.Shape);
        var v = p.ToArray();
        // Token 1 of image 0 is grid cell (0, 1): rows 0-1, columns 3-5 of channel 0, then of channel 1 (offset 24).
        Assert.Equal(new float[] { 3, 4, 5, 9, 10, 11, 27, 28, 29, 33, 34, 35 }, v[12..24]);
        // The flat layout [B, c·h·w] gives the same patches, and the model runs on both.
        Assert.Equal(v, m.Patches(img.Reshape(2, 48)).ToArray());
        Assert.Equal([2, 3], m.Forward(img).Shape);
        Assert.Equal(Mixer.CountParameters((4, 6), (2, 3), 5, 1, 3, 4, 3, inputChannels: 2), m.ParameterCount);
        var e = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros([2, 2, 6, 4], Cpu)));
        Assert.Contains("[B, 2, 4, 6]", e.Message);
        Assert.Contains("[2, 2, 6, 4]", e.Message);
        Assert.Throws<ArgumentException>(() => new Mixer((4, 6), (3, 3), 5, 1, 3, 4, device: Cpu));
    }

    [Fact]
    public void Mixer_on_non_square_images_gradchecks()
    {
        using var m = new Mixer((2, 4), (1, 2), channels: 3, blocks: 1, tokenHidden: 2, channelHidden: 3, classes: 2, inputChannels: 2, seed: 2, device: Cpu);
        var x = Tensor.Normal([2, 2, 2, 4], 5, device: Cpu);
        x.RequiresGrad = true;
        GradCheck.Assert(_ => Losses.CrossEntropy(m.Forward(x), [1, 0]), m.Parameters().Prepend(x).ToArray(), eps: 1e-2, atol: 2e-3, rtol: 2e-2,
            maxEntriesPerInput: 12);
    }

    [Fact]
    public void MixerBlock_takes_tokens_by_channels_and_agrees_with_the_flat_view()
    {
        using var blk = new MixerBlock(3, 4, 5, 6, seed: 3, device: Cpu);
        var x = Tensor.Normal([2, 3, 4], 1, device: Cpu);
        var y = blk.Forward(x);
        Assert.Equal([2, 3, 4], y.Shape);
        Assert.Equal(blk.Forward(x.Reshape(2, 12)).ToArray(), y.ToArray());
        var e = Assert.Throws<ArgumentException>(() => blk.Forward(Tensor.Zeros([2, 4, 3], Cpu)));
        Assert.Contains("[B, 3, 4]", e.Message);
    }

    [Fact]
    public void Fno1d_with_several_channels_matches_a_reordered_single_pass_and_gradchecks()
    {
        using var m = new Fno1d(modes: 3, width: 4, blocks: 2, projectionHidden: 5, seed: 1, device: Cpu, inChannels: 2, outChannels: 3);
        var x = Tensor.Normal([2, 8, 2], 4, device: Cpu);
        var y = m.Forward(x);
        Assert.Equal([2, 8, 3], y.Shape);
        Assert.Equal(2 + 1, m.Lift.InFeatures);
        // Samples are independent: the second sample alone gives its slice of the batch result.
        Assert.True(m.Forward(x[1..]).AllClose(y[1..], 1e-5, 1e-6));
        x.RequiresGrad = true;
        GradCheck.Assert(_ => m.Forward(x), [x, m.Lift.Weight, m.Projection2.Weight], maxEntriesPerInput: 12);
        var e = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros([2, 8], Cpu)));
        Assert.Contains("[batch, n, 2]", e.Message);
    }

    [Fact]
    public void Fno_grid_is_built_once_per_size_and_outlives_training_scopes()
    {
        using var m = new Fno2d(2, 2, 4, 1, projectionHidden: 4, device: Cpu, inChannels: 3);
        var x = Tensor.Normal([1, 5, 6, 3], 2, device: Cpu);
        float[] first;
        using (var scope = new TensorScope()) first = m.Forward(x).ToArray();
        Assert.Equal([1, 5, 6], m.Forward(x).Shape);
        float[] second;
        using (var scope = new TensorScope()) second = m.Forward(x).ToArray(); // the cached grid survived the first scope
        Assert.Equal(first, second);
        // A different size gets its own grid; the single-channel default still accepts [B, n] inputs.
        Assert.Equal([1, 7, 6], m.Forward(Tensor.Normal([1, 7, 6, 3], 3, device: Cpu)).Shape);
        using var one = new Fno1d(2, 4, 1, projectionHidden: 4, device: Cpu);
        Assert.Equal([3, 9], one.Forward(Tensor.Normal([3, 9], 1, device: Cpu)).Shape);
        Assert.Equal([3, 9], one.Forward(Tensor.Normal([3, 9, 1], 1, device: Cpu)).Shape);
    }

    [Fact]
    public void RegionGraph_from_a_user_partition_pairs_neighbours_and_checks_the_partition()
    {
        // 6 variables, two repetitions of 4 leaf regions each.
        int[][] a = [[0], [1, 2], [3], [4, 5]];
        int[][] b = [[5, 0], [2], [4], [1, 3]];
        var g = RegionGraph.FromPartitions(6, [a, b]);
        Assert.Equal(2, g.Depth);
        Assert.Equal(2, g.Repetitions);
        Assert.Equal([0, 5], g.LeafRegions[4]);
        using var spn = new Spn.Spn(g, 3, 2, device: Cpu);
        // A valid SPN over the user's structure: the probabilities of all 2^6 binary inputs sum to 1.
        var all = new float[64 * 6];
        for (int r = 0; r < 64; r++)
            for (int v = 0; v < 6; v++) all[r * 6 + v] = (r >> v) & 1;
        var ll = spn.LogLikelihood(Tensor.FromArray(all, [64, 6], Cpu)).ToArray();
        Assert.Equal(1.0, ll.Sum(l => Math.Exp(l)), 4);
        var e = Assert.Throws<ArgumentException>(() => RegionGraph.FromPartitions(6, [[[0, 1], [1, 2, 3, 4, 5]]]));
        Assert.Contains("variable 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => RegionGraph.FromPartitions(6, [[[0, 1], [2], [3, 4, 5]]]));
        Assert.Contains("power of two", e.Message);
        e = Assert.Throws<ArgumentException>(() => RegionGraph.FromPartitions(6, [[[0, 1], [2, 3]]]));
        Assert.Contains("leaves variable 4 out", e.Message);
    }

    [Fact]
    public void Spn_with_several_root_sums_gives_one_normalised_density_per_root()
    {
        var g = RegionGraph.RandomBinary(5, 2, 3, seed: 4);
        using var spn = new Spn.Spn(g, 3, 3, seed: 2, device: Cpu, rootSums: 4);
        Assert.Equal(4, spn.RootSums);
        var all = new float[32 * 5];
        for (int r = 0; r < 32; r++)
            for (int v = 0; v < 5; v++) all[r * 5 + v] = (r >> v) & 1;
        var ll = spn.LogLikelihood(Tensor.FromArray(all, [32, 5], Cpu));
        Assert.Equal([32, 4], ll.Shape);
        var v2 = ll.ToArray();
        for (int k = 0; k < 4; k++) Assert.Equal(1.0, Enumerable.Range(0, 32).Sum(r => Math.Exp(v2[r * 4 + k])), 4);
        // The roots differ (their weights are drawn independently) and train as a generative classifier.
        Assert.NotEqual(v2[0], v2[1]);
        var e = Assert.Throws<InvalidOperationException>(() => spn.Mpe(new float[5]));
        Assert.Contains("one root sum", e.Message);
        GradCheck.Assert(_ => Losses.CrossEntropy(spn.LogLikelihood(Tensor.FromArray(all[..20], [4, 5], Cpu)), [0, 3, 1, 1]),
            spn.Parameters().ToArray(), maxEntriesPerInput: 8);
    }
}
