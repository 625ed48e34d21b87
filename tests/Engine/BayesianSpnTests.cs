using Engine.Autodiff;
using Engine.Data;
using Engine.Kernels;
using Engine.Spn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Bayesian SPNs: each sampler's empirical distribution over the joint trees of all data against the exact collapsed
/// posterior (enumerated), counts against counts recomputed from the trees, the collapsed marginal likelihood
/// against a Monte Carlo integral over the weights and leaf parameters, empirical Bayes, and bad input.
/// </summary>
public class BayesianSpnTests
{
    private static readonly Device Cpu = Device.Get(DeviceKind.Cpu);

    /// <summary>
    /// The tiny cases whose joint posterior is enumerated: "depth1" (2 variables, 2 repetitions, I = 2: 8 trees per
    /// datum, 3 data, 512 joint states) and "depth2" (4 variables, 2 repetitions, I = 2, S = 1: a root and inner sum
    /// nodes, 32 trees per datum, 2 data, 1024 joint states). Both hold a missing value. The concentrations differ per
    /// layer and per value so a swapped index shows.
    /// </summary>
    internal static BayesianSpn TinyModel(string name, Device? device = null)
    {
        var (vars, depth, data) = name switch
        {
            "depth1" => (2, 1, new float[] { 0, 1, 1, 1, 0, float.NaN }),
            "depth2" => (4, 2, new float[] { 0, 1, 1, 0, 1, 1, float.NaN, 0 }),
            _ => throw new ArgumentException(name),
        };
        var graph = RegionGraph.RandomBinary(vars, depth, 2, seed: 5);
        var network = new Spn.Spn(graph, leafComponents: 2, sumsPerRegion: 1, seed: 1, device: device ?? Cpu);
        var model = new BayesianSpn(network, data, sumConcentration: 0.7, leafConcentration: 0.5, seed: 3);
        for (int layer = 0; layer < model.SumLayers; layer++) model.SetSumConcentration(layer, 0.7 + 0.4 * layer);
        for (int v = 0; v < vars; v++)
        {
            model.SetLeafConcentration(v, 0, 0.3 + 0.1 * v);
            model.SetLeafConcentration(v, 1, 0.9);
        }
        return model;
    }

    /// <summary>Number of distinct trees of one datum.</summary>
    private static int TreesPerDatum(BayesianSpn m)
    {
        int t = 1;
        for (int s = 0; s < m.TreeSlots; s++) t *= m.Shape.LayerChildren[m.Shape.SlotLayer[s]];
        return t;
    }

    /// <summary>The joint state of all trees as one mixed-radix index.</summary>
    private static int StateIndex(BayesianSpn m)
    {
        var z = m.Trees;
        int index = 0;
        for (int n = m.Rows - 1; n >= 0; n--)
            for (int s = m.TreeSlots - 1; s >= 0; s--)
                index = index * m.Shape.LayerChildren[m.Shape.SlotLayer[s]] + z[n * m.TreeSlots + s];
        return index;
    }

    private static int[] StateTrees(BayesianSpn m, int index)
    {
        var z = new int[m.Rows * m.TreeSlots];
        for (int n = 0; n < m.Rows; n++)
            for (int s = 0; s < m.TreeSlots; s++)
            {
                int children = m.Shape.LayerChildren[m.Shape.SlotLayer[s]];
                z[n * m.TreeSlots + s] = index % children;
                index /= children;
            }
        return z;
    }

    /// <summary>ln p(X, Z) of every joint state (the model's trees are restored afterwards).</summary>
    private static double[] EnumerateLogJoint(BayesianSpn m)
    {
        var saved = m.Trees.ToArray();
        int states = (int)Math.Pow(TreesPerDatum(m), m.Rows);
        var lp = new double[states];
        for (int s = 0; s < states; s++)
        {
            m.SetTrees(StateTrees(m, s));
            lp[s] = m.LogJoint();
        }
        m.SetTrees(saved);
        return lp;
    }

    private static double[] Normalise(double[] logP)
    {
        double max = logP.Max();
        var p = logP.Select(v => Math.Exp(v - max)).ToArray();
        double total = p.Sum();
        return p.Select(v => v / total).ToArray();
    }

    /// <summary>The empirical distribution of <paramref name="n"/> independent draws from <paramref name="p"/> (fixed seed).</summary>
    private static double[] IndependentDraws(double[] p, int n)
    {
        var random = new Random(1);
        var cdf = new double[p.Length];
        double acc = 0;
        for (int i = 0; i < p.Length; i++) cdf[i] = acc += p[i];
        var hist = new double[p.Length];
        for (int i = 0; i < n; i++)
        {
            int k = Array.BinarySearch(cdf, random.NextDouble() * acc);
            hist[Math.Min(k < 0 ? ~k : k, p.Length - 1)] += 1.0 / n;
        }
        return hist;
    }

    private static double TotalVariation(double[] p, double[] q) => 0.5 * p.Zip(q, (a, b) => Math.Abs(a - b)).Sum();

