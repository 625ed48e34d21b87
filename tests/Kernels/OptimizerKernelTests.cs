using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// The fused optimizer kernels (<see cref="IOptimizerKernels"/>: SGD and Adam steps, Perturb, Restore,
/// CombineGradients, SumOfSquares, PerturbationScale) against host references on awkward lengths, written once and run
/// per kernel set, both on the set's own kernels and on the composite fallback of core ops
/// (<see cref="CoreOnlyKernelSet"/>). Learning rates, step counts, norms and scales are device scalars. Tolerances:
/// <see cref="Tolerance.Arithmetic"/> for the elementwise steps (a few ulps: the composite rounds between passes where
/// the fused kernels use one fused multiply-add), and per check below.
/// </summary>
public abstract class OptimizerKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>The optimizer kernels under test: the set's own, or the composite of its core.</summary>
    protected abstract IOptimizerKernels O { get; }

    /// <summary>True for the set's own kernels, false for the composite: what the contract promises only of the former.</summary>
    protected abstract bool Fused { get; }

    /// <summary>
    /// True where the multi-tensor steps reject entries that share a buffer they write (the ILGPU set, whose entries
    /// run in parallel in one launch).
    /// </summary>
    protected virtual bool RejectsSharedEntries => false;

    /// <summary>
    /// Entry lengths of the multi-tensor tests: 1, primes, one beyond the CPU set's threading grain, and empty
    /// entries, more than one ILGPU segment table holds (8), so the ILGPU set launches more than one table.
    /// </summary>
    private static readonly int[] MultiLengths = [1, 7, 33, 32 * 1024 + 5, 3, 0, 2, 5, 11, 0, 13];

    private IKernelSet K => Device.Kernels;

    private DeviceBuffer<float> Upload(float[] data) => DeviceData.Upload(K, data);

    private static object[] Row(params object[] v) => v;

    /// <summary>SumOfSquares read back to the host.</summary>
    private double SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights = null)
    {
        using var result = new DeviceScalar(Device, double.NaN);
        O.SumOfSquares(buffers, weights, result);
        return result.Read();
    }

    /// <summary>Lengths: empty, 1, primes, around SIMD widths, and (Full tier) past the threading threshold.</summary>
    public static IEnumerable<object[]> Lengths(ShapeTier tier)
    {
        int[] ns = tier == ShapeTier.Full ? [0, 1, 7, 16, 17, 131, 1000, 65_537, 200_003] : [0, 1, 7, 17, 131];
        foreach (var n in ns) yield return Row(n);
    }

    /// <summary>Perturb saves θ bit for bit and moves it by s · g (s · θ² ⊙ g), s read from a device scalar; Restore puts it back.</summary>
    [Theory, KernelCases(nameof(Lengths))]
    public void PerturbSavesAndMoves(int n)
    {
        var rng = new Random(n + 1);
        var p = Inputs.Uniform(rng, n, -2, 2);
        var g = Inputs.Uniform(rng, n, -1, 1);
        using var scale = new DeviceScalar(Device, 0.37f);
        foreach (var square in new[] { false, true })
        {
            using var pb = Upload(p);
            using var gb = Upload(g);
            using var bb = Upload(Enumerable.Repeat(float.NaN, n).ToArray());
            O.Perturb(pb, gb, bb, scale, square);
            var expected = p.Select((x, i) => (double)x + 0.37f * (square ? (double)x * x : 1.0) * g[i]).ToArray();
            KernelAssert.Close(expected, pb.ToArray(), Tolerance.Arithmetic, $"Perturb n={n} square={square}");
            KernelAssert.Bitwise(p, bb.ToArray(), $"Perturb backup n={n}");
            KernelAssert.Bitwise(g, gb.ToArray(), $"Perturb grad unchanged n={n}");
            O.Restore(bb, pb);
            KernelAssert.Bitwise(p, pb.ToArray(), $"Restore n={n}");
        }
    }

    /// <summary>grad = a · grad + b · grad2; (0, 1) copies grad2 exactly.</summary>
    [Theory, KernelCases(nameof(Lengths))]
    public void CombineGradientsMatchesReference(int n)
    {
        var rng = new Random(n + 2);
        var g = Inputs.Uniform(rng, n, -1, 1);
        var g2 = Inputs.Uniform(rng, n, -1, 1);
        foreach (var (a, b) in new[] { (0.3f, -1.7f), (0f, 1f), (1.5f, 0f) })
        {
            using var gb = Upload(g);
            using var g2b = Upload(g2);
            O.CombineGradients(gb, g2b, a, b);
            var expected = g.Select((x, i) => (double)a * x + (double)b * g2[i]).ToArray();
            KernelAssert.Close(expected, gb.ToArray(), Tolerance.Arithmetic, $"CombineGradients n={n} a={a} b={b}");
            if (a == 0f && b == 1f) KernelAssert.Bitwise(g2, gb.ToArray(), $"CombineGradients(0, 1) copies g2 exactly, n={n}");
        }
    }

    /// <summary>
    /// Σ x², Σ (w·x)² and a mix over several buffers, into a device scalar. Fused kernels sum in double (relative
    /// 1e-12: the scalar holds 48 bits); the composite sums each buffer in float where the set does (relative 1e-6).
    /// </summary>
    [Theory, KernelCases(nameof(Lengths))]
    public void SumOfSquaresOverSeveralBuffers(int n)
    {
        var rng = new Random(n + 3);
        int[] lengths = [n, 1, n / 3 + 2];
        var xs = lengths.Select(l => Inputs.Uniform(rng, l, -3, 3)).ToArray();
        var ws = lengths.Select(l => Inputs.Uniform(rng, l, -2, 2)).ToArray();
        var xb = xs.Select(Upload).ToList();
        var wb = ws.Select(Upload).ToList();
        try
        {
            double plain = xs.Sum(x => x.Sum(v => (double)v * v));
            double weighted = 0;
            for (int k = 0; k < xs.Length; k++)
                for (int i = 0; i < xs[k].Length; i++)
                {
                    double v = (double)(xs[k][i] * ws[k][i]);
                    weighted += v * v;
                }
            // Mixed: the middle buffer unweighted.
            double mixed = weighted;
            mixed -= Math.Pow((double)(xs[1][0] * ws[1][0]), 2) - (double)xs[1][0] * xs[1][0];
            double rel = Fused ? 1e-12 : 1e-6;
            double tol(double s) => rel * s + 1e-9;
            double got = SumOfSquares(xb);
            Assert.True(Math.Abs(got - plain) <= tol(plain), $"SumOfSquares n={n}: {got:R} vs {plain:R}");
            got = SumOfSquares(xb, wb.Cast<DeviceBuffer<float>?>().ToList());
            Assert.True(Math.Abs(got - weighted) <= tol(weighted), $"weighted SumOfSquares n={n}: {got:R} vs {weighted:R}");
            got = SumOfSquares(xb, [wb[0], null, wb[2]]);
            Assert.True(Math.Abs(got - mixed) <= tol(mixed), $"mixed SumOfSquares n={n}: {got:R} vs {mixed:R}");
        }
        finally
        {
            foreach (var b in xb.Concat(wb)) b.Dispose();
        }
    }

    /// <summary>No buffers sum to 0; length mismatches and a backup aliasing the parameter are rejected.</summary>
    [Fact]
    public void SumOfSquaresOfNothingIsZeroAndMismatchesThrow()
    {
        Assert.Equal(0.0, SumOfSquares([]));
        using var a = Upload([1f, 2f, 3f]);
        using var shortW = Upload([1f]);
        using var scale = new DeviceScalar(Device, 1);
        Assert.Equal(14.0, SumOfSquares([a]), 6);
        Assert.Throws<ArgumentException>(() => SumOfSquares([a], [shortW]));
        Assert.Throws<ArgumentException>(() => SumOfSquares([a], []));
        Assert.Throws<ArgumentException>(() => O.Perturb(a, a, a, scale, false));
    }

    /// <summary>The fused norm accumulates in double: (1e4)² plus 1000 ones keeps every unit (a float sum would lose them all).</summary>
    [Fact]
    public void SumOfSquaresAccumulatesInDouble()
    {
        if (!Fused) return;
        var x = new float[1001];
        Array.Fill(x, 1f);
        x[0] = 1e4f;
        using var b = Upload(x);
        Assert.Equal(1e8 + 1000, SumOfSquares([b]));
    }

    /// <summary>
    /// SAM's scale ρ / (sqrt(s) + 1e-12) from a device scalar: the fused kernels compute it in double and round once
    /// (bitwise the formula); the composite in float (relative 1e-6).
    /// </summary>
    [Theory]
    [InlineData(0.0, 0.05f)]
    [InlineData(1e-30, 0.05f)]
    [InlineData(2.0, 0.05f)]
    [InlineData(12345.678, 2f)]
    [InlineData(3.3e30, 0.05f)]
    public void PerturbationScaleMatchesTheFormula(double sumOfSquares, float radius)
    {
        using var s = new DeviceScalar(Device, sumOfSquares);
        using var scale = new DeviceScalar(Device, double.NaN);
        O.PerturbationScale(s, radius, scale);
        double stored = DeviceScalar.Join(DeviceScalar.Split(sumOfSquares).Hi, DeviceScalar.Split(sumOfSquares).Lo);
        float expected = (float)(radius / (Math.Sqrt(stored) + 1e-12));
        double got = scale.Read();
        if (Fused) Assert.Equal(expected, (float)got);
        else Assert.True(Math.Abs(got - expected) <= 1e-6 * expected, $"scale {got:R}, expected {expected:R}");
    }

    /// <summary>SGD cases: (length, lr, momentum, dampening, weight decay, nesterov, steps).</summary>
    public static IEnumerable<object[]> SgdCases(ShapeTier tier)
    {
        yield return Row(37, 0.1f, 0f, 0f, 0f, false, 3);
        yield return Row(37, 0.05f, 0f, 0f, 0.01f, false, 3);
        yield return Row(37, 0.1f, 0.9f, 0f, 0f, false, 4);
        yield return Row(37, 0.1f, 0.9f, 0.1f, 0.01f, false, 4);
        yield return Row(37, 0.05f, 0.9f, 0f, 0.05f, true, 4);
        if (tier == ShapeTier.Full) yield return Row(100_003, 0.1f, 0.9f, 0.1f, 0.01f, true, 3);
    }

    /// <summary>
    /// Consecutive SGD steps with fresh gradients against an independently stepped reference. The velocity starts as
    /// NaN: the first step must set v = g without reading it. Momentum 0 passes a null velocity.
    /// </summary>
    [Theory, KernelCases(nameof(SgdCases))]
    public void SgdStep_OverSeveralSteps(int length, float lr, float momentum, float dampening, float weightDecay, bool nesterov, int steps)
    {
        var rng = new Random(61);
        var p = Inputs.Uniform(rng, length, -1, 1);
        float[]? v = momentum != 0 ? Enumerable.Repeat(float.NaN, length).ToArray() : null;
        using var pb = Upload(p);
        using var vb = v == null ? null : Upload(v);
        using var lrs = new DeviceScalar(Device, lr);
        for (int s = 0; s < steps; s++)
        {
            var g = Inputs.Uniform(rng, length, -1, 1);
            using var gb = Upload(g);
            O.SgdStep(pb, gb, vb, new SgdHyper(momentum, dampening, weightDecay, nesterov), lrs, firstStep: s == 0);
            HostReference.SgdStep(p, g, v, lr, momentum, dampening, weightDecay, nesterov, firstStep: s == 0);
            var what = $"SGD step {s + 1} lr={lr} momentum={momentum} dampening={dampening} wd={weightDecay} nesterov={nesterov}";
            KernelAssert.Close(p, pb.ToArray(), Tolerance.Arithmetic, what + ": param");
            if (v != null) KernelAssert.Close(v, vb!.ToArray(), Tolerance.Arithmetic, what + ": velocity");
            KernelAssert.Bitwise(g, gb.ToArray(), what + ": grad unchanged");
        }
    }

    /// <summary>Adam cases: (length, lr, beta1, beta2, eps, weight decay, decoupled, steps).</summary>
    public static IEnumerable<object[]> AdamCases(ShapeTier tier)
    {
        yield return Row(37, 1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false, 5);
        yield return Row(37, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, false, 5);
        yield return Row(37, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, true, 5);
        // Large eps and lr, small betas: eps placement, bias correction and decay all move the result visibly.
        yield return Row(37, 0.1f, 0.5f, 0.9f, 1e-2f, 0.05f, true, 4);
        yield return Row(37, 0.1f, 0.5f, 0.9f, 1e-2f, 0.05f, false, 4);
        if (tier == ShapeTier.Full) yield return Row(100_003, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, true, 3);
    }

    /// <summary>
    /// Consecutive Adam/AdamW steps with fresh gradients; m and v start at 0 and the step count at 0 on the device, where
    /// each call advances it (t = 1, 2, ...).
    /// </summary>
    [Theory, KernelCases(nameof(AdamCases))]
    public void AdamStep_OverSeveralSteps(int length, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled, int steps)
    {
        var rng = new Random(67);
        var p = Inputs.Uniform(rng, length, -1, 1);
        var m = new float[length];
        var v = new float[length];
        using var pb = Upload(p);
        using var mb = Upload(m);
        using var vb = Upload(v);
        using var lrs = new DeviceScalar(Device, lr);
        using var step = new DeviceScalar(Device);
        for (int t = 1; t <= steps; t++)
        {
            var g = Inputs.Uniform(rng, length, -1, 1);
            using var gb = Upload(g);
            O.AdamStep(new AdamBuffers(pb, gb, mb, vb), new AdamHyper(beta1, beta2, eps, weightDecay, decoupled), lrs, step);
            HostReference.AdamStep(p, g, m, v, lr, beta1, beta2, eps, weightDecay, decoupled, t);
            var what = $"{(decoupled ? "AdamW" : "Adam")} step {t} lr={lr} b1={beta1} b2={beta2} eps={eps} wd={weightDecay}";
            KernelAssert.Close(p, pb.ToArray(), Tolerance.Arithmetic, what + ": param");
            KernelAssert.Close(m, mb.ToArray(), Tolerance.Arithmetic, what + ": m");
            KernelAssert.Close(v, vb.ToArray(), Tolerance.Arithmetic, what + ": v");
            Assert.Equal(t, step.Read());
        }
    }

    /// <summary>
    /// The multi-tensor update equals one <see cref="IOptimizerKernels.AdamStep"/> per buffer set bit for bit, over
    /// awkward lengths (1, primes, one beyond the CPU set's threading grain) whose step counts differ.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdamSteps_EqualsOneStepPerBufferSet(bool decoupled)
    {
        int[] lengths = MultiLengths;
        var rng = new Random(71);
        var hyper = new AdamHyper(0.9f, 0.99f, 1e-6f, 0.01f, decoupled);
        using var lr = new DeviceScalar(Device, 0.003);
        var singles = new List<(AdamBuffers Buffers, DeviceScalar Step)>();
        var multi = new List<(AdamBuffers Buffers, DeviceScalar Step)>();
        var owned = new List<IDisposable>();
        for (int i = 0; i < lengths.Length; i++)
        {
            var p = Inputs.Uniform(rng, lengths[i], -1, 1);
            var m = Inputs.Uniform(rng, lengths[i], -0.1f, 0.1f);
            var v = Inputs.Uniform(rng, lengths[i], 0, 0.1f);
            var g = Inputs.Uniform(rng, lengths[i], -1, 1);
            foreach (var list in new[] { singles, multi })
            {
                var set = new AdamBuffers(Upload(p), Upload(g), Upload(m), Upload(v));
                var step = new DeviceScalar(Device, i * 3);
                owned.AddRange([set.Param, set.Grad, set.M, set.V, step]);
                list.Add((set, step));
            }
        }
        try
        {
            for (int round = 0; round < 2; round++)
            {
                foreach (var (set, step) in singles) O.AdamStep(set, hyper, lr, step);
                O.AdamSteps(multi.Select(x => x.Buffers).ToArray(), hyper, lr, multi.Select(x => x.Step).ToArray());
            }
            for (int i = 0; i < lengths.Length; i++)
            {
                Assert.Equal(singles[i].Step.Read(), multi[i].Step.Read());
                string what = $"set {i} ({lengths[i]} elements)";
                AssertSameBits(singles[i].Buffers.Param, multi[i].Buffers.Param, what + " param");
                AssertSameBits(singles[i].Buffers.M, multi[i].Buffers.M, what + " m");
                AssertSameBits(singles[i].Buffers.V, multi[i].Buffers.V, what + " v");
            }
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>The multi-tensor SGD update equals one <see cref="IOptimizerKernels.SgdStep"/> per buffer set bit for bit.</summary>
    [Theory]
    [InlineData(0f, false, false)]
    [InlineData(0.9f, false, true)]
    [InlineData(0.9f, true, false)]
    public void SgdSteps_EqualsOneStepPerBufferSet(float momentum, bool nesterov, bool firstStep)
    {
        int[] lengths = MultiLengths;
        var rng = new Random(73);
        var hyper = new SgdHyper(momentum, 0.1f, 0.01f, nesterov);
        using var lr = new DeviceScalar(Device, 0.05);
        var singles = new List<SgdBuffers>();
        var multi = new List<SgdBuffers>();
        var owned = new List<IDisposable>();
        foreach (int n in lengths)
        {
            var p = Inputs.Uniform(rng, n, -1, 1);
            var g = Inputs.Uniform(rng, n, -1, 1);
            var v = Inputs.Uniform(rng, n, -0.1f, 0.1f);
            foreach (var list in new[] { singles, multi })
            {
                var set = new SgdBuffers(Upload(p), Upload(g), momentum != 0f ? Upload(v) : null);
                owned.AddRange([set.Param, set.Grad]);
                if (set.Velocity != null) owned.Add(set.Velocity);
                list.Add(set);
            }
        }
        try
        {
            foreach (var set in singles) O.SgdStep(set.Param, set.Grad, set.Velocity, hyper, lr, firstStep);
            O.SgdSteps(multi.ToArray(), hyper, lr, firstStep);
            for (int i = 0; i < lengths.Length; i++)
            {
                string what = $"set {i} ({lengths[i]} elements)";
                AssertSameBits(singles[i].Param, multi[i].Param, what + " param");
                if (momentum != 0f) AssertSameBits(singles[i].Velocity!, multi[i].Velocity!, what + " velocity");
            }
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>The buffer a multi-tensor update wrote equals the one the per-buffer step wrote, bit for bit, and holds no NaN.</summary>
    private static void AssertSameBits(DeviceBuffer<float> oneByOne, DeviceBuffer<float> multiTensor, string what)
    {
        float[] expected = oneByOne.ToArray(), actual = multiTensor.ToArray();
        Assert.DoesNotContain(actual, float.IsNaN);
        for (int j = 0; j < expected.Length; j++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[j]) == BitConverter.SingleToInt32Bits(actual[j]),
                $"{what}[{j}]: multi-tensor {actual[j]:R}, one by one {expected[j]:R}");
    }

    [Fact]
    public void AdamSteps_RejectsMismatchedListsBeforeAnyWork()
    {
        using var p = Upload([1f, 2f]);
        using var g = Upload([0.5f, 0.5f]);
        using var m = Upload([0f, 0f]);
        using var v = Upload([0f, 0f]);
        using var lr = new DeviceScalar(Device, 0.1);
        var e = Assert.Throws<ArgumentException>(() => O.AdamSteps([new AdamBuffers(p, g, m, v)], new AdamHyper(), lr, []));
        Assert.Contains("AdamSteps: 1 buffer sets but 0 step counts", e.Message);
        Assert.Equal([1f, 2f], p.ToArray());
    }

    /// <summary>An entry without the velocity momentum needs is rejected, naming the method, before any entry is updated.</summary>
    [Fact]
    public void SgdSteps_RejectsAMissingVelocityBeforeAnyWork()
    {
        if (!Fused) return; // the composite runs the entries one by one, so the earlier ones are updated by then
        using var p0 = Upload([1f, 2f]);
        using var v0 = Upload([0f, 0f]);
        using var p1 = Upload([3f]);
        using var g = Upload([0.5f, 0.5f]);
        using var lr = new DeviceScalar(Device, 0.1);
        var e = Assert.Throws<ArgumentNullException>(() =>
            O.SgdSteps([new SgdBuffers(p0, g, v0), new SgdBuffers(p1, g)], new SgdHyper(Momentum: 0.9f), lr, firstStep: false));
        Assert.Contains("SgdSteps", e.Message);
        Assert.Contains("entry 1", e.Message);
        Assert.Equal([1f, 2f], p0.ToArray());
        Assert.Equal([0f, 0f], v0.ToArray());
    }

    /// <summary>Two entries that write one buffer (a parameter, a step count) are rejected, naming the method, before any work.</summary>
    [Theory]
    [InlineData("param")]
    [InlineData("step")]
    public void AdamSteps_RejectsEntriesSharingABufferBeforeAnyWork(string shared)
    {
        if (!RejectsSharedEntries) return;
        using var p0 = Upload([1f, 2f]);
        using var p1 = Upload([3f, 4f]);
        using var g = Upload([0.5f, 0.5f]);
        using var m0 = Upload([0f, 0f]);
        using var v0 = Upload([0f, 0f]);
        using var m1 = Upload([0f, 0f]);
        using var v1 = Upload([0f, 0f]);
        using var lr = new DeviceScalar(Device, 0.1);
        using var s0 = new DeviceScalar(Device, 0);
        using var s1 = new DeviceScalar(Device, 0);
        var second = new AdamBuffers(shared == "param" ? p0 : p1, g, m1, v1);
        var e = Assert.Throws<ArgumentException>(() =>
            O.AdamSteps([new AdamBuffers(p0, g, m0, v0), second], new AdamHyper(), lr, [s0, shared == "step" ? s0 : s1]));
        Assert.Contains("AdamSteps", e.Message);
        Assert.Contains("distinct", e.Message);
        Assert.Equal([1f, 2f], p0.ToArray());
        Assert.Equal([3f, 4f], p1.ToArray());
        Assert.Equal(0.0, s0.Read());
    }
}

/// <summary>The CPU set's fused optimizer kernels on the full lengths (threading threshold and SIMD tails).</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuOptimizerKernelTests : OptimizerKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override IOptimizerKernels O => Device.Kernels.OptimizerKernels();

    /// <inheritdoc />
    protected override bool Fused => true;
}

/// <summary>The composite optimizer kernels over the CPU set's core ops (small lengths: the core ops' large paths have their own tests).</summary>
[ShapeTier(ShapeTier.Small)]
public sealed class CpuCompositeOptimizerKernelTests : OptimizerKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override IOptimizerKernels O => CoreOnlyKernelSet.Of(Device.Kernels).OptimizerKernels();

    /// <inheritdoc />
    protected override bool Fused => false;
}

/// <summary>The ILGPU set's fused optimizer kernels on its CPU emulator (small lengths; the "ilgpu" collection runs one kernel at a time).</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuOptimizerKernelTests : OptimizerKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override IOptimizerKernels O => Device.Kernels.OptimizerKernels();

    /// <inheritdoc />
    protected override bool Fused => true;

    /// <inheritdoc />
    protected override bool RejectsSharedEntries => true;
}

/// <summary>The composite optimizer kernels over the ILGPU set's core ops on the CPU emulator, small lengths.</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuCompositeOptimizerKernelTests : OptimizerKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override IOptimizerKernels O => CoreOnlyKernelSet.Of(Device.Kernels).OptimizerKernels();

    /// <inheritdoc />
    protected override bool Fused => false;
}
