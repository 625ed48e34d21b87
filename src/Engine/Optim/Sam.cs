using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Sharpness-aware minimisation (Foret et al. 2021) around a base optimizer: g = ∇L(θ), ε = ρ g / (‖g‖ + 1e-12),
/// and the base optimizer steps from θ with ∇L(θ + ε). Adaptive SAM (ASAM, Kwon et al. 2021) scales the
/// perturbation by the parameters: ε = ρ θ² ⊙ g / (‖ |θ| ⊙ g ‖ + 1e-12), so that ‖ε / |θ|‖ = ρ. Two forward and
/// backward passes per step. Usage: <c>new Sam(new Sgd(ps, 0.1f), rho: 0.05f)</c>, then
/// <c>opt.Step(() =&gt; { var loss = ...; loss.Backward(); return loss; })</c>.
/// </summary>
public sealed class Sam : MultiGradientOptimizer
{
    /// <summary>Wraps <paramref name="inner"/>. Typical ρ: 0.05 for SAM, 2.0 for adaptive SAM.</summary>
    /// <exception cref="ArgumentOutOfRangeException">ρ negative or not finite.</exception>
    public Sam(Optimizer inner, float rho = 0.05f, bool adaptive = false) : base(inner)
    {
        CheckHyper(rho, nameof(rho), 0f, strict: false);
        Rho = rho;
        Adaptive = adaptive;
    }

    /// <summary>Radius of the perturbation.</summary>
    public float Rho { get; }

    /// <summary>True for adaptive SAM (perturbation scaled by θ²).</summary>
    public bool Adaptive { get; }

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("rho", (double)Rho);
        config.Add("adaptive", Adaptive);
    }

    /// <summary>
    /// The global gradient norm (‖g‖, or ‖ |θ| ⊙ g ‖ for ASAM) at θ in the last step; kept on the device during the
    /// step and read back when asked.
    /// </summary>
    public double LastGradientNorm => Math.Sqrt(LastSquaredNorm());

    /// <inheritdoc />
    public override Tensor Step(Func<Tensor?> closure)
    {
        var loss = EvaluateClosure(closure);
        var ps = WithGradients();
        PerturbAlongGradient(ps, Rho, Adaptive);
        try
        {
            EvaluateAgain(closure);
        }
        finally
        {
            RestoreAll(ps);
        }
        ApplyGradients();
        return loss;
    }
}
