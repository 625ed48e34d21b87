using System.Reflection;
using Engine.Kernels;
using Engine.Kernels.Composite;

namespace Engine.Tests.Kernels;

/// <summary>
/// Every <see cref="IKernelSet"/> op checked against <see cref="HostReference"/> on awkward shapes (sizes of 1,
/// primes, non-multiples of SIMD widths and tiles), written once and run per kernel set by thin subclasses.
/// Cases come from tables (<see cref="KernelCasesAttribute"/>) that grow with the subclass's <see cref="ShapeTier"/>.
/// Output buffers are pre-filled with NaN so an element a kernel forgets to write shows up.
/// Tolerances: see <see cref="Tolerance"/>.
/// </summary>
public abstract class KernelSetTests
{
    /// <summary>The device whose kernel set is under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>The kernel set under test (a subclass may override it to test a set no <see cref="Device"/> serves).</summary>
    protected virtual IKernelSet K => Device.Kernels;

    /// <summary>The size knob: Small for emulators, Full for real hardware.</summary>
    protected ShapeTier Tier => TierOf(GetType());

    /// <summary>The tier a test class declares with <see cref="ShapeTierAttribute"/> (Small when it declares none).</summary>
    public static ShapeTier TierOf(Type testClass) => testClass.GetCustomAttribute<ShapeTierAttribute>()?.Tier ?? ShapeTier.Small;

    // ------------------------------------------------------------------ helpers

    /// <summary>A device buffer holding <paramref name="data"/>.</summary>
    protected DeviceBuffer<float> Upload(float[] data) => DeviceData.Upload(K, data);

    /// <summary>A device int buffer holding <paramref name="data"/>.</summary>
    protected DeviceBuffer<int> Upload(int[] data) => DeviceData.Upload(K, data);

    /// <summary>A device buffer of <paramref name="n"/> copies of <paramref name="value"/> (uploaded, not the Fill kernel).</summary>
    protected DeviceBuffer<float> Filled(long n, float value) => DeviceData.Filled(K, n, value);

    private static string S(int[] shape) => "[" + string.Join(",", shape) + "]";

    private static object[] Row(params object[] values) => values;

    // ------------------------------------------------------------------ Fill, Copy

    /// <summary>Fill cases: (length, value).</summary>
    public static IEnumerable<object[]> FillCases(ShapeTier tier)
    {
        int[] lengths = tier == ShapeTier.Full ? [0, 1, 17, 1000, 100_003] : [0, 1, 17, 1000];
        foreach (var n in lengths)
        foreach (var v in new[] { 0f, -3.25f, float.NaN })
            yield return Row(n, v);
    }

    /// <summary>dst[i] = value everywhere.</summary>
    [Theory, KernelCases(nameof(FillCases))]
    public void Fill_SetsEveryElement(int length, float value)
    {
        using var dst = Filled(length, 7f);
        K.Fill(dst, value);
        var expected = new double[length];
        Array.Fill(expected, value);
        KernelAssert.Exact(expected, dst.ToArray(), $"Fill n={length} value={value}");
    }

    /// <summary>Copy cases: (srcLength, srcOffset, dstLength, dstOffset, count).</summary>
    public static IEnumerable<object[]> CopyCases(ShapeTier tier)
    {
        yield return Row(10, 0, 10, 0, 10);
        yield return Row(50, 7, 40, 3, 20);
        yield return Row(50, 49, 40, 39, 1);
        yield return Row(50, 3, 40, 5, 0);
        yield return Row(1, 0, 33, 32, 1);
        if (tier == ShapeTier.Full)
        {
            yield return Row(100_003, 1, 100_010, 3, 99_999);
            yield return Row(300_007, 5, 300_001, 2, 299_990);
        }
    }

    /// <summary>dst[dstOffset + i] = src[srcOffset + i] for i &lt; count; the rest of dst is untouched.</summary>
    [Theory, KernelCases(nameof(CopyCases))]
    public void Copy_WithOffsets(int srcLength, int srcOffset, int dstLength, int dstOffset, int count)
    {
        var rng = new Random(11);
        var src = Inputs.Uniform(rng, srcLength, -1, 1);
        var dst = Inputs.Uniform(rng, dstLength, 5, 6);
        using var sb = Upload(src);
        using var db = Upload(dst);
        K.Copy(sb, srcOffset, db, dstOffset, count);
        var expected = (float[])dst.Clone();
        Array.Copy(src, srcOffset, expected, dstOffset, count);
        KernelAssert.Bitwise(expected, db.ToArray(), $"Copy {srcOffset}->{dstOffset} x{count}");
        KernelAssert.Bitwise(src, sb.ToArray(), "Copy leaves src unchanged");
    }

    // ------------------------------------------------------------------ random

    /// <summary>Random cases: (length, seed as long, low or mean, high or std).</summary>
    public static IEnumerable<object[]> RandomCases(ShapeTier tier)
    {
        int[] lengths = tier == ShapeTier.Full ? [1, 17, 1000, 100_003] : [1, 17, 1000];
        foreach (var n in lengths)
        {
            yield return Row(n, 0L, 0f, 1f);
            yield return Row(n, 42L, -2f, 3f);
            yield return Row(n, -1L, -3f, 0.1f); // seed 2^64 - 1
        }
    }

    /// <summary>The contract: RandomUniform is bitwise CounterRng.Uniform(seed, i, low, high) on every kernel set.</summary>
    [Theory, KernelCases(nameof(RandomCases))]
    public void RandomUniform_IsCounterRngBitwise(int length, long seed, float low, float high)
    {
        using var dst = Filled(length, float.NaN);
        K.RandomUniform(dst, (ulong)seed, low, high);
        KernelAssert.Bitwise(HostReference.RandomUniform(length, (ulong)seed, low, high), dst.ToArray(),
            $"RandomUniform n={length} seed={(ulong)seed}");
    }

    /// <summary>The contract: RandomNormal is bitwise CounterRng.Normal(seed, i, mean, std) on every kernel set.</summary>
    [Theory, KernelCases(nameof(RandomCases))]
    public void RandomNormal_MatchesCounterRng(int length, long seed, float mean, float std)
    {
        using var dst = Filled(length, float.NaN);
        K.RandomNormal(dst, (ulong)seed, mean, std);
        var expected = HostReference.RandomNormal(length, (ulong)seed, mean, std);
        var what = $"RandomNormal n={length} seed={(ulong)seed} mean={mean} std={std}";
        KernelAssert.Bitwise(expected, dst.ToArray(), what);
    }

    /// <summary>A large normal sample has mean 0 and std 1; a uniform one stays in [low, high) with the right mean.</summary>
    [Fact]
    public void Random_Statistics()
    {
        int n = Tier == ShapeTier.Full ? 100_000 : 4096;
        using var normal = K.Allocate(n);
        K.RandomNormal(normal, 2024, 0f, 1f);
        var x = normal.ToArray();
        double mean = x.Average(v => (double)v);
        double std = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        Assert.True(Math.Abs(mean) < 5 / Math.Sqrt(n), $"normal mean {mean} (n={n})");
        Assert.True(Math.Abs(std - 1) < 5 * Math.Sqrt(0.5 / n), $"normal std {std} (n={n})");
        Assert.All(x, v => Assert.True(float.IsFinite(v)));

        using var uniform = K.Allocate(n);
        K.RandomUniform(uniform, 2024, -1f, 3f);
        var u = uniform.ToArray();
        Assert.All(u, v => Assert.True(v >= -1f && v < 3f, $"uniform value {v} outside [-1, 3)"));
        double um = u.Average(v => (double)v);
        Assert.True(Math.Abs(um - 1) < 5 * (4 / Math.Sqrt(12)) / Math.Sqrt(n), $"uniform mean {um} (n={n})");
    }

