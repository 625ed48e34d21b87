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
}
