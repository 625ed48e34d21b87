namespace Engine.Spn;

/// <summary>Which Metropolis-Hastings moves <see cref="TopDownSampler"/> makes per datum.</summary>
public enum TopDownMoves
{
    /// <summary>
    /// One move per sum node of the datum's tree, from the root down: the node's subtree is redrawn from the counts
    /// and accepted by the leaf likelihood ratio under that node. The root's move redraws the whole tree.
    /// </summary>
    EverySubtree,
    /// <summary>Only the root's move: the whole tree is proposed from the counts at once.</summary>
    WholeTree,
}

/// <summary>
/// The top-down sampler of Yokoi and Sato: for each datum in turn, its tree's counts are removed, a new tree (or
/// subtree) is proposed top-down from the collapsed sum-node counts (the network proposal, <c>p(z_n | Z_-n)</c>,
/// reaching only the nodes of one tree), and accepted with probability min(1, L(z*) / L(z_n)), where L is the
/// product of the posterior predictive probabilities of the datum's values at the leaves the proposal changes (the
/// leaf acceptance step); then the datum's counts are added back. Each move is Metropolis-Hastings targeting the
/// exact full conditional p(z_n | Z_-n, X), with no upward pass: the work per datum is one tree, not the network.
/// </summary>
/// <remarks>
/// <para>With <see cref="TopDownMoves.EverySubtree"/> (the default) a datum gets one move per sum node of its tree, root
/// first: the node keeps its place (the choices above it stay), its child and every choice below are redrawn from
/// the counts, and since that proposal is the prior conditional of the subtree given the path above, the acceptance
/// ratio is the leaf likelihood ratio under the node alone. A whole-tree proposal alone (<see cref="TopDownMoves.WholeTree"/>)
/// must beat the likelihood of every variable at once and is rarely accepted on wide data (2 % on mushrooms'
/// 112 variables); moves at deeper nodes change few variables and are accepted far more often.</para>
/// <para>Collapsed sampling is sequential over data: datum n's proposal depends on the counts every earlier move left.
/// With <see cref="Threads"/> = 1 (the default) the chain is exact. With T &gt; 1 the data are split into T blocks
/// sampled at once, each worker against its own copy of the counts taken at the start of the sweep plus its own
/// moves; the workers' count changes are merged after the sweep (the approximate distributed collapsed Gibbs of
/// Newman et al., "AD-LDA"). That chain ignores, within one sweep, the moves of other workers, so it does not
/// target the posterior exactly; the counts still equal the counts of the trees after every sweep.</para>
/// </remarks>
public sealed class TopDownSampler : SpnPosteriorSampler
{
    private readonly Worker[] workers;
    private readonly SpnCounts? snapshot;

    /// <summary>Creates the sampler.</summary>
    /// <param name="model">The model.</param>
    /// <param name="seed">Chain seed.</param>
    /// <param name="passes">Passes over each datum's moves per sweep (≥ 1).</param>
    /// <param name="threads">Workers; 1 is the exact sequential chain, more is the approximation in the remarks.</param>
    /// <param name="moves">Which moves each datum gets (every subtree, or the whole tree only).</param>
    public TopDownSampler(BayesianSpn model, int seed = 1, int passes = 1, int threads = 1, TopDownMoves moves = TopDownMoves.EverySubtree)
        : base(model, seed)
    {
        if (passes < 1)
            throw new ArgumentOutOfRangeException(nameof(passes), $"TopDownSampler: passes per datum must be >= 1, got {passes}.");
        if (threads < 1 || threads > model.Rows)
            throw new ArgumentOutOfRangeException(nameof(threads), $"TopDownSampler: threads must be in [1, {model.Rows}] (the number of data), got {threads}.");
        if (!Enum.IsDefined(moves)) throw new ArgumentOutOfRangeException(nameof(moves), $"TopDownSampler: unknown moves {moves}.");
        Passes = passes;
        Threads = threads;
        Moves = moves;
        workers = new Worker[threads];
        for (int t = 0; t < threads; t++) workers[t] = new Worker(model, threads == 1 ? model.Counts : new SpnCounts(model.Shape));
        if (threads > 1) snapshot = new SpnCounts(model.Shape);
    }

    /// <inheritdoc />
    public override string Name => "top-down";

    /// <summary>Passes per datum and sweep (each pass makes every move of <see cref="Moves"/> once).</summary>
    public int Passes { get; }

    /// <summary>Which moves each datum gets.</summary>
    public TopDownMoves Moves { get; }

    /// <summary>Workers (1: exact).</summary>
    public int Threads { get; }

