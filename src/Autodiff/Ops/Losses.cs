namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// Mean cross-entropy of <paramref name="logits"/> [N, C] against integer <paramref name="labels"/> in [0, C),
    /// fused and stable (logsumexp - logit of the label per row, in one kernel). Gradient: (softmax - onehot) / N.
    /// </summary>
    public static Tensor CrossEntropy(this Tensor logits, IndexTensor labels)
    {
        const string op = "cross_entropy";
        logits.CheckAlive(op);
        if (logits.Rank != 2)
            throw new ArgumentException($"{op}: logits must be [batch, classes]; got {logits.Describe()}.");
        int rows = logits.shape[0], classes = logits.shape[1];
        if (labels.Length != rows)
            throw new ArgumentException($"{op}: logits {logits.Describe()} have {rows} rows but there are {labels.Length} labels.");
        if (rows == 0) throw new ArgumentException($"{op}: empty batch {logits.Describe()}.");
        labels.CheckRange(op + " (labels)", classes);
        var lab = labels.On(logits.Device);
        using var perRow = Tensor.Empty([rows], logits.Device, track: false);
        logits.K.CrossEntropy(logits.Buffer, lab, rows, classes, perRow.Buffer);
        var y = Tensor.Empty([], logits.Device);
        logits.K.Reduce(Kernels.ReduceOp.Mean, perRow.Buffer, [rows], [0], y.Buffer);
        return y.Record(op, [logits], g =>
        {
            var onehot = Tensor.Empty([rows, classes], logits.Device);
            logits.K.OneHot(labels.On(logits.Device), rows, classes, onehot.Buffer);
            return [(Softmax(logits, 1) - onehot) * (g * (1f / rows))];
        });
    }

    /// <summary>Cross-entropy with labels given as a host array.</summary>
    public static Tensor CrossEntropy(this Tensor logits, int[] labels)
    {
        // Not disposed here: the backward rule uses the labels again (a disposed IndexTensor re-uploads on demand).
        return CrossEntropy(logits, new IndexTensor(labels));
    }

    /// <summary>Mean squared error mean((prediction - target)²); shapes must match exactly.</summary>
    public static Tensor MseLoss(this Tensor prediction, Tensor target)
    {
        CheckSameDevice("mse_loss", prediction, target);
        if (!Shape.Equal(prediction.shape, target.shape))
            throw new ArgumentException($"mse_loss: prediction {prediction.Describe()} and target {target.Describe()} differ in shape.");
        return Mean(Square(prediction - target));
    }
}
