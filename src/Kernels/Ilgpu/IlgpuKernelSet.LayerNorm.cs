using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>? kLayerNorm;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>? kLayerNormGroup;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kLayerNormBackRows;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kLayerNormBackRowsGroup;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kLayerNormBackParams;

    /// <inheritdoc />
    internal void LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, DeviceBuffer<float> y,
        DeviceBuffer<float> mean, DeviceBuffer<float> rstd, int rows, int cols, float eps)
    {
        const string opName = "LayerNorm";
        if (rows < 0 || cols < 0) throw new ArgumentException($"{Name}.{opName}: negative extent [{rows}, {cols}].");
        long count = (long)rows * cols;
        var xv = View(x, count, opName, nameof(x));
        var gv = View(gamma, cols, opName, nameof(gamma));
        var bv = View(beta, cols, opName, nameof(beta));
        var yv = View(y, count, opName, nameof(y));
        var mv = View(mean, rows, opName, nameof(mean));
        var rv = View(rstd, rows, opName, nameof(rstd));
        if (rows == 0) return;
        if (cols == 0)
        {
            FillView(mv.SubView(0, rows), float.NaN, opName, mean);
            FillView(rv.SubView(0, rows), float.NaN, opName, rstd);
            return;
        }
        if (PreferTree(rows, cols))
        {
            var k = Kernel(ref kLayerNormGroup, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(IlgpuKernels.LayerNormGroup));
            Launch(opName, () => k(ConfigTree(rows, cols), xv, gv, bv, yv, mv, rv, rows, cols, eps), x, gamma, beta, y, mean, rstd);
        }
        else
        {
            var k = Kernel(ref kLayerNorm, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(IlgpuKernels.LayerNorm));
            Launch(opName, () => k(Config1D(rows), xv, gv, bv, yv, mv, rv, rows, cols, eps), x, gamma, beta, y, mean, rstd);
        }
    }

    /// <inheritdoc />
    internal void LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, DeviceBuffer<float> mean, DeviceBuffer<float> rstd,
        DeviceBuffer<float> gamma, DeviceBuffer<float> dx, DeviceBuffer<float> dgamma, DeviceBuffer<float> dbeta, int rows, int cols)
    {
        const string opName = "LayerNormBackward";
        if (rows < 0 || cols < 0) throw new ArgumentException($"{Name}.{opName}: negative extent [{rows}, {cols}].");
        long count = (long)rows * cols;
        var dyv = View(dy, count, opName, nameof(dy));
        var xv = View(x, count, opName, nameof(x));
        var mv = View(mean, rows, opName, nameof(mean));
        var rv = View(rstd, rows, opName, nameof(rstd));
        var gv = View(gamma, cols, opName, nameof(gamma));
        var dxv = View(dx, count, opName, nameof(dx));
        var dgv = View(dgamma, cols, opName, nameof(dgamma));
        var dbv = View(dbeta, cols, opName, nameof(dbeta));
        if (cols == 0) return;
        if (rows == 0)
        {
            FillView(dgv.SubView(0, cols), 0f, opName, dgamma);
            FillView(dbv.SubView(0, cols), 0f, opName, dbeta);
            return;
        }
        if (PreferTree(rows, cols))
        {
            var k = Kernel(ref kLayerNormBackRowsGroup, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.LayerNormBackwardRowsGroup));
            Launch(opName, () => k(ConfigTree(rows, cols), dyv, xv, mv, rv, gv, dxv, rows, cols), dy, x, mean, rstd, gamma, dx);
        }
        else
        {
            var k = Kernel(ref kLayerNormBackRows, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.LayerNormBackwardRows));
            Launch(opName, () => k(Config1D(rows), dyv, xv, mv, rv, gv, dxv, rows, cols), dy, x, mean, rstd, gamma, dx);
        }
        var kp = Kernel(ref kLayerNormBackParams, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.LayerNormBackwardParams));
        Launch(opName, () => kp(Config1D(cols), dyv, xv, mv, rv, dgv, dbv, rows, cols), dy, x, mean, rstd, dgamma, dbeta);
    }
}
