using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// A 1-D array of int indices (a permutation, a selection, class labels) kept on the host for validation and
/// uploaded once per device on first use. Immutable.
/// </summary>
public sealed class IndexTensor : IDisposable
{
    private readonly int[] values;
    private readonly Dictionary<Device, DeviceBuffer<int>> uploaded = new();
    private readonly int min, max;
    private readonly Dictionary<(int, int), bool> transposeChecks = new();
    private readonly Lazy<bool> isPermutation;

    /// <summary>Wraps a copy of <paramref name="values"/>.</summary>
    public IndexTensor(ReadOnlySpan<int> values)
    {
        this.values = values.ToArray();
        min = this.values.Length == 0 ? 0 : this.values.Min();
        max = this.values.Length == 0 ? -1 : this.values.Max();
        isPermutation = new Lazy<bool>(CheckPermutation);
    }

    /// <summary>Number of indices.</summary>
    public int Length => values.Length;

    /// <summary>The indices (a copy).</summary>
    public int[] ToArray() => (int[])values.Clone();

    /// <summary>Index <paramref name="i"/>.</summary>
    public int this[int i] => values[i];

    /// <summary>True if the indices are a permutation of 0..Length-1 (memoised).</summary>
    public bool IsPermutation() => isPermutation.Value;

    private bool CheckPermutation()
    {
        var seen = new bool[values.Length];
        foreach (var v in values)
        {
            if (v < 0 || v >= values.Length || seen[v]) return false;
            seen[v] = true;
        }
        return true;
    }

    /// <summary>
    /// True if the indices are the vec-transpose of a row-major [rows, cols] matrix: entry i·rows + j is j·cols + i,
    /// so gathering by them turns the matrix into its transpose. Memoised per (rows, cols).
    /// </summary>
    public bool IsTranspose(int rows, int cols)
    {
        if ((long)rows * cols != values.Length) return false;
        lock (transposeChecks)
        {
            if (transposeChecks.TryGetValue((rows, cols), out var known)) return known;
        }
        bool r = true;
        for (int i = 0; i < cols && r; i++)
            for (int j = 0; j < rows; j++)
                if (values[i * rows + j] != j * cols + i) { r = false; break; }
        lock (transposeChecks) transposeChecks[(rows, cols)] = r;
        return r;
    }

    /// <summary>Throws naming <paramref name="op"/> unless every index lies in [0, <paramref name="extent"/>).</summary>
    public void CheckRange(string op, int extent)
    {
        Trace.Current?.RangeChecked(this, op, extent);
        if (values.Length == 0) return;
        if (min < 0 || max >= extent)
        {
            int bad = Array.FindIndex(values, v => v < 0 || v >= extent);
            throw new ArgumentOutOfRangeException(nameof(extent),
                $"{op}: index {values[bad]} at position {bad} is out of range [0, {extent}).");
        }
    }

    internal DeviceBuffer<int> On(Device device)
    {
        lock (uploaded)
        {
            if (uploaded.TryGetValue(device, out var b) && !b.IsDisposed) return b;
            b = device.Kernels.AllocateInt(values.Length);
            b.CopyFromHost(values);
            uploaded[device] = b;
            return b;
        }
    }

    /// <summary>Frees the device copies.</summary>
    public void Dispose()
    {
        lock (uploaded)
        {
            foreach (var b in uploaded.Values) b.Dispose();
            uploaded.Clear();
        }
    }
}
