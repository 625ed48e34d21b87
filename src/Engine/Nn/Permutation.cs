using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>
/// A fixed permutation of a layer's features, applied as a gather: (J v)[i] = v[J[i]]. Validated on creation
/// (length, range, no repeats) and stored as an index array.
/// </summary>
public sealed class Permutation
{
    private Permutation(int[] indices, string kind)
    {
        Indices = indices;
        Kind = kind;
    }

    /// <summary>The gather indices (a copy is never needed: the array is not exposed for writing).</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <summary>How it was made: identity, transpose, random or user.</summary>
    public string Kind { get; }

    /// <summary>Length of the permuted vector.</summary>
    public int Length => Indices.Count;

    /// <summary>True for the identity (applying it is skipped).</summary>
    public bool IsIdentity => Indices.Select((v, i) => v == i).All(b => b);

    /// <summary>The identity on <paramref name="length"/> features.</summary>
    public static Permutation Identity(int length) => new(Enumerable.Range(0, length).ToArray(), "identity");

    /// <summary>
    /// The vec-transpose (commutation) permutation: a vector read as a row-major [rows, cols] matrix comes out as
    /// its transpose [cols, rows], row-major.
    /// </summary>
    public static Permutation Transpose(int rows, int cols)
    {
        var idx = new int[rows * cols];
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < rows; j++)
                idx[i * rows + j] = j * cols + i;
        return new(idx, "transpose");
    }

    /// <summary>A uniformly random permutation from <paramref name="seed"/> (Fisher-Yates).</summary>
    public static Permutation Random(int length, int seed)
    {
        var idx = Enumerable.Range(0, length).ToArray();
        new System.Random(seed).Shuffle(idx);
        return new(idx, "random");
    }

    /// <summary>A user-given permutation of 0..length-1.</summary>
    /// <exception cref="ArgumentException">The array is not a permutation (repeats, out of range, wrong length).</exception>
    public static Permutation FromArray(int[] indices, int expectedLength)
    {
        if (indices.Length != expectedLength)
            throw new ArgumentException($"permutation: expected {expectedLength} indices, got {indices.Length}.");
        var seen = new int[indices.Length];
        Array.Fill(seen, -1);
        for (int i = 0; i < indices.Length; i++)
        {
            int v = indices[i];
            if (v < 0 || v >= indices.Length)
                throw new ArgumentException($"permutation: index {v} at position {i} is out of range [0, {indices.Length}).");
            if (seen[v] >= 0)
                throw new ArgumentException($"permutation: index {v} appears twice (positions {seen[v]} and {i}).");
            seen[v] = i;
        }
        return new((int[])indices.Clone(), "user");
    }

    /// <summary>The inverse permutation.</summary>
    public Permutation Inverse()
    {
        var inv = new int[Length];
        for (int i = 0; i < Length; i++) inv[Indices[i]] = i;
        return new(inv, Kind + "^-1");
    }

    /// <summary>The indices as an index tensor.</summary>
    public IndexTensor ToIndexTensor() => new(Indices.ToArray());
}
