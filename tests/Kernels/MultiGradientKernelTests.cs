using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// The multi-gradient optimizer kernels (Perturb, Restore, CombineGradients, SumOfSquares) against host references,
/// on awkward lengths, per kernel set.
/// </summary>
public abstract class MultiGradientKernelTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    private IKernelSet K => Device.Kernels;

    private DeviceBuffer<float> Upload(float[] data)
    {
        var b = K.Allocate(data.Length);
        b.CopyFromHost(data);
        return b;
    }

    private static object[] Row(params object[] v) => v;

    /// <summary>Lengths: empty, 1, primes, around SIMD widths, and (Full tier) past the threading threshold.</summary>
    public static IEnumerable<object[]> Lengths(ShapeTier tier)
    {
        int[] ns = tier == ShapeTier.Full ? [0, 1, 7, 16, 17, 131, 1000, 65_537, 200_003] : [0, 1, 7, 17, 131];
        foreach (var n in ns) yield return Row(n);
    }

    [Theory, KernelCases(nameof(Lengths))]
    public void PerturbSavesAndMoves(int n)
    {
        var rng = new Random(n + 1);
        var p = Inputs.Uniform(rng, n, -2, 2);
        var g = Inputs.Uniform(rng, n, -1, 1);
        foreach (var square in new[] { false, true })
        {
            const float scale = 0.37f;
            using var pb = Upload(p);
            using var gb = Upload(g);
            using var bb = Upload(Enumerable.Repeat(float.NaN, n).ToArray());
            K.Perturb(pb, gb, bb, scale, square);
            var expected = p.Select((x, i) => (double)x + scale * (square ? (double)x * x : 1.0) * g[i]).ToArray();
            KernelAssert.Close(expected, pb.ToArray(), Tolerance.Arithmetic, $"Perturb n={n} square={square}");
            KernelAssert.Bitwise(p, bb.ToArray(), $"Perturb backup n={n}");
            KernelAssert.Bitwise(g, gb.ToArray(), $"Perturb grad unchanged n={n}");
            K.Restore(bb, pb);
            KernelAssert.Bitwise(p, pb.ToArray(), $"Restore n={n}");
        }
    }

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
            K.CombineGradients(gb, g2b, a, b);
            var expected = g.Select((x, i) => (double)a * x + (double)b * g2[i]).ToArray();
            KernelAssert.Close(expected, gb.ToArray(), Tolerance.Arithmetic, $"CombineGradients n={n} a={a} b={b}");
            if (a == 0f && b == 1f) KernelAssert.Bitwise(g2, gb.ToArray(), $"CombineGradients(0, 1) copies g2 exactly, n={n}");
        }
    }

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
            double tol(double s) => 1e-6 * s + 1e-9;
            double got = K.SumOfSquares(xb);
            Assert.True(Math.Abs(got - plain) <= tol(plain), $"SumOfSquares n={n}: {got:R} vs {plain:R}");
            got = K.SumOfSquares(xb, wb.Cast<DeviceBuffer<float>?>().ToList());
            Assert.True(Math.Abs(got - weighted) <= tol(weighted), $"weighted SumOfSquares n={n}: {got:R} vs {weighted:R}");
            got = K.SumOfSquares(xb, [wb[0], null, wb[2]]);
            Assert.True(Math.Abs(got - mixed) <= tol(mixed), $"mixed SumOfSquares n={n}: {got:R} vs {mixed:R}");
        }
        finally
        {
            foreach (var b in xb.Concat(wb)) b.Dispose();
        }
    }

    [Fact]
    public void SumOfSquaresOfNothingIsZeroAndMismatchesThrow()
    {
        Assert.Equal(0.0, K.SumOfSquares([]));
        using var a = Upload([1f, 2f, 3f]);
        using var shortW = Upload([1f]);
        Assert.Equal(14.0, K.SumOfSquares([a]), 6);
        Assert.Throws<ArgumentException>(() => K.SumOfSquares([a], [shortW]));
        Assert.Throws<ArgumentException>(() => K.SumOfSquares([a], []));
        Assert.Throws<ArgumentException>(() => K.Perturb(a, a, a, 1f, false));
    }
}

/// <summary>The CPU SIMD set on the full lengths (threading threshold and SIMD tails).</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuMultiGradientKernelTests : MultiGradientKernelTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>The CPU norm accumulates in double: (1e4)² plus 1000 ones keeps every unit (a float sum would lose them all).</summary>
    [Fact]
    public void SumOfSquaresAccumulatesInDouble()
    {
        var x = new float[1001];
        Array.Fill(x, 1f);
        x[0] = 1e4f;
        using var b = Device.Kernels.Allocate(x.Length);
        b.CopyFromHost(x);
        Assert.Equal(1e8 + 1000, Device.Kernels.SumOfSquares([b]));
    }
}

/// <summary>The ILGPU set on its CPU emulator (small lengths; the "ilgpu" collection runs one kernel at a time).</summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuMultiGradientKernelTests : MultiGradientKernelTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;
}
