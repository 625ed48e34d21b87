using Engine.Data;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Spn;

/// <summary>The distribution of an SPN's leaves (one per variable, factorised over a leaf region's variables).</summary>
public enum SpnLeafType
{
    /// <summary>Binary variables (values 0/1); one logit per leaf and variable.</summary>
    Bernoulli,
    /// <summary>Variables with values 0..categories-1; one logit vector per leaf and variable.</summary>
    Categorical,
    /// <summary>Real variables; a mean and a log standard deviation per leaf and variable.</summary>
    Gaussian,
}

/// <summary>
/// A tensorised sum-product network (RAT-SPN / Einsum-network style) over a <see cref="RegionGraph"/>: every leaf
/// region holds I leaf distributions, every inner region S sums (weights normalised by a softmax over free
/// parameters), every partition the I·I (or S·S) products of its two children, and the root mixes all products of
/// the repetitions' top regions: one sum for a density, or K sums (<c>rootSums</c>) for K densities that share every
/// layer below the root (RAT-SPN's class-conditional model: one root per class). Everything is evaluated in log space, batched: leaf layer [batch, regions, I], then per
/// level a product layer [batch, R, K²] and a sum layer [batch, R, S].
/// </summary>
/// <remarks>
/// Data is a [batch, variables] tensor; NaN marks a missing value, which the leaves integrate out exactly (they
/// contribute log 1), so <see cref="LogLikelihood"/> of partly missing data is the exact marginal. Double
/// backpropagation through the layers is supported (their gradients are recorded when createGraph is on), except
/// through the max-product pass of <see cref="Mpe(float[])"/>, which is inference only.
/// </remarks>
public sealed partial class Spn : Module
{
    private readonly SpnLeafLayout leafLayout;
    private readonly SpnProductLayout[] products;
    private readonly Tensor?[] sumLogits;     // per level 1..Depth-1: [R_l, S, K_l²]; index 0 unused
    private readonly Tensor rootLogits;       // [1, RootSums, top inputs]
    private readonly Tensor? leafLogits;      // Bernoulli [E, I]; categorical [E, I, C]
    private readonly Tensor? leafMean, leafLogStd; // Gaussian [E, I]
    private static readonly IndexTensor SecondSlot = new([1]);