    private static SpnPosteriorSampler MakeSampler(string kind, BayesianSpn m) => kind switch
    {
        "top-down" => new TopDownSampler(m, seed: 11),
        "top-down-whole-tree" => new TopDownSampler(m, seed: 11, moves: TopDownMoves.WholeTree),
        "top-down-3-passes" => new TopDownSampler(m, seed: 11, passes: 3),
        "top-down-2-threads" => new TopDownSampler(m, seed: 11, threads: 2),
        "gibbs" => new BottomUpGibbsSampler(m, seed: 11),
        _ => throw new ArgumentException(kind),
    };

    /// <summary>The empirical distribution of the joint state over <paramref name="sweeps"/> sweeps after a burn-in.</summary>
    private static double[] Empirical(SpnPosteriorSampler sampler, int states, int sweeps, int burnIn = 500)
    {
        for (int i = 0; i < burnIn; i++) sampler.Sweep();
        var hist = new double[states];
        for (int i = 0; i < sweeps; i++)
        {
            sampler.Sweep();
            hist[StateIndex(sampler.Model)]++;
        }
        return hist.Select(h => h / sweeps).ToArray();
    }

    // The total-variation distance between an empirical distribution of n draws and the truth is noise of order
    // sqrt(states / n) even for exact independent draws, so each chain is compared with n independent draws from the
    // exact posterior (fixed seed): its distance may exceed theirs by half, which allows for autocorrelation and no
    // visible bias. Measured: ratios 1.01-1.09 (top-down and Gibbs, both models); with 10^6 top-down sweeps the
    // distance fell to 0.0131 (independent draws: 0.0123), with 1.5·10^5 Gibbs sweeps to 0.0331 (0.0315).
    [Theory]
    [InlineData("top-down", "depth1", 50_000)]
    [InlineData("top-down", "depth2", 50_000)]
    [InlineData("top-down-whole-tree", "depth1", 50_000)]
    [InlineData("top-down-whole-tree", "depth2", 50_000)]
    [InlineData("top-down-3-passes", "depth2", 20_000)]
    [InlineData("gibbs", "depth1", 10_000)]
    [InlineData("gibbs", "depth2", 10_000)]
    public void SamplerMatchesTheEnumeratedJointPosterior(string kind, string modelName, int sweeps)
    {
        var m = TinyModel(modelName);
        var exact = Normalise(EnumerateLogJoint(m));
        var empirical = Empirical(MakeSampler(kind, m), exact.Length, sweeps);
        double tv = TotalVariation(empirical, exact);
        double tolerance = 1.5 * TotalVariation(IndependentDraws(exact, sweeps), exact);
        Assert.True(tv < tolerance, $"{kind} on {modelName}: total variation {tv:F4} to the exact posterior over {exact.Length} joint states (tolerance {tolerance:F4})");

        // Negative control: the same check against the posterior of other concentrations must fail, so the test has power.
        var other = TinyModel(modelName);
        for (int layer = 0; layer < other.SumLayers; layer++) other.SetSumConcentration(layer, 3.0);
        for (int v = 0; v < other.Variables; v++) { other.SetLeafConcentration(v, 0, 2.0); other.SetLeafConcentration(v, 1, 2.0); }
        double control = TotalVariation(empirical, Normalise(EnumerateLogJoint(other)));
        Assert.True(control > tolerance, $"negative control: {control:F4} from the wrong posterior is within the tolerance {tolerance:F4}");
    }

    // The parallel top-down sampler is an approximation (each worker sees the others' moves only after the sweep).
    // On this tiny case (3 data, so one worker holds a single datum and never sees the other two move within a sweep)
    // it measured a total variation of 0.199 to the posterior where the exact chain measured 0.028 with the same
    // sweeps: the bias is real and this bounds it. On the density sets (thousands of data per worker) see the README.
    [Fact]
    public void ParallelTopDownIsBiasedButBounded()
    {
        var m = TinyModel("depth1");
        var exact = Normalise(EnumerateLogJoint(m));
        var empirical = Empirical(MakeSampler("top-down-2-threads", m), exact.Length, 50_000);
        double tv = TotalVariation(empirical, exact);
        Assert.InRange(tv, 0.1, 0.3);
    }

    private static BayesianSpn RandomModel(int seed, Device? device = null, int rows = 60)
    {
        var rng = new Random(seed);
        int vars = 9;
        var data = new float[rows * vars];
        for (int i = 0; i < data.Length; i++) data[i] = rng.NextDouble() < 0.05 ? float.NaN : (i % vars < 4 ? (rng.NextDouble() < 0.8 ? 1 : 0) : rng.Next(2));
        var graph = RegionGraph.RandomBinary(vars, 3, 3, seed);
        var network = new Spn.Spn(graph, leafComponents: 3, sumsPerRegion: 2, seed: seed, device: device ?? Cpu);
        return new BayesianSpn(network, data, 0.5, 0.5, seed);
    }

