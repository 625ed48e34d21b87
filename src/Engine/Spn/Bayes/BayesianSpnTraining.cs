using System.Diagnostics;
using Engine.Autodiff;
using Engine.Data;

namespace Engine.Spn;

/// <summary>Settings of <see cref="BayesianSpnTraining.Run"/>.</summary>
public sealed record BayesianSpnRunOptions
{
    /// <summary>Sweeps before the first retained sample.</summary>
    public int BurnIn { get; init; } = 300;
    /// <summary>Sweeps between retained samples.</summary>
    public int Thinning { get; init; } = 5;
    /// <summary>Retained samples M (the posterior predictive averages M densities).</summary>
    public int Samples { get; init; } = 40;
    /// <summary>Tune the concentrations by empirical Bayes during burn-in.</summary>
    public bool EmpiricalBayes { get; init; } = true;
    /// <summary>Burn-in sweeps between empirical-Bayes updates.</summary>
    public int EmpiricalBayesEvery { get; init; } = 1;
    /// <summary>Settings of each empirical-Bayes update.</summary>
    public EmpiricalBayesOptions EmpiricalBayesOptions { get; init; } = new();
    /// <summary>Burn-in sweeps between evaluations of the current sample's test log-likelihood (for the curve).</summary>
    public int EvaluateEvery { get; init; } = 10;
    /// <summary>Seed of the empirical-Bayes subsampling.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Where to print progress (null: silent).</summary>
    public TextWriter? Log { get; init; }

    /// <summary>Throws if a setting is out of range (burn-in &lt; 0, or thinning, samples or a period &lt; 1).</summary>
    public void Validate()
    {
        if (BurnIn < 0) throw new ArgumentOutOfRangeException(nameof(BurnIn), $"BayesianSpnTraining: burn-in must be >= 0, got {BurnIn}.");
        if (Thinning < 1) throw new ArgumentOutOfRangeException(nameof(Thinning), $"BayesianSpnTraining: thinning must be >= 1, got {Thinning}.");
        if (Samples < 1) throw new ArgumentOutOfRangeException(nameof(Samples), $"BayesianSpnTraining: retained samples must be >= 1, got {Samples}.");
        if (EmpiricalBayesEvery < 1) throw new ArgumentOutOfRangeException(nameof(EmpiricalBayesEvery), $"BayesianSpnTraining: empirical-Bayes period must be >= 1, got {EmpiricalBayesEvery}.");
        if (EvaluateEvery < 1) throw new ArgumentOutOfRangeException(nameof(EvaluateEvery), $"BayesianSpnTraining: evaluation period must be >= 1, got {EvaluateEvery}.");
        SpnEmpiricalBayes.Validate(EmpiricalBayesOptions);
    }
}

/// <summary>Outcome of <see cref="BayesianSpnTraining.Run"/>; log-likelihoods are means per datum in nats.</summary>
/// <param name="Sampler">The sampler's name.</param>
/// <param name="Sweeps">Sweeps run (burn-in + thinning · samples).</param>
/// <param name="Retained">Samples M averaged by the posterior predictive.</param>
/// <param name="SamplerSeconds">Wall time of the sweeps and empirical-Bayes updates (evaluations excluded).</param>
/// <param name="SecondsPerSweep">Mean wall time of one sweep.</param>
/// <param name="CpuSecondsPerSweep">Mean processor time of one sweep (all threads of the process).</param>
/// <param name="NodeVisitsPerDatum">Mean node visits per datum and sweep (see <see cref="SweepStatistics"/>).</param>
/// <param name="AcceptanceRate">Mean Metropolis-Hastings acceptance rate (1 for Gibbs).</param>
/// <param name="ValidLogLikelihood">Posterior predictive on the validation data: mean over rows of ln (1/M) Σ_m p(x | Z_m, X).</param>
/// <param name="TestLogLikelihood">The same on the test data.</param>
/// <param name="TestLogLikelihoodAveragedParameters">Test log-likelihood of the single network with the retained samples' posterior means averaged (what the network holds afterwards).</param>
/// <param name="CurveSweeps">Sweep index of each curve point.</param>
/// <param name="CurveSeconds">Sampler seconds (wall) at each curve point.</param>
/// <param name="CurveCpuSeconds">Sampler processor seconds (all threads) at each curve point.</param>
/// <param name="CurveTestLogLikelihood">Test log-likelihood at each curve point: the current sample's during burn-in, the running posterior predictive after.</param>
/// <param name="CurveLogJoint">Collapsed ln p(X, Z | α, γ) per datum at each curve point.</param>
/// <param name="SumConcentrations">Final concentration per sum layer.</param>
/// <param name="MeanLeafConcentration">Final mean leaf concentration (over variables and values).</param>
public sealed record BayesianSpnRunResult(
    string Sampler, int Sweeps, int Retained, double SamplerSeconds, double SecondsPerSweep, double CpuSecondsPerSweep, double NodeVisitsPerDatum, double AcceptanceRate,
    double ValidLogLikelihood, double TestLogLikelihood, double TestLogLikelihoodAveragedParameters,
    double[] CurveSweeps, double[] CurveSeconds, double[] CurveCpuSeconds, double[] CurveTestLogLikelihood, double[] CurveLogJoint,
    double[] SumConcentrations, double MeanLeafConcentration);

