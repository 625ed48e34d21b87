using System.Diagnostics;
using System.Globalization;
using Engine.Data;
using Engine.Nn;

namespace Engine.Samples;

/// <summary>
/// The `mixer-width` task: the hypothesis of Hayase and Karakida ("Understanding MLP-Mixer as a Wide and Sparse MLP",
/// ICML 2024, after Golubeva, Neyshabur and Gur-Ari 2021) that at a fixed number of weights a wider, sparser network
/// does better. Mixers with different token/channel splits (S tokens from the patch size, C channels the largest that
/// fits the budget) and their RP twins are trained on optdigits (quick) or Fashion-MNIST; accuracy against the
/// effective width S·C of the equivalent sparse wide MLP.
/// </summary>
public static class MixerWidthTask
{
    /// <summary>
    /// The largest channel count whose Mixer fits in <paramref name="budget"/> (0 if none does): counting weights only
    /// (<see cref="Mixer.CountWeights"/>) when <paramref name="weightsOnly"/>, else every parameter with biases tied or not.
    /// </summary>
    public static int ChannelsForBudget(long budget, int imageSize, int patch, int blocks, Func<int, int> tokenHidden, Func<int, int> channelHidden,
        bool weightsOnly = false, bool tiedBiases = false)
    {
        int tokens = (imageSize / patch) * (imageSize / patch);
        int best = 0;
        for (int c = 1; c <= 4096; c++)
        {
            long used = weightsOnly
                ? Mixer.CountWeights(imageSize, patch, c, blocks, tokenHidden(tokens), channelHidden(c))
                : Mixer.CountParameters(imageSize, patch, c, blocks, tokenHidden(tokens), channelHidden(c), tiedBiases: tiedBiases);
            if (used > budget) break;
            best = c;
        }
        return best;
    }

    /// <summary>optdigits (8x8) or Fashion-MNIST (28x28, from --data or Debian's folder), standardised per pixel.</summary>
    public static (Dataset Train, Dataset Test, string Name) LoadData(Options o, bool fashion)
    {
        if (!fashion)
        {
            var (tr, te) = MixerTask.LoadData(o);
            return (tr, te, "optdigits");
        }
        var (train, test) = FashionMnist.Load(o.Has("data") ? o.Get("data", "") : null);
        (train, test) = MlpTask.Standardize(train, test);
        return (train, test, "fashion-mnist");
    }