    [Theory]
    [InlineData("top-down")]
    [InlineData("top-down-whole-tree")]
    [InlineData("top-down-3-passes")]
    [InlineData("top-down-2-threads")]
    [InlineData("gibbs")]
    public void CountsEqualCountsRecomputedFromTheTrees(string kind)
    {
        var m = RandomModel(7);
        var sampler = MakeSampler(kind, m);
        var fresh = new SpnCounts(m.Shape);
        for (int sweep = 0; sweep < 6; sweep++)
        {
            var before = m.Trees.ToArray();
            sampler.Sweep();
            if (sweep == 2) SpnEmpiricalBayes.Update(m, seed: 4);
            m.RecomputeCounts(fresh);
            Assert.Null(m.Counts.FirstDifference(fresh));
            if (sweep == 0) Assert.NotEqual(before, m.Trees.ToArray());
        }
    }

    [Fact]
    public void CollapsedMarginalLikelihoodMatchesAMonteCarloIntegralOverWeightsAndLeaves()
    {
        var m = TinyModel("depth1");
        // p(X) = Σ_Z p(X, Z): the collapsed formula summed over every joint tree assignment.
        var logJoint = EnumerateLogJoint(m);
        double max = logJoint.Max();
        double exact = max + Math.Log(logJoint.Sum(v => Math.Exp(v - max)));

        // Brute force: p(X) = E over W ~ Dir(α), θ ~ Dir(γ) of Π_n p(x_n | W, θ), with p(x_n | W, θ) summed over every
        // tree of the uncollapsed network.
        var shape = m.Shape;
        var trees = new List<(int[] Weights, (int Leaf, int Var)[] Leaves)>();
        var path = new TreePath(shape);
        var read = new StoredChoice();
        for (int t = 0; t < TreesPerDatum(m); t++)
        {
            var tree = new int[m.TreeSlots];
            int rest = t;
            for (int s = 0; s < m.TreeSlots; s++) { tree[s] = rest % shape.LayerChildren[shape.SlotLayer[s]]; rest /= shape.LayerChildren[shape.SlotLayer[s]]; }
            shape.Walk(tree, path, ref read);
            var leaves = new List<(int, int)>();
            for (int j = 0; j < shape.LeafRegionsPerTree; j++)
                for (int e = shape.LeafRegionStart[path.LeafRegion[j]]; e < shape.LeafRegionStart[path.LeafRegion[j] + 1]; e++)
                    leaves.Add((e * shape.LeafComponents + path.LeafComp[j], shape.EntryVariable[e]));
            trees.Add(((int[])path.CountIndex.Clone(), leaves.ToArray()));
        }
        var random = new SamplerRandom(2024, 1);
        var w = new double[shape.SumCounts];
        var theta = new double[shape.Entries * shape.LeafComponents * 2];
        var logDraw = new double[shape.RootChildren];
        int draws = 150_000;
        double sum = 0, sumSq = 0;
        var zeros = new int[Math.Max(shape.RootChildren, 2)];
        for (int d = 0; d < draws; d++)
        {
            for (int layer = 0; layer < shape.Layers; layer++)
            {
                int children = shape.LayerChildren[layer];
                var alpha = Enumerable.Repeat(m.SumConcentration(layer), children).ToArray();
                for (int node = shape.LayerNodeStart[layer]; node < shape.LayerNodeStart[layer + 1]; node++)
                {
                    int at = shape.LayerCountStart[layer] + (node - shape.LayerNodeStart[layer]) * children;
                    random.NextLogDirichlet(zeros.AsSpan(0, children), alpha, logDraw.AsSpan(0, children));
                    for (int k = 0; k < children; k++) w[at + k] = Math.Exp(logDraw[k]);
                }
            }
            for (int e = 0; e < shape.Entries; e++)
                for (int i = 0; i < shape.LeafComponents; i++)
                {
                    int v = shape.EntryVariable[e];
                    random.NextLogDirichlet(zeros.AsSpan(0, 2), [m.LeafConcentration(v, 0), m.LeafConcentration(v, 1)], logDraw.AsSpan(0, 2));
                    theta[(e * shape.LeafComponents + i) * 2] = Math.Exp(logDraw[0]);
                    theta[(e * shape.LeafComponents + i) * 2 + 1] = Math.Exp(logDraw[1]);
                }
            double likelihood = 1;
            for (int n = 0; n < m.Rows; n++)
            {
                double p = 0;
                foreach (var (weights, leaves) in trees)
                {
                    double t = 1;
                    foreach (int c in weights) t *= w[c];
                    foreach (var (leaf, v) in leaves)
                    {
                        float x = m.Data[n * m.Variables + v];
                        if (!float.IsNaN(x)) t *= theta[leaf * 2 + (int)x];
                    }
                    p += t;
                }
                likelihood *= p;
            }
            sum += likelihood;
            sumSq += likelihood * likelihood;
        }
        double mean = sum / draws, stdErr = Math.Sqrt((sumSq / draws - mean * mean) / draws);
        Assert.True(stdErr / mean < 0.005, $"Monte Carlo relative standard error {stdErr / mean:P2} too large to test anything");
        Assert.True(Math.Abs(Math.Exp(exact) - mean) < 4 * stdErr,
            $"collapsed p(X) = {Math.Exp(exact):E6}, Monte Carlo {mean:E6} ± {stdErr:E2}");
    }

