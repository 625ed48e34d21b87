using System.Diagnostics;
using Engine.Autodiff;
using Engine.Data;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Samples;

/// <summary>
/// The `mixer` task: an MLP-Mixer and its random-permuted twin (RP-Mixer, same parameter count) trained on optdigits
/// with the same settings; reports both test accuracies.
/// </summary>
public static class MixerTask
{
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        CommonOptions.Data, CommonOptions.Epochs("15; --quick 2"), CommonOptions.BatchSize("64"), CommonOptions.Seed,
        Opt.Int("patch", "patch size: 1, 2, 4 or 8 (tokens = (8 / patch)^2)", 1, 8, "2"),
        Opt.Int("channels", "channels per token", 1, @default: "32; --quick 16"),
        Opt.Int("blocks", "mixer blocks", 1, @default: "2; --quick 1"),
        Opt.Int("token-hidden", "hidden width of the token-mixing MLP", 1, @default: "32; --quick 16"),
        Opt.Int("channel-hidden", "hidden width of the channel-mixing MLP", 1, @default: "64; --quick 32"),
        .. OptimizerChoice.Declare("3e-3"),
        DataParallel.Option,
        CompiledSteps.Option(),
    ];

    /// <summary>Outcome of one training run.</summary>
    /// <param name="Step">How the training step ran (eager or compiled, with its device counts).</param>
    public sealed record RunResult(double TestAccuracy, double TestLoss, long Parameters, int Tokens, int Channels, double Seconds, List<object> Curve,
        Dictionary<string, List<double>> Curves, StepReport Step);

    /// <summary>Loads optdigits (standardised per pixel with the training statistics).</summary>
    public static (Dataset Train, Dataset Test) LoadData(Options o)
    {
        var folder = Optdigits.Locate(o.Has("data") ? o.Get("data", "") : null);
        var train = Optdigits.Load(Path.Combine(folder, "optdigits.tra"));
        var test = Optdigits.Load(Path.Combine(folder, "optdigits.tes"));
        return MlpTask.Standardize(train, test);
    }

    /// <summary>
    /// Trains <paramref name="model"/> with the optimizer <paramref name="optimizer"/> describes (see
    /// <see cref="OptimizerChoice"/>; flooded loss when it says so) and a learning rate cosine-decayed from its
    /// learning rate; prints one line per epoch and reports every step to <paramref name="progress"/> (a new piece of
    /// work named <paramref name="label"/>). With <paramref name="compile"/> each training step is compiled (see
    /// <see cref="CompiledSteps"/>).
    /// </summary>
    public static RunResult Train(Mixer model, Dataset train, Dataset test, int epochs, int batchSize, OptimizerSettings optimizer, int seed,
        Kernels.Device device, TextWriter log, string label, ProgressReporter? progress = null, Distributed.Communicator? ranks = null, bool compile = false)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        float lr = optimizer.LearningRate;
        using var opt = OptimizerChoice.Create(optimizer, model.Parameters());
        var flooding = OptimizerChoice.CreateFlooding(optimizer);
        using var replica = DataParallel.Wrap(model, opt, ranks);
        var loader = DataParallel.Loader(train, batchSize, seed, device, ranks);
        using var trainingStep = TrainingStep.Create(ClassifierTraining.Step(replica.Model, opt, flooding), compile, log);
        var curve = new List<object>();
        var curves = MlpTask.NewCurves();
        var sw = Stopwatch.StartNew();
        int steps = epochs * loader.BatchCount, step = 0;
        progress?.Start(label, steps);
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var (trainLoss, trainAcc) = ClassifierTraining.Epoch(replica.Model, loader, trainingStep, () =>
            {
                opt.LearningRate = lr * 0.5f * (1 + MathF.Cos(MathF.PI * step++ / steps));
                progress?.Advance();
            });
            var (testLoss, testAcc) = Evaluation.Classify(model, test, device: device);
            curve.Add(new { epoch, train_loss = trainLoss, train_accuracy = trainAcc, test_loss = testLoss, test_accuracy = testAcc });
            MlpTask.AddEpoch(curves, trainLoss, trainAcc, testLoss, testAcc);
            log.WriteLine($"{label} epoch {epoch,3}  loss {trainLoss:F4}  train acc {trainAcc:P2}  test loss {testLoss:F4}  test acc {testAcc:P2}  ({sw.Elapsed.TotalSeconds:F1} s)");
        }
        var final = Evaluation.Classify(model, test, device: device);
        var report = trainingStep.Report();
        log.WriteLine($"{label}: {CompiledSteps.Describe(report)}");
        return new RunResult(final.Accuracy, final.Loss, model.ParameterCount, model.Tokens, model.Channels, sw.Elapsed.TotalSeconds, curve, curves, report);
    }

    /// <summary>Runs the task; returns the metrics written to mixer.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        // Quick: 4 tokens (4x4 patches) x 32 channels, 3 epochs: above 90 % in a few seconds, so the Mixer and the RP-Mixer
        // can be compared; the default run is 16 tokens x 32 channels, 2 blocks, 15 epochs.
        int epochs = o.Int("epochs", quick ? 3 : 15);
        int batchSize = o.Int("batch-size", 64);
        int seed = o.Int("seed", 1);
        var optimizer = OptimizerChoice.Parse(o, 3e-3f, "mixer");
        float lr = optimizer.LearningRate;
        int patch = o.Int("patch", quick ? 4 : 2);
        int channels = o.Int("channels", 32);
        int blocks = o.Int("blocks", quick ? 1 : 2);
        int tokenHidden = o.Int("token-hidden", quick ? 8 : 32);
        int channelHidden = o.Int("channel-hidden", 64);
        bool compile = CompiledSteps.Requested(o, "mixer");
        if (patch is not (1 or 2 or 4 or 8))
            throw new ArgumentException($"mixer: --patch must divide the 8x8 image (1, 2, 4 or 8), got {patch}.");
        var (train, test) = LoadData(o);
        int tokens = (8 / patch) * (8 / patch);
        log.WriteLine($"mixer: optdigits {train.Count} train / {test.Count} test, device {device.Name}, patch {patch}x{patch} -> {tokens} tokens x {channels} channels, "
            + $"{blocks} blocks, hidden {tokenHidden}/{channelHidden}, {epochs} epochs, batch {batchSize}, {OptimizerChoice.Describe(optimizer)} (cosine lr)");

        using var progress = ProgressReporter.Create(log);
        RunResult One(bool random)
        {
            using var m = new Mixer(8, patch, channels, blocks, tokenHidden, channelHidden, 10, random, seed, device);
            string label = random ? "rp-mixer" : "mixer";
            log.WriteLine($"{label}: {m.ParameterCount} parameters, effective width S·C = {m.EffectiveWidth}");
            var r = Train(m, train, test, epochs, batchSize, optimizer, seed, device, log, label, progress, DataParallel.For(o), compile);
            log.WriteLine($"{label}: final test accuracy {r.TestAccuracy:P2} ({r.Parameters} parameters, {r.Seconds:F1} s)");
            return r;
        }
        var mixer = One(false);
        var rp = One(true);
        var metrics = new Dictionary<string, object>
        {
            ["task"] = "mixer",
            ["test_accuracy"] = mixer.TestAccuracy,
            ["rp_test_accuracy"] = rp.TestAccuracy,
            ["test_loss"] = mixer.TestLoss,
            ["rp_test_loss"] = rp.TestLoss,
            ["parameters"] = mixer.Parameters,
            ["rp_parameters"] = rp.Parameters,
            ["tokens"] = tokens,
            ["channels"] = channels,
            ["effective_width"] = tokens * channels,
            ["patch"] = patch,
            ["blocks"] = blocks,
            ["token_hidden"] = tokenHidden,
            ["channel_hidden"] = channelHidden,
            ["epochs"] = epochs,
            ["batch_size"] = batchSize,
            ["optimizer"] = OptimizerChoice.Describe(optimizer),
            ["learning_rate"] = lr,
            ["seed"] = seed,
            ["device"] = device.Name,
            ["train_seconds"] = mixer.Seconds,
            ["rp_train_seconds"] = rp.Seconds,
            ["curve"] = mixer.Curve,
            ["rp_curve"] = rp.Curve,
            ["curves"] = MlpTask.ToArrays(mixer.Curves).Concat(MlpTask.ToArrays(rp.Curves, "rp_")).ToDictionary(),
        };
        CompiledSteps.Add(metrics, mixer.Step);
        CompiledSteps.Add(metrics, rp.Step, "rp_");
        return metrics;
    }
}
