using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Optim;

/// <summary>
/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, as PyTorch's
/// <c>torch.optim.SGD</c>; one fused kernel per parameter. State per parameter: "momentum_buffer" (with momentum)
/// and "step".
/// </summary>
public sealed class Sgd : BaseOptimizer
{
    /// <summary>Creates the optimizer over one group of parameters.</summary>
    public Sgd(IEnumerable<Tensor> parameters, float learningRate, float momentum = 0f, float dampening = 0f,
        float weightDecay = 0f, bool nesterov = false) : base(parameters, learningRate, CheckDecay(weightDecay))
    {
        (Momentum, Dampening, Nesterov) = Check(momentum, dampening, nesterov);
        WeightDecay = weightDecay;
    }

    /// <summary>
    /// Creates the optimizer over parameter groups; <paramref name="learningRate"/> and <paramref name="weightDecay"/>
    /// are the defaults of groups that set none.
    /// </summary>
    public Sgd(IEnumerable<ParamGroup> groups, float learningRate, float momentum = 0f, float dampening = 0f,
        float weightDecay = 0f, bool nesterov = false) : base(groups, learningRate, CheckDecay(weightDecay))
    {
        (Momentum, Dampening, Nesterov) = Check(momentum, dampening, nesterov);
        WeightDecay = weightDecay;
    }

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }
    /// <summary>Dampening of the momentum.</summary>
    public float Dampening { get; }
    /// <summary>The default L2 penalty coefficient (each group's own is <see cref="ParamGroup.WeightDecay"/>).</summary>
    public float WeightDecay { get; }
    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc />
    protected override IReadOnlyList<string> StateNames => Momentum != 0 ? ["momentum_buffer"] : [];

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("momentum", (double)Momentum);
        config.Add("dampening", (double)Dampening);
        config.Add("nesterov", Nesterov);
    }

    /// <inheritdoc />
    protected override void Update(Tensor parameter, Tensor gradient, ParamGroup group, IReadOnlyList<Tensor> state, long step) =>
        InPlace.SgdStep(parameter, gradient, Momentum != 0 ? state[0] : null, new SgdHyper(Momentum, Dampening, group.WeightDecay, Nesterov),
            LearningRateOn(group, parameter.Device), firstStep: step == 1);

    private static float CheckDecay(float weightDecay) =>
        float.IsFinite(weightDecay) && weightDecay >= 0 ? weightDecay : throw new ArgumentOutOfRangeException(nameof(weightDecay), $"SGD: weight decay must be a finite number >= 0, got {weightDecay}.");

    private static (float, float, bool) Check(float momentum, float dampening, bool nesterov)
    {
        if (!(float.IsFinite(momentum) && momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), $"SGD: momentum must be a finite number >= 0, got {momentum}.");
        if (!(float.IsFinite(dampening) && dampening >= 0)) throw new ArgumentOutOfRangeException(nameof(dampening), $"SGD: dampening must be a finite number >= 0, got {dampening}.");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException($"SGD: Nesterov momentum needs momentum > 0 and dampening = 0 (got momentum {momentum}, dampening {dampening}).");
        return (momentum, dampening, nesterov);
    }
}
