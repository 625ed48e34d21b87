using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Adam (L2 weight decay added to the gradient) or, with <c>decoupledWeightDecay</c>, AdamW (decay applied to the
/// weights directly), as PyTorch's <c>torch.optim.Adam</c>/<c>AdamW</c>; one fused kernel per parameter.
/// </summary>
public class Adam : Optimizer
{
    /// <summary>Creates the optimizer.</summary>
    public Adam(IEnumerable<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0f, bool decoupledWeightDecay = false) : base(parameters, learningRate)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), $"{GetType().Name}: beta1 must be in [0, 1), got {beta1}.");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), $"{GetType().Name}: beta2 must be in [0, 1), got {beta2}.");
        if (!(float.IsFinite(eps) && eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"{GetType().Name}: eps must be a finite number >= 0, got {eps}.");
        if (!(float.IsFinite(weightDecay) && weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), $"{GetType().Name}: weight decay must be a finite number >= 0, got {weightDecay}.");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
        Decoupled = decoupledWeightDecay;
    }

    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; }
    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; }
    /// <summary>Denominator epsilon.</summary>
    public float Eps { get; }
    /// <summary>Weight decay coefficient.</summary>
    public float WeightDecay { get; }
    /// <summary>True for AdamW's decoupled weight decay.</summary>
    public bool Decoupled { get; }

    private readonly Dictionary<Tensor, int> steps = new(ReferenceEqualityComparer.Instance);

    /// <inheritdoc />
    protected override IReadOnlyList<string> StateNames => ["exp_avg", "exp_avg_sq"];

    internal override bool HasParameterSteps => true;

    internal override int GetParameterStep(Tensor parameter) => steps.TryGetValue(parameter, out var n) ? n : 0;

    internal override void SetParameterStep(Tensor parameter, int step)
    {
        if (step <= 0) steps.Remove(parameter);
        else steps[parameter] = step;
    }

    /// <inheritdoc />
    protected override void Update(Tensor parameter, Tensor gradient)
    {
        var s = State(parameter, 2, out _);
        // Bias correction counts this parameter's own updates (as PyTorch): one skipped for lack of a gradient
        // does not advance it.
        int t = steps.TryGetValue(parameter, out var n) ? n + 1 : 1;
        steps[parameter] = t;
        parameter.Device.Kernels.AdamStep(parameter.Buffer, gradient.Buffer, s[0], s[1], LearningRate, Beta1, Beta2, Eps,
            WeightDecay, Decoupled, t);
    }
}

/// <summary>AdamW: Adam with decoupled weight decay (default 0.01, as PyTorch).</summary>
public sealed class AdamW(IEnumerable<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
    float eps = 1e-8f, float weightDecay = 0.01f)
    : Adam(parameters, learningRate, beta1, beta2, eps, weightDecay, decoupledWeightDecay: true);