    /// <summary>Runs the task; returns the metrics written to mixer-width.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        var wall = Stopwatch.StartNew();
        string datasetName = o.Get("dataset", "optdigits");
        bool fashion = datasetName switch
        {
            "optdigits" => false,
            "fashion-mnist" => true,
            _ => throw new ArgumentException($"mixer-width: --dataset must be optdigits or fashion-mnist, got '{datasetName}'."),
        };
        int epochs = o.Int("epochs", quick ? 1 : fashion ? 3 : 8);
        int batchSize = o.Int("batch-size", 64);
        int seed = o.Int("seed", 1);
        // Each configuration trains with seeds seed, seed + 1, ...: one seed cannot tell configurations a few tenths of a
        // percent apart, so the rows report the mean and the sample standard deviation over the seeds.
        int seeds = o.Int("seeds", 1);
        if (seeds < 1) throw new ArgumentException($"mixer-width: --seeds must be at least 1, got {seeds}.");
        var optimizer = OptimizerChoice.Parse(o, 3e-3f, "mixer-width");
        float lr = optimizer.LearningRate;
        int blocks = o.Int("blocks", quick ? 1 : 2);
        // The budget counts weights only (biases and LayerNorm gains excluded) unless --budget-counts parameters, so
        // that per-unit biases, which grow with S·C, do not shrink C at large S.
        string counts = o.Get("budget-counts", "weights");
        if (counts is not ("weights" or "parameters"))
            throw new ArgumentException($"mixer-width: --budget-counts must be weights or parameters, got '{counts}'.");
        bool weightsOnly = counts == "weights";
        bool tied = o.Get("tied-biases", "true") != "false";
        long budget = o.Int("budget", quick ? 5000 : fashion ? 150000 : 40000);
        float tokenExpansion = o.Float("token-expansion", 1f);
        float channelExpansion = o.Float("channel-expansion", 2f);
        var (train, test, dataName) = LoadData(o, fashion);
        int imageSize = (int)Math.Round(Math.Sqrt(train.SampleSize));
        var patches = o.Get("patches", quick ? "4,2" : fashion ? "14,7,4" : "4,2,1").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 && imageSize % v == 0
                ? v : throw new ArgumentException($"mixer-width: --patches takes patch sizes dividing the {imageSize}x{imageSize} image (comma-separated), got '{p}'."))
            .ToArray();
        int Ht(int s) => Math.Max(1, (int)MathF.Round(tokenExpansion * s));
        int Hc(int c) => Math.Max(1, (int)MathF.Round(channelExpansion * c));
        log.WriteLine($"mixer-width: {dataName} ({train.Count} train / {test.Count} test, {imageSize}x{imageSize}), budget {budget} {counts}, "
            + $"biases {(tied ? "tied (textbook Mixer)" : "per unit")}, {blocks} blocks, hidden = {tokenExpansion}·S / {channelExpansion}·C, "
            + $"{epochs} epochs, batch {batchSize}, {OptimizerChoice.Describe(optimizer)} (cosine lr), device {device.Name}");

        var rows = new List<Dictionary<string, object>>();
        var curves = new Dictionary<string, double[]>();
        using var progress = ProgressReporter.Create(log);
        foreach (int patch in patches)
        {
            int c = ChannelsForBudget(budget, imageSize, patch, blocks, Ht, Hc, weightsOnly, tied);
            int s = (imageSize / patch) * (imageSize / patch);
            if (c == 0)
            {
                log.WriteLine($"mixer-width: patch {patch} ({s} tokens) does not fit in {budget} parameters even with 1 channel; skipped.");
                continue;
            }
            foreach (bool random in new[] { false, true })
            {
                string label = $"{(random ? "rp-mixer" : "mixer")} S={s} C={c}";
                var accuracies = new List<double>();
                double seconds = 0;
                long parameters = 0;
                for (int k = 0; k < seeds; k++)
                {
                    using var m = new Mixer(imageSize, patch, c, blocks, Ht(s), Hc(c), 10, random, seed + k, device, tied);
                    string runLabel = seeds == 1 ? label : $"{label} seed {seed + k}";
                    log.WriteLine($"{runLabel}: {m.ParameterCount} parameters, effective width S·C = {s * c}");
                    var r = MixerTask.Train(m, train, test, epochs, batchSize, optimizer, seed + k, device, log, runLabel, progress);
                    accuracies.Add(r.TestAccuracy);
                    seconds += r.Seconds;
                    parameters = r.Parameters;
                    if (k == 0)
                    {
                        string key = $"{(random ? "rp-mixer" : "mixer")}_S{s}_C{c}_";
                        curves[key + "test_accuracy"] = r.Curves["test_accuracy"].ToArray();
                        curves[key + "train_loss"] = r.Curves["train_loss"].ToArray();
                    }
                }
                double mean = accuracies.Average();
                double std = seeds == 1 ? 0 : Math.Sqrt(accuracies.Sum(a => (a - mean) * (a - mean)) / (seeds - 1));
                rows.Add(new Dictionary<string, object>
                {
                    ["tokens"] = s,
                    ["channels"] = c,
                    ["patch"] = patch,
                    ["token_hidden"] = Ht(s),
                    ["channel_hidden"] = Hc(c),
                    ["effective_width"] = s * c,
                    ["parameters"] = parameters,
                    ["weights"] = Mixer.CountWeights(imageSize, patch, c, blocks, Ht(s), Hc(c)),
                    ["random_permutations"] = random,
                    ["test_accuracy"] = mean,
                    ["test_accuracy_std"] = std,
                    ["test_accuracies"] = accuracies.ToArray(),
                    ["train_seconds"] = seconds,
                });
            }
        }
        log.WriteLine($"mixer-width: tokens  channels  width S·C  parameters  variant   test acc (mean ± std over {seeds} seed{(seeds == 1 ? "" : "s")})");
        foreach (var r in rows.OrderBy(r => (int)r["effective_width"]))
            log.WriteLine($"mixer-width: {r["tokens"],6}  {r["channels"],8}  {r["effective_width"],9}  {r["parameters"],10}  "
                + $"{((bool)r["random_permutations"] ? "rp-mixer" : "mixer"),-8}  {(double)r["test_accuracy"]:P2} ± {(double)r["test_accuracy_std"]:P2}");
        var figure = Plot(o.Get("out", "out"), rows, dataName, budget, counts, log);
        return new Dictionary<string, object>
        {
            ["task"] = "mixer-width",
            ["hypothesis"] = "Hayase & Karakida (ICML 2024): at a fixed number of weights, accuracy grows with the effective width S·C (wider and sparser)",
            ["dataset"] = dataName,
            ["image_size"] = imageSize,
            ["train_samples"] = train.Count,
            ["test_samples"] = test.Count,
            ["rows"] = rows,
            ["budget"] = budget,
            ["budget_counts"] = counts,
            ["tied_biases"] = tied,
            ["wall_seconds"] = wall.Elapsed.TotalSeconds,
            ["figure"] = figure,
            ["blocks"] = blocks,
            ["token_expansion"] = tokenExpansion,
            ["channel_expansion"] = channelExpansion,
            ["epochs"] = epochs,
            ["batch_size"] = batchSize,
            ["optimizer"] = OptimizerChoice.Describe(optimizer),
            ["learning_rate"] = lr,
            ["seed"] = seed,
            ["seeds"] = seeds,
            ["device"] = device.Name,
            ["curves"] = curves,
        };
    }

    private static string Plot(string outDir, List<Dictionary<string, object>> rows, string dataName, long budget, string counts, TextWriter log)
    {
        var series = new List<PlotSeries>();
        foreach (bool random in new[] { false, true })
        {
            string name = random ? "rp-mixer" : "mixer";
            var mine = rows.Where(r => (bool)r["random_permutations"] == random).OrderBy(r => (int)r["effective_width"]).ToList();
            series.Add(new PlotSeries($"{name} (mean)", mine.Select(r => (double)(int)r["effective_width"]).ToArray(),
                mine.Select(r => (double)r["test_accuracy"]).ToArray()));
            var pts = mine.SelectMany(r => ((double[])r["test_accuracies"]).Select(a => ((double)(int)r["effective_width"], a))).ToArray();
            series.Add(new PlotSeries($"{name} (each seed)", pts.Select(p => p.Item1).ToArray(), pts.Select(p => p.a).ToArray(), Markers: true));
        }
        var path = FigurePlot.Save(Path.Combine(outDir, "mixer-width-accuracy.png"), $"mixer-width: {dataName}, {budget} {counts}",
            "effective width S·C", "test accuracy", series);
        log.WriteLine($"mixer-width: wrote {path}");
        return path;
    }
}
