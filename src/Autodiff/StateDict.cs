using System.Collections;
using System.Globalization;

namespace Engine.Autodiff;

/// <summary>What a <see cref="StateValue"/> holds.</summary>
public enum StateKind
{
    /// <summary>A float tensor (parameters, optimizer moments).</summary>
    Tensor,
    /// <summary>A one-dimensional array of 32-bit integers (index buffers, parameter index lists).</summary>
    Int32s,
    /// <summary>A 64-bit integer (step counts, generator state).</summary>
    Int64,
    /// <summary>A double (learning rates and other hyper-parameters; a float converts exactly).</summary>
    Float64,
    /// <summary>A boolean (switches such as Nesterov momentum).</summary>
    Boolean,
    /// <summary>A string (type names).</summary>
    Text,
}

/// <summary>One entry of a <see cref="StateDict"/>: a tensor, an integer array or a scalar.</summary>
public sealed class StateValue
{
    private readonly Tensor? tensor;
    private readonly int[]? ints;
    private readonly long int64;
    private readonly double float64;
    private readonly string? text;

    private StateValue(StateKind kind, Tensor? tensor = null, int[]? ints = null, long int64 = 0, double float64 = 0, string? text = null)
    {
        Kind = kind;
        this.tensor = tensor;
        this.ints = ints;
        this.int64 = int64;
        this.float64 = float64;
        this.text = text;
    }

    /// <summary>What this entry holds.</summary>
    public StateKind Kind { get; }

    /// <summary>The tensor (a live reference: a state dictionary does not copy tensors).</summary>
    /// <exception cref="InvalidOperationException">The entry is not a tensor.</exception>
    public Tensor Tensor => Kind == StateKind.Tensor ? tensor! : throw WrongKind(StateKind.Tensor);

    /// <summary>The integer array.</summary>
    /// <exception cref="InvalidOperationException">The entry is not an integer array.</exception>
    public int[] Int32s => Kind == StateKind.Int32s ? ints! : throw WrongKind(StateKind.Int32s);

    /// <summary>The 64-bit integer.</summary>
    /// <exception cref="InvalidOperationException">The entry is not an Int64.</exception>
    public long Int64 => Kind == StateKind.Int64 ? int64 : throw WrongKind(StateKind.Int64);

    /// <summary>The double.</summary>
    /// <exception cref="InvalidOperationException">The entry is not a Float64.</exception>
    public double Float64 => Kind == StateKind.Float64 ? float64 : throw WrongKind(StateKind.Float64);

    /// <summary>The boolean.</summary>
    /// <exception cref="InvalidOperationException">The entry is not a Boolean.</exception>
    public bool Boolean => Kind == StateKind.Boolean ? int64 != 0 : throw WrongKind(StateKind.Boolean);

    /// <summary>The string.</summary>
    /// <exception cref="InvalidOperationException">The entry is not a Text.</exception>
    public string Text => Kind == StateKind.Text ? text! : throw WrongKind(StateKind.Text);

    /// <summary>A tensor entry.</summary>
    public static StateValue Of(Tensor value) => new(StateKind.Tensor, tensor: value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>An integer-array entry (the array is copied).</summary>
    public static StateValue Of(int[] value) => new(StateKind.Int32s, ints: (int[])(value ?? throw new ArgumentNullException(nameof(value))).Clone());

    /// <summary>An Int64 entry.</summary>
    public static StateValue Of(long value) => new(StateKind.Int64, int64: value);

    /// <summary>A Float64 entry.</summary>
    public static StateValue Of(double value) => new(StateKind.Float64, float64: value);

    /// <summary>A Boolean entry.</summary>
    public static StateValue Of(bool value) => new(StateKind.Boolean, int64: value ? 1 : 0);

    /// <summary>A Text entry.</summary>
    public static StateValue Of(string value) => new(StateKind.Text, text: value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>
    /// True when both entries are of the same kind and hold the same value (bitwise for Float64; element by element
    /// for integer arrays). Tensor entries are never equal by value here (comparing them needs the device).
    /// </summary>
    public bool SameValue(StateValue other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Kind != Kind) return false;
        return Kind switch
        {
            StateKind.Tensor => ReferenceEquals(tensor, other.tensor),
            StateKind.Int32s => ints!.AsSpan().SequenceEqual(other.ints),
            StateKind.Float64 => BitConverter.DoubleToInt64Bits(float64) == BitConverter.DoubleToInt64Bits(other.float64),
            StateKind.Text => text == other.text,
            _ => int64 == other.int64,
        };
    }

    /// <summary>The value as text: a tensor's shape, an array's elements, or the scalar.</summary>
    public override string ToString() => Kind switch
    {
        StateKind.Tensor => $"tensor {Shape.Format(tensor!.Shape)}",
        StateKind.Int32s => $"[{string.Join(", ", ints!)}]",
        StateKind.Int64 => int64.ToString(CultureInfo.InvariantCulture),
        StateKind.Float64 => float64.ToString("R", CultureInfo.InvariantCulture),
        StateKind.Boolean => int64 != 0 ? "true" : "false",
        _ => $"'{text}'",
    };

    private InvalidOperationException WrongKind(StateKind wanted) =>
        new($"StateValue: the entry is {Kind}, not {wanted}.");
}

/// <summary>
/// Named state, as PyTorch's <c>state_dict()</c>: the parameters and buffers of a module, or the step counts,
/// hyper-parameters and per-parameter tensors of an optimizer, with dotted keys ("state.0.exp_avg"). Keys keep the
/// order they were added in. Tensor entries are live references (not copies), as in PyTorch: read them before
/// the owner changes them, or copy them.
/// </summary>
/// <remarks>
/// Loading is all or nothing: every <c>LoadStateDict</c> in the engine checks the whole dictionary (every entry
/// present, of the right kind and shape, none unknown) before it changes anything, and throws
/// <see cref="ArgumentException"/> naming the entry otherwise.
/// </remarks>
public sealed class StateDict : IEnumerable<KeyValuePair<string, StateValue>>
{
    private readonly List<string> order = new();
    private readonly Dictionary<string, StateValue> entries = new(StringComparer.Ordinal);

