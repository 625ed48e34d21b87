using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

// Multi-gradient optimizers: perturb-and-save, exact restore, gradient combination (the global norm and the fused
// steps: IlgpuKernelSet.Optimizer.cs).
public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? kPerturb;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, float>? kCombineGradients;

    /// <inheritdoc />
    public void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, DeviceScalar scale, bool squareParam)
    {
        const string opName = "Perturb";
        var pv = View(param, 0, opName, nameof(param));
        var gv = View(grad, param.Length, opName, nameof(grad));
        var bv = View(backup, param.Length, opName, nameof(backup));
        var sv = ScalarView(scale, opName, nameof(scale));
        if (ReferenceEquals(param, backup))
            throw new ArgumentException($"{Name}.{opName}: the backup buffer must differ from the parameter buffer.", nameof(backup));
        if (pv.Length == 0) return;
        var k = Kernel(ref kPerturb, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(IlgpuKernels.Perturb));
        Launch(opName, () => k(Config1D(pv.Length), pv, gv, bv, sv, squareParam ? 1 : 0), param, grad, backup, scale);
    }

    /// <inheritdoc />
    public void Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param)
    {
        const string opName = "Restore";
        var pv = View(param, 0, opName, nameof(param));
        var bv = View(backup, param.Length, opName, nameof(backup));
        if (pv.Length == 0 || ReferenceEquals(param, backup)) return;
        // A plain copy of the saved bits: subtracting the perturbation again would not round back to θ.
        var from = bv.SubView(0, pv.Length);
        Launch(opName, () => from.CopyTo(pv), backup, param);
    }

    /// <inheritdoc />
    public void CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b)
    {
        const string opName = "CombineGradients";
        var gv = View(grad, 0, opName, nameof(grad));
        var g2 = View(grad2, grad.Length, opName, nameof(grad2));
        if (gv.Length == 0) return;
        var k = Kernel(ref kCombineGradients, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float, float>(IlgpuKernels.CombineGradients));
        Launch(opName, () => k(Config1D(gv.Length), gv, g2, a, b), grad, grad2);
    }
}
