using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>Hyper-parameters of one fused SGD step (PyTorch's <c>torch.optim.SGD</c>).</summary>
/// <param name="LearningRate">Step size.</param>
/// <param name="Momentum">Momentum factor (0: plain SGD, no velocity).</param>
/// <param name="Dampening">Dampening of the momentum.</param>
/// <param name="WeightDecay">L2 penalty added to the gradient.</param>
/// <param name="Nesterov">Nesterov momentum.</param>
public readonly record struct SgdHyperParameters(float LearningRate, float Momentum, float Dampening, float WeightDecay, bool Nesterov);

/// <summary>Hyper-parameters of one fused Adam/AdamW step (PyTorch's <c>torch.optim.Adam</c>/<c>AdamW</c>).</summary>
/// <param name="LearningRate">Step size.</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Eps">Denominator epsilon.</param>
/// <param name="WeightDecay">Weight decay: added to the gradient (Adam) or applied to the weights (AdamW).</param>
/// <param name="Decoupled">True for AdamW's decoupled weight decay.</param>
public readonly record struct AdamHyperParameters(float LearningRate, float Beta1, float Beta2, float Eps, float WeightDecay, bool Decoupled);

/// <summary>
/// Operations that overwrite a tensor's data in place, outside the tape (never recorded, whatever the grad mode):
/// what optimizers, gradient clipping and other state updates are made of. Each checks its operands on the host
/// (alive, same device, matching shapes) and names itself and the shapes when they do not fit, then runs one kernel
/// of the tensors' device. Do not use them on a tensor that a recorded graph still needs for its backward pass.
/// </summary>
public static class InPlace
{
    /// <summary>x[i] = value.</summary>
    public static void Fill(Tensor x, float value)
    {
        Alive("InPlace.Fill", x);
        x.K.Fill(x.Buffer, value);
    }

    /// <summary>destination = source (same shape and device; bit-exact).</summary>
    public static void Copy(Tensor source, Tensor destination)
    {
        Same("InPlace.Copy", source, destination);
        destination.K.Copy(source.Buffer, 0, destination.Buffer, 0, source.Size);
    }

    /// <summary>x[i] = factor · x[i].</summary>
    public static void Scale(Tensor x, float factor)
    {
        Alive("InPlace.Scale", x);
        x.K.Affine(x.Buffer, x.Buffer, factor, 0f);
    }

    /// <summary>y[i] += alpha · x[i] (same shape and device).</summary>
    public static void Axpy(float alpha, Tensor x, Tensor y)
    {
        Same("InPlace.Axpy", x, y);
        y.K.Axpy(alpha, x.Buffer, y.Buffer);
    }

    /// <summary>
    /// x = x · factor, with <paramref name="factor"/> broadcast to x's shape (NumPy rules; typically a one-element
    /// device scalar, so a scale computed on the device never travels to the host).
    /// </summary>
    public static void Multiply(Tensor x, Tensor factor) => Broadcasting("InPlace.Multiply", BinaryOp.Mul, x, factor);

    /// <summary>x = max(x, bound), with <paramref name="bound"/> broadcast to x's shape.</summary>
    public static void Maximum(Tensor x, Tensor bound) => Broadcasting("InPlace.Maximum", BinaryOp.Maximum, x, bound);

    /// <summary>x = min(x, bound), with <paramref name="bound"/> broadcast to x's shape.</summary>
    public static void Minimum(Tensor x, Tensor bound) => Broadcasting("InPlace.Minimum", BinaryOp.Minimum, x, bound);

    /// <summary>x[i] = min(max(x[i], min), max).</summary>
    /// <exception cref="ArgumentException">min is greater than max, or either is NaN.</exception>
    public static void Clamp(Tensor x, float min, float max)
    {
        Alive("InPlace.Clamp", x);
        if (!(min <= max))
            throw new ArgumentException($"InPlace.Clamp: min ({min}) must be <= max ({max}).");
        using var _ = GradMode.NoGrad();
        using var lo = Tensor.Scalar(min, x.Device);
        using var hi = Tensor.Scalar(max, x.Device);
        Maximum(x, lo);
        Minimum(x, hi);
    }

    /// <summary>
    /// One fused SGD step (PyTorch semantics): g = gradient + weightDecay · p; with momentum, v = momentum · v +
    /// (1 − dampening) · g (v = g when <paramref name="firstStep"/>), g = nesterov ? g + momentum · v : v;
    /// p −= lr · g. <paramref name="velocity"/> may be null when momentum is 0. Uploads the learning rate for this one
    /// call; a training loop keeps it in a <see cref="DeviceScalar"/> and calls the overload that takes one.
    /// </summary>
    public static void SgdStep(Tensor parameter, Tensor gradient, Tensor? velocity, in SgdHyperParameters hyper, bool firstStep)
    {
        CheckSgd(parameter, gradient, velocity, hyper.Momentum);
        using var lr = new DeviceScalar(parameter.Device, hyper.LearningRate);
        SgdStep(parameter, gradient, velocity, new SgdHyper(hyper.Momentum, hyper.Dampening, hyper.WeightDecay, hyper.Nesterov), lr, firstStep);
    }

    /// <summary>
    /// One fused SGD step as the other overload, with lr read on the device from <paramref name="learningRate"/> (a
    /// scalar on the parameter's device), so the step copies nothing between host and device.
    /// </summary>
    public static void SgdStep(Tensor parameter, Tensor gradient, Tensor? velocity, in SgdHyper hyper, DeviceScalar learningRate, bool firstStep)
    {
        CheckSgd(parameter, gradient, velocity, hyper.Momentum);
        OnDeviceOf(SgdOp, learningRate, nameof(learningRate), parameter);
        parameter.K.OptimizerKernels().SgdStep(parameter.Buffer, gradient.Buffer, velocity?.Buffer, hyper, learningRate, firstStep);
    }

    private const string SgdOp = "InPlace.SgdStep";

    private static void CheckSgd(Tensor parameter, Tensor gradient, Tensor? velocity, float momentum)
    {
        Same(SgdOp, gradient, parameter);
        if (velocity != null) Same(SgdOp, velocity, parameter);
        else if (momentum != 0)
            throw new ArgumentException($"{SgdOp}: momentum {momentum} needs a velocity tensor.");
    }

    /// <summary>
    /// One fused Adam/AdamW step (PyTorch semantics), <paramref name="step"/> counting this parameter's updates from
    /// 1: m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²; p −= lr · (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + eps), with
    /// weight decay added to g (Adam) or p scaled by 1 − lr · weightDecay first (AdamW). Uploads the learning rate and
    /// step for this one call; a training loop keeps them in <see cref="DeviceScalar"/>s and calls the overload that
    /// takes them.
    /// </summary>
    public static void AdamStep(Tensor parameter, Tensor gradient, Tensor expAvg, Tensor expAvgSq, in AdamHyperParameters hyper, long step)
    {
        CheckAdam(parameter, gradient, expAvg, expAvgSq);
        if (step < 1 || step > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"{AdamOp}: the step must be in [1, {int.MaxValue}], got {step}.");
        using var lr = new DeviceScalar(parameter.Device, hyper.LearningRate);
        using var count = new DeviceScalar(parameter.Device, step - 1);
        AdamStep(parameter, gradient, expAvg, expAvgSq, new AdamHyper(hyper.Beta1, hyper.Beta2, hyper.Eps, hyper.WeightDecay, hyper.Decoupled), lr, count);
    }

    /// <summary>
    /// One fused Adam/AdamW step as the other overload, with lr read on the device from <paramref name="learningRate"/>
    /// and the count from <paramref name="step"/>, which holds the parameter's updates before this one: the kernel
    /// adds 1 to it on the device and uses the new value as t, so the scalar stays the parameter's count and the step
    /// copies nothing between host and device. Both scalars live on the parameter's device.
    /// </summary>
    public static void AdamStep(Tensor parameter, Tensor gradient, Tensor expAvg, Tensor expAvgSq, in AdamHyper hyper,
        DeviceScalar learningRate, DeviceScalar step)
    {
        CheckAdam(parameter, gradient, expAvg, expAvgSq);
        OnDeviceOf(AdamOp, learningRate, nameof(learningRate), parameter);
        OnDeviceOf(AdamOp, step, nameof(step), parameter);
        parameter.K.OptimizerKernels().AdamStep(new AdamBuffers(parameter.Buffer, gradient.Buffer, expAvg.Buffer, expAvgSq.Buffer),
            hyper, learningRate, step);
    }

    private const string AdamOp = "InPlace.AdamStep";

    private static void CheckAdam(Tensor parameter, Tensor gradient, Tensor expAvg, Tensor expAvgSq)
    {
        Same(AdamOp, gradient, parameter);
        Same(AdamOp, expAvg, parameter);
        Same(AdamOp, expAvgSq, parameter);
    }

    /// <summary>
    /// Saves and moves a parameter: backup = p, then p += scale · s ⊙ gradient with s = p² when
    /// <paramref name="squareParameter"/> (adaptive SAM) and 1 otherwise; one fused multiply-add per element, so the
    /// moved values agree bitwise between kernel sets. Uploads the scale for this one call.
    /// </summary>
    public static void Perturb(Tensor parameter, Tensor gradient, Tensor backup, float scale, bool squareParameter)
    {
        CheckPerturb(parameter, gradient, backup);
        using var scaleOnDevice = new DeviceScalar(parameter.Device, scale);
        Perturb(parameter, gradient, backup, scaleOnDevice, squareParameter);
    }

    /// <summary>
    /// Saves and moves a parameter as the other overload, with the scale read on the device from
    /// <paramref name="scale"/> (a scalar on the parameter's device, e.g. <see cref="PerturbationScale"/>'s result).
    /// </summary>
    public static void Perturb(Tensor parameter, Tensor gradient, Tensor backup, DeviceScalar scale, bool squareParameter)
    {
        CheckPerturb(parameter, gradient, backup);
        OnDeviceOf(PerturbOp, scale, nameof(scale), parameter);
        parameter.K.OptimizerKernels().Perturb(parameter.Buffer, gradient.Buffer, backup.Buffer, scale, squareParameter);
    }

    private const string PerturbOp = "InPlace.Perturb";

    private static void CheckPerturb(Tensor parameter, Tensor gradient, Tensor backup)
    {
        Same(PerturbOp, gradient, parameter);
        Same(PerturbOp, backup, parameter);
    }

    /// <summary>parameter = backup: puts saved values back, bit for bit (never an inverse step).</summary>
    public static void Restore(Tensor backup, Tensor parameter)
    {
        Same("InPlace.Restore", backup, parameter);
        parameter.K.OptimizerKernels().Restore(backup.Buffer, parameter.Buffer);
    }

    /// <summary>gradient = a · gradient + b · other (one fused multiply-add on b · other).</summary>
    public static void CombineGradients(Tensor gradient, Tensor other, float a, float b)
    {
        Same("InPlace.CombineGradients", other, gradient);
        gradient.K.OptimizerKernels().CombineGradients(gradient.Buffer, other.Buffer, a, b);
    }

    /// <summary>
    /// Reads (does not change) the tensors and returns Σₖ Σᵢ (wₖ[i] · xₖ[i])², or Σ xₖ[i]² where
    /// <paramref name="weights"/> is null or its k-th entry is: the squared global norm of a list of gradients
    /// (weights: adaptive SAM's ‖ |θ| ⊙ g ‖²), summed in double in one order fixed by the lengths (the same bits on both
    /// kernel sets). Tensors on several devices are summed per device, then on the host. The result is read back to
    /// the host (the device waits for it); the overload that writes a <see cref="DeviceScalar"/> reads nothing.
    /// </summary>
    public static double SumOfSquares(IReadOnlyList<Tensor> tensors, IReadOnlyList<Tensor?>? weights = null)
    {
        CheckSumOfSquares(tensors, weights);
        double total = 0;
        foreach (var group in Enumerable.Range(0, tensors.Count).GroupBy(i => tensors[i].Device))
        {
            var ids = group.ToList();
            using var sum = new DeviceScalar(group.Key);
            SumOfSquares(ids.Select(i => tensors[i]).ToList(), weights == null ? null : ids.Select(i => weights[i]).ToList(), sum);
            total += sum.Read();
        }
        return total;
    }

    /// <summary>
    /// Writes the sum of <see cref="SumOfSquares(IReadOnlyList{Tensor}, IReadOnlyList{Tensor})"/> into
    /// <paramref name="result"/> on the device, in the same order (the same bits): nothing travels to the host. Every
    /// tensor and weight must live on the result's device.
    /// </summary>
    public static void SumOfSquares(IReadOnlyList<Tensor> tensors, IReadOnlyList<Tensor?>? weights, DeviceScalar result)
    {
        const string op = "InPlace.SumOfSquares";
        CheckSumOfSquares(tensors, weights);
        Alive(op, result, nameof(result));
        foreach (var t in tensors)
            if (!ReferenceEquals(t.Device, result.Device))
                throw new ArgumentException($"{op}: tensor {t.Describe()} lives on '{t.Device.Name}' but the result scalar on '{result.Device.Name}'; sum each device's tensors into a scalar on that device.");
        var buffers = tensors.Select(t => t.Buffer).ToList();
        var weightBuffers = weights?.Select(w => w?.Buffer).ToList();
        result.Device.Kernels.OptimizerKernels().SumOfSquares(buffers, weightBuffers, result);
    }

    private static void CheckSumOfSquares(IReadOnlyList<Tensor> tensors, IReadOnlyList<Tensor?>? weights)
    {
        const string op = "InPlace.SumOfSquares";
        ArgumentNullException.ThrowIfNull(tensors);
        if (weights != null && weights.Count != tensors.Count)
            throw new ArgumentException($"{op}: {tensors.Count} tensors but {weights.Count} weights.");
        for (int i = 0; i < tensors.Count; i++)
        {
            Alive(op, tensors[i]);
            if (weights?[i] is { } w) Same(op, w, tensors[i]);
        }
    }

    /// <summary>
    /// SAM's perturbation scale on the device: <paramref name="scale"/> = radius / (sqrt(sumOfSquares) + 1e-12), from
    /// a squared norm that <see cref="SumOfSquares(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, DeviceScalar)"/>
    /// wrote, rounded to float (the same bits on both kernel sets). Both scalars live on one device; nothing travels
    /// to the host.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The radius is not finite.</exception>
    public static void PerturbationScale(DeviceScalar sumOfSquares, float radius, DeviceScalar scale)
    {
        const string op = "InPlace.PerturbationScale";
        Alive(op, sumOfSquares, nameof(sumOfSquares));
        Alive(op, scale, nameof(scale));
        if (!ReferenceEquals(sumOfSquares.Device, scale.Device))
            throw new ArgumentException($"{op}: the sum of squares lives on '{sumOfSquares.Device.Name}' but the scale on '{scale.Device.Name}'.");
        if (!float.IsFinite(radius))
            throw new ArgumentOutOfRangeException(nameof(radius), radius, $"{op}: the radius must be finite, got {radius}.");
        scale.Device.Kernels.OptimizerKernels().PerturbationScale(sumOfSquares, radius, scale);
    }

    private static void Broadcasting(string op, BinaryOp kind, Tensor x, Tensor other)
    {
        Ops.CheckSameDevice(op, x, other);
        if (!Shape.CanBroadcastTo(other.shape, x.shape))
            throw new ArgumentException($"{op}: {other.Describe()} does not broadcast to {x.Describe()}.");
        x.K.Binary(kind, x.Buffer, x.shape, other.Buffer, other.shape, x.Buffer, x.shape);
    }

    private static void Alive(string op, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        x.CheckAlive(op);
    }

    private static void Alive(string op, DeviceScalar scalar, string name)
    {
        ArgumentNullException.ThrowIfNull(scalar, name);
        if (scalar.IsDisposed)
            throw new ObjectDisposedException(nameof(DeviceScalar), $"{op}: the {name} scalar was used after it was disposed.");
    }

    /// <summary>Checks that <paramref name="scalar"/> is alive and on <paramref name="target"/>'s device.</summary>
    private static void OnDeviceOf(string op, DeviceScalar scalar, string name, Tensor target)
    {
        Alive(op, scalar, name);
        if (!ReferenceEquals(scalar.Device, target.Device))
            throw new ArgumentException($"{op}: the {name} scalar lives on '{scalar.Device.Name}' but {target.Describe()} on '{target.Device.Name}'.");
    }

    /// <summary>Checks that <paramref name="x"/> has <paramref name="target"/>'s shape and device.</summary>
    private static void Same(string op, Tensor x, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(target);
        Ops.CheckSameDevice(op, x, target);
        if (!Shape.Equal(x.shape, target.shape))
            throw new ArgumentException($"{op}: {x.Describe()} does not match {target.Describe()}.");
    }
}
