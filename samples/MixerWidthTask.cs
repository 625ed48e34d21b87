using System.Globalization;
using Engine.Nn;

namespace Engine.Samples;

/// <summary>
/// The `mixer-width` task: at a fixed parameter budget, Mixers with different token/channel splits (S tokens from the
/// patch size, C channels the largest that fits the budget) and their RP twins, trained on optdigits; accuracy
/// against the effective width S·C of the equivalent sparse wide MLP.
/// </summary>
public static class MixerWidthTask
{
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        CommonOptions.Data, CommonOptions.Epochs("8; --quick 1"), CommonOptions.BatchSize("64"), CommonOptions.Seed,
        Opt.Int("seeds", "seeds per configuration (seed, seed + 1, ...): rows report mean and spread", 1, @default: "1"),
        Opt.Int("blocks", "mixer blocks", 1, @default: "2; --quick 1"),
        Opt.Int("budget", "parameter budget of every configuration", 1, @default: "40000; --quick 5000"),
        Opt.Float("token-expansion", "token-mixing hidden width / tokens", 0, minExclusive: true, @default: "1"),
        Opt.Float("channel-expansion", "channel-mixing hidden width / channels", 0, minExclusive: true, @default: "2"),
        Opt.Text("patches", "comma-separated patch sizes from 1, 2, 4, 8", "4,2,1; --quick 4,2"),
        .. OptimizerChoice.Declare("3e-3"),
    ];

    /// <summary>The largest channel count whose Mixer fits in <paramref name="budget"/> parameters (0 if none does).</summary>
    public static int ChannelsForBudget(long budget, int patch, int blocks, Func<int, int> tokenHidden, Func<int, int> channelHidden)
    {
        int tokens = (8 / patch) * (8 / patch);
        int best = 0;
        for (int c = 1; c <= 4096; c++)
        {
            if (Mixer.CountParameters(8, patch, c, blocks, tokenHidden(tokens), channelHidden(c)) > budget) break;
            best = c;
        }
        return best;
    }

    /// <summary>Runs the task; returns the metrics written to mixer-width.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        int epochs = o.Int("epochs", quick ? 1 : 8);
        int batchSize = o.Int("batch-size", 64);
        int seed = o.Int("seed", 1);
        // Each configuration trains with seeds seed, seed + 1, ...: one seed cannot tell configurations a few tenths of a
        // percent apart, so the rows report the mean and the sample standard deviation over the seeds.
        int seeds = o.Int("seeds", 1);
        if (seeds < 1) throw new ArgumentException($"mixer-width: --seeds must be at least 1, got {seeds}.");
        var optimizer = OptimizerChoice.Parse(o, 3e-3f, "mixer-width");
        float lr = optimizer.LearningRate;
        int blocks = o.Int("blocks", quick ? 1 : 2);
        long budget = o.Int("budget", quick ? 5000 : 40000);
        float tokenExpansion = o.Float("token-expansion", 1f);
        float channelExpansion = o.Float("channel-expansion", 2f);
        var patches = o.Get("patches", quick ? "4,2" : "4,2,1").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v is 1 or 2 or 4 or 8
                ? v : throw new ArgumentException($"mixer-width: --patches takes patch sizes from 1, 2, 4, 8 (comma-separated), got '{p}'."))
            .ToArray();
        int Ht(int s) => Math.Max(1, (int)MathF.Round(tokenExpansion * s));
        int Hc(int c) => Math.Max(1, (int)MathF.Round(channelExpansion * c));
        var (train, test) = MixerTask.LoadData(o);
        log.WriteLine($"mixer-width: budget {budget} parameters, {blocks} blocks, hidden = {tokenExpansion}·S / {channelExpansion}·C, "
            + $"{epochs} epochs, batch {batchSize}, {OptimizerChoice.Describe(optimizer)} (cosine lr), device {device.Name}");

        var rows = new List<Dictionary<string, object>>();
        var curves = new Dictionary<string, double[]>();
        using var progress = ProgressReporter.Create(log);
        foreach (int patch in patches)
        {
            int c = ChannelsForBudget(budget, patch, blocks, Ht, Hc);
            int s = (8 / patch) * (8 / patch);
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
                    using var m = new Mixer(8, patch, c, blocks, Ht(s), Hc(c), 10, random, seed + k, device);
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
        return new Dictionary<string, object>
        {
            ["task"] = "mixer-width",
            ["rows"] = rows,
            ["budget"] = budget,
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
}