    [Fact]
    public void SpecialFunctionsMatchKnownValues()
    {
        Assert.Equal(Math.Log(Math.Sqrt(Math.PI)), SpecialFunctions.LogGamma(0.5), 12);
        Assert.Equal(Math.Log(24), SpecialFunctions.LogGamma(5), 12);
        Assert.Equal(0, SpecialFunctions.LogGamma(1), 12);
        Assert.Equal(857.933669825857, SpecialFunctions.LogGamma(200), 9);
        // Near 0: ln Γ(x) = -ln x - γx + O(x²).
        Assert.Equal(-Math.Log(1e-4) - 0.5772156649015329e-4, SpecialFunctions.LogGamma(1e-4), 7);
        Assert.Equal(-0.5772156649015329, SpecialFunctions.Digamma(1), 12);
        Assert.Equal(-0.5772156649015329 - 2 * Math.Log(2), SpecialFunctions.Digamma(0.5), 12);
        Assert.Equal(Math.Log(100) - 1.0 / 200 - 1.0 / 120000, SpecialFunctions.Digamma(100), 9);
        // ψ is the derivative of ln Γ.
        foreach (double x in new[] { 0.03, 0.7, 3.3, 41.0 })
            Assert.Equal((SpecialFunctions.LogGamma(x + 1e-6) - SpecialFunctions.LogGamma(x - 1e-6)) / 2e-6, SpecialFunctions.Digamma(x), 5);
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.4)]
    [InlineData(1.0)]
    [InlineData(6.5)]
    public void GammaDrawsHaveTheirMeanAndVariance(double shape)
    {
        var random = new SamplerRandom(9, 2);
        int n = 200_000;
        double sum = 0, sumSq = 0;
        for (int i = 0; i < n; i++)
        {
            double g = Math.Exp(random.NextLogGamma(shape));
            sum += g;
            sumSq += g * g;
        }
        double mean = sum / n, variance = sumSq / n - mean * mean;
        // Gamma(k, 1): mean k, variance k; the standard error of the mean is sqrt(k / n).
        Assert.True(Math.Abs(mean - shape) < 5 * Math.Sqrt(shape / n), $"shape {shape}: mean {mean}");
        Assert.True(Math.Abs(variance - shape) < 0.05 * shape + 5 * Math.Sqrt(shape / n), $"shape {shape}: variance {variance}");
    }

    [Fact]
    public void EmpiricalBayesRaisesTheEvidenceOfTheCounts()
    {
        var m = RandomModel(3);
        var sampler = new TopDownSampler(m, seed: 2);
        for (int i = 0; i < 5; i++) sampler.Sweep();
        double before = m.LogJoint();
        SpnEmpiricalBayes.Update(m, new EmpiricalBayesOptions { Iterations = 20, LeavesPerVariable = 1000 });
        double after = m.LogJoint();
        Assert.True(after > before, $"ln p(X, Z | α, γ): {before} before, {after} after the fixed point");
        Assert.NotEqual(0.5, m.SumConcentration(0));
    }

    [Fact]
    public void EmpiricalBayesRecoversTheLeafPriorThatGeneratedTheCounts()
    {
        // One variable, 400 leaves (depth 0, one repetition, I = 400), each holding 40 draws from its own
        // θ ~ Beta(2, 5): the fitted Beta must come back near (2, 5), and a subsample of 64 leaves nearly as well.
        int leaves = 400, perLeaf = 40;
        var rng = new SamplerRandom(17, 0);
        var data = new float[leaves * perLeaf];
        var trees = new int[leaves * perLeaf];
        for (int leaf = 0; leaf < leaves; leaf++)
        {
            double a = Math.Exp(rng.NextLogGamma(2)), b = Math.Exp(rng.NextLogGamma(5)), theta = a / (a + b);
            for (int k = 0; k < perLeaf; k++)
            {
                data[leaf * perLeaf + k] = rng.NextDouble() < theta ? 1 : 0;
                trees[leaf * perLeaf + k] = leaf;
            }
        }
        foreach (int subsample in new[] { 1000, 64 })
        {
            var network = new Spn.Spn(RegionGraph.RandomBinary(1, 0, 1, 1), leafComponents: leaves, sumsPerRegion: 1, device: Cpu);
            var m = new BayesianSpn(network, data, 1.0, 1.0);
            m.SetTrees(trees);
            SpnEmpiricalBayes.Update(m, new EmpiricalBayesOptions { Iterations = 2000, LeavesPerVariable = subsample });
            double fa = m.LeafConcentration(0, 1), fb = m.LeafConcentration(0, 0);
            double tolerance = subsample >= leaves ? 0.25 : 0.6;
            Assert.True(Math.Abs(Math.Log(fa / 2)) < tolerance && Math.Abs(Math.Log(fb / 5)) < tolerance,
                $"{subsample} leaves: fitted Beta({fa:F2}, {fb:F2}), generated from Beta(2, 5)");
            // Every datum sits at a different leaf of one root: the root's concentration grows towards its bound.
            Assert.True(m.SumConcentration(0) > 1.0, $"root concentration {m.SumConcentration(0)}");
        }
    }

    [Fact]
    public void SameSeedGivesTheSameChain()
    {
        var a = RandomModel(5);
        var b = RandomModel(5);
        var sa = new TopDownSampler(a, seed: 8);
        var sb = new TopDownSampler(b, seed: 8);
        var ga = new BottomUpGibbsSampler(a, seed: 8);
        var gb = new BottomUpGibbsSampler(b, seed: 8);
        for (int i = 0; i < 3; i++) { sa.Sweep(); sb.Sweep(); ga.Sweep(); gb.Sweep(); }
        Assert.Equal(a.Trees.ToArray(), b.Trees.ToArray());
    }

    [Fact]
    public void BottomUpVisitsTheWholeNetworkAndTopDownOneTree()
    {
        var m = RandomModel(6);
        var top = new TopDownSampler(m, seed: 1).Sweep();
        var gibbs = new BottomUpGibbsSampler(m, seed: 1).Sweep();
        Assert.True(gibbs.NodeVisitsPerDatum > m.Shape.UpwardVisitsPerDatum, $"Gibbs {gibbs.NodeVisitsPerDatum} visits, the network has {m.Shape.UpwardVisitsPerDatum}");
        Assert.True(top.NodeVisitsPerDatum < gibbs.NodeVisitsPerDatum / 2, $"top-down {top.NodeVisitsPerDatum} vs Gibbs {gibbs.NodeVisitsPerDatum}");
        Assert.InRange(top.AcceptanceRate, 0.0, 1.0);
        Assert.Equal(1.0, gibbs.AcceptanceRate);
    }

    [Fact]
    public void RunRetainsSamplesAndReportsThePosteriorPredictive()
    {
        var m = RandomModel(4);
        var rng = new Random(1);
        var test = new DensityData(Enumerable.Range(0, 20 * 9).Select(_ => (float)rng.Next(2)).ToArray(), 9, "test");
        var result = BayesianSpnTraining.Run(new TopDownSampler(m, seed: 3), test, test,
            new BayesianSpnRunOptions { BurnIn = 4, Thinning = 2, Samples = 3, EvaluateEvery = 2 });
        Assert.Equal(3, result.Retained);
        Assert.Equal(10, result.Sweeps);
        Assert.Equal(result.TestLogLikelihood, result.ValidLogLikelihood, 12);
        Assert.InRange(result.TestLogLikelihood, -9 * Math.Log(2) - 3, 0);
        // Burn-in points at sweeps 2 and 4, then one per retained sample; the last is the final posterior predictive.
        Assert.Equal(new double[] { 2, 4, 6, 8, 10 }, result.CurveSweeps);
        Assert.Equal(result.TestLogLikelihood, result.CurveTestLogLikelihood[^1], 9);
        Assert.True(result.CurveSeconds.Zip(result.CurveSeconds.Skip(1), (a, b) => b >= a).All(x => x));
        Assert.True(result.CurveCpuSeconds.Zip(result.CurveCpuSeconds.Skip(1), (a, b) => b >= a).All(x => x));
        Assert.True(result.CurveCpuSeconds[^1] > 0);
        // The network now holds the averaged posterior means; its test log-likelihood is the reported one.
        var ll = new double[test.Rows];
        BayesianSpnTraining.LogLikelihoods(m.Network, test, ll);
        Assert.Equal(result.TestLogLikelihoodAveragedParameters, ll.Average(), 9);
        // ... and is an ordinary network: sampling and MPE work on it.
        Assert.All(m.Network.Sample(5, seed: 2), v => Assert.True(v is 0 or 1));
        var partial = test.Values[..9].ToArray();
        partial[3] = float.NaN;
        Assert.True(m.Network.Mpe(partial)[3] is 0 or 1);
    }

    [Fact]
    public void BadInputIsAClearErrorBeforeAnythingRuns()
    {
        var graph = RegionGraph.RandomBinary(4, 1, 2, 1);
        using var network = new Spn.Spn(graph, 2, 2, device: Cpu);
        var good = new float[] { 0, 1, 1, 0 };
        var e = Assert.Throws<ArgumentException>(() => new BayesianSpn(network, new DensityData([0, 1, 1, 0, 1, 0], 3, "three columns")));
        Assert.Contains("'three columns' has 3 variables, the network was built for 4", e.Message);
        e = Assert.Throws<ArgumentException>(() => new BayesianSpn(network, [0, 1, 1]));
        Assert.Contains("whole rows of the network's 4 variables", e.Message);
        e = Assert.Throws<ArgumentException>(() => new BayesianSpn(network, [0, 1, 2, 0]));
        Assert.Contains("value 2 at row 0, variable 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => new BayesianSpn(network, [0, 1, 0.5f, 0]));
        Assert.Contains("outside the leaves' support {0, ..., 1}", e.Message);
        e = Assert.Throws<ArgumentException>(() => new BayesianSpn(network, [0, 1, -1, 0]));
        Assert.Contains("value -1", e.Message);
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => new BayesianSpn(network, good, sumConcentration: 0));
        Assert.Contains("sumConcentration must be a positive finite number, got 0", range.Message);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => new BayesianSpn(network, good, leafConcentration: double.NaN));
        Assert.Contains("leafConcentration must be a positive finite number, got NaN", range.Message);
        var m = new BayesianSpn(network, good);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => m.SetSumConcentration(0, -1));
        Assert.Contains("got -1", range.Message);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => m.SetLeafConcentration(0, 1, double.PositiveInfinity));
        Assert.Contains("got ∞", range.Message.Replace("Infinity", "∞"));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.SetSumConcentration(5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TopDownSampler(m, passes: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TopDownSampler(m, threads: 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => SpnEmpiricalBayes.Update(m, new EmpiricalBayesOptions { Min = 0 }));
        e = Assert.Throws<ArgumentException>(() => m.SetTrees(new int[m.TreeSlots + 1]));
        Assert.Contains($"expected 1 x {m.TreeSlots} = {m.TreeSlots} choices, got {m.TreeSlots + 1}", e.Message);
        e = Assert.Throws<ArgumentException>(() => m.SetTrees([99]));
        Assert.Contains("chooses child 99", e.Message);
        var wrong = new DensityData(new float[6], 3, "three");
        e = Assert.Throws<ArgumentException>(() => BayesianSpnTraining.Run(new TopDownSampler(m), wrong, wrong));
        Assert.Contains("'three' has 3 columns, the model 4 variables", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => BayesianSpnTraining.Run(new TopDownSampler(m), new DensityData(good, 4), new DensityData(good, 4), new BayesianSpnRunOptions { Samples = 0 }));
        using var gaussian = new Spn.Spn(graph, 2, 2, SpnLeafType.Gaussian, device: Cpu);
        e = Assert.Throws<ArgumentException>(() => new BayesianSpn(gaussian, good));
        Assert.Contains("Gaussian leaves", e.Message);
        using var twoRoots = new Spn.Spn(graph, 2, 2, device: Cpu, rootSums: 2);
        var roots = Assert.Throws<InvalidOperationException>(() => new BayesianSpn(twoRoots, good));
        Assert.Contains("BayesianSpn: needs a network with one root sum", roots.Message);
        using var other = new Spn.Spn(RegionGraph.RandomBinary(4, 1, 2, 1), 2, 2, device: Cpu);
        e = Assert.Throws<ArgumentException>(() => m.ExportPosteriorMean(other));
        Assert.Contains("must share the model's region graph", e.Message);
    }
}

