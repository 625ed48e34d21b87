namespace Engine.Kernels;

/// <summary>
/// Softmax cross-entropy's loss and its gradient in one pass over the logits, a capability a kernel set may implement
/// (the CPU and ILGPU sets do). Eager steps never call it: the loss runs <see cref="IKernelSet.CrossEntropy"/> in the forward
/// pass and its gradient (<see cref="ILossKernels.CrossEntropyBackward"/>, or its composite of one-hot, softmax and a
/// difference) in the backward pass. The compiler replaces that loss and the composite's first three calls with this
/// one call when their results are bit-for-bit the ones this call writes.
/// </summary>
public interface ISoftmaxCrossEntropyKernels
{
    /// <summary>
    /// For logits [rows, classes] and labels in [0, classes) (the CPU set checks them; a device set relies on the range
    /// check the op layer makes, as its cross-entropy and one-hot do): loss[r] exactly as
    /// <see cref="IKernelSet.CrossEntropy"/> writes it, and gradient[r, c] = softmax(logits[r])[c] - [c == labels[r]]
    /// exactly as <see cref="IKernelSet.Softmax"/> (over the last axis, not in log space), <see cref="IKernelSet.OneHot"/>
    /// and a <see cref="BinaryOp.Sub"/> of the two write it. <paramref name="gradient"/> may be
    /// <paramref name="logits"/> itself; <paramref name="loss"/> must not overlap either.
    /// </summary>
    void SoftmaxCrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, [Writes] DeviceBuffer<float> loss,
        [Writes] DeviceBuffer<float> gradient);
}
