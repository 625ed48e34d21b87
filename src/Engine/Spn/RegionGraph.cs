namespace Engine.Spn;

/// <summary>
/// A random binary region graph in the RAT-SPN style (Peharz et al. 2019): for each of R repetitions the variables
/// are shuffled and split in halves recursively, <see cref="Depth"/> times, so every repetition is a complete binary
/// tree of regions whose 2^depth leaves partition the variables. Level l (0 = the repetitions' top regions) has
/// R·2^l regions, numbered repetition-major: region <c>rep·2^l + j</c> of level l splits into regions
/// <c>rep·2^(l+1) + 2j</c> (left) and <c>+ 2j + 1</c> (right) of level l + 1. The root sums over the R top regions.
/// </summary>
public sealed class RegionGraph
{
    private readonly int[][] leafRegions;

    private RegionGraph(int variables, int depth, int repetitions, int[][] leafRegions)
    {
        Variables = variables;
        Depth = depth;
        Repetitions = repetitions;
        this.leafRegions = leafRegions;
    }

    /// <summary>Number of variables.</summary>
    public int Variables { get; }

    /// <summary>Number of splits from a top region down to a leaf region.</summary>
    public int Depth { get; }

    /// <summary>Number of independent random trees.</summary>
    public int Repetitions { get; }

    /// <summary>Leaf regions (level <see cref="Depth"/>), repetition-major: each the sorted variables it covers.</summary>
    public IReadOnlyList<int[]> LeafRegions => leafRegions;

    /// <summary>Regions of level <paramref name="level"/> (0 ≤ level ≤ Depth): Repetitions · 2^level.</summary>
    public int RegionsAt(int level) => Repetitions << level;

    /// <summary>
    /// Builds the graph. Each split cuts a region's (shuffled) variables into halves of sizes ⌈n/2⌉ and ⌊n/2⌋.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 2^depth variables (some leaf region would be empty), or a
    /// non-positive variable or repetition count, or a negative depth.</exception>
    public static RegionGraph RandomBinary(int variables, int depth, int repetitions, int seed)
    {
        if (variables < 1) throw new ArgumentOutOfRangeException(nameof(variables), $"RegionGraph: needs at least one variable, got {variables}.");
        if (repetitions < 1) throw new ArgumentOutOfRangeException(nameof(repetitions), $"RegionGraph: needs at least one repetition, got {repetitions}.");
        if (depth < 0) throw new ArgumentOutOfRangeException(nameof(depth), $"RegionGraph: depth must be >= 0, got {depth}.");
        if (depth > 30 || (1L << depth) > variables)
        {
            int maxDepth = (int)Math.Floor(Math.Log2(variables));
            throw new ArgumentException(
                $"RegionGraph: depth {depth} needs {(depth > 30 ? "more than 2^30" : (1L << depth).ToString())} leaf regions per repetition, but there are only {variables} variables (the deepest graph allowed is depth {maxDepth}).",
                nameof(depth));
        }
        var rng = new Random(seed);
        var leaves = new List<int[]>();
        for (int rep = 0; rep < repetitions; rep++)
        {
            var perm = Enumerable.Range(0, variables).ToArray();
            rng.Shuffle(perm);
            var level = new List<int[]> { perm };
            for (int l = 0; l < depth; l++)
            {
                var next = new List<int[]>(level.Count * 2);
                foreach (var region in level)
                {
                    int half = (region.Length + 1) / 2;
                    next.Add(region[..half]);
                    next.Add(region[half..]);
                }
                level = next;
            }
            foreach (var region in level)
            {
                var sorted = (int[])region.Clone();
                Array.Sort(sorted);
                leaves.Add(sorted);
            }
        }
        return new RegionGraph(variables, depth, repetitions, leaves.ToArray());
    }

