namespace Engine.Spn;

/// <summary>Settings of <see cref="SpnEmpiricalBayes"/>.</summary>
public sealed record EmpiricalBayesOptions
{
    /// <summary>Fixed-point iterations per update (warm-started from the current values).</summary>
    public int Iterations { get; init; } = 5;

    /// <summary>
    /// Leaves per variable whose counts feed that variable's prior: a random subsample of the leaves on the
    /// variable that hold data, so one update costs O(variables · this), not O(leaves).
    /// </summary>
    public int LeavesPerVariable { get; init; } = 16;

    /// <summary>Lower bound on every concentration (keeps a prior from collapsing onto one value).</summary>
    public double Min { get; init; } = 1e-2;

    /// <summary>Upper bound on every concentration (keeps a prior from fixing every leaf at the data's marginal).</summary>
    public double Max { get; init; } = 1e2;
}

/// <summary>
/// Empirical Bayes (type-II maximum likelihood) for a <see cref="BayesianSpn"/>'s hyper-parameters given the current
/// trees: the evidence of the counts, Σ_nodes ln DirMult(n_node | α) + Σ_leaves ln DirMult(n_leaf | γ), is raised
/// by Minka's fixed-point iterations ("Estimating a Dirichlet distribution", 2000). One symmetric concentration per
/// sum layer is fitted to all of that layer's sum nodes that hold data; one Dirichlet (Beta) per variable is fitted
/// to a random subsample of the leaves on that variable. Run between sweeps during burn-in (stochastic EM on α, γ).
/// </summary>
public static class SpnEmpiricalBayes
{
    /// <summary>Updates every concentration of <paramref name="model"/> in place.</summary>
    /// <exception cref="ArgumentException">Options out of range (iterations or leaves per variable &lt; 1, bounds not 0 &lt; Min ≤ Max).</exception>
    public static void Update(BayesianSpn model, EmpiricalBayesOptions? options = null, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        var o = options ?? new EmpiricalBayesOptions();
        Validate(o);
        var shape = model.Shape;
        for (int layer = 0; layer < shape.Layers; layer++)
            model.SetSumConcentration(layer, FitSymmetric(model, layer, model.SumConcentration(layer), o));
        var random = new SamplerRandom((ulong)seed, 0xeb);
        int I = shape.LeafComponents, C = shape.Categories;
        var chosen = new List<int>();
        var picked = new HashSet<int>();
        var gamma = new double[C];
        for (int v = 0; v < shape.Variables; v++)
        {
            int first = shape.VariableEntryStart[v], leaves = (shape.VariableEntryStart[v + 1] - first) * I;
            chosen.Clear();
            if (leaves <= o.LeavesPerVariable)
                for (int k = 0; k < leaves; k++) chosen.Add(k);
            else
            {
                // Floyd's sampling of LeavesPerVariable distinct leaves out of the variable's R·I, in O(LeavesPerVariable).
                picked.Clear();
                for (int j = leaves - o.LeavesPerVariable; j < leaves; j++)
                {
                    int t = (int)(random.NextDouble() * (j + 1));
                    if (!picked.Add(t))
                    {
                        picked.Add(j);
                        t = j;
                    }
                    chosen.Add(t);
                }
            }
            // Leaf k of the variable: component k % I of its entry k / I. Leaves without data add nothing to the fit.
            for (int k = 0; k < chosen.Count; k++) chosen[k] = shape.VariableEntries[first + chosen[k] / I] * I + chosen[k] % I;
            for (int c = 0; c < C; c++) gamma[c] = model.LeafConcentration(v, c);
            FitPolya(model.Counts, chosen, C, gamma, o);
            for (int c = 0; c < C; c++) model.SetLeafConcentration(v, c, gamma[c]);
        }
    }

    /// <summary>
    /// The symmetric Dirichlet fixed point over the layer's sum nodes with data:
    /// α ← α · Σ_s Σ_k [ψ(n_sk + α) - ψ(α)] / (K · Σ_s [ψ(n_s + Kα) - ψ(Kα)]).
    /// </summary>
    private static double FitSymmetric(BayesianSpn model, int layer, double alpha, EmpiricalBayesOptions o)
    {
        var shape = model.Shape;
        var counts = model.Counts;
        int children = shape.LayerChildren[layer];
        for (int it = 0; it < o.Iterations; it++)
        {
            double num = 0, den = 0, psiA = SpecialFunctions.Digamma(alpha), psiKA = SpecialFunctions.Digamma(children * alpha);
            for (int node = shape.LayerNodeStart[layer]; node < shape.LayerNodeStart[layer + 1]; node++)
            {
                int total = counts.SumTotal[node];
                if (total == 0) continue;
                den += SpecialFunctions.Digamma(total + children * alpha) - psiKA;
                int start = shape.LayerCountStart[layer] + (node - shape.LayerNodeStart[layer]) * children;
                for (int k = 0; k < children; k++)
                {
                    int n = counts.Sum[start + k];
                    if (n > 0) num += SpecialFunctions.Digamma(n + alpha) - psiA;
                }
            }
            if (den <= 0) break;
            alpha = Math.Clamp(alpha * num / (children * den), o.Min, o.Max);
        }
        return alpha;
    }

    /// <summary>
    /// The Dirichlet-multinomial (Pólya) fixed point over the given leaves:
    /// γ_c ← γ_c · Σ_ℓ [ψ(n_ℓc + γ_c) - ψ(γ_c)] / Σ_ℓ [ψ(n_ℓ + Σγ) - ψ(Σγ)].
    /// </summary>
    private static void FitPolya(SpnCounts counts, List<int> leaves, int categories, double[] gamma, EmpiricalBayesOptions o)
    {
        var next = new double[categories];
        for (int it = 0; it < o.Iterations; it++)
        {
            double total = gamma.Sum(), psiTotal = SpecialFunctions.Digamma(total), den = 0;
            foreach (int leaf in leaves) den += SpecialFunctions.Digamma(counts.LeafTotal[leaf] + total) - psiTotal;
            if (den <= 0) return;
            for (int c = 0; c < categories; c++)
            {
                double psi = SpecialFunctions.Digamma(gamma[c]), num = 0;
                foreach (int leaf in leaves)
                {
                    int n = counts.Leaf[leaf * categories + c];
                    if (n > 0) num += SpecialFunctions.Digamma(n + gamma[c]) - psi;
                }
                next[c] = Math.Clamp(gamma[c] * num / den, o.Min, o.Max);
            }
            next.CopyTo(gamma, 0);
        }
    }

    /// <summary>Throws if <paramref name="o"/> is out of range (iterations or leaves per variable &lt; 1, bounds not 0 &lt; Min ≤ Max &lt; ∞).</summary>
    public static void Validate(EmpiricalBayesOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Iterations < 1) throw new ArgumentOutOfRangeException(nameof(o), $"SpnEmpiricalBayes: iterations must be >= 1, got {o.Iterations}.");
        if (o.LeavesPerVariable < 1) throw new ArgumentOutOfRangeException(nameof(o), $"SpnEmpiricalBayes: leaves per variable must be >= 1, got {o.LeavesPerVariable}.");
        if (!(o.Min > 0) || !(o.Max >= o.Min) || double.IsInfinity(o.Max))
            throw new ArgumentOutOfRangeException(nameof(o), $"SpnEmpiricalBayes: bounds must satisfy 0 < Min <= Max < infinity, got Min {o.Min}, Max {o.Max}.");
    }
}