    /// <summary>A seed reproduces its stream exactly; another seed gives another stream.</summary>
    [Fact]
    public void Random_SeedReproducesStream()
    {
        using var a = K.Allocate(257);
        using var b = K.Allocate(257);
        K.RandomNormal(a, 5, 0f, 1f);
        K.RandomNormal(b, 5, 0f, 1f);
        KernelAssert.Bitwise(a.ToArray(), b.ToArray(), "same seed, same stream");
        K.RandomNormal(b, 6, 0f, 1f);
        Assert.NotEqual(a.ToArray(), b.ToArray());
    }

    // ------------------------------------------------------------------ unary, affine, axpy

    /// <summary>Unary cases: (op, length) for every op; lengths around SIMD widths and, Full, past the threading threshold.</summary>
    public static IEnumerable<object[]> UnaryCases(ShapeTier tier)
    {
        int[] lengths = tier == ShapeTier.Full ? [1, 7, 16, 17, 33, 64, 221, 1000, 264_967] : [1, 17, 221];
        foreach (var op in Enum.GetValues<UnaryOp>())
        foreach (var n in lengths)
            yield return Row(op, n);
    }

    /// <summary>Every unary op: (op).</summary>
    public static IEnumerable<object[]> UnaryOps(ShapeTier tier) => Enum.GetValues<UnaryOp>().Select(op => Row(op));

    /// <summary>y[i] = op(x[i]); x unchanged.</summary>
    [Theory, KernelCases(nameof(UnaryCases))]
    public void Unary_MatchesReference(UnaryOp op, int length)
    {
        var x = Inputs.ForUnary(op, length, new Random(100 + length));
        using var xb = Upload(x);
        using var yb = Filled(length, float.NaN);
        K.Unary(op, xb, yb);
        KernelAssert.Close(HostReference.Unary(op, x), yb.ToArray(), Tolerance.Of(op), $"Unary {op} n={length}");
        KernelAssert.Bitwise(x, xb.ToArray(), $"Unary {op} leaves x unchanged");
    }

    /// <summary>y may be x.</summary>
    [Theory, KernelCases(nameof(UnaryOps))]
    public void Unary_InPlace(UnaryOp op)
    {
        var x = Inputs.ForUnary(op, 33, new Random(7));
        using var xb = Upload(x);
        K.Unary(op, xb, xb);
        KernelAssert.Close(HostReference.Unary(op, x), xb.ToArray(), Tolerance.Of(op), $"Unary {op} in place");
    }

    /// <summary>Affine cases: (length, scale, shift, in place).</summary>
    public static IEnumerable<object[]> AffineCases(ShapeTier tier)
    {
        yield return Row(1, 0f, 4f, false);
        yield return Row(17, 2.5f, -1f, false);
        yield return Row(221, -0.5f, 3f, true);
        if (tier == ShapeTier.Full)
        {
            yield return Row(264_967, 1.5f, 0.25f, false);
            yield return Row(264_967, -3f, 1f, true);
        }
    }

    /// <summary>y[i] = scale * x[i] + shift.</summary>
    [Theory, KernelCases(nameof(AffineCases))]
    public void Affine_MatchesReference(int length, float scale, float shift, bool inPlace)
    {
        var x = Inputs.Uniform(new Random(3), length, -3, 3);
        using var xb = Upload(x);
        using var yb = inPlace ? null : Filled(length, float.NaN);
        K.Affine(xb, yb ?? xb, scale, shift);
        KernelAssert.Close(HostReference.Affine(x, scale, shift), (yb ?? xb).ToArray(), Tolerance.Arithmetic,
            $"Affine n={length} scale={scale} shift={shift} inPlace={inPlace}");
    }

    /// <summary>Axpy cases: (length, alpha).</summary>
    public static IEnumerable<object[]> AxpyCases(ShapeTier tier)
    {
        yield return Row(1, 0.37f);
        yield return Row(17, -2f);
        yield return Row(221, 0f);
        if (tier == ShapeTier.Full) yield return Row(264_967, 0.37f);
    }

    /// <summary>y[i] += alpha * x[i] (accumulates into y).</summary>
    [Theory, KernelCases(nameof(AxpyCases))]
    public void Axpy_Accumulates(int length, float alpha)
    {
        var rng = new Random(5);
        var x = Inputs.Uniform(rng, length, -3, 3);
        var y = Inputs.Uniform(rng, length, -3, 3);
        using var xb = Upload(x);
        using var yb = Upload(y);
        K.Axpy(alpha, xb, yb);
        KernelAssert.Close(HostReference.Axpy(alpha, x, y), yb.ToArray(), Tolerance.Arithmetic, $"Axpy n={length} alpha={alpha}");
    }

    // ------------------------------------------------------------------ binary, broadcast

    private static IEnumerable<(int[] A, int[] B)> BinaryShapes(ShapeTier tier)
    {
        yield return ([], [3, 4]);
        yield return ([3, 4], []);
        yield return ([5, 1], [1, 7]);
        yield return ([2, 1, 3], [4, 1]);
        yield return ([4, 1], [2, 1, 3]);
        yield return ([1], [1]);
        yield return ([7], [7]);
        yield return ([13, 17], [13, 17]);
        yield return ([2, 3, 5, 7], [2, 3, 5, 7]);
        yield return ([4, 3], [3]);
        yield return ([3], [4, 3]);
        yield return ([3, 1, 5], [3, 4, 5]);
        yield return ([6, 5], [6, 1]);
        yield return ([1, 1], [3]);
        // Rows of 37: the vector-vector, vector-scalar and scalar-vector row loops with a tail.
        yield return ([3, 37], [37]);
        yield return ([3, 1], [3, 37]);
        yield return ([3, 37], [3, 1]);
    }

