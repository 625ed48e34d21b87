using System.Runtime.CompilerServices;
using Engine.Kernels.Composite;

namespace Engine.Kernels;

/// <summary>
/// The way to the optional capabilities of a kernel set: the set itself when it implements one, else a composite
/// fallback written in the core operations of <see cref="IKernelSet"/> (slower, same results within float rounding;
/// see each composite class for its accuracy). Ops call these instead of casting, so a kernel set that implements
/// only the core still runs every op. Fallbacks are created once per kernel set and keep their constant tables
/// (DFT matrices, category lists) for its lifetime.
/// </summary>
public static class KernelCapabilities
{
    private static readonly ConditionalWeakTable<IKernelSet, Fallbacks> Cache = new();

    /// <summary>FFTs: the set's own, or dense DFTs as core GEMMs.</summary>
    public static IFftKernels FftKernels(this IKernelSet kernels) =>
        kernels as IFftKernels ?? For(kernels).Fft;

    /// <summary>Sum-product network layers: the set's own, or core gathers, broadcasts, GEMMs and reductions.</summary>
    public static ISpnKernels SpnKernels(this IKernelSet kernels) =>
        kernels as ISpnKernels ?? For(kernels).Spn;

    /// <summary>Fused optimizer kernels: the set's own, or core elementwise ops and reductions.</summary>
    public static IOptimizerKernels OptimizerKernels(this IKernelSet kernels) =>
        kernels as IOptimizerKernels ?? For(kernels).Optimizer;

    /// <summary>Layer normalisation: the set's own, or core reductions and broadcasts.</summary>
    public static ILayerNormKernels LayerNormKernels(this IKernelSet kernels) =>
        kernels as ILayerNormKernels ?? For(kernels).LayerNorm;

    /// <summary>Fused loss gradients: the set's own, or core one-hot, softmax and broadcast passes.</summary>
    public static ILossKernels LossKernels(this IKernelSet kernels) =>
        kernels as ILossKernels ?? For(kernels).Loss;

    private static Fallbacks For(IKernelSet kernels)
    {
        ArgumentNullException.ThrowIfNull(kernels);
        return Cache.GetValue(kernels, k => new Fallbacks(k));
    }

    /// <summary>The composites of one kernel set, each made on first use.</summary>
    private sealed class Fallbacks(IKernelSet kernels)
    {
        private readonly Lazy<CompositeFftKernels> fft = new(() => new CompositeFftKernels(kernels));
        private readonly Lazy<CompositeSpnKernels> spn = new(() => new CompositeSpnKernels(kernels));
        private readonly Lazy<CompositeOptimizerKernels> optimizer = new(() => new CompositeOptimizerKernels(kernels));
        private readonly Lazy<CompositeLayerNormKernels> layerNorm = new(() => new CompositeLayerNormKernels(kernels));
        private readonly Lazy<CompositeLossKernels> loss = new(() => new CompositeLossKernels(kernels));

        public IFftKernels Fft => fft.Value;
        public ISpnKernels Spn => spn.Value;
        public IOptimizerKernels Optimizer => optimizer.Value;
        public ILayerNormKernels LayerNorm => layerNorm.Value;
        public ILossKernels Loss => loss.Value;
    }
}
