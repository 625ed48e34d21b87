using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>
/// Exact gradient regularization by double backpropagation: minimises L̃ = L + (γ/2)‖∇L‖² with
/// ∇L̃ = g + γ H g, where g = ∇L comes from a recorded (create-graph) backward pass and H g = ½ ∇‖g‖² from
/// differentiating that pass once more. Costs a forward pass, a recorded backward pass and a backward pass through
/// both; the base optimizer steps with ∇L̃.
/// </summary>
/// <remarks>
/// The closure of <see cref="Step(Func{Tensor})"/> need only run the forward pass and return the loss: this optimizer
/// takes the gradients itself. A closure written for the other optimizers (forward and backward) works too, but its
/// backward pass is wasted work (its gradients are discarded).
/// </remarks>
public sealed class DoubleBackpropGr : MultiGradientOptimizer
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">γ negative or not finite.</exception>
    public DoubleBackpropGr(Optimizer inner, float gamma) : base(inner)
    {
        CheckHyper(gamma, nameof(gamma), 0f, strict: false);
        Gamma = gamma;
    }

    /// <summary>Strength γ of the gradient penalty (γ/2)‖∇L‖².</summary>
    public float Gamma { get; }

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config) => config.Add("gamma", (double)Gamma);

    /// <summary>
    /// ‖∇L‖² at θ in the last step (the penalty is γ/2 times this), 0 before the first. The step keeps it on the
    /// device (so a compiled step has no host read); reading this property copies it to the host.
    /// </summary>
    public double LastGradientNormSquared => lastPenalty == null ? 0 : lastPenalty.Item();

    /// <summary>The last step's ‖∇L‖², on the device of the penalty (made at the first step, and again if the device changes).</summary>
    private Tensor? lastPenalty;

    /// <summary>False: the closure need only run the forward pass (this optimizer runs its own backward passes).</summary>
    public override bool ClosureRunsBackward => false;

    /// <inheritdoc />
    public override Tensor Step(Func<Tensor?> closure)
    {
        ArgumentNullException.ThrowIfNull(closure);
        ZeroGrad();
        var loss = closure()
            ?? throw new InvalidOperationException($"{nameof(DoubleBackpropGr)}: the closure returned no loss (null); it must run the forward pass and return the loss.");
        if (loss.Size != 1)
            throw new InvalidOperationException($"{nameof(DoubleBackpropGr)}: the closure must return a scalar loss, got shape {Shape.Format(loss.Shape)}.");
        if (!loss.RequiresGrad)
            throw new InvalidOperationException($"{nameof(DoubleBackpropGr)}: the loss does not depend on any parameter (it does not require gradients), so it leaves no gradients.");
        ZeroGrad(); // a closure that ran its own backward pass: those gradients are replaced below
        var ps = Parameters.ToList();
        using (var scope = new TensorScope())
        {
            var g = Autograd.Grad(loss, ps, createGraph: true);
            var live = Enumerable.Range(0, ps.Count).Where(i => g[i] != null).ToList();
            if (live.Count == 0)
                throw new InvalidOperationException($"{nameof(DoubleBackpropGr)}: the loss left no gradient on any of the {ps.Count} parameters.");
            Tensor? sum = null;
            using (GradMode.EnableGrad())
            {
                foreach (var i in live)
                {
                    var s = g[i]!.Square().Sum();
                    sum = sum == null ? s : sum + s;
                }
            }
            var penalty = sum!;
            KeepPenalty(penalty);
            // ∇‖g‖² = 2 H g; a gradient constant in θ (a loss linear in the parameters) has none.
            var hg = penalty.RequiresGrad && Gamma != 0f
                ? Autograd.Grad(penalty, live.Select(i => ps[i]).ToList())
                : new Tensor?[live.Count];
            for (int j = 0; j < live.Count; j++)
            {
                var p = ps[live[j]];
                var own = OwnedCopy(g[live[j]]!);
                if (hg[j] != null) InPlace.CombineGradients(own, hg[j]!, 1f, 0.5f * Gamma);
                p.Grad = own;
            }
        }
        ApplyGradients();
        return loss;
    }

    private void KeepPenalty(Tensor penalty)
    {
        if (lastPenalty == null || !ReferenceEquals(lastPenalty.Device, penalty.Device))
        {
            lastPenalty?.Dispose();
            lastPenalty = Tensor.Empty(penalty.Shape, penalty.Device);
            lastPenalty.Persistent = true;
        }
        InPlace.Copy(penalty, lastPenalty);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lastPenalty?.Dispose();
            lastPenalty = null;
        }
        base.Dispose(disposing);
    }
}