/// <summary>
/// The posterior predictive through each kernel set: the network holding the posterior means given Z computes
/// exactly Σ_trees p(tree | Z) p(x | tree, Z, X) (enumerated on the host), it sums to one over all inputs, and one
/// upward pass for bottom-up sampling agrees with the CPU set's.
/// </summary>
public abstract class BayesianSpnPredictiveTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    [Theory]
    [InlineData("depth1")]
    [InlineData("depth2")]
    public void ExportedPosteriorMeanIsTheExactPosteriorPredictive(string name)
    {
        var m = BayesianSpnTests.TinyModel(name, Device);
        new TopDownSampler(m, seed: 5).Sweep();
        m.ExportPosteriorMean();
        var shape = m.Shape;
        int vars = m.Variables, inputs = 1 << vars;
        var x = new float[inputs * vars];
        for (int r = 0; r < inputs; r++)
            for (int v = 0; v < vars; v++) x[r * vars + v] = (r >> v) & 1;
        var ll = new double[inputs];
        BayesianSpnTraining.LogLikelihoods(m.Network, new DensityData(x, vars), ll);
        Assert.Equal(1.0, ll.Sum(Math.Exp), 5);

        var counts = m.Counts;
        var path = new TreePath(shape);
        var read = new StoredChoice();
        var tree = new int[m.TreeSlots];
        int trees = 1;
        for (int s = 0; s < m.TreeSlots; s++) trees *= shape.LayerChildren[shape.SlotLayer[s]];
        for (int r = 0; r < inputs; r++)
        {
            double p = 0;
            for (int t = 0; t < trees; t++)
            {
                int rest = t;
                for (int s = 0; s < m.TreeSlots; s++)
                {
                    int layer = shape.SlotLayer[s], children = shape.LayerChildren[layer];
                    tree[s] = rest % children;
                    rest /= children;
                }
                shape.Walk(tree, path, ref read);
                double q = 1;
                for (int s = 0; s < m.TreeSlots; s++)
                {
                    int layer = shape.SlotLayer[s], children = shape.LayerChildren[layer];
                    double a = m.SumConcentration(layer);
                    q *= (counts.Sum[path.CountIndex[s]] + a) / (counts.SumTotal[path.Node[s]] + children * a);
                }
                for (int j = 0; j < shape.LeafRegionsPerTree; j++)
                    for (int e = shape.LeafRegionStart[path.LeafRegion[j]]; e < shape.LeafRegionStart[path.LeafRegion[j] + 1]; e++)
                    {
                        int v = shape.EntryVariable[e], leaf = e * shape.LeafComponents + path.LeafComp[j], value = (int)x[r * vars + v];
                        double g0 = m.LeafConcentration(v, 0), g1 = m.LeafConcentration(v, 1);
                        q *= (counts.Leaf[leaf * 2 + value] + (value == 0 ? g0 : g1)) / (counts.LeafTotal[leaf] + g0 + g1);
                    }
                p += q;
            }
            Assert.True(Math.Abs(Math.Log(p) - ll[r]) < 2e-5, $"input {r}: host {Math.Log(p):F7}, network {ll[r]:F7}");
        }
    }

    [Fact]
    public void UpwardPassAgreesWithTheCpuSetAndGibbsKeepsItsCounts()
    {
        var m = BayesianSpnTests.TinyModel("depth2", Device);
        var gibbs = new BottomUpGibbsSampler(m, seed: 2);
        for (int i = 0; i < 5; i++) gibbs.Sweep();
        var fresh = new SpnCounts(m.Shape);
        m.RecomputeCounts(fresh);
        Assert.Null(m.Counts.FirstDifference(fresh));
        var reference = BayesianSpnTests.TinyModel("depth2", Device.Get(DeviceKind.Cpu));
        reference.SetTrees(m.Trees);
        m.ExportPosteriorMean();
        reference.ExportPosteriorMean();
        var got = m.Network.UpwardProducts(m.Data, 0, m.Rows);
        var want = reference.Network.UpwardProducts(reference.Data, 0, reference.Rows);
        Assert.Equal(want.Length, got.Length);
        for (int l = 0; l < want.Length; l++)
            for (int i = 0; i < want[l].Length; i++)
                Assert.True(Math.Abs(want[l][i] - got[l][i]) < 1e-5, $"level {l}, entry {i}: {got[l][i]} vs {want[l][i]}");
    }
}

