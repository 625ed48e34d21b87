using Engine.Autodiff;
using Engine.Data;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Spn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Bad input through the public API: impossible shapes, non-finite learning rates, a step without gradients, a second
/// backward pass through a released graph, empty data files, SPN data checked once where it enters, and anomaly mode.
/// </summary>
public class InputValidationTests
{
    private static readonly Device Cpu = Device.Cpu;

    // ---------- tensor creation ----------

    [Theory]
    [InlineData("Zeros")]
    [InlineData("Ones")]
    [InlineData("Full")]
    [InlineData("FromArray")]
    public void AnOverflowingShapeNamesTheOpAndTheShape(string op)
    {
        int[] shape = [int.MaxValue, int.MaxValue, 4];
        var e = Assert.Throws<ArgumentException>(() => op switch
        {
            "Zeros" => Tensor.Zeros(shape, Cpu),
            "Ones" => Tensor.Ones(shape, Cpu),
            "Full" => Tensor.Full(shape, 2f, Cpu),
            _ => Tensor.FromArray([1f], shape, Cpu),
        });
        Assert.StartsWith($"{op}: shape [2147483647, 2147483647, 4]", e.Message);
        Assert.IsType<OverflowException>(e.InnerException);
    }

    // ---------- optimizers ----------

    private static Tensor[] Params() => [Tensor.FromArray([1f, 2f], [2], Cpu, requiresGrad: true)];

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(-1f)]
    public void LearningRatesMustBeFiniteAndNonNegative(float lr)
    {
        Assert.Contains("learning rate must be a finite number >= 0", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(Params(), lr)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(Params(), lr));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(Params(), lr));
        using var adam = new Adam(Params(), 0.1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => adam.LearningRate = lr);
        Assert.Equal(0.1f, adam.LearningRate);
        using var sam = new Sam(new Sgd(Params(), 0.2f));
        Assert.Throws<ArgumentOutOfRangeException>(() => sam.LearningRate = lr);
        Assert.Equal(0.2f, sam.LearningRate);
    }

    [Theory]
    [InlineData("momentum")]
    [InlineData("weight-decay")]
    [InlineData("dampening")]
    [InlineData("adam-weight-decay")]
    [InlineData("adam-eps")]
    public void OtherHyperParametersRefuseNaNAndInfinity(string which)
    {
        foreach (var v in new[] { float.NaN, float.PositiveInfinity })
            Assert.Throws<ArgumentOutOfRangeException>(() => which switch
            {
                "momentum" => (Optimizer)new Sgd(Params(), 0.1f, momentum: v),
                "weight-decay" => new Sgd(Params(), 0.1f, weightDecay: v),
                "dampening" => new Sgd(Params(), 0.1f, momentum: 0.5f, dampening: v),
                "adam-weight-decay" => new Adam(Params(), weightDecay: v),
                _ => new Adam(Params(), eps: v),
            });
    }

    [Fact]
    public void AStepWithoutGradientsChangesNothingAndIsNotCounted()
    {
        var ps = Params();
        using var opt = new Adam(ps, 0.1f);
        opt.Step();
        Assert.Equal(0, opt.StepCount);
        Assert.Equal([1f, 2f], ps[0].ToArray());
        (ps[0] * ps[0]).Sum().Backward();
        opt.Step();
        Assert.Equal(1, opt.StepCount);
        Assert.NotEqual([1f, 2f], ps[0].ToArray());
    }

    // ---------- a second backward pass ----------

    [Fact]
    public void BackwardTwiceThroughOneGraphIsAnErrorUnlessRetained()
    {
        var x = Tensor.FromArray([1f, 2f, 3f], [3], Cpu, requiresGrad: true);
        var loss = (x * x).Sum();
        loss.Backward();
        var e = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("already used by a backward pass and released", e.Message);
        Assert.Contains("retainGraph: true", e.Message);
        Assert.Equal([2f, 4f, 6f], x.Grad!.ToArray()); // the refused pass added nothing

        x.ZeroGrad();
        var kept = (x * x).Sum();
        kept.Backward(retainGraph: true);
        kept.Backward();
        Assert.Equal([4f, 8f, 12f], x.Grad!.ToArray()); // accumulated on purpose
        Assert.Throws<InvalidOperationException>(() => Autograd.Grad(kept, [x]));

        // A released graph refuses Autograd.Grad too; a forward pass reusing its leaves is a new graph.
        var fresh = (x * 3f).Sum();
        Assert.Equal([3f, 3f, 3f], Autograd.Grad(fresh, [x])[0]!.ToArray());
        Assert.Throws<InvalidOperationException>(() => fresh.Backward());
    }

    [Fact]
    public void CreateGraphAndHessianVectorProductsKeepTheGraph()
    {
        var x = Tensor.FromArray([1f, 2f], [2], Cpu, requiresGrad: true);
        var loss = (x * x * x).Sum();
        var v = Tensor.FromArray([1f, 0f], [2], Cpu);
        var h1 = Autograd.Hvp(loss, [x], [v])[0].ToArray();
        var h2 = Autograd.Hvp(loss, [x], [v])[0].ToArray(); // the same loss again
        Assert.Equal(h1, h2);
        Assert.Equal([6f, 0f], h1);                         // H = diag(6x)
        var g = Autograd.Grad(loss, [x], createGraph: true)[0]!;
        g.Sum().Backward(retainGraph: true);                // through the retained graph (which it reaches too)
        loss.Backward();                                    // and once more, the last use
        Assert.Throws<InvalidOperationException>(() => loss.Backward());
    }

    // ---------- empty data ----------

    [Fact]
    public void EmptyDataFilesAndSetsAreClearErrors()
    {
        var file = Path.GetTempFileName();
        try
        {
            Assert.Contains("no rows (the file is empty)", Assert.Throws<FormatException>(() => DensityData.Load(file)).Message);
            Assert.Contains("no samples (the file is empty)", Assert.Throws<FormatException>(() => Optdigits.Load(file)).Message);
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Contains("no samples", Assert.Throws<ArgumentException>(() => new DataLoader(new Dataset([], [4], []), 8, device: Cpu)).Message);
        using var spn = new Spn.Spn(RegionGraph.RandomBinary(4, 1, 1, 1), 2, 2, SpnLeafType.Bernoulli, seed: 1, device: Cpu);
        var empty = new DensityData([], 4, "empty");
        Assert.Contains("data 'empty' has no rows", Assert.Throws<ArgumentException>(() => SpnTraining.TrainAdam(spn, empty, empty)).Message);
        Assert.Contains("has no rows", Assert.Throws<ArgumentException>(() => SpnTraining.MeanLogLikelihood(spn, empty)).Message);
        Assert.Contains("infinite", Assert.Throws<ArgumentException>(() => new DensityData([0f, float.PositiveInfinity], 2)).Message);
    }

    // ---------- SPN data ----------

    private static Spn.Spn Bernoulli(int vars = 4) => new(RegionGraph.RandomBinary(vars, 1, 2, 3), 2, 2, SpnLeafType.Bernoulli, seed: 3, device: Cpu);

    [Fact]
    public void SpnDataMessagesNameTheRankAndTheDataSet()
    {
        using var spn = Bernoulli();
        using var rank1 = Tensor.FromArray([0f, 1f, 0f, 1f], [4], Cpu);
        var e = Assert.Throws<ArgumentException>(() => spn.LogLikelihood(rank1));
        Assert.Contains("data [4] has rank 1; it must be [batch, 4]", e.Message);
        Assert.DoesNotContain("-1", e.Message);

        var unnamed = new DensityData([0f, 1f, 0f], 3);
        var e2 = Assert.Throws<ArgumentException>(() => SpnTraining.MeanLogLikelihood(spn, unnamed));
        Assert.Contains("the data (1 x 3) has 3 columns", e2.Message);
        Assert.DoesNotContain("''", e2.Message);

        var outside = new DensityData([0f, 1f, 2f, 0f, 1f, 0f, 1f, 1f], 4, "bad");
        var e3 = Assert.Throws<ArgumentException>(() => SpnTraining.TrainAdam(spn, outside, outside));
        Assert.Contains("data 'bad' has 2 at row 0, column 2, outside the leaves' support {0, ..., 1}", e3.Message);
    }

    [Fact]
    public void SpnDataIsCheckedOnceNotOnEveryForward()
    {
        using var spn = Bernoulli();
        using var x = Tensor.FromArray([0f, 1f, float.NaN, 1f, 1f, 0f, 0f, 0f], [2, 4], Cpu);
        var first = spn.LogLikelihood(x).ToArray();
        // Written behind the check's back (no CopyFrom), the bad value is not seen: the values are not copied to
        // the host again. (The kernel reads an index out of the leaves' support here; nothing reaches the user
        // that way except through internal access.)
        x.Buffer.CopyFromHost([0f, 1f, float.NaN, 1f, 1f, 0f, 0f, 0f]);
        Assert.Equal(first, spn.LogLikelihood(x).ToArray());
        // Written through the API, the tensor is checked again.
        x.CopyFrom([0f, 1f, 5f, 1f, 1f, 0f, 0f, 0f]);
        var e = Assert.Throws<ArgumentException>(() => spn.LogLikelihood(x));
        Assert.Contains("value 5 at row 0, variable 2", e.Message);
        Assert.Contains("Spn.LogLikelihood", e.Message);
    }

    [Fact]
    public void TrainingBatchesAreNotCheckedAgain()
    {
        using var spn = Bernoulli();
        var rng = new Random(1);
        var data = new DensityData([.. Enumerable.Range(0, 40).Select(_ => (float)rng.Next(2))], 4, "coins");
        var r = SpnTraining.TrainAdam(spn, data, data, new SpnTrainingOptions { Epochs = 2, BatchSize = 4 });
        Assert.True(double.IsFinite(r.BestValidLogLikelihood));
    }

    // ---------- anomaly mode ----------

    [Fact]
    public void AnomalyModeNamesTheForwardOpThatFirstProducesInfinity()
    {
        var x = Tensor.FromArray([1f, 0f, 2f], [3], Cpu, requiresGrad: true);
        using (AnomalyMode.Enable())
        {
            var e = Assert.Throws<AnomalyException>(() => (x * 2f).Log().Sum());
            Assert.Equal("log", e.Op);
            Assert.Contains("log produced -Infinity at element 1 of its result [3] from inputs [3]", e.Message);
            Assert.Contains(nameof(AnomalyModeNamesTheForwardOpThatFirstProducesInfinity), e.Message);
            Assert.Contains("InputValidationTests.cs:", e.Message);
        }
        Assert.False(AnomalyMode.IsEnabled);
        Assert.Equal(float.NegativeInfinity, x.Log().Sum().Item()); // off: the value just flows
    }

    [Fact]
    public void AnomalyModeNamesTheBackwardRuleAndWhereItsOpWasRecorded()
    {
        var x = Tensor.FromArray([4f, 0f], [2], Cpu, requiresGrad: true);
        using (AnomalyMode.Enable())
        {
            var loss = x.Sqrt().Sum(); // finite forward: sqrt(0) = 0
            var e = Assert.Throws<AnomalyException>(() => loss.Backward());
            Assert.Equal("sqrt", e.Op);
            Assert.Contains("backward of sqrt produced Infinity at element 1 of the gradient [2] for its input 0", e.Message);
            Assert.Contains($"recorded at {nameof(InputValidationTests)}.{nameof(AnomalyModeNamesTheBackwardRuleAndWhereItsOpWasRecorded)}", e.Message);
        }
    }

    [Fact]
    public void AnomalyModeIsSilentOnAHealthyTrainingStep()
    {
        using var m = new Sequential(new Linear(3, 4, seed: 1, device: Cpu), new Tanh(), new Linear(4, 2, seed: 2, device: Cpu));
        using var opt = new Adam(m.Parameters());
        using var x = Tensor.Normal([5, 3], 4, device: Cpu);
        using (AnomalyMode.Enable())
        {
            var loss = Losses.CrossEntropy(m.Forward(x), [0, 1, 0, 1, 1]);
            loss.Backward();
            opt.Step();
        }
        Assert.Equal(1, opt.StepCount);
    }
}
