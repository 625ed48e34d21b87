using System.Diagnostics;

namespace Engine.Spn;

/// <summary>What one sweep (every datum's tree resampled once) cost and did.</summary>
/// <param name="Seconds">Wall time of the sweep.</param>
/// <param name="CpuSeconds">Processor time of the whole process during the sweep (all threads): less sensitive than
/// wall time to other jobs sharing the machine, and it counts the work of parallel threads.</param>
/// <param name="NodeVisitsPerDatum">
/// Nodes read or updated per datum: child counts or child scores read while drawing a sum node's child, univariate
/// leaves evaluated, product nodes computed, counts changed. Independent of the machine, so a speed-up it shows is
/// structural.
/// </param>
/// <param name="AcceptanceRate">Fraction of Metropolis-Hastings proposals accepted (1 for Gibbs draws).</param>
public readonly record struct SweepStatistics(double Seconds, double CpuSeconds, double NodeVisitsPerDatum, double AcceptanceRate);

/// <summary>A Markov chain over the trees Z of a <see cref="BayesianSpn"/> whose stationary distribution is p(Z | X, α, γ).</summary>
public abstract class SpnPosteriorSampler
{
    /// <summary>Binds the sampler to a model; <paramref name="seed"/> fixes the chain.</summary>
    protected SpnPosteriorSampler(BayesianSpn model, int seed)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        Seed = (ulong)seed;
    }

    /// <summary>The model whose trees and counts the sampler moves.</summary>
    public BayesianSpn Model { get; }

    /// <summary>Short name for logs and reports.</summary>
    public abstract string Name { get; }

    /// <summary>Sweeps run so far.</summary>
    public int SweepsDone { get; private set; }

    /// <summary>The chain's seed.</summary>
    protected ulong Seed { get; }

    /// <summary>Resamples every datum's tree once; the model's counts match its trees afterwards.</summary>
    public SweepStatistics Sweep()
    {
        double cpu = BayesianSpnTraining.ProcessCpuSeconds();
        var wall = Stopwatch.StartNew();
        var (visits, acceptance) = RunSweep(SweepsDone);
        double seconds = wall.Elapsed.TotalSeconds;
        SweepsDone++;
        return new SweepStatistics(seconds, BayesianSpnTraining.ProcessCpuSeconds() - cpu, visits, acceptance);
    }

    /// <summary>
    /// One sweep with index <paramref name="sweep"/> (from 0, for the random streams); returns the node visits per
    /// datum and the acceptance rate.
    /// </summary>
    protected abstract (double NodeVisitsPerDatum, double AcceptanceRate) RunSweep(int sweep);
}

/// <summary>
/// The network proposal: draws the child of each sum node the tree reaches from the collapsed counts, with
/// probability (n_c + α) / (n + Cα), which is p(z_n | Z_-n) when the datum's own counts are removed.
/// </summary>
internal struct CountProposal : IChildChooser
{
    private readonly int[] sum, sumTotal, layerNodeStart, layerCountStart;
    private readonly double[] alpha;

    public CountProposal(BayesianSpn model, SpnCounts counts, SamplerRandom random)
    {
        sum = counts.Sum;
        sumTotal = counts.SumTotal;
        layerNodeStart = model.Shape.LayerNodeStart;
        layerCountStart = model.Shape.LayerCountStart;
        alpha = model.SumConcentrations;
        Random = random;
    }

    /// <summary>The stream the draws come from (advanced by each draw).</summary>
    public SamplerRandom Random;

    /// <summary>Child counts read so far.</summary>
    public long Visits;

    public int Choose(int layer, int node, int region, int children, int stored)
    {
        double a = alpha[layer];
        double u = Random.NextDouble() * (sumTotal[node] + children * a);
        int start = layerCountStart[layer] + (node - layerNodeStart[layer]) * children;
        double acc = 0;
        for (int k = 0; k < children; k++)
        {
            acc += sum[start + k] + a;
            if (u < acc)
            {
                Visits += k + 1;
                return k;
            }
        }
        Visits += children;
        return children - 1;
    }
}
