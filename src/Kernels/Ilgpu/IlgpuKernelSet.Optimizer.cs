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
    private Action<KernelConfig, SegmentTable, ArrayView<float>, SgdHyperParams, long>? kSgdSegments;
    private Action<KernelConfig, SegmentTable, ArrayView<float>, AdamHyperParams, long>? kAdamSegments;
    private Action<KernelConfig, SegmentTable>? kAdvanceSteps;
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
    /// <remarks>
    /// One launch per <see cref="SegmentTable.Capacity"/> entries, each running the same per-element arithmetic as
    /// <see cref="SgdStep"/> (so the results are bitwise those of one step per entry). Every entry is checked, and the
    /// buffers it writes are checked distinct from the other entries', before anything is launched.
    /// </remarks>
    public void SgdSteps(IReadOnlyList<SgdBuffers> buffers, in SgdHyper hyper, DeviceScalar learningRate, bool firstStep)
    {
        const string opName = "SgdSteps";
        ArgumentNullException.ThrowIfNull(buffers);
        var lr = ScalarView(learningRate, opName, nameof(learningRate));
        bool useMomentum = hyper.Momentum != 0f;
        var views = new ArrayView<float>[buffers.Count][];
        var lengths = new long[buffers.Count];
        var written = new WrittenBuffers(Name, opName);
        for (int i = 0; i < buffers.Count; i++)
        {
            var (param, grad, velocity) = buffers[i];
            var pv = View(param, 0, opName, $"{nameof(buffers)}[{i}].Param");
            var gv = View(grad, param.Length, opName, $"{nameof(buffers)}[{i}].Grad");
            var vv = pv; // never touched: the kernel reads velocity only with momentum
            written.Add(param, i, "Param");
            if (useMomentum)
            {
                if (velocity is null)
                    throw new ArgumentNullException(nameof(buffers), $"{Name}.{opName}: momentum {hyper.Momentum} needs a velocity buffer (entry {i}).");
                vv = View(velocity, param.Length, opName, $"{nameof(buffers)}[{i}].Velocity");
                written.Add(velocity, i, "Velocity");
            }
            views[i] = [pv, gv, vv];
            lengths[i] = param.Length;
        }
        var p = new SgdHyperParams
        {
            Momentum = hyper.Momentum, Dampening = hyper.Dampening, WeightDecay = hyper.WeightDecay,
            UseMomentum = useMomentum ? 1 : 0, Nesterov = hyper.Nesterov ? 1 : 0, FirstStep = firstStep ? 1 : 0,
        };
        var k = Kernel(ref kSgdSegments, a => a.LoadStreamKernel<SegmentTable, ArrayView<float>, SgdHyperParams, long>(IlgpuKernels.SgdSegments));
        foreach (var (table, total) in SegmentTables(views, lengths))
            if (total > 0) Launch(opName, () => k(Config1D(total), table, lr, p, total), buffers, learningRate);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Two launches per <see cref="SegmentTable.Capacity"/> entries: the update, each segment forming its t from its
    /// step count as <see cref="AdamStep"/> does and running the same per-element arithmetic (so the results are
    /// bitwise those of one step per entry), then one that advances the step counts. Every entry is checked, and the
    /// buffers it writes (step counts included) are checked distinct from the other entries', before anything is launched.
    /// </remarks>
    public void AdamSteps(IReadOnlyList<AdamBuffers> buffers, in AdamHyper hyper, DeviceScalar learningRate, IReadOnlyList<DeviceScalar> steps)
    {
        const string opName = "AdamSteps";
        IOptimizerKernels.CheckAdamStepsLists(buffers, steps);
        var lr = ScalarView(learningRate, opName, nameof(learningRate));
        var views = new ArrayView<float>[buffers.Count][];
        var lengths = new long[buffers.Count];
        var written = new WrittenBuffers(Name, opName);
        for (int i = 0; i < buffers.Count; i++)
        {
            var (param, grad, m, v) = buffers[i];
            string entry = $"{nameof(buffers)}[{i}]";
            var pv = View(param, 0, opName, entry + ".Param");
            views[i] = [pv, View(grad, param.Length, opName, entry + ".Grad"), View(m, param.Length, opName, entry + ".M"),
                View(v, param.Length, opName, entry + ".V"), ScalarView(steps[i], opName, $"{nameof(steps)}[{i}]")];
            lengths[i] = param.Length;
            written.Add(param, i, "Param");
            written.Add(m, i, "M");
            written.Add(v, i, "V");
            written.Add(steps[i].Buffer, i, "step count");
        }
        var p = new AdamHyperParams
        {
            Beta1 = hyper.Beta1, Beta2 = hyper.Beta2, Eps = hyper.Eps, WeightDecay = hyper.WeightDecay, Decoupled = hyper.Decoupled ? 1 : 0,
        };
        var k = Kernel(ref kAdamSegments, a => a.LoadStreamKernel<SegmentTable, ArrayView<float>, AdamHyperParams, long>(IlgpuKernels.AdamSegments));
        var advance = Kernel(ref kAdvanceSteps, a => a.LoadStreamKernel<SegmentTable>(IlgpuKernels.AdvanceSteps));
        foreach (var (table, total) in SegmentTables(views, lengths))
        {
            if (total > 0) Launch(opName, () => k(Config1D(total), table, lr, p, total), buffers, learningRate, steps);
            Launch(opName, () => advance(Config1D(table.Count), table), steps);
        }
    }

    /// <summary>
    /// The entries' views (up to five each, in the roles A to E) and lengths, <see cref="SegmentTable.Capacity"/>
    /// entries to a table, with each table's total length. Unused slots repeat the table's last entry, so every view
    /// a kernel is handed is a real one.
    /// </summary>
    private static IEnumerable<(SegmentTable Table, long Total)> SegmentTables(ArrayView<float>[][] views, long[] lengths)
    {
        for (int first = 0; first < views.Length; first += SegmentTable.Capacity)
        {
            var table = new SegmentTable { Count = Math.Min(SegmentTable.Capacity, views.Length - first) };
            long end = 0;
            for (int s = 0; s < SegmentTable.Capacity; s++)
            {
                int e = first + Math.Min(s, table.Count - 1);
                var v = views[e];
                table.A.Set(s, v[0]);
                table.B.Set(s, v[Math.Min(1, v.Length - 1)]);
                table.C.Set(s, v[Math.Min(2, v.Length - 1)]);
                table.D.Set(s, v[Math.Min(3, v.Length - 1)]);
                table.E.Set(s, v[Math.Min(4, v.Length - 1)]);
                if (s < table.Count) end += lengths[e];
                table.End.Set(s, end);
            }
            yield return (table, end);
        }
    }

    /// <summary>The buffers the entries of a multi-tensor step write, each allowed in one entry only.</summary>
    private sealed class WrittenBuffers(string set, string op)
    {
        private readonly Dictionary<object, int> entryOf = new(ReferenceEqualityComparer.Instance);

        /// <summary>Notes that entry <paramref name="entry"/> writes <paramref name="buffer"/>; throws if another entry does.</summary>
        public void Add(object buffer, int entry, string role)
        {
            if (entryOf.TryGetValue(buffer, out int other) && other != entry)
                throw new ArgumentException($"{set}.{op}: entry {entry}'s {role} is a buffer entry {other} also writes; the entries' buffers must be distinct.", "buffers");
            entryOf[buffer] = entry;
        }
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
