using Engine.Autodiff;

namespace Engine.Spn;

// What Bayesian learning needs from the network: setting every weight and leaf probability at once (a posterior
// mean or a posterior draw), and the per-level outputs of one batched upward pass for bottom-up sampling.
public sealed partial class Spn
{
    /// <summary>
    /// Replaces every sum node's weights and every categorical or Bernoulli leaf's probabilities. <paramref name="sumLogW"/>
    /// holds normalised natural-log weights laid out as the weights (the root's R·K0², then each level's
    /// [R_l, S, K_l²]); <paramref name="leafLogP"/> normalised log-probabilities [entries, I, categories].
    /// </summary>
    internal void SetLogProbabilities(ReadOnlySpan<float> sumLogW, ReadOnlySpan<float> leafLogP)
    {
        if (LeafType == SpnLeafType.Gaussian)
            throw new InvalidOperationException("Spn.SetLogProbabilities: Gaussian leaves have no probability table.");
        int expectedW = (int)rootLogits.Size;
        for (int l = 1; l < Graph.Depth; l++) expectedW += (int)sumLogits[l]!.Size;
        int e = leafLayout.Entries, I = LeafComponents, C = Categories;
        if (sumLogW.Length != expectedW || leafLogP.Length != e * I * C)
            throw new ArgumentException($"Spn.SetLogProbabilities: expected {expectedW} weights and {e * I * C} leaf probabilities, got {sumLogW.Length} and {leafLogP.Length}.");
        using var _ = GradMode.NoGrad();
        int at = (int)rootLogits.Size;
        rootLogits.CopyFrom(sumLogW[..at]);
        for (int l = 1; l < Graph.Depth; l++)
        {
            int n = (int)sumLogits[l]!.Size;
            sumLogits[l]!.CopyFrom(sumLogW.Slice(at, n));
            at += n;
        }
        if (LeafType == SpnLeafType.Categorical)
        {
            leafLogits!.CopyFrom(leafLogP);
            return;
        }
        // Bernoulli leaves keep one logit: ln p(1) - ln p(0).
        var logits = new float[e * I];
        for (int k = 0; k < logits.Length; k++) logits[k] = leafLogP[2 * k + 1] - leafLogP[2 * k];
        leafLogits!.CopyFrom(logits);
    }

    /// <summary>
    /// One batched upward pass over <paramref name="rows"/> rows of <paramref name="x"/> (row-major, from row
    /// <paramref name="start"/>) on the network's device; returns host copies of each level's product output
    /// (index l: level l, [rows, R_l, K_l²]; for depth 0 the single entry is the root's input [rows, R·I]).
    /// </summary>
    internal float[][] UpwardProducts(float[] x, int start, int rows)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        var chunk = new float[rows * Variables];
        Array.Copy(x, (long)start * Variables, chunk, 0, chunk.Length);
        var xt = Tensor.FromArray(chunk, [rows, Variables], Device);
        var trace = new List<Tensor>();
        Evaluate(xt, LeafForward(xt), LogWeights(), max: false, trace);
        // The trace runs level Depth-1 first and ends with the root's input; level l is trace[Depth - 1 - l].
        int depth = Graph.Depth;
        if (depth == 0) return [trace[^1].ToArray()];
        var levels = new float[depth][];
        for (int l = 0; l < depth; l++) levels[l] = trace[depth - 1 - l].ToArray();
        return levels;
    }
}
