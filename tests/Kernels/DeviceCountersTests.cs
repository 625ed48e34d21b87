using Engine.Autodiff;
using Engine.Kernels;
using Engine.Kernels.Ilgpu;
using Engine.Nn;
using Engine.Optim;
using Engine.Spn;

namespace Engine.Tests.Kernels;

/// <summary>
/// <see cref="DeviceCounters"/> per kernel set: allocations and bytes follow buffers and return to their start after
/// disposal, launches follow the kernel calls of a small forward/backward step, and a SAM step and an Adam step copy
/// nothing from the device to the host (their norms, scales, learning rates and step counts stay device scalars).
/// Run alone (the "serial" collection) so that no other test's work enters the differences.
/// </summary>
[Collection("serial")]
public abstract class DeviceCountersTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>
    /// Launches of one entry-point call of each kernel in the forward/backward step below: 1 on both sets (the CPU set
    /// counts calls, ILGPU launches, and each of these kernels is one launch there).
    /// </summary>
    protected virtual int LaunchesPerCall => 1;

    /// <summary>Bytes the set's pool keeps for a freed buffer of <paramref name="bytes"/> (its size class, or exactly that).</summary>
    protected abstract long PooledBytesOf(long bytes);

    /// <summary>
    /// A freed buffer goes to the set's pool (CPU: arrays of at least 4096 elements; ILGPU: the caching allocator); the
    /// next buffer of that length is one allocation and one pool hit, and takes its bytes out of the cache.
    /// </summary>
    [Fact]
    public void PoolHitsAndCachedBytesFollowThePool()
    {
        const int n = 5003 * 7;
        var c = Device.Counters;
        Device.Kernels.Allocate(n).Dispose();
        long cached = c.CachedBytes;
        var before = c.Snapshot();
        using var again = Device.Kernels.Allocate(n);
        var d = c.Snapshot().Minus(before);
        Assert.Equal(1, d.Allocations);
        Assert.Equal(1, d.PoolHits);
        Assert.Equal(cached - PooledBytesOf(4L * n), c.CachedBytes);
    }

    /// <summary>Buffers count their logical bytes; disposal gives them back; the peak and its reset follow.</summary>
    [Fact]
    public void AllocationsAndBytesFollowBuffers()
    {
        var c = Device.Counters;
        var before = c.Snapshot();
        var a = Device.Kernels.Allocate(1000);
        var b = Device.Kernels.AllocateInt(3);
        var held = c.Snapshot().Minus(before);
        Assert.Equal(2, held.Allocations);
        Assert.Equal(1000 * 4 + 3 * 4, held.BytesInUse);
        Assert.True(c.PeakBytes >= c.BytesInUse, $"peak {c.PeakBytes} below bytes in use {c.BytesInUse}");
        a.Dispose();
        b.Dispose();
        b.Dispose(); // twice: released once
        Assert.Equal(before.BytesInUse, c.BytesInUse);
        c.ResetPeak();
        Assert.Equal(c.BytesInUse, c.PeakBytes);
        using (Device.Kernels.Allocate(10)) { }
        Assert.Equal(c.BytesInUse + 40, c.PeakBytes);
    }

    /// <summary>Uploads and downloads count one copy each; a device scalar read is one download.</summary>
    [Fact]
    public void HostCopiesAreCounted()
    {
        var before = Device.Counters.Snapshot();
        using var b = Device.Kernels.Allocate(4);
        b.CopyFromHost([1f, 2f, 3f, 4f]);
        _ = b.ToArray();
        using var s = new DeviceScalar(Device, 2.5);
        Assert.Equal(2.5, s.Read());
        var d = Device.Counters.Snapshot().Minus(before);
        Assert.Equal(2, d.HostToDeviceCopies);
        Assert.Equal(2, d.DeviceToHostCopies);
    }

    /// <summary>
    /// loss = Σ relu(x W + b) and its backward pass: the kernel calls (recorded through a forwarding decorator) are
    /// the ones this list names, the device counts one launch per call, and every byte allocated is given back when
    /// the step's tensors and the gradients are disposed. A first, unmeasured step lets the kernel set make its
    /// persistent helpers (the ILGPU GEMM's placeholder index map).
    /// </summary>
    [Fact]
    public void ForwardBackwardStepCountsWhatItRuns()
    {
        using var x = Tensor.FromArray([1f, -2f, 3f, 0.5f, 4f, -1f], [2, 3], Device);
        using var w = Tensor.FromArray([0.5f, -1f, 2f, 0.25f, -0.75f, 1f], [3, 2], Device, requiresGrad: true);
        using var bias = Tensor.FromArray([0.1f, -0.2f], [2], Device, requiresGrad: true);
        void Step()
        {
            using var scope = new TensorScope();
            var loss = (x.MatMul(w) + bias).Relu().Sum();
            loss.Backward();
        }
        Step();
        w.ZeroGrad();
        bias.ZeroGrad();
        var recorder = new CoreOnlyKernelSet(Device.Kernels);
        var before = Device.Counters.Snapshot();
        using (Device.UseKernels(_ => recorder)) Step();
        var during = Device.Counters.Snapshot().Minus(before);
        string[] expected =
        [
            // forward: product, bias, relu, sum
            "Gemm", "Binary", "Unary", "Reduce",
            // backward: seed 1, sum -> broadcast, relu' = step(z) · g, bias gradient = column sums, W gradient = xᵀ g,
            // each leaf gradient copied into the leaf's own (persistent) Grad buffer
            "Fill", "BroadcastTo", "Unary", "Binary", "Reduce", "Copy", "Gemm", "Copy",
        ];
        Assert.Equal(expected, recorder.Calls);
        Assert.Equal(expected.Length * LaunchesPerCall, during.KernelLaunches);
        Assert.Equal(0, during.DeviceToHostCopies);
        Assert.True(during.Allocations >= expected.Length, $"{during.Allocations} allocations for {expected.Length} kernel outputs");
        w.ZeroGrad();
        bias.ZeroGrad();
        Assert.Equal(before.BytesInUse, Device.Counters.BytesInUse);
    }

    /// <summary>
    /// A forward and backward step of a small SPN (leaf, product and sum layers, depth 2, two repetitions) copies nothing
    /// from the device: the sizes of the layers' index lists stay on the host. The first, unmeasured step checks the
    /// data's values (one copy per data tensor) and uploads the index lists. The step still computes: every leaf
    /// parameter gets a gradient.
    /// </summary>
    [Theory]
    [InlineData(SpnLeafType.Bernoulli)]
    [InlineData(SpnLeafType.Gaussian)]
    public void SpnStepReadsNothingBack(SpnLeafType leaf)
    {
        float nan = float.NaN;
        float[] data = leaf == SpnLeafType.Gaussian
            ? [0.3f, -1.2f, nan, 2f, 0.1f, -0.4f, 1.5f, 0.7f, -0.9f, nan, 0f, 0.2f]
            : [1, 0, nan, 1, 1, 0, 0, 1, 1, nan, 0, 0];
        using var spn = new Spn.Spn(RegionGraph.RandomBinary(6, 2, 2, 1), 3, 2, leaf, seed: 2, device: Device);
        using var x = Tensor.FromArray(data, [2, 6], Device);
        void Step()
        {
            using var scope = new TensorScope();
            (-spn.LogLikelihood(x).Mean()).Backward();
        }
        Step();
        spn.ZeroGrad();
        var before = Device.Counters.Snapshot();
        Step();
        var step = Device.Counters.Snapshot().Minus(before);
        Assert.Equal(0, step.DeviceToHostCopies);
        Assert.True(step.KernelLaunches > 0);
        foreach (var p in spn.Parameters())
            Assert.NotNull(p.Grad);
        spn.ZeroGrad();
    }

    /// <summary>Model, data and a closure for the optimizer-step tests.</summary>
    private (Sequential Model, Tensor X, int[] Labels) Problem()
    {
        var model = new Sequential(new Linear(5, 7, seed: 1, device: Device), new ReLU(), new Linear(7, 3, seed: 2, device: Device));
        var x = Tensor.Uniform([4, 5], seed: 3, device: Device);
        return (model, x, [0, 2, 1, 2]);
    }

    private static Func<Tensor?> Closure(Sequential model, Tensor x, int[] labels) => () =>
    {
        var loss = Losses.CrossEntropy(model.Forward(x), labels);
        loss.Backward();
        return loss;
    };

    /// <summary>
    /// A SAM step around Adam (and adaptive SAM around SGD with momentum) copies nothing to the host, from the second
    /// step on (the first uploads the learning rate and creates the state): norm, scale, learning rate and step
    /// counts live on the device. The steps still train: the loss after them is below the first.
    /// </summary>
    [Theory]
    [InlineData("sam-adam")]
    [InlineData("asam-sgd")]
    [InlineData("adam")]
    public void OptimizerStepsReadNothingBack(string which)
    {
        var (model, x, labels) = Problem();
        using (model)
        using (x)
        {
            using Optimizer opt = which switch
            {
                "sam-adam" => new Sam(new Adam(model.Parameters(), 1e-2f), rho: 0.05f),
                "asam-sgd" => new Sam(new Sgd(model.Parameters(), 0.05f, momentum: 0.9f), rho: 0.5f, adaptive: true),
                _ => new Adam(model.Parameters(), 1e-2f),
            };
            float first;
            using (var scope = new TensorScope()) first = opt.Step(Closure(model, x, labels)).Item();
            var before = Device.Counters.Snapshot();
            for (int i = 0; i < 3; i++)
            {
                using var scope = new TensorScope();
                opt.Step(Closure(model, x, labels));
            }
            var steps = Device.Counters.Snapshot().Minus(before);
            Assert.Equal(0, steps.DeviceToHostCopies);
            Assert.True(steps.KernelLaunches > 0);
            if (opt is Sam sam) Assert.True(sam.LastGradientNorm > 0, "the norm is readable on demand");
            float last;
            using (var scope = new TensorScope()) last = Losses.CrossEntropy(model.Forward(x), labels).Item();
            Assert.True(last < first, $"{which}: loss {first} -> {last}");
        }
    }

    /// <summary>
    /// Changing the learning rate uploads it once (one host-to-device copy on the next step), never reads anything,
    /// and the step uses the new rate.
    /// </summary>
    [Fact]
    public void LearningRateIsUploadedWhenItChanges()
    {
        var (model, x, labels) = Problem();
        using (model)
        using (x)
        {
            using var opt = new Sgd(model.Parameters(), 0.1f);
            using (var scope = new TensorScope()) opt.Step(Closure(model, x, labels));
            var before = Device.Counters.Snapshot();
            using (var scope = new TensorScope()) opt.Step(Closure(model, x, labels));
            var same = Device.Counters.Snapshot().Minus(before);
            opt.LearningRate = 0f;
            var w = model.Parameters().First();
            var held = w.ToArray();
            before = Device.Counters.Snapshot();
            using (var scope = new TensorScope()) opt.Step(Closure(model, x, labels));
            var changed = Device.Counters.Snapshot().Minus(before);
            Assert.Equal(same.HostToDeviceCopies + 1, changed.HostToDeviceCopies);
            Assert.Equal(0, changed.DeviceToHostCopies);
            KernelAssert.Bitwise(held, w.ToArray(), "a step at learning rate 0 leaves the weights");
        }
    }

    /// <summary>
    /// Each group's rate has its own device scalar: changing one group's rate uploads one value on the next step,
    /// setting a rate to the bits it already has uploads nothing, and the group at rate 0 stays where it was.
    /// </summary>
    [Fact]
    public void EachGroupsRateIsUploadedOnlyWhenItChanges()
    {
        var (model, x, labels) = Problem();
        using (model)
        using (x)
        {
            var ps = model.Parameters();
            using var opt = new Adam([new ParamGroup(ps.Take(2)), new ParamGroup(ps.Skip(2), learningRate: 0.03f)], 1e-2f);
            long StepUploads()
            {
                var before = Device.Counters.Snapshot();
                using (var scope = new TensorScope()) opt.Step(Closure(model, x, labels));
                var d = Device.Counters.Snapshot().Minus(before);
                Assert.Equal(0, d.DeviceToHostCopies);
                return d.HostToDeviceCopies;
            }
            StepUploads();
            long same = StepUploads();
            opt.ParamGroups[1].LearningRate = 0f;
            var last = ps[^1];
            var held = last.ToArray();
            Assert.Equal(same + 1, StepUploads());
            KernelAssert.Bitwise(held, last.ToArray(), "a group at learning rate 0 stays");
            opt.ParamGroups[0].LearningRate = 1e-2f;
            opt.ParamGroups[1].LearningRate = 0f;
            Assert.Equal(same, StepUploads());
        }
    }

    /// <summary>
    /// Disposing an optimizer gives back every byte it held (state tensors, saved copies, learning rates, step counts,
    /// norms and scales), after it stepped, changed its rate and stepped again. The labels are one uploaded index
    /// tensor (a host array would leave its device copy to each loss call).
    /// </summary>
    [Theory]
    [InlineData("sam-adam")]
    [InlineData("fgr-sgd")]
    public void DisposingAnOptimizerGivesBackEveryByte(string which)
    {
        var (model, x, labelArray) = Problem();
        using (model)
        using (x)
        using (var labels = new IndexTensor(labelArray))
        {
            Tensor? Closure()
            {
                var loss = Losses.CrossEntropy(model.Forward(x), labels);
                loss.Backward();
                return loss;
            }
            using (var scope = new TensorScope()) Closure();
            model.ZeroGrad();
            long before = Device.Counters.BytesInUse;
            Optimizer opt = which == "sam-adam"
                ? new Sam(new Adam(model.Parameters(), 1e-2f), rho: 0.05f)
                : new FiniteDifferenceGr(new Sgd(model.Parameters(), 0.05f, momentum: 0.9f), gamma: 0.02f, epsilon: 0.05f);
            for (int i = 0; i < 3; i++)
            {
                if (i == 2) opt.LearningRate *= 0.5f;
                using var scope = new TensorScope();
                opt.Step(Closure);
            }
            opt.ZeroGrad();
            Assert.True(Device.Counters.BytesInUse > before, "the optimizer holds state");
            opt.Dispose();
            Assert.Equal(before, Device.Counters.BytesInUse);
        }
    }
}

