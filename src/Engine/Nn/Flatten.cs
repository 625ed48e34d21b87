using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>
/// Flattens every axis from <see cref="StartAxis"/> on into one (PyTorch's <c>nn.Flatten</c>): [B, C, H, W] becomes
/// [B, C·H·W] with the default start axis 1, for a <see cref="Linear"/> after convolutions. A view (no copy).
/// </summary>
public sealed class Flatten(int startAxis = 1) : Module
{
    /// <summary>The first axis folded into the last one kept.</summary>
    public int StartAxis { get; } = startAxis;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input has fewer axes than <see cref="StartAxis"/> + 1.</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var s = input.Shape;
        int start = StartAxis < 0 ? StartAxis + s.Length : StartAxis;
        if (start < 0 || start >= s.Length)
            throw new ArgumentException($"Flatten: start axis {StartAxis} is out of range for input {Shape.Format(s)}.");
        return input.Reshape([.. s[..start], (int)Shape.Size(s.AsSpan(start))]);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => StartAxis == 1 ? "" : $"from axis {StartAxis}";
}
