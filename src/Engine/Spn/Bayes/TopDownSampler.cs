namespace Engine.Spn;

/// <summary>
/// The top-down sampler of Yokoi and Sato: for each datum in turn, its tree's counts are removed, a new tree is
/// proposed top-down from the collapsed sum-node counts (the network proposal, <c>p(z_n | Z_-n)</c>, reaching only
/// the nodes of one tree), and accepted with probability min(1, L(z*) / L(z_n)), where L is the product of the
/// posterior predictive probabilities of the datum's values at the leaves the tree reaches (the leaf acceptance
/// step); then the datum's counts are added back. This is Metropolis-Hastings targeting the exact full conditional
/// p(z_n | Z_-n, X), with no upward pass: the work per datum is one tree, not the whole network.
/// </summary>
/// <remarks>
/// Collapsed sampling is sequential over data: datum n's proposal depends on the counts every earlier move left.
/// With <see cref="Threads"/> = 1 (the default) the chain is exact. With T &gt; 1 the data are split into T blocks
/// sampled at once, each worker against its own copy of the counts taken at the start of the sweep plus its own
/// moves; the workers' count changes are merged after the sweep (the approximate distributed collapsed Gibbs of
/// Newman et al., "AD-LDA"). That chain ignores, within one sweep, the moves of other workers, so it does not
/// target the posterior exactly; the counts still equal the counts of the trees after every sweep.
/// </remarks>
public sealed class TopDownSampler : SpnPosteriorSampler
{
    private readonly Worker[] workers;
    private readonly SpnCounts? snapshot;

    /// <summary>Creates the sampler.</summary>
    /// <param name="model">The model.</param>
    /// <param name="seed">Chain seed.</param>
    /// <param name="proposalsPerDatum">Metropolis-Hastings proposals per datum and sweep (≥ 1).</param>
    /// <param name="threads">Workers; 1 is the exact sequential chain, more is the approximation in the remarks.</param>
    public TopDownSampler(BayesianSpn model, int seed = 1, int proposalsPerDatum = 1, int threads = 1) : base(model, seed)
    {
        if (proposalsPerDatum < 1)
            throw new ArgumentOutOfRangeException(nameof(proposalsPerDatum), $"TopDownSampler: proposals per datum must be >= 1, got {proposalsPerDatum}.");
        if (threads < 1 || threads > model.Rows)
            throw new ArgumentOutOfRangeException(nameof(threads), $"TopDownSampler: threads must be in [1, {model.Rows}] (the number of data), got {threads}.");
        ProposalsPerDatum = proposalsPerDatum;
        Threads = threads;
        workers = new Worker[threads];
        for (int t = 0; t < threads; t++) workers[t] = new Worker(model, threads == 1 ? model.Counts : new SpnCounts(model.Shape));
        if (threads > 1) snapshot = new SpnCounts(model.Shape);
    }

    /// <inheritdoc />
    public override string Name => "top-down";

    /// <summary>Metropolis-Hastings proposals per datum and sweep.</summary>
    public int ProposalsPerDatum { get; }

    /// <summary>Workers (1: exact).</summary>
    public int Threads { get; }

    /// <inheritdoc />
    protected override (double NodeVisitsPerDatum, double AcceptanceRate) RunSweep(int sweep)
    {
        int rows = Model.Rows;
        if (Threads == 1)
            workers[0].Run(0, rows, ProposalsPerDatum, new SamplerRandom(Seed, (ulong)sweep * 65536));
        else
        {
            snapshot!.CopyFrom(Model.Counts);
            Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            {
                workers[t].Counts.CopyFrom(snapshot);
                workers[t].Run(rows * t / Threads, rows * (t + 1) / Threads, ProposalsPerDatum, new SamplerRandom(Seed, (ulong)sweep * 65536 + (ulong)t));
            });
            foreach (var w in workers) Model.Counts.AddDifference(w.Counts, snapshot);
        }
        long visits = 0, accepted = 0;
        foreach (var w in workers)
        {
            visits += w.Visits;
            accepted += w.Accepted;
        }
        return ((double)visits / rows, (double)accepted / ((long)rows * ProposalsPerDatum));
    }

    /// <summary>One worker's buffers and the Metropolis-Hastings moves over a block of data.</summary>
    private sealed class Worker(BayesianSpn model, SpnCounts counts)
    {
        private readonly TreePath current = new(model.Shape), proposed = new(model.Shape);
        private readonly int[] proposedTree = new int[model.Shape.Slots];

        public SpnCounts Counts { get; } = counts;
        public long Visits { get; private set; }
        public long Accepted { get; private set; }

        public void Run(int from, int to, int proposals, SamplerRandom random)
        {
            var shape = model.Shape;
            var read = new StoredChoice();
            var proposal = new CountProposal(model, Counts, random);
            TreePath cur = current, prop = proposed;
            long visits = 0, accepted = 0;
            for (int n = from; n < to; n++)
            {
                var tree = model.Tree(n);
                var row = model.Row(n);
                shape.Walk(tree, cur, ref read);
                Counts.Apply(shape, cur, row, -1);
                for (int step = 0; step < proposals; step++)
                {
                    shape.Walk(proposedTree, prop, ref proposal);
                    double logRatio = 0;
                    for (int j = 0; j < shape.LeafRegionsPerTree; j++)
                    {
                        int region = prop.LeafRegion[j], comp = prop.LeafComp[j];
                        // A leaf both trees reach contributes the same factor to both likelihoods.
                        if (region == cur.LeafRegion[j] && comp == cur.LeafComp[j]) continue;
                        logRatio += model.LogLeafPredictive(Counts, row, region, comp)
                            - model.LogLeafPredictive(Counts, row, cur.LeafRegion[j], cur.LeafComp[j]);
                        visits += 2 * (shape.LeafRegionStart[region + 1] - shape.LeafRegionStart[region]);
                    }
                    if (logRatio >= 0 || Math.Log(proposal.Random.NextOpen()) < logRatio)
                    {
                        proposedTree.CopyTo(tree);
                        (cur, prop) = (prop, cur);
                        accepted++;
                    }
                }
                Counts.Apply(shape, cur, row, +1);
                // Removing and adding the datum's counts: every slot and every variable, twice.
                visits += 2 * (shape.Slots + shape.Variables);
            }
            Visits = visits + proposal.Visits;
            Accepted = accepted;
        }
    }
}
