using Engine.Autodiff;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Engine.Onnx;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>The README's library example, kept compiling, learning, saving and exporting.</summary>
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
            using var model = new Sequential(new Linear(64, 128, seed: 1, device: device), new ReLU(), new Linear(128, 10, seed: 2, device: device));
            using var opt = new Sam(new Adam(model.Parameters(), 1e-3f), rho: 0.05f);
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
                    return l;
                });
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
            // The printout shows five lines, the loss falling and the accuracy reaching 100 %.
            var lines = console.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(5, lines.Length);
            Assert.StartsWith("step  99", lines[^1]);
            Assert.EndsWith($"train accuracy {1.0:P0}", lines[^1].TrimEnd('\r'));
            Checkpoint.Save(model, Path.Combine(dir, "model.safetensors"), opt.Inner);
            OnnxExporter.Save(model, Path.Combine(dir, "model.onnx"), [-1, 64]);

            using var restored = new Sequential(new Linear(64, 128, seed: 3, device: device), new ReLU(), new Linear(128, 10, seed: 4, device: device));
            Checkpoint.Load(restored, Path.Combine(dir, "model.safetensors"));
            Assert.Equal(model.Forward(x).ToArray(), restored.Forward(x).ToArray());
            Assert.True(new FileInfo(Path.Combine(dir, "model.onnx")).Length > 64 * 128 * 4);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
