namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <inheritdoc />
    public void Fill(DeviceBuffer<float> dst, float value) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count) => throw new NotImplementedException();
    /// <inheritdoc />
    public void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high) => throw new NotImplementedException();
    /// <inheritdoc />
    public void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape) => throw new NotImplementedException();
    /// <inheritdoc />
    public void BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y) => throw new NotImplementedException();
    /// <inheritdoc />
    public void IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y) => throw new NotImplementedException();
    /// <inheritdoc />
    public void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log) => throw new NotImplementedException();
    /// <inheritdoc />
    public void CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss) => throw new NotImplementedException();
    /// <inheritdoc />
    public void OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y) => throw new NotImplementedException();
    /// <inheritdoc />
    public void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y) => throw new NotImplementedException();
    /// <inheritdoc />
    public void SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep) => throw new NotImplementedException();
    /// <inheritdoc />
    public void AdamStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> m, DeviceBuffer<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled, int step) => throw new NotImplementedException();
}
