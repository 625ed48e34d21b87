using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// Gradchecks of the differentiable FFTs (rfft, irfft, rfft2, irfft2, fft/ifft), first order on small shapes with even
/// and odd lengths and length 1, second order (createGraph) through a nonlinearity; forward values against NumPy
/// conventions; and the op-level input errors. Written once, run per kernel set.
/// </summary>
public abstract class FftGradTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>Entries probed per input.</summary>
    protected virtual int MaxEntries => 48;

    /// <summary>The gradcheck table: name -> (input shape, function).</summary>
    private static readonly Dictionary<string, (int[] Shape, Func<Tensor[], Tensor> F, bool SecondOrder)> Specs = new()
    {
        ["rfft [3, 8]"] = ([3, 8], xs => xs[0].Rfft(), false),
        ["rfft [2, 7]"] = ([2, 7], xs => xs[0].Rfft(), false),
        ["rfft [2, 1]"] = ([2, 1], xs => xs[0].Rfft(), false),
        ["rfft [2]"] = ([2], xs => xs[0].Rfft(), false),
        ["rfft [2, 2, 6] squared"] = ([2, 2, 6], xs => xs[0].Rfft().Square(), true),
        ["irfft [3, 5, 2] n 8"] = ([3, 5, 2], xs => xs[0].Irfft(8), false),
        ["irfft [2, 4, 2] n 7"] = ([2, 4, 2], xs => xs[0].Irfft(7), false),
        ["irfft [2, 1, 2] n 1"] = ([2, 1, 2], xs => xs[0].Irfft(1), false),
        ["irfft [2, 2, 2] n 2"] = ([2, 2, 2], xs => xs[0].Irfft(2), false),
        ["irfft [2, 4, 2] n 6 of squares"] = ([2, 4, 2], xs => xs[0].Square().Irfft(6), true),
        ["rfft2 [2, 4, 6]"] = ([2, 4, 6], xs => xs[0].Rfft2(), false),
        ["rfft2 [1, 3, 5]"] = ([1, 3, 5], xs => xs[0].Rfft2(), false),
        ["rfft2 [3, 5] squared"] = ([3, 5], xs => xs[0].Rfft2().Square(), true),
        ["irfft2 [2, 4, 4, 2] 4x6"] = ([2, 4, 4, 2], xs => xs[0].Irfft2(4, 6), false),
        ["irfft2 [1, 3, 3, 2] 3x5"] = ([1, 3, 3, 2], xs => xs[0].Irfft2(3, 5), false),
        ["irfft2 [3, 3, 2] 3x4 of squares"] = ([3, 3, 2], xs => xs[0].Square().Irfft2(3, 4), true),
        ["fft [3, 8, 2]"] = ([3, 8, 2], xs => xs[0].Fft(), false),
        ["ifft [3, 8, 2]"] = ([3, 8, 2], xs => xs[0].Fft(inverse: true), false),
        ["fft [2, 5, 2]"] = ([2, 5, 2], xs => xs[0].Fft(), false),
        ["ifft [1, 5, 2]"] = ([1, 5, 2], xs => xs[0].Fft(inverse: true), false),
        ["ifft [2, 6, 2] squared"] = ([2, 6, 2], xs => xs[0].Fft(inverse: true).Square(), true),
        ["irfft(rfft) [2, 9] tanh"] = ([2, 9], xs => xs[0].Rfft().Tanh().Irfft(9), true),
    };

    /// <summary>Names of the specs.</summary>
    public static TheoryData<string> Names => new(Specs.Keys);

    /// <summary>Names of the second-order specs.</summary>
    public static TheoryData<string> SecondOrderNames => new(Specs.Where(s => s.Value.SecondOrder).Select(s => s.Key));

    private Tensor[] Inputs(string name)
    {
        var shape = Specs[name].Shape;
        var data = Gens.Normal()(new Random(11), (int)Engine.Autodiff.Shape.Size(shape));
        return [Tensor.FromArray(data, shape, Device, requiresGrad: true)];
    }

    /// <summary>Analytic gradient equals central differences.</summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void Gradient_matches_central_differences(string name)
    {
        using var scope = new TensorScope();
        var r = GradCheck.Check(Specs[name].F, Inputs(name), maxEntriesPerInput: MaxEntries);
        Assert.True(r.Passed, $"{name} on {Device.Name}: {r.Report}");
        Assert.True(r.Checked > 0);
    }

    /// <summary>The createGraph gradient, gradchecked again (double backpropagation through the adjoint transforms).</summary>
    [Theory]
    [MemberData(nameof(SecondOrderNames))]
    public void Gradient_of_gradient_matches_central_differences(string name)
    {
        using var scope = new TensorScope();
        var inputs = Inputs(name);
        var f = Specs[name].F;
        Func<Tensor[], Tensor> grad = xs => AutodiffOpTests.GradOf(f, xs, 0);
        Assert.True(grad(inputs).RequiresGrad, "the gradient must depend on the input");
        var r = GradCheck.Check(grad, inputs, maxEntriesPerInput: Math.Max(4, MaxEntries / 2));
        Assert.True(r.Passed, $"{name} on {Device.Name}, second order: {r.Report}");
    }

    /// <summary>rfft of a known signal: a cosine at bin 2 of n = 8 gives n/2 at bin 2 and zeros elsewhere; shapes follow NumPy.</summary>
    [Fact]
    public void Rfft_known_values_and_shapes()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(Enumerable.Range(0, 8).Select(j => (float)Math.Cos(2 * Math.PI * 2 * j / 8)).ToArray(), [1, 8], Device);
        var y = x.Rfft();
        Assert.Equal([1, 5, 2], y.Shape);
        var v = y.ToArray();
        for (int k = 0; k < 5; k++)
        {
            Assert.True(Math.Abs(v[2 * k] - (k == 2 ? 4f : 0f)) < 1e-5, $"re[{k}] = {v[2 * k]}");
            Assert.True(Math.Abs(v[2 * k + 1]) < 1e-5, $"im[{k}] = {v[2 * k + 1]}");
        }
        Assert.Equal([1, 8], y.Irfft(8).Shape);
        Assert.Equal([2, 3, 4, 3, 2], Tensor.Zeros([2, 3, 4, 5], Device).Rfft2().Shape);
        Assert.Equal([2, 3, 4, 5], Tensor.Zeros([2, 3, 4, 3, 2], Device).Irfft2(4, 5).Shape);
        Assert.Equal([3, 7, 2], Tensor.Zeros([3, 7, 2], Device).Fft(inverse: true).Shape);
    }

    /// <summary>irfft ignores the imaginary parts of DC and Nyquist, so their gradient is exactly zero.</summary>
    [Fact]
    public void Irfft_gradient_of_ignored_imaginary_parts_is_zero()
    {
        using var scope = new TensorScope();
        var z = Tensor.FromArray(Gens.Normal()(new Random(2), 10), [5, 2], Device, requiresGrad: true);
        var w = Tensor.FromArray(Gens.Normal()(new Random(3), 8), [8], Device);
        (z.Irfft(8) * w).Sum().Backward();
        var g = z.Grad!.ToArray();
        Assert.Equal(0f, g[1]);
        Assert.Equal(0f, g[9]);
        Assert.NotEqual(0f, g[3]);
    }

    /// <summary>Bad inputs: clear errors naming the op and the shapes, before any kernel runs.</summary>
    [Fact]
    public void Bad_inputs_throw_clear_errors()
    {
        using var scope = new TensorScope();
        var empty = Tensor.Zeros([3, 0], Device);
        Assert.Contains("length 0", Assert.Throws<ArgumentException>(() => empty.Rfft()).Message);
        Assert.Contains("rfft2", Assert.Throws<ArgumentException>(() => Tensor.Zeros([0, 4], Device).Rfft2()).Message);
        Assert.Contains("fft", Assert.Throws<ArgumentException>(() => Tensor.Zeros([2, 0, 2], Device).Fft()).Message);
        Assert.Contains("irfft", Assert.Throws<ArgumentException>(() => Tensor.Zeros([2, 1, 2], Device).Irfft(0)).Message);
        // Complex tensors must end in (re, im).
        var notComplex = Tensor.Zeros([4, 3], Device);
        Assert.Contains("size 2", Assert.Throws<ArgumentException>(() => notComplex.Irfft(6)).Message);
        Assert.Contains("size 2", Assert.Throws<ArgumentException>(() => notComplex.Fft()).Message);
        Assert.Contains("size 2", Assert.Throws<ArgumentException>(() => Tensor.Zeros([4, 3, 3], Device).Irfft2(4, 4)).Message);
        // The length must match the bins: 5 bins are n = 8 or 9, not 10.
        var spec = Tensor.Zeros([2, 5, 2], Device);
        var e = Assert.Throws<ArgumentException>(() => spec.Irfft(10));
        Assert.Contains("5 frequency bins", e.Message);
        Assert.Contains("6", e.Message);
        Assert.Equal([2, 9], spec.Irfft(9).Shape);
        Assert.Contains("[4, 3]", Assert.Throws<ArgumentException>(() => Tensor.Zeros([4, 3, 2], Device).Irfft2(5, 4)).Message);
    }
}

/// <summary>FFT gradients on the CPU kernel set.</summary>
public sealed class CpuFftGradTests : FftGradTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>FFT gradients on the ILGPU emulator (fewer probes).</summary>
[Collection("ilgpu")]
public sealed class IlgpuFftGradTests : FftGradTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;

    /// <inheritdoc />
    protected override int MaxEntries => 12;
}
