using System.Diagnostics;
using System.Globalization;
using Engine.Data;
using Engine.Nn;
using Engine.Training;

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
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        Opt.Choice("dataset", "images to classify", ["optdigits", "fashion-mnist"], "optdigits"),
        Opt.Text("data", "folder with the data files (fashion-mnist: the four IDX files, gzipped or not)",
            "optdigits: the built-in copy; fashion-mnist: Debian's dataset-fashion-mnist folder"),
        CommonOptions.Epochs("8 (fashion-mnist 3); --quick 2"), CommonOptions.BatchSize("64"), CommonOptions.Seed,
        Opt.Int("seeds", "seeds per configuration (seed, seed + 1, ...): rows report mean and spread", 1, @default: "1"),
        Opt.Int("blocks", "mixer blocks", 1, @default: "2; --quick 1"),
        Opt.Int("budget", "budget of every configuration (see --budget-counts)", 1, @default: "40000 (fashion-mnist 150000); --quick 5000"),
        Opt.Choice("budget-counts", "what the budget counts: weights (biases and LayerNorm gains excluded) or all parameters",
            ["weights", "parameters"], "weights"),
        Opt.Flag("tied-biases", "the textbook Mixer's biases, tied across the other axis (false: one bias per unit of the wide MLP)", "true"),
        Opt.Float("token-expansion", "token-mixing hidden width / tokens", 0, minExclusive: true, @default: "1"),
        Opt.Float("channel-expansion", "channel-mixing hidden width / channels", 0, minExclusive: true, @default: "2"),
        Opt.Text("patches", "comma-separated patch sizes dividing the image side", "4,2,1 (fashion-mnist 14,7,4); --quick 4,2"),
        .. OptimizerChoice.Declare("3e-3"),
        CompiledSteps.Option(),
    ];

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
        bool fashion = o.Get("dataset", "optdigits").ToLowerInvariant() == "fashion-mnist";
        int epochs = o.Int("epochs", quick ? 2 : fashion ? 3 : 8); // quick: 2 epochs put both splits above chance by a wide margin
        int batchSize = o.Int("batch-size", 64);
        int seed = o.Int("seed", 1);
        // Each configuration trains with seeds seed, seed + 1, ...: one seed cannot tell configurations a few tenths of a
        // percent apart, so the rows report the mean and the sample standard deviation over the seeds.
        int seeds = o.Int("seeds", 1);
        var optimizer = OptimizerChoice.Parse(o, 3e-3f, "mixer-width");
        bool compile = CompiledSteps.Requested(o, "mixer-width");
        StepReport? firstStep = null;
        float lr = optimizer.LearningRate;
        int blocks = o.Int("blocks", quick ? 1 : 2);
        // The budget counts weights only (biases and LayerNorm gains excluded) unless --budget-counts parameters, so
        // that per-unit biases, which grow with S·C, do not shrink C at large S.
        string counts = o.Get("budget-counts", "weights").ToLowerInvariant();
        bool weightsOnly = counts == "weights";
        bool tied = !o.Has("tied-biases") || o.Flag("tied-biases");
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
                StepReport? stepReport = null;
                for (int k = 0; k < seeds; k++)
                {
                    using var m = new Mixer(imageSize, patch, c, blocks, Ht(s), Hc(c), 10, random, seed + k, device, tied);
                    string runLabel = seeds == 1 ? label : $"{label} seed {seed + k}";
                    log.WriteLine($"{runLabel}: {m.ParameterCount} parameters, effective width S·C = {s * c}");
                    var r = MixerTask.Train(m, train, test, epochs, batchSize, optimizer, seed + k, device, log, runLabel, progress, compile: compile);
                    stepReport ??= r.Step;
                    firstStep ??= r.Step;
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
                var row = new Dictionary<string, object>
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
                };
                CompiledSteps.AddToRow(row, stepReport!);
                rows.Add(row);
            }
        }
        log.WriteLine($"mixer-width: tokens  channels  width S·C  parameters  variant   test acc (mean ± std over {seeds} seed{(seeds == 1 ? "" : "s")})");
        foreach (var r in rows.OrderBy(r => (int)r["effective_width"]))
            log.WriteLine($"mixer-width: {r["tokens"],6}  {r["channels"],8}  {r["effective_width"],9}  {r["parameters"],10}  "
                + $"{((bool)r["random_permutations"] ? "rp-mixer" : "mixer"),-8}  {(double)r["test_accuracy"]:P2} ± {(double)r["test_accuracy_std"]:P2}");
        var metrics = new Dictionary<string, object>
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
        if (firstStep != null) CompiledSteps.AddForRows(metrics, firstStep, rows);
        return metrics;
    }
}