/// <summary><see cref="BayesianSpnPredictiveTests"/> on the CPU SIMD kernel set.</summary>
public sealed class CpuBayesianSpnPredictiveTests : BayesianSpnPredictiveTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary><see cref="BayesianSpnPredictiveTests"/> on the ILGPU kernel set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuBayesianSpnPredictiveTests : BayesianSpnPredictiveTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}

/// <summary>`spn --method bayes,gibbs` end to end on a slice of nltcs, and its option errors.</summary>
public class SpnBayesTaskTests
{
    private static (System.Text.Json.JsonDocument Doc, string Log) Run(string dir, params string[] extra)
    {
        var log = new StringWriter();
        int rc = Samples.Program.Run(["spn", "--out", dir, "--device", "cpu", .. extra], log);
        Assert.Equal(0, rc);
        return (System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "spn.json"))), log.ToString());
    }

    [Fact]
    public void BayesAndGibbsRunOnOneStructureAndReportSpeedAndPlot()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-spn-bayes-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (doc, log) = Run(dir, "--quick", "--method", "bayes,gibbs", "--burn-in", "2", "--thinning", "1", "--samples", "2", "--eval-every", "1");
            using var _ = doc;
            var r = doc.RootElement;
            Assert.Equal("bayes,gibbs", r.GetProperty("method").GetString());
            foreach (var method in new[] { "bayes", "gibbs" })
            {
                var run = r.GetProperty("runs").GetProperty(method);
                // Uniform over 16 binary variables is -11.09 nats; a few sweeps already beat it clearly.
                Assert.InRange(run.GetProperty("test_loglik").GetDouble(), -9.0, 0.0);
                Assert.Equal(4, run.GetProperty("sweeps").GetInt32());
                Assert.Equal(2, run.GetProperty("retained_samples").GetInt32());
                Assert.Equal(4, run.GetProperty("curve_seconds").GetArrayLength());
                Assert.Equal(4, run.GetProperty("curve_cpu_seconds").GetArrayLength());
                Assert.True(run.GetProperty("node_visits_per_datum").GetDouble() > 0);
            }
            Assert.Equal(r.GetProperty("runs").GetProperty("bayes").GetProperty("test_loglik").GetDouble(), r.GetProperty("test_loglik").GetDouble());
            Assert.True(r.GetProperty("node_visit_ratio").GetDouble() > 1, "the bottom-up sampler visits more nodes per datum");
            Assert.True(r.GetProperty("speedup_per_sweep").GetDouble() > 0);
            Assert.True(File.Exists(Path.Combine(dir, "spn-nltcs-loglik-vs-time.png")));
            Assert.True(File.Exists(Path.Combine(dir, "spn-nltcs-loglik-vs-cpu.png")));
            Assert.Contains("sweep", log);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void FiguresPlotEverySamplerCurveAndTheMaximumLikelihoodPointsAgainstLogTime()
    {
        var metrics = new Dictionary<string, object>
        {
            ["dataset"] = "toy",
            ["runs"] = new Dictionary<string, object>
            {
                ["bayes"] = new Dictionary<string, object>
                {
                    ["sampler"] = "top-down", ["test_loglik"] = -6.0, ["curve_seconds"] = new[] { 0.1, 1.0, 10.0 },
                    ["curve_cpu_seconds"] = new[] { 0.01, 0.1, 1.0 }, ["curve_test_loglik"] = new[] { -8.0, -7.0, -6.0 },
                },
                ["adam"] = new Dictionary<string, object> { ["test_loglik"] = -6.5, ["train_seconds"] = 100.0, ["train_cpu_seconds"] = 1000.0 },
            },
        };
        var figures = Samples.TaskReport.Figures("spn", metrics);
        Assert.Equal(new[] { "toy-loglik-vs-time", "toy-loglik-vs-cpu" }, figures.Select(f => f.Name));
        var wall = figures[0].Series;
        Assert.Equal(new[] { "bayes (top-down)", "adam (final)" }, wall.Select(s => s.Label));
        Assert.Equal(new[] { -1.0, 0.0, 1.0 }, wall[0].X.Select(x => Math.Round(x, 12)));
        Assert.Equal(new[] { -8.0, -7.0, -6.0 }, wall[0].Y);
        Assert.Equal(new[] { 2.0 }, wall[1].X.Select(x => Math.Round(x, 12)));
        Assert.Equal(new[] { -6.5 }, wall[1].Y);
        var cpu = figures[1].Series;
        Assert.Equal(new[] { -2.0, -1.0, 0.0 }, cpu[0].X.Select(x => Math.Round(x, 12)));
        Assert.Equal(new[] { 3.0 }, cpu[1].X.Select(x => Math.Round(x, 12)));
        // A maximum-likelihood run has no runs table and keeps only its epoch curves.
        Assert.Empty(Samples.SpnBayesTask.Figures(new Dictionary<string, object> { ["dataset"] = "toy" }));
    }

    [Fact]
    public void FiguresOfAllFourMethodsKeepTheirLabelsInsideTheImage()
    {
        // Four series put the legend beside the plot, which narrows the room the x label is centred in.
        Dictionary<string, object> Sampler(string name) => new()
        {
            ["sampler"] = name, ["test_loglik"] = -6.0, ["curve_seconds"] = new[] { 0.1, 1.0, 10.0 },
            ["curve_cpu_seconds"] = new[] { 0.01, 0.1, 1.0 }, ["curve_test_loglik"] = new[] { -8.0, -7.0, -6.0 },
        };
        Dictionary<string, object> Trained() => new() { ["test_loglik"] = -6.5, ["train_seconds"] = 100.0, ["train_cpu_seconds"] = 1000.0 };
        var metrics = new Dictionary<string, object>
        {
            ["dataset"] = "pumsb_star",
            ["runs"] = new Dictionary<string, object> { ["bayes"] = Sampler("top-down"), ["gibbs"] = Sampler("bottom-up Gibbs"), ["adam"] = Trained(), ["em"] = Trained() },
        };
        var figures = Samples.TaskReport.Figures("spn", metrics);
        Assert.Equal(2, figures.Count);
        foreach (var figure in figures)
            Assert.Empty(Samples.TaskReport.OverflowingLabels(figure));
        // The check itself: a label as wide as the image cannot fit beside the legend.
        var tooWide = figures[1] with { XLabel = new string('x', 120) };
        Assert.Equal([tooWide.XLabel], Samples.TaskReport.OverflowingLabels(tooWide));
    }

    [Theory]
    [InlineData("--method", "bayes,sgd", "spn: unknown --method 'sgd' in 'bayes,sgd'; choices: adam, em, bayes, gibbs, or a comma list of them.")]
    [InlineData("--method", "bayes,Bayes", "spn: --method 'bayes,Bayes' names a value twice.")]
    [InlineData("--burn-in", "-1", "spn: --burn-in must be an integer >= 0, got -1.")]
    [InlineData("--gibbs-burn-in", "-1", "spn: --gibbs-burn-in must be an integer >= 0, got -1.")]
    [InlineData("--thinning", "0", "spn: --thinning must be an integer >= 1, got 0.")]
    [InlineData("--bayes-samples", "0", "spn: --bayes-samples must be an integer >= 1, got 0.")]
    [InlineData("--sum-prior", "0", "spn: --sum-prior must be a finite number > 0, got '0'.")]
    [InlineData("--leaf-prior", "-2", "spn: --leaf-prior must be a finite number > 0, got '-2'.")]
    [InlineData("--passes", "0", "spn: --passes must be an integer >= 1, got 0.")]
    [InlineData("--moves", "some", "spn: unknown --moves 'some'; choices: every-subtree, whole-tree.")]
    [InlineData("--threads", "2001", "spn: --threads must be in [1, 2000] (the training rows), got 2001.")]
    [InlineData("--empirical-bayes", "maybe", "'maybe'")]
    [InlineData("--eb-leaves", "0", "spn: --eb-leaves must be an integer >= 1, got 0.")]
    public void BadOptionsAreUsageErrorsBeforeAnySweep(string option, string value, string message)
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-spn-bayes-bad-" + Guid.NewGuid().ToString("N"));
        try
        {
            string[] args = option == "--method" ? ["--quick", option, value] : ["--quick", "--method", "bayes", option, value];
            var log = new StringWriter();
            var errors = new StringWriter();
            int rc = Samples.Program.Run(["spn", "--out", dir, "--device", "cpu", .. args], log, errors);
            Assert.Equal(Samples.Program.UsageError, rc);
            Assert.Contains(message, errors.ToString());
            Assert.DoesNotContain("sweep", log.ToString());
            Assert.False(File.Exists(Path.Combine(dir, "spn.json")));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
