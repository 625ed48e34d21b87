using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>
/// A lookup table (PyTorch's <c>nn.Embedding</c>): row i of the weight [count, dimension] for each index i. Indices come
/// as a tensor of whole numbers (any shape; the output appends the dimension), or as host ints. The weight is
/// initialised N(0, 1) as PyTorch; its gradient adds up the rows of repeated indices.
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>Creates the table.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <remarks>Unseeded, the seed is drawn from the global generator (<see cref="Engine.Random"/>).</remarks>
    public Embedding(int count, int dimension, ulong? seed = null, Device? device = null)
    {
        if (count <= 0 || dimension <= 0)
            throw new ArgumentOutOfRangeException(nameof(count), $"Embedding: count and dimension must be positive; got {count} x {dimension}.");
        Count = count;
        Dimension = dimension;
        Weight = RegisterParameter("weight", Tensor.Normal([count, dimension], (seed ?? Random.NextSeed()) * 2 + 1, device: device ?? Device.Default));
    }

    /// <summary>Number of rows (valid indices are 0..Count-1).</summary>
    public int Count { get; }
    /// <summary>Length of each row.</summary>
    public int Dimension { get; }
    /// <summary>The table [count, dimension].</summary>
    public Tensor Weight { get; }

    /// <summary>Rows for a tensor of indices (whole numbers, any shape): output [..indices.shape, dimension].</summary>
    /// <exception cref="ArgumentException">An entry is not a whole number in [0, Count).</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int[] indices;
        try { indices = input.ToInt32Array(); }
        catch (InvalidOperationException e) { throw new ArgumentException($"Embedding: indices must be whole numbers; {e.Message}", nameof(input)); }
        return Lookup(indices, input.Shape);
    }

    /// <summary>Rows for host indices: output [indices.Length, dimension].</summary>
    /// <exception cref="ArgumentException">An index is outside [0, Count).</exception>
    public Tensor Forward(int[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        return Lookup(indices, [indices.Length]);
    }

    private Tensor Lookup(int[] indices, int[] shape)
    {
        int bad = Array.FindIndex(indices, i => i < 0 || i >= Count);
        if (bad >= 0)
            throw new ArgumentException($"Embedding: index {indices[bad]} at position {bad} is outside [0, {Count}) (indices {Shape.Format(shape)}, table [{Count}, {Dimension}]).");
        // Not disposed here: the gather's backward rule scatters through the same index.
        var index = new IndexTensor(indices);
        return Weight.IndexSelect(0, index).Reshape([.. shape, Dimension]);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"{Count} x {Dimension}";
}
