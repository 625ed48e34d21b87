using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// A kernel set that exposes only the core contract of another one: it forwards every <see cref="IKernelSet"/> call
/// and implements no capability, so <see cref="KernelCapabilities"/> hands out the composite fallbacks. Installed on a
/// device with <see cref="Device.UseKernels"/>, it makes every op of a test take its fallback; it also records the
/// calls it forwards.
/// </summary>
public sealed class CoreOnlyKernelSet(IKernelSet inner, bool record = true) : IKernelSet
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IKernelSet, CoreOnlyKernelSet> Shared = new();
    private readonly List<string> calls = [];

    /// <summary>
    /// One non-recording core-only set per kernel set, so that the composites it hands out (and their cached DFT
    /// matrices) are made once per test run.
    /// </summary>
    public static CoreOnlyKernelSet Of(IKernelSet inner) => Shared.GetValue(inner, k => new CoreOnlyKernelSet(k, record: false));

    /// <summary>The kernel set the calls go to.</summary>
    public IKernelSet Inner { get; } = inner;

    /// <summary>The core calls forwarded so far, by method name (allocations and synchronisation excluded; empty when not recording).</summary>
    public IReadOnlyList<string> Calls
    {
        get { lock (calls) return calls.ToList(); }
    }

    private IKernelSet Next([System.Runtime.CompilerServices.CallerMemberName] string op = "")
    {
        if (record)
            lock (calls) calls.Add(op);
        return Inner;
    }

    /// <inheritdoc />
    public string Name => Inner.Name + "+core-only";

    /// <inheritdoc />
    public DeviceBuffer<float> Allocate(long length) => Inner.Allocate(length);

    /// <inheritdoc />
    public DeviceBuffer<int> AllocateInt(long length) => Inner.AllocateInt(length);

    /// <inheritdoc />
    public void Synchronize() => Inner.Synchronize();

    /// <inheritdoc />
    public void Fill(DeviceBuffer<float> dst, float value) => Next().Fill(dst, value);

    /// <inheritdoc />
    public void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count) =>
        Next().Copy(src, srcOffset, dst, dstOffset, count);

    /// <inheritdoc />
    public void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high) => Next().RandomUniform(dst, seed, low, high);

    /// <inheritdoc />
    public void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std) => Next().RandomNormal(dst, seed, mean, std);

    /// <inheritdoc />
    public void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) => Next().Unary(op, x, y);

    /// <inheritdoc />
    public void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift) => Next().Affine(x, y, scale, shift);

    /// <inheritdoc />
    public void Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape) =>
        Next().Binary(op, a, aShape, b, bShape, y, yShape);

    /// <inheritdoc />
    public void BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape) => Next().BroadcastTo(x, xShape, y, yShape);

    /// <inheritdoc />
    public void Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y) => Next().Reduce(op, x, xShape, axes, y);

    /// <inheritdoc />
    public void Gemm(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c) => Next().Gemm(size, a, b, c);

    /// <inheritdoc />
    public void Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y) => Next().Permute(x, xShape, perm, y);

    /// <inheritdoc />
    public void IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y) =>
        Next().IndexSelect(x, xShape, axis, index, indexLength, y);

    /// <inheritdoc />
    public void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape) =>
        Next().IndexAdd(src, srcShape, axis, index, y, yShape);

    /// <inheritdoc />
    public void Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log) =>
        Next().Softmax(x, y, outer, axisLength, inner, log);

    /// <inheritdoc />
    public void CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss) =>
        Next().CrossEntropy(logits, labels, rows, classes, loss);

    /// <inheritdoc />
    public void OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y) => Next().OneHot(labels, rows, classes, y);

    /// <inheritdoc />
    public void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y) => Next().Axpy(alpha, x, y);
}
