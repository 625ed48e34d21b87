using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Compilation;

/// <summary>
/// The passes before fusion (copy elimination, constant folding, dead-code elimination): each fires where its rule
/// says and nowhere else, the graph launches exactly the calls it did not take out, and results stay equal to eager
/// bit for bit over several replays (with dead slots poisoned, so a constant or a renamed buffer that a slot reuses
/// would show). Written once, run per kernel set.
/// </summary>
public abstract class CompilerPassTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    private static readonly CompileOptions Checked = new() { PoisonDeadSlots = true, Fuse = false };

    [Fact]
    public void ACopyOfATemporaryIntoStateBecomesTheProducersOutput()
    {
        using var state = Tensor.Zeros([3, 5], Device);
        using var eagerState = Tensor.Zeros([3, 5], Device);
        Tensor Step(Tensor x, Tensor s)
        {
            var t = x.Tanh();
            InPlace.Copy(t, s);
            return s * 2f;
        }
        var stats = CompareWithEager((x, _) => Step(x, state), (x, _) => Step(x, eagerState), () => (state, eagerState));
        Assert.Equal((1, 2), (stats.CopiesRemoved, stats.Launches));
    }

    [Fact]
    public void ACopyIsKeptWhenItsDestinationIsReadBeforeIt()
    {
        using var state = Tensor.Full([3, 5], 0.5f, Device);
        using var eagerState = Tensor.Full([3, 5], 0.5f, Device);
        Tensor Step(Tensor x, Tensor s)
        {
            var t = x.Tanh();
            var old = s * 2f;
            InPlace.Copy(t, s);
            return old + s;
        }
        var stats = CompareWithEager((x, _) => Step(x, state), (x, _) => Step(x, eagerState), () => (state, eagerState));
        Assert.Equal((0, 4), (stats.CopiesRemoved, stats.Launches));
    }

    [Fact]
    public void CallsOnConstantsRunOnceAtBuildTime()
    {
        // Full is a fill and "* 3" an affine map of it: both fold; the sum with x stays.
        Tensor Step(Tensor x, Tensor w) => Tensor.Full([5], 2f, Device) * 3f + x * w;
        var stats = CompareWithEager(Step, Step, null);
        Assert.Equal((2, 2), (stats.CallsFolded, stats.Launches));
    }

    [Fact]
    public void ACallWhoseResultNobodyReadsIsRemoved()
    {
        Tensor Step(Tensor x, Tensor w)
        {
            var unused = (x + w).Tanh();
            return x.Relu();
        }
        var stats = CompareWithEager(Step, Step, null);
        Assert.Equal((2, 1), (stats.DeadCallsRemoved, stats.Launches));
    }

    /// <summary>Programs computing one value twice (or nearly, or around in-place writes): calls removed as repeats, launches left.</summary>
    public static TheoryData<string, int, int> RepeatCases => new()
    {
        { "unary twice", 1, 2 },
        { "binary twice", 1, 2 },
        { "reduce twice", 1, 2 },
        { "permute twice", 1, 2 },
        { "affine chain twice, then its reader twice", 3, 4 },
        { "other unary op", 0, 3 },
        { "other scalar", 0, 3 },
        { "other axes", 0, 5 },
        { "other shape", 0, 3 },
        { "other operand order", 0, 3 },
        { "input written between", 0, 5 },
        { "first result written before the repeat's last reader", 0, 6 },
        { "first result written after the repeat's last reader", 1, 4 },
    };

    [Theory]
    [MemberData(nameof(RepeatCases))]
    public void ACallRepeatingAnEarlierOneOnTheSameInputsRunsOnce(string program, int removed, int launches)
    {
        Func<Tensor, Tensor, Tensor> step = program switch
        {
            "unary twice" => (x, _) => x.Exp() * x.Exp(),
            "binary twice" => (x, w) => (x - w) * (x - w),
            "reduce twice" => (x, _) => x.Sum([1]) - x.Sum([1]),
            "permute twice" => (x, _) => x.Transpose(0, 1) * x.Transpose(0, 1),
            // 2x and 2x + 1 (two affine calls) repeat, and then tanh of each reads one buffer: the second tanh repeats too.
            "affine chain twice, then its reader twice" => (x, _) => (x * 2f + 1f).Tanh() * (x * 2f + 1f).Tanh(),
            "other unary op" => (x, _) => x.Exp() * x.Tanh(),
            "other scalar" => (x, _) => (x * 2f) * (x * 3f),
            "other axes" => (x, _) => x.Sum([1]).Sum([0]) - x.Sum([0]).Sum([0]),
            // One buffer permuted as [3, 5] and as [5, 3] (a view): the same call but for the input shape.
            "other shape" => (x, _) => x.Transpose(0, 1) * x.Reshape(5, 3).Transpose(0, 1).Reshape(5, 3),
            "other operand order" => (x, w) => (x - w) * (w - x),
            "input written between" => (x, w) =>
            {
                var t = x + w;
                var a = t.Exp();
                InPlace.Scale(t, 0.5f);
                return a * t.Exp();
            },
            "first result written before the repeat's last reader" => (x, w) =>
            {
                var a = x.Exp();
                var b = x.Exp();
                var c = b * w;
                InPlace.Scale(a, 0.5f);
                return a + c * b;
            },
            "first result written after the repeat's last reader" => (x, w) =>
            {
                var a = x.Exp();
                var c = x.Exp() * w;
                InPlace.Scale(a, 0.5f);
                return a + c;
            },
            _ => throw new ArgumentException($"unknown program {program}"),
        };
        var stats = CompareWithEager(step, step, null);
        Assert.Equal((removed, launches), (stats.CommonSubexpressionsRemoved, stats.Launches));
    }

    /// <summary>Repeats in a graph that fuses: removed, and launches left.</summary>
    public static TheoryData<string, int, int> FusedRepeatCases => new()
    {
        // |x| merged would be read by two groups, so stored and launched on its own; repeated, the whole expression (w read
        // through broadcasting) is one tree.
        { "elementwise repeats stay for fusion", 0, 1 },
        { "reduction repeats go", 1, 2 },
    };

    [Theory]
    [MemberData(nameof(FusedRepeatCases))]
    public void WhenTheGraphFusesOnlyCallsOutsideFusedGroupsAreMerged(string program, int removed, int launches)
    {
        Func<Tensor, Tensor, Tensor> step = program == "reduction repeats go"
            ? (x, _) => x.Sum([1]).Exp() - x.Sum([1]).Tanh()
            : (x, w) => (x.Abs() + w).Tanh() - (x.Abs() * w).Exp();
        var stats = CompareWithEager(step, step, null, new CompileOptions { PoisonDeadSlots = true });
        Assert.Equal((removed, launches), (stats.CommonSubexpressionsRemoved, stats.Launches));
    }

    [Theory]
    // The copy of the repeat into the state goes first (copy elimination), so the repeat writes the state itself.
    [InlineData("repeat writes persistent state", 1, 3)]
    // The first result goes into the state; the repeat is the returned tensor.
    [InlineData("repeat is the returned tensor", 1, 3)]
    public void ARepeatWhoseResultOutlivesTheCallIsKept(string program, int copies, int launches)
    {
        using var state = Tensor.Zeros([3, 5], Device);
        using var eagerState = Tensor.Zeros([3, 5], Device);
        Tensor Step(Tensor x, Tensor s)
        {
            if (program == "repeat is the returned tensor")
            {
                InPlace.Copy(x.Exp() * 2f, s);
                return x.Exp();
            }
            var a = x.Tanh();
            InPlace.Copy(x.Tanh(), s);
            return a * 2f;
        }
        var stats = CompareWithEager((x, _) => Step(x, state), (x, _) => Step(x, eagerState), () => (state, eagerState));
        Assert.Equal((copies, 0, launches), (stats.CopiesRemoved, stats.CommonSubexpressionsRemoved, stats.Launches));
    }

    [Fact]
    public void PassesTakeOutOfATrainingStepExactlyTheCallsTheyReport()
    {
        using var problem = CompilerTests.Problem.Make("mlp-adam-cosine", Device);
        using var plainProblem = CompilerTests.Problem.Make("mlp-adam-cosine", Device);
        using var optimized = problem.Compile(new CompileOptions { Fuse = false });
        using var plain = plainProblem.Compile(new CompileOptions { Fuse = false, Optimize = false });
        for (int s = 0; s < 5; s++)
        {
            using var batch = problem.Batch(s);
            using var a = optimized.Call(batch.X, batch.Y);
            using var b = plain.Call(batch.X, batch.Y);
            Assert.Equal(BitConverter.SingleToInt32Bits(b.Item()), BitConverter.SingleToInt32Bits(a.Item()));
        }
        var on = optimized.LastGraph!;
        var off = plain.LastGraph!;
        // The MLP has six parameters: each gradient was computed into a temporary and copied; the backward seed is a
        // fill and a scale by 1/batch; the six Adam calls become one multi-tensor update; on a set that runs GEMM
        // epilogues, the three linear layers' bias additions go into their products, and so do the GELU and the relu
        // (the products keep the pre-activations, which the activations' backward reads).
        bool epilogues = Device.Kernels is IGemmEpilogueKernels;
        int biases = epilogues ? 3 : 0, activations = epilogues ? 2 : 0;
        Assert.Equal((6, 2, 0, 6, biases, 0, activations),
            (on.CopiesRemoved, on.CallsFolded, on.DeadCallsRemoved, on.UpdatesMerged, on.BiasEpilogues, on.ResidualEpilogues, on.ActivationEpilogues));
        Assert.Equal((0, 0, 0, 0, 0, 0, 0),
            (off.CopiesRemoved, off.CallsFolded, off.DeadCallsRemoved, off.UpdatesMerged, off.BiasEpilogues, off.ResidualEpilogues, off.ActivationEpilogues));
        // On a set that computes the cross-entropy with its gradient, the loss's one-hot, softmax and difference join it.
        int lossGradients = Device.Kernels is ISoftmaxCrossEntropyKernels ? 1 : 0;
        Assert.Equal((lossGradients, 0), (on.LossGradientsFused, off.LossGradientsFused));
        Assert.Equal(off.Launches - on.CopiesRemoved - on.CallsFolded - (on.UpdatesMerged - 1) - on.BiasEpilogues - on.ActivationEpilogues
                     - 3 * on.LossGradientsFused, on.Launches);
        Assert.Contains($"6 copies eliminated, 2 calls folded into constants, 0 dead calls removed, 6 optimizer calls merged into multi-tensor updates, {biases} bias additions " +
                        $"folded into GEMM epilogues, 0 residual additions and {activations} activation chains folded into GEMM epilogues", optimized.Explain());
        Assert.Contains("OptimizerKernels.AdamSteps(", optimized.Explain());
    }

    [Fact]
    public void DoubleBackpropagationComputesTheActivationDerivativesOnce()
    {
        using var problem = CompilerTests.Problem.Make("dbgr-adam", Device);
        using var plainProblem = CompilerTests.Problem.Make("dbgr-adam", Device);
        using var optimized = problem.Compile(new CompileOptions { Fuse = false, PoisonDeadSlots = true });
        using var plain = plainProblem.Compile(new CompileOptions { Fuse = false, Optimize = false });
        for (int s = 0; s < 5; s++)
        {
            using var batch = problem.Batch(s);
            using var a = optimized.Call(batch.X, batch.Y);
            using var b = plain.Call(batch.X, batch.Y);
            Assert.Equal(BitConverter.SingleToInt32Bits(b.Item()), BitConverter.SingleToInt32Bits(a.Item()));
        }
        for (int i = 0; i < problem.Parameters.Count; i++)
            AssertBits(plainProblem.Parameters[i].ToArray(), problem.Parameters[i].ToArray(), $"parameter {i}");
        // The gradient's own backward builds the GELU's derivative again (eight calls: x/√2, erf, 0.5·erf + 0.5, x²,
        // -x²/2 - ln √(2π), exp, x·pdf, cdf + x·pdf) and the relu's step function, on the same pre-activations.
        Assert.Equal(9, optimized.LastGraph!.CommonSubexpressionsRemoved);
        Assert.Contains("9 common subexpressions removed", optimized.Explain());
    }

    [Fact]
    public void EverySgdCallOfAStepMergesIntoOneUpdate()
    {
        using var problem = CompilerTests.Problem.Make("mixer-sgd-momentum", Device);
        using var step = problem.Compile(new CompileOptions());
        for (int s = 0; s < 5; s++)
        {
            using var batch = problem.Batch(s);
            step.Call(batch.X, batch.Y).Dispose();
        }
        Assert.Equal(problem.Parameters.Count, step.LastGraph!.UpdatesMerged);
        Assert.Contains("OptimizerKernels.SgdSteps(", step.Explain());
        Assert.DoesNotContain("OptimizerKernels.SgdStep(", step.Explain());
    }

    /// <summary>Programs around products: the folds expected on a set that runs GEMM epilogues, and the launches with and without them.</summary>
    public static TheoryData<string, int, int, int, int, int> EpilogueCases => new()
    {
        // program, bias / residual / activation folds, launches with epilogues, launches without
        { "mixer block", 2, 1, 1, 2, 6 },
        { "activation read again", 1, 0, 1, 2, 4 },
        { "skip then activation", 1, 0, 1, 1, 5 },
        { "skip after bias then activation", 1, 1, 1, 1, 6 },
        { "product read twice", 0, 0, 0, 3, 3 },
    };

    [Theory]
    [MemberData(nameof(EpilogueCases))]
    public void ProductsTakeTheAdditionsAndActivationsAfterThem(string program, int biases, int residuals, int activations, int launches, int unfolded)
    {
        using var w1 = Tensor.Normal([5, 7], seed: 3, device: Device);
        using var b1 = Tensor.Normal([7], seed: 4, device: Device);
        using var w2 = Tensor.Normal([7, 5], seed: 5, device: Device);
        using var b2 = Tensor.Normal([5], seed: 6, device: Device);
        using var w = Tensor.Normal([5, 5], seed: 9, device: Device);
        Func<Tensor, Tensor, Tensor> step = program switch
        {
            // x + Linear2(gelu(Linear1(x))): the first product adds its bias and applies the GELU (its pre-activation
            // has no other reader, so only the GELU is stored); the second adds its bias and the residual x.
            "mixer block" => (x, _) => x + ((x.MatMul(w1) + b1).Gelu().MatMul(w2) + b2),
            // relu(z) * z, z = x W + b: the product stores z and relu(z); their product stays a call.
            "activation read again" => (x, _) =>
            {
                var z = x.MatMul(w1) + b1;
                return z.Relu() * z;
            },
            // tanh(x + x W) * 2 - 1, the affine tail part of the chain: a product without a bias takes a same-shaped
            // addend as a bias covering the whole result; with a bias already folded, as a residual.
            "skip then activation" => (x, _) => (x + x.MatMul(w)).Tanh() * 2f - 1f,
            "skip after bias then activation" => (x, _) => (x + (x.MatMul(w) + b2)).Tanh() * 2f - 1f,
            // (x W + x) * x W: the product's output is read twice, so the addition cannot take it over.
            _ => (x, _) =>
            {
                var t = x.MatMul(w);
                return (t + x) * t;
            },
        };
        var stats = CompareWithEager(step, step, null);
        var expected = Device.Kernels is IGemmEpilogueKernels ? (biases, residuals, activations, launches) : (0, 0, 0, unfolded);
        Assert.Equal(expected, (stats.BiasEpilogues, stats.ResidualEpilogues, stats.ActivationEpilogues, stats.Launches));
    }

    [Fact]
    public void TheMixersResidualAdditionsAndGelusGoIntoTheProducts()
    {
        using var problem = CompilerTests.Problem.Make("mixer-sgd-momentum", Device);
        using var step = problem.Compile(new CompileOptions { Fuse = false });
        for (int s = 0; s < 5; s++)
        {
            using var batch = problem.Batch(s);
            step.Call(batch.X, batch.Y).Dispose();
        }
        // Two blocks, each with two skip connections and two GELUs. The token-mixing layers permute their result (J_out,
        // a gather of its own) before their bias and skip connection, so only the channel-mixing skip connections fold.
        var stats = step.LastGraph!;
        bool epilogues = Device.Kernels is IGemmEpilogueKernels;
        Assert.Equal(epilogues ? (2, 4) : (0, 0), (stats.ResidualEpilogues, stats.ActivationEpilogues));
    }

    /// <summary>
    /// Programs around a permute: the folds expected on a set whose mapped products keep the bits, and the launches
    /// with them and without them (on a set that runs epilogues but does not gather).
    /// </summary>
    public static TheoryData<string, int, int, int> PermuteCases => new()
    {
        // program, permutes folded, launches folded, launches unfolded
        { "permute read by a product", 1, 1, 2 },
        { "permute read by a matrix-vector product", 0, 2, 2 },
        { "permute read as both operands", 1, 1, 2 },
        { "batched permute read by two products", 1, 3, 4 },
        { "permute with a 2-d batch grid", 1, 3, 4 },
        { "permute read by an elementwise call too", 0, 3, 3 },
        { "permute input overwritten before the product", 0, 3, 3 },
        { "permute input overwritten by the product", 0, 2, 2 },
    };

    [Theory]
    [MemberData(nameof(PermuteCases))]
    public void ProductsReadThePermutesBeforeThemInPlace(string program, int folds, int launches, int unfolded)
    {
        using var w1 = Tensor.Normal([3, 7], seed: 3, device: Device);
        using var w3 = Tensor.Normal([3, 3], seed: 5, device: Device);
        using var v1 = Tensor.Normal([3, 1], seed: 4, device: Device);
        using var batched1 = Tensor.Normal([5, 2, 1], seed: 7, device: Device);
        using var batched2 = Tensor.Normal([5, 2, 1], seed: 8, device: Device);
        using var batched3 = Tensor.Normal([4, 6, 7], seed: 9, device: Device);
        using var grid = Tensor.Normal([2, 2, 2, 2, 3], seed: 10, device: Device);
        int[] stateShape = program.Contains("by the product") ? [3, 3] : [3, 5];
        using var state = Tensor.Normal(stateShape, seed: 6, device: Device);
        using var eagerState = Tensor.Normal(stateShape, seed: 6, device: Device);
        Func<Tensor, Tensor, Tensor> Step(Tensor s) => program switch
        {
            // x^T W: the product reads x through a map (a transpose is a permutation of the whole matrix).
            "permute read by a product" => (x, _) => x.Permute(1, 0).MatMul(w1),
            // x^T v: the plain product takes the matrix-vector path, whose sums a mapped (packed) product would not repeat.
            "permute read by a matrix-vector product" => (x, _) => x.Permute(1, 0).MatMul(v1),
            // x^T as [3, 5] times x^T as [5, 3]: both operands gathered from x.
            "permute read as both operands" => (x, _) => { var p = x.Permute(1, 0); return p.Reshape(3, 5).MatMul(p); },
            // A [5, 1, 3] permute of x read as B by two batched products (batch stride 3 in the permute, 1 in x), multiplied.
            "batched permute read by two products" => (x, _) =>
            {
                var p = x.Permute(1, 0).Reshape(5, 1, 3);
                return batched1.MatMul(p) * batched2.MatMul(p);
            },
            // The FNO-2d's mode grid: [batch, modes1, 2, modes2, width] to [modes1, modes2, batch, 2, width], four
            // products of 2 x 6 whose starts in the input (0, 3, 12, 15) are not one stride apart: a map per matrix.
            "permute with a 2-d batch grid" => (x, _) => (grid * x.Sum()).Permute(1, 3, 0, 2, 4).Reshape(4, 2, 6).MatMul(batched3),
            // (x^T W) * x^T: the elementwise product reads the permute's result, which must stay.
            "permute read by an elementwise call too" => (x, _) => { var p = x.Permute(1, 0); return p.MatMul(w3) * p; },
            // The state is permuted, then overwritten, then the permute's result is multiplied: it holds the old state.
            "permute input overwritten before the product" => (x, _) =>
            {
                var p = s.Permute(1, 0);
                InPlace.Copy(x.Tanh(), s);
                return p.MatMul(w1);
            },
            // The product's result is copied over the state the permute read: the product writes the state directly
            // (copy elimination), so it cannot also read it. Where the doubling goes into the product's epilogue, two launches.
            _ => (x, _) =>
            {
                InPlace.Copy(s.Permute(1, 0).MatMul(w3), s);
                return s * 2f;
            },
        };
        var stats = CompareWithEager(Step(state), Step(eagerState), program.Contains("overwritten") ? () => (state, eagerState) : null);
        // Both sets run epilogues (the launches assume them); only the CPU set gathers.
        Assert.True(Device.Kernels is IGemmEpilogueKernels);
        var expected = Device.Kernels is IGemmGatherKernels ? (folds, launches) : (0, unfolded);
        Assert.Equal(expected, (stats.PermutesFolded, stats.Launches));
    }

    /// <summary>
    /// The spectral layers' permutes (two per block forward, two backward) all fold: FNO-1d's with one map per operand,
    /// FNO-2d's forward ones with a map per matrix (their batch is a 2-d mode grid, two strides of the permute's
    /// input). The textbook Mixer's patch extraction folds into the embedding product.
    /// </summary>
    [Theory]
    [InlineData("fno1d-adamw", 8)]
    [InlineData("fno2d-adam", 8)]
    [InlineData("mixer-transposes-adam", 1)]
    public void TheModelsPermutesFoldIntoTheirProducts(string scenario, int permutes)
    {
        using var problem = CompilerTests.Problem.Make(scenario, Device);
        using var step = problem.Compile(new CompileOptions { PoisonDeadSlots = true });
        for (int s = 0; s < 5; s++)
        {
            using var batch = problem.Batch(s);
            step.Call(batch.X, batch.Y).Dispose();
        }
        int expected = Device.Kernels is IGemmGatherKernels ? permutes : 0;
        Assert.Equal(expected, step.LastGraph!.PermutesFolded);
        Assert.Contains($"{expected} permutes folded into GEMM operand loads", step.Explain());
    }

    /// <summary>Values read by several groups: the repeats the rematerialisation pass adds, and the launches left.</summary>
    public static TheoryData<string, int, int> RecomputeCases => new()
    {
        // x² read by exp and by tanh: stored and read twice (two launches), or computed inside one tree.
        { "value read by two trees", 1, 1 },
        // x² read by exp before a sum and by tanh before a mean: one launch for it and one per reduction and the sum,
        // or each reduction computes its own.
        { "value read by two reductions", 1, 3 },
        // x² read by a sum and a mean directly: the sum stores it while reducing it (a reduction epilogue), so a
        // repeat saves nothing.
        { "value read by two reductions directly", 0, 3 },
        // A pair of repeats: x² read twice, and |x| read twice by the same two trees.
        { "two values read by two trees", 2, 1 },
        // t = x + 1 is scaled in place after t·t is read once: a repeat would read the scaled t.
        { "input written between the readers", 0, 3 },
        // A permute reads x² too, so it is stored anyway: a repeat would add arithmetic and save nothing.
        { "value also read by a permute", 0, 4 },
        // Five readers, more than a value is recomputed for: one launch stores it, one tree reads it five times.
        { "value read by five trees", 0, 2 },
    };

    [Theory]
    [MemberData(nameof(RecomputeCases))]
    public void AValueReadByTwoGroupsIsComputedInEach(string program, int recomputed, int launches)
    {
        Func<Tensor, Tensor, Tensor> step = program switch
        {
            "value read by two trees" => (x, _) => { var d = x * x; return d.Exp() * d.Tanh().Abs(); },
            "value read by two reductions" => (x, _) => { var d = x * x; return d.Exp().Sum([1]) + d.Tanh().Mean([1]); },
            "value read by two reductions directly" => (x, _) => { var d = x * x; return d.Sum([1]) + d.Mean([1]); },
            "two values read by two trees" => (x, _) => { var d = x * x; var a = x.Abs(); return (d.Exp() + a) * (d.Tanh() - a); },
            "input written between the readers" => (x, _) =>
            {
                var t = x + 1f;
                var d = t * t;
                var a = d.Exp();
                InPlace.Scale(t, 0.5f);
                return a * d.Tanh() * t;
            },
            "value also read by a permute" => (x, _) => { var d = x * x; return d.Exp() * d.Transpose(0, 1).Transpose(0, 1); },
            _ => (x, _) => { var d = x * x; return d.Exp() + d.Tanh() + d.Abs() + d.Sqrt() + d.Neg(); },
        };
        var stats = CompareWithEager(step, step, null, new CompileOptions { PoisonDeadSlots = true });
        Assert.Equal((recomputed, launches), (stats.Recomputed, stats.Launches));
    }

    /// <summary>
    /// A regression step's loss difference feeds the loss's square and its gradient: computed in both. Where the
    /// products take no epilogues (the ILGPU set), each FNO block's pre-activation sum (the bias addition and the skip)
    /// is read by the GELU and by its gradient, and the MLP's bias additions by the GELU (and the three calls of its
    /// gradient that read it) and by the relu's step: computed in each. (The FNO tasks' relative L2 loss also
    /// recomputes its two norms' square roots.)
    /// </summary>
    [Theory]
    [InlineData("fno1d-adamw", 1, 3)]
    [InlineData("fno2d-adam", 1, 3)]
    [InlineData("mlp-adam-cosine", 0, 4)]
    public void TheLossDifferenceIsComputedInTheLossAndInItsGradient(string scenario, int withEpilogues, int withoutEpilogues)
    {
        int recomputed = Device.Kernels is IGemmEpilogueKernels ? withEpilogues : withoutEpilogues;
        using var problem = CompilerTests.Problem.Make(scenario, Device);
        using var step = problem.Compile(new CompileOptions { PoisonDeadSlots = true });
        for (int s = 0; s < 5; s++)
        {
            using var batch = problem.Batch(s);
            step.Call(batch.X, batch.Y).Dispose();
        }
        Assert.Equal(recomputed, step.LastGraph!.Recomputed);
        Assert.Contains($"{recomputed} cheap calls repeated for a second reader", step.Explain());
    }

    /// <summary>
    /// Compiles <paramref name="compiled"/> (poisoning dead slots), calls it and <paramref name="eager"/> on the same
    /// inputs six times, and checks the results (and the states <paramref name="states"/> returns) bit for bit.
    /// </summary>
    /// <summary>
    /// A cross-entropy and its gradient: the loss, the one-hot, the softmax and their difference become one call on a
    /// set that implements <see cref="ISoftmaxCrossEntropyKernels"/> (2 launches fewer), unless a host step runs
    /// between the loss and its backward, or the softmax's result is shared with another reader (the caller's own
    /// softmax of the logits, which the backward's reuses); results equal eager's bit for bit either way.
    /// </summary>
    [Theory]
    [InlineData("loss and gradient", true)]
    [InlineData("a host step between", false)]
    [InlineData("the caller's softmax of the logits", false)]
    public void ACrossEntropyTakesItsGradientsSoftmaxAndOneHot(string program, bool fuses)
    {
        using var labels = new IndexTensor([4, 0, 2]);
        Tensor Step(Tensor x, Tensor w)
        {
            var z = x.Detach();
            z.RequiresGrad = true;
            var logits = z * w;
            var loss = logits.CrossEntropy(labels);
            if (program == "a host step between") Compiler.RunOnEveryCall(() => { });
            if (program == "the caller's softmax of the logits") loss = loss + logits.Softmax(1).Sum() * 0.5f;
            loss.Backward();
            return z.Grad! + loss;
        }
        var stats = CompareWithEager(Step, Step, null);
        int expected = fuses && Device.Kernels is ISoftmaxCrossEntropyKernels ? 1 : 0;
        Assert.Equal(expected, stats.LossGradientsFused);
    }

    /// <summary>
    /// Softmaxes that nothing orders apart run as one call on a set that implements <see cref="ISoftmaxBatchKernels"/>
    /// (one launch fewer per softmax joined), not when one reads the other's result or a host step lies between them;
    /// results equal eager's bit for bit either way.
    /// </summary>
    [Theory]
    [InlineData("independent", 3)]
    [InlineData("the second reads the first", 0)]
    [InlineData("a host step between", 0)]
    public void IndependentSoftmaxesRunAsOneCall(string program, int batched)
    {
        Tensor Step(Tensor x, Tensor w)
        {
            var first = x.Softmax(1);
            if (program == "a host step between") Compiler.RunOnEveryCall(() => { });
            var second = program == "the second reads the first" ? first.LogSoftmax(0) : w.LogSoftmax(0);
            var third = program == "independent" ? x.LogSoftmax(0) : x.Exp();
            return first + second + third;
        }
        var unbatched = CompareWithEager(Step, Step, null, new CompileOptions { PoisonDeadSlots = true, Fuse = false });
        var stats = CompareWithEager(Step, Step, null, new CompileOptions { PoisonDeadSlots = true });
        int expected = Device.Kernels is ISoftmaxBatchKernels ? batched : 0;
        Assert.True((expected, 0) == (stats.SoftmaxesBatched, unbatched.SoftmaxesBatched), $"{stats}");
    }

    /// <summary>
    /// The backwards of two independent log-softmaxes (each a row sum read back by the launch after it) run as one
    /// launch, not when a host step lies between them; results equal eager's bit for bit either way.
    /// </summary>
    [Theory]
    [InlineData("independent", 2)]
    [InlineData("a host step between", 0)]
    public void IndependentReductionsReadBackRunAsOneLaunch(string program, int batched)
    {
        Tensor Step(Tensor x, Tensor w)
        {
            var (a, b) = (x.Detach(), w.Detach());
            a.RequiresGrad = true;
            b.RequiresGrad = true;
            var first = (a.LogSoftmax(1) * x).Sum();
            var second = (b.LogSoftmax(0) * w).Sum();
            first.Backward();
            if (program == "a host step between") Compiler.RunOnEveryCall(() => { });
            second.Backward();
            return a.Grad! + b.Grad! + first;
        }
        var stats = CompareWithEager(Step, Step, null, new CompileOptions { PoisonDeadSlots = true });
        Assert.True((batched, 2) == (stats.ReductionMapsBatched, stats.ReductionsMapped), $"{stats}");
    }

    /// <summary>
    /// An index-add op's zero fill and scatter run as one call on a set that implements
    /// <see cref="IIndexScatterKernels"/>, with eager's bits: the forward's, and the one in the backward of a gather.
    /// </summary>
    [Fact]
    public void AZeroFillAndTheIndexAddIntoItRunAsOneCall()
    {
        using var index = new IndexTensor([4, 0, 4]);
        Tensor Step(Tensor x, Tensor w)
        {
            var leaf = x.Detach();
            leaf.RequiresGrad = true;
            var padded = leaf.IndexAdd(0, index, 5) * w;
            var gathered = leaf.IndexSelect(1, index);
            var loss = padded.Sum() + (gathered * gathered).Sum();
            loss.Backward();
            return leaf.Grad! + loss;
        }
        var stats = CompareWithEager(Step, Step, null, new CompileOptions { PoisonDeadSlots = true });
        Assert.True((Device.Kernels is IIndexScatterKernels ? 2 : 0) == stats.ZeroFillsFolded, $"{stats}");
    }

    /// <summary>
    /// A negated sum or mean runs as the reduction of the negated input, in one launch, with eager's bits; not when the
    /// reduction's result has another reader, nor for a max or when something else lies between the two calls.
    /// </summary>
    [Theory]
    [InlineData("negated mean", 1)]
    [InlineData("negated row sums", 1)]
    [InlineData("the sum read again", 0)]
    [InlineData("a negated max", 0)]
    [InlineData("a call between", 0)]
    public void ANegatedSumRunsAsTheSumOfTheNegatedInput(string program, int moved)
    {
        Tensor Step(Tensor x, Tensor w)
        {
            var t = (x * w).Tanh();
            switch (program)
            {
                case "negated mean": return -t.Mean();
                case "negated row sums": return -t.Sum(1);
                case "the sum read again": { var s = t.Sum(1); return -s + s * 2f; }
                case "a negated max": return -t.Max(1);
                default: { var s = t.Sum(1); var u = w.Exp(); return -s + u.Sum(); }
            }
        }
        var stats = CompareWithEager(Step, Step, null, new CompileOptions { PoisonDeadSlots = true });
        Assert.True(moved == stats.NegationsMoved, $"{stats}");
    }

    /// <summary>
    /// An SPN's product layers run with the sum layer after them on a set that implements
    /// <see cref="ISpnProductSumKernels"/>: a forward pass stores no products, a training step stores those its backward
    /// reads. The negative log-likelihood's negated mean runs as one reduction. Losses and parameters equal eager's bit
    /// for bit over six calls, with dead slots poisoned.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SpnProductsRunWithTheirSumsAndTheNegatedMeanWithItsReduction(bool train)
    {
        Engine.Spn.Spn Model() => new(Engine.Spn.RegionGraph.RandomBinary(7, 2, 3, seed: 3), 3, 4, seed: 2, device: Device);
        var (compiledModel, eagerModel) = (Model(), Model());
        var (compiledOptimizer, eagerOptimizer) = (new Engine.Optim.Adam(compiledModel.Parameters(), 1e-2f), new Engine.Optim.Adam(eagerModel.Parameters(), 1e-2f));
        Tensor Step(Engine.Spn.Spn m, Engine.Optim.Adam o, Tensor x)
        {
            if (!train)
            {
                using var noGrad = GradMode.NoGrad();
                return -m.LogLikelihood(x).Mean();
            }
            o.ZeroGrad();
            var loss = -m.LogLikelihood(x).Mean();
            loss.Backward();
            o.Step();
            return loss;
        }
        using var unfused = Compiler.Compile((Tensor x) => Step(compiledModel, compiledOptimizer, x), new CompileOptions { Fuse = false });
        using var f = Compiler.Compile((Tensor x) => Step(compiledModel, compiledOptimizer, x), new CompileOptions { PoisonDeadSlots = true });
        for (int call = 0; call < 6; call++)
        {
            var rng = new Random(call);
            using var x = Tensor.FromArray(Enumerable.Range(0, 5 * 7).Select(_ => (float)rng.Next(2)).ToArray(), [5, 7], Device);
            Ops.MarkSpnCategoricalDataChecked(x, 1);
            float[] expected;
            using (new TensorScope()) expected = Step(eagerModel, eagerOptimizer, x).ToArray();
            using var got = f.Invoke(x);
            AssertBits(expected, got.ToArray(), $"call {call}\n{f.Explain()}");
        }
        foreach (var (c, e) in compiledModel.Parameters().Zip(eagerModel.Parameters())) AssertBits(e.ToArray(), c.ToArray(), "parameters after six calls");
        Assert.True(f.Replays == 3, string.Join("\n", f.Messages));
        using (var x = Tensor.Zeros([5, 7], Device))
        {
            Ops.MarkSpnCategoricalDataChecked(x, 1);
            for (int call = 0; call < 3; call++) unfused.Invoke(x).Dispose();
        }
        int products = unfused.Explain().Split('\n').Count(line => line.Contains("SpnKernels.SpnProduct("));
        bool fuses = Device.Kernels is ISpnProductSumKernels;
        var plan = f.Explain();
        Assert.True(products > 0, unfused.Explain());
        Assert.True((fuses ? products : 0, 1) == (f.LastGraph!.SpnProductSums, f.LastGraph.NegationsMoved), plan);
        Assert.Equal(fuses ? 0 : products, plan.Split('\n').Count(line => line.Contains("SpnKernels.SpnProduct(")));
        if (fuses) Assert.Equal(train ? 0 : products, plan.Split('\n').Count(line => line.Contains("product=null")));
    }

    private CompiledGraphStats CompareWithEager(Func<Tensor, Tensor, Tensor> compiled, Func<Tensor, Tensor, Tensor> eager, Func<(Tensor, Tensor)>? states,
        CompileOptions? options = null)
    {
        using var f = Compiler.Compile(compiled, options ?? Checked);
        for (int call = 0; call < 6; call++)
        {
            using var x = Tensor.Normal([3, 5], seed: (ulong)(call + 1), device: Device);
            using var w = Tensor.Normal([5], seed: (ulong)(call + 11), device: Device);
            float[] expected;
            using (new TensorScope()) expected = eager(x, w).ToArray();
            using var got = f.Invoke(x, w);
            AssertBits(expected, got.ToArray(), $"call {call}\n{f.Explain()}");
            if (states?.Invoke() is var (s, e)) AssertBits(e.ToArray(), s.ToArray(), $"state after call {call}");
        }
        Assert.True(f.Replays == 3, string.Join("\n", f.Messages));
        return f.LastGraph!;
    }

    private static void AssertBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: element {i} compiled {actual[i]:R}, eager {expected[i]:R}");
    }
}

