using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>A dense layer y = x Wᵀ + b with W [out, in]; x may have any leading axes.</summary>
public sealed class Linear : Module
{
    /// <summary>
    /// Creates the layer with Kaiming-uniform weights (as PyTorch) from <paramref name="seed"/>, or from a seed drawn
    /// from the global generator (<see cref="Engine.Random"/>) when none is given.
    /// </summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, ulong? seed = null, Device? device = null)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear: features must be positive; got in = {inFeatures}, out = {outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var d = device ?? Device.Default;
        ulong s = seed ?? Random.NextSeed();
        // PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for both weight and bias.
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = RegisterParameter("weight", Tensor.Uniform([outFeatures, inFeatures], s * 2 + 1, -bound, bound, d));
        if (bias) Bias = RegisterParameter("bias", Tensor.Uniform([outFeatures], s * 2 + 2, -bound, bound, d));
    }

    /// <summary>Input width.</summary>
    public int InFeatures { get; }

    /// <summary>Output width.</summary>
    public int OutFeatures { get; }

    /// <summary>The weight, [out, in].</summary>
    public Tensor Weight { get; }

    /// <summary>The bias, [out], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank < 1 || input.Shape[^1] != InFeatures)
            throw new ArgumentException($"Linear: expected input [..., {InFeatures}], got {Shape.Format(input.Shape)}.");
        var x = input.Rank == 1 ? input.Reshape(1, InFeatures) : input;
        var y = x.Rank == 2 ? x.MatMul(Weight, transB: true) : x.Reshape(-1, InFeatures).MatMul(Weight, transB: true);
        if (Bias != null) y = y + Bias;
        var outShape = input.Shape;
        outShape[^1] = OutFeatures;
        return Shape.Equal(y.Shape, outShape) ? y : y.Reshape(outShape);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"{InFeatures} → {OutFeatures}{(Bias == null ? ", no bias" : "")}";
}