/// <summary>
/// Runs a sampler for burn-in and retained samples and computes the posterior predictive with the network's exact
/// inference: after every thinning interval the model's posterior means given the current trees are written into
/// the network (<see cref="BayesianSpn.ExportPosteriorMean"/>) and its log-density of every datum is folded into a
/// per-datum log-sum-exp, so the result is ln of the mean over the M samples of each sample's density, not the
/// density at averaged parameters.
/// </summary>
public static class BayesianSpnTraining
{
    private const int EvaluationBatch = 1024;

    /// <summary>Runs the chain; afterwards the model's network holds the averaged posterior-mean parameters.</summary>
    /// <exception cref="ArgumentException">Options out of range or data with another number of variables.</exception>
    public static BayesianSpnRunResult Run(SpnPosteriorSampler sampler, DensityData valid, DensityData test, BayesianSpnRunOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        var o = options ?? new BayesianSpnRunOptions();
        o.Validate();
        var model = sampler.Model;
        foreach (var d in new[] { valid, test })
        {
            ArgumentNullException.ThrowIfNull(d);
            if (d.Columns != model.Variables)
                throw new ArgumentException($"BayesianSpnTraining.Run: data '{d.Name}' has {d.Columns} columns, the model {model.Variables} variables.");
        }
        var network = model.Network;
        var splits = new[] { valid, test };
        var logSum = splits.Select(d => Enumerable.Repeat(double.NegativeInfinity, d.Rows).ToArray()).ToArray();
        var perDatum = splits.Select(d => new double[d.Rows]).ToArray();
        var average = new PosteriorAverage(model);
        var curveSweeps = new List<double>();
        var curveSeconds = new List<double>();
        var curveCpu = new List<double>();
        var curveTest = new List<double>();
        var curveJoint = new List<double>();
        double samplerSeconds = 0, samplerCpu = 0, sweepSeconds = 0, cpuSeconds = 0, visits = 0, acceptance = 0;
        int sweeps = o.BurnIn + o.Thinning * o.Samples, retained = 0;
        var wall = Stopwatch.StartNew();
        for (int sweep = 1; sweep <= sweeps; sweep++)
        {
            var stats = sampler.Sweep();
            samplerSeconds += stats.Seconds;
            samplerCpu += stats.CpuSeconds;
            sweepSeconds += stats.Seconds;
            cpuSeconds += stats.CpuSeconds;
            visits += stats.NodeVisitsPerDatum;
            acceptance += stats.AcceptanceRate;
            bool burning = sweep <= o.BurnIn;
            if (burning && o.EmpiricalBayes && sweep % o.EmpiricalBayesEvery == 0)
            {
                var eb = Stopwatch.StartNew();
                var ebCpu = ProcessCpuSeconds();
                SpnEmpiricalBayes.Update(model, o.EmpiricalBayesOptions, o.Seed + sweep);
                samplerSeconds += eb.Elapsed.TotalSeconds;
                samplerCpu += ProcessCpuSeconds() - ebCpu;
            }
            double testLl;
            if (burning)
            {
                if (sweep % o.EvaluateEvery != 0 && sweep != o.BurnIn) continue;
                model.ExportPosteriorMean();
                LogLikelihoods(network, test, perDatum[1]);
                testLl = perDatum[1].Average();
            }
            else
            {
                if ((sweep - o.BurnIn) % o.Thinning != 0) continue;
                model.ExportPosteriorMean();
                average.Add(model);
                retained++;
                for (int s = 0; s < splits.Length; s++)
                {
                    LogLikelihoods(network, splits[s], perDatum[s]);
                    for (int n = 0; n < perDatum[s].Length; n++) logSum[s][n] = LogAddExp(logSum[s][n], perDatum[s][n]);
                }
                testLl = logSum[1].Average() - Math.Log(retained);
            }
            double joint = model.LogJoint() / model.Rows;
            curveSweeps.Add(sweep);
            curveSeconds.Add(samplerSeconds);
            curveCpu.Add(samplerCpu);
            curveTest.Add(testLl);
            curveJoint.Add(joint);
            o.Log?.WriteLine($"sweep {sweep,4}  {sampler.Name}{(burning ? " burn-in" : $" sample {retained}/{o.Samples}")}  test LL {testLl:F4}  ln p(X,Z)/N {joint:F4}  "
                + $"{stats.Seconds:F3} s/sweep ({stats.CpuSeconds:F3} s cpu)  {stats.NodeVisitsPerDatum:F0} visits/datum  accept {stats.AcceptanceRate:F3}  ({wall.Elapsed.TotalSeconds:F1} s)");
        }
        var finalLl = logSum.Select(ls => ls.Average() - Math.Log(retained)).ToArray();
        average.WriteTo(network);
        LogLikelihoods(network, test, perDatum[1]);
        double averagedTest = perDatum[1].Average();
        var alphas = Enumerable.Range(0, model.SumLayers).Select(model.SumConcentration).ToArray();
        double meanGamma = model.LeafConcentrations.Average();
        return new BayesianSpnRunResult(sampler.Name, sweeps, retained, samplerSeconds, sweepSeconds / sweeps, cpuSeconds / sweeps, visits / sweeps, acceptance / sweeps,
            finalLl[0], finalLl[1], averagedTest, curveSweeps.ToArray(), curveSeconds.ToArray(), curveCpu.ToArray(), curveTest.ToArray(), curveJoint.ToArray(),
            alphas, meanGamma);
    }

