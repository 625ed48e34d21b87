using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Spn;
using Xunit.Abstractions;

namespace Engine.Tests.Compilation;

/// <summary>
/// Compiled execution against eager: the same model, optimizer and batches built twice from the same seeds, one
/// stepped eagerly, one through <see cref="Autodiff.Compiler"/>; the same kernels run in the same order, so losses,
/// parameters and gradients must agree bit for bit after every step. Plus guards, the variant cache, fallbacks and
/// errors. Written once, run per kernel set.
/// </summary>
public abstract class CompilerTests(ITestOutputHelper output)
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>Training steps per comparison.</summary>
    protected virtual int Steps => 20;

    /// <summary>
    /// Scenarios: a model, an optimizer (with a schedule changing the learning rate), a step function. The Mixer rows
    /// are the RP-Mixer (random permutations) and the textbook Mixer (transposes); the DB-GR row differentiates the
    /// backward pass (exact gradient regularization by double backpropagation).
    /// </summary>
    public static TheoryData<string> Scenarios => new()
    {
        "mlp-adam-cosine", "mixer-sgd-momentum", "mixer-transposes-adam", "fno1d-adamw", "fno2d-adam", "spn-adam", "sam-adam", "asam-sgd", "fgr-adam",
        "dbgr-adam",
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void CompiledStepsEqualEagerStepsBitwise(string scenario) => CompareWithEager(scenario, new CompileOptions());

    [Theory]
    [InlineData("mlp-adam-cosine")]
    [InlineData("mixer-sgd-momentum")]
    [InlineData("mixer-transposes-adam")]
    [InlineData("fno2d-adam")]
    [InlineData("sam-adam")]
    [InlineData("dbgr-adam")]
    public void PoisonedDeadSlotsLeaveResultsEqual(string scenario) => CompareWithEager(scenario, new CompileOptions { PoisonDeadSlots = true });

    /// <summary>
    /// Two batch shapes in turn (a short last batch every epoch, say): each shape's variant compiles once, and neither
    /// traces again although every traced call of one zeroes the gradients the other's graph writes.
    /// </summary>
    [Theory]
    [InlineData("mlp-adam-cosine")]
    [InlineData("sam-adam")]
    [InlineData("fgr-adam")]
    [InlineData("dbgr-adam")]
    public void TwoAlternatingShapesCompileTwoVariantsAndNeverRetrace(string scenario) =>
        CompareWithEager(scenario, new CompileOptions(), alternateRows: true);

    /// <summary>Eager steps of the compiled model between compiled calls (which replace its gradients) leave every result equal, without a retrace.</summary>
    [Theory]
    [InlineData("mlp-adam-cosine")]
    [InlineData("fgr-adam")]
    public void EagerStepsBetweenCompiledCallsStayCorrect(string scenario) =>
        CompareWithEager(scenario, new CompileOptions(), eagerSteps: [1, 5, 9, 10, 14]);

    /// <summary>
    /// Steps the same problem eagerly and compiled and compares losses, parameters and gradients bitwise. With
    /// <paramref name="alternateRows"/> odd steps take a batch one row shorter (two variants); the steps in
    /// <paramref name="eagerSteps"/> run the compiled problem eagerly instead of through the compiled function.
    /// </summary>
    private void CompareWithEager(string scenario, CompileOptions options, bool alternateRows = false, int[]? eagerSteps = null)
    {
        using var eager = Problem.Make(scenario, Device, alternateRows);
        using var compiled = Problem.Make(scenario, Device, alternateRows);
        using var step = compiled.Compile(options);
        eagerSteps ??= [];
        int variants = alternateRows ? 2 : 1;
        for (int s = 0; s < Steps; s++)
        {
            var batch = eager.Batch(s);
            var expected = eager.EagerStep(batch);
            if (eagerSteps.Contains(s))
                KernelAssertBits(expected, compiled.EagerStep(batch), $"{scenario}: loss at eager step {s} of the compiled problem");
            else
            {
                using var got = step.Call(batch.X, batch.Y);
                KernelAssertBits(expected, got.ToArray(), $"{scenario}: loss at step {s}");
            }
            eager.Schedule();
            compiled.Schedule();
            batch.Dispose();
            if (alternateRows || eagerSteps.Length > 0) AssertStateEqual(scenario, eager, compiled, $"step {s}");
        }
        Assert.True(step.Compilations == variants, $"{scenario}: {step.Compilations} compilations; " + string.Join("\n", step.Messages));
        Assert.Equal(variants, step.VariantCount);
        Assert.Equal(0, step.Retraces);
        Assert.Equal(Steps - eagerSteps.Length - 3 * variants, step.Replays);
        Assert.Empty(step.Messages);
        AssertStateEqual(scenario, eager, compiled, $"after {Steps} steps");
    }

    private static void AssertStateEqual(string scenario, Problem eager, Problem compiled, string when)
    {
        Assert.Equal(eager.Optimizer.StepCount, compiled.Optimizer.StepCount);
        for (int i = 0; i < eager.Parameters.Count; i++)
        {
            KernelAssertBits(eager.Parameters[i].ToArray(), compiled.Parameters[i].ToArray(), $"{scenario}: parameter {i} {when}");
            KernelAssertBits(eager.Parameters[i].Grad!.ToArray(), compiled.Parameters[i].Grad!.ToArray(), $"{scenario}: gradient {i} {when}");
        }
        Assert.Equal(eager.Optimizer.ParamGroups[0].LearningRate, compiled.Optimizer.ParamGroups[0].LearningRate);
        // The norms a multi-gradient step keeps on the device for the host to read are written by replays too.
        if (eager.Optimizer is DoubleBackpropGr dbgr)
            Assert.Equal(dbgr.LastGradientNormSquared, ((DoubleBackpropGr)compiled.Optimizer).LastGradientNormSquared);
        if (eager.Optimizer is Sam sam)
            Assert.Equal(sam.LastGradientNorm, ((Sam)compiled.Optimizer).LastGradientNorm);
    }

    [Fact]
    public void ExplainShowsTheGraphTheMemoryPlanAndTheLaunchCount()
    {
        using var p = Problem.Make("mlp-adam-cosine", Device);
        using var step = p.CompiledAndReplayedOnce();
        var text = step.Explain();
        var stats = step.LastGraph!;
        Assert.Contains($"{stats.Launches} kernel launches per replay", text);
        Assert.Contains("memory plan:", text);
        Assert.Contains("Gemm(", text);
        Assert.Contains("OptimizerKernels.AdamSteps(", text);
        Assert.Contains("passes: ", text);
        Assert.Contains("HostStep BaseOptimizer", text);
        Assert.Contains($"gradients: {p.Parameters.Count} tensors' Grad held by the graph", text);
        Assert.True(stats.Slots > 0 && stats.Slots <= stats.Temporaries, $"{stats.Temporaries} temporaries in {stats.Slots} slots");
        Assert.True(stats.SlotBytes <= stats.TemporaryBytes, $"slots {stats.SlotBytes} bytes, eager temporaries {stats.TemporaryBytes} bytes");
    }

    [Fact]
    public void TheReplayProfileTimesEveryStepOfEachReplayButTheFirst()
    {
        using var w = Tensor.Normal([5, 7], seed: 1, device: Device);
        using var f = Compiler.Compile((Tensor x) => (x.MatMul(w) * 2f).Tanh().Sum([0]), new CompileOptions { ProfileReplays = true });
        using var x = Tensor.Normal([3, 5], seed: 2, device: Device);
        int calls = 0;
        while (f.LastGraph == null)
        {
            f.Invoke(x).Dispose();
            Assert.True(++calls < 10, "the function never compiled");
        }
        // The call that compiled ran eagerly; the next is the first replay, which compiles its kernels' code and is not timed.
        f.Invoke(x).Dispose();
        Assert.Empty(f.ReplayProfile());
        f.Invoke(x).Dispose();
        var profile = f.ReplayProfile();
        Assert.Equal(f.LastGraph!.Steps, profile.Count);
        Assert.Equal(Enumerable.Range(0, profile.Count), profile.Select(p => p.Index));
        Assert.All(profile, p => Assert.True(p.Milliseconds >= 0 && !string.IsNullOrEmpty(p.Name), p.ToString()));
        Assert.Contains(profile, p => p.Name == "Gemm");
    }

    [Fact]
    public void TheReplayReportTablesTheProfileByStepWithTheProductsRate()
    {
        using var w = Tensor.Normal([5, 7], seed: 1, device: Device);
        using var f = Compiler.Compile((Tensor x) => (x.MatMul(w) * 2f).Tanh().Sum([0]), new CompileOptions { ProfileReplays = true });
        using var x = Tensor.Normal([3, 5], seed: 2, device: Device);
        for (int calls = 0; f.LastGraph == null; calls++)
        {
            Assert.True(calls < 10, "the function never compiled");
            f.Invoke(x).Dispose();
        }
        f.Invoke(x).Dispose();
        Assert.StartsWith("no profiled replay", f.ReplayReport());
        f.Invoke(x).Dispose();
        f.Invoke(x).Dispose();
        var profile = f.ReplayProfile();
        var product = Assert.Single(profile, p => p.Name == "Gemm");
        Assert.Equal(2.0 * 3 * 7 * 5, product.Flops);
        Assert.All(profile.Where(p => p.Name != "Gemm"), p => Assert.Equal(0, p.Flops));

        var lines = f.ReplayReport().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.StartsWith("step", lines[0]);
        Assert.Equal(profile.Select(p => p.Name).Distinct().Count() + 2, lines.Length);
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        var productLine = Assert.Single(lines, l => l.StartsWith("Gemm ", StringComparison.Ordinal));
        Assert.EndsWith((product.Flops / product.Milliseconds / 1e6).ToString("F1", ci), productLine);
        Assert.Contains(product.Milliseconds.ToString("F3", ci), productLine);
        var totalLine = lines[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("total", totalLine[0]);
        Assert.Equal(profile.Count.ToString(ci), totalLine[1]);
        Assert.Equal(profile.Sum(p => p.Milliseconds).ToString("F3", ci), totalLine[2]);
        // The costliest name first.
        var named = lines[1..^1].Select(l => double.Parse(l[61..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], ci)).ToList();
        Assert.Equal(named.OrderByDescending(v => v), named);
    }

    [Theory]
    [InlineData("mixer-sgd-momentum")]
    [InlineData("fno1d-adamw")]
    public void TheMemoryPlanSharesSlotsBetweenTemporariesWhoseLivesDoNotOverlap(string scenario)
    {
        using var p = Problem.Make(scenario, Device);
        using var step = p.CompiledAndReplayedOnce();
        var stats = step.LastGraph!;
        Assert.True(stats.Slots > 0 && stats.Slots < stats.Temporaries, $"{stats.Temporaries} temporaries in {stats.Slots} slots");
        Assert.True(stats.SlotBytes < stats.TemporaryBytes, $"slots {stats.SlotBytes} bytes, eager temporaries {stats.TemporaryBytes} bytes");
    }

    /// <summary>
    /// The plan that puts a temporary into the free slot opened first (the benchmarks' baseline) is as safe as the
    /// default one, which takes the slot freed last, and both need the same slots.
    /// </summary>
    [Theory]
    [InlineData("mixer-sgd-momentum")]
    [InlineData("fno1d-adamw")]
    public void BothSlotPoliciesPlanTheSameSlotsAndKeepResultsEqual(string scenario)
    {
        CompareWithEager(scenario, new CompileOptions { PoisonDeadSlots = true, ReuseRecentSlots = false });
        CompiledGraphStats Plan(bool recent)
        {
            using var p = Problem.Make(scenario, Device);
            using var step = p.CompiledAndReplayedOnce(new CompileOptions { ReuseRecentSlots = recent });
            return step.LastGraph!;
        }
        var (recentPlan, firstPlan) = (Plan(true), Plan(false));
        Assert.Equal(firstPlan.Temporaries, recentPlan.Temporaries);
        Assert.Equal(firstPlan.Slots, recentPlan.Slots);
        Assert.Equal(firstPlan.SlotBytes, recentPlan.SlotBytes);
    }

    [Fact]
    public void NewShapesCompileNewVariantsAndTheCacheIsBounded()
    {
        using var model = new Sequential(new Linear(5, 7, seed: 1, device: Device), new GELU(), new Linear(7, 3, seed: 2, device: Device));
        using var forward = Compiler.Compile(x => model.Forward(x), new CompileOptions { MaxVariants = 2 });
        foreach (int batch in new[] { 4, 3, 4, 2, 4 })
            for (int call = 0; call < 4; call++)
            {
                using var x = Tensor.Uniform([batch, 5], seed: (ulong)(10 * batch + call), device: Device);
                using var expected = model.Forward(x);
                using var got = forward.Invoke(x);
                KernelAssertBits(expected.ToArray(), got.ToArray(), $"batch {batch}, call {call}");
                Assert.True(forward.VariantCount <= 2);
            }
        Assert.Equal(2, forward.VariantCount);
        // 4, 3, 4 are cached (4 kept, 3 compiled); 2 pushes 3 out, so the last 4 still replays; 2 and 4 compiled once each.
        Assert.Equal(3, forward.Compilations);
        Assert.Contains(forward.Messages, m => m.Contains("dropped from the cache") && m.Contains("T[3, 5]"));
    }

    [Fact]
    public void AHostReadFallsBackToEagerWithAMessageOrThrowsUnderStrict()
    {
        using var model = new Sequential(new Linear(5, 3, seed: 1, device: Device));
        float seen = 0;
        Tensor Function(Tensor x)
        {
            var y = model.Forward(x);
            seen = y.Sum().Item();
            return y;
        }
        using var lenient = Compiler.Compile(Function);
        using var x = Tensor.Uniform([2, 5], seed: 3, device: Device);
        for (int i = 0; i < 5; i++)
        {
            using var got = lenient.Invoke(x);
            using var expected = model.Forward(x);
            KernelAssertBits(expected.ToArray(), got.ToArray(), $"call {i}");
        }
        Assert.Equal(0, lenient.Compilations);
        Assert.Equal(5, lenient.EagerCalls);
        var message = Assert.Single(lenient.Messages);
        output.WriteLine(message);
        Assert.Contains("Tensor.Item", message);
        Assert.Contains(nameof(AHostReadFallsBackToEagerWithAMessageOrThrowsUnderStrict), message);

        using var strict = Compiler.Compile(Function, new CompileOptions { Strict = true });
        var e = Assert.Throws<InvalidOperationException>(() => strict.Invoke(x));
        Assert.Contains("Tensor.Item", e.Message);
        Assert.True(seen != 0);
    }

    [Fact]
    public void AHostValueThatChangesEveryCallFallsBackToEager()
    {
        int call = 0;
        Tensor Function(Tensor x) => x * (1f + call++);
        using var f = Compiler.Compile(Function);
        using var x = Tensor.Uniform([3, 4], seed: 5, device: Device);
        for (int i = 0; i < 6; i++)
        {
            using var got = f.Invoke(x);
            KernelAssertBits(x.ToArray().Select(v => v * (1f + i)).ToArray(), got.ToArray(), $"call {i}");
        }
        var message = Assert.Single(f.Messages);
        output.WriteLine(message);
        Assert.Contains("changed between calls", message);
        Assert.Equal(0, f.Compilations);
    }

    [Fact]
    public void BadLabelsThrowTheEagerErrorBeforeAnythingRuns()
    {
        using var p = Problem.Make("mlp-adam-cosine", Device);
        using var step = p.CompiledAndReplayedOnce();
        Assert.Equal(1, step.Replays);
        using var x = Tensor.Uniform([4, 6], seed: 9, device: Device);
        using var bad = new IndexTensor([0, 1, 7, 2]);
        var held = p.Parameters.Select(t => t.ToArray()).ToList();
        int stepsBefore = p.Optimizer.StepCount;
        var compiledError = Assert.Throws<ArgumentOutOfRangeException>(() => step.Call(x, bad));
        for (int i = 0; i < held.Count; i++) KernelAssertBits(held[i], p.Parameters[i].ToArray(), $"parameter {i} after the rejected call");
        Assert.Equal(stepsBefore, p.Optimizer.StepCount);
        using var eager = Problem.Make("mlp-adam-cosine", Device);
        var eagerError = Assert.Throws<ArgumentOutOfRangeException>(() => eager.EagerStep(new Batch(x, bad)));
        Assert.Equal(eagerError.Message, compiledError.Message);
        Assert.Throws<ArgumentException>(() => step.Call(x, null!));
    }

    /// <summary>Bitwise equality of two float arrays, naming the first differing index.</summary>
    protected static void KernelAssertBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, eager gives {expected[i]:R}");
    }

    /// <summary>One batch: inputs and labels (or targets).</summary>
    internal sealed record Batch(Tensor X, object Y) : IDisposable
    {
        public void Dispose()
        {
            X.Dispose();
            (Y as IDisposable)?.Dispose();
        }
    }

    /// <summary>A model, its optimizer and schedule, and its training step; built identically by every call of <see cref="Make"/>.</summary>
    internal sealed class Problem : IDisposable
    {
        private readonly Module model;
        private readonly LrScheduler? schedule;
        private readonly Func<Tensor, object, Tensor> step;
        private readonly Func<int, Batch> batches;

        private Problem(Module model, Optimizer optimizer, LrScheduler? schedule, Func<Tensor, object, Tensor> step, Func<int, Batch> batches)
        {
            this.model = model;
            Optimizer = optimizer;
            this.schedule = schedule;
            this.step = step;
            this.batches = batches;
        }

        public Optimizer Optimizer { get; }

        public IReadOnlyList<Tensor> Parameters => model.Parameters();

        public Batch Batch(int s) => batches(s);

        public void Schedule() => schedule?.Step();

        /// <summary>One eager step, its intermediates freed as the compiler frees them; returns the loss.</summary>
        public float[] EagerStep(Batch b)
        {
            using var scope = new TensorScope();
            return step(b.X, b.Y).ToArray();
        }

        /// <summary>The step compiled, called four times (three eager calls, one replay) on batches 0 to 3.</summary>
        public CompiledFunction CompiledAndReplayedOnce(CompileOptions? options = null)
        {
            var step = Compile(options ?? new CompileOptions());
            for (int s = 0; s < 4; s++)
            {
                using var batch = Batch(s);
                step.Call(batch.X, batch.Y).Dispose();
            }
            return step;
        }

        /// <summary>The step compiled for its label kind (an index tensor, or a target tensor).</summary>
        public CompiledFunction Compile(CompileOptions o)
        {
            using var b = batches(0);
            return b.Y is IndexTensor
                ? Compiler.Compile((Tensor x, IndexTensor y) => step(x, y), o)
                : Compiler.Compile((Tensor x, Tensor y) => step(x, y), o);
        }

        /// <summary>The problem of <paramref name="scenario"/>; with <paramref name="alternateRows"/> its odd batches are one row shorter (classifiers only).</summary>
        public static Problem Make(string scenario, Device d, bool alternateRows = false)
        {
            Func<int, Batch> Classes(int features, int classes, int rows) => s =>
            {
                int n = alternateRows && s % 2 == 1 ? rows - 1 : rows;
                return new Batch(Tensor.Normal([n, features], seed: (ulong)(100 + s), device: d),
                    new IndexTensor(Enumerable.Range(0, n).Select(r => (r * 7 + s) % classes).ToArray()));
            };
            Func<Tensor, object, Tensor> TrainOn(Module m, Optimizer o, Func<Tensor, object, Tensor> lossOf) => (x, y) =>
            {
                o.ZeroGrad();
                var loss = lossOf(m.Forward(x), y);
                loss.Backward();
                o.Step();
                return loss;
            };
            Func<Tensor, object, Tensor> Train(Module m, Optimizer o) => TrainOn(m, o, (logits, y) => Losses.CrossEntropy(logits, (IndexTensor)y));
            Func<Tensor, object, Tensor> Regress(Module m, Optimizer o) => TrainOn(m, o, (field, y) => Losses.Mse(field, (Tensor)y));
            // Input and target fields of one shape: batch s draws seeds seed + s and seed + 100 + s.
            Func<int, Batch> Fields(int[] shape, ulong seed) => s => new Batch(
                Tensor.Normal(shape, seed: seed + (ulong)s, device: d), Tensor.Normal(shape, seed: seed + 100 + (ulong)s, device: d));
            Func<Tensor, object, Tensor> Closure(Module m, Optimizer o) => (x, y) => o.Step(() =>
            {
                var loss = Losses.CrossEntropy(m.Forward(x), (IndexTensor)y);
                loss.Backward();
                return loss;
            });
            Module Mlp() => new Sequential(new Linear(6, 16, seed: 1, device: d), new GELU(), new Linear(16, 8, seed: 2, device: d), new ReLU(),
                new Linear(8, 3, seed: 3, device: d));
            switch (scenario)
            {
                case "mlp-adam-cosine":
                {
                    var m = Mlp();
                    var o = new Adam(m.Parameters(), 1e-2f);
                    return new Problem(m, o, new WarmupCosineLr(o, warmupSteps: 4, totalSteps: 20), Train(m, o), Classes(6, 3, 4));
                }
                case "mixer-sgd-momentum": // the RP-Mixer
                {
                    var m = new Mixer(4, 2, 3, 2, 3, 4, classes: 3, randomPermutations: true, seed: 1, device: d);
                    var o = new Sgd(m.Parameters(), 0.05f, momentum: 0.9f);
                    return new Problem(m, o, new StepLr(o, 3, 0.7f), Train(m, o), Classes(16, 3, 3));
                }
                case "mixer-transposes-adam":
                {
                    var m = new Mixer(new Int2(4, 6), new Int2(2, 3), 3, 2, 3, 5, classes: 3, seed: 2, device: d, tiedBiases: true);
                    var o = new Adam(m.Parameters(), 1e-2f);
                    return new Problem(m, o, new StepLr(o, 4, 0.8f), Train(m, o), Classes(24, 3, 3));
                }
                case "fno1d-adamw":
                {
                    var m = new Fno1d(modes: 3, width: 4, blocks: 2, projectionHidden: 8, seed: 2, device: d);
                    var o = new AdamW(m.Parameters(), 1e-2f, weightDecay: 1e-2f);
                    return new Problem(m, o, new StepLr(o, 5, 0.5f), Regress(m, o), Fields([2, 12], 200));
                }
                case "fno2d-adam":
                {
                    var m = new Fno2d(modes1: 2, modes2: 2, width: 3, blocks: 2, projectionHidden: 6, seed: 3, device: d);
                    var o = new Adam(m.Parameters(), 1e-2f);
                    return new Problem(m, o, new StepLr(o, 5, 0.5f), Regress(m, o), Fields([2, 5, 4], 500));
                }
                case "spn-adam":
                {
                    var m = new Spn.Spn(RegionGraph.RandomBinary(6, 2, 2, seed: 4), 3, 3, SpnLeafType.Gaussian, seed: 5, device: d);
                    var o = new Adam(m.Parameters(), 1e-2f);
                    Tensor Nll(Tensor x, object y)
                    {
                        o.ZeroGrad();
                        var loss = -m.LogLikelihood(x).Mean();
                        loss.Backward();
                        o.Step();
                        return loss;
                    }
                    return new Problem(m, o, new StepLr(o, 4, 0.8f), Nll, s =>
                    {
                        var x = Tensor.Normal([5, 6], seed: (ulong)(400 + s), device: d);
                        Ops.MarkSpnGaussianDataChecked(x);
                        return new Batch(x, Tensor.Zeros([1], d));
                    });
                }
                case "sam-adam":
                {
                    var m = Mlp();
                    var o = new Sam(new Adam(m.Parameters(), 1e-2f), rho: 0.05f);
                    return new Problem(m, o, new StepLr(o, 2, 0.9f), Closure(m, o), Classes(6, 3, 4));
                }
                case "asam-sgd":
                {
                    var m = Mlp();
                    var o = new Sam(new Sgd(m.Parameters(), 0.05f, momentum: 0.9f), rho: 0.5f, adaptive: true);
                    return new Problem(m, o, null, Closure(m, o), Classes(6, 3, 4));
                }
                case "fgr-adam":
                {
                    var m = Mlp();
                    var o = new FiniteDifferenceGr(new Adam(m.Parameters(), 1e-2f), gamma: 0.1f, epsilon: 1e-2f);
                    return new Problem(m, o, new StepLr(o, 3, 0.8f), Closure(m, o), Classes(6, 3, 4));
                }
                case "dbgr-adam":
                {
                    var m = Mlp();
                    var o = new DoubleBackpropGr(new Adam(m.Parameters(), 1e-2f), gamma: 0.1f);
                    // DB-GR takes its own gradients: the closure runs the forward pass only.
                    Tensor Step(Tensor x, object y) => o.Step(() => Losses.CrossEntropy(m.Forward(x), (IndexTensor)y));
                    return new Problem(m, o, new StepLr(o, 3, 0.8f), Step, Classes(6, 3, 4));
                }
                default:
                    throw new ArgumentException($"unknown scenario {scenario}");
            }
        }

        public void Dispose()
        {
            Optimizer.Dispose();
            model.Dispose();
        }
    }
}

/// <summary>The compiler on the CPU SIMD set.</summary>
public sealed class CpuCompilerTests(ITestOutputHelper output) : CompilerTests(output)
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>The compiler on the ILGPU set (CPU emulator, small shapes).</summary>
[Collection("ilgpu")]
public sealed class IlgpuCompilerTests(ITestOutputHelper output) : CompilerTests(output)
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
