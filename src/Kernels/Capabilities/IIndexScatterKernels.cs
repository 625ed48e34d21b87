namespace Engine.Kernels;

/// <summary>
/// An index-add into zeros in one launch, a capability a kernel set may implement (the CPU and ILGPU sets do). Eager
/// steps never call it: the compiler replaces a <see cref="IKernelSet.Fill"/> with zero directly followed by an
/// <see cref="IKernelSet.IndexAdd"/> into the whole filled buffer (every index-add op of the autodiff layer starts so)
/// with one call.
/// </summary>
public interface IIndexScatterKernels
{
    /// <summary>
    /// y = 0 over <paramref name="yShape"/>, then y[..., index[j], ...] += src[..., j, ...]: the arguments, checks and
    /// bits of <see cref="IKernelSet.Fill"/>(y, 0) followed by <see cref="IKernelSet.IndexAdd"/>, with y zeroed where
    /// no index points as well. Nothing is written when a check fails.
    /// </summary>
    void IndexScatter(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, [Writes] DeviceBuffer<float> y, int[] yShape);
}
