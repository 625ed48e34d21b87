using System.Reflection;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Spn;
using Engine.Tests.Kernels;

namespace Engine.Tests.Compilation;

/// <summary>
/// The write sets that capability entry points declare (<see cref="WritesAttribute"/>), which the compiler's passes
/// trust to order, fold and fuse calls: every declared call of a set of programs (SPN layers of both leaf kinds,
/// layer norm, real and complex FFTs in 1 and 2 dimensions, forward and backward; the sets' own kernels and the
/// composites over core ops), run through a decorator that
/// snapshots every buffer a call is given and compares them afterwards, changes no buffer outside its declared set.
/// Every marked entry point must have run at least once.
/// </summary>
public abstract class CapabilityWritesTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>Marked entry points this set must run in these programs.</summary>
    protected abstract IEnumerable<MethodInfo> Required { get; }

    /// <summary>The set the checked calls go to: the device's own (default), or a core-only set whose composites stand in.</summary>
    protected virtual IKernelSet Under(IKernelSet kernels) => kernels;

    [Fact]
    public void NoDeclaredCallChangesABufferOutsideItsWriteSet()
    {
        var checker = new List<string>();
        var ran = new HashSet<MethodInfo>();
        using (Device.UseKernels(k => WriteCheckingKernelSet.Over(Under(k), checker, ran)))
        {
            RunPrograms(Device);
            if (KernelSetDecorator.Implements<ISoftmaxCrossEntropyKernels>(Device.Kernels)) SoftmaxCrossEntropyCall(Device);
        }
        Assert.Empty(checker);
        var missing = Required.Where(m => !ran.Contains(m)).Select(KernelSetDecorator.NameOf).ToList();
        Assert.True(missing.Count == 0, "marked entry points these programs never ran: " + string.Join(", ", missing));
    }

    /// <summary>Every capability entry point with a marked parameter.</summary>
    protected static IEnumerable<MethodInfo> Marked(params Type[] contracts) =>
        contracts.SelectMany(c => c.GetMethods()).Where(m => m.GetParameters().Any(p => p.GetCustomAttribute<WritesAttribute>() != null));

    private static void RunPrograms(Device d)
    {
        foreach (var leaf in new[] { SpnLeafType.Bernoulli, SpnLeafType.Gaussian, SpnLeafType.Categorical })
        {
            using var scope = new TensorScope();
            var spn = new Spn.Spn(RegionGraph.RandomBinary(6, 2, 2, seed: 4), 3, 3, leaf, seed: 5, device: d);
            Tensor x;
            if (leaf == SpnLeafType.Gaussian)
            {
                x = Tensor.Normal([5, 6], seed: 9, device: d);
            }
            else
            {
                var rng = new Random(3);
                x = Tensor.FromArray(Enumerable.Range(0, 30).Select(_ => (float)rng.Next(2)).ToArray(), [5, 6], d);
            }
            (-spn.LogLikelihood(x).Mean()).Backward();
        }
        using (new TensorScope())
        {
            var norm = new LayerNorm(7, device: d);
            var x = Tensor.Normal([5, 7], seed: 2, device: d).WithGrad();
            (norm.Forward(x) * Tensor.Normal([5, 7], seed: 3, device: d)).Sum().Backward();
        }
        using (new TensorScope())
        {
            var x = Tensor.Normal([3, 10], seed: 4, device: d).WithGrad();
            var z = Tensor.Normal([3, 6, 2], seed: 5, device: d).WithGrad();
            var img = Tensor.Normal([2, 4, 6], seed: 6, device: d).WithGrad();
            var spectrum = x.Rfft().Irfft(10).Square().Sum() + z.Fft().Fft(inverse: true).Square().Sum()
                + img.Rfft2().Irfft2(4, 6).Square().Sum();
            spectrum.Backward();
            // Lengths past the one-pass (shared-memory, small-radix) paths, where a transform works pass by pass.
            var longX = Tensor.Normal([1, 8192], seed: 7, device: d).WithGrad();
            var longZ = Tensor.Normal([1, 4096, 2], seed: 8, device: d).WithGrad();
            var bigImg = Tensor.Normal([1, 64, 64], seed: 9, device: d).WithGrad();
            (longX.Rfft().Irfft(8192).Square().Sum() + longZ.Fft().Fft(inverse: true).Square().Sum()
                + bigImg.Rfft2().Irfft2(64, 64).Square().Sum()).Backward();
        }
    }

    private static void SoftmaxCrossEntropyCall(Device d)
    {
        var k = d.Kernels;
        using var logits = k.Allocate(6);
        logits.CopyFromHost([0.5f, -1f, 2f, 0f, 1f, 3f]);
        using var labels = k.AllocateInt(2);
        labels.CopyFromHost([2, 0]);
        using var loss = k.Allocate(2);
        using var gradient = k.Allocate(6);
        ((ISoftmaxCrossEntropyKernels)k).SoftmaxCrossEntropy(logits, labels, 2, 3, loss, gradient);
    }

    /// <summary>Snapshots every buffer a marked call is given, runs it, and lists each changed buffer outside its declared writes.</summary>
    internal class WriteCheckingKernelSet : KernelSetDecorator
    {
        private List<string> violations = null!;
        private HashSet<MethodInfo> ran = null!;

        public static IKernelSet Over(IKernelSet inner, List<string> violations, HashSet<MethodInfo> ran) =>
            Create<WriteCheckingKernelSet>(inner, c => { c.violations = violations; c.ran = ran; });

        protected override string Suffix => "+write-check";

        protected override void Allocated(object buffer)
        {
        }

        protected override object? Forward(MethodInfo method, object?[] args, Func<object?> run)
        {
            if (!method.GetParameters().Any(p => p.GetCustomAttribute<WritesAttribute>() != null)) return run();
            var call = new KernelCallOp(method, args);
            var declared = TraceBuffers.Writes(call);
            var before = call.Buffers.Distinct(ReferenceEqualityComparer.Instance).Select(b => (Buffer: b!, Bits: Bits(b!))).ToList();
            var result = run();
            ran.Add(method);
            foreach (var (buffer, bits) in before)
                if (!declared.Contains(buffer, ReferenceEqualityComparer.Instance) && !bits.SequenceEqual(Bits(buffer)))
                    violations.Add($"{NameOf(method)} changed a buffer of {bits.Length} values that it does not declare as written");
            return result;
        }

        private static int[] Bits(object buffer) => buffer switch
        {
            DeviceBuffer<float> f => f.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray(),
            DeviceBuffer<int> i => i.ToArray(),
            _ => throw new InvalidOperationException($"write check: unexpected buffer type {buffer.GetType().Name}"),
        };
    }
}

