namespace Engine.Spn;

/// <summary>
/// The induced trees of an <see cref="Spn"/>'s structure and where their counts live. A datum's tree picks one child
/// of every sum node it reaches: the root picks one product of one repetition's top region, and each sum node of
/// an inner region it reaches picks one product of that region's two children, down to one leaf component per leaf
/// region. Because every repetition is a tree of regions, a tree visits each region of one repetition once, so it is
/// stored as <see cref="Slots"/> choices in heap order: slot 0 is the root's child, slot 2^l - 1 + j the choice of
/// the sum node reached in region j (within the repetition) of level l.
/// </summary>
/// <remarks>
/// Sum nodes are numbered by layer (layer 0: the root; layer l ≥ 1: the sums of level l, region-major then sum),
/// and their child counts are laid out exactly as the network's weights (root [R·K0²], level l [R_l, S, K_l²]), so
/// counts and weights share one index.
/// </remarks>
internal sealed class SpnTreeShape
{
    public SpnTreeShape(Spn network)
    {
        var g = network.Graph;
        Depth = g.Depth;
        Repetitions = g.Repetitions;
        LeafComponents = network.LeafComponents;
        Sums = network.SumsPerRegion;
        Categories = network.Categories;
        Variables = g.Variables;
        K = new int[Math.Max(Depth, 1)];
        for (int l = 0; l < Depth; l++) K[l] = l == Depth - 1 ? LeafComponents : Sums;
        RootChildren = Depth == 0 ? Repetitions * LeafComponents : Repetitions * K[0] * K[0];
        Slots = Depth == 0 ? 1 : (1 << Depth) - 1;
        LeafRegionsPerTree = 1 << Depth;
        Layers = Math.Max(Depth, 1);
        LayerChildren = new int[Layers];
        LayerNodeStart = new int[Layers + 1];
        LayerCountStart = new int[Layers + 1];
        LayerChildren[0] = RootChildren;
        LayerNodeStart[1] = 1;
        LayerCountStart[1] = RootChildren;
        for (int l = 1; l < Layers; l++)
        {
            int nodes = g.RegionsAt(l) * Sums;
            LayerChildren[l] = K[l] * K[l];
            LayerNodeStart[l + 1] = LayerNodeStart[l] + nodes;
            LayerCountStart[l + 1] = LayerCountStart[l] + nodes * LayerChildren[l];
        }
        SumNodes = LayerNodeStart[Layers];
        SumCounts = LayerCountStart[Layers];
        SlotLayer = new int[Slots];
        for (int l = 1; l < Depth; l++)
            for (int j = 0; j < 1 << l; j++) SlotLayer[(1 << l) - 1 + j] = l;

        var regions = g.LeafRegions;
        LeafRegions = regions.Count;
        LeafRegionStart = new int[LeafRegions + 1];
        var vars = new List<int>();
        for (int r = 0; r < LeafRegions; r++)
        {
            vars.AddRange(regions[r]);
            LeafRegionStart[r + 1] = vars.Count;
        }
        EntryVariable = vars.ToArray();
        Entries = EntryVariable.Length;
        VariableEntryStart = new int[Variables + 1];
        foreach (int v in EntryVariable) VariableEntryStart[v + 1]++;
        for (int v = 0; v < Variables; v++) VariableEntryStart[v + 1] += VariableEntryStart[v];
        VariableEntries = new int[Entries];
        var fill = (int[])VariableEntryStart.Clone();
        for (int e = 0; e < Entries; e++) VariableEntries[fill[EntryVariable[e]]++] = e;
    }

    public int Depth { get; }
    public int Repetitions { get; }
    /// <summary>I: leaf components per leaf region.</summary>
    public int LeafComponents { get; }
    /// <summary>S: sums per inner region.</summary>
    public int Sums { get; }
    /// <summary>C: values per variable.</summary>
    public int Categories { get; }
    public int Variables { get; }
    /// <summary>Components of each child region of level l's partitions (l &lt; Depth).</summary>
    public int[] K { get; }
    public int RootChildren { get; }
    /// <summary>Choices per tree (heap order, slot 0 the root's).</summary>
    public int Slots { get; }
    /// <summary>Leaf regions a tree reaches (2^Depth).</summary>
    public int LeafRegionsPerTree { get; }
    /// <summary>Sum layers: the root (layer 0) and levels 1 .. Depth - 1.</summary>
    public int Layers { get; }
    /// <summary>Children of every sum node of a layer.</summary>
    public int[] LayerChildren { get; }
    /// <summary>First sum node of each layer (Layers + 1 entries).</summary>
    public int[] LayerNodeStart { get; }
    /// <summary>First child count of each layer (Layers + 1 entries).</summary>
    public int[] LayerCountStart { get; }
    /// <summary>The sum layer that makes each slot's choice.</summary>
    public int[] SlotLayer { get; }
    public int SumNodes { get; }
    /// <summary>Child counts in all (= weights of the network).</summary>
    public int SumCounts { get; }
    public int LeafRegions { get; }
    /// <summary>CSR over leaf regions: region r owns entries [start[r], start[r+1]).</summary>
    public int[] LeafRegionStart { get; }
    /// <summary>The variable each (leaf region, variable) entry reads.</summary>
    public int[] EntryVariable { get; }
    public int Entries { get; }
    /// <summary>CSR over variables: the entries reading variable v are VariableEntries[start[v] .. start[v+1]).</summary>
    public int[] VariableEntryStart { get; }
    public int[] VariableEntries { get; }

