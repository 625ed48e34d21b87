namespace Engine.Autodiff;

/// <summary>
/// Independent reductions with their maps in one launch (a horizontal fusion, after <see cref="ReduceThenMapFusion"/>).
/// Each such launch may move later in the program up to its <i>deadline</i>: the first later op that touches what it
/// writes, writes anything it touches, or is a host step. Rule, over the program in order: a reduction with its map
/// joins the open batch when it lies before every member's deadline (so each member can run at its place and none
/// reads or writes another's results), else it opens the next batch. A batch of two or more becomes one
/// <see cref="Engine.Kernels.IFusedElementwiseKernels.ElementwiseTreeReduceThenMaps"/> launch at its last member's
/// place, each result with the bits of its own launch (the capability's contract). The log-softmax backwards of an
/// SPN's weights and leaf table, spread over its backward pass and read only by the update, become one launch.
/// </summary>
internal static class ReduceThenMapBatching
{
    /// <summary><paramref name="ops"/> with every batch of the rule as one launch; <paramref name="batched"/>: the members of batches.</summary>
    public static List<TraceOp> Run(List<TraceOp> ops, out int batched)
    {
        batched = 0;
        var batches = new List<List<int>>();
        List<int>? open = null;
        var deadlines = new Dictionary<int, int>();
        for (int i = 0; i < ops.Count; i++)
        {
            if (ops[i] is not FusedOp { MapExpression: not null }) continue;
            deadlines[i] = Deadline(ops, i);
            if (open != null && open.All(j => i < deadlines[j])) open.Add(i);
            else batches.Add(open = [i]);
        }
        var moved = new HashSet<int>();
        var placed = new Dictionary<int, FusedOp>();
        foreach (var batch in batches.Where(b => b.Count > 1))
        {
            placed[batch[^1]] = FusedOp.ReduceThenMaps(batch.Select(i => (FusedOp)ops[i]).ToList());
            moved.UnionWith(batch);
            batched += batch.Count;
        }
        if (batched == 0) return ops;
        var result = new List<TraceOp>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            if (placed.TryGetValue(i, out var launch)) result.Add(launch);
            else if (!moved.Contains(i)) result.Add(ops[i]);
        }
        return result;
    }

    /// <summary>The first op after <paramref name="at"/> that the launch there cannot move past (ops.Count when none).</summary>
    private static int Deadline(List<TraceOp> ops, int at)
    {
        var launch = (FusedOp)ops[at];
        var written = launch.Written.ToHashSet(ReferenceEqualityComparer.Instance);
        var touched = launch.Buffers.ToHashSet(ReferenceEqualityComparer.Instance);
        for (int k = at + 1; k < ops.Count; k++)
        {
            if (ops[k] is HostStepOp || ops[k].Buffers.Any(written.Contains)) return k;
            if (TraceBuffers.WrittenByLaunch(ops[k]).Any(touched.Contains)) return k;
        }
        return ops.Count;
    }
}
