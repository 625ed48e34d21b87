using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// A group of parameters with its own learning rate and weight decay, as an entry of PyTorch's
/// <c>param_groups</c>: <c>new Adam([new ParamGroup(body.Parameters()), new ParamGroup(head.Parameters(), learningRate: 1e-2f)], 1e-3f)</c>.
/// A rate or decay left null takes the optimizer's default. Schedulers and <see cref="Optimizer.LearningRate"/> set
/// the rates of the groups; both are part of the optimizer's state dictionary.
/// </summary>
public sealed class ParamGroup
{
    private float? learningRate;
    private float? weightDecay;

    /// <summary>A group of <paramref name="parameters"/>, with its own rate and decay where given.</summary>
    /// <exception cref="ArgumentException">The group is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A rate or decay is negative or not finite.</exception>
    public ParamGroup(IEnumerable<Tensor> parameters, float? learningRate = null, float? weightDecay = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToList();
        if (Parameters.Count == 0) throw new ArgumentException("ParamGroup: the group has no parameters.", nameof(parameters));
        if (learningRate is { } lr) this.learningRate = Check(lr, nameof(learningRate));
        if (weightDecay is { } wd) this.weightDecay = Check(wd, nameof(weightDecay));
    }

    /// <summary>The parameters of the group.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>The group's learning rate (settable between steps, as schedulers do).</summary>
    /// <exception cref="InvalidOperationException">Read before the group was given to an optimizer, with no rate of its own.</exception>
    public float LearningRate
    {
        get => learningRate ?? throw Unresolved("learning rate");
        set => learningRate = Check(value, nameof(LearningRate));
    }

    /// <summary>The group's weight decay (settable between steps).</summary>
    /// <exception cref="InvalidOperationException">Read before the group was given to an optimizer, with no decay of its own.</exception>
    public float WeightDecay
    {
        get => weightDecay ?? throw Unresolved("weight decay");
        set => weightDecay = Check(value, nameof(WeightDecay));
    }

    /// <summary>The optimizer the group belongs to, once given to one.</summary>
    public Optimizer? Owner { get; private set; }

    /// <summary>Joins <paramref name="owner"/>, taking its defaults for what the group does not set.</summary>
    internal void Adopt(Optimizer owner, float defaultLearningRate, float defaultWeightDecay)
    {
        if (Owner != null)
            throw new ArgumentException($"{owner.GetType().Name}: this parameter group already belongs to a {Owner.GetType().Name}; create a new ParamGroup for each optimizer.");
        Owner = owner;
        learningRate ??= Check(defaultLearningRate, "learningRate");
        weightDecay ??= Check(defaultWeightDecay, "weightDecay");
    }

    private static float Check(float value, string name)
    {
        if (!(float.IsFinite(value) && value >= 0))
            throw new ArgumentOutOfRangeException(name, value, $"ParamGroup: {name} must be a finite number >= 0, got {value}.");
        return value;
    }

    private static InvalidOperationException Unresolved(string what) =>
        new($"ParamGroup: the {what} comes from the optimizer's default until the group is given to an optimizer.");
}
