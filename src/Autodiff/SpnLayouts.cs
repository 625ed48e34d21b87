using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Which variables each leaf region of a sum-product network reads, as the CSR index lists the SPN leaf kernels take.
/// Entries are numbered region by region: region r owns entries <c>RegionStart[r] .. RegionStart[r+1]</c>, entry e
/// reads variable <c>EntryVariable[e]</c> and owns parameter row e of the leaf tables. Immutable; dispose to free the
/// device copies of the index lists.
/// </summary>
public sealed class SpnLeafLayout : IDisposable
{
    /// <summary>Builds the layout from each region's variables (indices in [0, <paramref name="variables"/>)).</summary>
    /// <exception cref="ArgumentException">A region is empty or names a variable out of range.</exception>
    public SpnLeafLayout(IReadOnlyList<int[]> regionVariables, int variables)
    {
        ArgumentNullException.ThrowIfNull(regionVariables);
        if (variables < 1) throw new ArgumentOutOfRangeException(nameof(variables), $"SpnLeafLayout: needs at least one variable, got {variables}.");
        Variables = variables;
        Regions = regionVariables.Count;
        var start = new int[Regions + 1];
        var vars = new List<int>();
        var region = new List<int>();
        for (int r = 0; r < Regions; r++)
        {
            var vs = regionVariables[r] ?? throw new ArgumentException($"SpnLeafLayout: region {r} is null.");
            if (vs.Length == 0) throw new ArgumentException($"SpnLeafLayout: leaf region {r} has no variables.");
            foreach (var v in vs)
            {
                if (v < 0 || v >= variables)
                    throw new ArgumentException($"SpnLeafLayout: leaf region {r} names variable {v}, outside [0, {variables}).");
                vars.Add(v);
                region.Add(r);
            }
            start[r + 1] = vars.Count;
        }
        Entries = vars.Count;
        RegionVariables = regionVariables.Select(v => (int[])v.Clone()).ToArray();
        RegionStart = new IndexTensor(start);
        EntryVariable = new IndexTensor(vars.ToArray());
        EntryRegion = new IndexTensor(region.ToArray());
    }

    /// <summary>Number of input variables (columns of x).</summary>
    public int Variables { get; }
    /// <summary>Number of leaf regions.</summary>
    public int Regions { get; }
    /// <summary>Number of (region, variable) entries: the rows of the leaf parameter tables.</summary>
    public int Entries { get; }
    /// <summary>Each region's variables (copies).</summary>
    public IReadOnlyList<int[]> RegionVariables { get; }
    /// <summary>CSR starts, Regions + 1 long.</summary>
    public IndexTensor RegionStart { get; }
    /// <summary>Variable read by each entry.</summary>
    public IndexTensor EntryVariable { get; }
    /// <summary>Region owning each entry.</summary>
    public IndexTensor EntryRegion { get; }

    /// <summary>The index lists on <paramref name="device"/> (uploaded on first use), as the SPN kernels take them.</summary>
    public SpnLeafMap Map(Device device) =>
        new(RegionStart.On(device), EntryVariable.On(device), EntryRegion.On(device), Variables, Regions, Entries);

    /// <summary>Frees the device copies.</summary>
    public void Dispose()
    {
        RegionStart.Dispose();
        EntryVariable.Dispose();
        EntryRegion.Dispose();
    }
}

/// <summary>
/// The partitions of one product layer: output region r multiplies child <c>Left[r]</c> of the left input with child
/// <c>Right[r]</c> of the right input; the inverse lists (which regions use a child) drive the backward pass.
/// </summary>
public sealed class SpnProductLayout : IDisposable
{
    /// <summary>Builds the layout; every index must lie in its input's region range.</summary>
    public SpnProductLayout(int[] left, int leftRegions, int[] right, int rightRegions)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        if (left.Length != right.Length)
            throw new ArgumentException($"SpnProductLayout: {left.Length} left children but {right.Length} right children.");
        Regions = left.Length;
        LeftRegions = leftRegions;
        RightRegions = rightRegions;
        Left = new IndexTensor(left);
        Right = new IndexTensor(right);
        Left.CheckRange("SpnProductLayout (left)", leftRegions);
        Right.CheckRange("SpnProductLayout (right)", rightRegions);
        (LeftParentStart, LeftParents) = Inverse(left, leftRegions);
        (RightParentStart, RightParents) = Inverse(right, rightRegions);
    }

    private static (IndexTensor, IndexTensor) Inverse(int[] child, int childRegions)
    {
        var start = new int[childRegions + 1];
        foreach (var c in child) start[c + 1]++;
        for (int c = 0; c < childRegions; c++) start[c + 1] += start[c];
        var fill = (int[])start.Clone();
        var parents = new int[child.Length];
        for (int r = 0; r < child.Length; r++) parents[fill[child[r]]++] = r;
        return (new IndexTensor(start), new IndexTensor(parents));
    }

    /// <summary>Output regions.</summary>
    public int Regions { get; }
    /// <summary>Regions of the left input.</summary>
    public int LeftRegions { get; }
    /// <summary>Regions of the right input.</summary>
    public int RightRegions { get; }
    /// <summary>Left child of each output region.</summary>
    public IndexTensor Left { get; }
    /// <summary>Right child of each output region.</summary>
    public IndexTensor Right { get; }
    /// <summary>CSR starts of the left inverse list.</summary>
    public IndexTensor LeftParentStart { get; }
    /// <summary>Output regions grouped by left child.</summary>
    public IndexTensor LeftParents { get; }
    /// <summary>CSR starts of the right inverse list.</summary>
    public IndexTensor RightParentStart { get; }
    /// <summary>Output regions grouped by right child.</summary>
    public IndexTensor RightParents { get; }

    /// <summary>The index lists on <paramref name="device"/> (uploaded on first use), as the SPN kernels take them.</summary>
    public SpnProductMap Map(Device device) => new(
        new SpnChildMap(Left.On(device), LeftParentStart.On(device), LeftParents.On(device), LeftRegions),
        new SpnChildMap(Right.On(device), RightParentStart.On(device), RightParents.On(device), RightRegions),
        Regions);

    /// <summary>Frees the device copies.</summary>
    public void Dispose()
    {
        foreach (var t in new[] { Left, Right, LeftParentStart, LeftParents, RightParentStart, RightParents }) t.Dispose();
    }
}
