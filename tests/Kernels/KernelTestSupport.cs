using System.Reflection;
using System.Text;
using Engine.Kernels;
using Xunit.Sdk;

namespace Engine.Tests.Kernels;

/// <summary>How large the shapes of a kernel-set test class may be.</summary>
public enum ShapeTier
{
    /// <summary>Tiny shapes only: the ILGPU CPU emulator runs about 0.2 GFLOP/s and ~100 µs per launch.</summary>
    Small,
    /// <summary>The small shapes plus large ones that cross SIMD widths, cache blocks and the threading threshold.</summary>
    Full,
}

/// <summary>Sets the <see cref="ShapeTier"/> of a <see cref="KernelSetTests"/> subclass (default: Small).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ShapeTierAttribute(ShapeTier tier) : Attribute
{
    /// <summary>The tier.</summary>
    public ShapeTier Tier { get; } = tier;
}

/// <summary>
/// Theory data from a public static method <c>IEnumerable&lt;object[]&gt; Name(ShapeTier)</c>, called with the tier of
/// the concrete test class. (xUnit's MemberData resolves on the declaring, abstract class and so cannot vary the
/// cases per subclass.)
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KernelCasesAttribute(string method) : DataAttribute
{
    /// <inheritdoc />
    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
    {
        var type = testMethod.ReflectedType ?? testMethod.DeclaringType!;
        var source = type.GetMethod(method, BindingFlags.Public | BindingFlags.Static | BindingFlags.FlattenHierarchy,
                         [typeof(ShapeTier)])
                     ?? throw new ArgumentException($"{type.Name} has no public static {method}(ShapeTier).");
        return ((IEnumerable<object[]>)source.Invoke(null, [KernelSetTests.TierOf(type)])!).ToList();
    }
}

/// <summary>A tolerance |actual - expected| &lt;= Abs + Rel * |expected|.</summary>
public readonly record struct Tolerance(double Rel, double Abs)
{
    /// <summary>Exactly rounded or nearly so (+, -, *, /, sqrt, reciprocal, moves with arithmetic).</summary>
    public static readonly Tolerance Arithmetic = new(1e-5, 1e-6);

    /// <summary>exp, log, tanh, erf, pow, sigmoid, GELU, softmax: vectorised approximations are allowed a few ulps more.</summary>
    public static readonly Tolerance Transcendental = new(2e-5, 1e-6);

    /// <summary>Sums and means: |err| &lt;= SumAbs + SumRel * sum|x| (the scale of float rounding, see <see cref="HostReference.Reduce"/>).</summary>
    public const double SumRel = 2e-6, SumAbs = 1e-6;

    /// <summary>GEMM: |err| &lt;= GemmAbs + GemmRel * (|alpha| sum_l |a_il b_lj| + |beta c_ij|), the dot-product error scale.</summary>
    public const double GemmRel = 1e-5, GemmAbs = 1e-6;

    /// <summary>
    /// Log-domain outputs (log-softmax, cross-entropy) may lose a few ulps of the largest input when they shift by
    /// the row max and back: extra absolute slack of ShiftUlps * max|x| (2^-22, i.e. 2 ulps).
    /// </summary>
    public const double ShiftUlps = 2.4e-7;

    /// <summary>Both tolerances doubled: two implementations each within the tolerance of the reference.</summary>
    public Tolerance Twice => new(2 * Rel, 2 * Abs);

    /// <summary>The bound for one expected value.</summary>
    public double For(double expected) => Abs + Rel * Math.Abs(expected);

    /// <summary>Tolerance of a unary op (its <see cref="OpTable"/> row's).</summary>
    public static Tolerance Of(UnaryOp op) => OpTable.Of(op).Tolerance;

    /// <summary>Tolerance of a binary op (its <see cref="OpTable"/> row's).</summary>
    public static Tolerance Of(BinaryOp op) => OpTable.Of(op).Tolerance;
}

/// <summary>Array comparisons that report the first mismatches with their indices.</summary>
public static class KernelAssert
{
    private const int MaxReported = 6;

    /// <summary>
    /// Every actual[i] within tol(i) of expected[i]. NaN expected needs NaN, an infinity needs the same infinity,
    /// a NaN actual where a number is expected fails.
    /// </summary>
    public static void Close(double[] expected, float[] actual, Func<long, double> tol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        var report = new StringBuilder();
        long bad = 0;
        double worst = 0;
        for (long i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i], t = tol(i);
            bool ok = double.IsNaN(e) ? double.IsNaN(a)
                : double.IsInfinity(e) ? e == a
                : Math.Abs(a - e) <= t;
            if (ok) continue;
            if (bad++ < MaxReported) report.Append($"\n  [{i}] expected {e:R}, got {a:R}, |diff| {Math.Abs(a - e):G3} > tol {t:G3}");
            if (!double.IsNaN(a)) worst = Math.Max(worst, Math.Abs(a - e) / Math.Max(t, 1e-300));
        }
        if (bad > 0)
            Assert.Fail($"{what}: {bad} of {expected.Length} elements out of tolerance (worst {worst:G3}x tol):{report}");
    }

    /// <summary>Within a relative plus absolute tolerance.</summary>
    public static void Close(double[] expected, float[] actual, Tolerance tol, string what) =>
        Close(expected, actual, i => tol.For(expected[i]), what);

    /// <summary>Float expectations within a tolerance.</summary>
    public static void Close(float[] expected, float[] actual, Tolerance tol, string what) =>
        Close(Array.ConvertAll(expected, v => (double)v), actual, tol, what);

    /// <summary>Same bits (for data movement and for the counter-based RNG).</summary>
    public static void Bitwise(float[] expected, float[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        var report = new StringBuilder();
        long bad = 0;
        for (long i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) continue;
            if (bad++ < MaxReported) report.Append($"\n  [{i}] expected {expected[i]:R}, got {actual[i]:R}");
        }
        if (bad > 0) Assert.Fail($"{what}: {bad} of {expected.Length} elements differ bitwise:{report}");
    }

    /// <summary>Same values (NaN equals NaN, -0 equals +0).</summary>
    public static void Exact(double[] expected, float[] actual, string what) => Close(expected, actual, _ => 0, what);
}

