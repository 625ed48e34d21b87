using Engine.Kernels;
using Engine.Kernels.Ilgpu;

namespace Engine.Tests.Kernels;

/// <summary>
/// The squared global norm and SAM's perturbation scale are bitwise the same on both kernel sets: each follows the
/// one summation order <see cref="SumOfSquaresOrder"/> fixes (checked against a plain-loop implementation of that
/// order here), on awkward lengths (1, primes, block edges, 10^5 + 3), several buffers and weights. Inputs include
/// values whose squares underflow float (1e-20), which a float accumulation loses. The double-float path for devices
/// without fp64 runs on the emulator and is checked against the double result within its stated 2^-38.
/// </summary>
[Collection("ilgpu")]
public sealed class SumOfSquaresOrderTests
{
    private static Device CpuDevice => Device.Get(DeviceKind.Cpu);
    private static Device IlgpuDevice => Device.Get(DeviceKind.IlgpuCpu);
    private static IKernelSet Cpu => CpuDevice.Kernels;
    private static IKernelSet Ilgpu => IlgpuDevice.Kernels;

    /// <summary>Buffer lengths of each case (several entries: several buffers).</summary>
    public static IEnumerable<object[]> Cases() =>
    [
        [new[] { 1 }],
        [new[] { 2 }],
        [new[] { 31 }],
        [new[] { 33 }],
        [new[] { 4095 }],
        [new[] { 4096 }],
        [new[] { 4097 }],
        [new[] { 8191 }],
        [new[] { 100_003 }],
        [new[] { 1, 4097, 0, 7, 100_003 }],
        [new[] { 13, 17, 19, 23, 29, 31, 37 }],
    ];

    /// <summary>The documented order in plain loops: blocks, 32 lanes, halving, then doubling strides over all blocks.</summary>
    private static double Reference(float[][] xs, float[]?[] ws)
    {
        var partials = new List<double>();
        for (int k = 0; k < xs.Length; k++)
        {
            var x = xs[k];
            var w = ws[k];
            for (int start = 0; start < x.Length; start += 4096)
            {
                var lane = new double[32];
                for (int i = start; i < Math.Min(x.Length, start + 4096); i++)
                {
                    float v = w == null ? x[i] : w[i] * x[i];
                    lane[(i - start) % 32] += (double)v * v;
                }
                for (int s = 16; s > 0; s /= 2)
                    for (int j = 0; j < s; j++) lane[j] += lane[j + s];
                partials.Add(lane[0]);
            }
        }
        for (int s = 1; s < partials.Count; s *= 2)
            for (int i = 0; i + s < partials.Count; i += 2 * s) partials[i] += partials[i + s];
        return partials.Count == 0 ? 0 : partials[0];
    }

    /// <summary>Uniform values in (-3, 3) with every 97th a tiny one (its square is below float's range).</summary>
    private static float[] Values(Random rng, int n, bool tiny)
    {
        var x = Inputs.Uniform(rng, n, -3, 3);
        if (tiny)
            for (int i = 0; i < n; i += 97) x[i] = (float)(1e-20 * (1 + rng.NextDouble()));
        return x;
    }

    private static double Run(IKernelSet k, float[][] xs, float[]?[] ws)
    {
        var xb = xs.Select(x => DeviceData.Upload(k, x)).ToList();
        var wb = ws.Select(w => w == null ? null : DeviceData.Upload(k, w)).ToList();
        try
        {
            using var result = new DeviceScalar(xb[0].Device, double.NaN);
            k.OptimizerKernels().SumOfSquares(xb, ws.Any(w => w != null) ? wb : null, result);
            return result.Read();
        }
        finally
        {
            foreach (var b in xb) b.Dispose();
            foreach (var b in wb) b?.Dispose();
        }
    }

    private static (float[][] Xs, float[]?[] Ws) Inputs3(int[] lengths, int weighting, bool tiny)
    {
        var rng = new Random(lengths.Sum() + weighting);
        var xs = lengths.Select(n => Values(rng, n, tiny)).ToArray();
        // weighting 0: none; 1: every buffer; 2: every other buffer.
        var ws = lengths.Select((n, k) => weighting == 1 || (weighting == 2 && k % 2 == 0) ? Values(rng, n, false) : null).ToArray();
        return (xs, ws);
    }

