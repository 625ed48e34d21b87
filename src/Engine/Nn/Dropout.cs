using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>
/// Dropout: in training mode (<see cref="Module.Train"/>) each entry is zeroed with probability <see cref="P"/> and the
/// rest scaled by 1 / (1 − p), so the expected output is the input; in evaluation mode (<see cref="Module.Eval"/>) the
/// input passes through unchanged. The masks come from the counter-based generator (<see cref="CounterRng"/>) with the
/// seed mixed with a call counter: a run is reproducible, and the CPU and ILGPU kernel sets draw the same masks.
/// </summary>
public sealed class Dropout : Module
{
    /// <summary>Creates the layer; unseeded, its seed is drawn from the global generator (<see cref="Engine.Random"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is outside [0, 1].</exception>
    public Dropout(float p = 0.5f, ulong? seed = null)
    {
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), $"Dropout: the drop probability must lie in [0, 1], got {p}.");
        P = p;
        Seed = seed ?? Random.NextSeed();
    }

    /// <summary>Probability that an entry is dropped.</summary>
    public float P { get; }

    /// <summary>The seed of the masks.</summary>
    public ulong Seed { get; }

    /// <summary>
    /// Training-mode forward passes so far: the next mask is drawn from (seed, this counter). Set it to resume a run
    /// exactly (it is part of the layer's state, like an optimizer's step count).
    /// </summary>
    public long Calls { get; set; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!Training || P == 0f) return input;
        ulong stream = unchecked(Seed * 0x9E3779B97F4A7C15UL + (ulong)Calls++ * 0xBF58476D1CE4E5B9UL + 1);
        if (P == 1f) return input * 0f;
        using var keep = Tensor.Uniform(input.Shape, stream, device: input.Device);
        // u > p keeps an entry (probability 1 − p); Step gives the 0/1 mask, Affine scales it by 1 / (1 − p).
        var mask = keep.Affine(1f, -P).Step().Affine(1f / (1f - P), 0f); // kept: the product's backward rule reads it
        return input * mask;
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"p={P.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
}