/// <summary>Deterministic test inputs (System.Random with fixed seeds; never string hashes, which vary per process).</summary>
public static class Inputs
{
    /// <summary>Uniform floats in [lo, hi).</summary>
    public static float[] Uniform(Random rng, long n, double lo, double hi)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rng.NextDouble());
        return x;
    }

    /// <summary>Small integers in [lo, hi] as floats: ties and equalities happen often.</summary>
    public static float[] SmallInts(Random rng, long n, int lo, int hi)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = rng.Next(lo, hi + 1);
        return x;
    }

    /// <summary>Inputs inside the op's domain (its <see cref="OpTable"/> row's); ops defined at 0 also get +0 and -0.</summary>
    public static float[] ForUnary(UnaryOp op, long n, Random rng) => OpTable.Of(op).Inputs(rng, n);

    /// <summary>One operand of a binary op inside its domain (<paramref name="second"/>: the b operand).</summary>
    public static float[] ForBinary(BinaryOp op, long n, Random rng, bool second) => OpTable.Of(op).Inputs(rng, n, second);

    /// <summary>Indices into an axis of <paramref name="extent"/> following <paramref name="pattern"/>.</summary>
    public static int[] Index(IndexPattern pattern, int extent, int length, Random rng)
    {
        switch (pattern)
        {
            case IndexPattern.Permutation:
            {
                if (length != extent) throw new ArgumentException("a permutation needs length == extent");
                var p = Enumerable.Range(0, extent).ToArray();
                rng.Shuffle(p);
                return p;
            }
            case IndexPattern.Repeated:
            {
                var p = new int[length];
                for (int i = 0; i < length; i++) p[i] = rng.Next(extent);
                if (length > 2) p[length - 1] = p[0]; // at least one repeat
                return p;
            }
            case IndexPattern.AllSame:
                return Enumerable.Repeat(extent / 2, length).ToArray();
            default:
                throw new ArgumentOutOfRangeException(nameof(pattern), pattern, null);
        }
    }

    /// <summary>All subsets of {0..rank-1}, each sorted ascending, the empty one first.</summary>
    public static IEnumerable<int[]> AxisSubsets(int rank)
    {
        for (int mask = 0; mask < 1 << rank; mask++)
            yield return Enumerable.Range(0, rank).Where(d => (mask >> d & 1) != 0).ToArray();
    }

    /// <summary>All n! permutations of {0..n-1}.</summary>
    public static IEnumerable<int[]> Permutations(int n)
    {
        if (n == 0)
        {
            yield return [];
            yield break;
        }
        foreach (var rest in Permutations(n - 1))
            for (int at = 0; at <= rest.Length; at++)
            {
                var p = new int[n];
                for (int i = 0, j = 0; i < n; i++) p[i] = i == at ? n - 1 : rest[j++];
                yield return p;
            }
    }
}

/// <summary>How index tests pick their indices.</summary>
public enum IndexPattern
{
    /// <summary>A random permutation of the axis (index length = extent).</summary>
    Permutation,
    /// <summary>Random indices with repeats (index length may differ from the extent).</summary>
    Repeated,
    /// <summary>Every index the same: maximal contention for IndexAdd.</summary>
    AllSame,
}

/// <summary>Which operands a GemmIndexed test maps, and how.</summary>
public enum GemmMaps
{
    /// <summary>A, B and C each mapped by a permutation of their whole matrix.</summary>
    AllWhole,
    /// <summary>A, B and C each mapped blockwise (a divisor of the matrix size, when there is one).</summary>
    Blocks,
    /// <summary>Only A, mapped blockwise.</summary>
    AOnly,
    /// <summary>Only B, mapped blockwise.</summary>
    BOnly,
    /// <summary>Only C, mapped blockwise.</summary>
    COnly,
}

/// <summary>How a GEMM test lays out its batch.</summary>
public enum GemmBatch
{
    /// <summary>batch = 1, packed buffers.</summary>
    Single,
    /// <summary>batch = 3, strideA = 0 (A shared); B strided with NaN padding between matrices; C padded.</summary>
    SharedA,
    /// <summary>batch = 3, strideB = 0 (B shared); A strided with NaN padding between matrices; C padded.</summary>
    SharedB,
}