/// <summary>Counters of the CPU set (one launch per entry-point call).</summary>
public sealed class CpuDeviceCountersTests : DeviceCountersTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override long PooledBytesOf(long bytes) => bytes;

    /// <summary>The CPU set loads no kernels: its kernels are .NET code the runtime compiles.</summary>
    [Fact]
    public void NoKernelIsLoaded()
    {
        using var x = Tensor.FromArray([1f, -2f, 3f], [3], Device);
        var before = Device.Counters.Snapshot();
        using (new TensorScope()) _ = (x.Relu() * x).Sum().Item();
        var d = Device.Counters.Snapshot().Minus(before);
        Assert.True(d.KernelLaunches > 0);
        Assert.Equal(0, d.KernelLoads);
        Assert.Equal(TimeSpan.Zero, d.KernelLoadTime);
    }
}

/// <summary>Counters of the ILGPU set on the CPU emulator (one per launch; its caching allocator reports hits and cached bytes).</summary>
public sealed class IlgpuDeviceCountersTests : DeviceCountersTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <summary>
    /// The cross-entropy backward is one launch: a backward pass from the loss to a leaf of logits launches the seed,
    /// the fused gradient kernel and the copy into the leaf's gradient, nothing else; the gradient is (softmax - onehot) / rows.
    /// </summary>
    [Fact]
    public void CrossEntropyBackwardIsOneLaunch()
    {
        using var logits = Tensor.FromArray([0.5f, -1f, 2f, 0.25f, 3f, -0.5f], [2, 3], Device, requiresGrad: true);
        using (var warm = new TensorScope()) logits.CrossEntropy([2, 0]).Backward();
        logits.ZeroGrad();
        using var scope = new TensorScope();
        var loss = logits.CrossEntropy([2, 0]);
        var before = Device.Counters.Snapshot();
        loss.Backward();
        Assert.Equal(3, Device.Counters.Snapshot().Minus(before).KernelLaunches);
        var x = new[] { 0.5, -1, 2, 0.25, 3, -0.5 };
        int[] labels = [2, 0];
        var grad = logits.Grad!.ToArray();
        for (int r = 0; r < 2; r++)
        {
            double m = Math.Max(x[3 * r], Math.Max(x[3 * r + 1], x[3 * r + 2]));
            double sum = Enumerable.Range(0, 3).Sum(c => Math.Exp(x[3 * r + c] - m));
            for (int c = 0; c < 3; c++)
                Assert.Equal((Math.Exp(x[3 * r + c] - m) / sum - (c == labels[r] ? 1 : 0)) / 2, grad[3 * r + c], 1e-6);
        }
    }

    /// <inheritdoc />
    protected override long PooledBytesOf(long bytes) => IlgpuMemoryPool.SizeClass(bytes);

    /// <summary>
    /// A kernel set with a cold cache (its own accelerator) loads a kernel on its first call, counted with its wall
    /// time, and the same call again loads nothing; a second op loads its own kernel.
    /// </summary>
    [Fact]
    public void EachKernelIsLoadedOnceAndTimed()
    {
        using var cold = new IlgpuKernelSet(Device, DeviceKind.IlgpuCpu);
        IKernelSet k = cold;
        using var x = k.Allocate(5);
        using var y = k.Allocate(5);
        x.CopyFromHost([1f, -2f, 3f, -4f, 5f]);
        var c = Device.Counters;
        var before = c.Snapshot();
        k.Unary(UnaryOp.Relu, x, y);
        var first = c.Snapshot().Minus(before);
        before = c.Snapshot();
        k.Unary(UnaryOp.Relu, x, y);
        var again = c.Snapshot().Minus(before);
        var relu = y.ToArray();
        before = c.Snapshot();
        k.Unary(UnaryOp.Abs, x, y);
        var other = c.Snapshot().Minus(before);

        Assert.Equal(1, first.KernelLoads);
        Assert.True(first.KernelLoadTime > TimeSpan.Zero, $"first call {first}");
        Assert.Equal(0, again.KernelLoads);
        Assert.Equal(TimeSpan.Zero, again.KernelLoadTime);
        Assert.Equal(1, other.KernelLoads);
        Assert.Equal([1f, 0f, 3f, 0f, 5f], relu);
    }
}
