using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>Loss functions (mean over the batch).</summary>
public static class Losses
{
    /// <summary>Mean cross-entropy of logits [N, C] against labels in [0, C), fused and numerically stable.</summary>
    public static Tensor CrossEntropy(Tensor logits, int[] labels) => logits.CrossEntropy(labels);

    /// <summary>Mean cross-entropy against labels already held as an <see cref="IndexTensor"/>.</summary>
    public static Tensor CrossEntropy(Tensor logits, IndexTensor labels) => logits.CrossEntropy(labels);

    /// <summary>Mean squared error.</summary>
    public static Tensor Mse(Tensor prediction, Tensor target) => prediction.MseLoss(target);

    /// <summary>
    /// Relative L2 error, the neural-operator papers' metric and loss: the mean over the batch (axis 0) of
    /// ‖prediction_b − target_b‖ / ‖target_b‖, norms over every other axis. Differentiable in the prediction (the
    /// target's norm is a constant); a target with zero norm gives an infinite or NaN loss.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes differ, or there is no axis besides the batch.</exception>
    public static Tensor RelativeL2(Tensor prediction, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (!Shape.Equal(prediction.Shape, target.Shape) || prediction.Rank < 2)
            throw new ArgumentException($"relative_l2: prediction {Shape.Format(prediction.Shape)} and target {Shape.Format(target.Shape)} must have one shape [batch, ...].");
        var axes = Enumerable.Range(1, prediction.Rank - 1).ToArray();
        var err = (prediction - target).Square().Sum(axes).Sqrt();
        var norm = target.Detach().Square().Sum(axes).Sqrt();
        return (err / norm).Mean();
    }
}
