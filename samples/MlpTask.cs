using System.Diagnostics;
using Engine.Autodiff;
using Engine.Data;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Samples;

/// <summary>The `mlp` task: a 64-256-128-10 ReLU MLP trained on optdigits.</summary>
public static class MlpTask
{
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        CommonOptions.Data, CommonOptions.Epochs("20; --quick 3"), CommonOptions.BatchSize("64"), CommonOptions.Seed,
        Opt.Int("hidden", "width of the first hidden layer (the second is half)", 2, @default: "256"),
        Opt.Flag("standardize", "scale pixels to zero mean, unit variance", "true"),
        .. OptimizerChoice.Declare("1e-3"),
        DataParallel.Option,
        CompiledSteps.Option(),
    ];

    /// <summary>Scales every pixel to zero mean and unit variance using the training set's statistics.</summary>
    public static (Dataset Train, Dataset Test) Standardize(Dataset train, Dataset test)
    {
        int d = train.SampleSize;
        var mean = new double[d];
        var sq = new double[d];
        for (int i = 0; i < train.Features.Length; i++)
        {
            mean[i % d] += train.Features[i];
            sq[i % d] += (double)train.Features[i] * train.Features[i];
        }
        var std = new double[d];
        for (int j = 0; j < d; j++)
        {
            mean[j] /= train.Count;
            std[j] = Math.Sqrt(Math.Max(sq[j] / train.Count - mean[j] * mean[j], 0)) + 1e-3;
        }
        Dataset Apply(Dataset s)
        {
            var f = new float[s.Features.Length];
            for (int i = 0; i < f.Length; i++) f[i] = (float)((s.Features[i] - mean[i % d]) / std[i % d]);
            return new Dataset(f, s.SampleShape, s.Labels);
        }
        return (Apply(train), Apply(test));
    }

    /// <summary>Runs the task (inputs standardised unless --standardize false); returns the metrics written to mlp.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        int epochs = o.Int("epochs", o.Quick ? 3 : 20);
        int batchSize = o.Int("batch-size", 64);
        int seed = o.Int("seed", 1);
        int hidden = o.Int("hidden", 256);
        bool compile = CompiledSteps.Requested(o, "mlp");
        var optSettings = OptimizerChoice.Parse(o, 1e-3f, "mlp");
        float lr = optSettings.LearningRate;
        string optName = OptimizerChoice.Describe(optSettings);
        var folder = Optdigits.Locate(o.Has("data") ? o.Get("data", "") : null);
        var train = Optdigits.Load(Path.Combine(folder, "optdigits.tra"));
        var test = Optdigits.Load(Path.Combine(folder, "optdigits.tes"));
        if (o.Get("standardize", "true") == "true") (train, test) = Standardize(train, test);
        log.WriteLine($"mlp: optdigits {train.Count} train / {test.Count} test, device {device.Name}, {epochs} epochs, batch {batchSize}, {optName}");

        ulong s = (ulong)seed * 1000;
        using var model = new Sequential(
            new Linear(64, hidden, seed: s + 1, device: device), new ReLU(),
            new Linear(hidden, hidden / 2, seed: s + 2, device: device), new ReLU(),
            new Linear(hidden / 2, 10, seed: s + 3, device: device));
        using var opt = OptimizerChoice.Create(optSettings, model.Parameters());
        var flooding = OptimizerChoice.CreateFlooding(optSettings);
        var ranks = DataParallel.For(o);
        using var replica = DataParallel.Wrap(model, opt, ranks);
        var loader = DataParallel.Loader(train, batchSize, seed, device, ranks);
        using var step = TrainingStep.Create(ClassifierTraining.Step(replica.Model, opt, flooding), compile, log);
        var curve = new List<object>();
        var curves = NewCurves();
        using var progress = ProgressReporter.Create(log);
        progress.Start("mlp", (long)epochs * loader.BatchCount);
        var sw = Stopwatch.StartNew();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var (trainLoss, trainAcc) = ClassifierTraining.Epoch(replica.Model, loader, step, () => progress.Advance());
            var (testLoss, testAcc) = Evaluation.Classify(model, test, device: device);
            curve.Add(new { epoch, train_loss = trainLoss, train_accuracy = trainAcc, test_loss = testLoss, test_accuracy = testAcc });
            AddEpoch(curves, trainLoss, trainAcc, testLoss, testAcc);
            log.WriteLine($"epoch {epoch,3}  loss {trainLoss:F4}  train acc {trainAcc:P2}  test loss {testLoss:F4}  test acc {testAcc:P2}");
        }
        var final = Evaluation.Classify(model, test, device: device);
        double seconds = sw.Elapsed.TotalSeconds;
        log.WriteLine($"mlp: final test accuracy {final.Accuracy:P2} ({model.ParameterCount} parameters, {seconds:F1} s)");
        var report = step.Report();
        log.WriteLine($"mlp: {CompiledSteps.Describe(report)}");
        var metrics = new Dictionary<string, object>
        {
            ["task"] = "mlp",
            ["test_accuracy"] = final.Accuracy,
            ["test_loss"] = final.Loss,
            ["parameters"] = model.ParameterCount,
            ["epochs"] = epochs,
            ["batch_size"] = batchSize,
            ["optimizer"] = optName,
            ["learning_rate"] = lr,
            ["seed"] = seed,
            ["device"] = device.Name,
            ["train_seconds"] = seconds,
            ["curve"] = curve,
            ["curves"] = ToArrays(curves),
        };
        CompiledSteps.Add(metrics, report);
        return metrics;
    }

    /// <summary>Empty per-epoch series: train_loss, train_accuracy, test_loss, test_accuracy.</summary>
    public static Dictionary<string, List<double>> NewCurves() => new()
    {
        ["train_loss"] = [], ["train_accuracy"] = [], ["test_loss"] = [], ["test_accuracy"] = [],
    };

    /// <summary>Appends one epoch's numbers to <see cref="NewCurves"/>' series.</summary>
    public static void AddEpoch(Dictionary<string, List<double>> curves, double trainLoss, double trainAcc, double testLoss, double testAcc)
    {
        curves["train_loss"].Add(trainLoss);
        curves["train_accuracy"].Add(trainAcc);
        curves["test_loss"].Add(testLoss);
        curves["test_accuracy"].Add(testAcc);
    }

    /// <summary>The series as the "curves" metric (<c>Dictionary&lt;string, double[]&gt;</c>), names prefixed by <paramref name="prefix"/>.</summary>
    public static Dictionary<string, double[]> ToArrays(Dictionary<string, List<double>> curves, string prefix = "") =>
        curves.ToDictionary(kv => prefix + kv.Key, kv => kv.Value.ToArray());
}