    /// <summary>CPU and ILGPU (fp64 path) give the reference's bits, unweighted, weighted and mixed.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void BothSetsFollowTheOrderBitwise(int[] lengths)
    {
        foreach (int weighting in new[] { 0, 1, 2 })
        {
            var (xs, ws) = Inputs3(lengths, weighting, tiny: true);
            double expected = Reference(xs, ws);
            var (hi, lo) = DeviceScalar.Split(expected);
            double stored = DeviceScalar.Join(hi, lo);
            string what = $"lengths [{string.Join(",", lengths)}] weighting {weighting}";
            Assert.True(BitConverter.DoubleToInt64Bits(stored) == BitConverter.DoubleToInt64Bits(Run(Cpu, xs, ws)), $"cpu, {what}");
            Assert.True(BitConverter.DoubleToInt64Bits(stored) == BitConverter.DoubleToInt64Bits(Run(Ilgpu, xs, ws)), $"ilgpu, {what}");
        }
    }

    /// <summary>
    /// The double-float path (selected on the emulator) is within 2^-38 relative of the double result (measured here:
    /// well below that). Values stay inside float's range (no tiny squares: that path cannot hold them).
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void DoubleFloatPathIsWithinItsBound(int[] lengths)
    {
        var set = (IlgpuKernelSet)Ilgpu;
        foreach (int weighting in new[] { 0, 1 })
        {
            var (xs, ws) = Inputs3(lengths, weighting, tiny: false);
            double exact = Reference(xs, ws);
            set.UsesDoubleFloat = true;
            double df;
            try { df = Run(set, xs, ws); }
            finally { set.UsesDoubleFloat = false; }
            double rel = Math.Abs(df - exact) / exact;
            Assert.True(rel <= Math.Pow(2, -38), $"double-float sum of squares, lengths [{string.Join(",", lengths)}]: relative error {rel:G3}");
        }
    }

    /// <summary>Sums spanning small to huge; the scale ρ / (sqrt(s) + 1e-12) each set writes.</summary>
    public static IEnumerable<object[]> Sums() =>
        new[] { 0.0, 1e-24, 3.7e-9, 0.5, 2.0, 97.25, 12345.678, 6.02e23, 1.7e37 }.Select(s => new object[] { s });

    /// <summary>CPU and ILGPU write the same float scale, and it is the double formula rounded once.</summary>
    [Theory, MemberData(nameof(Sums))]
    public void PerturbationScaleIsBitwiseEqual(double sum)
    {
        foreach (var radius in new[] { 0.05f, 2f })
        {
            float cpu = Scale(CpuDevice, sum, radius), ilgpu = Scale(IlgpuDevice, sum, radius);
            var (hi, lo) = DeviceScalar.Split(sum);
            float expected = (float)(radius / (Math.Sqrt(DeviceScalar.Join(hi, lo)) + 1e-12));
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(cpu));
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(ilgpu));
        }
    }

    /// <summary>
    /// The double-float scale is within one float ulp of the double one (it refines a float estimate by Newton steps
    /// with exact residuals, so it matches exactly unless the true value lies within about 2^-40 of a rounding edge).
    /// </summary>
    [Theory, MemberData(nameof(Sums))]
    public void DoubleFloatScaleIsWithinOneUlp(double sum)
    {
        var set = (IlgpuKernelSet)Ilgpu;
        foreach (var radius in new[] { 0.05f, 2f })
        {
            float fp64 = Scale(IlgpuDevice, sum, radius);
            set.UsesDoubleFloat = true;
            float df;
            try { df = Scale(IlgpuDevice, sum, radius); }
            finally { set.UsesDoubleFloat = false; }
            int ulps = Math.Abs(BitConverter.SingleToInt32Bits(df) - BitConverter.SingleToInt32Bits(fp64));
            Assert.True(ulps <= 1, $"sum {sum:R}, radius {radius}: double-float {df:R} vs double {fp64:R} ({ulps} ulps)");
        }
    }

    private static float Scale(Device device, double sum, float radius)
    {
        using var s = new DeviceScalar(device, sum);
        using var scale = new DeviceScalar(device, double.NaN);
        device.Kernels.OptimizerKernels().PerturbationScale(s, radius, scale);
        return (float)scale.Read();
    }
}
