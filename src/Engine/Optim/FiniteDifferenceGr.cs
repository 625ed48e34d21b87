using Engine.Autodiff;

namespace Engine.Optim;

/// <summary>Which side <see cref="FiniteDifferenceGr"/> takes its second gradient on.</summary>
public enum FdDirection
{
    /// <summary>Ascent step θ + ε g: ∇L̃ ≈ (1 - γ/ε) g + (γ/ε) ∇L(θ + ε g).</summary>
    Forward,
    /// <summary>Descent step θ - ε g: ∇L̃ ≈ (1 + γ/ε) g - (γ/ε) ∇L(θ - ε g).</summary>
    Backward,
}

/// <summary>
/// Gradient regularization by finite differences (Karakida et al. 2023): minimises L̃ = L + (γ/2)‖∇L‖², whose
/// gradient g + γ H g is approximated from a second gradient at θ ± ε g (no normalisation of g). With the forward
/// direction and ε = γ the step uses exactly ∇L(θ + γ g). Two forward and backward passes per step; the base
/// optimizer steps from the restored θ with the combined gradient.
/// </summary>
public sealed class FiniteDifferenceGr : MultiGradientOptimizer
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">γ negative, ε not positive, or either not finite.</exception>
    public FiniteDifferenceGr(Optimizer inner, float gamma, float epsilon, FdDirection direction = FdDirection.Forward) : base(inner)
    {
        CheckHyper(gamma, nameof(gamma), 0f, strict: false);
        CheckHyper(epsilon, nameof(epsilon), 0f, strict: true);
        if (!Enum.IsDefined(direction)) throw new ArgumentOutOfRangeException(nameof(direction), direction, $"{nameof(FiniteDifferenceGr)}: unknown direction.");
        Gamma = gamma;
        Epsilon = epsilon;
        Direction = direction;
    }

    /// <summary>Strength γ of the gradient penalty (γ/2)‖∇L‖².</summary>
    public float Gamma { get; }

    /// <summary>Finite-difference step ε.</summary>
    public float Epsilon { get; }

    /// <summary>Forward (ascent) or backward (descent) difference.</summary>
    public FdDirection Direction { get; }

    /// <inheritdoc />
    protected override void DescribeConfig(StateDict config)
    {
        config.Add("gamma", (double)Gamma);
        config.Add("epsilon", (double)Epsilon);
        config.Add("direction", Direction == FdDirection.Forward ? "forward" : "backward");
    }

    /// <inheritdoc />
    public override Tensor Step(Func<Tensor?> closure)
    {
        var loss = EvaluateClosure(closure);
        var ps = WithGradients();
        bool forward = Direction == FdDirection.Forward;
        SetPerturbationScale(ps, forward ? Epsilon : -Epsilon);
        PerturbAll(ps, squareParam: false);
        // Keep g(θ) aside: detach it from its parameter so the second evaluation's zero-grad does not free it.
        var first = new Tensor[ps.Count];
        for (int i = 0; i < ps.Count; i++)
        {
            first[i] = ps[i].Grad!;
            ps[i].Grad = null;
        }
        try
        {
            EvaluateAgain(closure);
        }
        catch
        {
            // Leave the parameters as they were before the step, with their gradients at θ.
            for (int i = 0; i < ps.Count; i++)
            {
                ps[i].ZeroGrad();
                ps[i].Grad = first[i];
            }
            throw;
        }
        finally
        {
            RestoreAll(ps);
        }
        float r = (float)((double)Gamma / Epsilon);
        // g = a g(θ) + b g(θ ± ε g), combined in place in the second gradient's buffer.
        float a = forward ? 1f - r : 1f + r, b = forward ? r : -r;
        for (int i = 0; i < ps.Count; i++)
        {
            var p = ps[i];
            var g1 = first[i];
            if (p.Grad == null)
            {
                // No gradient at the moved point: that term is zero.
                var own = g1.IsLeaf && g1.Persistent ? g1 : OwnedCopy(g1);
                InPlace.CombineGradients(own, own, a, 0f);
                p.Grad = own;
                continue;
            }
            InPlace.CombineGradients(OwnedGradient(p), g1, b, a);
            if (g1.Persistent) g1.Dispose();
        }
        ApplyGradients();
        return loss;
    }
}
