using Engine.Autodiff;
using Engine.Data;
using Engine.Nn;

namespace Engine.Training;

/// <summary>Evaluation helpers for classifiers.</summary>
public static class Evaluation
{
    /// <summary>Index of the largest value in each row of a [N, C] array.</summary>
    public static int[] ArgMaxRows(float[] values, int rows, int cols)
    {
        var r = new int[rows];
        for (int i = 0; i < rows; i++)
        {
            int best = 0;
            for (int j = 1; j < cols; j++)
                if (values[i * cols + j] > values[i * cols + best]) best = j;
            r[i] = best;
        }
        return r;
    }

    /// <summary>Mean cross-entropy and accuracy (a fraction) of <paramref name="model"/> on a labelled data set, without recording gradients.</summary>
    public static (double Loss, double Accuracy) Classify(Module model, IDataset data, int batchSize = 512, Kernels.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!data.HasLabels) throw new ArgumentException("evaluate: the data set has no labels.");
        var loader = new DataLoader(data, batchSize, shuffle: false, device: device);
        double lossSum = 0;
        long correct = 0;
        using var _ = GradMode.NoGrad();
        foreach (var batch in loader.NextEpoch())
        {
            using var scope = new TensorScope();
            using (batch)
            {
                var logits = model.Forward(batch.X);
                lossSum += Losses.CrossEntropy(logits, batch.LabelIndex!).Item() * batch.Size;
                int classes = logits.Shape[^1];
                var pred = ArgMaxRows(logits.ToArray(), batch.Size, classes);
                for (int i = 0; i < pred.Length; i++)
                    if (pred[i] == batch.Labels![i]) correct++;
            }
        }
        return (lossSum / data.Count, (double)correct / data.Count);
    }
}
