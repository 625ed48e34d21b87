namespace Engine.Kernels.Cpu;

// The contract's entry points: each counts one launch on the device's counters (per successful call) and hands its
// arguments to the kernel body, unpacking descriptors and reading device scalars (host memory on this set).
public sealed partial class CpuKernelSet : IFftKernels, ISpnKernels, IOptimizerKernels, ILayerNormKernels, ISoftmaxCrossEntropyKernels, ISoftmaxBatchKernels,
    ISpnProductSumKernels, IIndexScatterKernels
{
    /// <summary>Counts one entry-point call as a launch.</summary>
    private void Launched() => Device.Counters.RecordLaunch();

    // ---- core ----

    void IKernelSet.Fill(DeviceBuffer<float> dst, float value) { Fill(dst, value); Launched(); }

    void IKernelSet.Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count)
    {
        Copy(src, srcOffset, dst, dstOffset, count);
        Launched();
    }

    void IKernelSet.RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high) { RandomUniform(dst, seed, low, high); Launched(); }

    void IKernelSet.RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std) { RandomNormal(dst, seed, mean, std); Launched(); }

    void IKernelSet.Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) { Unary(op, x, y); Launched(); }

    void IKernelSet.Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift) { Affine(x, y, scale, shift); Launched(); }

    void IKernelSet.Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape)
    {
        Binary(op, a, aShape, b, bShape, y, yShape);
        Launched();
    }

    void IKernelSet.BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape) { BroadcastTo(x, xShape, y, yShape); Launched(); }

    void IKernelSet.Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y) { Reduce(op, x, xShape, axes, y); Launched(); }

    void IKernelSet.Gemm(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c) { Gemm(size, a, b, c); Launched(); }

    void IKernelSet.Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y) { Permute(x, xShape, perm, y); Launched(); }

    void IKernelSet.IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y)
    {
        IndexSelect(x, xShape, axis, index, indexLength, y);
        Launched();
    }

    void IKernelSet.IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape)
    {
        IndexAdd(src, srcShape, axis, index, y, yShape);
        Launched();
    }

    void IIndexScatterKernels.IndexScatter(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape)
    {
        IndexAdd(src, srcShape, axis, index, y, yShape, true, nameof(IIndexScatterKernels.IndexScatter));
        Launched();
    }

    void IKernelSet.Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log)
    {
        Softmax(x, y, outer, axisLength, inner, log);
        Launched();
    }

    void IKernelSet.CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss)
    {
        CrossEntropy(logits, labels, rows, classes, loss);
        Launched();
    }

    void IKernelSet.OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y) { OneHot(labels, rows, classes, y); Launched(); }

    void ISoftmaxCrossEntropyKernels.SoftmaxCrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss,
        DeviceBuffer<float> gradient)
    {
        SoftmaxCrossEntropy(logits, labels, rows, classes, loss, gradient);
        Launched();
    }

    void ISoftmaxBatchKernels.Softmaxes(IReadOnlyList<SoftmaxCall> calls)
    {
        Softmaxes(calls);
        Launched();
    }

    void IKernelSet.Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y) { Axpy(alpha, x, y); Launched(); }

    // ---- FFT ----

    void IFftKernels.Fft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n, bool inverse, float scale)
    {
        Fft(x, y, batch, n, inverse, scale);
        Launched();
    }

    void IFftKernels.Rfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n) { Rfft(x, y, batch, n); Launched(); }

    void IFftKernels.Irfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n) { Irfft(x, y, batch, n); Launched(); }

    void IFftKernels.Rfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w) { Rfft2(x, y, batch, h, w); Launched(); }

    void IFftKernels.Irfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w) { Irfft2(x, y, batch, h, w); Launched(); }

    // ---- layer normalisation ----

    void ILayerNormKernels.LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, DeviceBuffer<float> y,
        in LayerNormStats stats, LayerNormSize size, float eps)
    {
        LayerNorm(x, gamma, beta, y, stats.Mean, stats.Rstd, size.Rows, size.Cols, eps);
        Launched();
    }

    void ILayerNormKernels.LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, in LayerNormStats stats, DeviceBuffer<float> gamma,
        in LayerNormGradients gradients, LayerNormSize size)
    {
        LayerNormBackward(dy, x, stats.Mean, stats.Rstd, gamma, gradients.Dx, gradients.Dgamma, gradients.Dbeta, size.Rows, size.Cols);
        Launched();
    }

    // ---- sum-product networks ----

    void ISpnKernels.SpnLeafCategorical(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> logTable, int components,
        int categories, DeviceBuffer<float> y)
    {
        SpnLeafCategorical(x, batch, leaves.Variables, logTable, components, categories, leaves.RegionStart, leaves.EntryVariable, leaves.Regions, y);
        Launched();
    }

    void ISpnKernels.SpnLeafCategoricalBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, DeviceBuffer<float> dy, int components,
        int categories, DeviceBuffer<float> dTable)
    {
        SpnLeafCategoricalBackward(x, batch, leaves.Variables, dy, components, categories, leaves.EntryRegion, leaves.EntryVariable,
            leaves.Entries, leaves.Regions, dTable);
        Launched();
    }

    void ISpnKernels.SpnLeafGaussian(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters, int components,
        DeviceBuffer<float> y)
    {
        SpnLeafGaussian(x, batch, leaves.Variables, parameters.Mean, parameters.LogStd, components, leaves.RegionStart, leaves.EntryVariable,
            leaves.Regions, y);
        Launched();
    }

    void ISpnKernels.SpnLeafGaussianBackward(DeviceBuffer<float> x, int batch, in SpnLeafMap leaves, in SpnGaussianLeaves parameters,
        int components, DeviceBuffer<float> dy, in SpnGaussianLeaves gradients)
    {
        SpnLeafGaussianBackward(x, batch, leaves.Variables, parameters.Mean, parameters.LogStd, dy, components, leaves.EntryRegion,
            leaves.EntryVariable, leaves.Entries, leaves.Regions, gradients.Mean, gradients.LogStd);
        Launched();
    }

    void ISpnKernels.SpnProduct(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, int batch, in SpnProductMap map, DeviceBuffer<float> y)
    {
        SpnProduct(a, map.Left.ChildRegions, k1, b, map.Right.ChildRegions, k2, map.Left.Child, map.Right.Child, batch, map.Regions, y);
        Launched();
    }

    void ISpnKernels.SpnProductBackward(DeviceBuffer<float> dy, int batch, in SpnProductMap map, int k1, int k2, SpnSide side,
        DeviceBuffer<float> dChild)
    {
        SpnProductBackward(dy, batch, map, k1, k2, side, dChild);
        Launched();
    }

    void ISpnKernels.SpnSum(DeviceBuffer<float> x, DeviceBuffer<float> logW, in SpnSumSize size, bool max, DeviceBuffer<float> y)
    {
        SpnSum(x, logW, size.Batch, size.Regions, size.KIn, size.KOut, max, y);
        Launched();
    }

    void ISpnProductSumKernels.SpnProductSum(DeviceBuffer<float> a, int k1, DeviceBuffer<float> b, int k2, in SpnProductMap map, DeviceBuffer<float> logW,
        in SpnSumSize size, bool max, DeviceBuffer<float>? product, DeviceBuffer<float> y)
    {
        SpnProductSum(a, k1, b, k2, map, logW, size, max, product, y);
        Launched();
    }

    void ISpnKernels.SpnSumBackward(DeviceBuffer<float> x, DeviceBuffer<float> logW, DeviceBuffer<float> y, DeviceBuffer<float> dy,
        in SpnSumSize size, DeviceBuffer<float> dx, DeviceBuffer<float> dLogW)
    {
        SpnSumBackward(x, logW, y, dy, size.Batch, size.Regions, size.KIn, size.KOut, dx, dLogW);
        Launched();
    }

    // ---- optimizers ----

    void IOptimizerKernels.SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity, in SgdHyper hyper,
        DeviceScalar learningRate, bool firstStep)
    {
        float lr = ScalarData(learningRate, "SgdStep")[0];
        SgdStep(param, grad, velocity, lr, hyper.Momentum, hyper.Dampening, hyper.WeightDecay, hyper.Nesterov, firstStep);
        Launched();
    }

    void IOptimizerKernels.AdamStep(in AdamBuffers buffers, in AdamHyper hyper, DeviceScalar learningRate, DeviceScalar step)
    {
        const string op = "AdamStep";
        float lr = ScalarData(learningRate, op)[0];
        var t = ScalarData(step, op);
        double next = DeviceScalar.Join(t[0], t[1]) + 1;
        if (!(next >= 1 && next <= int.MaxValue))
            throw new ArgumentOutOfRangeException(nameof(step), next - 1, $"{op}: the step count must be a whole number in [0, {int.MaxValue - 1}].");
        AdamStep(buffers.Param, buffers.Grad, buffers.M, buffers.V, lr, hyper.Beta1, hyper.Beta2, hyper.Eps, hyper.WeightDecay,
            hyper.Decoupled, (int)next);
        (t[0], t[1]) = DeviceScalar.Split(next);
        Launched();
    }

    void IOptimizerKernels.SgdSteps(IReadOnlyList<SgdBuffers> buffers, in SgdHyper hyper, DeviceScalar learningRate, bool firstStep)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        float lr = ScalarData(learningRate, "SgdSteps")[0];
        SgdSteps(buffers, lr, hyper, firstStep);
        Launched();
    }

    void IOptimizerKernels.AdamSteps(IReadOnlyList<AdamBuffers> buffers, in AdamHyper hyper, DeviceScalar learningRate, IReadOnlyList<DeviceScalar> steps)
    {
        const string op = "AdamSteps";
        IOptimizerKernels.CheckAdamStepsLists(buffers, steps);
        float lr = ScalarData(learningRate, op)[0];
        var next = new int[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
        {
            var t = ScalarData(steps[i], op);
            double n = DeviceScalar.Join(t[0], t[1]) + 1;
            if (!(n >= 1 && n <= int.MaxValue))
                throw new ArgumentOutOfRangeException(nameof(steps), n - 1, $"{op}: step count {i} must be a whole number in [0, {int.MaxValue - 1}].");
            next[i] = (int)n;
        }
        AdamSteps(buffers, lr, hyper, next);
        for (int i = 0; i < buffers.Count; i++)
        {
            var t = ScalarData(steps[i], op);
            (t[0], t[1]) = DeviceScalar.Split(next[i]);
        }
        Launched();
    }

    void IOptimizerKernels.Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, DeviceScalar scale, bool squareParam)
    {
        Perturb(param, grad, backup, ScalarData(scale, "Perturb")[0], squareParam);
        Launched();
    }

    void IOptimizerKernels.Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param) { Restore(backup, param); Launched(); }

    void IOptimizerKernels.CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b)
    {
        CombineGradients(grad, grad2, a, b);
        Launched();
    }

    void IOptimizerKernels.SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights, DeviceScalar result)
    {
        SumOfSquares(buffers, weights, result);
        Launched();
    }

    void IOptimizerKernels.PerturbationScale(DeviceScalar sumOfSquares, float radius, DeviceScalar scale)
    {
        const string op = "PerturbationScale";
        var s = ScalarData(sumOfSquares, op);
        var d = ScalarData(scale, op);
        double norm = Math.Sqrt(DeviceScalar.Join(s[0], s[1]));
        d[0] = (float)(radius / (norm + 1e-12));
        d[1] = 0f;
        Launched();
    }

    /// <summary>The (hi, lo) pair behind a device scalar of this device.</summary>
    private static float[] ScalarData(DeviceScalar scalar, string op)
    {
        ArgumentNullException.ThrowIfNull(scalar);
        return Data(scalar.Buffer, 2, op);
    }
}