    /// <summary>
    /// Binary cases: (op, aShape, bShape) for every op and broadcasting pattern. Full adds, past SIMD bodies and the
    /// threading threshold, [257,1031] for every op and the large broadcasting patterns for Add and Mul (the
    /// broadcasting index paths do not depend on the op).
    /// </summary>
    public static IEnumerable<object[]> BinaryCases(ShapeTier tier)
    {
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            foreach (var (a, b) in BinaryShapes(tier))
                yield return Row(op, a, b);
            if (tier == ShapeTier.Full)
                yield return Row(op, new[] { 257, 1031 }, new[] { 257, 1031 });
        }
        if (tier == ShapeTier.Full)
        {
            foreach (var op in new[] { BinaryOp.Add, BinaryOp.Mul })
            {
                yield return Row(op, new[] { 257, 1031 }, new[] { 1031 });
                yield return Row(op, new[] { 257, 1 }, new[] { 257, 1031 });
                yield return Row(op, new[] { 1, 1031 }, new[] { 257, 1 });
                yield return Row(op, Array.Empty<int>(), new[] { 257, 1031 });
            }
        }
    }

    /// <summary>y = op(a, b) with NumPy broadcasting.</summary>
    [Theory, KernelCases(nameof(BinaryCases))]
    public void Binary_MatchesReference(BinaryOp op, int[] aShape, int[] bShape)
    {
        var rng = new Random(17);
        var a = Inputs.ForBinary(op, HostReference.Numel(aShape), rng, second: false);
        var b = Inputs.ForBinary(op, HostReference.Numel(bShape), rng, second: true);
        var expected = HostReference.Binary(op, a, aShape, b, bShape, out var yShape);
        using var ab = Upload(a);
        using var bb = Upload(b);
        using var yb = Filled(expected.Length, float.NaN);
        K.Binary(op, ab, aShape, bb, bShape, yb, yShape);
        KernelAssert.Close(expected, yb.ToArray(), Tolerance.Of(op), $"Binary {op} {S(aShape)} {S(bShape)} -> {S(yShape)}");
    }

    /// <summary>Pow follows MathF.Pow: negative bases with integer exponents, NaN for fractional ones, 0^0 = 1, 0^-1 = inf.</summary>
    [Fact]
    public void Binary_PowSpecialValues()
    {
        float[] a = [-3f, -1.5f, -1f, -0.5f, 0f, 0.5f, 2f];
        float[] b = [-2f, -1f, 0f, 0.5f, 1f, 2f, 3f];
        int[] aShape = [a.Length, 1], bShape = [1, b.Length];
        var expected = HostReference.Binary(BinaryOp.Pow, a, aShape, b, bShape, out var yShape);
        using var ab = Upload(a);
        using var bb = Upload(b);
        using var yb = Filled(expected.Length, 123f);
        K.Binary(BinaryOp.Pow, ab, aShape, bb, bShape, yb, yShape);
        KernelAssert.Close(expected, yb.ToArray(), Tolerance.Transcendental, "Pow special values (rows a, columns b)");
    }

    /// <summary>BroadcastTo cases: (xShape, yShape).</summary>
    public static IEnumerable<object[]> BroadcastToCases(ShapeTier tier)
    {
        yield return Row(Array.Empty<int>(), new[] { 3, 4 });
        yield return Row(new[] { 1 }, new[] { 5 });
        yield return Row(new[] { 4 }, new[] { 3, 4 });
        yield return Row(new[] { 3, 1 }, new[] { 3, 4 });
        yield return Row(new[] { 2, 1, 3 }, new[] { 2, 5, 3 });
        yield return Row(new[] { 1, 1 }, new[] { 2, 3 });
        yield return Row(new[] { 5, 1, 7 }, new[] { 2, 5, 4, 7 });
        yield return Row(new[] { 2, 3 }, new[] { 2, 3 });
        yield return Row(new[] { 1, 1, 1 }, new[] { 1, 1, 1 });
        if (tier == ShapeTier.Full)
        {
            yield return Row(new[] { 1031 }, new[] { 257, 1031 });
            yield return Row(new[] { 257, 1 }, new[] { 257, 1031 });
            yield return Row(new[] { 3, 1, 65, 1 }, new[] { 3, 129, 65, 33 });
        }
    }

    /// <summary>y = x broadcast to yShape (exact copy of values).</summary>
    [Theory, KernelCases(nameof(BroadcastToCases))]
    public void BroadcastTo_MatchesReference(int[] xShape, int[] yShape)
    {
        var x = Inputs.Uniform(new Random(19), HostReference.Numel(xShape), -1, 1);
        var expected = HostReference.BroadcastTo(x, xShape, yShape);
        using var xb = Upload(x);
        using var yb = Filled(expected.Length, float.NaN);
        K.BroadcastTo(xb, xShape, yb, yShape);
        KernelAssert.Bitwise(expected, yb.ToArray(), $"BroadcastTo {S(xShape)} -> {S(yShape)}");
    }

    // ------------------------------------------------------------------ reductions

    /// <summary>Reduce cases: (op, shape, axes) over every subset of axes (the empty one included) of odd-extent shapes.</summary>
    public static IEnumerable<object[]> ReduceCases(ShapeTier tier)
    {
        var all = new List<int[]> { new[] { 7 }, new[] { 1, 1 }, new[] { 3, 5, 7 }, new[] { 3, 1, 5, 7 } };
        if (tier == ShapeTier.Full) all.Add([3, 5, 7, 9]);
        foreach (var op in Enum.GetValues<ReduceOp>())
        {
            foreach (var shape in all)
            foreach (var axes in Inputs.AxisSubsets(shape.Length))
                yield return Row(op, shape, axes);
            if (tier == ShapeTier.Full)
            {
                // Large: long rows, long columns, everything, and inner / outer / middle axes of a rank-3 shape.
                yield return Row(op, new[] { 257, 1031 }, new[] { 0 });
                yield return Row(op, new[] { 257, 1031 }, new[] { 1 });
                yield return Row(op, new[] { 257, 1031 }, new[] { 0, 1 });
                yield return Row(op, new[] { 100_003 }, new[] { 0 });
                yield return Row(op, new[] { 5, 129, 257 }, new[] { 1 });
                yield return Row(op, new[] { 5, 129, 257 }, new[] { 2 });
                yield return Row(op, new[] { 5, 129, 257 }, new[] { 0, 2 });
            }
        }
    }

    /// <summary>Sum/Mean within 2e-6 * sum|x| of the double reference; Max exact (Max inputs are all negative).</summary>
    [Theory, KernelCases(nameof(ReduceCases))]
    public void Reduce_MatchesReference(ReduceOp op, int[] shape, int[] axes)
    {
        var rng = new Random(23);
        long n = HostReference.Numel(shape);
        var x = op == ReduceOp.Max ? Inputs.Uniform(rng, n, -3, -1) : Inputs.Uniform(rng, n, -1, 1);
        var expected = HostReference.Reduce(op, x, shape, axes, out var magnitude);
        using var xb = Upload(x);
        using var yb = Filled(expected.Length, float.NaN);
        K.Reduce(op, xb, shape, axes, yb);
        var what = $"Reduce {op} {S(shape)} axes {S(axes)}";
        if (op == ReduceOp.Max) KernelAssert.Exact(expected, yb.ToArray(), what);
        else KernelAssert.Close(expected, yb.ToArray(), i => Tolerance.SumAbs + Tolerance.SumRel * magnitude[i], what);
    }

    // ------------------------------------------------------------------ GEMM

    /// <summary>GEMM cases: (m, n, k, transA, transB, batch layout, alpha, beta).</summary>
    public static IEnumerable<object[]> GemmCases(ShapeTier tier)
    {
        // Multiples of 4 (12, 20, 36; 40, 8, 12) take the ILGPU set's 16-byte-vector GEMM when the layout is packed.
        var sizes = new List<(int M, int N, int K)> { (1, 1, 1), (1, 7, 13), (13, 1, 7), (31, 67, 5), (33, 47, 29), (12, 20, 36), (40, 8, 12) };
        if (tier == ShapeTier.Full) sizes.Add((64, 64, 64));
        foreach (var (m, n, k) in sizes)
        foreach (var ta in new[] { false, true })
        foreach (var tb in new[] { false, true })
        foreach (var layout in Enum.GetValues<GemmBatch>())
        {
            yield return Row(m, n, k, ta, tb, layout, 1f, 0f);
            yield return Row(m, n, k, ta, tb, layout, 0.5f, 2f);
        }
        if (tier == ShapeTier.Full)
        {
            // Past the cache blocks (KC, MC, NC) and the threading split, with ragged edges everywhere.
            foreach (var ta in new[] { false, true })
            foreach (var tb in new[] { false, true })
                yield return Row(257, 263, 301, ta, tb, GemmBatch.Single, 1f, 0f);
            yield return Row(257, 263, 301, false, false, GemmBatch.SharedB, 0.5f, 2f);
            yield return Row(257, 263, 301, true, false, GemmBatch.SharedA, 0.5f, 2f);
            yield return Row(512, 512, 512, false, false, GemmBatch.Single, 1f, 0f);
        }
    }

    /// <summary>
    /// C_p = alpha op(A_p) op(B_p) + beta C_p. With beta = 0, C starts as NaN (C must not be read); strided operands
    /// carry NaN padding between matrices (must not be read) and C's padding must stay unchanged.
    /// </summary>
    [Theory, KernelCases(nameof(GemmCases))]
    public void Gemm_MatchesReference(int m, int n, int k, bool transA, bool transB, GemmBatch layout, float alpha, float beta)
    {
        var rng = new Random(29);
        int batch = layout == GemmBatch.Single ? 1 : 3;
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        long strideA = layout switch { GemmBatch.SharedA => 0, GemmBatch.SharedB => sizeA + 3, _ => sizeA };
        long strideB = layout switch { GemmBatch.SharedB => 0, GemmBatch.SharedA => sizeB + 3, _ => sizeB };
        long strideC = layout == GemmBatch.Single ? sizeC : sizeC + 5;
        var a = Operand(rng, batch, sizeA, strideA);
        var b = Operand(rng, batch, sizeB, strideB);
        var c = beta == 0 ? Enumerable.Repeat(float.NaN, (int)((batch - 1) * strideC + sizeC)).ToArray()
            : Inputs.Uniform(rng, (batch - 1) * strideC + sizeC, -1, 1);

        var expected = HostReference.Gemm(batch, m, n, k, alpha, a, strideA, transA, b, strideB, transB, beta, c, strideC, out var magnitude);
        using var ab = Upload(a);
        using var bb = Upload(b);
        using var cb = Upload(c);
        K.Gemm(new GemmSize(batch, m, n, k), new GemmOperand(ab, transA, strideA), new GemmOperand(bb, transB, strideB),
            new GemmOutput(cb, strideC) { Alpha = alpha, Beta = beta });
        KernelAssert.Close(expected, cb.ToArray(), i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i],
            $"Gemm m={m} n={n} k={k} transA={transA} transB={transB} {layout} alpha={alpha} beta={beta}");
    }

    /// <summary>
    /// GemmIndexed cases: (m, n, k, transA, transB, batch layout, which maps, alpha, beta). Maps are random
    /// permutations over the whole matrix or over blocks of a divisor of its size.
    /// </summary>
    public static IEnumerable<object[]> GemmIndexedCases(ShapeTier tier)
    {
        var sizes = new List<(int M, int N, int K)> { (1, 1, 1), (1, 7, 13), (13, 1, 7), (6, 10, 15), (31, 67, 5) };
        if (tier == ShapeTier.Full)
        {
            sizes.Add((33, 47, 29));
            sizes.Add((64, 64, 64));
        }
        int row = 0;
        var layouts = Enum.GetValues<GemmBatch>();
        foreach (var (m, n, k) in sizes)
        foreach (var ta in new[] { false, true })
        foreach (var tb in new[] { false, true })
        foreach (var maps in Enum.GetValues<GemmMaps>())
        {
            row++;
            yield return row % 2 == 0
                ? Row(m, n, k, ta, tb, layouts[row % layouts.Length], maps, 1f, 0f)
                : Row(m, n, k, ta, tb, layouts[row % layouts.Length], maps, 0.5f, 2f);
        }
        if (tier == ShapeTier.Full)
        {
            // Past the cache blocks and the threading split (maps wrap inside packed panels), ragged edges.
            foreach (var ta in new[] { false, true })
            foreach (var tb in new[] { false, true })
                yield return Row(257, 263, 301, ta, tb, GemmBatch.Single, GemmMaps.AllWhole, 1f, 0f);
            yield return Row(257, 263, 301, false, true, GemmBatch.SharedB, GemmMaps.Blocks, 0.5f, 2f);
            yield return Row(257, 263, 301, true, false, GemmBatch.SharedA, GemmMaps.Blocks, 1f, 0f);
        }
    }

    /// <summary>
    /// GemmIndexed = Gemm on the unmapped operands, C scattered through its map; NaN padding between strided
    /// matrices must not be read, C's padding stays unchanged, with beta = 0 C is not read.
    /// </summary>
    [Theory, KernelCases(nameof(GemmIndexedCases))]
    public void GemmIndexed_MatchesReference(int m, int n, int k, bool transA, bool transB, GemmBatch layout, GemmMaps maps,
        float alpha, float beta)
    {
        var rng = new Random(37);
        int batch = layout == GemmBatch.Single ? 1 : 3;
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        long strideA = layout switch { GemmBatch.SharedA => 0, GemmBatch.SharedB => sizeA + 3, _ => sizeA };
        long strideB = layout switch { GemmBatch.SharedB => 0, GemmBatch.SharedA => sizeB + 3, _ => sizeB };
        long strideC = layout == GemmBatch.Single ? sizeC : sizeC + 5;
        var a = Operand(rng, batch, sizeA, strideA);
        var b = Operand(rng, batch, sizeB, strideB);
        var c = beta == 0 ? Enumerable.Repeat(float.NaN, (int)((batch - 1) * strideC + sizeC)).ToArray()
            : Inputs.Uniform(rng, (batch - 1) * strideC + sizeC, -1, 1);
        int[]? MapFor(long size, int which)
        {
            bool whole = maps == GemmMaps.AllWhole;
            bool block = maps == GemmMaps.Blocks || (int)maps == which + 2;
            if (!whole && !block) return null;
            int len = (int)size;
            if (!whole)
                for (int d = 2; d < size; d++)
                    if (size % d == 0) { len = (int)(size / d); break; }
            return Inputs.Index(IndexPattern.Permutation, len, len, rng);
        }
        var ma = MapFor(sizeA, 0);
        var mb = MapFor(sizeB, 1);
        var mc = MapFor(sizeC, 2);

        var expected = HostReference.GemmIndexed(batch, m, n, k, alpha, a, strideA, transA, ma, b, strideB, transB, mb,
            beta, c, strideC, mc, out var magnitude);
        using var ab = Upload(a);
        using var bb = Upload(b);
        using var cb = Upload(c);
        using var mab = ma == null ? null : Upload(ma);
        using var mbb = mb == null ? null : Upload(mb);
        using var mcb = mc == null ? null : Upload(mc);
        K.Gemm(new GemmSize(batch, m, n, k),
            new GemmOperand(ab, transA, strideA).WithIndex(mab, ma?.Length ?? 0),
            new GemmOperand(bb, transB, strideB).WithIndex(mbb, mb?.Length ?? 0),
            new GemmOutput(cb, strideC) { Alpha = alpha, Beta = beta }.WithIndex(mcb, mc?.Length ?? 0));
        KernelAssert.Close(expected, cb.ToArray(), i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i],
            $"GemmIndexed m={m} n={n} k={k} transA={transA} transB={transB} {layout} {maps} alpha={alpha} beta={beta}");
    }

    /// <summary>A map whose length does not divide the matrix size is rejected, naming the operand.</summary>
    [Fact]
    public void GemmIndexed_MapNotDividingMatrix_Throws()
    {
        using var ab = Upload(new float[6]);
        using var bb = Upload(new float[6]);
        using var cb = Upload(new float[4]);
        using var mb = Upload(new[] { 1, 0, 3, 2 });
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            K.Gemm(GemmSize.Single(2, 2, 3), new GemmOperand(ab), new GemmOperand(bb).WithIndex(mb, 4), new GemmOutput(cb)));
        Assert.Contains("Gemm", e.Message);
        Assert.Contains("6", e.Message);
    }

    /// <summary>batch matrices of <paramref name="size"/> at multiples of <paramref name="stride"/>, NaN in between.</summary>
    private static float[] Operand(Random rng, int batch, long size, long stride)
    {
        long length = stride == 0 ? size : (batch - 1) * stride + size;
        var x = Enumerable.Repeat(float.NaN, (int)length).ToArray();
        for (int p = 0; p < (stride == 0 ? 1 : batch); p++)
            Inputs.Uniform(rng, size, -1, 1).CopyTo(x, p * stride);
        return x;
    }

    /// <summary>k = 0: C = beta * C (0 when beta is 0, even where C held NaN).</summary>
    [Theory]
    [InlineData(0f)]
    [InlineData(2f)]
    public void Gemm_EmptyK_ScalesC(float beta)
    {
        const int batch = 2, m = 3, n = 5;
        var c = beta == 0 ? Enumerable.Repeat(float.NaN, batch * m * n).ToArray() : Inputs.Uniform(new Random(31), batch * m * n, -1, 1);
        using var ab = K.Allocate(0);
        using var bb = K.Allocate(0);
        using var cb = Upload(c);
        K.Gemm(new GemmSize(batch, m, n, 0), new GemmOperand(ab), new GemmOperand(bb), new GemmOutput(cb, m * n) { Beta = beta });
        var expected = c.Select(v => beta == 0 ? 0.0 : (double)beta * v).ToArray();
        KernelAssert.Close(expected, cb.ToArray(), Tolerance.Arithmetic, $"Gemm k=0 beta={beta}");
    }

    /// <summary>
    /// Operand offsets: A, B and C start past NaN-filled heads (which must not be read, and C's must stay unchanged);
    /// the products equal those of the packed operands.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 1, false, false)]
    [InlineData(7, 5, 3, true, false)]
    [InlineData(13, 17, 9, false, true)]
    [InlineData(6, 10, 15, true, true)]
    public void Gemm_OperandOffsets(int m, int n, int k, bool transA, bool transB)
    {
        var rng = new Random(43);
        const int batch = 2, offA = 3, offB = 5, offC = 7;
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        var a = Inputs.Uniform(rng, batch * sizeA, -1, 1);
        var b = Inputs.Uniform(rng, batch * sizeB, -1, 1);
        var c = Enumerable.Repeat(float.NaN, (int)(batch * sizeC)).ToArray();
        var expected = HostReference.Gemm(batch, m, n, k, 1f, a, sizeA, transA, b, sizeB, transB, 0f, c, sizeC, out var magnitude);
        static float[] Behind(float[] x, int head) => Enumerable.Repeat(float.NaN, head).Concat(x).ToArray();
        using var ab = Upload(Behind(a, offA));
        using var bb = Upload(Behind(b, offB));
        using var cb = Upload(Behind(c, offC));
        K.Gemm(new GemmSize(batch, m, n, k), new GemmOperand(ab, transA, sizeA) { Offset = offA },
            new GemmOperand(bb, transB, sizeB) { Offset = offB }, new GemmOutput(cb, sizeC) { Offset = offC });
        var got = cb.ToArray();
        Assert.All(got[..offC], v => Assert.True(float.IsNaN(v), "Gemm wrote before C's offset"));
        KernelAssert.Close(expected, got[offC..], i => Tolerance.GemmAbs + Tolerance.GemmRel * magnitude[i],
            $"Gemm with offsets m={m} n={n} k={k} transA={transA} transB={transB}");
    }

    /// <summary>A prologue, and any epilogue on a set that does not run one, are rejected before any work, naming the operand.</summary>
    [Fact]
    public void Gemm_PrologueOrEpilogue_NotSupported()
    {
        using var ab = Upload(new float[6]);
        using var bb = Upload(new float[6]);
        using var cb = Filled(4, 7f);
        var size = GemmSize.Single(2, 2, 3);
        var e = Assert.Throws<NotSupportedException>(() =>
            K.Gemm(size, new GemmOperand(ab) { Prologue = new GemmPrologue(UnaryOp.Relu) }, new GemmOperand(bb), new GemmOutput(cb)));
        Assert.Contains("operand a", e.Message);
        if (K is not IGemmEpilogueKernels)
        {
            foreach (var epilogue in new[] { new GemmEpilogue(bb), new GemmEpilogue(Activation: [UnaryOp.Relu]), new GemmEpilogue { Residual = cb } })
            {
                e = Assert.Throws<NotSupportedException>(() =>
                    K.Gemm(size, new GemmOperand(ab), new GemmOperand(bb), new GemmOutput(cb) { Epilogue = epilogue }));
                Assert.Contains("epilogue", e.Message);
            }
        }
        KernelAssert.Exact(Enumerable.Repeat(7.0, 4).ToArray(), cb.ToArray(), "C after rejected calls");
    }

    // ------------------------------------------------------------------ permute, index select / add, one-hot

    /// <summary>Permute cases: (shape, perm): all perms of rank 3, some of ranks 0-2, 4 and 5.</summary>
    public static IEnumerable<object[]> PermuteCases(ShapeTier tier)
    {
        yield return Row(Array.Empty<int>(), Array.Empty<int>());
        yield return Row(new[] { 7 }, new[] { 0 });
        yield return Row(new[] { 13, 17 }, new[] { 1, 0 });
        foreach (var p in Inputs.Permutations(3)) yield return Row(new[] { 3, 5, 7 }, p);
        foreach (var p in new[] { new[] { 0, 1, 2, 3 }, [3, 2, 1, 0], [0, 2, 1, 3], [1, 0, 3, 2], [2, 0, 3, 1], [0, 1, 3, 2], [3, 0, 1, 2] })
            yield return Row(new[] { 2, 3, 5, 7 }, p);
        foreach (var p in new[] { new[] { 4, 3, 2, 1, 0 }, [0, 2, 4, 1, 3], [1, 0, 2, 3, 4], [3, 4, 0, 1, 2] })
            yield return Row(new[] { 2, 3, 1, 4, 5 }, p);
        if (tier == ShapeTier.Full)
        {
            yield return Row(new[] { 257, 1031 }, new[] { 1, 0 });
            yield return Row(new[] { 64, 33, 65 }, new[] { 2, 0, 1 });
            yield return Row(new[] { 33, 65, 64 }, new[] { 0, 2, 1 });
        }
    }

    /// <summary>y.shape[i] = xShape[perm[i]], values exact.</summary>
    [Theory, KernelCases(nameof(PermuteCases))]
    public void Permute_MatchesReference(int[] shape, int[] perm)
    {
        var x = Inputs.Uniform(new Random(37), HostReference.Numel(shape), -1, 1);
        var expected = HostReference.Permute(x, shape, perm);
        using var xb = Upload(x);
        using var yb = Filled(expected.Length, float.NaN);
        K.Permute(xb, shape, perm, yb);
        KernelAssert.Bitwise(expected, yb.ToArray(), $"Permute {S(shape)} by {S(perm)}");
    }

    /// <summary>Index cases: (shape, axis, index length, pattern); shape is x for IndexSelect and y for IndexAdd.</summary>
    public static IEnumerable<object[]> IndexCases(ShapeTier tier)
    {
        int[] s = [5, 6, 7];
        yield return Row(s, 0, 5, IndexPattern.Permutation);
        yield return Row(s, 1, 6, IndexPattern.Permutation);
        yield return Row(s, 2, 7, IndexPattern.Permutation);
        yield return Row(s, 0, 11, IndexPattern.Repeated);
        yield return Row(s, 1, 4, IndexPattern.Repeated);
        yield return Row(s, 2, 9, IndexPattern.Repeated);
        yield return Row(s, 1, 8, IndexPattern.AllSame);
        yield return Row(new[] { 50, 16 }, 0, 37, IndexPattern.Repeated);
        yield return Row(new[] { 7 }, 0, 20, IndexPattern.Repeated);
        if (tier == ShapeTier.Full)
        {
            yield return Row(new[] { 1000, 257 }, 0, 1000, IndexPattern.Permutation);
            yield return Row(new[] { 1000, 257 }, 0, 2049, IndexPattern.Repeated);
            yield return Row(new[] { 64, 1000, 3 }, 1, 500, IndexPattern.Repeated);
            yield return Row(new[] { 64, 100 }, 1, 3001, IndexPattern.AllSame);
            // A wide permuted layer: last-axis gathers split over cores mid-row (40009 is prime).
            yield return Row(new[] { 3, 40009 }, 1, 40009, IndexPattern.Permutation);
        }
    }

    /// <summary>y[..., j, ...] = x[..., index[j], ...], values exact.</summary>
    [Theory, KernelCases(nameof(IndexCases))]
    public void IndexSelect_MatchesReference(int[] xShape, int axis, int indexLength, IndexPattern pattern)
    {
        var rng = new Random(41);
        var x = Inputs.Uniform(rng, HostReference.Numel(xShape), -1, 1);
        var index = Inputs.Index(pattern, xShape[axis], indexLength, rng);
        var expected = HostReference.IndexSelect(x, xShape, axis, index);
        using var xb = Upload(x);
        using var ib = Upload(index);
        using var yb = Filled(expected.Length, float.NaN);
        K.IndexSelect(xb, xShape, axis, ib, indexLength, yb);
        KernelAssert.Bitwise(expected, yb.ToArray(), $"IndexSelect {S(xShape)} axis {axis} {pattern} x{indexLength}");
    }

    /// <summary>y[..., index[j], ...] += src[..., j, ...]: accumulates into y, repeated indices add up.</summary>
    [Theory, KernelCases(nameof(IndexCases))]
    public void IndexAdd_Accumulates(int[] yShape, int axis, int indexLength, IndexPattern pattern)
    {
        var rng = new Random(43);
        var srcShape = (int[])yShape.Clone();
        srcShape[axis] = indexLength;
        var src = Inputs.Uniform(rng, HostReference.Numel(srcShape), -1, 1);
        var y = Inputs.Uniform(rng, HostReference.Numel(yShape), -1, 1);
        var index = Inputs.Index(pattern, yShape[axis], indexLength, rng);
        var expected = HostReference.IndexAdd(src, srcShape, axis, index, y, yShape);
        var magnitude = HostReference.IndexAdd(Array.ConvertAll(src, Math.Abs), srcShape, axis, index, Array.ConvertAll(y, Math.Abs), yShape);
        using var sb = Upload(src);
        using var ib = Upload(index);
        using var yb = Upload(y);
        K.IndexAdd(sb, srcShape, axis, ib, yb, yShape);
        KernelAssert.Close(expected, yb.ToArray(), i => Tolerance.SumAbs + Tolerance.SumRel * magnitude[i],
            $"IndexAdd {S(srcShape)} into {S(yShape)} axis {axis} {pattern}");
    }

    /// <summary>OneHot cases: (rows, classes).</summary>
    public static IEnumerable<object[]> OneHotCases(ShapeTier tier)
    {
        yield return Row(1, 1);
        yield return Row(7, 5);
        yield return Row(33, 10);
        if (tier == ShapeTier.Full) yield return Row(1031, 257);
    }

    /// <summary>y[r, c] = labels[r] == c ? 1 : 0, exact.</summary>
    [Theory, KernelCases(nameof(OneHotCases))]
    public void OneHot_MatchesReference(int rows, int classes)
    {
        var rng = new Random(47);
        var labels = Enumerable.Range(0, rows).Select(_ => rng.Next(classes)).ToArray();
        using var lb = Upload(labels);
        using var yb = Filled((long)rows * classes, float.NaN);
        K.OneHot(lb, rows, classes, yb);
        KernelAssert.Bitwise(HostReference.OneHot(labels, rows, classes), yb.ToArray(), $"OneHot {rows}x{classes}");
    }

    // ------------------------------------------------------------------ softmax, cross-entropy

    /// <summary>Softmax cases: (shape, axis, log, input magnitude).</summary>
    public static IEnumerable<object[]> SoftmaxCases(ShapeTier tier)
    {
        foreach (var log in new[] { false, true })
        {
            foreach (var magnitude in new[] { 3f, 1e4f })
                for (int axis = 0; axis < 3; axis++)
                    yield return Row(new[] { 3, 5, 7 }, axis, log, magnitude);
            yield return Row(new[] { 4, 1, 3 }, 1, log, 3f);
            // Few long lines: the ILGPU set's one-group-per-line tree path.
            yield return Row(new[] { 2, 40 }, 1, log, 3f);
            yield return Row(new[] { 37, 3 }, 0, log, 3f);
            if (tier == ShapeTier.Full)
            {
                yield return Row(new[] { 64, 1031 }, 1, log, 5f);
                yield return Row(new[] { 3, 2049, 5 }, 1, log, 5f);
                yield return Row(new[] { 1031, 64 }, 0, log, 5f);
            }
        }
    }

    /// <summary>Softmax / log-softmax along one axis; finite for inputs of magnitude 1e4 (max subtracted).</summary>
    [Theory, KernelCases(nameof(SoftmaxCases))]
    public void Softmax_MatchesReference(int[] shape, int axis, bool log, float magnitude)
    {
        var x = Inputs.Uniform(new Random(53), HostReference.Numel(shape), -magnitude, magnitude);
        var (outer, len, inner) = HostReference.Split(shape, axis);
        var expected = HostReference.Softmax(x, (int)outer, len, (int)inner, log);
        using var xb = Upload(x);
        using var yb = Filled(x.Length, float.NaN);
        K.Softmax(xb, yb, (int)outer, len, (int)inner, log);
        var got = yb.ToArray();
        var what = $"{(log ? "LogSoftmax" : "Softmax")} {S(shape)} axis {axis} |x|<={magnitude}";
        Assert.All(got, v => Assert.True(float.IsFinite(v), $"{what}: non-finite output {v}"));
        var tol = Tolerance.Transcendental;
        double shift = log ? Tolerance.ShiftUlps * magnitude : 0;
        KernelAssert.Close(expected, got, i => tol.For(expected[i]) + shift, what);
    }

    /// <summary>Cross-entropy cases: (rows, classes, logit magnitude).</summary>
    public static IEnumerable<object[]> CrossEntropyCases(ShapeTier tier)
    {
        yield return Row(1, 1, 3f);
        yield return Row(7, 5, 3f);
        yield return Row(13, 33, 3f);
        yield return Row(3, 40, 20f);
        yield return Row(5, 7, 1e4f);
        if (tier == ShapeTier.Full)
        {
            yield return Row(512, 1031, 3f);
            yield return Row(64, 10007, 5f);
            yield return Row(4096, 10, 3f);
        }
    }

    /// <summary>loss[r] = logsumexp(logits[r]) - logits[r, labels[r]].</summary>
    [Theory, KernelCases(nameof(CrossEntropyCases))]
    public void CrossEntropy_MatchesReference(int rows, int classes, float magnitude)
    {
        var rng = new Random(59);
        var logits = Inputs.Uniform(rng, (long)rows * classes, -magnitude, magnitude);
        var labels = Enumerable.Range(0, rows).Select(_ => rng.Next(classes)).ToArray();
        CheckCrossEntropy(logits, labels, rows, classes, $"CrossEntropy {rows}x{classes} |x|<={magnitude}");
    }

    /// <summary>Logits that overflow exp without the max shift, and losses of 2e4: finite and exact enough.</summary>
    [Fact]
    public void CrossEntropy_ExtremeLogits()
    {
        float[] logits =
        [
            1e4f, -1e4f, 0f,
            1e4f, -1e4f, 0f,
            -1e4f, -1e4f, -1e4f,
            88f, 89f, 90f,
            -100f, -200f, -300f,
            30000f, 30000f, -30000f,
        ];
        int[] labels = [1, 0, 2, 0, 2, 1];
        CheckCrossEntropy(logits, labels, labels.Length, 3, "CrossEntropy extreme logits");
    }

    /// <summary>
    /// dLogits = (softmax - onehot) · dLoss · scale, through the set's loss capability (ILGPU: one fused kernel, a group
    /// per row for long rows; CPU: the composite) and through the composite, against the double reference; the output
    /// starts as NaN.
    /// </summary>
    [Theory, KernelCases(nameof(CrossEntropyCases))]
    public void CrossEntropyBackward_MatchesReference(int rows, int classes, float magnitude)
    {
        var rng = new Random(61);
        var logits = Inputs.Uniform(rng, (long)rows * classes, -magnitude, magnitude);
        var labels = Enumerable.Range(0, rows).Select(_ => rng.Next(classes)).ToArray();
        const float dLoss = -0.75f;
        float scale = 1f / rows;
        double g = (double)dLoss * scale;
        var p = HostReference.Softmax(logits, rows, classes, 1, log: false);
        var expected = new double[p.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < classes; c++)
                expected[(long)r * classes + c] = (p[(long)r * classes + c] - (c == labels[r] ? 1 : 0)) * g;
        using var xb = Upload(logits);
        using var lb = Upload(labels);
        using var gb = Upload([dLoss]);
        foreach (var (name, kernels) in new[] { ("capability", K.LossKernels()), ("composite", (ILossKernels)new CompositeLossKernels(K)) })
        {
            using var db = Filled((long)rows * classes, float.NaN);
            kernels.CrossEntropyBackward(xb, lb, rows, classes, gb, scale, db);
            KernelAssert.Close(expected, db.ToArray(), i =>
            {
                long r = i / classes;
                double rowMax = 0;
                for (int c = 0; c < classes; c++) rowMax = Math.Max(rowMax, Math.Abs(logits[r * classes + c]));
                double pi = p[i];
                return Math.Abs(g) * (Tolerance.Transcendental.Abs + pi * (2 * Tolerance.Transcendental.Rel + 2 * Tolerance.ShiftUlps * rowMax))
                       + 1e-6 * Math.Abs(expected[i]);
            }, $"CrossEntropyBackward ({name}) {rows}x{classes} |x|<={magnitude}");
        }
    }

    private void CheckCrossEntropy(float[] logits, int[] labels, int rows, int classes, string what)
    {
        var expected = HostReference.CrossEntropy(logits, labels, rows, classes);
        using var xb = Upload(logits);
        using var lb = Upload(labels);
        using var yb = Filled(rows, float.NaN);
        K.CrossEntropy(xb, lb, rows, classes, yb);
        var got = yb.ToArray();
        Assert.All(got, v => Assert.True(float.IsFinite(v), $"{what}: non-finite loss {v}"));
        KernelAssert.Close(expected, got, r =>
        {
            double rowMax = 0;
            for (int c = 0; c < classes; c++) rowMax = Math.Max(rowMax, Math.Abs(logits[(long)r * classes + c]));
            return Tolerance.Transcendental.For(expected[r]) + Tolerance.ShiftUlps * rowMax;
        }, what);
    }

    // ------------------------------------------------------------------ empty buffers

    /// <summary>Length-0 buffers: every elementwise op, broadcasting to an empty shape, and reductions are no-ops.</summary>
    [Fact]
    public void EmptyBuffers_AreNoOps()
    {
        using var e = K.Allocate(0);
        using var e2 = K.Allocate(0);
        using var e3 = K.Allocate(0);
        foreach (var op in Enum.GetValues<UnaryOp>()) K.Unary(op, e, e2);
        K.Affine(e, e2, 2f, 1f);
        K.Axpy(2f, e, e2);
        K.Fill(e, 1f);
        K.Copy(e, 0, e2, 0, 0);
        using var three = Upload([1f, 2f, 3f]);
        using var two = Upload([1f, 2f]);
        using var one = Upload([1f]);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            K.Binary(op, e, [0], e2, [0], e3, [0]);
            K.Binary(op, e, [0, 3], three, [3], e2, [0, 3]);
            K.Binary(op, one, [], e, [0], e2, [0]);
            K.Binary(op, e, [2, 0], two, [2, 1], e2, [2, 0]);
        }
        K.BroadcastTo(one, [1], e, [0]);
        foreach (var op in Enum.GetValues<ReduceOp>())
        {
            K.Reduce(op, e, [0, 5], [1], e2);
            K.Reduce(op, e, [0], [], e2);
        }
        K.Permute(e, [0, 3], [1, 0], e2);
        K.Synchronize();
        Assert.Equal(0, e.Length);
        Assert.Equal([1f, 2f, 3f], three.ToArray());
    }

    /// <summary>The sum over an empty axis is 0 (Mean and Max of nothing are left undefined by the contract).</summary>
    [Fact]
    public void Reduce_SumOverEmptyAxis_IsZero()
    {
        using var x = K.Allocate(0);
        using var y = Filled(5, float.NaN);
        K.Reduce(ReduceOp.Sum, x, [0, 5], [0], y);
        KernelAssert.Exact(new double[5], y.ToArray(), "Sum over an axis of extent 0");
    }
}

