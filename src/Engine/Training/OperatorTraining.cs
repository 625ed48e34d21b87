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
    /// (<see cref="DistributedSampler"/>) and the training loss is totalled over the ranks. <paramref name="step"/>, when
    /// given, runs each step: one built from <see cref="Step"/> over the same model and optimizer (compiled, say); by
    /// default an eager one.
    /// </summary>
    public static List<EpochRecord> Fit(Module model, Optimizer optimizer, IDataset train, IDataset test, int epochs, int batchSize,
        int halveEvery, int seed, Kernels.Device device, Action<int, EpochRecord>? onEpoch = null, TrainingStep? step = null)
    {
        using var run = new Run(model, optimizer, train, test, batchSize, seed, device, step);
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            // Trained before the callback is looked at: `onEpoch?.Invoke(e, run.Epoch(e))` would skip the epoch itself
            // when there is no callback.
            var record = run.Epoch(epoch, halveEvery);
            onEpoch?.Invoke(epoch, record);
        }
        return run.Records;
    }

    /// <summary>The epoch count and halving interval a time-budgeted run (<see cref="FitForTime"/>) settled on.</summary>
    /// <param name="PlannedEpochs">Epochs that fit in the budget at the first epoch's pace.</param>
    /// <param name="HalveEvery">Epochs between halvings of the learning rate.</param>
    public sealed record TimedPlan(int PlannedEpochs, int HalveEvery);

    /// <summary>
    /// As <see cref="Fit(Module, Optimizer, IDataset, IDataset, int, int, int, int, Kernels.Device, Action{int, EpochRecord}?, TrainingStep?)"/>
    /// for as many epochs as fit in <paramref name="seconds"/> of training: the first epoch's time t1 fixes the plan,
    /// E = max(1, ⌊seconds / t1⌋) epochs with the learning rate halved every max(1, ⌊E / <paramref name="halvings"/>⌋)
    /// (the FNO paper: 500 epochs, halved every 50, i.e. 10 intervals), and the run also stops once the training time
    /// passes the budget (the machine's pace can change). Returns the records and the plan. <paramref name="step"/> as in
    /// <see cref="Fit(Module, Optimizer, IDataset, IDataset, int, int, int, int, Kernels.Device, Action{int, EpochRecord}?, TrainingStep?)"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The budget or the number of halvings is not positive.</exception>
    public static (List<EpochRecord> Records, TimedPlan Plan) FitForTime(Module model, Optimizer optimizer, IDataset train, IDataset test,
        double seconds, int halvings, int batchSize, int seed, Kernels.Device device, Action<int, EpochRecord>? onEpoch = null, TrainingStep? step = null)
    {
        if (!(seconds > 0) || halvings < 1)
            throw new ArgumentOutOfRangeException(nameof(seconds), $"OperatorTraining.FitForTime: need a positive budget and halvings >= 1; got {seconds} s, {halvings}.");
        using var run = new Run(model, optimizer, train, test, batchSize, seed, device, step);
        var first = run.Epoch(1, int.MaxValue);
        onEpoch?.Invoke(1, first);
        // Data-parallel ranks must run the same epochs: they plan from the slowest rank's first epoch and stop by the
        // plan alone (a per-rank clock could stop one rank while the others wait in an all-reduce).
        double firstSeconds = first.Seconds;
        var communicator = run.Communicator;
        if (communicator != null)
        {
            Span<double> slowest = [firstSeconds];
            communicator.AllReduce(slowest, ReduceOperation.Max);
            firstSeconds = slowest[0];
        }
        int planned = Math.Max(1, (int)Math.Floor(seconds / Math.Max(firstSeconds, 1e-9)));
        var plan = new TimedPlan(planned, Math.Max(1, planned / halvings));
        for (int epoch = 2; epoch <= planned && (communicator != null || run.Records[^1].Seconds < seconds); epoch++)
        {
            var record = run.Epoch(epoch, plan.HalveEvery);
            onEpoch?.Invoke(epoch, record);
        }
        return (run.Records, plan);
    }

    /// <summary>
    /// One optimizer step of <paramref name="model"/> on a batch (inputs, targets) on the relative L2 loss, as
    /// <c>Fit</c> takes it, for <see cref="TrainingStep.Create{TLabels}"/>: returns the loss at the parameters before
    /// the step.
    /// </summary>
    public static Func<Tensor, Tensor, Tensor> Step(Module model, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        return (x, targets) => optimizer.StepOnLoss(() => RelativeL2(model.Forward(x), targets));
    }

    /// <summary>One training run's state: the loader, the starting learning rate, the step, the clock and the records.</summary>
    private sealed class Run(Module model, Optimizer optimizer, IDataset train, IDataset test, int batchSize, int seed, Kernels.Device device,
        TrainingStep? given) : IDisposable
    {
        private readonly TrainingStep? owned = given == null ? TrainingStep.Create(Step(model, optimizer), compile: false) : null;
        private readonly float learningRate = optimizer.LearningRate;
        private readonly DataLoader loader = new(train, batchSize, shuffle: true, seed: seed, device: device,
            sampler: (model as DistributedDataParallel)?.Communicator is { } c ? new DistributedSampler(c) : null);
        private readonly Stopwatch clock = new();

        /// <summary>The ranks when the model is a <see cref="DistributedDataParallel"/>, else null.</summary>
        public Communicator? Communicator { get; } = (model as DistributedDataParallel)?.Communicator;

        public List<EpochRecord> Records { get; } = new();

        /// <summary>Trains epoch <paramref name="epoch"/> (from 1) at the step schedule's rate, then evaluates.</summary>
        public EpochRecord Epoch(int epoch, int halveEvery)
        {
            optimizer.LearningRate = learningRate * MathF.Pow(0.5f, (epoch - 1) / Math.Max(1, halveEvery));
            clock.Start();
            double sum = 0;
            int count = 0;
            foreach (var batch in loader.NextEpoch())
            {
                using var scope = new TensorScope();
                using (batch)
                {
                    sum += (given ?? owned!).Run(batch.X, batch.Targets!).Item() * batch.Size;
                    count += batch.Size;
                }
            }
            clock.Stop();
            if (Communicator != null)
            {
                var totals = new[] { sum, count };
                Communicator.AllReduce<double>(totals);
                (sum, count) = (totals[0], (int)totals[1]);
            }
            var rec = new EpochRecord(sum / count, Evaluate(model, test, device: device), optimizer.LearningRate, clock.Elapsed.TotalSeconds);
            Records.Add(rec);
            return rec;
        }

        public void Dispose() => owned?.Dispose();
    }
}
