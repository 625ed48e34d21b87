using Engine.Autodiff;
using Engine.Kernels;
using Engine.Tests.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// The public in-place operations against host references on awkward lengths, per kernel set, with destinations
/// pre-filled with NaN where they are pure outputs; and their host-side checks.
/// </summary>
public abstract class InPlaceTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private static object[] Row(params object[] v) => v;

    /// <summary>Every elementwise in-place op on lengths 1, primes and (Full tier) past SIMD widths and threads.</summary>
    public static IEnumerable<object[]> Cases(ShapeTier tier)
    {
        int[] ns = tier == ShapeTier.Full ? [1, 7, 17, 131, 65_537] : [1, 7, 17];
        string[] ops = ["fill", "copy", "scale", "axpy", "multiply-scalar", "multiply-row", "maximum-scalar", "minimum-row", "clamp"];
        foreach (var op in ops)
            foreach (var n in ns) yield return Row(op, n);
    }

    [Theory, KernelCases(nameof(Cases))]
    public void MatchesTheHostReference(string op, int n)
    {
        var rng = new Random(n * 31 + op.Length);
        var x = Inputs.Uniform(rng, 3 * n, -2, 2);
        var other = Inputs.Uniform(rng, 3 * n, -2, 2);
        var row = Inputs.Uniform(rng, n, -2, 2);
        using var t = Tensor.FromArray(op is "fill" or "copy" ? Enumerable.Repeat(float.NaN, 3 * n).ToArray() : x, [3, n], Device);
        using var o = Tensor.FromArray(other, [3, n], Device);
        using var r = Tensor.FromArray(row, [n], Device);
        using var s = Tensor.Scalar(0.75f, Device);
        float[] expected = new float[3 * n];
        for (int i = 0; i < expected.Length; i++)
            expected[i] = op switch
            {
                "fill" => 2.5f,
                "copy" => other[i],
                "scale" => x[i] * -1.25f,
                "axpy" => (float)(x[i] + (double)0.3f * other[i]),
                "multiply-scalar" => x[i] * 0.75f,
                "multiply-row" => x[i] * row[i % n],
                "maximum-scalar" => Math.Max(x[i], 0.75f),
                "minimum-row" => Math.Min(x[i], row[i % n]),
                _ => Math.Clamp(x[i], -0.5f, 1.25f),
            };
        switch (op)
        {
            case "fill": InPlace.Fill(t, 2.5f); break;
            case "copy": InPlace.Copy(o, t); break;
            case "scale": InPlace.Scale(t, -1.25f); break;
            case "axpy": InPlace.Axpy(0.3f, o, t); break;
            case "multiply-scalar": InPlace.Multiply(t, s); break;
            case "multiply-row": InPlace.Multiply(t, r); break;
            case "maximum-scalar": InPlace.Maximum(t, s); break;
            case "minimum-row": InPlace.Minimum(t, r); break;
            default: InPlace.Clamp(t, -0.5f, 1.25f); break;
        }
        var actual = t.ToArray();
        for (int i = 0; i < actual.Length; i++)
            // Exact but for axpy, whose product may or may not be fused: one rounding of the inputs' scale (|x| <= 2).
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * (Math.Abs(expected[i]) + 2),
                $"{op} n={n}: element {i} is {actual[i]}, expected {expected[i]}");
    }

    [Fact]
    public void FusedStepsAgreeWithTheirKernels()
    {
        var rng = new Random(5);
        float[] p = Inputs.Uniform(rng, 13, -1, 1), g = Inputs.Uniform(rng, 13, -1, 1);
        var k = Device.Kernels;
        using var pt = Tensor.FromArray(p, [13], Device);
        using var gt = Tensor.FromArray(g, [13], Device);
        using var m = Tensor.Zeros([13], Device);
        using var v = Tensor.Zeros([13], Device);
        InPlace.AdamStep(pt, gt, m, v, new AdamHyperParameters(0.1f, 0.9f, 0.99f, 1e-8f, 0.01f, true), 1);
        using var pb = k.Allocate(13);
        using var gb = k.Allocate(13);
        using var mb = k.Allocate(13);
        using var vb = k.Allocate(13);
        pb.CopyFromHost(p);
        gb.CopyFromHost(g);
        k.Fill(mb, 0f);
        k.Fill(vb, 0f);
        using var lr = new DeviceScalar(Device, 0.1f);
        using var count = new DeviceScalar(Device, 0);
        k.OptimizerKernels().AdamStep(new AdamBuffers(pb, gb, mb, vb), new AdamHyper(0.9f, 0.99f, 1e-8f, 0.01f, true), lr, count);
        Assert.Equal(1.0, count.Read());
        Assert.Equal(pb.ToArray(), pt.ToArray());
        Assert.Equal(mb.ToArray(), m.ToArray());

        using var vel = Tensor.Zeros([13], Device);
        InPlace.SgdStep(pt, gt, vel, new SgdHyperParameters(0.1f, 0.9f, 0f, 0f, true), firstStep: true);
        using var velb = k.Allocate(13);
        k.OptimizerKernels().SgdStep(pb, gb, velb, new SgdHyper(0.9f, 0f, 0f, true), lr, true);
        Assert.Equal(pb.ToArray(), pt.ToArray());

        using var backup = Tensor.Full([13], float.NaN, Device);
        InPlace.Perturb(pt, gt, backup, 0.5f, squareParameter: true);
        Assert.Equal(pb.ToArray(), backup.ToArray());
        InPlace.CombineGradients(gt, pt, 2f, -1f);
        InPlace.Restore(backup, pt);
        Assert.Equal(pb.ToArray(), pt.ToArray());
        double expected = g.Zip(p).Sum(z => Math.Pow((double)z.First * z.Second, 2));
        using var g0 = Tensor.FromArray(g, [13], Device);
        using var p0 = Tensor.FromArray(p, [13], Device);
        Assert.Equal(expected, InPlace.SumOfSquares([g0], [p0]), 1e-6);
    }

    /// <summary>
    /// The overloads that take device scalars give the bits of the ones that take host values: two Adam steps on one
    /// advancing count scalar, an SGD step, a perturbation by a scale that <see cref="InPlace.PerturbationScale"/>
    /// formed from <see cref="InPlace.SumOfSquares(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, DeviceScalar)"/>'s sum.
    /// </summary>
    [Fact]
    public void DeviceScalarOverloadsMatchTheHostValueOnes()
    {
        var rng = new Random(11);
        float[] p = Inputs.Uniform(rng, 29, -1, 1), g = Inputs.Uniform(rng, 29, -1, 1), g2 = Inputs.Uniform(rng, 29, -1, 1);
        using var gt = Tensor.FromArray(g, [29], Device);
        using var g2t = Tensor.FromArray(g2, [29], Device);
        using var hostP = Tensor.FromArray(p, [29], Device);
        using var devP = Tensor.FromArray(p, [29], Device);
        using var hostM = Tensor.Zeros([29], Device);
        using var hostV = Tensor.Zeros([29], Device);
        using var devM = Tensor.Zeros([29], Device);
        using var devV = Tensor.Zeros([29], Device);
        using var lr = new DeviceScalar(Device, 0.05f);
        using var count = new DeviceScalar(Device, 0);
        var adam = new AdamHyperParameters(0.05f, 0.9f, 0.99f, 1e-8f, 0.01f, false);
        InPlace.AdamStep(hostP, gt, hostM, hostV, adam, 1);
        InPlace.AdamStep(hostP, g2t, hostM, hostV, adam, 2);
        var adamHyper = new AdamHyper(adam.Beta1, adam.Beta2, adam.Eps, adam.WeightDecay, adam.Decoupled);
        InPlace.AdamStep(devP, gt, devM, devV, adamHyper, lr, count);
        InPlace.AdamStep(devP, g2t, devM, devV, adamHyper, lr, count);
        Assert.Equal(2.0, count.Read());
        KernelAssert.Bitwise(hostP.ToArray(), devP.ToArray(), "Adam parameters");
        KernelAssert.Bitwise(hostV.ToArray(), devV.ToArray(), "Adam second moments");

        using var hostVel = Tensor.Zeros([29], Device);
        using var devVel = Tensor.Zeros([29], Device);
        InPlace.SgdStep(hostP, gt, hostVel, new SgdHyperParameters(0.05f, 0.9f, 0.1f, 0.01f, false), firstStep: true);
        InPlace.SgdStep(devP, gt, devVel, new SgdHyper(0.9f, 0.1f, 0.01f, false), lr, firstStep: true);
        KernelAssert.Bitwise(hostP.ToArray(), devP.ToArray(), "SGD parameters");

        using var sum = new DeviceScalar(Device);
        InPlace.SumOfSquares([gt, g2t], [devP, null], sum);
        double hostSum = InPlace.SumOfSquares([gt, g2t], [hostP, null]);
        Assert.Equal(hostSum, sum.Read());
        using var scale = new DeviceScalar(Device);
        InPlace.PerturbationScale(sum, 0.5f, scale);
        float hostScale = (float)(0.5 / (Math.Sqrt(hostSum) + 1e-12));
        Assert.Equal(hostScale, scale.Read());
        using var hostBackup = Tensor.Full([29], float.NaN, Device);
        using var devBackup = Tensor.Full([29], float.NaN, Device);
        InPlace.Perturb(hostP, gt, hostBackup, hostScale, squareParameter: true);
        InPlace.Perturb(devP, gt, devBackup, scale, squareParameter: true);
        KernelAssert.Bitwise(hostP.ToArray(), devP.ToArray(), "perturbed parameters");
        KernelAssert.Bitwise(hostBackup.ToArray(), devBackup.ToArray(), "saved parameters");
    }

    /// <summary>Device scalars that are disposed, on another device, or a radius that is not finite are refused on the host, naming the op.</summary>
    [Fact]
    public void BadDeviceScalarsAreRefusedOnTheHostNamingTheOp()
    {
        var elsewhere = Device == Device.Cpu ? Device.Get(DeviceKind.IlgpuCpu) : Device.Cpu;
        using var a = Tensor.Zeros([2, 3], Device);
        using var here = new DeviceScalar(Device, 1);
        using var there = new DeviceScalar(elsewhere, 1);
        var dead = new DeviceScalar(Device, 1);
        dead.Dispose();
        var before = a.ToArray();
        Assert.Contains("InPlace.SgdStep: the learningRate scalar lives on", Assert.Throws<ArgumentException>(() =>
            InPlace.SgdStep(a, a, null, new SgdHyper(), there, true)).Message);
        Assert.Contains("InPlace.AdamStep: the step scalar lives on", Assert.Throws<ArgumentException>(() =>
            InPlace.AdamStep(a, a, a, a, new AdamHyper(), here, there)).Message);
        Assert.Contains("InPlace.AdamStep: the learningRate scalar was used after it was disposed", Assert.Throws<ObjectDisposedException>(() =>
            InPlace.AdamStep(a, a, a, a, new AdamHyper(), dead, here)).Message);
        Assert.Contains("InPlace.Perturb: the scale scalar lives on", Assert.Throws<ArgumentException>(() =>
            InPlace.Perturb(a, a, a, there, false)).Message);
        Assert.Contains("InPlace.SumOfSquares: tensor [2, 3] lives on", Assert.Throws<ArgumentException>(() =>
            InPlace.SumOfSquares([a], null, there)).Message);
        Assert.Contains("InPlace.PerturbationScale: the sum of squares lives on", Assert.Throws<ArgumentException>(() =>
            InPlace.PerturbationScale(there, 1f, here)).Message);
        Assert.Contains("InPlace.PerturbationScale: the radius must be finite, got NaN", Assert.Throws<ArgumentOutOfRangeException>(() =>
            InPlace.PerturbationScale(here, float.NaN, here)).Message);
        KernelAssert.Bitwise(before, a.ToArray(), "the refused ops' tensor");
        Assert.Equal(1.0, here.Read());
    }

    [Fact]
    public void BadOperandsAreRefusedOnTheHostNamingTheOp()
    {
        using var a = Tensor.Zeros([2, 3], Device);
        using var b = Tensor.Zeros([3, 2], Device);
        using var row = Tensor.Zeros([2], Device);
        Assert.Contains("InPlace.Copy: [3, 2] does not match [2, 3]", Assert.Throws<ArgumentException>(() => InPlace.Copy(b, a)).Message);
        Assert.Contains("InPlace.Axpy", Assert.Throws<ArgumentException>(() => InPlace.Axpy(1f, a, b)).Message);
        Assert.Contains("InPlace.Multiply: [2] does not broadcast to [2, 3]", Assert.Throws<ArgumentException>(() => InPlace.Multiply(a, row)).Message);
        Assert.Contains("min (1) must be <= max (0)", Assert.Throws<ArgumentException>(() => InPlace.Clamp(a, 1f, 0f)).Message);
        Assert.Contains("needs a velocity", Assert.Throws<ArgumentException>(() =>
            InPlace.SgdStep(a, a, null, new SgdHyperParameters(0.1f, 0.9f, 0f, 0f, false), true)).Message);
        Assert.Contains("the step must be in [1,", Assert.Throws<ArgumentOutOfRangeException>(() =>
            InPlace.AdamStep(a, a, a, a, new AdamHyperParameters(0.1f, 0.9f, 0.99f, 1e-8f, 0f, false), 0)).Message);
        var dead = Tensor.Zeros([2, 3], Device);
        dead.Dispose();
        Assert.Throws<ObjectDisposedException>(() => InPlace.Fill(dead, 1f));
        using var other = Tensor.Zeros([2, 3], Device == Device.Cpu ? Device.Get(DeviceKind.IlgpuCpu) : Device.Cpu);
        Assert.Contains("different devices", Assert.Throws<ArgumentException>(() => InPlace.Copy(other, a)).Message);
    }
}

/// <summary>The CPU SIMD set, full tables.</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuInPlaceTests : InPlaceTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Cpu;
}

/// <summary>The ILGPU set on its CPU emulator (small lengths; the "ilgpu" collection runs one kernel at a time).</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuInPlaceTests : InPlaceTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
