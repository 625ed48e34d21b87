using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, as PyTorch's
/// <c>torch.optim.SGD</c>; one fused kernel per parameter.
/// </summary>
public sealed class Sgd : Optimizer
{
    /// <summary>Creates the optimizer.</summary>
    public Sgd(IEnumerable<Tensor> parameters, float learningRate, float momentum = 0f, float dampening = 0f,
        float weightDecay = 0f, bool nesterov = false) : base(parameters, learningRate)
    {
        if (!(float.IsFinite(momentum) && momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), $"SGD: momentum must be a finite number >= 0, got {momentum}.");
        if (!(float.IsFinite(dampening) && dampening >= 0)) throw new ArgumentOutOfRangeException(nameof(dampening), $"SGD: dampening must be a finite number >= 0, got {dampening}.");
        if (!(float.IsFinite(weightDecay) && weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), $"SGD: weight decay must be a finite number >= 0, got {weightDecay}.");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException($"SGD: Nesterov momentum needs momentum > 0 and dampening = 0 (got momentum {momentum}, dampening {dampening}).");
        Momentum = momentum;
        Dampening = dampening;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
    }

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }
    /// <summary>Dampening of the momentum.</summary>
    public float Dampening { get; }
    /// <summary>L2 penalty coefficient.</summary>
    public float WeightDecay { get; }
    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc />
    protected override IReadOnlyList<string> StateNames => Momentum != 0 ? ["momentum_buffer"] : [];

    /// <inheritdoc />
    protected override void Update(Tensor parameter, Tensor gradient)
    {
        bool first = false;
        var velocity = Momentum != 0 ? State(parameter, 1, out first)[0] : null;
        parameter.Device.Kernels.SgdStep(parameter.Buffer, gradient.Buffer, velocity, LearningRate, Momentum, Dampening,
            WeightDecay, Nesterov, first);
    }
}