    /// <summary>
    /// Builds the network and initialises its parameters from <paramref name="seed"/>: leaf logits and means
    /// uniform in [-1, 1), log standard deviations 0, sum logits normal with standard deviation 0.5.
    /// </summary>
    /// <param name="graph">The region graph (variables, depth, repetitions).</param>
    /// <param name="leafComponents">I, leaf distributions per leaf region.</param>
    /// <param name="sumsPerRegion">S, sum nodes per inner region.</param>
    /// <param name="leaf">The leaf distribution.</param>
    /// <param name="categories">Values per variable for categorical leaves (2 for Bernoulli; ignored for Gaussian).</param>
    /// <param name="seed">Initialisation seed (unseeded: one drawn from the global generator, <see cref="Engine.Random"/>).</param>
    /// <param name="device">Where the parameters live (default: <see cref="Device.Default"/>).</param>
    /// <param name="rootSums">
    /// Sums at the root: 1 for one density (the default), K for K densities sharing every layer below the root (for
    /// instance one per class: <see cref="LogLikelihood"/> then returns [batch, K]).
    /// </param>
    public Spn(RegionGraph graph, int leafComponents = 10, int sumsPerRegion = 10, SpnLeafType leaf = SpnLeafType.Bernoulli,
        int categories = 2, int? seed = null, Device? device = null, int rootSums = 1)
    {
        if (rootSums < 1) throw new ArgumentOutOfRangeException(nameof(rootSums), $"Spn: the root needs at least one sum, got {rootSums}.");
        RootSums = rootSums;
        ArgumentNullException.ThrowIfNull(graph);
        if (leafComponents < 1) throw new ArgumentOutOfRangeException(nameof(leafComponents), $"Spn: leaf components I must be >= 1, got {leafComponents}.");
        if (sumsPerRegion < 1) throw new ArgumentOutOfRangeException(nameof(sumsPerRegion), $"Spn: sums per region S must be >= 1, got {sumsPerRegion}.");
        if (leaf == SpnLeafType.Bernoulli) categories = 2;
        if (leaf == SpnLeafType.Categorical && categories < 2)
            throw new ArgumentOutOfRangeException(nameof(categories), $"Spn: categorical leaves need at least 2 categories, got {categories}.");
        Graph = graph;
        LeafComponents = leafComponents;
        SumsPerRegion = sumsPerRegion;
        LeafType = leaf;
        Categories = leaf == SpnLeafType.Gaussian ? 0 : categories;
        Device = device ?? Device.Default;
        ulong s = (ulong)(seed ?? Random.NextIntSeed()) * 7919;

        leafLayout = new SpnLeafLayout(graph.LeafRegions, graph.Variables);
        int e = leafLayout.Entries, I = leafComponents;
        switch (leaf)
        {
            case SpnLeafType.Bernoulli:
                leafLogits = RegisterParameter("leaf_logits", Tensor.Uniform([e, I], s + 1, -1f, 1f, Device));
                break;
            case SpnLeafType.Categorical:
                leafLogits = RegisterParameter("leaf_logits", Tensor.Uniform([e, I, categories], s + 1, -1f, 1f, Device));
                break;
            default:
                leafMean = RegisterParameter("leaf_mean", Tensor.Uniform([e, I], s + 1, -1f, 1f, Device));
                leafLogStd = RegisterParameter("leaf_log_std", Tensor.Zeros([e, I], Device));
                break;
        }

        products = new SpnProductLayout[graph.Depth];
        sumLogits = new Tensor?[Math.Max(graph.Depth, 1)];
        for (int l = graph.Depth - 1; l >= 0; l--)
        {
            var (left, right) = graph.Partitions(l);
            int below = graph.RegionsAt(l + 1);
            products[l] = new SpnProductLayout(left, below, right, below);
            int k = ComponentsBelow(l);
            if (l > 0) sumLogits[l] = RegisterParameter($"sum{l}_logits", Tensor.Normal([graph.RegionsAt(l), sumsPerRegion, k * k], s + 10 + (ulong)l, 0f, 0.5f, Device));
        }
        int top = graph.Depth == 0 ? graph.Repetitions * I : graph.Repetitions * ComponentsBelow(0) * ComponentsBelow(0);
        rootLogits = RegisterParameter("root_logits", Tensor.Normal([1, rootSums, top], s + 2, 0f, 0.5f, Device));
    }

    /// <summary>Sums at the root: the number of densities the network outputs (1 unless built with more).</summary>
    public int RootSums { get; }

    /// <summary>Throws naming <paramref name="op"/> when the network has more than one root sum.</summary>
    internal void RequireSingleRoot(string op)
    {
        if (RootSums != 1)
            throw new InvalidOperationException($"{op}: needs a network with one root sum (a single density); this one has {RootSums}. Train it through LogLikelihood's [batch, {RootSums}] output.");
    }

    /// <summary>The region graph.</summary>
    public RegionGraph Graph { get; }
    /// <summary>I: leaf distributions per leaf region.</summary>
    public int LeafComponents { get; }
    /// <summary>S: sums per inner region.</summary>
    public int SumsPerRegion { get; }
    /// <summary>The leaf distribution.</summary>
    public SpnLeafType LeafType { get; }
    /// <summary>Values per variable (2 for Bernoulli, 0 for Gaussian leaves).</summary>
    public int Categories { get; }
    /// <summary>Number of variables.</summary>
    public int Variables => Graph.Variables;
    /// <summary>The parameters' device.</summary>
    public Device Device { get; }
    /// <summary>The leaf regions' index lists.</summary>
    public SpnLeafLayout LeafLayout => leafLayout;

