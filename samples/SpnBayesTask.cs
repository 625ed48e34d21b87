using Engine.Data;
using Engine.Spn;

namespace Engine.Samples;

/// <summary>
/// `spn --method bayes` (the top-down sampler of Yokoi and Sato), `--method gibbs` (the bottom-up Gibbs baseline in
/// the style of Trapp et al.), or a comma list of them and of adam / em: every method runs on the same region
/// graph and data, so speed and log-likelihood compare within one run. Returns per-method results and the per-sweep
/// speed ratio; <see cref="Figures"/> plots test log-likelihood against sampler (or training) time.
/// </summary>
public static class SpnBayesTask
{
    /// <summary>
    /// The sampler settings: each of --burn-in, --thinning, --samples, --eval-every sets both samplers, and its
    /// --bayes- or --gibbs- twin one of them (the top-down sampler's sweeps are cheap, so by default it runs more).
    /// </summary>
    private static readonly (string Name, string Help, int Min, int Bayes, int Gibbs, int Quick)[] SweepSettings =
    [
        ("burn-in", "sweeps before the first retained sample", 0, 300, 100, 10),
        ("thinning", "sweeps between retained samples", 1, 5, 5, 2),
        ("samples", "retained posterior samples M, whose densities the prediction averages", 1, 40, 20, 5),
        ("eval-every", "sweeps between points of the log-likelihood curve", 1, 10, 10, 2),
    ];

