using Engine.Autodiff;
using Engine.Kernels;

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

    private Device? lastDevice;

    /// <summary>
    /// The global gradient norm (‖g‖, or ‖ |θ| ⊙ g ‖ for ASAM) at θ in the last step, 0 before the first. The step keeps
    /// it on the device; reading this property copies it to the host.
    /// </summary>
    public double LastGradientNorm => lastDevice == null ? 0 : Math.Sqrt(SquaredNormOn(lastDevice)!.Read());

    /// <inheritdoc />
    /// <remarks>The norm, the scale ρ / (‖g‖ + 1e-12) and the perturbation are computed on the device: no host read.</remarks>
    public override Tensor Step(Func<Tensor?> closure)
    {
        var loss = EvaluateClosure(closure);
        var ps = WithGradients();
        ComputeSquaredGradientNorm(ps, Adaptive);
        lastDevice = ps[0].Device;
        ScaleFromGradientNorm(ps, Rho);
        PerturbAll(ps, Adaptive);
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