/// <summary>The passes on the CPU set.</summary>
public sealed class CpuCompilerPassTests : CompilerPassTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>
    /// Two sibling sums pair when a launch between them touches little, and not when it streams more than the CPU
    /// set's reach (a 20 MB input against 16 MB); the result equals eager's bit for bit either way.
    /// </summary>
    [Theory]
    [InlineData(1 << 16, 2)]
    [InlineData(5 << 20, 0)]
    public void SiblingSumsPairOnlyWithinTheCpuSetsReach(int between, int paired)
    {
        using var a = Tensor.Normal([256, 64], seed: 1, device: Device);
        using var b = Tensor.Normal([256, 64], seed: 2, device: Device);
        using var big = Tensor.Normal([between], seed: 3, device: Device);
        Tensor Step(Tensor x)
        {
            var first = (a * x).Sum(0);
            var scale = (big * 0.01f).Exp().Mean();
            var second = (b * x).Sum(0);
            return (first + second) * scale;
        }
        using var f = Compiler.Compile(Step);
        for (int call = 0; call < 4; call++)
        {
            using var x = Tensor.Normal([256, 64], seed: (ulong)(call + 7), device: Device);
            float[] expected;
            using (new TensorScope()) expected = Step(x).ToArray();
            using var got = f.Invoke(x);
            var actual = got.ToArray();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"call {call}: element {i} compiled {actual[i]:R}, eager {expected[i]:R}");
        }
        Assert.True((paired, paired == 0 ? 1 : 0) == (f.LastGraph!.ReductionsPaired, f.LastGraph.PairsBeyondReach), f.Explain());
    }
}

/// <summary>The passes on the ILGPU set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuCompilerPassTests : CompilerPassTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
