namespace Engine.Kernels.Composite;

/// <summary>
/// <see cref="ILossKernels"/> in core operations: a one-hot of the labels, a softmax, their difference, and a
/// broadcast product with dLoss · scale (five launches where the fused kernel needs one).
/// </summary>
internal sealed class CompositeLossKernels(IKernelSet k) : ILossKernels
{
    /// <inheritdoc />
    public void CrossEntropyBackward(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> dLoss,
        float scale, DeviceBuffer<float> dLogits)
    {
        if (rows < 0 || classes < 0)
            throw new ArgumentException($"CrossEntropyBackward: negative extent [{rows}, {classes}].");
        ArgumentNullException.ThrowIfNull(dLoss);
        if (dLoss.Length < 1) throw new ArgumentException("CrossEntropyBackward: dLoss holds no element; it must hold the loss's gradient.");
        int[] full = [rows, classes];
        using var onehot = k.Allocate((long)rows * classes);
        k.OneHot(labels, rows, classes, onehot);
        k.Softmax(logits, dLogits, rows, classes, 1, log: false);
        k.Binary(BinaryOp.Sub, dLogits, full, onehot, full, dLogits, full);
        using var factor = k.Allocate(1);
        k.Affine(dLoss, factor, scale, 0f);
        k.Binary(BinaryOp.Mul, dLogits, full, factor, [], dLogits, full);
    }
}