    /// <summary>Number of entries.</summary>
    public int Count => order.Count;

    /// <summary>The keys in the order they were added.</summary>
    public IReadOnlyList<string> Keys => order;

    /// <summary>The entry called <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such entry (the message names it).</exception>
    public StateValue this[string key] =>
        entries.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"StateDict: no entry '{key}'.");

    /// <summary>True if an entry is called <paramref name="key"/>.</summary>
    public bool ContainsKey(string key) => entries.ContainsKey(key);

    /// <summary>The entry called <paramref name="key"/>, if any.</summary>
    public bool TryGetValue(string key, out StateValue value) => entries.TryGetValue(key, out value!);

    /// <summary>Adds an entry.</summary>
    /// <exception cref="ArgumentException">The key is empty or already present.</exception>
    public void Add(string key, StateValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (string.IsNullOrEmpty(key)) throw new ArgumentException("StateDict: a key must not be empty.", nameof(key));
        if (!entries.TryAdd(key, value)) throw new ArgumentException($"StateDict: the key '{key}' is added twice.", nameof(key));
        order.Add(key);
    }

    /// <summary>Adds a tensor entry (a live reference).</summary>
    public void Add(string key, Tensor value) => Add(key, StateValue.Of(value));

    /// <summary>Adds an integer-array entry (copied).</summary>
    public void Add(string key, int[] value) => Add(key, StateValue.Of(value));

    /// <summary>Adds an Int64 entry.</summary>
    public void Add(string key, long value) => Add(key, StateValue.Of(value));

    /// <summary>Adds a Float64 entry.</summary>
    public void Add(string key, double value) => Add(key, StateValue.Of(value));

    /// <summary>Adds a Boolean entry.</summary>
    public void Add(string key, bool value) => Add(key, StateValue.Of(value));

    /// <summary>Adds a Text entry.</summary>
    public void Add(string key, string value) => Add(key, StateValue.Of(value));

    /// <summary>Replaces the entry called <paramref name="key"/>, or adds it at the end.</summary>
    public void Set(string key, StateValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (entries.ContainsKey(key)) entries[key] = value;
        else Add(key, value);
    }

    /// <summary>Removes the entry called <paramref name="key"/>; false if there was none.</summary>
    public bool Remove(string key)
    {
        if (!entries.Remove(key)) return false;
        order.Remove(key);
        return true;
    }

    /// <summary>Adds every entry of <paramref name="other"/> with <paramref name="prefix"/> put before its key.</summary>
    public void AddAll(string prefix, StateDict other)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(other);
        foreach (var key in other.order) Add(prefix + key, other.entries[key]);
    }

    /// <summary>The entries whose keys start with <paramref name="prefix"/>, with the prefix removed.</summary>
    public StateDict WithPrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var sub = new StateDict();
        foreach (var key in order)
            if (key.StartsWith(prefix, StringComparison.Ordinal) && key.Length > prefix.Length)
                sub.Add(key[prefix.Length..], entries[key]);
        return sub;
    }

    /// <summary>The entries whose keys start with none of <paramref name="prefixes"/>.</summary>
    public StateDict Without(params string[] prefixes)
    {
        var rest = new StateDict();
        foreach (var key in order)
            if (!prefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
                rest.Add(key, entries[key]);
        return rest;
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, StateValue>> GetEnumerator() =>
        order.Select(k => new KeyValuePair<string, StateValue>(k, entries[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>One line per entry: key and value (tensors by shape).</summary>
    public override string ToString() => string.Join(Environment.NewLine, order.Select(k => $"{k}: {entries[k]}"));
}