/// <summary>The hand-written SIMD CPU kernel set, on the full tables (large shapes hit SIMD bodies, cache blocks and threads).</summary>
[ShapeTier(ShapeTier.Full)]
public sealed class CpuKernelSetTests : KernelSetTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>The contract: the CPU set sums in double. 1e8 + 1000 ones - 1e8 is 1000 exactly in double, ~0 in float.</summary>
    [Fact]
    public void Reduce_SumAccumulatesInDouble()
    {
        var x = new float[1002];
        Array.Fill(x, 1f);
        x[0] = 1e8f;
        x[^1] = -1e8f;
        using var xb = Upload(x);
        using var yb = Filled(1, float.NaN);
        K.Reduce(ReduceOp.Sum, xb, [x.Length], [0], yb);
        Assert.Equal(1000f, yb.ToArray()[0]);
        K.Reduce(ReduceOp.Mean, xb, [x.Length], [0], yb);
        float mean = yb.ToArray()[0];
        Assert.True(Math.Abs(mean - 1000.0 / 1002) < 1e-7, $"Mean {mean}, expected {1000.0 / 1002}");
    }
}

/// <summary>
/// The ILGPU kernel set on ILGPU's CPU emulator: small tables, plus agreement with the CPU set. In the "ilgpu"
/// collection (defined in tests/IlgpuCollection.cs, parallelization disabled): ILGPU's CPU accelerator runs one
/// kernel at a time.
/// </summary>
[Collection("ilgpu")]
[ShapeTier(ShapeTier.Small)]
public sealed class IlgpuKernelSetTests : KernelSetTests
{
    /// <inheritdoc />
    protected override Device Device => TestDevices.Ilgpu;

