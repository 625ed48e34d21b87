namespace Engine.Nn;

/// <summary>
/// A named integer array that belongs to a module's state without being trained (a permutation, a lookup table):
/// saved in checkpoints (as I32) and validated before it is replaced on load. The module supplies how to read it,
/// how to check a candidate value (throwing <see cref="ArgumentException"/>) and how to install a checked value.
/// </summary>
public sealed class IndexBuffer
{
    private readonly Func<int[]> read;
    private readonly Action<int[]> validate;
    private readonly Action<int[]> write;

    /// <summary>Creates the buffer's accessors.</summary>
    /// <param name="length">Number of entries (fixed for the module's lifetime).</param>
    /// <param name="read">Returns a copy of the current values.</param>
    /// <param name="validate">Throws <see cref="ArgumentException"/> if a candidate is not acceptable.</param>
    /// <param name="write">Installs a candidate that passed <paramref name="validate"/>.</param>
    public IndexBuffer(int length, Func<int[]> read, Action<int[]> validate, Action<int[]> write)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        this.read = read;
        this.validate = validate;
        this.write = write;
    }

    /// <summary>Number of entries.</summary>
    public int Length { get; }

    /// <summary>A copy of the current values.</summary>
    public int[] Read() => read();

    /// <summary>Throws <see cref="ArgumentException"/> if <paramref name="values"/> cannot replace the buffer.</summary>
    public void Validate(int[] values)
    {
        if (values.Length != Length)
            throw new ArgumentException($"IndexBuffer: expected {Length} entries, got {values.Length}.");
        validate(values);
    }

    /// <summary>Validates, then installs <paramref name="values"/>.</summary>
    public void Write(int[] values)
    {
        Validate(values);
        write(values);
    }
}