    /// <summary>
    /// Node visits of one datum's upward pass through the whole network (every univariate leaf, product and sum
    /// edge), the part of bottom-up sampling that does not depend on the data.
    /// </summary>
    public long UpwardVisitsPerDatum
    {
        get
        {
            long visits = (long)Entries * LeafComponents + RootChildren;
            for (int l = 0; l < Depth; l++) visits += (long)(Repetitions << l) * K[l] * K[l];
            for (int l = 1; l < Layers; l++) visits += (long)(LayerNodeStart[l + 1] - LayerNodeStart[l]) * LayerChildren[l];
            return visits;
        }
    }

    /// <summary>
    /// Walks one tree top-down: the chooser supplies each sum node's child (read from a stored tree, drawn from the
    /// counts, or drawn from an upward pass), which is written to <paramref name="tree"/>; <paramref name="path"/>
    /// receives the sum nodes, child-count indices and leaf components the tree reaches.
    /// </summary>
    public void Walk<TChooser>(Span<int> tree, TreePath path, ref TChooser chooser) where TChooser : struct, IChildChooser
    {
        int c = chooser.Choose(0, 0, 0, RootChildren, tree[0]);
        tree[0] = c;
        path.Node[0] = 0;
        path.CountIndex[0] = c;
        if (Depth == 0)
        {
            path.LeafRegion[0] = c / LeafComponents;
            path.LeafComp[0] = c % LeafComponents;
            return;
        }
        int k0 = K[0];
        int rep = c / (k0 * k0), pair = c % (k0 * k0);
        var cur = path.CompA;
        var next = path.CompB;
        cur[0] = pair / k0;
        cur[1] = pair % k0;
        for (int l = 1; l < Depth; l++)
        {
            int kl = K[l], children = kl * kl, width = 1 << l;
            for (int j = 0; j < width; j++)
            {
                int region = (rep << l) + j;
                int local = region * Sums + cur[j];
                int node = LayerNodeStart[l] + local;
                int slot = width - 1 + j;
                int q = chooser.Choose(l, node, region, children, tree[slot]);
                tree[slot] = q;
                path.Node[slot] = node;
                path.CountIndex[slot] = LayerCountStart[l] + local * children + q;
                next[2 * j] = q / kl;
                next[2 * j + 1] = q % kl;
            }
            (cur, next) = (next, cur);
        }
        int leaves = 1 << Depth;
        for (int j = 0; j < leaves; j++)
        {
            path.LeafRegion[j] = (rep << Depth) + j;
            path.LeafComp[j] = cur[j];
        }
    }
}

/// <summary>Where one tree goes: per slot its sum node and child-count index, per reached leaf region its component.</summary>
internal sealed class TreePath
{
    public TreePath(SpnTreeShape shape)
    {
        Node = new int[shape.Slots];
        CountIndex = new int[shape.Slots];
        LeafRegion = new int[shape.LeafRegionsPerTree];
        LeafComp = new int[shape.LeafRegionsPerTree];
        CompA = new int[shape.LeafRegionsPerTree];
        CompB = new int[shape.LeafRegionsPerTree];
    }

    public int[] Node { get; }
    public int[] CountIndex { get; }
    public int[] LeafRegion { get; }
    public int[] LeafComp { get; }
    internal int[] CompA { get; }
    internal int[] CompB { get; }
}

/// <summary>Picks the child of the sum node a tree reaches (generic struct: no virtual call in the walk).</summary>
internal interface IChildChooser
{
    /// <summary>
    /// The child (0 ≤ child &lt; <paramref name="children"/>) of sum node <paramref name="node"/> in sum layer
    /// <paramref name="layer"/>, in region <paramref name="region"/> of its level; <paramref name="stored"/> is the
    /// tree's current choice there.
    /// </summary>
    int Choose(int layer, int node, int region, int children, int stored);
}

/// <summary>Reads the stored tree.</summary>
internal struct StoredChoice : IChildChooser
{
    public readonly int Choose(int layer, int node, int region, int children, int stored) => stored;
}
