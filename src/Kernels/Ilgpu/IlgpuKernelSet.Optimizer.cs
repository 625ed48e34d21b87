using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;

namespace Engine.Kernels.Ilgpu;

// Fused optimizer steps, the global squared norm and SAM's perturbation scale, reading and writing device scalars.
public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdHyperParams>? kSgd;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamHyperParams>? kAdam;
    private Action<KernelConfig, ArrayView<float>>? kAdvanceStep;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<double>, long, int, long>? kSquaresLanes;
    private Action<KernelConfig, ArrayView<double>, ArrayView<float>, int>? kSquaresCombine;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int, long>? kSquaresLanesDf;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>? kSquaresCombineDf;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float>? kScale;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, float, float>? kScaleDf;
    private bool? doubleFloat;

    /// <summary>
    /// True when the norm and perturbation-scale kernels compute in two-float arithmetic instead of double: on an
    /// OpenCL device without fp64 (cl_khr_fp64), where it is the only choice. Tests set it on the CPU emulator to run
    /// that path (results within 2^-38 relative of the double path; see <see cref="SumOfSquaresOrder"/>).
    /// </summary>
    public bool UsesDoubleFloat
    {
        get => doubleFloat ??= accelerator.Capabilities is CLCapabilityContext cl && !cl.Float64;
        internal set => doubleFloat = value;
    }

    /// <summary>The (hi, lo) view behind a device scalar of this accelerator.</summary>
    private ArrayView<float> ScalarView(DeviceScalar scalar, string op, string name)
    {
        ArgumentNullException.ThrowIfNull(scalar, name);
        return View(scalar.Buffer, 2, op, name);
    }

    /// <inheritdoc />
    public void SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity, in SgdHyper hyper,
        DeviceScalar learningRate, bool firstStep)
    {
        const string opName = "SgdStep";
        var pv = View(param, 0, opName, nameof(param));
        var gv = View(grad, param.Length, opName, nameof(grad));
        var lr = ScalarView(learningRate, opName, nameof(learningRate));
        bool useMomentum = hyper.Momentum != 0f;
        ArrayView<float> vv;
        if (useMomentum)
        {
            if (velocity is null)
                throw new ArgumentNullException(nameof(velocity), $"{Name}.{opName}: momentum {hyper.Momentum} needs a velocity buffer.");
            vv = View(velocity, param.Length, opName, nameof(velocity));
        }
        else
        {
            vv = pv; // never touched: the kernel reads velocity only with momentum
        }
        if (pv.Length == 0) return;
        var p = new SgdHyperParams
        {
            Momentum = hyper.Momentum, Dampening = hyper.Dampening, WeightDecay = hyper.WeightDecay,
            UseMomentum = useMomentum ? 1 : 0, Nesterov = hyper.Nesterov ? 1 : 0, FirstStep = firstStep ? 1 : 0,
        };
        var k = Kernel(ref kSgd, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdHyperParams>(IlgpuKernels.Sgd));
        Launch(opName, () => k(Config1D(pv.Length), pv, gv, vv, lr, p), param, grad, velocity, learningRate);
    }

    /// <inheritdoc />
    public void AdamStep(in AdamBuffers buffers, in AdamHyper hyper, DeviceScalar learningRate, DeviceScalar step)
    {
        const string opName = "AdamStep";
        var (param, grad, m, v) = buffers;
        var pv = View(param, 0, opName, "param");
        var gv = View(grad, param.Length, opName, "grad");
        var mv = View(m, param.Length, opName, "m");
        var vv = View(v, param.Length, opName, "v");
        var lr = ScalarView(learningRate, opName, nameof(learningRate));
        var sv = ScalarView(step, opName, nameof(step));
        var advance = Kernel(ref kAdvanceStep, a => a.LoadStreamKernel<ArrayView<float>>(IlgpuKernels.AdvanceStep));
        Launch(opName, () => advance(new KernelConfig(1, 1), sv), step);
        if (pv.Length == 0) return;
        var p = new AdamHyperParams
        {
            Beta1 = hyper.Beta1, Beta2 = hyper.Beta2, Eps = hyper.Eps, WeightDecay = hyper.WeightDecay, Decoupled = hyper.Decoupled ? 1 : 0,
        };
        var k = Kernel(ref kAdam, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, AdamHyperParams>(IlgpuKernels.Adam));
        Launch(opName, () => k(Config1D(pv.Length), pv, gv, mv, vv, lr, sv, p), param, grad, m, v, learningRate, step);
    }

    /// <inheritdoc />
    public void SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights, DeviceScalar result)
    {
        const string opName = "SumOfSquares";
        ArgumentNullException.ThrowIfNull(buffers);
        if (weights != null && weights.Count != buffers.Count)
            throw new ArgumentException($"{Name}.{opName}: {weights.Count} weight entries for {buffers.Count} buffers.", nameof(weights));
        var rv = ScalarView(result, opName, nameof(result));
        var xs = new ArrayView<float>[buffers.Count];
        var ws = new ArrayView<float>?[buffers.Count];
        long blocks = 0;
        var firstBlock = new long[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
        {
            xs[i] = View(buffers[i], 0, opName, nameof(buffers));
            var w = weights?[i];
            ws[i] = w == null ? null : View(w, buffers[i].Length, opName, nameof(weights));
            firstBlock[i] = blocks;
            blocks += SumOfSquaresOrder.Blocks(buffers[i].Length);
        }
        if (blocks > int.MaxValue / SumOfSquaresOrder.Lanes)
            throw new ArgumentException($"{Name}.{opName}: {blocks} blocks of {SumOfSquaresOrder.Block} elements exceed what one combine launch indexes.");
        bool df = UsesDoubleFloat;
        long laneCount = blocks * SumOfSquaresOrder.Lanes;
        using var lanes = df ? (IDisposable)Scratch<float>(2 * Math.Max(1, laneCount)) : Scratch<double>(Math.Max(1, laneCount));
        for (int i = 0; i < xs.Length; i++)
        {
            var x = xs[i];
            var w = ws[i] ?? x;
            long n = buffers[i].Length, offset = firstBlock[i] * SumOfSquaresOrder.Lanes;
            int weighted = ws[i] == null ? 0 : 1;
            if (n == 0) continue;
            var config = Config1D(SumOfSquaresOrder.Blocks(n) * SumOfSquaresOrder.Lanes);
            if (df)
            {
                var lv = ((IlgpuBuffer<float>)lanes).View;
                var k = Kernel(ref kSquaresLanesDf, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int, long>(IlgpuKernels.SquaresLanesDoubleFloat));
                Launch(opName, () => k(config, x, w, lv, n, weighted, offset), buffers[i], weights?[i], lanes);
            }
            else
            {
                var lv = ((IlgpuBuffer<double>)lanes).View;
                var k = Kernel(ref kSquaresLanes, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<double>, long, int, long>(IlgpuKernels.SquaresLanes));
                Launch(opName, () => k(config, x, w, lv, n, weighted, offset), buffers[i], weights?[i], lanes);
            }
        }
        var one = new KernelConfig(new Index1D(1), new Index1D(treeGroupSize));
        int count = (int)blocks;
        if (df)
        {
            var lv = ((IlgpuBuffer<float>)lanes).View;
            var k = Kernel(ref kSquaresCombineDf, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(IlgpuKernels.SquaresCombineDoubleFloat));
            Launch(opName, () => k(one, lv, rv, count), lanes, result);
        }
        else
        {
            var lv = ((IlgpuBuffer<double>)lanes).View;
            var k = Kernel(ref kSquaresCombine, a => a.LoadStreamKernel<ArrayView<double>, ArrayView<float>, int>(IlgpuKernels.SquaresCombine));
            Launch(opName, () => k(one, lv, rv, count), lanes, result);
        }
    }

    /// <inheritdoc />
    public void PerturbationScale(DeviceScalar sumOfSquares, float radius, DeviceScalar scale)
    {
        const string opName = "PerturbationScale";
        var sv = ScalarView(sumOfSquares, opName, nameof(sumOfSquares));
        var dv = ScalarView(scale, opName, nameof(scale));
        var one = new KernelConfig(1, 1);
        if (UsesDoubleFloat)
        {
            var (tinyHi, tinyLo) = DeviceScalar.Split(1e-12);
            var k = Kernel(ref kScaleDf, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float, float, float>(IlgpuKernels.PerturbationScaleDoubleFloat));
            Launch(opName, () => k(one, sv, dv, radius, tinyHi, tinyLo), sumOfSquares, scale);
        }
        else
        {
            var k = Kernel(ref kScale, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(IlgpuKernels.PerturbationScale));
            Launch(opName, () => k(one, sv, dv, radius), sumOfSquares, scale);
        }
    }

    /// <summary>Device memory for a kernel's intermediate values (counted by the device's counters; dispose after the launches).</summary>
    private IlgpuBuffer<T> Scratch<T>(long length) where T : unmanaged
    {
        lock (gate)
        {
            ThrowIfDisposed("Scratch");
            return new IlgpuBuffer<T>(this, pool, length);
        }
    }
}
