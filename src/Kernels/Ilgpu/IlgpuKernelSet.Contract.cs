namespace Engine.Kernels.Ilgpu;

// The capability entry points whose descriptors this set unpacks for its kernel bodies (launches are counted where
// they happen, in Launch).
public sealed partial class IlgpuKernelSet : IFftKernels, ISpnKernels, IOptimizerKernels, ILayerNormKernels, ILossKernels,
    ISoftmaxCrossEntropyKernels, ISoftmaxBatchKernels, ISpnProductSumKernels,
    IIndexScatterKernels
{
    // ---- layer normalisation ----

    void ILayerNormKernels.LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, DeviceBuffer<float> y,
        in LayerNormStats stats, LayerNormSize size, float eps) =>
        LayerNorm(x, gamma, beta, y, stats.Mean, stats.Rstd, size.Rows, size.Cols, eps);

    void ILayerNormKernels.LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, in LayerNormStats stats, DeviceBuffer<float> gamma,
        in LayerNormGradients gradients, LayerNormSize size) =>
        LayerNormBackward(dy, x, stats.Mean, stats.Rstd, gamma, gradients.Dx, gradients.Dgamma, gradients.Dbeta, size.Rows, size.Cols);

    // ---- sum-product networks ----

    void ISpnKernels.SpnLeafCategorical(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> logTable, int components,
        int categories, DeviceBuffer<float> y) =>
        SpnLeafCategorical(x, batch, leaves.Variables, logTable, components, categories, leaves.RegionStart, leaves.EntryVariable, leaves.Regions,
            leaves.Entries, y);

    void ISpnKernels.SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> dy, int components,
        int categories, DeviceBuffer<float> dTable) =>
        SpnLeafCategoricalBackward(x, batch, leaves.Variables, dy, components, categories, leaves.EntryRegion, leaves.EntryVariable,
            leaves.Entries, leaves.Regions, dTable);

    void ISpnKernels.SpnLeafGaussian(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters, int components,
        DeviceBuffer<float> y) =>
        SpnLeafGaussian(x, batch, leaves.Variables, parameters.Mean, parameters.LogStd, components, leaves.RegionStart, leaves.EntryVariable,
            leaves.Regions, leaves.Entries, y);

    void ISpnKernels.SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters,
        int components, DeviceBuffer<float> dy, in SpnGaussianLeaves gradients) =>
        SpnLeafGaussianBackward(x, batch, leaves.Variables, parameters.Mean, parameters.LogStd, dy, components, leaves.EntryRegion,
            leaves.EntryVariable, leaves.Entries, leaves.Regions, gradients.Mean, gradients.LogStd);

    void ISpnKernels.SpnProduct(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, int batch, in SpnProductMap map, DeviceBuffer<float> y) =>
        SpnProduct(a, map.Left.ChildRegions, k1, b, map.Right.ChildRegions, k2, map.Left.Child, map.Right.Child, batch, map.Regions, y);

    void ISpnKernels.SpnProductBackward(DeviceBuffer<float> dy, int batch, in SpnProductMap map, int k1, int k2, SpnSide side,
        DeviceBuffer<float> dChild) => SpnProductBackward(dy, batch, map, k1, k2, side, dChild);

    void ISpnKernels.SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, in SpnSumSize size, bool max, DeviceBuffer<float> y) =>
        SpnSum(x, logW, size.Batch, size.Regions, size.KIn, size.KOut, max, y);

    void ISpnProductSumKernels.SpnProductSum(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, in SpnProductMap map, DeviceBuffer<float> logW,
        in SpnSumSize size, bool max, DeviceBuffer<float>? product, DeviceBuffer<float> y) => SpnProductSum(a, k1, b, k2, map, logW, size, max, product, y);

    void ISpnKernels.SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        in SpnSumSize size, DeviceBuffer<float> dx, DeviceBuffer<float> dLogW) =>
        SpnSumBackward(x, logW, y, dy, size.Batch, size.Regions, size.KIn, size.KOut, dx, dLogW);
}
