namespace Engine.Autodiff;

/// <summary>
/// The memory plan's slot assignment. Temporaries are taken in order of first use; each goes into a free slot of its
/// class (the same length and element type: a kernel takes a buffer's length as its element count, so a slot cannot
/// be larger than its tenant), else into a new slot.
/// </summary>
/// <remarks>
/// <para>Among the free slots of its class a temporary takes the one whose last tenant died most recently. A step's
/// intermediates are megabytes: the slot freed longest ago has usually left the caches, while the one freed last is
/// the likeliest to be in them still, so the new value is written over cached lines instead of lines fetched from
/// memory first. Eager steps get the same effect from the buffer pool, which hands back the array returned last.</para>
/// <para>Which free slot is taken does not change how many slots there are: per class this is greedy colouring of
/// intervals in order of their start, which opens a slot only when every slot of the class holds a live value, so it
/// needs as many as the most temporaries of the class alive at one operation.</para>
/// </remarks>
internal static class MemoryPlanner
{
    /// <summary>A temporary's class and the operations it lives over (first and last use, both included).</summary>
    internal readonly record struct Lifetime(long Length, bool IsInt, int First, int Last);

    /// <summary>
    /// The slot of every temporary in <paramref name="temporaries"/> (in its order; slots are numbered in the order they
    /// are opened). With <paramref name="reuseRecent"/> false, a temporary takes the free slot of its class opened
    /// first instead of the one freed last (the baseline the benchmarks compare with).
    /// </summary>
    internal static int[] Assign(IReadOnlyList<Lifetime> temporaries, bool reuseRecent = true)
    {
        var slotOf = new int[temporaries.Count];
        var classOf = new List<(long Length, bool IsInt)>();
        var lastUse = new List<int>();
        foreach (int t in Enumerable.Range(0, temporaries.Count).OrderBy(i => temporaries[i].First))
        {
            var life = temporaries[t];
            int chosen = -1;
            for (int s = 0; s < lastUse.Count; s++)
            {
                if (lastUse[s] >= life.First || classOf[s] != (life.Length, life.IsInt)) continue;
                if (chosen < 0) chosen = s;
                else if (reuseRecent && lastUse[s] > lastUse[chosen]) chosen = s;
                if (!reuseRecent) break;
            }
            if (chosen < 0)
            {
                chosen = lastUse.Count;
                classOf.Add((life.Length, life.IsInt));
                lastUse.Add(life.Last);
            }
            lastUse[chosen] = life.Last;
            slotOf[t] = chosen;
        }
        return slotOf;
    }
}
