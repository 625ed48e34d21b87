using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// Checks the checker: <see cref="HostReference"/> against hand-computed values, and the tolerances of
/// <see cref="KernelSetTests"/> against what a plain float implementation achieves (so a correct kernel can pass).
/// Runs without any kernel set.
/// </summary>
public sealed class HostReferenceTests
{
    private static void Near(double expected, double actual, double tol = 1e-12) =>
        Assert.True(Math.Abs(expected - actual) <= tol, $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void Erf_MatchesTabulatedValues()
    {
        // Abramowitz & Stegun table 7.1 / high-precision values.
        Near(0, HostReference.Erf(0));
        Near(0.1124629160182849, HostReference.Erf(0.1), 1e-15);
        Near(0.5204998778130465, HostReference.Erf(0.5), 1e-15);
        Near(0.8427007929497149, HostReference.Erf(1), 1e-15);
        Near(0.9953222650189527, HostReference.Erf(2), 1e-15);
        Near(0.9999779095030014, HostReference.Erf(3), 1e-15);
        Near(0.9999999845827421, HostReference.Erf(4), 1e-15);
        Near(-0.8427007929497149, HostReference.Erf(-1), 1e-15);
        Near(1, HostReference.Erf(7));
        // Both sides of the switch from series to continued fraction (1 - erf carries the 1e-16 rounding of erf near 1).
        Near(4.069520174449590e-4, 1 - HostReference.Erf(2.5), 2e-16);
        Near(4.069520174449590e-4 + 2.18e-13, 1 - HostReference.Erf(2.4999999999), 2e-15);
        Near(2.209049699858544e-5, 1 - HostReference.Erf(3), 2e-16);
        Near(1.541725790028002e-8, 1 - HostReference.Erf(4), 2e-16);
        Near(1.537459794428035e-12, 1 - HostReference.Erf(5), 2e-16);
    }

    /// <summary>ScalarMath (plain float) stays within the unary tolerances on the test input domains.</summary>
    [Fact]
    public void UnaryTolerances_AreMetByScalarMath()
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            var x = Inputs.ForUnary(op, 20_000, new Random(1));
            var got = x.Select(v => ScalarMath.Apply(op, v)).ToArray();
            KernelAssert.Close(HostReference.Unary(op, x), got, Tolerance.Of(op), $"ScalarMath {op}");
        }
    }

    /// <summary>ScalarMath (plain float) stays within the binary tolerances on the test input domains.</summary>
    [Fact]
    public void BinaryTolerances_AreMetByScalarMath()
    {
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            var rng = new Random(2);
            var a = Inputs.ForBinary(op, 20_000, rng, second: false);
            var b = Inputs.ForBinary(op, 20_000, rng, second: true);
            var got = a.Select((v, i) => ScalarMath.Apply(op, v, b[i])).ToArray();
            KernelAssert.Close(HostReference.Binary(op, a, [20_000], b, [20_000], out _), got, Tolerance.Of(op), $"ScalarMath {op}");
        }
        // Pow's special values too.
        float[] pa = [-3f, -1.5f, -1f, -0.5f, 0f, 0.5f, 2f], pb = [-2f, -1f, 0f, 0.5f, 1f, 2f, 3f];
        var expected = HostReference.Binary(BinaryOp.Pow, pa, [7, 1], pb, [1, 7], out _);
        var pow = new float[49];
        for (int i = 0; i < 7; i++)
        for (int j = 0; j < 7; j++)
            pow[i * 7 + j] = MathF.Pow(pa[i], pb[j]);
        KernelAssert.Close(expected, pow, Tolerance.Transcendental, "MathF.Pow special values");
        Assert.Equal(9, expected[0 * 7 + 0] * 81, 12); // (-3)^-2
        Assert.Equal(-27, expected[0 * 7 + 6]); // (-3)^3
        Assert.True(double.IsNaN(expected[0 * 7 + 3])); // (-3)^0.5
        Assert.Equal(double.PositiveInfinity, expected[4 * 7 + 1]); // 0^-1
        Assert.Equal(1, expected[4 * 7 + 2]); // 0^0
    }

    [Fact]
    public void Broadcasting_ShapesAndValues()
    {
        Assert.Equal([2, 4, 3], HostReference.BroadcastShape([2, 1, 3], [4, 1]));
        Assert.Equal([3, 4], HostReference.BroadcastShape([], [3, 4]));
        Assert.Equal([5, 7], HostReference.BroadcastShape([5, 1], [1, 7]));
        Assert.Throws<ArgumentException>(() => HostReference.BroadcastShape([2, 3], [4]));

        // [2,1] + [1,3]
        var y = HostReference.Binary(BinaryOp.Add, [10f, 20f], [2, 1], [1f, 2f, 3f], [1, 3], out var shape);
        Assert.Equal([2, 3], shape);
        Assert.Equal([11.0, 12, 13, 21, 22, 23], y);
        // scalar - [2,2]
        y = HostReference.Binary(BinaryOp.Sub, [1f], [], [1f, 2f, 3f, 4f], [2, 2], out shape);
        Assert.Equal([0.0, -1, -2, -3], y);
        Assert.Equal([1f, 2f, 1f, 2f, 1f, 2f], HostReference.BroadcastTo([1f, 2f], [2], [3, 2]));
        Assert.Equal([1f, 1f, 2f, 2f], HostReference.BroadcastTo([1f, 2f], [2, 1], [2, 2]));
        Assert.Equal([1.0, 0, 0, 1], HostReference.Binary(BinaryOp.Equal, [1f, 2f], [2, 1], [1f, 2f], [1, 2], out _));
        Assert.Equal([0.0, 0, 1, 0], HostReference.Binary(BinaryOp.Greater, [1f, 2f], [2, 1], [1f, 2f], [1, 2], out _));
    }

    [Fact]
    public void Reduce_HandComputed()
    {
        float[] x = [1, 2, 3, 4, 5, 6]; // [[1,2,3],[4,5,6]]
        int[] s = [2, 3];
        Assert.Equal([5.0, 7, 9], HostReference.Reduce(ReduceOp.Sum, x, s, [0], out _));
        Assert.Equal([6.0, 15], HostReference.Reduce(ReduceOp.Sum, x, s, [1], out _));
        Assert.Equal([21.0], HostReference.Reduce(ReduceOp.Sum, x, s, [0, 1], out var mag));
        Assert.Equal([21.0], mag);
        Assert.Equal([2.0, 5], HostReference.Reduce(ReduceOp.Mean, x, s, [1], out _));
        Assert.Equal([4.0, 5, 6], HostReference.Reduce(ReduceOp.Max, x, s, [0], out _));
        Assert.Equal([-1.0], HostReference.Reduce(ReduceOp.Max, [-3f, -1f, -2f], [3], [0], out _));
        Assert.Equal([1.0, 2, 3, 4, 5, 6], HostReference.Reduce(ReduceOp.Sum, x, s, [], out _));
        // [2,2,2] over {0,2}: sums of x[i, j, k] for each j.
        float[] z = [0, 1, 2, 3, 4, 5, 6, 7];
        Assert.Equal([0 + 1 + 4 + 5.0, 2 + 3 + 6 + 7], HostReference.Reduce(ReduceOp.Sum, z, [2, 2, 2], [0, 2], out _));
        Assert.Equal([0.0, 0, 0], HostReference.Reduce(ReduceOp.Sum, [], [0, 3], [0], out _));
    }

    [Fact]
    public void Gemm_HandComputed()
    {
        float[] a = [1, 2, 3, 4, 5, 6]; // 2x3
        float[] b = [7, 8, 9, 10, 11, 12]; // 3x2
        var c = HostReference.Gemm(1, 2, 2, 3, 1f, a, 6, false, b, 6, false, 0f, [float.NaN, float.NaN, float.NaN, float.NaN], 4, out _);
        Assert.Equal([58.0, 64, 139, 154], c);
        // Transposed storage of the same operands gives the same product.
        float[] aT = [1, 4, 2, 5, 3, 6], bT = [7, 9, 11, 8, 10, 12];
        Assert.Equal(c, HostReference.Gemm(1, 2, 2, 3, 1f, aT, 6, true, bT, 6, true, 0f, new float[4], 4, out _));
        // alpha, beta.
        Assert.Equal([29.0 + 2, 32 + 2, 69.5 + 2, 77 + 2],
            HostReference.Gemm(1, 2, 2, 3, 0.5f, a, 6, false, b, 6, false, 2f, [1f, 1f, 1f, 1f], 4, out var mag));
        Assert.Equal(0.5 * (1 * 7 + 2 * 9 + 3 * 11) + 2, mag[0]);
        // k = 0: beta * C.
        Assert.Equal([2.0, 4], HostReference.Gemm(1, 1, 2, 0, 1f, [], 0, false, [], 0, false, 2f, [1f, 2f], 2, out _));
        // Batch 2, A shared (stride 0), C padded by one element that stays.
        var cb = HostReference.Gemm(2, 1, 1, 2, 1f, [1f, 2f], 0, false, [3f, 4f, 5f, 6f], 2, false, 0f, [9f, 9f, 9f], 2, out _);
        Assert.Equal([11.0, 9, 17], cb);
    }

    /// <summary>A naive float GEMM (sequential float accumulation) meets the GEMM tolerance, even at k = 301.</summary>
    [Fact]
    public void GemmTolerance_IsMetByNaiveFloat()
    {
        const int m = 67, n = 263, k = 301;
        var rng = new Random(3);
        var a = Inputs.Uniform(rng, m * k, -1, 1);
        var b = Inputs.Uniform(rng, k * n, -1, 1);
        var c = Inputs.Uniform(rng, m * n, -1, 1);
        var expected = HostReference.Gemm(1, m, n, k, 0.5f, a, 0, false, b, 0, false, 2f, c, 0, out var mag);
        var got = new float[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            float acc = 0;
            for (int l = 0; l < k; l++) acc += a[i * k + l] * b[l * n + j];
            got[i * n + j] = 0.5f * acc + 2f * c[i * n + j];
        }
        KernelAssert.Close(expected, got, i => Tolerance.GemmAbs + Tolerance.GemmRel * mag[i], "naive float GEMM");
    }

    /// <summary>A naive sequential float sum meets the sum tolerance on the largest reduction of the tables.</summary>
    [Fact]
    public void SumTolerance_IsMetByNaiveFloat()
    {
        var x = Inputs.Uniform(new Random(4), 100_003, -1, 1);
        var expected = HostReference.Reduce(ReduceOp.Sum, x, [x.Length], [0], out var mag);
        float acc = 0;
        foreach (var v in x) acc += v;
        KernelAssert.Close(expected, [acc], i => Tolerance.SumAbs + Tolerance.SumRel * mag[i], "naive float sum");
    }

    [Fact]
    public void Permute_HandComputed()
    {
        float[] x = [0, 1, 2, 3, 4, 5]; // [2,3]
        Assert.Equal([0f, 3f, 1f, 4f, 2f, 5f], HostReference.Permute(x, [2, 3], [1, 0]));
        // [2,3,4] -> perm [2,0,1]: y[k,i,j] = x[i,j,k]
        var z = Enumerable.Range(0, 24).Select(i => (float)i).ToArray();
        var y = HostReference.Permute(z, [2, 3, 4], [2, 0, 1]);
        Assert.Equal([4, 2, 3], HostReference.PermutedShape([2, 3, 4], [2, 0, 1]));
        for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++)
            Assert.Equal(z[i * 12 + j * 4 + k], y[k * 6 + i * 3 + j]);
        Assert.Equal(6, Inputs.Permutations(3).Select(p => string.Join(",", p)).Distinct().Count());
        Assert.Equal(8, Inputs.AxisSubsets(3).Count());
    }

    [Fact]
    public void IndexSelectAndAdd_HandComputedAndAdjoint()
    {
        float[] x = [0, 1, 2, 10, 11, 12]; // [2,3]
        Assert.Equal([2f, 0f, 2f, 12f, 10f, 12f], HostReference.IndexSelect(x, [2, 3], 1, [2, 0, 2]));
        Assert.Equal([10f, 11f, 12f, 10f, 11f, 12f], HostReference.IndexSelect(x, [2, 3], 0, [1, 1]));
        // Repeated indices accumulate: y[:, 2] gets src[:, 0] + src[:, 2].
        var y = HostReference.IndexAdd([1f, 2f, 3f, 4f, 5f, 6f], [2, 3], 1, [2, 0, 2], new float[6], [2, 3]);
        Assert.Equal([2.0, 0, 4, 5, 0, 10], y);
        // <select(x), s> == <x, add(s)> on random data.
        var rng = new Random(5);
        int[] xs = [4, 5, 3];
        var xr = Inputs.Uniform(rng, 60, -1, 1);
        var idx = Inputs.Index(IndexPattern.Repeated, 5, 9, rng);
        var s = Inputs.Uniform(rng, 4 * 9 * 3, -1, 1);
        var sel = HostReference.IndexSelect(xr, xs, 1, idx);
        var add = HostReference.IndexAdd(s, [4, 9, 3], 1, idx, new float[60], xs);
        double lhs = sel.Select((v, i) => (double)v * s[i]).Sum(), rhs = add.Select((v, i) => v * xr[i]).Sum();
        Near(lhs, rhs, 1e-9);
    }

    [Fact]
    public void SoftmaxAndCrossEntropy_HandComputed()
    {
        var y = HostReference.Softmax([0f, (float)Math.Log(3)], 1, 2, 1, log: false);
        Near(0.25, y[0], 1e-7);
        Near(0.75, y[1], 1e-7);
        var ly = HostReference.Softmax([0f, (float)Math.Log(3)], 1, 2, 1, log: true);
        Near(Math.Log(0.25), ly[0], 1e-7);
        // Along the middle axis of [1,2,2]: pairs (x0,x2) and (x1,x3).
        var m = HostReference.Softmax([1f, 5f, 1f, 5f], 1, 2, 2, log: false);
        Assert.Equal([0.5, 0.5, 0.5, 0.5], m);
        var big = HostReference.Softmax([1e4f, -1e4f, 1e4f], 1, 3, 1, log: false);
        Assert.Equal([0.5, 0, 0.5], big);

        var ce = HostReference.CrossEntropy([0f, 0f, 1e4f, -1e4f, -1e4f, -1e4f, 88f, 90f], [0, 1, 1, 0], 4, 2);
        Near(Math.Log(2), ce[0]);
        Near(2e4, ce[1]);
        Near(Math.Log(2), ce[2]);
        Near(2 + Math.Log(1 + Math.Exp(-2)), ce[3]);
        Assert.Equal([0f, 1f, 0f, 1f, 0f, 0f], HostReference.OneHot([1, 0], 2, 3));
    }

    [Fact]
    public void Sgd_HandComputed()
    {
        // momentum 0.9, no dampening: v1 = g, p1 = 1 - 0.1*0.5; v2 = 0.9*0.5 + 0.5, p2 = p1 - 0.1*0.95.
        float[] p = [1f], v = [float.NaN];
        HostReference.SgdStep(p, [0.5f], v, 0.1f, 0.9f, 0f, 0f, false, firstStep: true);
        Near(0.95, p[0], 1e-7);
        Near(0.5, v[0], 1e-7);
        HostReference.SgdStep(p, [0.5f], v, 0.1f, 0.9f, 0f, 0f, false, firstStep: false);
        Near(0.95, v[0], 1e-7);
        Near(0.855, p[0], 1e-7);
        // Nesterov: g' = g + 0.9 v = 0.95 on the first step.
        p = [1f];
        v = [0f];
        HostReference.SgdStep(p, [0.5f], v, 0.1f, 0.9f, 0f, 0f, true, firstStep: true);
        Near(0.905, p[0], 1e-7);
        // Dampening 0.5 on the second step: v = 0.9*0.5 + 0.5*0.5.
        p = [1f];
        v = [0f];
        HostReference.SgdStep(p, [0.5f], v, 0.1f, 0.9f, 0.5f, 0f, false, firstStep: true);
        HostReference.SgdStep(p, [0.5f], v, 0.1f, 0.9f, 0.5f, 0f, false, firstStep: false);
        Near(0.7, v[0], 1e-7);
        // Weight decay, no momentum, no velocity: g = 0.5 + 0.1 * 2.
        p = [2f];
        HostReference.SgdStep(p, [0.5f], null, 0.1f, 0f, 0f, 0.1f, false, firstStep: true);
        Near(2 - 0.07, p[0], 1e-6);
    }

    [Fact]
    public void Adam_HandComputed()
    {
        // Step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected they are g and g^2, so p -= lr * g / (|g| + eps).
        float[] p = [1f], m = [0f], v = [0f];
        HostReference.AdamStep(p, [0.5f], m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0f, false, 1);
        Near(0.05, m[0], 1e-7);
        Near(0.00025, v[0], 1e-8);
        Near(0.9, p[0], 1e-6);
        // AdamW: p = 1 * (1 - 0.1 * 0.1) - 0.1.
        p = [1f];
        m = [0f];
        v = [0f];
        HostReference.AdamStep(p, [0.5f], m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, true, 1);
        Near(0.89, p[0], 1e-6);
        // Adam with L2: g = 0.5 + 0.1 * 1 = 0.6 enters m and v.
        p = [1f];
        m = [0f];
        v = [0f];
        HostReference.AdamStep(p, [0.5f], m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, false, 1);
        Near(0.06, m[0], 1e-7);
        Near(0.9, p[0], 1e-6);
        // Step 2 with eps = 0.1 and g = 0.5 again: m = 0.095, v = 0.0004975, mhat = 0.5, vhat = 0.25.
        p = [1f];
        m = [0.05f];
        v = [0.00025f];
        HostReference.AdamStep(p, [0.5f], m, v, 0.1f, 0.9f, 0.999f, 0.1f, 0f, false, 2);
        Near(1 - 0.1 * 0.5 / (0.5 + 0.1), p[0], 1e-6);
    }

    /// <summary>The CounterRng stream itself has the statistics the device test demands, and Uniform stays in range.</summary>
    [Fact]
    public void CounterRng_Statistics()
    {
        const int n = 100_000;
        var x = HostReference.RandomNormal(n, 2024, 0f, 1f);
        double mean = x.Average(v => (double)v);
        double std = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        Assert.True(Math.Abs(mean) < 5 / Math.Sqrt(n), $"mean {mean}");
        Assert.True(Math.Abs(std - 1) < 5 * Math.Sqrt(0.5 / n), $"std {std}");
        var small = HostReference.RandomNormal(4096, 2024, 0f, 1f);
        double sm = small.Average(v => (double)v);
        Assert.True(Math.Abs(sm) < 5 / 64.0, $"small mean {sm}");
        var u = HostReference.RandomUniform(n, 2024, -1f, 3f);
        Assert.All(u, v => Assert.True(v >= -1f && v < 3f));
        Assert.True(Math.Abs(u.Average(v => (double)v) - 1) < 5 * (4 / Math.Sqrt(12)) / Math.Sqrt(n));
        Assert.Equal(CounterRng.Uniform(7, 3, 0f, 1f), HostReference.RandomUniform(5, 7, 0f, 1f)[3]);
    }

    /// <summary>The comparison helper itself: NaN only matches NaN, infinities must match, tolerances apply.</summary>
    [Fact]
    public void KernelAssert_Semantics()
    {
        KernelAssert.Close([1.0, double.NaN, double.PositiveInfinity], [1.000001f, float.NaN, float.PositiveInfinity], new Tolerance(1e-5, 0), "ok");
        Assert.ThrowsAny<Exception>(() => KernelAssert.Close([1.0], [float.NaN], new Tolerance(1, 1), "nan"));
        Assert.ThrowsAny<Exception>(() => KernelAssert.Close([double.NaN], [1f], new Tolerance(1, 1), "nan expected"));
        Assert.ThrowsAny<Exception>(() => KernelAssert.Close([1.0], [1.1f], new Tolerance(1e-5, 1e-6), "far"));
        Assert.ThrowsAny<Exception>(() => KernelAssert.Bitwise([0f], [-0f], "signed zero"));
        KernelAssert.Exact([0.0], [-0f], "zeros equal");
    }
}
