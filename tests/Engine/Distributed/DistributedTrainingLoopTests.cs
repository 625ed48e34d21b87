using Engine.Data;
using Engine.Distributed;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Spn;
using Engine.Training;

namespace Engine.Tests.Distributed;

/// <summary>
/// The library's training loops run data-parallel: two in-process ranks, each on its share of every batch, end with
/// the parameters and the reported metrics of one process training on the whole batch (within the float-rounding
/// tolerance of <see cref="DistributedDataParallelTests.SingleProcessTolerance"/>), on every rank.
/// </summary>
public sealed class DistributedTrainingLoopTests
{
    private const int Ranks = 2, Epochs = 2, GlobalBatch = 16, LoaderSeed = 3;

    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    private static void AssertClose(float[][] expected, float[][] actual, string what)
    {
        double difference = DistributedDataParallelTests.MaxRelativeDifference(actual, expected);
        Assert.True(difference < DistributedDataParallelTests.SingleProcessTolerance, $"{what}: {difference:G3} from one process with the whole batch");
    }

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(actual - expected) <= DistributedDataParallelTests.SingleProcessTolerance * (1 + Math.Abs(expected)),
            $"{what}: {actual:G9}, one process {expected:G9}");

    [Fact]
    public void ClassifierTraining_epochs_on_two_ranks_match_one_process()
    {
        var scenario = DdpScenarios.All["mlp"];
        (float[][] Parameters, (double Loss, double Accuracy)[] Epochs) Train(Communicator? c)
        {
            using var model = scenario.CreateModel(1 + 1000 * (c?.Rank ?? 0));
            using var ddp = c == null ? null : new DistributedDataParallel(model, c);
            using var optimizer = new Adam(model.Parameters(), 1e-2f);
            var loader = new DataLoader(scenario.CreateData(), GlobalBatch, seed: LoaderSeed, device: Cpu,
                sampler: c == null ? null : new DistributedSampler(c));
            var epochs = Enumerable.Range(0, Epochs).Select(_ => ClassifierTraining.Epoch((Module?)ddp ?? model, loader, optimizer)).ToArray();
            return (DdpScenarios.Snapshot(model), epochs);
        }

        var single = Train(null);
        var ranks = RankThreads.RunAll(InProcessCommunicator.CreateGroup(Ranks), c => Train(c));
        foreach (var (rank, r) in ranks.Select((x, r) => (x, r)))
        {
            AssertClose(single.Parameters, rank.Parameters, $"rank {r}");
            for (int e = 0; e < Epochs; e++)
            {
                AssertClose(single.Epochs[e].Loss, rank.Epochs[e].Loss, $"rank {r}, epoch {e} loss");
                Assert.Equal(single.Epochs[e].Accuracy, rank.Epochs[e].Accuracy);
            }
        }
    }

    [Fact]
    public void OperatorTraining_fit_on_two_ranks_matches_one_process()
    {
        var scenario = DdpScenarios.All["fno"];
        (float[][] Parameters, List<OperatorTraining.EpochRecord> Records) Train(Communicator? c)
        {
            using var model = scenario.CreateModel(1 + 1000 * (c?.Rank ?? 0));
            using var ddp = c == null ? null : new DistributedDataParallel(model, c);
            using var optimizer = new Adam(model.Parameters(), 3e-3f);
            var data = scenario.CreateData();
            var records = OperatorTraining.Fit((Module?)ddp ?? model, optimizer, data, data, Epochs, GlobalBatch, halveEvery: 1,
                seed: LoaderSeed, device: Cpu);
            return (DdpScenarios.Snapshot(model), records);
        }

        var single = Train(null);
        var ranks = RankThreads.RunAll(InProcessCommunicator.CreateGroup(Ranks), c => Train(c));
        foreach (var (rank, r) in ranks.Select((x, r) => (x, r)))
        {
            AssertClose(single.Parameters, rank.Parameters, $"rank {r}");
            for (int e = 0; e < Epochs; e++)
            {
                AssertClose(single.Records[e].TrainLoss, rank.Records[e].TrainLoss, $"rank {r}, epoch {e} training loss");
                AssertClose(single.Records[e].TestError, rank.Records[e].TestError, $"rank {r}, epoch {e} test error");
                Assert.Equal(single.Records[e].LearningRate, rank.Records[e].LearningRate);
            }
        }
    }

    [Fact]
    public void SpnTraining_adam_on_two_ranks_matches_one_process()
    {
        var scenario = DdpScenarios.All["spn"];
        var values = scenario.CreateData().Features;
        var data = new DensityData(values, 8);
        (float[][] Parameters, SpnTrainingResult Result) Train(Communicator? c)
        {
            using var spn = (Spn.Spn)scenario.CreateModel(1 + 1000 * (c?.Rank ?? 0));
            var options = new SpnTrainingOptions { Epochs = Epochs, BatchSize = GlobalBatch, LearningRate = 3e-2f, Patience = 0, Seed = LoaderSeed, Communicator = c };
            var result = SpnTraining.TrainAdam(spn, data, data, options);
            return (DdpScenarios.Snapshot(spn), result);
        }

        var single = Train(null);
        var ranks = RankThreads.RunAll(InProcessCommunicator.CreateGroup(Ranks), c => Train(c));
        foreach (var (rank, r) in ranks.Select((x, r) => (x, r)))
        {
            AssertClose(single.Parameters, rank.Parameters, $"rank {r}");
            Assert.Equal(single.Result.BestEpoch, rank.Result.BestEpoch);
            for (int e = 0; e < Epochs; e++)
            {
                AssertClose(single.Result.TrainCurve[e], rank.Result.TrainCurve[e], $"rank {r}, epoch {e} training log-likelihood");
                AssertClose(single.Result.ValidCurve[e], rank.Result.ValidCurve[e], $"rank {r}, epoch {e} validation log-likelihood");
            }
        }
    }

    [Fact]
    public void SpnTraining_em_refuses_a_communicator()
    {
        var group = InProcessCommunicator.CreateGroup(1);
        using var spn = (Spn.Spn)DdpScenarios.All["spn"].CreateModel(1);
        var values = DdpScenarios.All["spn"].CreateData().Features;
        var data = new DensityData(values, 8);
        var e = Assert.Throws<NotSupportedException>(() => SpnTraining.TrainEm(spn, data, data, new SpnTrainingOptions { Communicator = group[0] }));
        Assert.Contains("TrainEm", e.Message);
        group[0].Dispose();
    }
}
