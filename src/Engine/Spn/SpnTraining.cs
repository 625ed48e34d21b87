using System.Diagnostics;
using Engine.Autodiff;
using Engine.Data;
using Engine.Distributed;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Spn;

/// <summary>Settings of <see cref="SpnTraining"/>.</summary>
public sealed record SpnTrainingOptions
{
    /// <summary>Upper bound on passes over the training set.</summary>
    public int Epochs { get; init; } = 30;
    /// <summary>Samples per step (set it to the training set size, with <see cref="EmStepSize"/> 1, for classic full-batch EM).</summary>
    public int BatchSize { get; init; } = 100;
    /// <summary>Adam's learning rate.</summary>
    public float LearningRate { get; init; } = 0.02f;
    /// <summary>Online EM: new parameters = (1 - η) · old + η · (this batch's M-step); η in (0, 1].</summary>
    public float EmStepSize { get; init; } = 0.3f;
    /// <summary>EM: pseudo-count added to every leaf value count (Laplace smoothing) and, scaled by 1e-3, to every sum weight count.</summary>
    public float EmPseudoCount { get; init; } = 1e-3f;
    /// <summary>Early stopping: stop after this many epochs without a better validation log-likelihood (0: never stop early).</summary>
    public int Patience { get; init; } = 5;
    /// <summary>Shuffling seed.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Wall-time limit in seconds: no new epoch starts once it is used up (0: no limit).</summary>
    public double MaxSeconds { get; init; }
    /// <summary>The clock <see cref="MaxSeconds"/> reads, in seconds since training started (null: a stopwatch); tests set it to stop at a chosen epoch.</summary>
    internal Func<double>? ElapsedSeconds { get; init; }
    /// <summary>Where to print one line per epoch (null: silent).</summary>
    public TextWriter? Log { get; init; }

    /// <summary>
    /// For data-parallel training (Adam only): the ranks to train over. The network is wrapped in a
    /// <see cref="DistributedDataParallel"/>, each rank takes its share of every batch and the training
    /// log-likelihood is totalled over the ranks; validation runs on the whole set on every rank.
    /// </summary>
    public Communicator? Communicator { get; init; }

    /// <summary>
    /// Adam only: run each step (zero-grad, forward, backward, update) through <see cref="Compiler"/> (see
    /// <see cref="TrainingStep"/>); <see cref="SpnTrainingResult.Step"/> reports how it ran. EM is not compiled.
    /// </summary>
    public bool Compile { get; init; }
}

/// <summary>Outcome of a training run; the network holds the parameters of <see cref="BestEpoch"/> afterwards.</summary>
/// <param name="BestValidLogLikelihood">Best mean validation log-likelihood seen (natural log, per sample).</param>
/// <param name="BestEpoch">The epoch (from 1) that reached it.</param>
/// <param name="EpochsRun">Epochs actually run (fewer than asked when early stopping triggered).</param>
/// <param name="TrainCurve">Mean training log-likelihood per epoch (over that epoch's batches, as trained).</param>
/// <param name="ValidCurve">Mean validation log-likelihood after each epoch.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record SpnTrainingResult(double BestValidLogLikelihood, int BestEpoch, int EpochsRun, double[] TrainCurve, double[] ValidCurve, double Seconds)
{
    /// <summary>How Adam's training step ran (eager or compiled, with its device counts); null for EM.</summary>
    public StepReport? Step { get; init; }

    /// <summary>
    /// True when <see cref="SpnTrainingOptions.MaxSeconds"/> ended training: neither the epoch limit nor early stopping
    /// would have ended it after the last epoch run (early stopping takes precedence when both apply to that epoch).
    /// </summary>
    public bool StoppedByTime { get; init; }
}

