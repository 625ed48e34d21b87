using Engine.Kernels;

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
    private static IKernelSet Set(bool gpuShapes) => gpuShapes ? IlgpuGpuShapeTests.GpuShapes.Value : Device.Get(DeviceKind.IlgpuCpu).Kernels;

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

        using var xb = DeviceData.Upload(k, logits);
        using var lb = DeviceData.Upload(k, labels);
        var (separateLoss, probabilities) = SeparateLossCalls.Run(k, xb, lb, rows, classes);

        using var loss = DeviceData.Filled(k, rows, float.NaN);
        using var separateGradient = DeviceData.Filled(k, n, float.NaN);
        DeviceBuffer<float> gradient = inPlace ? xb : separateGradient;
        ((ISoftmaxCrossEntropyKernels)k).SoftmaxCrossEntropy(xb, lb, rows, classes, loss, gradient);

        string what = $"SoftmaxCrossEntropy {rows}x{classes} |x|<={magnitude}{(inPlace ? " in place" : "")}{(gpuShapes ? " with GPU shapes" : "")}";
        KernelAssert.Bitwise(separateLoss, loss.ToArray(), what + ": loss");
        KernelAssert.Bitwise(probabilities, gradient.ToArray(), what + ": gradient");
    }

    /// <summary>
    /// Bad extents, short buffers and an aliased loss throw an ArgumentException naming the op, with neither output
    /// touched (labels are the op layer's to range-check on a device set).
    /// </summary>
    [Fact]
    public void Bad_input_throws_before_writing() => SeparateLossCalls.BadInputThrowsBeforeWriting(Set(false), checksLabels: false);
}
