namespace Engine.Spn;

/// <summary>
/// The bottom-up baseline in the style of Trapp et al. (2019), "Bayesian Learning of Sum-Product Networks": blocked
/// Gibbs sampling with the weights and leaf parameters instantiated. Each sweep draws every sum node's weights and
/// every leaf's probabilities from their Dirichlet (Beta) posteriors given the counts, writes them into the
/// network, runs one batched upward pass over all data through the network's kernels, and draws every datum's tree
/// top-down from the exact conditional given those parameters (ancestral sampling); then the counts are rebuilt.
/// </summary>
/// <remarks>
/// Given the parameters the trees are independent, so this sampler is parallel over data (the kernels over the
/// batch, the top-down draws over rows), and its marginal chain over Z has the collapsed posterior as its
/// stationary distribution. The price is structural: every datum's upward pass reaches the whole network
/// (every leaf of every repetition and component, every product and every sum edge), where the top-down sampler
/// reaches one tree. Overwrites the network's parameters with each draw.
/// </remarks>
public sealed class BottomUpGibbsSampler : SpnPosteriorSampler
{
    private const int ParallelRows = 64;
    private readonly int batchSize;
    private readonly float[] sumLogW;
    private readonly float[] leafLogP;
    private readonly double[] logDraw;

    /// <summary>Creates the sampler.</summary>
    /// <param name="model">The model.</param>
    /// <param name="seed">Chain seed.</param>
    /// <param name="batchSize">Rows per upward pass (bounds the memory of the traced levels).</param>
    public BottomUpGibbsSampler(BayesianSpn model, int seed = 1, int batchSize = 1024) : base(model, seed)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"BottomUpGibbsSampler: batch size must be >= 1, got {batchSize}.");
        this.batchSize = batchSize;
        sumLogW = new float[model.Shape.SumCounts];
        leafLogP = new float[model.Counts.Leaf.Length];
        logDraw = new double[Math.Max(model.Shape.LayerChildren.Max(), model.Categories)];
    }

    /// <inheritdoc />
    public override string Name => "bottom-up Gibbs";

    /// <inheritdoc />
    protected override (double NodeVisitsPerDatum, double AcceptanceRate) RunSweep(int sweep)
    {
        var shape = Model.Shape;
        var random = new SamplerRandom(Seed, (ulong)sweep * 65536 + 0xffff);
        DrawParameters(ref random);
        Model.Network.SetLogProbabilities(sumLogW, leafLogP);
        long walkVisits = 0;
        for (int start = 0; start < Model.Rows; start += batchSize)
        {
            int rows = Math.Min(batchSize, Model.Rows - start);
            var levels = Model.Network.UpwardProducts(Model.Data, start, rows);
            walkVisits += DrawTrees(levels, start, rows, sweep);
        }
        Model.RecomputeCounts(Model.Counts);
        long parameterDraws = sumLogW.Length + leafLogP.Length;
        double visits = shape.UpwardVisitsPerDatum + (double)walkVisits / Model.Rows
            + shape.Slots + shape.Variables + (double)parameterDraws / Model.Rows;
        return (visits, 1.0);
    }

    /// <summary>Draws every sum node's weights and every leaf's probabilities from their posteriors given the counts.</summary>
    private void DrawParameters(ref SamplerRandom random)
    {
        var shape = Model.Shape;
        var counts = Model.Counts;
        var alpha = Model.SumConcentrations;
        var draw = logDraw.AsSpan();
        for (int layer = 0; layer < shape.Layers; layer++)
        {
            int children = shape.LayerChildren[layer];
            var concentration = new double[children];
            Array.Fill(concentration, alpha[layer]);
            for (int node = shape.LayerNodeStart[layer]; node < shape.LayerNodeStart[layer + 1]; node++)
            {
                int at = shape.LayerCountStart[layer] + (node - shape.LayerNodeStart[layer]) * children;
                var d = draw[..children];
                random.NextLogDirichlet(counts.Sum.AsSpan(at, children), concentration, d);
                for (int k = 0; k < children; k++) sumLogW[at + k] = (float)d[k];
            }
        }
        int I = shape.LeafComponents, C = shape.Categories;
        for (int e = 0; e < shape.Entries; e++)
        {
            var gamma = Model.LeafConcentrations.AsSpan(shape.EntryVariable[e] * C, C);
            for (int i = 0; i < I; i++)
            {
                int at = (e * I + i) * C;
                var d = draw[..C];
                random.NextLogDirichlet(counts.Leaf.AsSpan(at, C), gamma, d);
                for (int c = 0; c < C; c++) leafLogP[at + c] = (float)d[c];
            }
        }
    }

    /// <summary>Ancestral sampling of the trees of rows start .. start + rows from one upward pass; returns the child scores read.</summary>
    private long DrawTrees(float[][] levels, int start, int rows, int sweep)
    {
        var shape = Model.Shape;
        int widest = shape.LayerChildren.Max();
        long Draw(int b, TreePath path, double[] scores)
        {
            int n = start + b;
            var chooser = new PosteriorChoice(shape, levels, sumLogW, b, scores, new SamplerRandom(Seed, ((ulong)sweep << 32) | (uint)n));
            shape.Walk(Model.Tree(n), path, ref chooser);
            return chooser.Visits;
        }
        long visits = 0;
        // Each row has its own random stream, so the trees do not depend on how rows are split over threads.
        if (rows < ParallelRows)
        {
            var path = new TreePath(shape);
            var scores = new double[widest];
            for (int b = 0; b < rows; b++) visits += Draw(b, path, scores);
            return visits;
        }
        Parallel.For(0, rows, () => (Path: new TreePath(shape), Scores: new double[widest], Visits: 0L),
            (b, _, local) => (local.Path, local.Scores, local.Visits + Draw(b, local.Path, local.Scores)),
            local => Interlocked.Add(ref visits, local.Visits));
        return visits;
    }

    /// <summary>
    /// Draws a sum node's child from its exact conditional given the instantiated parameters: proportional to the
    /// child's weight times its density at the datum (the upward pass's product output).
    /// </summary>
    private struct PosteriorChoice(SpnTreeShape shape, float[][] levels, float[] logW, int row, double[] scores, SamplerRandom random) : IChildChooser
    {
        private SamplerRandom random = random;
        public long Visits;

        public int Choose(int layer, int node, int region, int children, int stored)
        {
            int wStart = shape.LayerCountStart[layer] + (node - shape.LayerNodeStart[layer]) * children;
            // Level l's products are [rows, R_l, K_l²]; the root reads level 0 (or, at depth 0, the leaves) whole.
            int regions = layer == 0 ? 1 : shape.Repetitions << layer;
            int vStart = (row * regions + (layer == 0 ? 0 : region)) * children;
            var v = levels[layer];
            double max = double.NegativeInfinity;
            for (int k = 0; k < children; k++)
            {
                scores[k] = (double)logW[wStart + k] + v[vStart + k];
                max = Math.Max(max, scores[k]);
            }
            double total = 0;
            for (int k = 0; k < children; k++) total += scores[k] = Math.Exp(scores[k] - max);
            double u = random.NextDouble() * total;
            Visits += children;
            for (int k = 0; k < children; k++)
            {
                u -= scores[k];
                if (u < 0) return k;
            }
            return children - 1;
        }
    }
}