    /// <summary>Components of each child region feeding the product layer of level <paramref name="level"/>.</summary>
    private int ComponentsBelow(int level) => level == Graph.Depth - 1 ? LeafComponents : SumsPerRegion;

    /// <summary>
    /// Data-driven start for the leaves: every categorical or Bernoulli leaf gets the data's marginal distribution of
    /// its variable (Laplace-smoothed) with uniform noise in [-noise, noise) added to each logit, so the leaves of one
    /// region still differ; Gaussian leaves get the variable's mean plus noise times its standard deviation, and its
    /// standard deviation. Starting from the marginals instead of random leaves saves the first epochs of training.
    /// </summary>
    /// <param name="data">Row-major [rows, variables] values (NaN = missing, skipped).</param>
    /// <param name="noise">Half-width of the logit (or mean) perturbation.</param>
    /// <param name="seed">Noise seed.</param>
    public void InitializeLeavesFromData(float[] data, float noise = 0.5f, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0 || data.Length % Variables != 0)
            throw new ArgumentException($"Spn.InitializeLeavesFromData: {data.Length} values are not whole rows of {Variables} variables.");
        int rows = data.Length / Variables, C = Math.Max(Categories, 1);
        var rng = new Random(seed);
        var entryVar = leafLayout.EntryVariable.ToArray();
        int e = leafLayout.Entries, I = LeafComponents;
        using var _ = GradMode.NoGrad();
        if (LeafType == SpnLeafType.Gaussian)
        {
            var sum = new double[Variables];
            var sq = new double[Variables];
            var n = new double[Variables];
            for (int r = 0; r < rows; r++)
                for (int v = 0; v < Variables; v++)
                {
                    float x = data[r * Variables + v];
                    if (float.IsNaN(x)) continue;
                    sum[v] += x; sq[v] += (double)x * x; n[v]++;
                }
            var mean = new float[e * I];
            var logStd = new float[e * I];
            for (int k = 0; k < e; k++)
            {
                int v = entryVar[k];
                double mu = n[v] > 0 ? sum[v] / n[v] : 0, sd = n[v] > 0 ? Math.Sqrt(Math.Max(sq[v] / n[v] - mu * mu, MinStd * MinStd)) : 1;
                for (int i = 0; i < I; i++)
                {
                    mean[k * I + i] = (float)(mu + sd * noise * (2 * rng.NextDouble() - 1));
                    logStd[k * I + i] = (float)Math.Log(sd);
                }
            }
            leafMean!.CopyFrom(mean);
            leafLogStd!.CopyFrom(logStd);
            return;
        }
        var counts = new double[Variables * C];
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < Variables; v++)
            {
                float x = data[r * Variables + v];
                if (float.IsNaN(x)) continue;
                if (x < 0 || x >= C || x != MathF.Floor(x))
                    throw new ArgumentException($"Spn.InitializeLeavesFromData: value {x} at row {r}, variable {v} is outside the leaves' support {{0, ..., {C - 1}}}.");
                counts[v * C + (int)x]++;
            }
        var logits = new float[LeafType == SpnLeafType.Bernoulli ? e * I : e * I * C];
        for (int k = 0; k < e; k++)
        {
            int v = entryVar[k];
            double tot = 0;
            for (int c = 0; c < C; c++) tot += counts[v * C + c] + 1;
            for (int i = 0; i < I; i++)
            {
                if (LeafType == SpnLeafType.Bernoulli)
                    logits[k * I + i] = (float)(Math.Log((counts[v * 2 + 1] + 1) / (counts[v * 2] + 1)) + noise * (2 * rng.NextDouble() - 1));
                else
                    for (int c = 0; c < C; c++)
                        logits[(k * I + i) * C + c] = (float)(Math.Log((counts[v * C + c] + 1) / tot) + noise * (2 * rng.NextDouble() - 1));
            }
        }
        leafLogits!.CopyFrom(logits);
    }

    /// <summary>Log-likelihood per sample, [batch] (same as <see cref="LogLikelihood"/>).</summary>
    public override Tensor Forward(Tensor input) => LogLikelihood(input);

    /// <summary>
    /// log p(x) per sample: x [batch, variables]; NaN entries are missing and integrated out exactly (so this is also
    /// the marginal of the observed entries). Returns [batch] (or [batch, RootSums] with several root sums: log p_k(x)
    /// of each root), differentiable in every parameter.
    /// </summary>
    /// <exception cref="ArgumentException">x has the wrong shape or a value outside the leaves' support.</exception>
    public Tensor LogLikelihood(Tensor x)
    {
        CheckData("LogLikelihood", x);
        return Evaluate(x, LeafForward(x), LogWeights(), max: false, trace: null);
    }

    /// <summary>
    /// log p(x_O) of the entries marked observed by <paramref name="observed"/> ([batch, variables], nonzero = observed);
    /// the others are integrated out whatever their value.
    /// </summary>
    public Tensor LogMarginal(Tensor x, Tensor observed)
    {
        CheckData("LogMarginal", x, values: false); // unobserved entries may hold anything
        return LogLikelihood(WithMissing("LogMarginal", x, observed, keepWhereNonzero: true));
    }

    /// <summary>
    /// log p(x_Q | x_E): the query entries Q are those where <paramref name="query"/> is nonzero, the evidence E every
    /// other non-missing entry; = log p(x_Q, x_E) - log p(x_E), [batch].
    /// </summary>
    public Tensor LogConditional(Tensor x, Tensor query)
    {
        CheckData("LogConditional", x);
        var joint = LogLikelihood(x);
        var evidence = LogLikelihood(WithMissing("LogConditional", x, query, keepWhereNonzero: false));
        return joint - evidence;
    }

    /// <summary>
    /// Checks x's shape, device and values (NaN or a category of the leaves; for Gaussian leaves, not infinite) on the
    /// host before any kernel: the values once per data tensor (see <see cref="Ops.CheckSpnCategoricalData"/>).
    /// </summary>
    private void CheckData(string op, Tensor x, bool values = true)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 2)
            throw new ArgumentException($"Spn.{op}: data {Shape.Format(x.Shape)} has rank {x.Rank}; it must be [batch, {Variables}] (one row per sample, one column per variable).");
        if (x.Shape[1] != Variables)
            throw new ArgumentException($"Spn.{op}: data {Shape.Format(x.Shape)} must be [batch, {Variables}]: the network was built for {Variables} variables, the data has {x.Shape[1]} columns.");
        if (!ReferenceEquals(x.Device, Device))
            throw new ArgumentException($"Spn.{op}: data lives on '{x.Device.Name}', the network on '{Device.Name}'.");
        if (!values) return;
        if (LeafType == SpnLeafType.Gaussian) Ops.CheckSpnGaussianData(x, leafLayout, $"Spn.{op}");
        else Ops.CheckSpnCategoricalData(x, leafLayout, Categories, $"Spn.{op}");
    }

    /// <summary>
    /// Checks the values of <paramref name="data"/> for this network's leaves once, on the host where they are, so
    /// the batches cut from it need no check; returns the largest category (-1 for Gaussian leaves).
    /// </summary>
    /// <exception cref="ArgumentException">A value is outside the leaves' support (the message names row and column).</exception>
    internal int CheckValues(DensityData data, string op)
    {
        if (LeafType == SpnLeafType.Gaussian) return -1; // DensityData holds no infinite value
        var v = data.Values;
        int max = -1;
        for (int k = 0; k < v.Length; k++)
        {
            if (float.IsNaN(v[k])) continue;
            if (v[k] < 0 || v[k] >= Categories || v[k] != MathF.Floor(v[k]))
                throw new ArgumentException(
                    $"{op}: {DescribeData(data)} has {v[k]} at row {k / data.Columns}, column {k % data.Columns}, outside the leaves' support {{0, ..., {Categories - 1}}} (NaN marks a missing value).");
            max = Math.Max(max, (int)v[k]);
        }
        return max;
    }

    /// <summary>"data 'name'" or, without a name, "the data (rows x columns)", for messages.</summary>
    internal static string DescribeData(DensityData data) =>
        data.Name.Length > 0 ? $"data '{data.Name}'" : $"the data ({data.Rows} x {data.Columns})";

    /// <summary>A copy of x with NaN where the mask says missing (nonzero = keep, or nonzero = drop).</summary>
    private static Tensor WithMissing(string op, Tensor x, Tensor mask, bool keepWhereNonzero)
    {
        if (!Shape.Equal(x.Shape, mask.Shape))
            throw new ArgumentException($"Spn.{op}: mask {Shape.Format(mask.Shape)} must have the data's shape {Shape.Format(x.Shape)}.");
        var d = x.ToArray();
        var m = mask.ToArray();
        for (int i = 0; i < d.Length; i++)
            if ((m[i] != 0) != keepWhereNonzero) d[i] = float.NaN;
        return Tensor.FromArray(d, x.Shape, x.Device);
    }

    /// <summary>The leaves' log-probability table [entries, I, C] (categorical and Bernoulli leaves).</summary>
    internal Tensor LeafLogTable()
    {
        if (LeafType == SpnLeafType.Bernoulli)
        {
            // [0, θ] along a new last axis, then log-softmax: [log(1 - p), log p] with p = sigmoid(θ), stable.
            int e = leafLayout.Entries;
            return leafLogits!.Reshape(e, LeafComponents, 1).IndexAdd(2, SecondSlot, 2).LogSoftmax(-1);
        }
        return leafLogits!.LogSoftmax(-1);
    }

    /// <summary>The leaf layer's output [batch, leaf regions, I].</summary>
    /// <remarks>The caller has checked x (<see cref="CheckData"/>), so no kernel runs before its values are known good.</remarks>
    private Tensor LeafForward(Tensor x) => LeafType == SpnLeafType.Gaussian
        ? Ops.SpnLeafGaussian(x, leafMean!, leafLogStd!, leafLayout)
        : Ops.SpnLeafCategorical(x, LeafLogTable(), leafLayout);

    /// <summary>Normalised log weights of every sum layer (index 0: the root; index l: level l).</summary>
    internal Tensor[] LogWeights()
    {
        var w = new Tensor[Math.Max(Graph.Depth, 1)];
        w[0] = rootLogits.LogSoftmax(-1);
        for (int l = 1; l < Graph.Depth; l++) w[l] = sumLogits[l]!.LogSoftmax(-1);
        return w;
    }

    /// <summary>
    /// Products and sums above the leaf layer. <paramref name="logW"/> as from <see cref="LogWeights"/>. With a
    /// <paramref name="trace"/>, appends each level's product output (level Depth-1 first) and the root input.
    /// </summary>
    internal Tensor Evaluate(Tensor x, Tensor leafOut, Tensor[] logW, bool max, List<Tensor>? trace)
    {
        int batch = x.Shape[0];
        var h = leafOut;
        for (int l = Graph.Depth - 1; l >= 0; l--)
        {
            var p = Ops.SpnProduct(h, h, products[l]);
            trace?.Add(p);
            h = l > 0 ? Ops.SpnSum(p, logW[l], max) : p;
        }
        var rootIn = h.Reshape(batch, 1, -1);
        trace?.Add(rootIn);
        var root = Ops.SpnSum(rootIn, logW[0], max);
        return RootSums == 1 ? root.Reshape(batch) : root.Reshape(batch, RootSums);
    }

    /// <summary>Frees the parameters and the layouts' index lists.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            leafLayout.Dispose();
            foreach (var p in products) p.Dispose();
        }
        base.Dispose(disposing);
    }
}