    /// <summary>ln p(x) of every row of <paramref name="data"/> under <paramref name="network"/>, by its exact batched inference.</summary>
    public static void LogLikelihoods(Spn network, DensityData data, Span<double> result)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(data);
        if (result.Length != data.Rows)
            throw new ArgumentException($"BayesianSpnTraining.LogLikelihoods: result has {result.Length} entries for {data.Rows} rows.");
        using var _ = GradMode.NoGrad();
        int d = data.Columns;
        for (int start = 0; start < data.Rows; start += EvaluationBatch)
        {
            using var scope = new TensorScope();
            int n = Math.Min(EvaluationBatch, data.Rows - start);
            var chunk = new float[n * d];
            Array.Copy(data.Values, (long)start * d, chunk, 0, chunk.Length);
            var ll = network.LogLikelihood(Tensor.FromArray(chunk, [n, d], network.Device)).ToArray();
            for (int i = 0; i < n; i++) result[start + i] = ll[i];
        }
    }

    /// <summary>Processor time of the whole process so far (all threads).</summary>
    public static double ProcessCpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    private static double LogAddExp(double a, double b)
    {
        if (double.IsNegativeInfinity(a)) return b;
        if (double.IsNegativeInfinity(b)) return a;
        double m = Math.Max(a, b);
        return m + Math.Log(Math.Exp(a - m) + Math.Exp(b - m));
    }

    /// <summary>Running mean of the retained samples' posterior-mean probabilities (for marginals, MPE and sampling).</summary>
    private sealed class PosteriorAverage(BayesianSpn model)
    {
        private readonly double[] weights = new double[model.Shape.SumCounts];
        private readonly double[] leaves = new double[model.Counts.Leaf.Length];
        private readonly float[] sumLogW = new float[model.Shape.SumCounts];
        private readonly float[] leafLogP = new float[model.Counts.Leaf.Length];
        private int count;

        public void Add(BayesianSpn m)
        {
            m.PosteriorMeanLogProbabilities(sumLogW, leafLogP);
            for (int i = 0; i < weights.Length; i++) weights[i] += Math.Exp(sumLogW[i]);
            for (int i = 0; i < leaves.Length; i++) leaves[i] += Math.Exp(leafLogP[i]);
            count++;
        }

        public void WriteTo(Spn network)
        {
            for (int i = 0; i < weights.Length; i++) sumLogW[i] = (float)Math.Log(weights[i] / count);
            for (int i = 0; i < leaves.Length; i++) leafLogP[i] = (float)Math.Log(leaves[i] / count);
            network.SetLogProbabilities(sumLogW, leafLogP);
        }
    }
}
