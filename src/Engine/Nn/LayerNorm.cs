using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>Layer normalisation over the last axis with learned scale (ones) and shift (zeros).</summary>
public sealed class LayerNorm : Module
{
    /// <summary>Creates the layer for <paramref name="features"/> features.</summary>
    public LayerNorm(int features, float eps = 1e-5f, Device? device = null)
    {
        if (features <= 0) throw new ArgumentOutOfRangeException(nameof(features), $"LayerNorm: features must be positive, got {features}.");
        Eps = eps;
        var d = device ?? Device.Default;
        Gamma = RegisterParameter("weight", Tensor.Ones([features], d));
        Beta = RegisterParameter("bias", Tensor.Zeros([features], d));
    }

    /// <summary>Variance epsilon.</summary>
    public float Eps { get; }
    /// <summary>Scale, [features].</summary>
    public Tensor Gamma { get; }
    /// <summary>Shift, [features].</summary>
    public Tensor Beta { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.LayerNorm(Gamma, Beta, Eps);

    /// <inheritdoc />
    protected override string ExtraRepr() => Gamma.IsDisposed ? "" : Gamma.Shape[0].ToString(System.Globalization.CultureInfo.InvariantCulture);
}
