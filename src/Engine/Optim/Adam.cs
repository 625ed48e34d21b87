using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Optim;

/// <summary>
/// Adam (L2 weight decay added to the gradient) or, with <c>decoupledWeightDecay</c>, AdamW (decay applied to the
/// weights directly), as PyTorch's <c>torch.optim.Adam</c>/<c>AdamW</c>; one fused kernel per parameter. State per
/// parameter: "exp_avg", "exp_avg_sq" and "step" (bias correction counts the parameter's own updates, as PyTorch).
/// </summary>
/// <remarks>
/// The kernel reads each parameter's count from a device scalar that it advances itself, kept in lockstep with the
/// host count and written from the host only when that count changed otherwise (a loaded state dictionary), so a
/// step copies nothing between host and device.
/// </remarks>
public class Adam : BaseOptimizer
{
    /// <summary>Creates the optimizer over one group of parameters.</summary>
    public Adam(IEnumerable<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0f, bool decoupledWeightDecay = false)
        : base(parameters, learningRate, CheckDecay(weightDecay))
    {
        (Beta1, Beta2, Eps) = Check(beta1, beta2, eps);
        WeightDecay = weightDecay;
        Decoupled = decoupledWeightDecay;
    }

    /// <summary>
    /// Creates the optimizer over parameter groups; <paramref name="learningRate"/> and <paramref name="weightDecay"/>
    /// are the defaults of groups that set none.
    /// </summary>
    public Adam(IEnumerable<ParamGroup> groups, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0f, bool decoupledWeightDecay = false)
        : base(groups, learningRate, CheckDecay(weightDecay))
    {
        (Beta1, Beta2, Eps) = Check(beta1, beta2, eps);
        WeightDecay = weightDecay;
        Decoupled = decoupledWeightDecay;
    }

    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; }
    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; }
    /// <summary>Denominator epsilon.</summary>
    public float Eps { get; }
    /// <summary>The default weight decay coefficient (each group's own is <see cref="ParamGroup.WeightDecay"/>).</summary>
    public float WeightDecay { get; }
    /// <summary>True for AdamW's decoupled weight decay.</summary>
    public bool Decoupled { get; }

    /// <inheritdoc />
    protected override IReadOnlyList<string> StateNames => ["exp_avg", "exp_avg_sq"];

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("beta1", (double)Beta1);
        config.Add("beta2", (double)Beta2);
        config.Add("eps", (double)Eps);
        config.Add("decoupled", Decoupled);
    }

    private readonly Dictionary<Tensor, MirroredScalar> deviceSteps = new(ReferenceEqualityComparer.Instance);

    /// <inheritdoc />
    protected override void PrepareUpdate(Tensor parameter, ParamGroup group, long step)
    {
        if (step > int.MaxValue)
            throw new InvalidOperationException($"{GetType().Name}: parameter {parameter.Name ?? Shape.Format(parameter.Shape)} would take update {step}, past the {int.MaxValue} a step count may reach.");
        base.PrepareUpdate(parameter, group, step);
        // The kernel advances the count from step - 1 to step within this update.
        var count = DeviceCount(parameter);
        count.Holding(step - 1);
        count.Became(step);
    }

    /// <inheritdoc />
    protected override void Update(Tensor parameter, Tensor gradient, ParamGroup group, IReadOnlyList<Tensor> state, long step) =>
        InPlace.AdamStep(parameter, gradient, state[0], state[1], new AdamHyper(Beta1, Beta2, Eps, group.WeightDecay, Decoupled),
            LearningRateOn(group, parameter.Device), DeviceCount(parameter).Scalar);

    /// <summary>
    /// The device scalar counting <paramref name="parameter"/>'s updates. The kernel advances it, so the host writes
    /// it only when the host count changed otherwise (first use, a loaded state).
    /// </summary>
    private MirroredScalar DeviceCount(Tensor parameter)
    {
        if (!deviceSteps.TryGetValue(parameter, out var count))
        {
            count = new MirroredScalar(parameter.Device, 0);
            deviceSteps[parameter] = count;
        }
        return count;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var c in deviceSteps.Values) c.Dispose();
        deviceSteps.Clear();
    }

    private static float CheckDecay(float weightDecay) =>
        float.IsFinite(weightDecay) && weightDecay >= 0 ? weightDecay : throw new ArgumentOutOfRangeException(nameof(weightDecay), $"Adam: weight decay must be a finite number >= 0, got {weightDecay}.");

    private static (float, float, float) Check(float beta1, float beta2, float eps)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), $"Adam: beta1 must be in [0, 1), got {beta1}.");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), $"Adam: beta2 must be in [0, 1), got {beta2}.");
        if (!(float.IsFinite(eps) && eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"Adam: eps must be a finite number >= 0, got {eps}.");
        return (beta1, beta2, eps);
    }
}

/// <summary>AdamW: Adam with decoupled weight decay (default 0.01, as PyTorch).</summary>
public sealed class AdamW : Adam
{
    /// <summary>Creates the optimizer over one group of parameters.</summary>
    public AdamW(IEnumerable<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.01f)
        : base(parameters, learningRate, beta1, beta2, eps, weightDecay, decoupledWeightDecay: true) { }

    /// <summary>Creates the optimizer over parameter groups (defaults as for one group).</summary>
    public AdamW(IEnumerable<ParamGroup> groups, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.01f)
        : base(groups, learningRate, beta1, beta2, eps, weightDecay, decoupledWeightDecay: true) { }
}