    /// <summary>
    /// A region graph from the user's own partitions of the variables: one list of leaf regions per repetition (for
    /// instance the pixel blocks of an image, or known groups of variables). Each repetition's regions must be
    /// non-empty, disjoint and cover every variable, and every repetition has the same power-of-two count 2^depth of
    /// them. Above the leaves the graph pairs neighbours: region j of a level is the union of regions 2j and 2j + 1 of
    /// the level below, so list regions that belong together next to each other; the top region of each repetition
    /// covers all variables, and the SPN's root sums over the repetitions' top regions.
    /// </summary>
    /// <param name="variables">Number of variables.</param>
    /// <param name="repetitions">Per repetition, its leaf regions (variable indices, in any order).</param>
    /// <exception cref="ArgumentException">The regions are not a partition, or the counts differ or are not a power of two.</exception>
    public static RegionGraph FromPartitions(int variables, IReadOnlyList<IReadOnlyList<int[]>> repetitions)
    {
        ArgumentNullException.ThrowIfNull(repetitions);
        if (variables < 1) throw new ArgumentOutOfRangeException(nameof(variables), $"RegionGraph: needs at least one variable, got {variables}.");
        if (repetitions.Count < 1) throw new ArgumentException("RegionGraph.FromPartitions: needs at least one repetition.", nameof(repetitions));
        int count = repetitions[0]?.Count ?? 0;
        if (count < 1 || (count & (count - 1)) != 0)
            throw new ArgumentException($"RegionGraph.FromPartitions: repetition 0 has {count} leaf regions; the count must be a power of two (1, 2, 4, ...).", nameof(repetitions));
        int depth = System.Numerics.BitOperations.Log2((uint)count);
        var leaves = new List<int[]>();
        for (int rep = 0; rep < repetitions.Count; rep++)
        {
            var regions = repetitions[rep];
            if (regions == null || regions.Count != count)
                throw new ArgumentException($"RegionGraph.FromPartitions: repetition {rep} has {regions?.Count ?? 0} leaf regions, repetition 0 has {count}; all need the same count.", nameof(repetitions));
            var owner = new int[variables];
            Array.Fill(owner, -1);
            for (int r = 0; r < count; r++)
            {
                var region = regions[r];
                if (region == null || region.Length == 0)
                    throw new ArgumentException($"RegionGraph.FromPartitions: repetition {rep}, region {r} is empty.", nameof(repetitions));
                foreach (int v in region)
                {
                    if (v < 0 || v >= variables)
                        throw new ArgumentException($"RegionGraph.FromPartitions: repetition {rep}, region {r} names variable {v}, outside [0, {variables}).", nameof(repetitions));
                    if (owner[v] >= 0)
                        throw new ArgumentException($"RegionGraph.FromPartitions: repetition {rep}: variable {v} is in regions {owner[v]} and {r}; regions must be disjoint.", nameof(repetitions));
                    owner[v] = r;
                }
                var sorted = (int[])region.Clone();
                Array.Sort(sorted);
                leaves.Add(sorted);
            }
            int missing = Array.IndexOf(owner, -1);
            if (missing >= 0)
                throw new ArgumentException($"RegionGraph.FromPartitions: repetition {rep} leaves variable {missing} out; the regions must cover all {variables} variables.", nameof(repetitions));
        }
        return new RegionGraph(variables, depth, repetitions.Count, leaves.ToArray());
    }

    /// <summary>Left and right child (indices into level + 1) of each region of <paramref name="level"/> (0 ≤ level &lt; Depth).</summary>
    public (int[] Left, int[] Right) Partitions(int level)
    {
        if (level < 0 || level >= Depth) throw new ArgumentOutOfRangeException(nameof(level), $"RegionGraph: level {level} has no partitions (depth {Depth}).");
        int n = RegionsAt(level);
        var left = new int[n];
        var right = new int[n];
        for (int r = 0; r < n; r++)
        {
            left[r] = 2 * r;
            right[r] = 2 * r + 1;
        }
        return (left, right);
    }
}
