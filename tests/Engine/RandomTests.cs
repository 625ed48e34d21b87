using Engine.Autodiff;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Tests that seed, draw from or restore the global generator (<see cref="Engine.Random"/>) run in this collection,
/// alone: xUnit runs a collection with parallelization disabled after the parallel ones, so no other test draws a
/// seed in between.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRandomCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "global-random";
}

/// <summary>The global generator: unseeded layers differ, one seed reproduces a run, explicit seeds are unaffected.</summary>
[Collection(GlobalRandomCollection.Name)]
public class RandomTests
{
    private static readonly Device D = Device.Cpu;

    private static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    private static List<int[]> Bits(Module m) => m.Parameters().Select(Bits).ToList();

    [Fact]
    public void UnseededLayersDiffer()
    {
        using var a = new Linear(4, 4, device: D);
        using var b = new Linear(4, 4, device: D);
        Assert.NotEqual(Bits(a.Weight), Bits(b.Weight));
        using var s = new Sequential(new Linear(4, 4, device: D), new ReLU(), new Linear(4, 4, device: D));
        Assert.NotEqual(Bits(s.Parameters()[0]), Bits(s.Parameters()[2]));
        using var k1 = new KroneckerLinear(2, 3, 2, 3, device: D);
        using var k2 = new KroneckerLinear(2, 3, 2, 3, device: D);
        Assert.NotEqual(Bits(k1), Bits(k2));
        using var m1 = new Mixer(8, 4, 4, 1, 4, 4, randomPermutations: true, device: D);
        using var m2 = new Mixer(8, 4, 4, 1, 4, 4, randomPermutations: true, device: D);
        Assert.NotEqual(Bits(m1), Bits(m2));
        Assert.NotEqual(m1.NamedBuffers()[0].Value.Read(), m2.NamedBuffers()[0].Value.Read());
        using var f1 = new Fno1d(4, 4, blocks: 1, projectionHidden: 4, device: D);
        using var f2 = new Fno1d(4, 4, blocks: 1, projectionHidden: 4, device: D);
        Assert.NotEqual(Bits(f1), Bits(f2));
        using var u1 = Tensor.Uniform([16], device: D);
        using var u2 = Tensor.Uniform([16], device: D);
        Assert.NotEqual(Bits(u1), Bits(u2));
    }

    [Fact]
    public void OneSeedReproducesAWholeModel()
    {
        List<int[]> Build()
        {
            using var m = new Sequential(new Linear(5, 6, device: D), new Tanh(), new Linear(6, 2, device: D));
            using var noise = Tensor.Normal([3], device: D);
            using var w = Tensor.Zeros([3, 4], D);
            Init.XavierUniform(w);
            return [.. Bits(m), Bits(noise), Bits(w)];
        }
        Engine.Random.Seed(42);
        var first = Build();
        Assert.Equal(4UL, Engine.Random.Draws); // two layers, one tensor factory, one initialiser: one seed each
        Engine.Random.Seed(42);
        Assert.Equal(first, Build());
        Engine.Random.Seed(43);
        Assert.NotEqual(first, Build());
        Assert.Equal(43UL, Engine.Random.InitialSeed);
    }

    [Fact]
    public void ExplicitSeedsAreUnchangedAndDrawNothing()
    {
        Engine.Random.Seed(7);
        using var layer = new Linear(4, 3, seed: 5, device: D);
        // Linear's rule: U(±1/√in) from seeds 2s+1 (weight) and 2s+2 (bias).
        using var w = Tensor.Uniform([3, 4], 11, -0.5f, 0.5f, D);
        using var b = Tensor.Uniform([3], 12, -0.5f, 0.5f, D);
        Assert.Equal(Bits(w), Bits(layer.Weight));
        Assert.Equal(Bits(b), Bits(layer.Bias!));
        Assert.Equal(0UL, Engine.Random.Draws);
        Assert.Equal(CounterRng.Bits(7, 0), Engine.Random.NextSeed());
        Assert.Equal(CounterRng.Bits(7, 1), Engine.Random.NextSeed());
    }

    [Fact]
    public void StateRoundTripsAndBadStateIsRefused()
    {
        Engine.Random.Seed(ulong.MaxValue);
        Engine.Random.NextSeed();
        var state = Engine.Random.StateDict();
        ulong next = Engine.Random.NextSeed();
        Engine.Random.LoadStateDict(state);
        Assert.Equal(next, Engine.Random.NextSeed());
        Assert.Equal(ulong.MaxValue, Engine.Random.InitialSeed);

        var missing = new StateDict { { "seed", 1L } };
        Assert.Contains("'draws' is missing", Assert.Throws<ArgumentException>(() => Engine.Random.LoadStateDict(missing)).Message);
        var extra = new StateDict { { "seed", 1L }, { "draws", 0L }, { "other", 0L } };
        Assert.Contains("'other'", Assert.Throws<ArgumentException>(() => Engine.Random.LoadStateDict(extra)).Message);
        var wrongKind = new StateDict { { "seed", 1.0 }, { "draws", 0L } };
        Assert.Contains("Float64", Assert.Throws<ArgumentException>(() => Engine.Random.LoadStateDict(wrongKind)).Message);
        Assert.Equal(ulong.MaxValue, Engine.Random.InitialSeed);
    }

    [Fact]
    public void ResumingFromACheckpointRestoresTheGenerator()
    {
        Engine.Random.Seed(3);
        using var m = new Sequential(new Linear(3, 2, device: D));
        using var opt = new Sgd(m.Parameters(), 0.1f);
        var draws = Engine.Random.Draws;
        using var ms = new MemoryStream();
        Checkpoint.Write(m, ms, opt);
        var expected = Engine.Random.NextSeed();
        Engine.Random.Seed(99);
        // Weights only: the generator is left alone.
        Checkpoint.Read(m, ms.ToArray());
        Assert.Equal(99UL, Engine.Random.InitialSeed);
        Checkpoint.Read(m, ms.ToArray(), opt);
        Assert.Equal(3UL, Engine.Random.InitialSeed);
        Assert.Equal(draws, Engine.Random.Draws);
        Assert.Equal(expected, Engine.Random.NextSeed());
    }

    [Fact]
    public void NewRandomStillMeansTheFrameworksGenerator()
    {
        var ours = new Engine.Random(5);
        var framework = new System.Random(5);
        Assert.Equal(framework.Next(), ours.Next());
        Assert.Equal(framework.NextDouble(), ours.NextDouble());
    }
}
