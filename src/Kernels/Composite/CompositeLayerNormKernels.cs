namespace Engine.Kernels.Composite;

/// <summary>
/// <see cref="ILayerNormKernels"/> written in core reductions and broadcasts, for kernel sets without fused layer
/// normalisation: the row statistics come from two mean reductions (mean, then mean of squared deviations), the
/// rest from broadcast elementwise passes. Matches the fused kernels within float rounding of those passes (the CPU
/// set's reductions accumulate in double, ILGPU's in float).
/// </summary>
internal sealed class CompositeLayerNormKernels(IKernelSet k) : ILayerNormKernels
{
    /// <inheritdoc />
    public void LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, DeviceBuffer<float> y,
        in LayerNormStats stats, LayerNormSize size, float eps)
    {
        var (rows, cols) = Check("LayerNorm", size);
        int[] full = [rows, cols], column = [rows, 1], row = [cols];
        if (rows == 0) return;
        k.Reduce(ReduceOp.Mean, x, full, [1], stats.Mean);
        using var centred = k.Allocate((long)rows * cols);
        k.Binary(BinaryOp.Sub, x, full, stats.Mean, column, centred, full);
        using var square = k.Allocate((long)rows * cols);
        k.Unary(UnaryOp.Square, centred, square);
        k.Reduce(ReduceOp.Mean, square, full, [1], stats.Rstd);
        k.Affine(stats.Rstd, stats.Rstd, 1f, eps);
        k.Unary(UnaryOp.Sqrt, stats.Rstd, stats.Rstd);
        k.Unary(UnaryOp.Reciprocal, stats.Rstd, stats.Rstd);
        k.Binary(BinaryOp.Mul, centred, full, stats.Rstd, column, y, full);
        k.Binary(BinaryOp.Mul, y, full, gamma, row, y, full);
        k.Binary(BinaryOp.Add, y, full, beta, row, y, full);
    }

    /// <inheritdoc />
    public void LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, in LayerNormStats stats, DeviceBuffer<float> gamma,
        in LayerNormGradients gradients, LayerNormSize size)
    {
        var (rows, cols) = Check("LayerNormBackward", size);
        int[] full = [rows, cols], column = [rows, 1], row = [cols];
        long n = (long)rows * cols;
        // Column sums over zero rows are zeros; the reductions below write them.
        k.Reduce(ReduceOp.Sum, dy, full, [0], gradients.Dbeta);
        using var xhat = k.Allocate(n);
        using var tmp = k.Allocate(n);
        if (n > 0)
        {
            k.Binary(BinaryOp.Sub, x, full, stats.Mean, column, xhat, full);
            k.Binary(BinaryOp.Mul, xhat, full, stats.Rstd, column, xhat, full);
            k.Binary(BinaryOp.Mul, dy, full, xhat, full, tmp, full);
        }
        k.Reduce(ReduceOp.Sum, tmp, full, [0], gradients.Dgamma);
        if (n == 0) return;
        // dx = rstd · (dxhat - mean(dxhat) - xhat · mean(dxhat · xhat)), dxhat = dy · gamma.
        using var dxhat = k.Allocate(n);
        using var m1 = k.Allocate(rows);
        using var m2 = k.Allocate(rows);
        k.Binary(BinaryOp.Mul, dy, full, gamma, row, dxhat, full);
        k.Reduce(ReduceOp.Mean, dxhat, full, [1], m1);
        k.Binary(BinaryOp.Mul, dxhat, full, xhat, full, tmp, full);
        k.Reduce(ReduceOp.Mean, tmp, full, [1], m2);
        k.Binary(BinaryOp.Sub, dxhat, full, m1, column, gradients.Dx, full);
        k.Binary(BinaryOp.Mul, xhat, full, m2, column, tmp, full);
        k.Binary(BinaryOp.Sub, gradients.Dx, full, tmp, full, gradients.Dx, full);
        k.Binary(BinaryOp.Mul, gradients.Dx, full, stats.Rstd, column, gradients.Dx, full);
    }

    private static (int Rows, int Cols) Check(string op, LayerNormSize size)
    {
        if (size.Rows < 0 || size.Cols < 0)
            throw new ArgumentException($"{op}: negative extent (rows {size.Rows}, cols {size.Cols}).");
        return (size.Rows, size.Cols);
    }
}