    /// <inheritdoc />
    protected override (double NodeVisitsPerDatum, double AcceptanceRate) RunSweep(int sweep)
    {
        int rows = Model.Rows;
        if (Threads == 1)
            workers[0].Run(0, rows, Passes, Moves, new SamplerRandom(Seed, (ulong)sweep * 65536));
        else
        {
            snapshot!.CopyFrom(Model.Counts);
            Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            {
                workers[t].Counts.CopyFrom(snapshot);
                workers[t].Run(rows * t / Threads, rows * (t + 1) / Threads, Passes, Moves, new SamplerRandom(Seed, (ulong)sweep * 65536 + (ulong)t));
            });
            foreach (var w in workers) Model.Counts.AddDifference(w.Counts, snapshot);
        }
        long visits = 0, accepted = 0, proposals = 0;
        foreach (var w in workers)
        {
            visits += w.Visits;
            accepted += w.Accepted;
            proposals += w.Proposals;
        }
        return ((double)visits / rows, (double)accepted / proposals);
    }

    /// <summary>One worker's buffers and the Metropolis-Hastings moves over a block of data.</summary>
    private sealed class Worker(BayesianSpn model, SpnCounts counts)
    {
        private readonly TreePath current = new(model.Shape), proposed = new(model.Shape);
        private readonly int[] proposedTree = new int[model.Shape.Slots];

        public SpnCounts Counts { get; } = counts;
        public long Visits { get; private set; }
        public long Accepted { get; private set; }
        public long Proposals { get; private set; }

        public void Run(int from, int to, int passes, TopDownMoves moves, SamplerRandom random)
        {
            var shape = model.Shape;
            var read = new StoredChoice();
            var proposal = new SubtreeProposal(new CountProposal(model, Counts, random));
            int movesPerPass = moves == TopDownMoves.WholeTree ? 1 : shape.Slots;
            TreePath cur = current, prop = proposed;
            long visits = 0, accepted = 0;
            for (int n = from; n < to; n++)
            {
                var tree = model.Tree(n);
                var row = model.Row(n);
                shape.Walk(tree, cur, ref read);
                Counts.Apply(shape, cur, row, -1);
                for (int pass = 0; pass < passes; pass++)
                    for (int slot = 0; slot < movesPerPass; slot++)
                    {
                        // Slots are in heap order, so this visits the tree's sum nodes from the root down.
                        tree.CopyTo(proposedTree);
                        proposal.Restrict(slot);
                        shape.Walk(proposedTree, prop, ref proposal);
                        double logRatio = 0;
                        for (int j = 0; j < shape.LeafRegionsPerTree; j++)
                        {
                            int region = prop.LeafRegion[j], comp = prop.LeafComp[j];
                            // A leaf both trees reach (every leaf outside the subtree, some inside) contributes the same factor to both.
                            if (region == cur.LeafRegion[j] && comp == cur.LeafComp[j]) continue;
                            logRatio += model.LogLeafPredictive(Counts, row, region, comp)
                                - model.LogLeafPredictive(Counts, row, cur.LeafRegion[j], cur.LeafComp[j]);
                            visits += 2 * (shape.LeafRegionStart[region + 1] - shape.LeafRegionStart[region]);
                        }
                        visits += shape.Slots;
                        if (logRatio >= 0 || Math.Log(proposal.Counts.Random.NextOpen()) < logRatio)
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
            Visits = visits + proposal.Counts.Visits;
            Accepted = accepted;
            Proposals = (long)(to - from) * passes * movesPerPass;
        }
    }

    /// <summary>
    /// The network proposal restricted to the subtree of one slot: choices in that slot's region and below are drawn
    /// from the counts, every other choice is kept (the root's slot covers the whole tree).
    /// </summary>
    private struct SubtreeProposal(CountProposal counts) : IChildChooser
    {
        public CountProposal Counts = counts;
        private int level, index;

        /// <summary>Restricts the next walk to the subtree of heap slot <paramref name="slot"/>.</summary>
        public void Restrict(int slot)
        {
            level = 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)(slot + 1));
            index = slot + 1 - (1 << level);
        }

        public int Choose(int layer, int node, int region, int children, int stored)
        {
            // Region j' of level `layer` (within the repetition) lies under region `index` of `level` when its first
            // `level` bits, read from the top, are `index`.
            int local = region & ((1 << layer) - 1);
            bool inside = layer >= level && (local >> (layer - level)) == index;
            return inside ? Counts.Choose(layer, node, region, children, stored) : stored;
        }
    }
}