/// <summary>The CPU set's capabilities: all marked entry points run.</summary>
public sealed class CpuCapabilityWritesTests : CapabilityWritesTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override IEnumerable<MethodInfo> Required =>
        Marked(typeof(ISpnKernels), typeof(ILayerNormKernels), typeof(IFftKernels), typeof(ISoftmaxCrossEntropyKernels));
}

/// <summary>The composite capabilities over the CPU set's core ops (no composite computes the loss with its gradient).</summary>
public sealed class CpuCompositeCapabilityWritesTests : CapabilityWritesTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override IEnumerable<MethodInfo> Required => Marked(typeof(ISpnKernels), typeof(ILayerNormKernels), typeof(IFftKernels));

    /// <inheritdoc />
    protected override IKernelSet Under(IKernelSet kernels) => CoreOnlyKernelSet.Of(kernels);
}

/// <summary>The ILGPU set's capabilities (CPU emulator): all marked entry points run.</summary>
[Collection("ilgpu")]
public sealed class IlgpuCapabilityWritesTests : CapabilityWritesTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;

    /// <inheritdoc />
    protected override IEnumerable<MethodInfo> Required =>
        Marked(typeof(ISpnKernels), typeof(ILayerNormKernels), typeof(IFftKernels), typeof(ISoftmaxCrossEntropyKernels));
}

internal static class GradTensors
{
    /// <summary><paramref name="t"/> with gradients required.</summary>
    public static Tensor WithGrad(this Tensor t)
    {
        t.RequiresGrad = true;
        return t;
    }
}
