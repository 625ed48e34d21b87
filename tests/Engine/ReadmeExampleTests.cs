using Engine.Autodiff;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Engine.Onnx;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>The README's library example, kept compiling, learning, saving, resuming and exporting.</summary>
/// <remarks>In the <see cref="GlobalRandomCollection"/>: it seeds the global generator, as the README does.</remarks>
[Collection(GlobalRandomCollection.Name)]
public class ReadmeExampleTests
{
    [Fact]
    public void ReadmeExampleRunsLowersTheLossAndWritesItsFiles()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-readme-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var device = Device.Cpu;
            Engine.Random.Seed(1);
            using var model = new Sequential(new Linear(64, 128, device: device), new ReLU(), new Linear(128, 10, device: device));
            using var opt = new Sam(new Adam(model.Parameters(), 3e-3f), rho: 0.05f);
            var schedule = new WarmupCosineLr(opt, warmupSteps: 10, totalSteps: 100);
            var x = Tensor.Uniform([32, 64], seed: 7, device: device);
            int[] labels = Enumerable.Range(0, 32).Select(i => i % 10).ToArray();
            float first = 0, last = 0;
            var console = new StringWriter();
            for (int step = 0; step < 100; step++)
            {
                using var scope = new TensorScope();
                var loss = opt.Step(() =>
                {
                    var l = Losses.CrossEntropy(model.Forward(x), labels);
                    l.Backward();
                    GradientClipping.ClipGradNorm(model.Parameters(), maxNorm: 5f);
                    return l;
                });
                schedule.Step();
                if (step == 0) first = loss.Item();
                last = loss.Item();
                if (step % 25 == 0 || step == 99)
                {
                    int[] predicted = model.Forward(x).ArgMax(1).ToInt32Array();
                    double accuracy = predicted.Where((p, i) => p == labels[i]).Count() / (double)labels.Length;
                    console.WriteLine($"step {step,3}  loss {loss.Item():F4}  train accuracy {accuracy:P0}");
                }
            }
            Assert.True(last < first * 0.2f, $"loss {first} -> {last}");
            // The printout shows five lines, the loss falling and the training accuracy reaching 100 %.
            var lines = console.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(5, lines.Length);
            Assert.StartsWith("step  99", lines[^1]);
            Assert.EndsWith($"train accuracy {1.0:P0}", lines[^1].TrimEnd('\r'));
            string path = Path.Combine(dir, "model.safetensors");
            Checkpoint.Save(model, path, opt);
            Checkpoint.Load(model, path, opt);
            OnnxExporter.Save(model, Path.Combine(dir, "model.onnx"), [-1, 64]);

            // A fresh process resumes the same run: another initialisation, the same objects, the state from the file.
            Engine.Random.Seed(2);
            using var restored = new Sequential(new Linear(64, 128, device: device), new ReLU(), new Linear(128, 10, device: device));
            using var opt2 = new Sam(new Adam(restored.Parameters(), 3e-3f), rho: 0.05f);
            var schedule2 = new WarmupCosineLr(opt2, warmupSteps: 10, totalSteps: 100);
            Checkpoint.Load(restored, path, opt2);
            Assert.Equal(model.Forward(x).ToArray(), restored.Forward(x).ToArray());
            Assert.Equal(100, opt2.StepCount);
            Assert.Equal(100, schedule2.LastEpoch);
            Assert.Equal(opt.LearningRate, opt2.LearningRate);
            Assert.True(new FileInfo(Path.Combine(dir, "model.onnx")).Length > 64 * 128 * 4);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The README's own-module example, word for word: a custom function between registered layers.</summary>
    private sealed class Net : Module
    {
        readonly Conv2d conv; readonly Linear head; readonly CustomFunction activation;
        public Net(CustomFunction activation, Device device)
        {
            this.activation = activation;
            conv = RegisterModule("conv", new Conv2d(1, 8, 3, stride: 2, padding: 1, device: device));   // [B, 1, 8, 8] -> [B, 8, 4, 4]
            head = RegisterModule("head", new Linear(8 * 4 * 4, 10, device: device));
        }
        public override Tensor Forward(Tensor x) => head.Forward(activation.Apply(conv.Forward(x)).Reshape([x.Shape[0], 8 * 4 * 4]));
    }

    [Fact]
    public void ReadmeCustomFunctionAndOwnModuleExamplesGradcheckRegisterAndLearn()
    {
        var device = Device.Cpu;
        Engine.Random.Seed(1);
        var cube = new CustomFunction("cube",
            forward: xs => xs[0] * xs[0] * xs[0],
            backward: b => [b.GradOutput * 3f * b.Inputs[0].Square()]);
        using (var x = Tensor.Uniform([3, 4], seed: 3, low: -1f, high: 1f, device: device))
        {
            x.RequiresGrad = true;
            GradCheck.Assert(xs => cube.Apply(xs[0]), [x]);
        }

        using var model = new Net(cube, device);
        Assert.Equal(["conv.weight", "conv.bias", "head.weight", "head.bias"], model.NamedParameters().Select(p => p.Name));
        using var images = Tensor.Uniform([20, 1, 8, 8], seed: 5, low: -1f, high: 1f, device: device);
        int[] labels = Enumerable.Range(0, 20).Select(i => i % 10).ToArray();
        using var opt = new Adam(model.Parameters(), 1e-2f);
        float first = 0, last = 0;
        for (int step = 0; step < 40; step++)
        {
            using var scope = new TensorScope();
            opt.ZeroGrad();
            var loss = Losses.CrossEntropy(model.Forward(images), labels);
            loss.Backward();
            opt.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first * 0.5f, $"loss {first} -> {last}");
    }
}
