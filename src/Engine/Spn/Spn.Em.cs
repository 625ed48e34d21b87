using Engine.Autodiff;

namespace Engine.Spn;

// Expectation-maximisation through the gradients of the log-likelihood (see SpnTraining's remarks).
public sealed partial class Spn
{
    private const float MinStd = 1e-2f;

    /// <summary>
    /// One online EM step on the batch x: E-step by one backward pass of Σ log p(x) with the normalised log weights
    /// and the leaf tables as gradient leaves (their gradients are the expected counts), then every parameter moves
    /// a fraction <paramref name="stepSize"/> of the way to the batch's M-step solution. Returns Σ log p(x) before the
    /// update.
    /// </summary>
    internal double EmStep(Tensor x, float stepSize, float pseudoCount)
    {
        CheckData("EmStep", x);
        RequireSingleRoot("Spn.EmStep");
        var logW = LogWeights().Select(w =>
        {
            var leaf = w.Detach();
            leaf.RequiresGrad = true;
            return leaf;
        }).ToArray();
        Tensor? table = null, mass = null;
        Tensor leafOut;
        if (LeafType == SpnLeafType.Gaussian)
        {
            // The Gaussian statistics need the posterior mass of each (entry, leaf) over present values: a zero
            // one-category table read by data that is 0 where present adds nothing to the value, and its gradient is
            // exactly that mass.
            var data = x.ToArray();
            for (int i = 0; i < data.Length; i++) data[i] = float.IsNaN(data[i]) ? float.NaN : 0f;
            mass = Tensor.Zeros([leafLayout.Entries, LeafComponents, 1], Device);
            mass.RequiresGrad = true;
            var indicator = Tensor.FromArray(data, x.Shape, Device);
            Ops.MarkSpnCategoricalDataChecked(indicator, 0); // 0 or NaN by construction
            leafOut = Ops.SpnLeafGaussian(x, leafMean!, leafLogStd!, leafLayout) + Ops.SpnLeafCategorical(indicator, mass, leafLayout);
        }
        else
        {
            table = LeafLogTable().Detach();
            table.RequiresGrad = true;
            leafOut = Ops.SpnLeafCategorical(x, table, leafLayout);
        }
        var ll = Evaluate(x, leafOut, logW, max: false, trace: null);
        double total = ll.ToArray().Sum(v => (double)v);
        ll.Sum().Backward();

        using (GradMode.NoGrad())
        {
            // Sum weights: counts n = ∂LL/∂log w; w ← (1-η) w + η normalise(n + α).
            float alphaW = pseudoCount * 1e-3f;
            for (int l = 0; l < logW.Length; l++)
            {
                var param = l == 0 ? rootLogits : sumLogits[l]!;
                var counts = logW[l].Grad!.ToArray();
                var w = logW[l].ToArray();
                int kin = param.Shape[2];
                for (int row = 0; row < counts.Length / kin; row++)
                {
                    double tot = 0;
                    for (int k = 0; k < kin; k++) tot += Math.Max(counts[row * kin + k], 0f) + alphaW;
                    for (int k = 0; k < kin; k++)
                    {
                        int at = row * kin + k;
                        double fresh = (Math.Max(counts[at], 0f) + alphaW) / tot;
                        double blended = (1 - stepSize) * Math.Exp(w[at]) + stepSize * fresh;
                        w[at] = (float)Math.Log(Math.Max(blended, 1e-30));
                    }
                }
                param.CopyFrom(w);
                logW[l].ZeroGrad();
            }

            int e = leafLayout.Entries, I = LeafComponents;
            if (table != null)
            {
                // Categorical leaves: counts[e, i, c] = Σ posterior · [x = c]; p ← (1-η) p + η (counts + α) / Σ.
                int C = Categories;
                var counts = table.Grad!.ToArray();
                var logp = table.ToArray();
                var logits = new float[LeafType == SpnLeafType.Bernoulli ? e * I : e * I * C];
                for (int row = 0; row < e * I; row++)
                {
                    double tot = 0;
                    for (int c = 0; c < C; c++) tot += Math.Max(counts[row * C + c], 0f) + pseudoCount;
                    var p = new double[C];
                    for (int c = 0; c < C; c++)
                        p[c] = (1 - stepSize) * Math.Exp(logp[row * C + c]) + stepSize * (Math.Max(counts[row * C + c], 0f) + pseudoCount) / tot;
                    if (LeafType == SpnLeafType.Bernoulli) logits[row] = (float)(Math.Log(p[1]) - Math.Log(p[0]));
                    else for (int c = 0; c < C; c++) logits[row * C + c] = (float)Math.Log(p[c]);
                }
                leafLogits!.CopyFrom(logits);
                table.ZeroGrad();
            }
            else
            {
                // Gaussian leaves, from N = Σ post, dμ = Σ post (x-μ)/σ², ds = Σ post ((x-μ)²/σ² - 1):
                // μ' = μ + σ² dμ / N, σ'² = σ² (ds + N) / N - (μ' - μ)².
                var n = mass!.Grad!.ToArray();
                var dm = leafMean!.Grad!.ToArray();
                var ds = leafLogStd!.Grad!.ToArray();
                var mu = leafMean.ToArray();
                var ls = leafLogStd.ToArray();
                for (int k = 0; k < e * I; k++)
                {
                    if (n[k] <= 1e-6f) continue;
                    double var = Math.Exp(2 * ls[k]);
                    double muNew = mu[k] + var * dm[k] / n[k];
                    double varNew = Math.Max(var * (ds[k] + n[k]) / n[k] - (muNew - mu[k]) * (muNew - mu[k]), MinStd * MinStd);
                    double muBlend = (1 - stepSize) * mu[k] + stepSize * muNew;
                    double varBlend = (1 - stepSize) * var + stepSize * varNew;
                    mu[k] = (float)muBlend;
                    ls[k] = (float)(0.5 * Math.Log(varBlend));
                }
                leafMean.CopyFrom(mu);
                leafLogStd.CopyFrom(ls);
                mass.ZeroGrad();
                leafMean.ZeroGrad();
                leafLogStd.ZeroGrad();
            }
        }
        return total;
    }
}
