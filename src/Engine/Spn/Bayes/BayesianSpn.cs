using Engine.Data;

namespace Engine.Spn;

/// <summary>
/// A sum-product network learned by Bayesian inference with its weights and leaf parameters integrated out
/// (Yokoi and Sato, "Top-Down Bayesian Posterior Sampling for Sum-Product Networks", arXiv 2406.12353). Every sum
/// node's weights have a symmetric Dirichlet prior (one concentration per sum layer), every leaf's value
/// probabilities a Dirichlet prior (a Beta for Bernoulli leaves) shared by all leaves on one variable; each datum n
/// has a latent induced tree z_n choosing one child of every sum node it reaches. What remains is the collapsed
/// posterior p(Z | X, α, γ), kept as counts (<see cref="LogJoint"/>), which the samplers
/// (<see cref="TopDownSampler"/>, <see cref="BottomUpGibbsSampler"/>) move one tree at a time.
/// </summary>
/// <remarks>
/// The structure is an ordinary <see cref="Spn"/> (Bernoulli or categorical leaves): the model uses its region graph
/// and writes posterior means or draws into its parameters, so prediction runs the network's exact inference on its
/// device. Because a tree reaches every sum node and every leaf at most once, the posterior predictive given Z is
/// exactly the network with the posterior-mean weights (n_c + α) / (n + Cα) and leaf probabilities
/// (n_x + γ_x) / (n + Σγ) (<see cref="ExportPosteriorMean"/>). Data is [rows, variables] row-major, values 0 .. C-1,
/// NaN for missing (integrated out).
/// </remarks>
public sealed class BayesianSpn
{
    internal const byte Missing = 255;
    private readonly byte[] x;
    private readonly int[] z;
    private readonly double[] sumConcentration;
    private readonly double[] leafConcentration;
    private readonly double[] leafConcentrationTotal;

    /// <summary>
    /// Builds the model over <paramref name="network"/>'s structure and <paramref name="data"/>, and draws a first
    /// tree for every datum from the prior, one datum after the other (each from the counts of those before it).
    /// </summary>
    /// <param name="network">The structure (Bernoulli or categorical leaves); its parameters are overwritten by exports.</param>
    /// <param name="data">[rows, variables] row-major, values in {0, ..., C-1} or NaN (missing).</param>
    /// <param name="sumConcentration">Dirichlet pseudo-count per child of every sum node (all layers), &gt; 0.</param>
    /// <param name="leafConcentration">Dirichlet (Beta) pseudo-count per value of every leaf, &gt; 0.</param>
    /// <param name="seed">Seed of the first trees.</param>
    /// <exception cref="InvalidOperationException">The network has more than one root sum.</exception>
    /// <exception cref="ArgumentException">Gaussian leaves, data that is not whole rows of the network's variables or
    /// has a value outside the leaves' support, or a concentration that is not a positive finite number.</exception>
    public BayesianSpn(Spn network, float[] data, double sumConcentration = 1.0, double leafConcentration = 0.5, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(data);
        network.RequireSingleRoot("BayesianSpn");
        if (network.LeafType == SpnLeafType.Gaussian)
            throw new ArgumentException("BayesianSpn: only Bernoulli and categorical leaves have the conjugate (Dirichlet) prior this model integrates out; the network has Gaussian leaves.", nameof(network));
        CheckConcentration("sumConcentration", sumConcentration);
        CheckConcentration("leafConcentration", leafConcentration);
        int d = network.Variables, C = network.Categories;
        if (C > Missing)
            throw new ArgumentException($"BayesianSpn: at most {Missing} categories per variable are supported (values are stored as bytes), the network has {C}.", nameof(network));
        if (data.Length == 0 || data.Length % d != 0)
            throw new ArgumentException($"BayesianSpn: data of {data.Length} values is not a positive number of whole rows of the network's {d} variables.", nameof(data));
        x = Encode(data, d, C);
        Network = network;
        Data = data;
        Rows = data.Length / d;
        Shape = new SpnTreeShape(network);
        z = new int[(long)Rows * Shape.Slots];
        this.sumConcentration = Enumerable.Repeat(sumConcentration, Shape.Layers).ToArray();
        this.leafConcentration = Enumerable.Repeat(leafConcentration, d * C).ToArray();
        leafConcentrationTotal = Enumerable.Repeat(leafConcentration * C, d).ToArray();
        Counts = new SpnCounts(Shape);
        DrawFirstTrees(seed);
    }