/// <summary>
/// Training of an <see cref="Spn"/> by maximum likelihood: gradient descent (Adam on the mean negative
/// log-likelihood) or expectation-maximisation, both minibatched, with early stopping on a validation split (the best
/// epoch's parameters are restored at the end).
/// </summary>
/// <remarks>
/// EM uses the gradients of the log-likelihood: for a sum node with normalised weights w, the expected counts of its
/// children are w ⊙ ∂LL/∂w = ∂LL/∂(log w), and for a leaf table of log-probabilities the gradient with respect to
/// the table is the posterior-weighted count of each observed value. So one backward pass from Σ log p(x) through
/// the network with the log weights and the leaf tables as leaves yields every sufficient statistic; the M-step
/// normalises them (Gaussian leaves: posterior-weighted mean and variance, recovered from the gradients with respect
/// to mean and log-std plus the posterior mass). Online EM blends each batch's M-step into the parameters with step
/// size η.
/// </remarks>
public static class SpnTraining
{
    /// <summary>Mean log-likelihood per sample of <paramref name="data"/> (natural log), evaluated in batches without gradients.</summary>
    public static double MeanLogLikelihood(Spn spn, DensityData data, int batchSize = 1024)
    {
        ArgumentNullException.ThrowIfNull(spn);
        ArgumentNullException.ThrowIfNull(data);
        int max = CheckData(spn, data, "MeanLogLikelihood");
        using var _ = GradMode.NoGrad();
        double total = 0;
        for (int start = 0; start < data.Rows; start += batchSize)
        {
            using var scope = new TensorScope();
            int n = Math.Min(batchSize, data.Rows - start);
            var x = Batch(spn, data, start, n, null, max);
            foreach (var v in spn.LogLikelihood(x).ToArray()) total += v;
        }
        return total / data.Rows;
    }

    /// <summary>Adam on the mean negative log-likelihood, with early stopping on <paramref name="valid"/>.</summary>
    public static SpnTrainingResult TrainAdam(Spn spn, DensityData train, DensityData valid, SpnTrainingOptions? options = null)
    {
        options ??= new SpnTrainingOptions();
        if (options.Compile && options.Communicator != null)
            throw new ArgumentException("SpnTraining.TrainAdam: Compile and a Communicator together are not supported (the data-parallel all-reduce is not captured).");
        using var opt = new Adam(spn.Parameters(), options.LearningRate);
        using var ddp = options.Communicator == null ? null : new DistributedDataParallel(spn, options.Communicator);
        Module model = (Module?)ddp ?? spn;
        using var step = TrainingStep.Create(x =>
        {
            var ll = model.Forward(x);
            var loss = -ll.Mean();
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
            return ll;
        }, options.Compile, options.Log);
        var result = Run(spn, train, valid, options, "adam", x => step.Run(x).ToArray().Sum(v => (double)v));
        return result with { Step = step.Report() };
    }

