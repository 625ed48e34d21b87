namespace Engine.Kernels;

/// <summary>Hyper-parameters of an SGD step (PyTorch's torch.optim.SGD); the learning rate comes from a device scalar.</summary>
/// <param name="Momentum">Momentum factor (0: plain SGD, no velocity).</param>
/// <param name="Dampening">Dampening of the momentum.</param>
/// <param name="WeightDecay">L2 penalty added to the gradient.</param>
/// <param name="Nesterov">Nesterov momentum.</param>
public readonly record struct SgdHyper(float Momentum = 0f, float Dampening = 0f, float WeightDecay = 0f, bool Nesterov = false);

/// <summary>Hyper-parameters of an Adam/AdamW step; the learning rate and step count come from device scalars.</summary>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Eps">Denominator epsilon.</param>
/// <param name="WeightDecay">Weight decay coefficient.</param>
/// <param name="Decoupled">AdamW's decoupled decay (p *= 1 - lr · weightDecay) instead of an L2 term in the gradient.</param>
public readonly record struct AdamHyper(float Beta1 = 0.9f, float Beta2 = 0.999f, float Eps = 1e-8f, float WeightDecay = 0f, bool Decoupled = false);

/// <summary>The buffers of one SGD step.</summary>
/// <param name="Param">Parameters, updated in place.</param>
/// <param name="Grad">Gradient (read only).</param>
/// <param name="Velocity">Momentum buffer, updated (null when momentum is 0).</param>
public readonly record struct SgdBuffers(DeviceBuffer<float> Param, DeviceBuffer<float> Grad, DeviceBuffer<float>? Velocity = null);

/// <summary>The four equally long buffers of one Adam step.</summary>
/// <param name="Param">Parameters, updated in place.</param>
/// <param name="Grad">Gradient (read only).</param>
/// <param name="M">First moments, updated.</param>
/// <param name="V">Second moments, updated.</param>
public readonly record struct AdamBuffers(DeviceBuffer<float> Param, DeviceBuffer<float> Grad, DeviceBuffer<float> M, DeviceBuffer<float> V);

