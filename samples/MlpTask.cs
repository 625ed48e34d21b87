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
    /// <summary>Runs the task; returns the metrics written to mlp.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        int epochs = o.Int("epochs", 30);
        int batchSize = o.Int("batch-size", 64);
        int seed = o.Int("seed", 1);
        float lr = o.Float("lr", 1e-3f);
        int hidden = o.Int("hidden", 256);
        string optName = o.Get("optimizer", "adam");
        var folder = Optdigits.Locate(o.Has("data") ? o.Get("data", "") : null);
        var train = Optdigits.Load(Path.Combine(folder, "optdigits.tra"));
        var test = Optdigits.Load(Path.Combine(folder, "optdigits.tes"));
        log.WriteLine($"mlp: optdigits {train.Count} train / {test.Count} test, device {device.Name}, {epochs} epochs, batch {batchSize}, {optName} lr {lr}");

        ulong s = (ulong)seed * 1000;
        using var model = new Sequential(
            new Linear(64, hidden, seed: s + 1, device: device), new ReLU(),
            new Linear(hidden, hidden / 2, seed: s + 2, device: device), new ReLU(),
            new Linear(hidden / 2, 10, seed: s + 3, device: device));
        using Optimizer opt = optName switch
        {
            "adam" => new Adam(model.Parameters(), lr),
            "adamw" => new AdamW(model.Parameters(), lr),
            "sgd" => new Sgd(model.Parameters(), lr, momentum: 0.9f, nesterov: true),
            _ => throw new ArgumentException($"mlp: unknown optimizer '{optName}' (sgd, adam, adamw)."),
        };
        var loader = new DataLoader(train, batchSize, shuffle: true, seed: seed, device: device);
        var curve = new List<object>();
        var sw = Stopwatch.StartNew();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            double lossSum = 0;
            long correct = 0;
            foreach (var batch in loader.NextEpoch())
            {
                using var scope = new TensorScope();
                using (batch)
                {
                    opt.ZeroGrad();
                    var logits = model.Forward(batch.X);
                    var loss = Losses.CrossEntropy(logits, batch.LabelIndex!);
                    loss.Backward();
                    opt.Step();
                    lossSum += loss.Item() * batch.Size;
                    var pred = Evaluation.ArgMaxRows(logits.ToArray(), batch.Size, 10);
                    for (int i = 0; i < pred.Length; i++) if (pred[i] == batch.Labels![i]) correct++;
                }
            }
            double trainLoss = lossSum / train.Count, trainAcc = (double)correct / train.Count;
            var (testLoss, testAcc) = Evaluation.Classify(model, test, device: device);
            curve.Add(new { epoch, train_loss = trainLoss, train_accuracy = trainAcc, test_loss = testLoss, test_accuracy = testAcc });
            log.WriteLine($"epoch {epoch,3}  loss {trainLoss:F4}  train acc {trainAcc:P2}  test loss {testLoss:F4}  test acc {testAcc:P2}");
        }
        var final = Evaluation.Classify(model, test, device: device);
        double seconds = sw.Elapsed.TotalSeconds;
        log.WriteLine($"mlp: final test accuracy {final.Accuracy:P2} ({model.ParameterCount} parameters, {seconds:F1} s)");
        return new Dictionary<string, object>
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
        };
    }
}
