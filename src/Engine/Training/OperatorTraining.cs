using System.Diagnostics;
using Engine.Autodiff;
using Engine.Data;
using Engine.Distributed;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training;

/// <summary>Training and evaluation of neural operators (field in, field out) with the relative L2 error.</summary>
public static class OperatorTraining
{
    /// <summary>The relative L2 error (<see cref="Losses.RelativeL2"/>): the FNO papers' metric and training loss.</summary>
    /// <exception cref="ArgumentException">Shapes differ or there is no batch axis.</exception>
    public static Tensor RelativeL2(Tensor prediction, Tensor target) => Losses.RelativeL2(prediction, target);

    /// <summary>Mean relative L2 error of <paramref name="model"/> on <paramref name="data"/> without recording gradients.</summary>
    public static double Evaluate(Module model, IDataset data, int batchSize = 50, Kernels.Device? device = null)
    {
        var loader = new DataLoader(data, batchSize, shuffle: false, device: device);
        double sum = 0;
        using var _ = GradMode.NoGrad();
        foreach (var batch in loader.NextEpoch())
        {
            using var scope = new TensorScope();
            using (batch) sum += RelativeL2(model.Forward(batch.X), batch.Targets!).Item() * batch.Size;
        }
        return sum / data.Count;
    }

    /// <summary>Per-epoch record of <c>Fit</c>.</summary>
    /// <param name="TrainLoss">Mean training relative L2 over the epoch's batches.</param>
    /// <param name="TestError">Test relative L2 after the epoch.</param>
    /// <param name="LearningRate">Learning rate used in the epoch.</param>
    /// <param name="Seconds">Training time so far (evaluation excluded).</param>
    public sealed record EpochRecord(double TrainLoss, double TestError, double LearningRate, double Seconds);

    /// <summary>
    /// Trains with Adam (L2 weight decay, as the reference) on the relative L2 loss, halving the learning rate every
    /// <paramref name="halveEvery"/> epochs (step schedule, γ = 0.5); evaluates on <paramref name="test"/> after each
    /// epoch. <paramref name="onEpoch"/> receives (epoch, record).
    /// </summary>
    public static List<EpochRecord> Fit(Module model, IDataset train, IDataset test, int epochs, int batchSize, float learningRate,
        float weightDecay, int halveEvery, int seed, Kernels.Device device, Action<int, EpochRecord>? onEpoch = null)
    {
        using var opt = new Adam(model.Parameters(), learningRate, weightDecay: weightDecay);
        return Fit(model, opt, train, test, epochs, batchSize, halveEvery, seed, device, onEpoch);
    }

    /// <summary>
    /// <see cref="Fit(Module, IDataset, IDataset, int, int, float, float, int, int, Kernels.Device, Action{int, EpochRecord}?)"/>
    /// with any optimizer over the model's parameters, SAM and gradient regularization included (each step goes through
    /// <see cref="Optimizer.StepOnLoss"/>; the loss recorded is the first evaluation's, at the unperturbed parameters).
    /// The optimizer's learning rate at the call is the schedule's start. For data-parallel training pass the
    /// <see cref="DistributedDataParallel"/> as the model: each rank then trains on its share of every batch
    /// (<see cref="DistributedSampler"/>) and the training loss is totalled over the ranks.
    /// </summary>
    public static List<EpochRecord> Fit(Module model, Optimizer optimizer, IDataset train, IDataset test, int epochs, int batchSize,
        int halveEvery, int seed, Kernels.Device device, Action<int, EpochRecord>? onEpoch = null)
    {
        float learningRate = optimizer.LearningRate;
        var communicator = (model as DistributedDataParallel)?.Communicator;
        var loader = new DataLoader(train, batchSize, shuffle: true, seed: seed, device: device,
            sampler: communicator == null ? null : new DistributedSampler(communicator));
        var records = new List<EpochRecord>();
        var sw = new Stopwatch();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            optimizer.LearningRate = learningRate * MathF.Pow(0.5f, (epoch - 1) / Math.Max(1, halveEvery));
            sw.Start();
            double sum = 0;
            int count = 0;
            foreach (var batch in loader.NextEpoch())
            {
                using var scope = new TensorScope();
                using (batch)
                {
                    var loss = optimizer.StepOnLoss(() => RelativeL2(model.Forward(batch.X), batch.Targets!));
                    sum += loss.Item() * batch.Size;
                    count += batch.Size;
                }
            }
            sw.Stop();
            if (communicator != null)
            {
                var totals = new[] { sum, count };
                communicator.AllReduce<double>(totals);
                (sum, count) = (totals[0], (int)totals[1]);
            }
            var rec = new EpochRecord(sum / count, Evaluate(model, test, device: device), optimizer.LearningRate, sw.Elapsed.TotalSeconds);
            records.Add(rec);
            onEpoch?.Invoke(epoch, rec);
        }
        return records;
    }
}
