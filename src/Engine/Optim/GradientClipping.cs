using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Gradient clipping, as PyTorch's <c>torch.nn.utils.clip_grad_norm_</c> and <c>clip_grad_value_</c>: both work on
/// the gradients a backward pass left on the parameters, in place and on the device (the norm is a device scalar
/// and is never read back to the host). Call them between <c>Backward()</c> and <c>Step()</c>, or at the end of the
/// closure given to <see cref="Optimizer.Step(Func{Tensor})"/> (a multi-gradient optimizer then clips each
/// gradient it takes).
/// </summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales all gradients together so that their global norm (the norm of all their elements as one vector) is at
    /// most <paramref name="maxNorm"/>: each gradient is multiplied by min(1, maxNorm / (norm + 1e-6)). Returns the
    /// global norm before clipping as a one-element tensor on the gradients' device (0 when no parameter has a
    /// gradient). Parameters without a gradient are skipped.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients to clip (for a module: <c>model.Parameters()</c>).</param>
    /// <param name="maxNorm">The largest norm allowed.</param>
    /// <param name="normType">p of the p-norm (2 by default; <see cref="float.PositiveInfinity"/> for the largest magnitude).</param>
    /// <exception cref="ArgumentOutOfRangeException">maxNorm negative or not finite, or normType not positive.</exception>
    /// <exception cref="ArgumentException">The gradients live on several devices.</exception>
    /// <exception cref="InvalidOperationException">A gradient is part of a recorded graph (from <c>createGraph</c>), so it cannot change in place.</exception>
    public static Tensor ClipGradNorm(IEnumerable<Tensor> parameters, float maxNorm, float normType = 2f)
    {
        const string op = "ClipGradNorm";
        if (!(float.IsFinite(maxNorm) && maxNorm >= 0))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, $"{op}: maxNorm must be a finite number >= 0, got {maxNorm}.");
        if (!(normType > 0))
            throw new ArgumentOutOfRangeException(nameof(normType), normType, $"{op}: normType must be > 0 (or +infinity), got {normType}.");
        var (grads, device) = Gradients(op, parameters);
        using var _ = GradMode.NoGrad();
        if (grads.Count == 0) return Tensor.Zeros([], device);
        using var scope = new TensorScope();
        Tensor? total = null;
        foreach (var g in grads)
        {
            var part = float.IsPositiveInfinity(normType) ? g.Abs().Max()
                : normType == 2f ? g.Square().Sum()
                : g.Abs().Pow(normType).Sum();
            total = total == null ? part : float.IsPositiveInfinity(normType) ? Ops.Maximum(total, part) : total + part;
        }
        var norm = float.IsPositiveInfinity(normType) ? total!
            : normType == 2f ? total!.Sqrt()
            : total!.Pow(1f / normType);
        var factor = Ops.Minimum(Tensor.Scalar(maxNorm, device) / (norm + 1e-6f), Tensor.Scalar(1f, device));
        foreach (var g in grads) InPlace.Multiply(g, factor);
        return scope.Keep(norm);
    }

    /// <summary>
    /// Clamps every gradient element into [−<paramref name="clipValue"/>, <paramref name="clipValue"/>] in place.
    /// Parameters without a gradient are skipped.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">clipValue negative or not finite.</exception>
    /// <exception cref="InvalidOperationException">A gradient is part of a recorded graph.</exception>
    public static void ClipGradValue(IEnumerable<Tensor> parameters, float clipValue)
    {
        const string op = "ClipGradValue";
        if (!(float.IsFinite(clipValue) && clipValue >= 0))
            throw new ArgumentOutOfRangeException(nameof(clipValue), clipValue, $"{op}: clipValue must be a finite number >= 0, got {clipValue}.");
        foreach (var g in Gradients(op, parameters).Grads) InPlace.Clamp(g, -clipValue, clipValue);
    }

    private static (List<Tensor> Grads, Kernels.Device Device) Gradients(string op, IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var list = parameters.ToList();
        var grads = new List<Tensor>();
        foreach (var p in list)
        {
            if (p.Grad is not { } g) continue;
            if (!g.IsLeaf)
                throw new InvalidOperationException($"{op}: the gradient of {p.Name ?? Shape.Format(p.Shape)} is part of a recorded graph (Backward with createGraph); clip gradients of a plain backward pass.");
            if (grads.Count > 0 && !ReferenceEquals(g.Device, grads[0].Device))
                throw new ArgumentException($"{op}: gradients live on different devices ('{grads[0].Device.Name}' and '{g.Device.Name}'); clip each device's parameters separately.");
            grads.Add(g);
        }
        var device = grads.Count > 0 ? grads[0].Device : list.Count > 0 ? list[0].Device : Kernels.Device.Default;
        return (grads, device);
    }
}
