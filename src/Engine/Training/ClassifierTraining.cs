using Engine.Autodiff;
using Engine.Data;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training;

/// <summary>The training loop of a classifier, one epoch at a time.</summary>
public static class ClassifierTraining
{
    /// <summary>
    /// One pass over <paramref name="loader"/>: for every batch, zero gradients, cross-entropy of the model's logits,
    /// backward, optimizer step, with the batch's temporaries freed by a <see cref="TensorScope"/>.
    /// <paramref name="beforeStep"/> runs before each step (a learning-rate schedule, say). Returns the mean training
    /// loss and accuracy (a fraction) over the epoch.
    /// </summary>
    public static (double Loss, double Accuracy) Epoch(Module model, DataLoader loader, Optimizer optimizer, Action? beforeStep = null)
    {
        double lossSum = 0;
        long correct = 0, seen = 0;
        foreach (var batch in loader.NextEpoch())
        {
            using var scope = new TensorScope();
            using (batch)
            {
                if (batch.LabelIndex == null) throw new ArgumentException("train: the data set has no labels.");
                beforeStep?.Invoke();
                optimizer.ZeroGrad();
                var logits = model.Forward(batch.X);
                var loss = Losses.CrossEntropy(logits, batch.LabelIndex);
                loss.Backward();
                optimizer.Step();
                lossSum += loss.Item() * batch.Size;
                var pred = Evaluation.ArgMaxRows(logits.ToArray(), batch.Size, logits.Shape[^1]);
                for (int i = 0; i < pred.Length; i++)
                    if (pred[i] == batch.Labels![i]) correct++;
                seen += batch.Size;
            }
        }
        return seen == 0 ? (double.NaN, double.NaN) : (lossSum / seen, (double)correct / seen);
    }
}
