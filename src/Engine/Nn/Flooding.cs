using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>
/// Flooding (Ishida et al. 2020) as a loss wrapper: L_b = |L - b| + b. Above the flood level b it is L itself; below
/// it the gradient flips sign, so training ascends back to b instead of driving the training loss to zero. Wrap the
/// mean loss of a batch (not per-example losses): <c>var loss = flooding.Apply(Losses.CrossEntropy(logits, y))</c>.
/// Works with any optimizer, including the closure-based ones.
/// </summary>
public sealed class Flooding
{
    /// <summary>Creates the wrapper with flood level <paramref name="b"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="b"/> negative or not finite.</exception>
    public Flooding(float b)
    {
        if (!(float.IsFinite(b) && b >= 0))
            throw new ArgumentOutOfRangeException(nameof(b), b, $"Flooding: the flood level b must be a finite number >= 0, got {b}.");
        Level = b;
    }

    /// <summary>The flood level b.</summary>
    public float Level { get; }

    /// <summary>|loss - b| + b for a one-element loss.</summary>
    /// <exception cref="ArgumentException">The loss has more than one element.</exception>
    public Tensor Apply(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.Size != 1)
            throw new ArgumentException($"Flooding: expects a scalar loss (the batch mean), got shape {Shape.Format(loss.Shape)}.", nameof(loss));
        return (loss - Level).Abs() + Level;
    }

    /// <summary>A loss function that floods <paramref name="lossFunction"/>'s result.</summary>
    public Func<Tensor> Wrap(Func<Tensor> lossFunction)
    {
        ArgumentNullException.ThrowIfNull(lossFunction);
        return () => Apply(lossFunction());
    }
}
