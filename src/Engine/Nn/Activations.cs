using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>max(x, 0).</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Relu();
}

/// <summary>GELU: exact (erf) form by default, tanh form when <c>approximate</c>.</summary>
public sealed class GELU(bool approximate = false) : Module
{
    /// <summary>True for the tanh approximation.</summary>
    public bool Approximate { get; } = approximate;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Gelu(Approximate);

    /// <inheritdoc />
    protected override string ExtraRepr() => Approximate ? "tanh" : "";
}

/// <summary>Hyperbolic tangent.</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Tanh();
}

/// <summary>Logistic sigmoid.</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Sigmoid();
}

/// <summary>Softmax along an axis.</summary>
public sealed class Softmax(int axis = -1) : Module
{
    /// <summary>The axis normalised over.</summary>
    public int Axis { get; } = axis;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Softmax(Axis);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"axis {Axis}";
}
