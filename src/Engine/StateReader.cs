using System.Globalization;
using Engine.Autodiff;

namespace Engine;

/// <summary>
/// Reads a <see cref="StateDict"/> for one loader, entry by entry, with errors that name the loader, the entry and
/// what was expected; remembers which entries were read so that <see cref="RejectUnread"/> can refuse the rest.
/// Nothing here changes any state: loaders collect their changes and run them only after the last check passed.
/// </summary>
internal sealed class StateReader
{
    private readonly StateDict state;
    private readonly string owner;
    private readonly HashSet<string> read = new(StringComparer.Ordinal);

    /// <param name="state">The dictionary to read.</param>
    /// <param name="owner">Who loads, for messages ("Adam.LoadStateDict").</param>
    public StateReader(StateDict state, string owner)
    {
        this.state = state ?? throw new ArgumentNullException(nameof(state));
        this.owner = owner;
    }

    public ArgumentException Error(string message) => new($"{owner}: {message}");

    public bool Has(string key) => state.ContainsKey(key);

    /// <summary>The entry called <paramref name="key"/>, which must exist and be of kind <paramref name="kind"/>.</summary>
    public StateValue Entry(string key, StateKind kind)
    {
        if (!state.TryGetValue(key, out var v)) throw Error($"entry '{key}' is missing.");
        if (v.Kind != kind) throw Error($"entry '{key}' is {Describe(v)}, expected {Article(kind)}.");
        read.Add(key);
        return v;
    }

    public string Text(string key) => Entry(key, StateKind.Text).Text;

    public int[] Int32s(string key) => Entry(key, StateKind.Int32s).Int32s;

    public long Int64(string key, long min = long.MinValue, long max = long.MaxValue)
    {
        long v = Entry(key, StateKind.Int64).Int64;
        if (v < min || v > max) throw Error($"entry '{key}' is {v}, expected a value in [{min}, {max}].");
        return v;
    }

    public double Float64(string key) => Entry(key, StateKind.Float64).Float64;

    /// <summary>A finite, non-negative rate or coefficient that must fit a float.</summary>
    public float NonNegativeFloat(string key)
    {
        double v = Float64(key);
        float f = (float)v;
        if (!(v >= 0) || !float.IsFinite(f))
            throw Error($"entry '{key}' is {v.ToString("R", CultureInfo.InvariantCulture)}, expected a finite number >= 0.");
        return f;
    }

    /// <summary>
    /// A float tensor entry of the given shape, finite unless <paramref name="allowNonFinite"/>; returns it (copy it
    /// with <see cref="CopyInto"/> when applying).
    /// </summary>
    public Tensor Tensor(string key, int[] shape, bool allowNonFinite, string? what = null)
    {
        var t = Entry(key, StateKind.Tensor).Tensor;
        string name = what ?? $"entry '{key}'";
        if (t.IsDisposed) throw Error($"{name} is a disposed tensor.");
        if (!Shape.Equal(t.Shape, shape))
            throw Error($"{name} has shape {Shape.Format(t.Shape)}, expected {Shape.Format(shape)}.");
        if (!allowNonFinite)
        {
            var values = t.ToArray();
            for (int i = 0; i < values.Length; i++)
                if (!float.IsFinite(values[i]))
                    throw Error($"{name} holds {values[i].ToString(CultureInfo.InvariantCulture)} at element {i} (pass allowNonFinite to accept NaN/Inf).");
        }
        return t;
    }

    /// <summary>
    /// Requires that every entry of <paramref name="expected"/> appears under <paramref name="prefix"/> with the same
    /// kind and value (hyper-parameters fixed at construction, which a state must agree with to be loaded).
    /// </summary>
    public void Matching(string prefix, StateDict expected, string what)
    {
        foreach (var (key, mine) in expected)
        {
            var theirs = Entry(prefix + key, mine.Kind);
            if (!theirs.SameValue(mine))
                throw Error($"{what} '{key}' is {theirs} in the state but {mine} here (build it with the same settings to load this state).");
        }
    }

    /// <summary>Marks every entry under <paramref name="prefix"/> as read (another loader checks them).</summary>
    public void Delegate(string prefix)
    {
        foreach (var key in state.Keys)
            if (key.StartsWith(prefix, StringComparison.Ordinal)) read.Add(key);
    }

    /// <summary>Throws if some entry was never read, naming up to five of them.</summary>
    public void RejectUnread(string what)
    {
        var unknown = state.Keys.Where(k => !read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw Error($"{unknown.Count} entr{(unknown.Count == 1 ? "y is" : "ies are")} not {what}: " +
                $"{string.Join(", ", unknown.Take(5).Select(n => $"'{n}'"))}{(unknown.Count > 5 ? ", ..." : "")}.");
    }

    /// <summary>destination = source, through the host when they live on different devices.</summary>
    public static void CopyInto(Tensor source, Tensor destination)
    {
        if (ReferenceEquals(source.Device, destination.Device)) InPlace.Copy(source, destination);
        else destination.CopyFrom(source.ToArray());
    }

    private static string Describe(StateValue v) => v.Kind == StateKind.Tensor ? v.ToString() : $"{Article(v.Kind)} ({v})";

    private static string Article(StateKind kind) => kind switch
    {
        StateKind.Tensor => "a tensor",
        StateKind.Int32s => "an integer array",
        StateKind.Int64 => "an Int64",
        StateKind.Float64 => "a Float64",
        StateKind.Boolean => "a Boolean",
        _ => "a Text",
    };
}