    /// <summary>The options of the Bayesian methods (the `spn` task declares them beside its own).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        .. SweepSettings.SelectMany(s => new[]
        {
            Opt.Int(s.Name, $"{s.Help}, both samplers", s.Min, @default: $"bayes {s.Bayes}, gibbs {s.Gibbs}; --quick {s.Quick}"),
            Opt.Int($"bayes-{s.Name}", $"{s.Help}, top-down sampler", s.Min, @default: $"--{s.Name}"),
            Opt.Int($"gibbs-{s.Name}", $"{s.Help}, bottom-up Gibbs sampler", s.Min, @default: $"--{s.Name}"),
        }),
        Opt.Float("sum-prior", "Dirichlet concentration α of every sum node's weights (starting value under empirical Bayes)", 0, minExclusive: true, @default: "1"),
        Opt.Float("leaf-prior", "Beta (Dirichlet) concentration of every leaf (starting value under empirical Bayes)", 0, minExclusive: true, @default: "0.5"),
        Opt.Flag("empirical-bayes", "tune the concentrations by empirical Bayes during burn-in", "true"),
        Opt.Int("eb-every", "sweeps between empirical-Bayes updates", 1, @default: "1"),
        Opt.Int("eb-iterations", "fixed-point iterations per empirical-Bayes update", 1, @default: "5"),
        Opt.Int("eb-leaves", "leaves subsampled per variable for the leaf concentrations", 1, @default: "16"),
        Opt.Choice("moves", "top-down moves: one per sum node of the tree, or the whole tree at once", ["every-subtree", "whole-tree"], "every-subtree"),
        Opt.Int("passes", "top-down passes over each datum's moves per sweep", 1, @default: "1"),
        Opt.Int("threads", "top-down sampler threads (data split into blocks; at most the training rows)", 1, @default: "1"),
        Opt.Int("gibbs-batch", "data per batched upward pass of the bottom-up sampler", 1, @default: "1024"),
    ];

    /// <summary>True when <paramref name="method"/> names a Bayesian sampler or several methods (a comma list).</summary>
    public static bool Handles(string method) =>
        method.Contains(',') || method.Trim().ToLowerInvariant() is "bayes" or "gibbs";

    /// <summary>Runs the methods; returns the metrics written to spn.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        var methods = o.Get("method", "bayes").Split(',').Select(m => m.Trim().ToLowerInvariant()).ToArray();
        string dataset = o.Get("dataset", "nltcs");
        var (train, valid, test) = SpnTask.LoadSplits(o, dataset);
        int maxDepth = (int)Math.Floor(Math.Log2(train.Columns));
        int depth = o.Int("depth", Math.Min(3, maxDepth));
        int reps = o.Int("repetitions", quick ? 4 : 10);
        int leaves = o.Int("leaves", quick ? 4 : 10);
        int sums = o.Int("sums", quick ? 4 : 10);
        int seed = o.Int("seed", 1);
        var empiricalBayes = new EmpiricalBayesOptions { Iterations = o.Int("eb-iterations", 5), LeavesPerVariable = o.Int("eb-leaves", 16) };
        int Setting(string method, string name)
        {
            var setting = SweepSettings.Single(x => x.Name == name);
            return o.Int($"{method}-{name}", o.Int(name, quick ? setting.Quick : method == "bayes" ? setting.Bayes : setting.Gibbs));
        }
        BayesianSpnRunOptions RunOptions(string method) => new()
        {
            BurnIn = Setting(method, "burn-in"),
            Thinning = Setting(method, "thinning"),
            Samples = Setting(method, "samples"),
            EvaluateEvery = Setting(method, "eval-every"),
            EmpiricalBayes = !o.Has("empirical-bayes") || o.Flag("empirical-bayes"),
            EmpiricalBayesEvery = o.Int("eb-every", 1),
            EmpiricalBayesOptions = empiricalBayes,
            Seed = seed,
            Log = log,
        };
        // The declarations range-check each value when parsing; what depends on the data is checked here, before any
        // model is built or any sweep runs.
        double alpha = o.Float("sum-prior", 1f), leafPrior = o.Float("leaf-prior", 0.5f);
        int passes = o.Int("passes", 1), threads = o.Int("threads", 1), gibbsBatch = o.Int("gibbs-batch", 1024);
        foreach (var method in methods.Where(m => m is "bayes" or "gibbs")) RunOptions(method).Validate();
        var moves = o.Get("moves", "every-subtree").ToLowerInvariant() == "whole-tree" ? TopDownMoves.WholeTree : TopDownMoves.EverySubtree;
        if (threads > train.Rows) throw new ArgumentOutOfRangeException("threads", $"spn: --threads must be in [1, {train.Rows}] (the training rows), got {threads}.");

        var graph = RegionGraph.RandomBinary(train.Columns, depth, reps, seed);
        log.WriteLine($"spn: {dataset} ({train.Columns} variables; {train.Rows} train / {valid.Rows} valid / {test.Rows} test), device {device.Name}");
        log.WriteLine($"spn: depth {depth}, {reps} repetitions, I = {leaves}, S = {sums}; methods {string.Join(", ", methods)}");
        var runs = new Dictionary<string, object>();
        foreach (var method in methods)
        {
            using var network = new Spn.Spn(graph, leaves, sums, SpnLeafType.Bernoulli, seed: seed, device: device);
            Dictionary<string, object> result;
            if (method is "bayes" or "gibbs")
            {
                var model = new BayesianSpn(network, train, alpha, leafPrior, seed);
                SpnPosteriorSampler sampler = method == "bayes"
                    ? new TopDownSampler(model, seed, passes, threads, moves)
                    : new BottomUpGibbsSampler(model, seed, gibbsBatch);
                var run = RunOptions(method);
                log.WriteLine($"spn: {method}: {sampler.Name} sampler, burn-in {run.BurnIn}, thinning {run.Thinning}, {run.Samples} samples, α = {alpha}, leaf prior {leafPrior}, empirical Bayes {(run.EmpiricalBayes ? "on" : "off")}");
                var r = BayesianSpnTraining.Run(sampler, valid, test, run);
                result = Describe(r);
            }
            else
            {
                result = TrainMaximumLikelihood(method, network, train, valid, test, o, seed, log);
            }
            log.WriteLine($"spn: {dataset} {method}: test {result["test_loglik"]:F4}  valid {result["valid_loglik"]:F4}");
            runs[method] = result;
        }

        var metrics = new Dictionary<string, object>
        {
            ["task"] = "spn",
            ["dataset"] = dataset,
            ["method"] = string.Join(",", methods),
        };
        // The first method's log-likelihoods at the top level, as the maximum-likelihood task reports them.
        var first = (Dictionary<string, object>)runs[methods[0]];
        foreach (var key in new[] { "test_loglik", "valid_loglik" }) metrics[key] = first[key];
        if (runs.TryGetValue("bayes", out var b) && runs.TryGetValue("gibbs", out var g))
        {
            var bayes = (Dictionary<string, object>)b;
            var gibbs = (Dictionary<string, object>)g;
            metrics["speedup_per_sweep"] = (double)gibbs["seconds_per_sweep"] / (double)bayes["seconds_per_sweep"];
            metrics["cpu_speedup_per_sweep"] = (double)gibbs["cpu_seconds_per_sweep"] / (double)bayes["cpu_seconds_per_sweep"];
            metrics["node_visit_ratio"] = (double)gibbs["node_visits_per_datum"] / (double)bayes["node_visits_per_datum"];
            log.WriteLine($"spn: top-down is {metrics["speedup_per_sweep"]:F1}x faster per sweep than bottom-up Gibbs in wall time, {metrics["cpu_speedup_per_sweep"]:F1}x in processor time ({metrics["node_visit_ratio"]:F1}x fewer node visits per datum)");
        }
        metrics["depth"] = depth;
        metrics["repetitions"] = reps;
        metrics["leaves"] = leaves;
        metrics["sums"] = sums;
        metrics["seed"] = seed;
        metrics["quick"] = quick;
        metrics["device"] = device.Name;
        metrics["runs"] = runs;
        return metrics;
    }

    /// <summary>
    /// The figures of a run of the Bayesian methods (none for a maximum-likelihood run): test log-likelihood against
    /// wall time and against processor time, a curve per sampler and the final point of Adam or EM. Wall time is
    /// what a user waits; processor time is what the work costs, and it stays comparable when other jobs share the
    /// machine (the top-down sampler uses one thread, the kernels and the baseline's draws all cores).
    /// </summary>
    public static IEnumerable<Figure> Figures(Dictionary<string, object> metrics)
    {
        if (!metrics.TryGetValue("runs", out var r) || r is not Dictionary<string, object> runs) yield break;
        var dataset = metrics.GetValueOrDefault("dataset") as string ?? "spn";
        Series Against(string method, Dictionary<string, object> run, string curveKey, string finalKey) =>
            run.TryGetValue(curveKey, out var t) && t is double[] seconds
                ? new Series($"{method} ({run["sampler"]})", seconds.Select(Math.Log10).ToArray(), (double[])run["curve_test_loglik"])
                : new Series($"{method} (final)", [Math.Log10((double)run[finalKey])], [(double)run["test_loglik"]]);
        List<Series> All(string curveKey, string finalKey) =>
            runs.Select(kv => Against(kv.Key, (Dictionary<string, object>)kv.Value, curveKey, finalKey)).ToList();
        const string y = "test log-likelihood per datum (nats)";
        yield return new Figure($"{dataset}-loglik-vs-time", $"{dataset}: test LL against wall time",
            "log10 wall seconds of sampling or training", y, All("curve_seconds", "train_seconds"));
        yield return new Figure($"{dataset}-loglik-vs-cpu", $"{dataset}: test LL against processor time",
            "log10 processor seconds (all threads)", y, All("curve_cpu_seconds", "train_cpu_seconds"));
    }

    private static Dictionary<string, object> Describe(BayesianSpnRunResult r) => new()
    {
        ["sampler"] = r.Sampler,
        ["test_loglik"] = r.TestLogLikelihood,
        ["valid_loglik"] = r.ValidLogLikelihood,
        ["test_loglik_averaged_parameters"] = r.TestLogLikelihoodAveragedParameters,
        ["sweeps"] = r.Sweeps,
        ["retained_samples"] = r.Retained,
        ["sampler_seconds"] = r.SamplerSeconds,
        ["seconds_per_sweep"] = r.SecondsPerSweep,
        ["cpu_seconds_per_sweep"] = r.CpuSecondsPerSweep,
        ["node_visits_per_datum"] = r.NodeVisitsPerDatum,
        ["acceptance_rate"] = r.AcceptanceRate,
        ["sum_concentrations"] = r.SumConcentrations,
        ["mean_leaf_concentration"] = r.MeanLeafConcentration,
        ["curve_sweeps"] = r.CurveSweeps,
        ["curve_seconds"] = r.CurveSeconds,
        ["curve_cpu_seconds"] = r.CurveCpuSeconds,
        ["curve_test_loglik"] = r.CurveTestLogLikelihood,
        ["curve_log_joint_per_datum"] = r.CurveLogJoint,
    };

    /// <summary>Adam or EM on the same structure, with the `spn` task's options and defaults.</summary>
    private static Dictionary<string, object> TrainMaximumLikelihood(string method, Spn.Spn network, DensityData train, DensityData valid,
        DensityData test, Options o, int seed, TextWriter log)
    {
        network.InitializeLeavesFromData(train.Values, seed: seed);
        var options = new SpnTrainingOptions
        {
            Epochs = SpnTask.Epochs(o), BatchSize = o.Int("batch-size", 100), LearningRate = o.Float("lr", 0.02f),
            Patience = o.Int("patience", 3), Seed = seed, Log = log,
            EmStepSize = o.Float("em-step", 0.3f), EmPseudoCount = o.Float("em-pseudo-count", 1e-3f),
        };
        double cpu = BayesianSpnTraining.ProcessCpuSeconds();
        var r = method == "adam" ? SpnTraining.TrainAdam(network, train, valid, options) : SpnTraining.TrainEm(network, train, valid, options);
        cpu = BayesianSpnTraining.ProcessCpuSeconds() - cpu;
        return new Dictionary<string, object>
        {
            ["test_loglik"] = SpnTraining.MeanLogLikelihood(network, test),
            ["valid_loglik"] = SpnTraining.MeanLogLikelihood(network, valid),
            ["train_loglik"] = SpnTraining.MeanLogLikelihood(network, train),
            ["train_seconds"] = r.Seconds,
            ["train_cpu_seconds"] = cpu,
            ["epochs_run"] = r.EpochsRun,
            ["best_epoch"] = r.BestEpoch,
        };
    }
}
