using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// Mean cross-entropy of <paramref name="logits"/> [N, C] against integer <paramref name="labels"/> in [0, C),
    /// fused and stable (logsumexp - logit of the label per row, in one kernel). Gradient: (softmax - onehot) / N, one
    /// fused kernel where the kernel set has it (<see cref="ILossKernels"/>).
    /// </summary>
    public static Tensor CrossEntropy(this Tensor logits, IndexTensor labels) => CrossEntropy(logits, labels, ownsLabels: false);

    /// <summary>
    /// The loss; with <paramref name="ownsLabels"/> the labels' device copies are freed after the forward kernel and
    /// after each backward pass (they are uploaded again when needed), so nothing outlives the call.
    /// </summary>
    private static Tensor CrossEntropy(Tensor logits, IndexTensor labels, bool ownsLabels)
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
        if (ownsLabels) labels.Dispose();
        return y.Record(op, [logits], g =>
        {
            Tensor d;
            if (!GradMode.IsEnabled)
            {
                d = Tensor.Empty([rows, classes], logits.Device);
                logits.K.LossKernels().CrossEntropyBackward(logits.Buffer, labels.On(logits.Device), rows, classes, g.Buffer, 1f / rows, d.Buffer);
            }
            else
            {
                // Recorded (createGraph): the same gradient in differentiable ops.
                var onehot = Tensor.Empty([rows, classes], logits.Device);
                logits.K.OneHot(labels.On(logits.Device), rows, classes, onehot.Buffer);
                d = (Softmax(logits, 1) - onehot) * (g * (1f / rows));
            }
            if (ownsLabels) labels.Dispose();
            return [d];
        });
    }

    /// <summary>Cross-entropy with labels given as a host array (uploaded for the call and freed after it).</summary>
    public static Tensor CrossEntropy(this Tensor logits, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        // A disposed IndexTensor uploads again on demand: the backward rule gets its copy and frees it.
        return CrossEntropy(logits, new IndexTensor(labels), ownsLabels: true);
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
