using Engine.Data;
using Engine.Spn;

namespace Engine.Samples;

/// <summary>
/// The `spn` task: a RAT-SPN-style sum-product network (random binary region graph, Bernoulli leaves) trained on a
/// binary density-estimation set (default nltcs) by Adam or online EM with early stopping on the validation split;
/// prints and writes the mean train/valid/test log-likelihoods (natural log, per sample).
/// </summary>
public static class SpnTask
{
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        Opt.Text("dataset", "binary density set (nltcs, plants, jester, baudio, ...)", "nltcs"),
        CommonOptions.Data, CommonOptions.Epochs("30 (--search 100); --quick 8 (--search 2)"), CommonOptions.BatchSize("100"), CommonOptions.Seed,
        Opt.Int("depth", "region-graph depth", 1, @default: "min(3, log2 variables)"),
        Opt.Int("repetitions", "region-graph repetitions", 1, @default: "10; --quick 4"),
        Opt.Int("leaves", "leaf distributions per region (I)", 1, @default: "10; --quick 4"),
        Opt.Int("sums", "sum nodes per region (S)", 1, @default: "10; --quick 4"),
        Opt.Float("lr", "Adam learning rate", 0, minExclusive: true, @default: "0.02"),
        Opt.Int("patience", "epochs without validation gain before stopping", 1, @default: "3"),
        // A comma list runs several methods on one structure and data (see SpnBayesTask).
        Opt.Choices("method", "training method: adam, em, bayes (top-down posterior sampler), gibbs (bottom-up Gibbs sampler), or a comma list of them", ["adam", "em", "bayes", "gibbs"], "adam"),
        Opt.Choice("init", "leaf initialisation", ["data", "random"], "data"),
        Opt.Float("em-step", "online EM step size", 0, 1, minExclusive: true, @default: "0.3"),
        Opt.Float("em-pseudo-count", "online EM pseudo-count", 0, @default: "1e-3"),
        Opt.Flag("search", "RAT-SPN's protocol: train its generative structure grid and keep the best on validation (--depth, --repetitions, --leaves, --sums, --init unused)"),
        Opt.Float("search-seconds", "wall-time bound of each structure under --search", 0, minExclusive: true, @default: "60; --quick 5"),
        .. SpnBayesTask.OwnOptions,
        DataParallel.Option,
        CompiledSteps.Option("; --method adam only: em, bayes and gibbs are not compiled (EM's update and the samplers run on the host) and refuse it"),
    ];

    /// <summary>Runs the task; returns the metrics written to spn.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool compile = CompiledSteps.Requested(o, "spn");
        if (compile && o.Flag("search"))
            throw new ArgumentException("spn: --compile applies to a single --method adam run, not to --search.");
        if (compile && o.Get("method", "adam").ToLowerInvariant() != "adam")
            throw new ArgumentException($"spn: --compile applies to --method adam only; '{o.Get("method", "adam")}' is not compiled "
                + "(EM's update and the bayes/gibbs samplers run on the host).");
        if (o.Flag("search")) return SpnStructureSearch.Run(o, device, log);
        if (SpnBayesTask.Handles(o.Get("method", "adam"))) return SpnBayesTask.Run(o, device, log);
        bool quick = o.Quick;
        string dataset = o.Get("dataset", "nltcs");
        var (train, valid, test) = LoadSplits(o, dataset);
        int maxDepth = (int)Math.Floor(Math.Log2(train.Columns));
        int depth = o.Int("depth", Math.Min(3, maxDepth));
        int reps = o.Int("repetitions", quick ? 4 : 10);
        int leaves = o.Int("leaves", quick ? 4 : 10);
        int sums = o.Int("sums", quick ? 4 : 10);
        int epochs = Epochs(o);
        int batchSize = o.Int("batch-size", 100);
        float lr = o.Float("lr", 0.02f);
        int patience = o.Int("patience", 3);
        int seed = o.Int("seed", 1);
        // Its own option, not --optimizer: `all --optimizer sam` passes that to every task, and an SPN trains by Adam or EM.
        string method = o.Get("method", "adam").ToLowerInvariant();

        var graph = RegionGraph.RandomBinary(train.Columns, depth, reps, seed);
        using var spn = new Spn.Spn(graph, leaves, sums, SpnLeafType.Bernoulli, seed: seed, device: device);
        string init = o.Get("init", "data").ToLowerInvariant();
        if (init == "data") spn.InitializeLeavesFromData(train.Values, seed: seed);
        else if (init != "random") throw new ArgumentException($"spn: unknown --init '{init}' (data, random).");
        log.WriteLine($"spn: {dataset} ({train.Columns} variables; {train.Rows} train / {valid.Rows} valid / {test.Rows} test), device {device.Name}");
        log.WriteLine($"spn: depth {depth}, {reps} repetitions, I = {leaves}, S = {sums}: {spn.ParameterCount} parameters; leaves from {init}; {method}, batch {batchSize}, up to {epochs} epochs, patience {patience}");
        var options = new SpnTrainingOptions
        {
            Epochs = epochs, BatchSize = batchSize, LearningRate = lr, Patience = patience, Seed = seed, Log = log,
            EmStepSize = o.Float("em-step", 0.3f), EmPseudoCount = o.Float("em-pseudo-count", 1e-3f),
            Communicator = DataParallel.For(o),
            Compile = compile,
        };
        if (options.Communicator != null && method == "em")
            throw new ArgumentException("spn: --distributed trains with --method adam (online EM is not data-parallel).");
        var result = method switch
        {
            "adam" => SpnTraining.TrainAdam(spn, train, valid, options),
            "em" => SpnTraining.TrainEm(spn, train, valid, options),
            _ => throw new ArgumentException($"spn: unknown training method '{method}' (--method adam|em)."),
        };
        double trainLl = SpnTraining.MeanLogLikelihood(spn, train);
        double validLl = SpnTraining.MeanLogLikelihood(spn, valid);
        double testLl = SpnTraining.MeanLogLikelihood(spn, test);
        log.WriteLine($"spn: best epoch {result.BestEpoch} of {result.EpochsRun} ({result.Seconds:F1} s)");
        if (result.Step != null) log.WriteLine($"spn: {CompiledSteps.Describe(result.Step)}");
        log.WriteLine($"spn: {dataset} mean log-likelihood  train {trainLl:F4}  valid {validLl:F4}  test {testLl:F4}");
        var metrics = new Dictionary<string, object>
        {
            ["task"] = "spn",
            ["dataset"] = dataset,
            ["test_loglik"] = testLl,
            ["valid_loglik"] = validLl,
            ["train_loglik"] = trainLl,
            ["parameters"] = spn.ParameterCount,
            ["depth"] = depth,
            ["repetitions"] = reps,
            ["leaves"] = leaves,
            ["sums"] = sums,
            ["method"] = method,
            ["init"] = init,
            ["learning_rate"] = lr,
            ["batch_size"] = batchSize,
            ["epochs_run"] = result.EpochsRun,
            ["best_epoch"] = result.BestEpoch,
            ["seed"] = seed,
            ["quick"] = quick,
            ["device"] = device.Name,
            ["train_seconds"] = result.Seconds,
            ["curves"] = new Dictionary<string, double[]> { ["train_loglik"] = result.TrainCurve, ["valid_loglik"] = result.ValidCurve },
        };
        if (result.Step != null) CompiledSteps.Add(metrics, result.Step);
        return metrics;
    }

    /// <summary>--epochs, or the default: 8 epochs on the --quick slices reach about -6.4 nats on nltcs (2 left -7.4).</summary>
    internal static int Epochs(Options o) => o.Int("epochs", o.Quick ? 8 : 30);

    /// <summary>
    /// The train/valid/test splits of <paramref name="dataset"/> (from --data when given); with --quick a slice of each
    /// (2000 / 500 / 500 rows), which keeps a quick run well under a minute on any of the sets.
    /// </summary>
    internal static (DensityData Train, DensityData Valid, DensityData Test) LoadSplits(Options o, string dataset)
    {
        var (train, valid, test) = DensityData.LoadSplits(dataset, o.Has("data") ? o.Get("data", "") : null);
        return o.Quick ? (Head(train, 2000), Head(valid, 500), Head(test, 500)) : (train, valid, test);
    }

    /// <summary>The first <paramref name="rows"/> rows of <paramref name="d"/> (all of it when shorter).</summary>
    internal static DensityData Head(DensityData d, int rows)
    {
        if (d.Rows <= rows) return d;
        var v = new float[rows * d.Columns];
        Array.Copy(d.Values, v, v.Length);
        return new DensityData(v, d.Columns, d.Name);
    }
}
