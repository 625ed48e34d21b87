using Engine.Autodiff;
using Engine.Data;
using Engine.Distributed;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training;

/// <summary>The training loop of a classifier, one epoch at a time.</summary>
public static class ClassifierTraining
{
    /// <summary>
    /// One pass over <paramref name="loader"/>: for every batch, one optimizer step on the cross-entropy of the model's
    /// logits (flooded by <paramref name="flooding"/> when given), through <see cref="Optimizer.StepOnLoss"/>, so any
    /// optimizer works: plain ones (SGD, Adam: zero-grad, one forward and backward, update), the closure-based
    /// <see cref="Sam"/> and <see cref="FiniteDifferenceGr"/> (which run the forward and backward pass again at moved
    /// parameters) and <see cref="DoubleBackpropGr"/> (forward only; it takes the gradients itself). The batch's
    /// temporaries are freed by a <see cref="TensorScope"/>. <paramref name="beforeStep"/> runs before each step (a
    /// learning-rate schedule, say). Returns the mean training loss (the plain cross-entropy, not the flooded one, at
    /// the parameters before each step: the first forward pass of the step) and accuracy (a fraction) over the epoch.
    /// For data-parallel training pass the <see cref="DistributedDataParallel"/> as the model and a loader with a
    /// <see cref="DistributedSampler"/>: the loss and accuracy are then totalled over every rank's samples.
    /// </summary>
    public static (double Loss, double Accuracy) Epoch(Module model, DataLoader loader, Optimizer optimizer, Action? beforeStep = null,
        Flooding? flooding = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var step = TrainingStep.Create(Step(model, optimizer, flooding), compile: false);
        return Epoch(model, loader, step, beforeStep);
    }

    /// <summary>
    /// One optimizer step of <paramref name="model"/> on a batch (inputs, labels), as <see cref="Epoch(Module, DataLoader, Optimizer, Action?, Flooding?)"/>
    /// takes it, for <see cref="TrainingStep.Create{TLabels}"/>: returns the step's plain cross-entropy (at the
    /// parameters before the step) followed by its logits, flattened, in one tensor [1 + B·C] (one tensor, so that a
    /// compiled step can return both).
    /// </summary>
    public static Func<Tensor, IndexTensor, Tensor> Step(Module model, Optimizer optimizer, Flooding? flooding = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        return (x, labels) =>
        {
            // The optimizer may evaluate the loss more than once per step; the first call is at the unperturbed
            // parameters, and its logits and loss are what the epoch reports (later calls' tensors are freed by
            // the optimizer's own scope, so only the first ones are kept).
            Tensor? firstLogits = null, firstLoss = null;
            optimizer.StepOnLoss(() =>
            {
                var logits = model.Forward(x);
                var loss = Losses.CrossEntropy(logits, labels);
                if (firstLogits == null)
                {
                    firstLogits = logits;
                    firstLoss = loss;
                }
                return flooding == null ? loss : flooding.Apply(loss);
            });
            using var _ = GradMode.NoGrad();
            return Ops.Cat([firstLoss!.Reshape(1), firstLogits!.Reshape(-1)]);
        };
    }

    /// <summary>
    /// <see cref="Epoch(Module, DataLoader, Optimizer, Action?, Flooding?)"/> with the step given: one built from
    /// <see cref="Step"/> by <see cref="TrainingStep.Create{TLabels}"/>, eager or compiled, and kept across epochs (a
    /// compiled step compiles once). <paramref name="model"/> is the step's model (it decides whether the totals are
    /// summed over data-parallel ranks).
    /// </summary>
    public static (double Loss, double Accuracy) Epoch(Module model, DataLoader loader, TrainingStep step, Action? beforeStep = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentNullException.ThrowIfNull(step);
        double lossSum = 0;
        long correct = 0, seen = 0;
        foreach (var batch in loader.NextEpoch())
        {
            using var scope = new TensorScope();
            using (batch)
            {
                if (batch.LabelIndex == null) throw new ArgumentException("train: the data set has no labels.");
                beforeStep?.Invoke();
                var packed = step.Run(batch.X, batch.LabelIndex).ToArray();
                lossSum += packed[0] * batch.Size;
                int classes = (packed.Length - 1) / batch.Size;
                var pred = Evaluation.ArgMaxRows(packed[1..], batch.Size, classes);
                for (int i = 0; i < pred.Length; i++)
                    if (pred[i] == batch.Labels![i]) correct++;
                seen += batch.Size;
            }
        }
        if (model is DistributedDataParallel ddp)
        {
            var totals = new[] { lossSum, correct, seen };
            ddp.Communicator.AllReduce<double>(totals);
            (lossSum, correct, seen) = (totals[0], (long)totals[1], (long)totals[2]);
        }
        return seen == 0 ? (double.NaN, double.NaN) : (lossSum / seen, (double)correct / seen);
    }
}