    /// <summary>Online (minibatch) EM with step size <see cref="SpnTrainingOptions.EmStepSize"/>, with early stopping on <paramref name="valid"/>.</summary>
    public static SpnTrainingResult TrainEm(Spn spn, DensityData train, DensityData valid, SpnTrainingOptions? options = null)
    {
        options ??= new SpnTrainingOptions();
        if (options.Communicator != null)
            throw new NotSupportedException("SpnTraining.TrainEm: EM is not data-parallel; train with Adam (TrainAdam) across ranks.");
        if (options.Compile)
            throw new NotSupportedException("SpnTraining.TrainEm: EM steps are not compiled (SpnTrainingOptions.Compile applies to TrainAdam).");
        if (!(options.EmStepSize > 0 && options.EmStepSize <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"SpnTraining.TrainEm: step size must be in (0, 1], got {options.EmStepSize}.");
        return Run(spn, train, valid, options, "em", x => spn.EmStep(x, options.EmStepSize, options.EmPseudoCount));
    }

    private static SpnTrainingResult Run(Spn spn, DensityData train, DensityData valid, SpnTrainingOptions o, string method, Func<Tensor, double> step)
    {
        ArgumentNullException.ThrowIfNull(spn);
        int max = CheckData(spn, train, "train");
        CheckData(spn, valid, "train (validation split)");
        if (o.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(o), $"SpnTraining: epochs must be >= 1, got {o.Epochs}.");
        if (o.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(o), $"SpnTraining: batch size must be >= 1, got {o.BatchSize}.");
        var sw = Stopwatch.StartNew();
        var rng = new Random(o.Seed);
        var order = Enumerable.Range(0, train.Rows).ToArray();
        var trainCurve = new List<double>();
        var validCurve = new List<double>();
        double best = double.NegativeInfinity;
        int bestEpoch = 0;
        float[][]? snapshot = null;
        var parameters = spn.Parameters();
        var elapsed = o.ElapsedSeconds ?? (() => sw.Elapsed.TotalSeconds);
        bool stoppedByTime = false;
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            rng.Shuffle(order);
            double sum = 0;
            var share = o.Communicator == null ? null : new DistributedSampler(o.Communicator);
            for (int start = 0; start < train.Rows; start += o.BatchSize)
            {
                using var scope = new TensorScope();
                int first = start, n = Math.Min(o.BatchSize, train.Rows - start);
                if (share != null)
                {
                    (int offset, n) = share.Share(n);
                    if (n == 0) break;
                    first += offset;
                }
                sum += step(Batch(spn, train, first, n, order, max));
            }
            if (o.Communicator != null)
            {
                var total = new[] { sum };
                o.Communicator.AllReduce<double>(total);
                sum = total[0];
            }
            double tr = sum / train.Rows;
            double va = MeanLogLikelihood(spn, valid);
            trainCurve.Add(tr);
            validCurve.Add(va);
            bool improved = va > best;
            if (improved)
            {
                best = va;
                bestEpoch = epoch;
                snapshot = parameters.Select(p => p.ToArray()).ToArray();
            }
            o.Log?.WriteLine($"epoch {epoch,3}  {method}  train LL {tr:F4}  valid LL {va:F4}{(improved ? "  *" : "")}  ({sw.Elapsed.TotalSeconds:F1} s)");
            if (o.Patience > 0 && epoch - bestEpoch >= o.Patience) break;
            if (o.MaxSeconds > 0 && elapsed() >= o.MaxSeconds)
            {
                stoppedByTime = epoch < o.Epochs;
                break;
            }
        }
        if (snapshot != null)
            for (int i = 0; i < parameters.Count; i++) parameters[i].CopyFrom(snapshot[i]);
        return new SpnTrainingResult(best, bestEpoch, trainCurve.Count, trainCurve.ToArray(), validCurve.ToArray(), sw.Elapsed.TotalSeconds)
        {
            StoppedByTime = stoppedByTime,
        };
    }

    /// <summary>
    /// Checks <paramref name="data"/> against the network once, where it enters (columns, at least one row, values
    /// in the leaves' support), so no batch of it is checked again; returns the largest category.
    /// </summary>
    private static int CheckData(Spn spn, DensityData data, string op)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Columns != spn.Variables)
            throw new ArgumentException($"SpnTraining.{op}: {Spn.DescribeData(data)} has {data.Columns} columns, the network was built for {spn.Variables} variables.");
        if (data.Rows == 0)
            throw new ArgumentException($"SpnTraining.{op}: {Spn.DescribeData(data)} has no rows.");
        spn.RequireSingleRoot("SpnTraining." + op);
        return spn.CheckValues(data, $"SpnTraining.{op}");
    }

    /// <summary>Rows start .. start + n of the data (through <paramref name="order"/> when given) as a device tensor.</summary>
    private static Tensor Batch(Spn spn, DensityData data, int start, int n, int[]? order, int maxCategory)
    {
        int d = data.Columns;
        var buf = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int row = order == null ? start + i : order[start + i];
            Array.Copy(data.Values, (long)row * d, buf, (long)i * d, d);
        }
        var x = Tensor.FromArray(buf, [n, d], spn.Device);
        // Checked as a whole by CheckData: the leaf layer need not copy the batch back to the host.
        if (spn.LeafType == SpnLeafType.Gaussian) Ops.MarkSpnGaussianDataChecked(x);
        else Ops.MarkSpnCategoricalDataChecked(x, maxCategory);
        return x;
    }
}