/// <summary>
/// Fused optimizer kernels, a capability a kernel set may implement (both built-in sets do): SGD and Adam steps, and
/// the save-move-restore-combine kernels of the optimizers that take several gradients per step (SAM,
/// finite-difference and double-backprop gradient regularization). Without it,
/// <see cref="KernelCapabilities.OptimizerKernels"/> hands out a composite of core elementwise ops and reductions.
/// </summary>
/// <remarks>
/// Values that change from step to step (learning rate, step count, perturbation scale, squared norm) are
/// <see cref="DeviceScalar"/>s that kernels read and write on the device, so a whole training step runs without a
/// host round trip (and can be captured as a graph with those scalars as inputs).
/// </remarks>
public interface IOptimizerKernels
{
    /// <summary>
    /// One fused SGD step over a parameter buffer (PyTorch semantics) with lr = <paramref name="learningRate"/>:
    /// g = grad + weightDecay · p; if momentum != 0: v = momentum · v + (1 - dampening) · g (v = g on the first step,
    /// signalled by <paramref name="firstStep"/>), g = nesterov ? g + momentum · v : v; p -= lr · g.
    /// <paramref name="velocity"/> may be null when momentum is 0.
    /// </summary>
    void SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity, in SgdHyper hyper,
        DeviceScalar learningRate, bool firstStep);

    /// <summary>
    /// <see cref="SgdStep"/> on every entry of <paramref name="buffers"/> in order, with one hyper-parameter set,
    /// learning rate and first-step flag: the multi-tensor update a compiled graph makes of an optimizer's
    /// per-parameter calls. The buffers of different entries must be distinct. A set may run all entries as one launch
    /// (the CPU set does); this default runs them one by one, with the same results.
    /// </summary>
    void SgdSteps(IReadOnlyList<SgdBuffers> buffers, in SgdHyper hyper, DeviceScalar learningRate, bool firstStep)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        foreach (var b in buffers) SgdStep(b.Param, b.Grad, b.Velocity, hyper, learningRate, firstStep);
    }

    /// <summary>
    /// One fused Adam/AdamW step (PyTorch semantics): first adds 1 to <paramref name="step"/> on the device, then
    /// updates with t = its new value and lr = <paramref name="learningRate"/>, bias corrections 1 - β^t formed on the
    /// device. Adam: g = grad + weightDecay · p. AdamW (decoupled): p *= 1 - lr · weightDecay.
    /// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²; p -= lr · (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    /// </summary>
    void AdamStep(in AdamBuffers buffers, in AdamHyper hyper, DeviceScalar learningRate, DeviceScalar step);

    /// <summary>
    /// <see cref="AdamStep"/> on every entry of <paramref name="buffers"/> in order, entry i counting its steps in
    /// <paramref name="steps"/>[i], with one hyper-parameter set and learning rate: the multi-tensor update a compiled
    /// graph makes of an optimizer's per-parameter calls. The buffers of different entries must be distinct. A set may
    /// run all entries as one launch (the CPU set does); this default runs them one by one, with the same results.
    /// </summary>
    /// <exception cref="ArgumentException">The lists differ in length.</exception>
    void AdamSteps(IReadOnlyList<AdamBuffers> buffers, in AdamHyper hyper, DeviceScalar learningRate, IReadOnlyList<DeviceScalar> steps)
    {
        CheckAdamStepsLists(buffers, steps);
        for (int i = 0; i < buffers.Count; i++) AdamStep(buffers[i], hyper, learningRate, steps[i]);
    }

    /// <summary>The argument checks of <see cref="AdamSteps"/>, shared by its implementations: one step count per buffer set.</summary>
    internal static void CheckAdamStepsLists(IReadOnlyList<AdamBuffers> buffers, IReadOnlyList<DeviceScalar> steps)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        ArgumentNullException.ThrowIfNull(steps);
        if (buffers.Count != steps.Count)
            throw new ArgumentException($"AdamSteps: {buffers.Count} buffer sets but {steps.Count} step counts; expected one step count per set.", nameof(steps));
    }

    /// <summary>
    /// Saves and moves a parameter: backup[i] = param[i]; then param[i] += s · t_i · grad[i] with s =
    /// <paramref name="scale"/> (read on the device) and t_i = param[i]² when <paramref name="squareParam"/> (adaptive
    /// SAM's |θ|² scaling), 1 otherwise. The product is one fused multiply-add on the built-in sets, so the moved
    /// values agree bitwise between them.
    /// </summary>
    void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, DeviceScalar scale, bool squareParam);

    /// <summary>param[i] = backup[i]: copies the saved values back (bit-exact, never an inverse step).</summary>
    void Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param);

    /// <summary>grad[i] = a · grad[i] + b · grad2[i] (one fused multiply-add on b · grad2).</summary>
    void CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b);

    /// <summary>
    /// Writes into <paramref name="result"/> Σ over every buffer k and element i of (w_k[i] · x_k[i])², or of x_k[i]²
    /// where <paramref name="weights"/> is null or its k-th entry is null: the squared global norm of a list of
    /// gradients (weights: adaptive SAM's || |θ| ⊙ g ||²). Summed in double in the one order
    /// <see cref="SumOfSquaresOrder"/> fixes from the lengths alone, so the built-in sets agree bitwise (devices
    /// without fp64 use double-float arithmetic, within 2^-38 relative). Weight buffers must be as long as their x.
    /// </summary>
    void SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights, DeviceScalar result);

    /// <summary>
    /// SAM's perturbation scale on the device: scale = radius / (sqrt(sumOfSquares) + 1e-12), computed in double
    /// from the stored sum and rounded to float (so it is bitwise equal on the built-in sets); devices without fp64
    /// refine a float estimate in double-float arithmetic (see <see cref="DoubleFloat.InverseNormScale"/>).
    /// </summary>
    void PerturbationScale(DeviceScalar sumOfSquares, float radius, DeviceScalar scale);
}
