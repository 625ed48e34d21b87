namespace Engine.Kernels;

/// <summary>One softmax of a <see cref="ISoftmaxBatchKernels.Softmaxes"/> call: the arguments of <see cref="IKernelSet.Softmax"/>.</summary>
/// <param name="X">The input, [outer, axisLength, inner] (at least that many elements).</param>
/// <param name="Y">The result, of x's shape; may be x.</param>
/// <param name="Outer">Extent before the softmax axis.</param>
/// <param name="AxisLength">Extent of the softmax axis.</param>
/// <param name="Inner">Extent after it.</param>
/// <param name="Log">True for the log-softmax.</param>
public readonly record struct SoftmaxCall(DeviceBuffer<float> X, DeviceBuffer<float> Y, int Outer, int AxisLength, int Inner, bool Log);

/// <summary>
/// Independent softmaxes in one launch (a horizontal fusion), a capability a kernel set may implement (the CPU and
/// ILGPU sets do). Eager steps never call it: the compiler replaces softmaxes that nothing orders apart (the
/// log-normalisations of an SPN's weights and of its leaf table) with one call.
/// </summary>
public interface ISoftmaxBatchKernels
{
    /// <summary>
    /// Every call of <paramref name="calls"/>, each y with the bits <see cref="IKernelSet.Softmax"/> writes for that call
    /// alone on the same set. A call's y may be its own x, and no other call's x or y. Every call is checked before any
    /// runs (<see cref="SoftmaxBatch.Check"/>).
    /// </summary>
    void Softmaxes(IReadOnlyList<SoftmaxCall> calls);
}

/// <summary>The checks of a <see cref="ISoftmaxBatchKernels.Softmaxes"/> call.</summary>
public static class SoftmaxBatch
{
    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming the method, the call and the values unless there is at least one
    /// call and every call has live buffers, non-negative extents, x and y holding [outer, axisLength, inner], and a y
    /// that is no other call's x or y.
    /// </summary>
    /// <param name="calls">The calls.</param>
    public static void Check(IReadOnlyList<SoftmaxCall> calls)
    {
        const string op = nameof(ISoftmaxBatchKernels.Softmaxes);
        ArgumentNullException.ThrowIfNull(calls);
        if (calls.Count == 0) throw new ArgumentException($"{op}: no calls.", nameof(calls));
        for (int i = 0; i < calls.Count; i++)
        {
            var c = calls[i];
            if (c.X == null || c.Y == null) throw new ArgumentNullException(nameof(calls), $"{op}: call {i} has no {(c.X == null ? "x" : "y")}.");
            c.X.ThrowIfDisposed(op);
            c.Y.ThrowIfDisposed(op);
            if (c.Outer < 0 || c.AxisLength < 0 || c.Inner < 0)
                throw new ArgumentException($"{op}: call {i} has a negative extent in [{c.Outer}, {c.AxisLength}, {c.Inner}].", nameof(calls));
            long n = (long)c.Outer * c.AxisLength * c.Inner;
            if (c.X.Length < n || c.Y.Length < n)
                throw new ArgumentException(
                    $"{op}: call {i} over [{c.Outer}, {c.AxisLength}, {c.Inner}] needs {n} elements; x holds {c.X.Length}, y {c.Y.Length}.", nameof(calls));
            for (int j = 0; j < calls.Count; j++)
                if (j != i && (ReferenceEquals(c.Y, calls[j].X) || ReferenceEquals(c.Y, calls[j].Y)))
                    throw new ArgumentException($"{op}: call {i}'s y is call {j}'s {(ReferenceEquals(c.Y, calls[j].X) ? "x" : "y")}; the calls must be independent.",
                        nameof(calls));
        }
    }
}
