using Engine.Kernels;
using Engine.Kernels.Ilgpu;

namespace Engine.Tests.Kernels;

/// <summary>
/// The ILGPU set's <see cref="ISoftmaxCrossEntropyKernels"/> on ILGPU's CPU emulator, with its default launch shapes
/// and with a GPU's (256-thread groups with warp shuffles): its loss and gradient carry the bits of the ILGPU calls it
/// stands in for (cross-entropy, and softmax, one-hot and their difference), in both kernel variants (a thread per
/// row, a group per long row), in place over the logits or not; bad extents and aliasing throw before any launch.
/// </summary>
[Collection("ilgpu")]
public sealed class IlgpuSoftmaxCrossEntropyTests
{
    private static readonly Lazy<IlgpuKernelSet> GpuShapes = new(() =>
        new IlgpuKernelSet(Device.Get(DeviceKind.IlgpuCpu), DeviceKind.IlgpuCpu, IlgpuCpuOptions.GpuShapes));

    private static IKernelSet Set(bool gpuShapes) => gpuShapes ? GpuShapes.Value : Device.Get(DeviceKind.IlgpuCpu).Kernels;

    /// <summary>(rows, classes, logit magnitude, in place, GPU launch shapes): awkward extents, short and long rows.</summary>
    public static IEnumerable<object[]> Cases()
    {
        (int Rows, int Classes, float Magnitude)[] shapes =
        [
            (1, 1, 3f), (1, 2, 3f), (7, 5, 3f), (13, 33, 3f), (3, 40, 20f), (5, 7, 1e4f), (17, 16, 3f), (300, 10, 5f), (2, 1031, 3f),
        ];
        foreach (bool gpu in new[] { false, true })
            foreach (var (rows, classes, magnitude) in shapes)
                foreach (bool inPlace in new[] { false, true })
                    yield return [rows, classes, magnitude, inPlace, gpu];
    }

    /// <summary>Loss rows and gradient bit for bit as the four separate calls write them.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void Matches_the_separate_calls_bit_for_bit(int rows, int classes, float magnitude, bool inPlace, bool gpuShapes)
    {
        var k = Set(gpuShapes);
        var rng = new Random(rows * 7919 + classes);
        long n = (long)rows * classes;
        var logits = Inputs.Uniform(rng, n, -magnitude, magnitude);
        var labels = Enumerable.Range(0, rows).Select(_ => rng.Next(classes)).ToArray();
        int[] full = [rows, classes];

        using var xb = DeviceData.Upload(k, logits);
        using var lb = DeviceData.Upload(k, labels);
        using var separateLoss = DeviceData.Filled(k, rows, float.NaN);
        using var probabilities = DeviceData.Filled(k, n, float.NaN);
        using var oneHot = DeviceData.Filled(k, n, float.NaN);
        k.CrossEntropy(xb, lb, rows, classes, separateLoss);
        k.Softmax(xb, probabilities, rows, classes, 1, log: false);
        k.OneHot(lb, rows, classes, oneHot);
        k.Binary(BinaryOp.Sub, probabilities, full, oneHot, full, probabilities, full);

        using var loss = DeviceData.Filled(k, rows, float.NaN);
        using var separateGradient = DeviceData.Filled(k, n, float.NaN);
        DeviceBuffer<float> gradient = inPlace ? xb : separateGradient;
        ((ISoftmaxCrossEntropyKernels)k).SoftmaxCrossEntropy(xb, lb, rows, classes, loss, gradient);

        string what = $"SoftmaxCrossEntropy {rows}x{classes} |x|<={magnitude}{(inPlace ? " in place" : "")}{(gpuShapes ? " with GPU shapes" : "")}";
        KernelAssert.Bitwise(separateLoss.ToArray(), loss.ToArray(), what + ": loss");
        KernelAssert.Bitwise(probabilities.ToArray(), gradient.ToArray(), what + ": gradient");
    }

    /// <summary>Bad extents and an aliased loss throw an ArgumentException naming the op; neither output is touched.</summary>
    [Fact]
    public void Bad_input_throws_before_writing()
    {
        var k = Set(false);
        var fused = (ISoftmaxCrossEntropyKernels)k;
        const int rows = 3, classes = 4;
        using var xb = DeviceData.Upload(k, Inputs.Uniform(new Random(3), rows * classes, -1, 1));
        using var loss = DeviceData.Filled(k, rows, 7f);
        using var gradient = DeviceData.Filled(k, rows * classes, 7f);
        using var labels = DeviceData.Upload(k, [0, 3, 1]);
        using var shortLabels = DeviceData.Upload(k, [0, 1]);
        using var shortGradient = DeviceData.Filled(k, rows * classes - 1, 7f);

        void Throws(Action call, string because)
        {
            var e = Record.Exception(call);
            Assert.True(e is ArgumentException, $"{because}: expected an ArgumentException, got {e?.GetType().Name ?? "none"}");
            Assert.Contains("SoftmaxCrossEntropy", e!.Message);
            Assert.All(loss.ToArray(), v => Assert.Equal(7f, v));
            Assert.All(gradient.ToArray(), v => Assert.Equal(7f, v));
            Assert.All(shortGradient.ToArray(), v => Assert.Equal(7f, v));
        }

        Throws(() => fused.SoftmaxCrossEntropy(xb, shortLabels, rows, classes, loss, gradient), "fewer labels than rows");
        Throws(() => fused.SoftmaxCrossEntropy(xb, labels, rows, classes, loss, shortGradient), "a gradient shorter than the logits");
        Throws(() => fused.SoftmaxCrossEntropy(xb, labels, rows, classes, gradient, gradient), "the loss in the gradient's buffer");
        Throws(() => fused.SoftmaxCrossEntropy(xb, labels, -1, classes, loss, gradient), "a negative row count");
        Throws(() => fused.SoftmaxCrossEntropy(xb, labels, rows, 0, loss, gradient), "rows with no classes");
    }
}
