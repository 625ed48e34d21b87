namespace Engine.Kernels;

/// <summary>
/// The core of raw operations every device runs: buffers and shapes in, buffers out, nothing about graphs. Two
/// implementations exist: <c>CpuKernelSet</c> (hand-written SIMD, split over cores) and <c>IlgpuKernelSet</c> (ILGPU
/// kernels for CUDA, OpenCL and ILGPU's CPU emulator).
/// </summary>
/// <remarks>
/// Conventions shared by every method:
/// <list type="bullet">
/// <item>All data is float32, contiguous and row-major; a shape is an <c>int[]</c> (a scalar has shape <c>[]</c>).</item>
/// <item>Outputs are overwritten unless the method says it accumulates (<see cref="IndexAdd"/>, <see cref="Axpy"/>, <see cref="Gemm"/> with beta).</item>
/// <item>No method takes more than eight parameters; operands with many properties come as descriptors
/// (<see cref="GemmOperand"/>, <see cref="GemmOutput"/>).</item>
/// <item>Callers (the autodiff layer) validate shapes and values before calling; kernels only assert what is cheap.</item>
/// <item>Every buffer passed belongs to the device this kernel set serves.</item>
/// </list>
/// Larger fused kernels are capabilities a kernel set may implement besides this core: <see cref="IFftKernels"/>,
/// <see cref="ISpnKernels"/>, <see cref="IOptimizerKernels"/>, <see cref="ILayerNormKernels"/>. Callers reach them
/// through <see cref="KernelCapabilities"/>, which hands out a composite fallback written in these core operations
/// when a set lacks one, so a new kernel set only has to implement this interface. Softmax, cross-entropy and
/// one-hot stay in the core: every loss needs them, they are single-pass row kernels any backend writes in a few
/// lines, and their composite forms (max, subtract, exp, sum, log as five passes with temporaries) would cost the
/// eager engine several passes on every classification step.
/// </remarks>
public interface IKernelSet
{
    /// <summary>A short name: "cpu-simd" or "ilgpu-&lt;accelerator&gt;".</summary>
    string Name { get; }

    /// <summary>Allocates an uninitialised float buffer.</summary>
    DeviceBuffer<float> Allocate(long length);

    /// <summary>Allocates an uninitialised int buffer (indices, labels).</summary>
    DeviceBuffer<int> AllocateInt(long length);

    /// <summary>Waits until all queued work on the device has finished.</summary>
    void Synchronize();

    /// <summary>dst[i] = value.</summary>
    void Fill(DeviceBuffer<float> dst, float value);

    /// <summary>dst[dstOffset + i] = src[srcOffset + i] for i &lt; count.</summary>
    void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count);

    /// <summary>dst[i] = <see cref="CounterRng.Uniform"/>(seed, i, low, high): bitwise identical on every kernel set.</summary>
    void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high);

    /// <summary>dst[i] = <see cref="CounterRng.Normal(ulong, ulong, float, float)"/>(seed, i, mean, std): bitwise identical on every kernel set.</summary>
    void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std);

    /// <summary>y[i] = op(x[i]) for i &lt; x.Length (y may be x).</summary>
    void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y);

    /// <summary>y[i] = scale * x[i] + shift (y may be x).</summary>
    void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift);

    /// <summary>
    /// y = op(a, b) with NumPy broadcasting. <paramref name="yShape"/> is the broadcast shape of
    /// <paramref name="aShape"/> and <paramref name="bShape"/> (the caller computes and checks it);
    /// shapes of lower rank are aligned to the right.
    /// </summary>
    void Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape);

    /// <summary>y = x broadcast to <paramref name="yShape"/> (NumPy rules, right-aligned).</summary>
    void BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape);

    /// <summary>
    /// Reduces <paramref name="x"/> over <paramref name="axes"/> (sorted, distinct, in range). The output's layout is
    /// <paramref name="xShape"/> with those axes removed (keepdims only changes the shape, not the data).
    /// Sums accumulate in double precision on the CPU set and in float with pairwise/tree order on ILGPU.
    /// </summary>
    void Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y);

    /// <summary>
    /// Batched GEMM, row-major: for each p &lt; size.Batch, C_p = alpha · op(A_p) op(B_p) + beta · C_p with op(A_p)
    /// M x K, op(B_p) K x N and C_p M x N; each operand's descriptor gives its buffer, offset, batch stride,
    /// transposition and optional index map (a gather on A or B, a scatter on C, folded into the loads and stores),
    /// and <see cref="GemmOutput"/> holds alpha, beta and room for an epilogue. With beta 0, C is not read.
    /// </summary>
    /// <exception cref="ArgumentException">A negative extent, offset or stride, a buffer too short for its batch, or a
    /// map whose length does not divide its matrix or whose entries leave [0, bound) (see
    /// <see cref="GemmOperand.IndexBound"/>), or mapped reads past the end of their buffer.</exception>
    /// <exception cref="NotSupportedException">A prologue or epilogue other than the identity.</exception>
    void Gemm(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c);

    /// <summary>y = x with axes permuted: y.shape[i] = xShape[perm[i]].</summary>
    void Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y);

    /// <summary>
    /// Index select along <paramref name="axis"/>: y[..., j, ...] = x[..., index[j], ...] for j &lt; indexLength;
    /// y has xShape with xShape[axis] replaced by indexLength. Indices are validated by the caller.
    /// </summary>
    void IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y);

    /// <summary>
    /// Scatter-add along <paramref name="axis"/>, the adjoint of <see cref="IndexSelect"/>:
    /// y[..., index[j], ...] += src[..., j, ...]. <paramref name="srcShape"/> has index length at <paramref name="axis"/>;
    /// y has <paramref name="yShape"/>. Accumulates into y (repeated indices add up).
    /// </summary>
    void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape);

    /// <summary>
    /// Softmax (or log-softmax when <paramref name="log"/>) along the middle axis of x viewed as
    /// [outer, axisLength, inner]; numerically stable (max subtracted).
    /// </summary>
    void Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log);

    /// <summary>
    /// Fused, stable cross-entropy per row: loss[r] = logsumexp(logits[r, :]) - logits[r, labels[r]],
    /// logits [rows, classes]. Labels are validated by the caller.
    /// </summary>
    void CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss);

    /// <summary>y[r, c] = 1 if labels[r] == c else 0, y [rows, classes].</summary>
    void OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y);

    /// <summary>y[i] += alpha * x[i].</summary>
    void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y);
}
