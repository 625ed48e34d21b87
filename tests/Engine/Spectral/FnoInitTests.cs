using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Xunit.Abstractions;

namespace Engine.Tests.EngineTests;

/// <summary>Signal propagation through a deep random FNO at initialisation.</summary>
public class FnoInitTests(ITestOutputHelper output)
{
    private static readonly Device Cpu = Device.Cpu;

    /// <summary>Second moment of each block's pre-activation K h + W h + b of a 32-block, width-32 Fno1d.</summary>
    private double[] PreActivationMoments(SpectralInit init, ulong seed)
    {
        using var scope = new TensorScope();
        using var _ = GradMode.NoGrad();
        using var fno = new Fno1d(16, 32, blocks: 32, projectionHidden: 8, init: init, seed: seed, device: Cpu);
        // A smooth random input of second moment about 1 (its lowest 8 modes) plus a little white noise, as PDE data.
        int n = 256;
        var x = SpectralTransform.IrfftModes(SpectralTransform.RfftModes(Tensor.Normal([4, n], seed + 100, device: Cpu), 8), n) * 4f
                + Tensor.Normal([4, n], seed + 200, 0f, 0.1f, Cpu);
        var pre = new List<Tensor>();
        fno.Forward(x, pre);
        var m = pre.Select(z => (double)z.Square().Mean().Item()).ToArray();
        output.WriteLine($"{init} seed {seed}: " + string.Join(" ", m.Select((v, i) => $"{i}:{v:G3}")));
        return m;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void HeInitKeepsTheHiddenVarianceOfA32BlockFno(ulong seed)
    {
        var m = PreActivationMoments(SpectralInit.He, seed);
        Assert.Equal(32, m.Length);
        foreach (var (v, i) in m.Select((v, i) => (v, i)))
            Assert.True(v <= 2 * m[0] && v >= m[0] / 2, $"He: block {i} pre-activation second moment {v:G4} is not within a factor 2 of block 0's {m[0]:G4}");
        // The lifting layer puts the first block near the target variance v*.
        Assert.InRange(m[0], FnoInit.DefaultPreActivationVariance / 2, FnoInit.DefaultPreActivationVariance * 2);
    }

    [Fact]
    public void ScaledUniformInitLosesTheSignalInDepth()
    {
        var m = PreActivationMoments(SpectralInit.ScaledUniform, 1);
        // The reference init is nearly a zero spectral path with PyTorch's default pointwise init (gain ~μ₂/3 per block).
        Assert.True(m[^1] < m[0] / 5, $"scaled-uniform: block 31 {m[^1]:G4} vs block 0 {m[0]:G4}");
    }

    [Fact]
    public void HeIsDcFreeAndFlatPerMode()
    {
        // With orthogonal draws every non-DC mode's energy is multiplied by exactly 1/c(v*), and the mean is removed.
        using var conv = new SpectralConv1d(8, 8, 4, device: Cpu);
        using var lin = new Linear(8, 8, device: Cpu);
        FnoInit.He(conv, lin, 5);
        using var x = Tensor.Normal([3, 32, 8], 6, device: Cpu);
        var centred = x - x.Mean(1, keepDim: true);
        var z = conv.Forward(x) + lin.Forward(x);
        double gain = z.Square().Sum().Item() / centred.Square().Sum().Item();
        Assert.Equal(1 / FnoInit.GeluVarianceFactor(FnoInit.DefaultPreActivationVariance), gain, 1e-3);
        Assert.All(z.Mean(1).ToArray(), v => Assert.True(Math.Abs(v) < 1e-4));
    }
}