    /// <summary>Cases run on both kernel sets.</summary>
    public enum CrossCase
    {
        /// <summary>Binary Mul [5,1] x [1,7] and GeluErf.</summary>
        Elementwise,
        /// <summary>Reduce Sum over axes {0, 2} of [3,5,7].</summary>
        ReduceSum,
        /// <summary>Batched GEMM 13x17x9, transA, shared B.</summary>
        Gemm,
        /// <summary>Log-softmax [4, 9] along the last axis, and cross-entropy.</summary>
        SoftmaxAndLoss,
        /// <summary>RandomNormal and RandomUniform, 1000 elements, bitwise equal.</summary>
        Random,
    }

    /// <summary>Every cross case.</summary>
    public static IEnumerable<object[]> CrossCases(ShapeTier tier) => Enum.GetValues<CrossCase>().Select(c => new object[] { c });

    /// <summary>The ILGPU set and the CPU set agree with each other (within twice the reference tolerance).</summary>
    [Theory, KernelCases(nameof(CrossCases))]
    public void AgreesWithCpuSet(CrossCase which)
    {
        var cpu = Device.Get(DeviceKind.Cpu).Kernels;
        var rng = new Random(71);
        switch (which)
        {
            case CrossCase.Elementwise:
            {
                var a = Inputs.Uniform(rng, 5, -3, 3);
                var b = Inputs.Uniform(rng, 7, -3, 3);
                Compare(ks => Run(ks, [a, b], (k, x, y) => k.Binary(BinaryOp.Mul, x[0], [5, 1], x[1], [1, 7], y, [5, 7]), 35),
                    Tolerance.Arithmetic.Twice, "Binary Mul");
                var u = Inputs.ForUnary(UnaryOp.GeluErf, 100, rng);
                Compare(ks => Run(ks, [u], (k, x, y) => k.Unary(UnaryOp.GeluErf, x[0], y), 100),
                    Tolerance.Transcendental.Twice, "GeluErf");
                break;
            }
            case CrossCase.ReduceSum:
            {
                var x = Inputs.Uniform(rng, 105, -1, 1);
                Compare(ks => Run(ks, [x], (k, i, y) => k.Reduce(ReduceOp.Sum, i[0], [3, 5, 7], [0, 2], y), 5),
                    new Tolerance(2 * Tolerance.SumRel * 21, 2 * Tolerance.SumAbs), "Reduce Sum");
                break;
            }
            case CrossCase.Gemm:
            {
                const int m = 13, n = 17, kk = 9, batch = 2;
                var a = Inputs.Uniform(rng, batch * m * kk, -1, 1);
                var b = Inputs.Uniform(rng, kk * n, -1, 1);
                Compare(ks => Run(ks, [a, b], (k, i, c) => k.Gemm(new GemmSize(batch, m, n, kk), new GemmOperand(i[0], true, m * kk),
                        new GemmOperand(i[1]), new GemmOutput(c, m * n)), batch * m * n),
                    new Tolerance(0, 2 * (Tolerance.GemmAbs + Tolerance.GemmRel * kk)), "Gemm");
                break;
            }
            case CrossCase.SoftmaxAndLoss:
            {
                var x = Inputs.Uniform(rng, 36, -5, 5);
                Compare(ks => Run(ks, [x], (k, i, y) => k.Softmax(i[0], y, 4, 9, 1, log: true), 36),
                    new Tolerance(2 * Tolerance.Transcendental.Rel, 2 * (Tolerance.Transcendental.Abs + Tolerance.ShiftUlps * 5)), "LogSoftmax");
                int[] labels = [3, 0, 8, 8];
                Compare(ks =>
                    {
                        using var xb = DeviceData.Upload(ks, x);
                        using var lb = ks.AllocateInt(4);
                        lb.CopyFromHost(labels);
                        using var yb = ks.Allocate(4);
                        ks.CrossEntropy(xb, lb, 4, 9, yb);
                        return yb.ToArray();
                    },
                    new Tolerance(2 * Tolerance.Transcendental.Rel, 2 * (Tolerance.Transcendental.Abs + Tolerance.ShiftUlps * 5)), "CrossEntropy");
                break;
            }
            case CrossCase.Random:
                // Ranges that are not powers of two: the product rounds, so any contraction or split would show.
                foreach (var (a, b) in new[] { (-0.37f, 1.91f), (2.5f, 7.3f), (-1f, 1f) })
                {
                    Bitwise(ks => Run(ks, [], (k, _, y) => k.RandomUniform(y, 99, a, b), 1000), $"RandomUniform [{a}, {b})");
                    Bitwise(ks => Run(ks, [], (k, _, y) => k.RandomNormal(y, 99, a, b), 1000), $"RandomNormal mean {a} std {b}");
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(which), which, null);
        }

        void Compare(Func<IKernelSet, float[]> run, Tolerance tol, string what)
        {
            var onCpu = run(cpu);
            var onIlgpu = run(K);
            KernelAssert.Close(onCpu, onIlgpu, tol, $"{what}: ilgpu vs cpu");
        }

        void Bitwise(Func<IKernelSet, float[]> run, string what) =>
            KernelAssert.Bitwise(run(cpu), run(K), $"{what}: ilgpu vs cpu");
    }

    private static float[] Run(IKernelSet ks, float[][] inputs, Action<IKernelSet, DeviceBuffer<float>[], DeviceBuffer<float>> op, int outputLength)
    {
        var bufs = inputs.Select(i => DeviceData.Upload(ks, i)).ToArray();
        try
        {
            using var y = ks.Allocate(outputLength);
            op(ks, bufs, y);
            return y.ToArray();
        }
        finally
        {
            foreach (var b in bufs) b.Dispose();
        }
    }
}
