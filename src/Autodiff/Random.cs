using Engine.Autodiff;
using Engine.Kernels;

namespace Engine;

/// <summary>
/// The engine's global random generator, as <c>torch.manual_seed</c> sets PyTorch's: a layer, initialiser or tensor
/// factory given no seed draws one from it with <see cref="NextSeed"/>, so two unseeded layers differ and a whole
/// run is reproducible from one <see cref="Seed"/> call. Explicit seeds never touch it.
/// </summary>
/// <remarks>
/// <para>Counter-based: the k-th seed drawn after <c>Seed(s)</c> is <see cref="CounterRng.Bits"/>(s, k), so the whole
/// state is two numbers (the seed and how many seeds were drawn), saved in checkpoints through
/// <see cref="StateDict"/>. The generator is shared by all threads (draws are serialised by a lock); code that must
/// not depend on what other threads draw passes explicit seeds.</para>
/// <para>The class also derives from <see cref="System.Random"/> so that <c>new Random(seed)</c> written inside the
/// Engine namespaces still means the framework's generator (its constructors only forward to it).</para>
/// </remarks>
public class Random : System.Random
{
    /// <summary>The seed the global generator starts from when <see cref="Seed"/> is never called.</summary>
    public const ulong DefaultSeed = 0;

    private static readonly object Gate = new();
    private static ulong initialSeed = DefaultSeed;
    private static ulong draws;

    /// <summary>A <see cref="System.Random"/> seeded from the system (the global generator is not involved).</summary>
    public Random() { }

    /// <summary>A <see cref="System.Random"/> with the given seed (the global generator is not involved).</summary>
    public Random(int seed) : base(seed) { }

    /// <summary>Restarts the global generator from <paramref name="seed"/> (like <c>torch.manual_seed</c>).</summary>
    public static void Seed(ulong seed)
    {
        lock (Gate)
        {
            initialSeed = seed;
            draws = 0;
        }
    }

    /// <summary>The seed of the last <see cref="Seed"/> call (<see cref="DefaultSeed"/> before any).</summary>
    public static ulong InitialSeed
    {
        get
        {
            lock (Gate) return initialSeed;
        }
    }

    /// <summary>How many seeds were drawn since the last <see cref="Seed"/> call.</summary>
    public static ulong Draws
    {
        get
        {
            lock (Gate) return draws;
        }
    }

    /// <summary>Draws the next seed from the global generator.</summary>
    public static ulong NextSeed()
    {
        lock (Gate) return CounterRng.Bits(initialSeed, draws++);
    }

    /// <summary>Draws the next seed as a non-negative int, for APIs that take int seeds (permutations, Mixer).</summary>
    public static int NextIntSeed() => (int)(NextSeed() >> 33);

    /// <summary>The generator's state: "seed" and "draws" (both Int64 holding the unsigned values' bits).</summary>
    public static StateDict StateDict()
    {
        var state = new StateDict();
        lock (Gate)
        {
            state.Add(SeedKey, unchecked((long)initialSeed));
            state.Add(DrawsKey, unchecked((long)draws));
        }
        return state;
    }

    /// <summary>
    /// Checks <paramref name="state"/> (as <see cref="StateDict"/> writes it: exactly "seed" and "draws") and returns
    /// the action that restores it; nothing changes until the action runs.
    /// </summary>
    /// <exception cref="ArgumentException">An entry is missing, of the wrong kind, or unknown.</exception>
    public static Action PrepareLoadStateDict(StateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var key in state.Keys)
            if (key != SeedKey && key != DrawsKey)
                throw new ArgumentException($"Random.LoadStateDict: entry '{key}' is not part of the generator's state (expected '{SeedKey}' and '{DrawsKey}').");
        ulong seed = unchecked((ulong)Require(state, SeedKey));
        ulong count = unchecked((ulong)Require(state, DrawsKey));
        return () =>
        {
            lock (Gate)
            {
                initialSeed = seed;
                draws = count;
            }
        };
    }

    /// <summary>Restores the generator's state (see <see cref="PrepareLoadStateDict"/>).</summary>
    public static void LoadStateDict(StateDict state) => PrepareLoadStateDict(state)();

    private const string SeedKey = "seed";
    private const string DrawsKey = "draws";

    private static long Require(StateDict state, string key)
    {
        if (!state.TryGetValue(key, out var v))
            throw new ArgumentException($"Random.LoadStateDict: entry '{key}' is missing.");
        if (v.Kind != StateKind.Int64)
            throw new ArgumentException($"Random.LoadStateDict: entry '{key}' is {v.Kind}, expected {StateKind.Int64}.");
        return v.Int64;
    }
}
