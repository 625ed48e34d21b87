using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Tests.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// Ops on a device whose kernel set exposes only the core contract (<see cref="CoreOnlyKernelSet"/> installed with
/// <see cref="Device.UseKernels"/>) take the composite fallbacks of every capability and give the same values and
/// gradients as the set's own fused kernels: layer norm, FFTs, SPN layers and a SAM step around Adam. Tolerances per
/// check (float rounding of the extra passes). Written once, run per kernel set.
/// </summary>
public abstract class CapabilityFallbackTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>
    /// Runs <paramref name="compute"/> (which returns host arrays) on the device's own kernels and then with only the
    /// core contract in force; checks that the second run went through the core-only set and took no capability.
    /// </summary>
    private (float[][] Native, float[][] Composite) Both(Func<float[][]> compute)
    {
        var native = compute();
        var core = new CoreOnlyKernelSet(Device.Kernels);
        float[][] composite;
        using (Device.UseKernels(_ => core))
        {
            Assert.Same(core, Device.Kernels);
            composite = compute();
        }
        Assert.NotSame(core, Device.Kernels);
        Assert.NotEmpty(core.Calls);
        return (native, composite);
    }

    private static void Close(float[][] native, float[][] composite, double rel, double abs, string what)
    {
        Assert.Equal(native.Length, composite.Length);
        for (int i = 0; i < native.Length; i++)
            KernelAssert.Close(native[i], composite[i], new Tolerance(rel, abs), $"{what} output {i}: composite vs fused");
    }

    /// <summary>Layer norm forward and all three gradients.</summary>
    [Fact]
    public void LayerNorm()
    {
        var (n, c) = Both(() =>
        {
            using var scope = new TensorScope();
            var x = Tensor.Uniform([5, 7], 1, -2f, 3f, Device);
            var g = Tensor.Uniform([7], 2, 0.5f, 1.5f, Device);
            var b = Tensor.Uniform([7], 3, -1f, 1f, Device);
            x.RequiresGrad = g.RequiresGrad = b.RequiresGrad = true;
            var y = x.LayerNorm(g, b);
            (y * Tensor.Uniform([5, 7], 4, -1f, 1f, Device)).Sum().Backward();
            return [y.ToArray(), x.Grad!.ToArray(), g.Grad!.ToArray(), b.Grad!.ToArray()];
        });
        Close(n, c, 1e-4, 1e-5, "layer norm");
    }

    /// <summary>rfft, irfft, rfft2 and a complex fft with the gradient of a loss through them.</summary>
    [Fact]
    public void Fft()
    {
        var (n, c) = Both(() =>
        {
            using var scope = new TensorScope();
            var x = Tensor.Uniform([3, 10], 5, -1f, 1f, Device);
            var z = Tensor.Uniform([2, 3, 6], 6, -1f, 1f, Device);
            x.RequiresGrad = z.RequiresGrad = true;
            var spectrum = x.Rfft();
            var back = spectrum.Square().Irfft(10);
            var two = z.Rfft2();
            var complex = two.Fft(inverse: true);
            (back.Sum() + complex.Square().Sum()).Backward();
            return [spectrum.ToArray(), back.ToArray(), two.ToArray(), complex.ToArray(), x.Grad!.ToArray(), z.Grad!.ToArray()];
        });
        Close(n, c, 1e-4, 1e-5, "fft");
    }

    /// <summary>A small SPN: categorical leaves, a product and a sum layer, its log-likelihood and the parameter gradients.</summary>
    [Fact]
    public void SpnLayers()
    {
        using var leaves = new SpnLeafLayout([[0, 1], [2], [3, 4], [1, 3]], 5);
        using var product = new SpnProductLayout([0, 2, 1], 4, [1, 3, 3], 4);
        var data = new float[] { 0, 1, 1, float.NaN, 0, 1, 1, 0, 1, 1, float.NaN, 0, 0, 0, 1, 1, 1, float.NaN, 0, 0 };
        var (n, c) = Both(() =>
        {
            using var scope = new TensorScope();
            var x = Tensor.FromArray(data, [4, 5], Device);
            var table = Tensor.Uniform([leaves.Entries, 3, 2], 7, -1f, 1f, Device);
            var weights = Tensor.Uniform([3, 2, 9], 8, -1f, 1f, Device);
            table.RequiresGrad = weights.RequiresGrad = true;
            var leaf = Ops.SpnLeafCategorical(x, table.LogSoftmax(-1), leaves);
            var prod = Ops.SpnProduct(leaf, leaf, product);
            var sum = Ops.SpnSum(prod, weights.LogSoftmax(-1));
            sum.Sum().Backward();
            return [leaf.ToArray(), prod.ToArray(), sum.ToArray(), table.Grad!.ToArray(), weights.Grad!.ToArray()];
        });
        Close(n, c, 1e-4, 1e-5, "spn");
    }

    /// <summary>Three SAM steps around Adam on a small MLP: the weights after them.</summary>
    [Fact]
    public void SamAroundAdam()
    {
        var (n, c) = Both(() =>
        {
            using var model = new Sequential(new Linear(6, 5, seed: 11, device: Device), new Tanh(), new Linear(5, 3, seed: 12, device: Device));
            using var x = Tensor.Uniform([8, 6], 13, -1f, 1f, Device);
            int[] labels = [0, 1, 2, 0, 1, 2, 2, 1];
            using var opt = new Sam(new Adam(model.Parameters(), 1e-2f), rho: 0.1f);
            for (int i = 0; i < 3; i++)
            {
                using var scope = new TensorScope();
                opt.Step(() =>
                {
                    var loss = Losses.CrossEntropy(model.Forward(x), labels);
                    loss.Backward();
                    return loss;
                });
            }
            return model.Parameters().Select(p => p.ToArray()).ToArray();
        });
        Close(n, c, 1e-4, 1e-5, "SAM(Adam) weights");
    }

    /// <summary>
    /// A kernel set installed for a scope holds for this flow only: a thread started before the scope keeps the
    /// device's own; nested scopes stack and unwind.
    /// </summary>
    [Fact]
    public void UseKernelsIsScopedToTheFlow()
    {
        var own = Device.Kernels;
        var core = new CoreOnlyKernelSet(own);
        using var inScope = new ManualResetEventSlim();
        IKernelSet? seen = null;
        var other = new Thread(() =>
        {
            inScope.Wait();
            seen = Device.Kernels;
        });
        other.Start();
        using (Device.UseKernels(_ => core))
        {
            inScope.Set();
            other.Join();
            Assert.Same(own, seen);
            Assert.Same(core, Device.Kernels);
            using (Device.UseKernels(inner => new CoreOnlyKernelSet(inner)))
                Assert.Same(core, ((CoreOnlyKernelSet)Device.Kernels).Inner);
            Assert.Same(core, Device.Kernels);
        }
        Assert.Same(own, Device.Kernels);
        Assert.Throws<ArgumentNullException>(() => Device.UseKernels(_ => null!));
        Assert.Same(own, Device.Kernels);
    }
}

/// <summary>Fallbacks over the CPU set's core.</summary>
public sealed class CpuCapabilityFallbackTests : CapabilityFallbackTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Fallbacks over the ILGPU set's core, on the CPU emulator.</summary>
[Collection("ilgpu")]
public sealed class IlgpuCapabilityFallbackTests : CapabilityFallbackTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
