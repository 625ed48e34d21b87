using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>The spectral layers on the ILGPU kernel set (CPU emulator, tiny shapes) agree with the CPU kernel set.</summary>
[Collection("ilgpu")]
public class SpectralIlgpuTests
{
    private static (float[] Y, float[] Gx, float[] Gw) Run(Device d, bool twoD)
    {
        using var scope = new TensorScope();
        Module conv = twoD ? new SpectralConv2d(2, 3, 2, 2, seed: 3, device: d) : new SpectralConv1d(2, 3, 3, seed: 3, device: d);
        using (conv)
        {
            var wr = conv.Parameters()[0];
            using (var t = Tensor.Normal(wr.Shape, 4, device: d)) wr.CopyFrom(t);
            var x = Tensor.Normal(twoD ? [2, 5, 6, 2] : [2, 7, 2], 5, device: d);
            x.RequiresGrad = true;
            var y = conv.Forward(x);
            y.Square().Sum().Backward();
            return (y.ToArray(), x.Grad!.ToArray(), wr.Grad!.ToArray());
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SpectralConvMatchesTheCpuKernelSet(bool twoD)
    {
        var cpu = Run(Device.Cpu, twoD);
        var gpu = Run(TestDevices.Ilgpu, twoD);
        foreach (var (a, b) in new[] { (cpu.Y, gpu.Y), (cpu.Gx, gpu.Gx), (cpu.Gw, gpu.Gw) })
        {
            Assert.Equal(a.Length, b.Length);
            for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 1e-4 + 1e-4 * Math.Abs(a[i]));
        }
    }
}
