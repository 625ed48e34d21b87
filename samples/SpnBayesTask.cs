using Engine.Data;
using Engine.Spn;

namespace Engine.Samples;

/// <summary>
/// `spn --method bayes` (the top-down sampler of Yokoi and Sato), `--method gibbs` (the bottom-up Gibbs baseline in
/// the style of Trapp et al.), or a comma list of them and of adam / em: every method runs on the same region
/// graph and data, so speed and log-likelihood compare within one run. Writes per-method results, the per-sweep
/// speed ratio, and one plot of test log-likelihood against sampler (or training) time.
/// </summary>
public static class SpnBayesTask
{
    private static readonly string[] Methods = ["bayes", "gibbs", "adam", "em"];

    /// <summary>True when <paramref name="method"/> (a comma list) names a Bayesian sampler.</summary>
    public static bool Handles(string method) => method.Split(',').Any(m => m.Trim() is "bayes" or "gibbs");

    /// <summary>Runs the methods; returns the metrics written to spn.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        var methods = o.Get("method", "bayes").Split(',').Select(m => m.Trim()).ToArray();
        foreach (var m in methods)
            if (!Methods.Contains(m)) throw new ArgumentException($"spn: unknown method '{m}' in --method (bayes, gibbs, adam, em, or a comma list of them).");
        if (methods.Distinct().Count() != methods.Length) throw new ArgumentException($"spn: --method '{o.Get("method", "")}' names a method twice.");
        string dataset = o.Get("dataset", "nltcs");
        var (train, valid, test) = DensityData.LoadSplits(dataset, o.Has("data") ? o.Get("data", "") : null);
        if (quick)
        {
            train = SpnTask.Head(train, 2000);
            valid = SpnTask.Head(valid, 500);
            test = SpnTask.Head(test, 500);
        }
        int maxDepth = (int)Math.Floor(Math.Log2(train.Columns));
        int depth = o.Int("depth", Math.Min(3, maxDepth));
        int reps = o.Int("repetitions", quick ? 4 : 10);
        int leaves = o.Int("leaves", quick ? 4 : 10);
        int sums = o.Int("sums", quick ? 4 : 10);
        int seed = o.Int("seed", 1);
        var empiricalBayes = new EmpiricalBayesOptions { Iterations = o.Int("eb-iterations", 5), LeavesPerVariable = o.Int("eb-leaves", 16) };
        // The top-down sampler's sweeps are cheap, so by default it runs more of them; --burn-in etc. set both
        // samplers, --bayes-burn-in / --gibbs-burn-in etc. one of them.
        int Setting(string method, string name, int bayes, int gibbs, int quickValue) =>
            o.Int($"{method}-{name}", o.Int(name, quick ? quickValue : method == "bayes" ? bayes : gibbs));
        BayesianSpnRunOptions RunOptions(string method) => new()
        {
            BurnIn = Setting(method, "burn-in", 300, 100, 10),
            Thinning = Setting(method, "thinning", 5, 5, 2),
            Samples = Setting(method, "samples", 40, 20, 5),
            EvaluateEvery = Setting(method, "eval-every", 10, 10, 2),
            EmpiricalBayes = Bool(o, "empirical-bayes", true),
            EmpiricalBayesEvery = o.Int("eb-every", 1),
            EmpiricalBayesOptions = empiricalBayes,
            Seed = seed,
            Log = log,
        };
        double alpha = o.Float("alpha", 1f), leafPrior = o.Float("leaf-prior", 0.5f);
        int passes = o.Int("passes", 1), threads = o.Int("threads", 1), gibbsBatch = o.Int("gibbs-batch", 1024);
        // Every setting is checked here, before any model is built or any sweep runs.
        foreach (var method in methods.Where(m => m is "bayes" or "gibbs")) RunOptions(method).Validate();
        if (!(alpha > 0) || double.IsInfinity(alpha)) throw new ArgumentOutOfRangeException("alpha", $"spn: --alpha must be a positive finite number, got {alpha}.");
        if (!(leafPrior > 0) || double.IsInfinity(leafPrior)) throw new ArgumentOutOfRangeException("leaf-prior", $"spn: --leaf-prior must be a positive finite number, got {leafPrior}.");
        if (passes < 1) throw new ArgumentOutOfRangeException("passes", $"spn: --passes must be >= 1, got {passes}.");
        var moves = o.Get("moves", "every-subtree") switch
        {
            "every-subtree" => TopDownMoves.EverySubtree,
            "whole-tree" => TopDownMoves.WholeTree,
            var other => throw new ArgumentException($"spn: unknown --moves '{other}' (every-subtree, whole-tree)."),
        };
        if (threads < 1 || threads > train.Rows) throw new ArgumentOutOfRangeException("threads", $"spn: --threads must be in [1, {train.Rows}], got {threads}.");
        if (gibbsBatch < 1) throw new ArgumentOutOfRangeException("gibbs-batch", $"spn: --gibbs-batch must be >= 1, got {gibbsBatch}.");

