namespace Engine.Kernels;

/// <summary>
/// Fused loss gradients, a capability a kernel set may implement (the ILGPU set does, as one launch). Without it,
/// <see cref="KernelCapabilities.LossKernels"/> hands out a composite of core one-hot, softmax and broadcast passes
/// (what the CPU set uses: its SIMD passes are cheaper there than one scalar row loop).
/// </summary>
public interface ILossKernels
{
    /// <summary>
    /// Gradient of cross-entropy with respect to the logits [rows, classes], labels in [0, classes) (checked by the
    /// caller): dLogits[r, c] = (softmax(logits[r])[c] - [c == labels[r]]) · (dLoss[0] · scale), the softmax stable
    /// (maximum subtracted). <paramref name="dLoss"/> is the loss's own gradient, read on the device (one element),
    /// and <paramref name="scale"/> folds in the mean over rows (1 / rows). Overwrites dLogits.
    /// </summary>
    void CrossEntropyBackward(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> dLoss,
        float scale, DeviceBuffer<float> dLogits);
}
