using Engine.Autodiff;

namespace Engine.Spn;

// MPE (max-product approximation) and ancestral sampling: one batched upward pass on the device, whose per-level
// outputs are read back, then a top-down walk per sample on the host choosing one child of every sum node it
// reaches (the best one for MPE, a random one for sampling) until it reaches the leaves.
public sealed partial class Spn
{
    private const int InferenceBatch = 1024;

    /// <summary>
    /// Most probable explanation (max-product approximation): x is [rows, variables] row-major with NaN for the
    /// entries to fill; returns a copy with every NaN replaced by the value of the max-product tree's leaf (the mode of
    /// the chosen leaf distribution), observed entries unchanged.
    /// </summary>
    public float[] Mpe(float[] x) => Complete(x, sample: false, seed: 0);

    /// <summary><see cref="Mpe(float[])"/> for a [rows, variables] tensor (result on the network's device).</summary>
    public Tensor Mpe(Tensor x)
    {
        CheckData("Mpe", x);
        return Tensor.FromArray(Mpe(x.ToArray()), x.Shape, Device);
    }

    /// <summary>Draws <paramref name="count"/> samples from the network's distribution (ancestral sampling), [count, variables] row-major.</summary>
    public float[] Sample(int count, int seed)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"Spn.Sample: count must be >= 0, got {count}.");
        var x = new float[(long)count * Variables];
        Array.Fill(x, float.NaN);
        return Complete(x, sample: true, seed);
    }

    /// <summary>
    /// Conditional sampling: every NaN entry of <paramref name="evidence"/> ([rows, variables] row-major) is drawn from
    /// p(missing | observed entries of its row); observed entries are kept.
    /// </summary>
    public float[] Sample(float[] evidence, int seed) => Complete(evidence, sample: true, seed);

    private float[] Complete(float[] x, bool sample, int seed)
    {
        ArgumentNullException.ThrowIfNull(x);
        string op = sample ? "Sample" : "Mpe";
        RequireSingleRoot("Spn." + op);
        if (x.Length % Variables != 0)
            throw new ArgumentException($"Spn.{op}: {x.Length} values are not whole rows of {Variables} variables.");
        var result = (float[])x.Clone();
        int rows = x.Length / Variables;
        var rng = new Random(seed);
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        var host = new HostWeights(this);
        for (int start = 0; start < rows; start += InferenceBatch)
        {
            int n = Math.Min(InferenceBatch, rows - start);
            using var batchScope = new TensorScope();
            var chunk = new float[n * Variables];
            Array.Copy(x, (long)start * Variables, chunk, 0, chunk.Length);
            var xt = Tensor.FromArray(chunk, [n, Variables], Device);
            var leafOut = LeafForward(xt);
            if (!sample) leafOut = leafOut + MissingLeafMax(chunk, n);
            var trace = new List<Tensor>();
            Evaluate(xt, leafOut, LogWeights(), max: !sample, trace);
            var levels = trace.Select(t => t.ToArray()).ToArray();
            for (int b = 0; b < n; b++)
                Walk(host, levels, result, (long)(start + b) * Variables, b, sample, rng);
        }
        return result;
    }

    /// <summary>
    /// For max-product: what each leaf contributes for its missing variables, max over values of the leaf's
    /// log-density (the mode), computed by the categorical leaf kernel with a one-category table holding that maximum
    /// and data that is 0 where the value is missing and NaN (skipped) where it is present.
    /// </summary>
    private Tensor MissingLeafMax(float[] chunk, int n)
    {
        var ind = new float[chunk.Length];
        for (int i = 0; i < chunk.Length; i++) ind[i] = float.IsNaN(chunk[i]) ? 0f : float.NaN;
        Tensor best;
        if (LeafType == SpnLeafType.Gaussian)
            best = (-leafLogStd! - 0.918938533204672742f).Reshape(leafLayout.Entries, LeafComponents, 1);
        else
            best = LeafLogTable().Max(-1, keepDim: true);
        var indicator = Tensor.FromArray(ind, [n, Variables], Device);
        Ops.MarkSpnCategoricalDataChecked(indicator, 0); // 0 or NaN by construction
        return Ops.SpnLeafCategorical(indicator, best, leafLayout);
    }

    /// <summary>Host copies of the normalised weights and leaf parameters for the top-down walk.</summary>
    private sealed class HostWeights
    {
        public readonly float[][] LogW;
        public readonly float[]? Table, Mean, LogStd;
        public readonly int[] RegionStart, EntryVar;

        public HostWeights(Spn spn)
        {
            LogW = spn.LogWeights().Select(t => t.ToArray()).ToArray();
            if (spn.LeafType == SpnLeafType.Gaussian)
            {
                Mean = spn.leafMean!.ToArray();
                LogStd = spn.leafLogStd!.ToArray();
            }
            else Table = spn.LeafLogTable().ToArray();
            RegionStart = spn.leafLayout.RegionStart.ToArray();
            EntryVar = spn.leafLayout.EntryVariable.ToArray();
        }
    }

    /// <summary>Chooses an index of scores[offset .. offset + n): the argmax, or a draw from their softmax.</summary>
    private static int Choose(float[] w, long wOffset, float[] v, long vOffset, int n, bool sample, Random rng)
    {
        int best = 0;
        double bestScore = double.NegativeInfinity;
        for (int k = 0; k < n; k++)
        {
            double s = (double)w[wOffset + k] + v[vOffset + k];
            if (s > bestScore) { bestScore = s; best = k; }
        }
        if (!sample || double.IsNegativeInfinity(bestScore)) return best;
        double total = 0;
        for (int k = 0; k < n; k++) total += Math.Exp((double)w[wOffset + k] + v[vOffset + k] - bestScore);
        double u = rng.NextDouble() * total;
        for (int k = 0; k < n; k++)
        {
            u -= Math.Exp((double)w[wOffset + k] + v[vOffset + k] - bestScore);
            if (u <= 0) return k;
        }
        return best;
    }

    /// <summary>
    /// The top-down walk for sample b of the batch: levels holds the traced product outputs (level Depth-1 first) and
    /// the root input last; fills the missing entries of result[rowOffset ..].
    /// </summary>
    private void Walk(HostWeights hw, float[][] levels, float[] result, long rowOffset, int b, bool sample, Random rng)
    {
        int depth = Graph.Depth, I = LeafComponents;
        float[] rootIn = levels[^1];
        int width = hw.LogW[0].Length;
        int c = Choose(hw.LogW[0], 0, rootIn, (long)b * width, width, sample, rng);
        if (depth == 0)
        {
            AssignLeaf(hw, result, rowOffset, c / I, c % I, sample, rng);
            return;
        }
        var stack = new Stack<(int Level, int Region, int Pair)>();
        int k0 = ComponentsBelow(0);
        stack.Push((0, c / (k0 * k0), c % (k0 * k0)));
        while (stack.Count > 0)
        {
            var (l, r, pair) = stack.Pop();
            int k = ComponentsBelow(l);
            (int Region, int Comp)[] children = [(2 * r, pair / k), (2 * r + 1, pair % k)];
            foreach (var (child, comp) in children)
            {
                if (l + 1 == depth)
                {
                    AssignLeaf(hw, result, rowOffset, child, comp, sample, rng);
                    continue;
                }
                // Sum node `comp` of region `child` at level l + 1 chooses one of that region's products.
                int kc = ComponentsBelow(l + 1), kin = kc * kc;
                int regions = Graph.RegionsAt(l + 1);
                float[] prod = levels[depth - 1 - (l + 1)];
                long wOff = ((long)child * SumsPerRegion + comp) * kin;
                long vOff = ((long)b * regions + child) * kin;
                int q = Choose(hw.LogW[l + 1], wOff, prod, vOff, kin, sample, rng);
                stack.Push((l + 1, child, q));
            }
        }
    }

    /// <summary>Fills the missing variables of leaf region <paramref name="region"/> from its leaf <paramref name="comp"/>.</summary>
    private void AssignLeaf(HostWeights hw, float[] result, long rowOffset, int region, int comp, bool sample, Random rng)
    {
        int I = LeafComponents;
        for (int e = hw.RegionStart[region]; e < hw.RegionStart[region + 1]; e++)
        {
            long at = rowOffset + hw.EntryVar[e];
            if (!float.IsNaN(result[at])) continue;
            long o = (long)e * I + comp;
            if (LeafType == SpnLeafType.Gaussian)
            {
                float mu = hw.Mean![o];
                if (!sample) { result[at] = mu; continue; }
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                result[at] = (float)(mu + Math.Exp(hw.LogStd![o]) * z);
                continue;
            }
            int C = Categories;
            var zeros = new float[C];
            result[at] = Choose(hw.Table!, o * C, zeros, 0, C, sample, rng);
        }
    }
}
