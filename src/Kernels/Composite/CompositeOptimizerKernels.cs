namespace Engine.Kernels.Composite;

/// <summary>
/// <see cref="IOptimizerKernels"/> written in core operations, for kernel sets without fused optimizer kernels: each
/// step is a chain of elementwise passes over temporaries, and device scalars enter as shape-[] broadcast operands
/// (their float value, hi). Results match the fused kernels within float rounding (a few ulps: the passes round
/// where the fused kernels use one fused multiply-add); the squared norm is a float reduction per buffer (the CPU
/// set accumulates each in double), and the step count is kept exactly up to 2^24.
/// </summary>
internal sealed class CompositeOptimizerKernels(IKernelSet k) : IOptimizerKernels
{
    private static readonly int[] Scalar = [];

    /// <inheritdoc />
    public void SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity, in SgdHyper hyper,
        DeviceScalar learningRate, bool firstStep)
    {
        const string op = "SgdStep";
        int n = Length(param, op);
        Need(grad, n, op, nameof(grad));
        ArgumentNullException.ThrowIfNull(learningRate);
        bool momentum = hyper.Momentum != 0f;
        if (momentum)
        {
            if (velocity == null) throw new ArgumentNullException(nameof(velocity), $"{op}: momentum {hyper.Momentum} needs a velocity buffer.");
            Need(velocity, n, op, nameof(velocity));
        }
        if (n == 0) return;
        int[] shape = [n];
        using var g = k.Allocate(n);
        k.Copy(grad, 0, g, 0, n);
        if (hyper.WeightDecay != 0f) k.Axpy(hyper.WeightDecay, param, g);
        if (momentum)
        {
            if (firstStep) k.Copy(g, 0, velocity!, 0, n);
            else
            {
                k.Affine(velocity!, velocity!, hyper.Momentum, 0f);
                k.Axpy(1f - hyper.Dampening, g, velocity!);
            }
            if (hyper.Nesterov) k.Axpy(hyper.Momentum, velocity!, g);
            else k.Copy(velocity!, 0, g, 0, n);
        }
        k.Binary(BinaryOp.Mul, g, shape, learningRate.Buffer, Scalar, g, shape);
        k.Binary(BinaryOp.Sub, param, shape, g, shape, param, shape);
    }

    /// <inheritdoc />
    public void AdamStep(in AdamBuffers buffers, in AdamHyper hyper, DeviceScalar learningRate, DeviceScalar step)
    {
        const string op = "AdamStep";
        var (param, grad, m, v) = buffers;
        int n = Length(param, op);
        Need(grad, n, op, "grad");
        Need(m, n, op, "m");
        Need(v, n, op, "v");
        ArgumentNullException.ThrowIfNull(learningRate);
        ArgumentNullException.ThrowIfNull(step);
        // t += 1 on the device (in hi, exact up to 2^24), then the bias corrections 1 - β^t.
        using var t = k.Allocate(1);
        k.Copy(step.Buffer, 0, t, 0, 1);
        k.Affine(t, t, 1f, 1f);
        k.Copy(t, 0, step.Buffer, 0, 1);
        if (n == 0) return;
        using var bc1 = BiasCorrection(hyper.Beta1, t);
        using var bc2 = BiasCorrection(hyper.Beta2, t);
        int[] shape = [n];
        using var g = k.Allocate(n);
        k.Copy(grad, 0, g, 0, n);
        if (hyper.WeightDecay != 0f)
        {
            if (hyper.Decoupled)
            {
                using var shrink = k.Allocate(1);
                k.Copy(learningRate.Buffer, 0, shrink, 0, 1);
                k.Affine(shrink, shrink, -hyper.WeightDecay, 1f);
                k.Binary(BinaryOp.Mul, param, shape, shrink, Scalar, param, shape);
            }
            else k.Axpy(hyper.WeightDecay, param, g);
        }
        k.Affine(m, m, hyper.Beta1, 0f);
        k.Axpy(1f - hyper.Beta1, g, m);
        using var tmp = k.Allocate(n);
        k.Unary(UnaryOp.Square, g, tmp);
        k.Affine(v, v, hyper.Beta2, 0f);
        k.Axpy(1f - hyper.Beta2, tmp, v);
        // p -= lr · (m / bc1) / (sqrt(v / bc2) + eps)
        k.Binary(BinaryOp.Div, v, shape, bc2, Scalar, tmp, shape);
        k.Unary(UnaryOp.Sqrt, tmp, tmp);
        k.Affine(tmp, tmp, 1f, hyper.Eps);
        k.Binary(BinaryOp.Div, m, shape, bc1, Scalar, g, shape);
        k.Binary(BinaryOp.Div, g, shape, tmp, shape, g, shape);
        k.Binary(BinaryOp.Mul, g, shape, learningRate.Buffer, Scalar, g, shape);
        k.Binary(BinaryOp.Sub, param, shape, g, shape, param, shape);
    }

    /// <summary>1 - β^t as a one-element buffer.</summary>
    private DeviceBuffer<float> BiasCorrection(float beta, DeviceBuffer<float> t)
    {
        var b = k.Allocate(1);
        k.Fill(b, beta);
        k.Binary(BinaryOp.Pow, b, Scalar, t, Scalar, b, Scalar);
        k.Affine(b, b, -1f, 1f);
        return b;
    }

    /// <inheritdoc />
    public void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, DeviceScalar scale, bool squareParam)
    {
        const string op = "Perturb";
        int n = Length(param, op);
        Need(grad, n, op, nameof(grad));
        Need(backup, n, op, nameof(backup));
        ArgumentNullException.ThrowIfNull(scale);
        if (ReferenceEquals(param, backup)) throw new ArgumentException($"{op}: the backup buffer must differ from the parameter buffer.", nameof(backup));
        if (n == 0) return;
        int[] shape = [n];
        k.Copy(param, 0, backup, 0, n);
        using var step = k.Allocate(n);
        k.Binary(BinaryOp.Mul, grad, shape, scale.Buffer, Scalar, step, shape);
        if (squareParam)
        {
            k.Binary(BinaryOp.Mul, step, shape, backup, shape, step, shape);
            k.Binary(BinaryOp.Mul, step, shape, backup, shape, step, shape);
        }
        k.Binary(BinaryOp.Add, param, shape, step, shape, param, shape);
    }

    /// <inheritdoc />
    public void Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param)
    {
        const string op = "Restore";
        int n = Length(param, op);
        Need(backup, n, op, nameof(backup));
        if (n == 0 || ReferenceEquals(backup, param)) return;
        k.Copy(backup, 0, param, 0, n);
    }

    /// <inheritdoc />
    public void CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b)
    {
        const string op = "CombineGradients";
        int n = Length(grad, op);
        Need(grad2, n, op, nameof(grad2));
        if (n == 0) return;
        if (ReferenceEquals(grad, grad2))
        {
            k.Affine(grad, grad, a + b, 0f);
            return;
        }
        k.Affine(grad, grad, a, 0f);
        k.Axpy(b, grad2, grad);
    }

    /// <inheritdoc />
    public void SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights, DeviceScalar result)
    {
        const string op = "SumOfSquares";
        ArgumentNullException.ThrowIfNull(buffers);
        ArgumentNullException.ThrowIfNull(result);
        if (weights != null && weights.Count != buffers.Count)
            throw new ArgumentException($"{op}: {weights.Count} weight entries for {buffers.Count} buffers.", nameof(weights));
        for (int i = 0; i < buffers.Count; i++)
        {
            int n = Length(buffers[i], op);
            if (weights?[i] is { } w) Need(w, n, op, nameof(weights));
        }
        using var total = k.Allocate(1);
        using var part = k.Allocate(1);
        k.Fill(total, 0f);
        for (int i = 0; i < buffers.Count; i++)
        {
            var x = buffers[i];
            int n = (int)x.Length;
            if (n == 0) continue;
            int[] shape = [n];
            using var sq = k.Allocate(n);
            if (weights?[i] is { } w) k.Binary(BinaryOp.Mul, w, shape, x, shape, sq, shape);
            else k.Copy(x, 0, sq, 0, n);
            k.Unary(UnaryOp.Square, sq, sq);
            k.Reduce(ReduceOp.Sum, sq, shape, [0], part);
            k.Binary(BinaryOp.Add, total, Scalar, part, Scalar, total, Scalar);
        }
        k.Fill(result.Buffer, 0f);
        k.Copy(total, 0, result.Buffer, 0, 1);
    }

    /// <inheritdoc />
    public void PerturbationScale(DeviceScalar sumOfSquares, float radius, DeviceScalar scale)
    {
        ArgumentNullException.ThrowIfNull(sumOfSquares);
        ArgumentNullException.ThrowIfNull(scale);
        using var norm = k.Allocate(1);
        k.Reduce(ReduceOp.Sum, sumOfSquares.Buffer, [2], [0], norm);
        k.Unary(UnaryOp.Sqrt, norm, norm);
        k.Affine(norm, norm, 1f, 1e-12f);
        using var r = k.Allocate(1);
        k.Fill(r, radius);
        k.Binary(BinaryOp.Div, r, Scalar, norm, Scalar, r, Scalar);
        k.Fill(scale.Buffer, 0f);
        k.Copy(r, 0, scale.Buffer, 0, 1);
    }

    /// <summary>The buffer's length as an int (shapes are int arrays).</summary>
    private static int Length(DeviceBuffer<float> buffer, string op)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        buffer.ThrowIfDisposed(op);
        if (buffer.Length > int.MaxValue)
            throw new ArgumentException($"{op} (composite): a buffer of {buffer.Length} elements exceeds the {int.MaxValue} a shape can hold.");
        return (int)buffer.Length;
    }

    private static void Need(DeviceBuffer<float> buffer, long n, string op, string name)
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        buffer.ThrowIfDisposed(op);
        if (buffer.Length < n)
            throw new ArgumentException($"{op}: buffer '{name}' holds {buffer.Length} elements, {n} are needed.", name);
    }
}
