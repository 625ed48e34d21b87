using System.Text.RegularExpressions;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Tests.Kernels;
using Xunit.Abstractions;

namespace Engine.Tests.Compilation;

/// <summary>
/// Expression-tree fusion on the graphs it was made for: GELU's backward (x read by several leaves, two chains
/// meeting in a sum, times the incoming gradient) is one launch; the loss backward's in-place difference and scale
/// are one launch; the Mixer step's launches, printed beside the unfused count. Results equal eager bit for bit.
/// Written once, run per kernel set.
/// </summary>
public abstract class TreeFusionTests(ITestOutputHelper output)
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    [Fact]
    public void GeluBackwardIsOneLaunch()
    {
        static Tensor GeluGrad(Tensor x, Tensor g)
        {
            var p = x.Detach();
            p.RequiresGrad = true;
            p.GeluErf().Backward(g);
            return p.Grad!;
        }
        using var f = Compiler.Compile<Tensor, Tensor>(GeluGrad);
        for (int call = 0; call < 5; call++)
        {
            using var x = Tensor.Normal([5, 33], seed: (ulong)(call + 1), device: Device);
            using var g = Tensor.Normal([5, 33], seed: (ulong)(call + 11), device: Device);
            float[] expected;
            using (new TensorScope()) expected = GeluGrad(x, g).ToArray();
            using var got = f.Invoke(x, g);
            KernelAssert.Bitwise(expected, got.ToArray(), $"call {call}\n{f.Explain()}");
        }
        var explain = f.Explain();
        output.WriteLine(explain);
        var stats = f.LastGraph!;
        // cdf: affine, erf, affine; pdf: square, affine, exp; x · pdf, cdf + x · pdf, g · (...).
        Assert.True((1, 1, 9) == (stats.Launches, stats.FusedGroups, stats.FusedCalls), explain);
        Assert.Contains("Fused[Mul(x0, Add(", explain);
    }

    [Fact]
    public void LossBackwardDifferenceAndScaleAreOneLaunch()
    {
        static Tensor LossGrad(Tensor z, IndexTensor labels)
        {
            var p = z.Detach();
            p.RequiresGrad = true;
            p.CrossEntropy(labels).Backward();
            return p.Grad!;
        }
        using var f = Compiler.Compile<Tensor, IndexTensor>(LossGrad);
        using var labels = new IndexTensor([3, 0, 6, 1, 6, 2, 5]);
        for (int call = 0; call < 5; call++)
        {
            using var z = Tensor.Normal([7, 10], seed: (ulong)(call + 1), device: Device);
            float[] expected;
            using (new TensorScope()) expected = LossGrad(z, labels).ToArray();
            using var got = f.Invoke(z, labels);
            KernelAssert.Bitwise(expected, got.ToArray(), $"call {call}\n{f.Explain()}");
        }
        var explain = f.Explain();
        output.WriteLine(explain);
        // Where the loss kernel is the composite (one-hot, softmax, then (softmax - onehot) · (g / n) in place, into
        // the output buffer), the difference and the scale are one tree; where the set computes the loss with its
        // gradient's softmax, one-hot and difference, that call and the scale are the graph's two launches.
        if (Device.Kernels is ISoftmaxCrossEntropyKernels)
        {
            Assert.True((2, 1) == (f.LastGraph!.Launches, f.LastGraph.LossGradientsFused), explain);
            Assert.Contains("SoftmaxCrossEntropy(", explain);
            return;
        }
        if (explain.Contains("Softmax(", StringComparison.Ordinal))
            Assert.Contains("Fused[Mul(Sub(x0, x1), x2)]", explain);
        Assert.DoesNotMatch(new Regex(@"^\s+\d+ Binary\(", RegexOptions.Multiline), explain);
    }

    /// <summary>The broadcasting graphs of the FNO, the SPN and a loss backward, each compiled, checked bitwise against eager, with its launches.</summary>
    public static TheoryData<string, int> BroadcastingGraphs => new()
    {
        { "spectral weights", 1 },
        { "broadcast product summed over the broadcast axes", 1 },
        { "spn log-space step", 1 },
        { "sum backward into a square's backward", 1 },
    };

    [Theory]
    [MemberData(nameof(BroadcastingGraphs))]
    public void BroadcastingGraphsAreOneTree(string graph, int launches)
    {
        using var p = Tensor.Normal([2, 1, 2, 1], seed: 91, device: Device);
        using var q = Tensor.Normal([2, 1, 2, 1], seed: 92, device: Device);
        using var w = Tensor.Normal([2, 3, 1], seed: 93, device: Device);
        Tensor SquareGrad(Tensor x, Tensor g)
        {
            var leaf = x.Detach();
            leaf.RequiresGrad = true;
            leaf.Square().Sum([1]).Backward(g);
            return leaf.Grad!;
        }
        Func<Tensor, Tensor, Tensor> function = graph switch
        {
            "spectral weights" => (a, b) => a * p + b * q,
            "broadcast product summed over the broadcast axes" => (s, _) => (s * p).Sum([1, 3]),
            "spn log-space step" => (x, u) => x - u.Exp() * w,
            _ => SquareGrad,
        };
        (int[] A, int[] B) shapes = graph switch
        {
            "spectral weights" => ([3, 1, 4, 1, 5], [3, 1, 4, 1, 5]),
            "broadcast product summed over the broadcast axes" => ([3, 2, 4, 2, 5], [1]),
            "spn log-space step" => ([2, 3, 7], [2, 3, 7]),
            _ => ([4, 9], [4]),
        };
        var (stats, explain) = CompiledMatchesEager(graph, function, shapes.A, shapes.B);
        Assert.True(launches == stats.Launches, explain);
    }

    /// <summary>
    /// Programs where a fused tree reads a product's result: the trees a set that runs tree epilogues folds into the
    /// product, and the launches with and without the fold (a set without tree steps).
    /// </summary>
    public static TheoryData<string, int, int, int> TreeEpilogueCases => new()
    {
        // program, folds, launches with the folds, launches without
        { "gelu backward of a product", 1, 1, 2 },
        // The sum runs with the addition that reads it back.
        { "tree stored and reduced", 1, 2, 2 },
        { "tree reduced only", 1, 2, 2 },
        { "product as second input beside a scalar", 1, 1, 2 },
        { "binary chain of a product", 1, 1, 2 },
        { "product read outside the tree", 0, 5, 5 },
        { "tree with a broadcast input", 0, 2, 2 },
        // The sums the two trees leave behind pair once the second product no longer reads a fused group's output.
        { "bias gradients of two layers", 2, 4, 5 },
    };

    [Theory]
    [MemberData(nameof(TreeEpilogueCases))]
    public void ProductsTakeTheTreesThatReadThem(string program, int folds, int launches, int unfolded)
    {
        using var w = Tensor.Normal([5, 7], seed: 81, device: Device);
        using var w2 = Tensor.Normal([7, 3], seed: 82, device: Device);
        using var bias = Tensor.Normal([7], seed: 83, device: Device);
        using var scale = Tensor.Normal([1], seed: 84, device: Device);
        using var w3 = Tensor.Normal([7, 7], seed: 85, device: Device);
        Func<Tensor, Tensor, Tensor> function = program switch
        {
            // The gradient of GELU(p) for the incoming gradient x W: the tree reads the product and the pre-activation.
            "gelu backward of a product" => (x, p) =>
            {
                var leaf = p.Detach();
                leaf.RequiresGrad = true;
                leaf.GeluErf().Backward(x.MatMul(w));
                return leaf.Grad!;
            },
            "tree stored and reduced" => (x, p) =>
            {
                var y = x.MatMul(w) * p.Tanh();
                return y + y.Sum([0]);
            },
            "tree reduced only" => (x, p) => (x.MatMul(w) * p.Tanh()).Sum([0]),
            "binary chain of a product" => (x, p) => x.MatMul(w) * p.Tanh(),
            "product as second input beside a scalar" => (x, p) => p.Exp() * (x.MatMul(w) * scale),
            "bias gradients of two layers" => (x, p) =>
            {
                var first = x.MatMul(w) * p.Tanh();
                var second = first.MatMul(w3) * p.Tanh();
                return first.Sum([0]) * second.Sum([0]);
            },
            "product read outside the tree" => (x, p) =>
            {
                var t = x.MatMul(w);
                return (t * p.Tanh()).MatMul(w2) * t.MatMul(w2);
            },
            _ => (x, p) => (x.MatMul(w) * bias).Tanh() * p,
        };
        var (stats, explain) = CompiledMatchesEager(program, function, [6, 5], [6, 7]);
        bool runsTrees = Device.Kernels is IGemmEpilogueKernels epilogues && epilogues.RunsGemmTree(GemmTreeEpilogueTests.GeluBackward);
        Assert.True((runsTrees ? (folds, launches) : (0, unfolded)) == (stats.TreeEpilogues, stats.Launches), explain);
        if (runsTrees && folds > 0) Assert.Contains("+ tree epilogue Fused[", explain);
    }

    /// <summary>
    /// <paramref name="function"/> compiled and called five times on random arguments of the given shapes, each result
    /// bitwise eager's; the last graph's sizes and its Explain text (also written to the test output).
    /// </summary>
    private (CompiledGraphStats Stats, string Explain) CompiledMatchesEager(string graph, Func<Tensor, Tensor, Tensor> function, int[] aShape, int[] bShape)
    {
        using var f = Compiler.Compile(function);
        for (int call = 0; call < 5; call++)
        {
            using var a = Tensor.Normal(aShape, seed: (ulong)(call + 1), device: Device);
            using var b = Tensor.Normal(bShape, seed: (ulong)(call + 21), device: Device);
            float[] expected;
            using (new TensorScope()) expected = function(a, b).ToArray();
            using var got = f.Invoke(a, b);
            KernelAssert.Bitwise(expected, got.ToArray(), $"{graph}, call {call}\n{f.Explain()}");
        }
        var explain = f.Explain();
        output.WriteLine(explain);
        return (f.LastGraph!, explain);
    }

    /// <summary>Sibling reductions over a shared input: the FNO's two weight gradients and the relative-L2 loss's two sums.</summary>
    public static TheoryData<string> SiblingGraphs => new() { "two weight gradients", "relative L2 loss" };

    [Theory]
    [MemberData(nameof(SiblingGraphs))]
    public void SiblingReductionsAreOneLaunch(string graph)
    {
        using var p = Tensor.Normal([2, 1, 2, 1], seed: 91, device: Device);
        using var q = Tensor.Normal([2, 1, 2, 1], seed: 92, device: Device);
        Func<Tensor, Tensor, Tensor> function = graph == "two weight gradients"
            ? (s, _) => (s * p).Sum([1, 3]) + (s * q).Sum([1, 3])
            : (x, y) => (x - y).Square().Sum([1]) / y.Square().Sum([1]);
        int[] shape = graph == "two weight gradients" ? [3, 2, 4, 2, 5] : [4, 9];
        var (stats, explain) = CompiledMatchesEager(graph, function, shape, shape);
        // The pair, then the sum or quotient of the two results.
        Assert.True((2, 2) == (stats.Launches, stats.ReductionsPaired), explain);
        Assert.Contains("Fused pair[", explain);
        Assert.Contains("2 reductions paired with a sibling", explain);
    }

    [Fact]
    public void MixerStepLaunchCount()
    {
        using var problem = CompilerTests.Problem.Make("mixer-sgd-momentum", Device);
        using var fused = problem.Compile(new CompileOptions());
        using var twin = CompilerTests.Problem.Make("mixer-sgd-momentum", Device);
        using var plain = twin.Compile(new CompileOptions { Fuse = false });
        for (int s = 0; s < 4; s++)
        {
            using var batch = problem.Batch(s);
            fused.Call(batch.X, batch.Y).Dispose();
            plain.Call(batch.X, batch.Y).Dispose();
        }
        var (on, off) = (fused.LastGraph!, plain.LastGraph!);
        var explain = fused.Explain();
        // A GELU backward tree is a fused group of its own, or the tree step of the backward product's epilogue.
        int geluBackward = Regex.Matches(explain, @"Mul\(x\d, Add\(Affine\(0\.5,0\.5\)\(Erf\(").Count;
        int gelus = Regex.Matches(explain, @"GeluErf").Count;
        output.WriteLine($"mixer-sgd-momentum on {Device.Name}: {on.Launches} launches fused ({on.FusedGroups} groups replacing {on.FusedCalls} calls), " +
                         $"{off.Launches} unfused; {geluBackward} GELU backward passes as one tree each, {gelus} GELU forward calls");
        // The fused groups' calls include the repeats of cheap calls recomputed for a second reader, which the plain graph
        // does not run; the calls of trees folded into products launch nothing.
        Assert.Equal(off.Launches - (on.FusedCalls - on.Recomputed) + on.FusedGroups - on.TreeEpilogueCalls, on.Launches);
        Assert.Equal(Device.Kernels is IGemmEpilogueKernels epilogues && epilogues.RunsGemmTree(GemmTreeEpilogueTests.GeluBackward), on.TreeEpilogues > 0);
        Assert.True(geluBackward > 0 && geluBackward == gelus, explain);
    }
}

/// <summary>Tree fusion on the CPU set.</summary>
public sealed class CpuTreeFusionTests(ITestOutputHelper output) : TreeFusionTests(output)
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Tree fusion on the ILGPU set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuTreeFusionTests(ITestOutputHelper output) : TreeFusionTests(output)
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
