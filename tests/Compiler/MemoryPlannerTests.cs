using Engine.Autodiff;
using Lifetime = Engine.Autodiff.MemoryPlanner.Lifetime;

namespace Engine.Tests.Compilation;

/// <summary>
/// The memory plan's slot assignment: no two live temporaries share a slot, a slot holds one class (length and element
/// type), there are no more slots than temporaries alive at once, and a temporary takes the free slot freed last (or,
/// for the baseline, the one opened first).
/// </summary>
public sealed class MemoryPlannerTests
{
    [Fact]
    public void ATemporaryTakesTheSlotFreedLast()
    {
        // a and b die at operations 2 and 3; c starts at 4, when both slots are free.
        Lifetime[] lives = [new(100, false, 0, 2), new(100, false, 1, 3), new(100, false, 4, 5)];
        Assert.Equal([0, 1, 1], MemoryPlanner.Assign(lives));
        Assert.Equal([0, 1, 0], MemoryPlanner.Assign(lives, reuseRecent: false));
    }

    [Fact]
    public void SlotsHoldOneLengthAndOneElementType()
    {
        Lifetime[] lives = [new(100, false, 0, 1), new(100, true, 2, 3), new(99, false, 4, 5), new(100, false, 6, 7), new(100, true, 8, 9)];
        Assert.Equal([0, 1, 2, 0, 1], MemoryPlanner.Assign(lives));
    }

    [Fact]
    public void AValueStillReadAtAnOperationKeepsItsSlotThere()
    {
        // The first temporary's last use is the second's first: both are arguments of that operation.
        Lifetime[] lives = [new(8, false, 0, 3), new(8, false, 3, 4), new(8, false, 4, 6)];
        Assert.Equal([0, 1, 0], MemoryPlanner.Assign(lives));
    }

    public static TheoryData<int> Seeds => new() { 1, 2, 3, 4, 5, 6, 7, 8 };

    /// <summary>Random lifetimes in three classes, both policies: every property of a plan, checked against the lifetimes alone.</summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomPlansAreValidMinimalAndTakeTheSlotTheirPolicyNames(int seed)
    {
        var rng = new System.Random(seed);
        for (int round = 0; round < 50; round++)
        {
            int count = rng.Next(1, 60);
            var lives = Enumerable.Range(0, count).Select(_ =>
            {
                int first = rng.Next(0, 80);
                return new Lifetime(rng.Next(2) == 0 ? 64 : 128, rng.Next(4) == 0, first, first + rng.Next(0, 25));
            }).OrderBy(l => l.First).ToArray();
            foreach (bool recent in new[] { true, false })
            {
                var slot = MemoryPlanner.Assign(lives, recent);
                CheckPlan(lives, slot, recent);
            }
        }
    }

    private static void CheckPlan(Lifetime[] lives, int[] slot, bool recent)
    {
        int slots = slot.Max() + 1;
        Assert.Equal(Enumerable.Range(0, slots), slot.Distinct().Order());
        for (int i = 0; i < lives.Length; i++)
            for (int j = i + 1; j < lives.Length; j++)
            {
                if (slot[i] != slot[j]) continue;
                Assert.Equal((lives[i].Length, lives[i].IsInt), (lives[j].Length, lives[j].IsInt));
                Assert.False(lives[i].First <= lives[j].Last && lives[j].First <= lives[i].Last,
                    $"temporaries {i} {lives[i]} and {j} {lives[j]} overlap in slot {slot[i]}");
            }

        // As many slots per class as the most temporaries of the class alive at one operation.
        foreach (var group in Enumerable.Range(0, lives.Length).GroupBy(i => (lives[i].Length, lives[i].IsInt)))
        {
            int alive = group.SelectMany(i => Enumerable.Range(lives[i].First, lives[i].Last - lives[i].First + 1)).GroupBy(op => op).Max(g => g.Count());
            Assert.Equal(alive, group.Select(i => slot[i]).Distinct().Count());
        }

        // When temporary t was placed, the slots of its class held the temporaries placed before it; the free ones were
        // those whose latest tenant had died. t opened a new slot only if none was free, else took the one its policy names.
        for (int t = 0; t < lives.Length; t++)
        {
            var freedAt = new Dictionary<int, int>();
            for (int before = 0; before < t; before++)
            {
                if ((lives[before].Length, lives[before].IsInt) != (lives[t].Length, lives[t].IsInt)) continue;
                freedAt[slot[before]] = lives[before].Last;
            }
            var free = freedAt.Where(kv => kv.Value < lives[t].First).Select(kv => kv.Key).ToList();
            if (free.Count == 0)
            {
                Assert.DoesNotContain(slot[t], freedAt.Keys);
                continue;
            }
            int expected = recent ? free.OrderByDescending(s => freedAt[s]).ThenBy(s => s).First() : free.Min();
            Assert.Equal(expected, slot[t]);
        }
    }
}
