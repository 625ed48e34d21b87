using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>
/// 2-D convolution layer (PyTorch's <c>nn.Conv2d</c>): input [batch, inChannels, h, w], output
/// [batch, outChannels, oh, ow]; weight [outChannels, inChannels / groups, kh, kw], bias [outChannels]. Runs
/// <see cref="Ops.Conv2d"/> (an im2col gather and one batched GEMM). Initialised as PyTorch: weight and bias uniform
/// in ±1/√fan_in with fan_in = inChannels / groups · kh · kw, from the seed (or one drawn from <see cref="Engine.Random"/>).
/// </summary>
public sealed class Conv2d : Module
{
    /// <summary>Creates the layer.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or groups do not divide the channels.</exception>
    public Conv2d(int inChannels, int outChannels, Int2 kernelSize, Int2? stride = null, Int2? padding = null, Int2? dilation = null,
        int groups = 1, bool bias = true, ulong? seed = null, Device? device = null)
    {
        ConvChecks.Check(nameof(Conv2d), inChannels, outChannels, groups, kernelSize.H, kernelSize.W);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride ?? 1;
        Padding = padding ?? 0;
        Dilation = dilation ?? 1;
        Groups = groups;
        var d = device ?? Device.Default;
        ulong s = seed ?? Random.NextSeed();
        float bound = 1f / MathF.Sqrt(inChannels / groups * kernelSize.H * kernelSize.W);
        Weight = RegisterParameter("weight", Tensor.Uniform([outChannels, inChannels / groups, kernelSize.H, kernelSize.W], s * 2 + 1, -bound, bound, d));
        if (bias) Bias = RegisterParameter("bias", Tensor.Uniform([outChannels], s * 2 + 2, -bound, bound, d));
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel height and width.</summary>
    public Int2 KernelSize { get; }
    /// <summary>Step between output positions.</summary>
    public Int2 Stride { get; }
    /// <summary>Zeros added on each side.</summary>
    public Int2 Padding { get; }
    /// <summary>Spacing of the kernel taps.</summary>
    public Int2 Dilation { get; }
    /// <summary>Channel groups (inputs and outputs split into this many independent convolutions).</summary>
    public int Groups { get; }
    /// <summary>The weight [outChannels, inChannels / groups, kh, kw].</summary>
    public Tensor Weight { get; }
    /// <summary>The bias [outChannels], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Conv2d(Weight, Bias, Stride, Padding, Dilation, Groups);

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{InChannels} → {OutChannels}, kernel {KernelSize.H}x{KernelSize.W}, stride {Stride}, padding {Padding}{(Dilation == new Int2(1, 1) ? "" : $", dilation {Dilation}")}{(Groups == 1 ? "" : $", groups {Groups}")}{(Bias == null ? ", no bias" : "")}";
}

/// <summary>
/// 1-D convolution layer (PyTorch's <c>nn.Conv1d</c>): input [batch, inChannels, length], output
/// [batch, outChannels, outLength]; weight [outChannels, inChannels / groups, k], bias [outChannels]. Runs
/// <see cref="Ops.Conv1d"/>; initialised as PyTorch (uniform in ±1/√(inChannels / groups · k)).
/// </summary>
public sealed class Conv1d : Module
{
    /// <summary>Creates the layer.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or groups do not divide the channels.</exception>
    public Conv1d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, ulong? seed = null, Device? device = null)
    {
        ConvChecks.Check(nameof(Conv1d), inChannels, outChannels, groups, 1, kernelSize);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        var d = device ?? Device.Default;
        ulong s = seed ?? Random.NextSeed();
        float bound = 1f / MathF.Sqrt(inChannels / groups * kernelSize);
        Weight = RegisterParameter("weight", Tensor.Uniform([outChannels, inChannels / groups, kernelSize], s * 2 + 1, -bound, bound, d));
        if (bias) Bias = RegisterParameter("bias", Tensor.Uniform([outChannels], s * 2 + 2, -bound, bound, d));
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel length.</summary>
    public int KernelSize { get; }
    /// <summary>Step between output positions.</summary>
    public int Stride { get; }
    /// <summary>Zeros added on each side.</summary>
    public int Padding { get; }
    /// <summary>Spacing of the kernel taps.</summary>
    public int Dilation { get; }
    /// <summary>Channel groups.</summary>
    public int Groups { get; }
    /// <summary>The weight [outChannels, inChannels / groups, k].</summary>
    public Tensor Weight { get; }
    /// <summary>The bias [outChannels], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Conv1d(Weight, Bias, Stride, Padding, Dilation, Groups);

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{InChannels} → {OutChannels}, kernel {KernelSize}, stride {Stride}, padding {Padding}{(Dilation == 1 ? "" : $", dilation {Dilation}")}{(Groups == 1 ? "" : $", groups {Groups}")}{(Bias == null ? ", no bias" : "")}";
}

internal static class ConvChecks
{
    public static void Check(string layer, int inChannels, int outChannels, int groups, int kh, int kw)
    {
        if (inChannels <= 0 || outChannels <= 0 || kh <= 0 || kw <= 0 || groups <= 0)
            throw new ArgumentOutOfRangeException(nameof(inChannels),
                $"{layer}: channels, kernel size and groups must be positive; got in = {inChannels}, out = {outChannels}, kernel {kh}x{kw}, groups = {groups}.");
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"{layer}: groups = {groups} must divide both in = {inChannels} and out = {outChannels} channels.");
    }
}
