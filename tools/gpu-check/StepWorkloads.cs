using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.GpuCheck;

/// <summary>
/// One training step (forward, loss, backward, Adam) of a model on a device, with the matrix-product FLOPs of the step
/// (forward, weight gradients and input gradients of every layer): the three models of the bench's step benchmarks,
/// at their sizes, or tiny ones for the emulator.
/// </summary>
public sealed class StepWorkload : IDisposable
{
    private readonly Func<Tensor, object, Tensor> train;
    private readonly IDisposable[] owned;

    private StepWorkload(string name, double flops, Tensor x, object y, Func<Tensor, object, Tensor> train, params IDisposable[] owned)
    {
        Name = name;
        Flops = flops;
        X = x;
        Y = y;
        this.train = train;
        this.owned = owned;
    }

    /// <summary>"mlp", "mixer" or "fno".</summary>
    public string Name { get; }

    /// <summary>Matrix-product FLOPs of one step.</summary>
    public double Flops { get; }

    /// <summary>The step's input batch.</summary>
    public Tensor X { get; }

    /// <summary>The step's targets (a tensor, or the labels as an <see cref="IndexTensor"/>).</summary>
    public object Y { get; }

    /// <summary>Runs one step eagerly; returns the loss (which waits for the device).</summary>
    public float Step()
    {
        using var scope = new TensorScope();
        return train(X, Y).Item();
    }

    /// <summary>The step (zero the gradients, forward, loss, backward, update) compiled; a call returns the loss tensor.</summary>
    public CompiledFunction<Tensor, object> Compile() => Compiler.Compile<Tensor, object>((x, y) => train(x, y));

    /// <summary>A 784-1024-1024-10 ReLU MLP, cross-entropy, batch 256 (tiny: 64-32-16-10, batch 8).</summary>
    public static StepWorkload Mlp(Device d, bool small)
    {
        int batch = small ? 8 : 256;
        int[] w = small ? [64, 32, 16, 10] : [784, 1024, 1024, 10];
        var model = new Sequential(new Linear(w[0], w[1], seed: 1, device: d), new ReLU(),
            new Linear(w[1], w[2], seed: 2, device: d), new ReLU(), new Linear(w[2], w[3], seed: 3, device: d));
        var opt = new Adam(model.Parameters(), 1e-3f);
        var x = Tensor.Uniform([batch, w[0]], 5, 0, 1, d);
        var labels = new IndexTensor(Enumerable.Range(0, batch).Select(i => i % w[3]).ToArray());
        // Three forward products, three weight gradients, two input gradients (the first layer's is not needed).
        double flops = 0;
        for (int l = 0; l < 3; l++) flops += 2.0 * batch * w[l] * w[l + 1] * (l == 0 ? 2 : 3);
        return new StepWorkload("mlp", flops, x, labels, (input, target) =>
        {
            opt.ZeroGrad();
            var loss = Losses.CrossEntropy(model.Forward(input), (IndexTensor)target);
            loss.Backward();
            opt.Step();
            return loss;
        }, opt, model, x);
    }

    /// <summary>MLP-Mixer: 4 blocks, 64 tokens x 256 channels, hidden 128 / 512, batch 64 (tiny: 2 blocks, 8 x 16, batch 4).</summary>
    public static StepWorkload Mixer(Device d, bool small)
    {
        int batch = small ? 4 : 64, s = small ? 8 : 64, c = small ? 16 : 256, th = small ? 8 : 128, ch = small ? 16 : 512;
        int blocksN = small ? 2 : 4;
        const int classes = 10;
        var blocks = new Sequential(Enumerable.Range(0, blocksN)
            .Select(i => (Module)new MixerBlock(s, c, th, ch, seed: i + 1, device: d)).ToArray());
        var norm = new LayerNorm(c, device: d);
        var head = new Linear(c, classes, seed: 9, device: d);
        var opt = new Adam(blocks.Parameters().Concat(norm.Parameters()).Concat(head.Parameters()), 1e-3f);
        var x = Tensor.Normal([batch, s * c], 5, device: d);
        var labels = new IndexTensor(Enumerable.Range(0, batch).Select(i => i % classes).ToArray());
        // Per block: token mixing (S -> th -> S on B·C rows) and channel mixing (C -> ch -> C on B·S rows), then the
        // head; each product three times (forward, weight gradient, input gradient).
        double flops = 6.0 * (blocksN * (2.0 * batch * c * th * s + 2.0 * batch * s * ch * c) + (double)batch * classes * c);
        return new StepWorkload("mixer", flops, x, labels, (input, target) =>
        {
            opt.ZeroGrad();
            var h = blocks.Forward(input);
            var logits = head.Forward(norm.Forward(h.Reshape(batch, s, c)).Mean(1));
            var loss = logits.CrossEntropy((IndexTensor)target);
            loss.Backward();
            opt.Step();
            return loss;
        }, opt, blocks, norm, head, x);
    }

    /// <summary>FNO-1d: s = 1024, 16 modes, width 64, 4 blocks, head 128, batch 20, relative L2 (tiny: s = 64, 4 modes, width 8).</summary>
    public static StepWorkload Fno(Device d, bool small)
    {
        int batch = small ? 2 : 20, n = small ? 64 : 1024, width = small ? 8 : 64, modes = small ? 4 : 16, hidden = small ? 16 : 128;
        const int blocksN = 4;
        var model = new Fno1d(modes, width, blocksN, hidden, seed: 1, device: d);
        var opt = new Adam(model.Parameters(), 1e-3f, weightDecay: 1e-4f);
        var x = Tensor.Normal([batch, n], 2, device: d);
        var y = Tensor.Normal([batch, n], 3, device: d);
        double rows = (double)batch * n;
        // Pointwise layers (lift 2 -> w, one w -> w per block, head w -> h -> 1), each three products; per block the
        // truncated DFT and its inverse (forward and backward: four products of 2k x w x n per sample) and the mode
        // mixing (three products of 2w x 2w per mode and sample).
        double flops = 6 * rows * (2.0 * width + blocksN * (double)width * width + (double)width * hidden + hidden)
                       + blocksN * (16.0 * modes * width * n * batch + 24.0 * batch * width * width * modes);
        return new StepWorkload("fno", flops, x, y, (input, target) =>
        {
            opt.ZeroGrad();
            var loss = OperatorTraining.RelativeL2(model.Forward(input), (Tensor)target);
            loss.Backward();
            opt.Step();
            return loss;
        }, opt, model, x, y);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var o in owned) o.Dispose();
    }
}
