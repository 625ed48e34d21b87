namespace Engine.Spn;

/// <summary>
/// The sufficient statistics of the collapsed posterior: how many data choose each child of each sum node, and how
/// many data at each leaf (entry, component) take each value. Changed by ±1 along one datum's tree.
/// </summary>
internal sealed class SpnCounts
{
    public SpnCounts(SpnTreeShape shape)
    {
        Sum = new int[shape.SumCounts];
        SumTotal = new int[shape.SumNodes];
        Leaf = new int[shape.Entries * shape.LeafComponents * shape.Categories];
        LeafTotal = new int[shape.Entries * shape.LeafComponents];
    }

    /// <summary>Child counts, laid out as the network's weights.</summary>
    public int[] Sum { get; }
    /// <summary>Data reaching each sum node.</summary>
    public int[] SumTotal { get; }
    /// <summary>[entries, components, categories]: data at each leaf with each value.</summary>
    public int[] Leaf { get; }
    /// <summary>[entries, components]: data at each leaf with a present value.</summary>
    public int[] LeafTotal { get; }

    /// <summary>Adds (sign +1) or removes (sign -1) datum <paramref name="row"/> along <paramref name="path"/>.</summary>
    public void Apply(SpnTreeShape shape, TreePath path, ReadOnlySpan<byte> row, int sign)
    {
        for (int s = 0; s < shape.Slots; s++)
        {
            Sum[path.CountIndex[s]] += sign;
            SumTotal[path.Node[s]] += sign;
        }
        int I = shape.LeafComponents, C = shape.Categories;
        for (int j = 0; j < shape.LeafRegionsPerTree; j++)
        {
            int region = path.LeafRegion[j], comp = path.LeafComp[j];
            for (int e = shape.LeafRegionStart[region]; e < shape.LeafRegionStart[region + 1]; e++)
            {
                byte x = row[shape.EntryVariable[e]];
                if (x == BayesianSpn.Missing) continue;
                int leaf = e * I + comp;
                Leaf[leaf * C + x] += sign;
                LeafTotal[leaf] += sign;
            }
        }
    }

    public void Clear()
    {
        Array.Clear(Sum);
        Array.Clear(SumTotal);
        Array.Clear(Leaf);
        Array.Clear(LeafTotal);
    }

    public void CopyFrom(SpnCounts other)
    {
        other.Sum.CopyTo(Sum, 0);
        other.SumTotal.CopyTo(SumTotal, 0);
        other.Leaf.CopyTo(Leaf, 0);
        other.LeafTotal.CopyTo(LeafTotal, 0);
    }

    /// <summary>this += (<paramref name="changed"/> - <paramref name="baseline"/>): merges one worker's moves.</summary>
    public void AddDifference(SpnCounts changed, SpnCounts baseline)
    {
        AddDifference(Sum, changed.Sum, baseline.Sum);
        AddDifference(SumTotal, changed.SumTotal, baseline.SumTotal);
        AddDifference(Leaf, changed.Leaf, baseline.Leaf);
        AddDifference(LeafTotal, changed.LeafTotal, baseline.LeafTotal);
    }

    private static void AddDifference(int[] target, int[] changed, int[] baseline)
    {
        for (int i = 0; i < target.Length; i++) target[i] += changed[i] - baseline[i];
    }

    /// <summary>The first index where two count sets differ, as text, or null when they are equal.</summary>
    public string? FirstDifference(SpnCounts other)
    {
        return Diff("sum", Sum, other.Sum) ?? Diff("sum total", SumTotal, other.SumTotal)
            ?? Diff("leaf", Leaf, other.Leaf) ?? Diff("leaf total", LeafTotal, other.LeafTotal);

        static string? Diff(string what, int[] a, int[] b)
        {
            for (int i = 0; i < a.Length; i++)
                if (a[i] != b[i]) return $"{what} count {i}: {a[i]} vs {b[i]}";
            return null;
        }
    }
}
