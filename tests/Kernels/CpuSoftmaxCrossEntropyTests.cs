using Engine.Kernels;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// The CPU set's <see cref="ISoftmaxCrossEntropyKernels"/>: its loss and gradient carry the bits of the calls it stands
/// in for (cross-entropy, and softmax, one-hot and their difference), at every SIMD width, and lie within the reference
/// tolerance of the double-precision host reference; bad input throws before anything is written. In the
/// "simd-width" collection: the widths are forced process-wide.
/// </summary>
[Collection("simd-width")]
public sealed class CpuSoftmaxCrossEntropyTests
{
    private static IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    private static ISoftmaxCrossEntropyKernels Fused => (ISoftmaxCrossEntropyKernels)K;

    /// <summary>
    /// (rows, classes, logit magnitude, gradient in place over the logits, lanes of the forced width): awkward extents,
    /// enough rows for the threaded path, every width.
    /// </summary>
    public static IEnumerable<object[]> Cases()
    {
        (int Rows, int Classes, float Magnitude)[] shapes =
        [
            (1, 1, 3f), (1, 2, 3f), (7, 5, 3f), (13, 33, 3f), (3, 40, 20f), (5, 7, 1e4f), (256, 10, 5f), (17, 16, 3f),
            (4096, 10, 3f), (61, 1031, 3f), (3, 10007, 5f),
        ];
        foreach (var width in new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128, SimdWidth.Scalar })
            foreach (var (rows, classes, magnitude) in shapes)
                foreach (bool inPlace in new[] { false, true })
                    yield return [rows, classes, magnitude, inPlace, (int)width];
    }

    /// <summary>Loss rows and gradient bit for bit as the four separate calls write them, and close to the host reference.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void Matches_the_separate_calls_bit_for_bit(int rows, int classes, float magnitude, bool inPlace, int lanes)
    {
        var width = (SimdWidth)lanes;
        using var forced = Simd.Force(width);
        var rng = new Random(rows * 7919 + classes);
        long n = (long)rows * classes;
        var logits = Inputs.Uniform(rng, n, -magnitude, magnitude);
        var labels = Enumerable.Range(0, rows).Select(_ => rng.Next(classes)).ToArray();

        using var xb = DeviceData.Upload(K, logits);
        using var lb = DeviceData.Upload(K, labels);
        var (separateLoss, probabilities) = SeparateLossCalls.Run(K, xb, lb, rows, classes);

        using var loss = DeviceData.Filled(K, rows, float.NaN);
        using var separateGradient = DeviceData.Filled(K, n, float.NaN);
        DeviceBuffer<float> gradient = inPlace ? xb : separateGradient;
        Fused.SoftmaxCrossEntropy(xb, lb, rows, classes, loss, gradient);

        string what = $"SoftmaxCrossEntropy {rows}x{classes} |x|<={magnitude}{(inPlace ? " in place" : "")} at {width}";
        KernelAssert.Bitwise(separateLoss, loss.ToArray(), what + ": loss");
        var got = gradient.ToArray();
        KernelAssert.Bitwise(probabilities, got, what + ": gradient");

        var p = HostReference.Softmax(logits, rows, classes, 1, log: false);
        var expected = new double[n];
        for (long i = 0; i < n; i++) expected[i] = p[i] - (i % classes == labels[i / classes] ? 1 : 0);
        KernelAssert.Close(expected, got, i =>
        {
            long r = i / classes;
            double rowMax = 0;
            for (long c = 0; c < classes; c++) rowMax = Math.Max(rowMax, Math.Abs(logits[r * classes + c]));
            return Tolerance.Transcendental.Abs + p[i] * (2 * Tolerance.Transcendental.Rel + 2 * Tolerance.ShiftUlps * rowMax) + 1e-6 * Math.Abs(expected[i]);
        }, what + ": gradient against the reference");
    }

    /// <summary>Every bad input throws an ArgumentException naming the op, and neither output is touched.</summary>
    [Fact]
    public void Bad_input_throws_before_writing() => SeparateLossCalls.BadInputThrowsBeforeWriting(K, checksLabels: true);
}

/// <summary>The four calls a set's <see cref="ISoftmaxCrossEntropyKernels.SoftmaxCrossEntropy"/> stands in for.</summary>
internal static class SeparateLossCalls
{
    /// <summary>
    /// The loss rows of <see cref="IKernelSet.CrossEntropy"/>, and softmax minus one-hot as <see cref="IKernelSet.Softmax"/>,
    /// <see cref="IKernelSet.OneHot"/> and a <see cref="BinaryOp.Sub"/> write it, read back to the host.
    /// </summary>
    public static (float[] Loss, float[] Gradient) Run(IKernelSet k, DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes)
    {
        long n = (long)rows * classes;
        int[] full = [rows, classes];
        using var loss = DeviceData.Filled(k, rows, float.NaN);
        using var probabilities = DeviceData.Filled(k, n, float.NaN);
        using var oneHot = DeviceData.Filled(k, n, float.NaN);
        k.CrossEntropy(logits, labels, rows, classes, loss);
        k.Softmax(logits, probabilities, rows, classes, 1, log: false);
        k.OneHot(labels, rows, classes, oneHot);
        k.Binary(BinaryOp.Sub, probabilities, full, oneHot, full, probabilities, full);
        return (loss.ToArray(), probabilities.ToArray());
    }

    /// <summary>
    /// Bad extents, short buffers, an aliased loss and (where the set reads them, <paramref name="checksLabels"/>)
    /// labels out of range each throw an ArgumentException naming the op, with neither output touched.
    /// </summary>
    public static void BadInputThrowsBeforeWriting(IKernelSet k, bool checksLabels)
    {
        var fused = (ISoftmaxCrossEntropyKernels)k;
        const int rows = 3, classes = 4;
        using var xb = DeviceData.Upload(k, Inputs.Uniform(new Random(3), rows * classes, -1, 1));
        using var loss = DeviceData.Filled(k, rows, 7f);
        using var gradient = DeviceData.Filled(k, rows * classes, 7f);
        using var goodLabels = DeviceData.Upload(k, [0, 3, 1]);
        using var labelTooLarge = DeviceData.Upload(k, [0, 4, 1]);
        using var labelNegative = DeviceData.Upload(k, [0, -1, 1]);
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

        if (checksLabels)
        {
            Throws(() => fused.SoftmaxCrossEntropy(xb, labelTooLarge, rows, classes, loss, gradient), "a label equal to the class count");
            Throws(() => fused.SoftmaxCrossEntropy(xb, labelNegative, rows, classes, loss, gradient), "a negative label");
        }
        Throws(() => fused.SoftmaxCrossEntropy(xb, shortLabels, rows, classes, loss, gradient), "fewer labels than rows");
        Throws(() => fused.SoftmaxCrossEntropy(xb, goodLabels, rows, classes, loss, shortGradient), "a gradient shorter than the logits");
        Throws(() => fused.SoftmaxCrossEntropy(xb, goodLabels, rows, classes, gradient, gradient), "the loss in the gradient's buffer");
        Throws(() => fused.SoftmaxCrossEntropy(xb, goodLabels, -1, classes, loss, gradient), "a negative row count");
        Throws(() => fused.SoftmaxCrossEntropy(xb, goodLabels, rows, 0, loss, gradient), "rows with no classes");
    }
}