        var graph = RegionGraph.RandomBinary(train.Columns, depth, reps, seed);
        log.WriteLine($"spn: {dataset} ({train.Columns} variables; {train.Rows} train / {valid.Rows} valid / {test.Rows} test), device {device.Name}");
        log.WriteLine($"spn: depth {depth}, {reps} repetitions, I = {leaves}, S = {sums}; methods {string.Join(", ", methods)}");
        var runs = new Dictionary<string, object>();
        var wallSeries = new List<(string, double[], double[])>();
        var cpuSeries = new List<(string, double[], double[])>();
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
                wallSeries.Add(($"{method} ({sampler.Name})", r.CurveSeconds.Select(Math.Log10).ToArray(), r.CurveTestLogLikelihood));
                cpuSeries.Add(($"{method} ({sampler.Name})", r.CurveCpuSeconds.Select(Math.Log10).ToArray(), r.CurveTestLogLikelihood));
            }
            else
            {
                result = TrainMaximumLikelihood(method, network, train, valid, test, o, quick, seed, log);
                wallSeries.Add(($"{method} (final)", [Math.Log10((double)result["train_seconds"])], [(double)result["test_loglik"]]));
                cpuSeries.Add(($"{method} (final)", [Math.Log10((double)result["train_cpu_seconds"])], [(double)result["test_loglik"]]));
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
        var outDir = o.Get("out", "out");
        // Wall time is what a user waits; processor time is what the work costs, and it stays comparable when other
        // jobs share the machine (the top-down sampler uses one thread, the kernels and the baseline's draws all cores).
        string plot = Path.Combine(outDir, $"spn-{dataset}-loglik-vs-time.png");
        TaskReport.PlotSeries(plot, $"{dataset}: test log-likelihood against wall time", "log10 wall seconds (sampling or training)", "test log-likelihood per datum (nats)", wallSeries);
        string cpuPlot = Path.Combine(outDir, $"spn-{dataset}-loglik-vs-cpu.png");
        TaskReport.PlotSeries(cpuPlot, $"{dataset}: test log-likelihood against processor time", "log10 processor seconds, all threads (sampling or training)", "test log-likelihood per datum (nats)", cpuSeries);
        log.WriteLine($"spn: wrote {plot} and {cpuPlot}");
        metrics["plot"] = plot;
        metrics["cpu_plot"] = cpuPlot;
        return metrics;
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
        DensityData test, Options o, bool quick, int seed, TextWriter log)
    {
        network.InitializeLeavesFromData(train.Values, seed: seed);
        var options = new SpnTrainingOptions
        {
            Epochs = o.Int("epochs", quick ? 2 : 30), BatchSize = o.Int("batch-size", 100), LearningRate = o.Float("lr", 0.02f),
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

    private static bool Bool(Options o, string name, bool fallback)
    {
        var v = o.Get(name, fallback ? "true" : "false");
        return v.ToLowerInvariant() switch
        {
            "true" => true,
            "false" => false,
            _ => throw new ArgumentException($"--{name}: '{v}' is not true or false."),
        };
    }
}
