using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

// Multi-gradient optimizers (issue 6): perturb-and-save, exact restore, gradient combination, global norm.
public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int>? kPerturb;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, float>? kCombineGradients;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int, int>? kSumOfSquares;

    /// <inheritdoc />
    public void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, float scale, bool squareParam)
    {
        const string opName = "Perturb";
        var pv = View(param, 0, opName, nameof(param));
        var gv = View(grad, param.Length, opName, nameof(grad));
        var bv = View(backup, param.Length, opName, nameof(backup));
        if (ReferenceEquals(param, backup))
            throw new ArgumentException($"{Name}.{opName}: the backup buffer must differ from the parameter buffer.", nameof(backup));
        if (pv.Length == 0) return;
        var k = Kernel(ref kPerturb, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int>(IlgpuKernels.Perturb));
        Launch(opName, () => k(Config1D(pv.Length), pv, gv, bv, scale, squareParam ? 1 : 0), param, grad, backup);
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

    /// <inheritdoc />
    public double SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights = null)
    {
        const string opName = "SumOfSquares";
        ArgumentNullException.ThrowIfNull(buffers);
        if (weights != null && weights.Count != buffers.Count)
            throw new ArgumentException($"{Name}.{opName}: {weights.Count} weight entries for {buffers.Count} buffers.", nameof(weights));
        var xs = new ArrayView<float>[buffers.Count];
        var ws = new ArrayView<float>?[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
        {
            xs[i] = View(buffers[i], 0, opName, nameof(buffers));
            var w = weights?[i];
            ws[i] = w == null ? null : View(w, buffers[i].Length, opName, nameof(weights));
        }
        // One group count for every buffer, so buffer k's partials sit at k·groups; the host adds them in double.
        int groups = maxGroups;
        var config = new KernelConfig(new Index1D(groups), new Index1D(treeGroupSize));
        using var partials = (IlgpuBuffer<float>)Allocate((long)groups * Math.Max(1, buffers.Count));
        var part = partials.View;
        var k = Kernel(ref kSumOfSquares, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int, int>(IlgpuKernels.SumOfSquaresGroup));
        for (int i = 0; i < xs.Length; i++)
        {
            var x = xs[i];
            var w = ws[i] ?? x;
            int offset = i * groups;
            long n = buffers[i].Length;
            Launch(opName, () => k(config, x, w, part, n, ws[i] == null ? 0 : 1, offset), buffers[i], weights?[i], partials);
        }
        if (xs.Length == 0) return 0;
        var host = partials.ToArray();
        double total = 0;
        foreach (var v in host) total += v;
        return total;
    }
}