    /// <summary>Builds the model over a loaded data set (see the other constructor).</summary>
    /// <exception cref="ArgumentException">The data has another number of columns than the network has variables, or
    /// any of the other constructor's conditions.</exception>
    public BayesianSpn(Spn network, DensityData data, double sumConcentration = 1.0, double leafConcentration = 0.5, int seed = 1)
        : this(network, CheckColumns(network, data), sumConcentration, leafConcentration, seed)
    {
    }

    private static float[] CheckColumns(Spn network, DensityData data)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(data);
        if (data.Columns != network.Variables)
            throw new ArgumentException($"BayesianSpn: {Spn.DescribeData(data)} has {data.Columns} variables, the network was built for {network.Variables}.", nameof(data));
        return data.Values;
    }

    /// <summary>The network whose structure the model uses and whose parameters exports overwrite.</summary>
    public Spn Network { get; }
    /// <summary>Number of data (training rows).</summary>
    public int Rows { get; }
    /// <summary>Number of variables.</summary>
    public int Variables => Shape.Variables;
    /// <summary>Values per variable.</summary>
    public int Categories => Shape.Categories;
    /// <summary>Choices per datum's tree (the row length of <see cref="Trees"/>).</summary>
    public int TreeSlots => Shape.Slots;
    /// <summary>Sum layers: 0 is the root, l ≥ 1 the sums of region-graph level l.</summary>
    public int SumLayers => Shape.Layers;

    /// <summary>
    /// Every datum's tree, [rows, <see cref="TreeSlots"/>]: slot 0 is the root's child (repetition-major product
    /// index), slot 2^l - 1 + j the product chosen by the sum node reached in region j of level l of that repetition.
    /// </summary>
    public ReadOnlySpan<int> Trees => z;

    /// <summary>The Dirichlet pseudo-count per child of the sum nodes of <paramref name="layer"/>.</summary>
    public double SumConcentration(int layer) => sumConcentration[CheckLayer(layer)];

    /// <summary>The Dirichlet (Beta) pseudo-count of value <paramref name="category"/> in every leaf on <paramref name="variable"/>.</summary>
    public double LeafConcentration(int variable, int category) => leafConcentration[LeafIndex(variable, category)];

    /// <summary>Sets <see cref="SumConcentration"/> of one layer (a positive finite number).</summary>
    public void SetSumConcentration(int layer, double value)
    {
        CheckConcentration("SetSumConcentration", value);
        sumConcentration[CheckLayer(layer)] = value;
    }

    /// <summary>Sets <see cref="LeafConcentration"/> of one variable and value (a positive finite number).</summary>
    public void SetLeafConcentration(int variable, int category, double value)
    {
        CheckConcentration("SetLeafConcentration", value);
        int at = LeafIndex(variable, category);
        leafConcentrationTotal[variable] += value - leafConcentration[at];
        leafConcentration[at] = value;
    }

    internal SpnTreeShape Shape { get; }
    internal SpnCounts Counts { get; }
    /// <summary>The data as given (float rows, for the network's upward pass).</summary>
    internal float[] Data { get; }
    internal double[] SumConcentrations => sumConcentration;
    internal double[] LeafConcentrations => leafConcentration;
    internal double[] LeafConcentrationTotals => leafConcentrationTotal;
    internal ReadOnlySpan<byte> Row(int n) => x.AsSpan(n * Variables, Variables);
    internal Span<int> Tree(int n) => z.AsSpan(n * Shape.Slots, Shape.Slots);

    /// <summary>
    /// The collapsed log joint ln p(X, Z | α, γ) of the data and the current trees, with the weights and leaf
    /// parameters integrated out: for every sum node a Dirichlet-multinomial term
    /// ln Γ(Cα) - ln Γ(Cα + n) + Σ_c [ln Γ(α + n_c) - ln Γ(α)], and for every leaf the same with its value counts.
    /// Normalising it over all Z gives the posterior the samplers target.
    /// </summary>
    public double LogJoint()
    {
        double lp = 0;
        for (int layer = 0; layer < Shape.Layers; layer++)
        {
            double a = sumConcentration[layer];
            int children = Shape.LayerChildren[layer];
            for (int node = Shape.LayerNodeStart[layer]; node < Shape.LayerNodeStart[layer + 1]; node++)
            {
                int start = Shape.LayerCountStart[layer] + (node - Shape.LayerNodeStart[layer]) * children;
                lp += DirichletMultinomial(Counts.Sum.AsSpan(start, children), Counts.SumTotal[node], a, children * a, null);
            }
        }
        int I = Shape.LeafComponents, C = Shape.Categories;
        for (int e = 0; e < Shape.Entries; e++)
        {
            int v = Shape.EntryVariable[e];
            var gamma = leafConcentration.AsSpan(v * C, C);
            for (int i = 0; i < I; i++)
            {
                int leaf = e * I + i;
                lp += DirichletMultinomial(Counts.Leaf.AsSpan(leaf * C, C), Counts.LeafTotal[leaf], 0, leafConcentrationTotal[v], gamma);
            }
        }
        return lp;
    }

    /// <summary>
    /// ln of the Dirichlet-multinomial probability of one ordered sequence with these counts: symmetric
    /// concentration <paramref name="a"/> per category, or the per-category <paramref name="perCategory"/>.
    /// </summary>
    private static double DirichletMultinomial(ReadOnlySpan<int> counts, int total, double a, double sumA, ReadOnlySpan<double> perCategory)
    {
        if (total == 0) return 0;
        double lp = -SpecialFunctions.LogRising(sumA, total);
        for (int k = 0; k < counts.Length; k++)
            if (counts[k] > 0) lp += SpecialFunctions.LogRising(perCategory.IsEmpty ? a : perCategory[k], counts[k]);
        return lp;
    }

    /// <summary>
    /// Replaces every datum's tree (layout of <see cref="Trees"/>) and recomputes the counts.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong length, or a choice outside its sum node's children.</exception>
    public void SetTrees(ReadOnlySpan<int> trees)
    {
        if (trees.Length != z.Length)
            throw new ArgumentException($"BayesianSpn.SetTrees: expected {Rows} x {Shape.Slots} = {z.Length} choices, got {trees.Length}.", nameof(trees));
        for (int n = 0; n < Rows; n++)
            for (int s = 0; s < Shape.Slots; s++)
            {
                int c = trees[n * Shape.Slots + s], children = Shape.LayerChildren[Shape.SlotLayer[s]];
                if (c < 0 || c >= children)
                    throw new ArgumentException($"BayesianSpn.SetTrees: datum {n}, slot {s} chooses child {c}, but its sum nodes have {children} children.", nameof(trees));
            }
        trees.CopyTo(z);
        RecomputeCounts(Counts);
    }

    /// <summary>Fills <paramref name="target"/> with the counts of the current trees, computed from scratch.</summary>
    internal void RecomputeCounts(SpnCounts target)
    {
        target.Clear();
        var path = new TreePath(Shape);
        var read = new StoredChoice();
        for (int n = 0; n < Rows; n++)
        {
            Shape.Walk(Tree(n), path, ref read);
            target.Apply(Shape, path, Row(n), +1);
        }
    }

    /// <summary>
    /// ln of the posterior predictive probability of row <paramref name="row"/>'s values at the leaf (component
    /// <paramref name="comp"/> of leaf region <paramref name="region"/>) under <paramref name="counts"/>:
    /// Σ over the region's present variables of ln((n_x + γ_x) / (n + Σγ)).
    /// </summary>
    internal double LogLeafPredictive(SpnCounts counts, ReadOnlySpan<byte> row, int region, int comp)
    {
        int I = Shape.LeafComponents, C = Shape.Categories;
        double product = 1, log = 0;
        for (int e = Shape.LeafRegionStart[region]; e < Shape.LeafRegionStart[region + 1]; e++)
        {
            int v = Shape.EntryVariable[e];
            byte value = row[v];
            if (value == Missing) continue;
            int leaf = e * I + comp;
            product *= (counts.Leaf[leaf * C + value] + leafConcentration[v * C + value]) / (counts.LeafTotal[leaf] + leafConcentrationTotal[v]);
            // One logarithm per few hundred factors instead of one per factor; rescale before the product underflows.
            if (product < 1e-250)
            {
                log += Math.Log(product);
                product = 1;
            }
        }
        return log + Math.Log(product);
    }

    /// <summary>
    /// Writes the posterior means given the current trees into <paramref name="target"/> (default
    /// <see cref="Network"/>): weights (n_c + α) / (n + Cα), leaf probabilities (n_x + γ_x) / (n + Σγ). The network
    /// then computes the exact posterior predictive density given Z.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="target"/> has another structure.</exception>
    public void ExportPosteriorMean(Spn? target = null)
    {
        target ??= Network;
        CheckSameStructure("ExportPosteriorMean", target);
        var sumLogW = new float[Shape.SumCounts];
        var leafLogP = new float[Counts.Leaf.Length];
        PosteriorMeanLogProbabilities(sumLogW, leafLogP);
        target.SetLogProbabilities(sumLogW, leafLogP);
    }

    /// <summary>The posterior-mean log weights and leaf log-probabilities given the current counts.</summary>
    internal void PosteriorMeanLogProbabilities(Span<float> sumLogW, Span<float> leafLogP)
    {
        for (int layer = 0; layer < Shape.Layers; layer++)
        {
            double a = sumConcentration[layer];
            int children = Shape.LayerChildren[layer];
            for (int node = Shape.LayerNodeStart[layer]; node < Shape.LayerNodeStart[layer + 1]; node++)
            {
                int start = Shape.LayerCountStart[layer] + (node - Shape.LayerNodeStart[layer]) * children;
                double logTotal = Math.Log(Counts.SumTotal[node] + children * a);
                for (int k = 0; k < children; k++) sumLogW[start + k] = (float)(Math.Log(Counts.Sum[start + k] + a) - logTotal);
            }
        }
        int I = Shape.LeafComponents, C = Shape.Categories;
        for (int e = 0; e < Shape.Entries; e++)
        {
            int v = Shape.EntryVariable[e];
            for (int i = 0; i < I; i++)
            {
                int leaf = e * I + i;
                double logTotal = Math.Log(Counts.LeafTotal[leaf] + leafConcentrationTotal[v]);
                for (int c = 0; c < C; c++)
                    leafLogP[leaf * C + c] = (float)(Math.Log(Counts.Leaf[leaf * C + c] + leafConcentration[v * C + c]) - logTotal);
            }
        }
    }

    internal void CheckSameStructure(string op, Spn target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!ReferenceEquals(target.Graph, Network.Graph) || target.LeafComponents != Network.LeafComponents
            || target.SumsPerRegion != Network.SumsPerRegion || target.LeafType != Network.LeafType || target.Categories != Network.Categories)
            throw new ArgumentException($"BayesianSpn.{op}: the target network must share the model's region graph, I = {Network.LeafComponents}, S = {Network.SumsPerRegion} and {Network.LeafType} leaves with {Network.Categories} categories.");
    }

    private void DrawFirstTrees(int seed)
    {
        var path = new TreePath(Shape);
        var proposal = new CountProposal(this, Counts, new SamplerRandom((ulong)seed, 0x5eed));
        for (int n = 0; n < Rows; n++)
        {
            Shape.Walk(Tree(n), path, ref proposal);
            Counts.Apply(Shape, path, Row(n), +1);
        }
    }

    private static byte[] Encode(float[] data, int variables, int categories)
    {
        var codes = new byte[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            float v = data[i];
            if (float.IsNaN(v))
            {
                codes[i] = Missing;
                continue;
            }
            if (v < 0 || v >= categories || v != MathF.Floor(v))
                throw new ArgumentException($"BayesianSpn: value {v} at row {i / variables}, variable {i % variables} is outside the leaves' support {{0, ..., {categories - 1}}} (NaN marks a missing value).", nameof(data));
            codes[i] = (byte)v;
        }
        return codes;
    }

    private int CheckLayer(int layer) => layer >= 0 && layer < Shape.Layers ? layer
        : throw new ArgumentOutOfRangeException(nameof(layer), $"BayesianSpn: sum layer {layer} does not exist (layers 0 .. {Shape.Layers - 1}).");

    private int LeafIndex(int variable, int category)
    {
        if (variable < 0 || variable >= Variables || category < 0 || category >= Categories)
            throw new ArgumentOutOfRangeException(nameof(variable), $"BayesianSpn: leaf prior ({variable}, {category}) is outside {Variables} variables x {Categories} values.");
        return variable * Categories + category;
    }

    internal static void CheckConcentration(string what, double value)
    {
        if (!(value > 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(what, $"BayesianSpn: {what} must be a positive finite number, got {value}.");
    }
}
