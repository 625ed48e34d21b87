using Engine.Autodiff;
using Engine.Kernels;
using Engine.Tests.Autodiff;

namespace Engine.Tests.Kernels;

/// <summary>
/// One row of the elementwise op table: everything the tests know about a <see cref="UnaryOp"/>.
/// </summary>
/// <param name="Op">The op code.</param>
/// <param name="Name">Its name in src/Autodiff/Ops (and of its gradcheck row).</param>
/// <param name="Reference">The mathematical definition in double precision (the host reference).</param>
/// <param name="Tolerance">How far a kernel may be from the reference.</param>
/// <param name="Inputs">Kernel-test inputs inside the op's domain.</param>
/// <param name="Forward">The tensor op whose gradient is checked (an op without a gradient inside a product, so that its zero gradient composes).</param>
/// <param name="GradInputs">Gradcheck inputs: where the op is smooth (away from kinks and poles).</param>
/// <param name="SecondOrder">Whether the gradient itself is gradchecked again.</param>
public sealed record UnaryOpRow(UnaryOp Op, string Name, Func<double, double> Reference, Tolerance Tolerance,
    Func<Random, long, float[]> Inputs, Func<Tensor, Tensor> Forward, Gen GradInputs, bool SecondOrder = false);

/// <summary>One row of the elementwise op table for a <see cref="BinaryOp"/>; see <see cref="UnaryOpRow"/>.</summary>
/// <param name="Op">The op code.</param>
/// <param name="Name">Its name in src/Autodiff/Ops (the prefix of its gradcheck rows, one per broadcasting pattern).</param>
/// <param name="Reference">The definition in double precision on the float operands.</param>
/// <param name="Tolerance">How far a kernel may be from the reference.</param>
/// <param name="Inputs">Kernel-test inputs for the first operand (second = false) or the second.</param>
/// <param name="Forward">The tensor op whose gradient is checked.</param>
/// <param name="GradA">Gradcheck inputs of the first operand.</param>
/// <param name="GradB">Gradcheck inputs of the second operand.</param>
/// <param name="SecondOrder">Whether the gradient itself is gradchecked again.</param>
public sealed record BinaryOpRow(BinaryOp Op, string Name, Func<float, float, double> Reference, Tolerance Tolerance,
    Func<Random, long, bool, float[]> Inputs, Func<Tensor, Tensor, Tensor> Forward, Gen GradA, Gen GradB, bool SecondOrder = false);

/// <summary>
/// The elementwise op table: one row per op code. The host reference (<see cref="HostReference.Apply(UnaryOp, double)"/>),
/// the kernel-test inputs and tolerances (<see cref="Kernels.Inputs.ForUnary"/>, <see cref="Tolerance.Of(UnaryOp)"/>)
/// and the gradcheck rows (<see cref="OpSpecs"/>) all read it, and <see cref="OpCoverageTests"/> fails for an op code
/// without a row. Adding an op adds one row here.
/// </summary>
public static class OpTable
{
    /// <summary>Every unary op.</summary>
    public static readonly IReadOnlyList<UnaryOpRow> Unary =
    [
        new(UnaryOp.Neg, "neg", x => -x, Tolerance.Arithmetic, Signed, x => x.Neg(), Gens.Normal()),
        new(UnaryOp.Exp, "exp", Math.Exp, Tolerance.Transcendental, (r, n) => Kernels.Inputs.Uniform(r, n, -15, 15),
            x => x.Exp(), Gens.Normal(), SecondOrder: true),
        new(UnaryOp.Log, "log", Math.Log, Tolerance.Transcendental, (r, n) => Kernels.Inputs.Uniform(r, n, 0.01, 10),
            x => x.Log(), Gens.Uniform(0.3, 3), SecondOrder: true),
        new(UnaryOp.Sqrt, "sqrt", Math.Sqrt, Tolerance.Arithmetic, (r, n) => WithZeros(Kernels.Inputs.Uniform(r, n, 0, 10), negativeZero: false),
            x => x.Sqrt(), Gens.Uniform(0.3, 3), SecondOrder: true),
        new(UnaryOp.Relu, "relu", x => x > 0 ? x : 0, Tolerance.Arithmetic, Signed, x => x.Relu(), Gens.Distinct),
        new(UnaryOp.GeluTanh, "gelu_tanh", x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
            Tolerance.Transcendental, Signed, x => x.GeluTanh(), Gens.Normal(2), SecondOrder: true),
        new(UnaryOp.GeluErf, "gelu_erf", x => 0.5 * x * (1 + HostReference.Erf(x / Math.Sqrt(2))), Tolerance.Transcendental, Signed,
            x => x.GeluErf(), Gens.Normal(2), SecondOrder: true),
        new(UnaryOp.Tanh, "tanh", Math.Tanh, Tolerance.Transcendental, Signed, x => x.Tanh(), Gens.Normal(), SecondOrder: true),
        new(UnaryOp.Sigmoid, "sigmoid", x => 1 / (1 + Math.Exp(-x)), Tolerance.Transcendental, Signed, x => x.Sigmoid(), Gens.Normal(2),
            SecondOrder: true),
        new(UnaryOp.Erf, "erf", HostReference.Erf, Tolerance.Transcendental, Signed, x => x.Erf(), Gens.Normal(), SecondOrder: true),
        new(UnaryOp.Abs, "abs", Math.Abs, Tolerance.Arithmetic, Signed, x => x.Abs(), Gens.AwayFromZero()),
        new(UnaryOp.Sign, "sign", x => x > 0 ? 1 : x < 0 ? -1 : 0, Tolerance.Arithmetic, Signed, x => x.Sign() * x, Gens.AwayFromZero()),
        new(UnaryOp.Step, "step", x => x > 0 ? 1 : 0, Tolerance.Arithmetic, Signed, x => x.Step() * x, Gens.AwayFromZero()),
        new(UnaryOp.Square, "square", x => x * x, Tolerance.Arithmetic, Signed, x => x.Square(), Gens.Normal(), SecondOrder: true),
        new(UnaryOp.Reciprocal, "reciprocal", x => 1 / x, Tolerance.Arithmetic, AwayFromZero, x => x.Reciprocal(),
            Gens.AwayFromZero(0.5, 2), SecondOrder: true),
    ];

    /// <summary>Every binary op.</summary>
    public static readonly IReadOnlyList<BinaryOpRow> Binary =
    [
        new(BinaryOp.Add, "add", (a, b) => (double)a + b, Tolerance.Arithmetic, Plain, (x, y) => x + y, Gens.Normal(), Gens.Normal()),
        new(BinaryOp.Sub, "sub", (a, b) => (double)a - b, Tolerance.Arithmetic, Plain, (x, y) => x - y, Gens.Normal(), Gens.Normal()),
        new(BinaryOp.Mul, "mul", (a, b) => (double)a * b, Tolerance.Arithmetic, Plain, (x, y) => x * y, Gens.Normal(), Gens.Normal(),
            SecondOrder: true),
        new(BinaryOp.Div, "div", (a, b) => (double)a / b, Tolerance.Arithmetic,
            (r, n, second) => second ? AwayFromZeroBetween(r, n, 0.5, 2) : Kernels.Inputs.Uniform(r, n, -3, 3),
            (x, y) => x / y, Gens.Normal(), Gens.AwayFromZero(0.5, 2), SecondOrder: true),
        new(BinaryOp.Maximum, "maximum", (a, b) => a >= b ? a : b, Tolerance.Arithmetic, WithTies, Ops.Maximum,
            Gens.Grid(0.3, 0), Gens.Grid(0.3, 0.15)),
        new(BinaryOp.Minimum, "minimum", (a, b) => a <= b ? a : b, Tolerance.Arithmetic, WithTies, Ops.Minimum,
            Gens.Grid(0.3, 0), Gens.Grid(0.3, 0.15)),
        new(BinaryOp.Pow, "pow", (a, b) => Math.Pow(a, b), Tolerance.Transcendental,
            (r, n, second) => second ? Kernels.Inputs.Uniform(r, n, -2, 2) : Kernels.Inputs.Uniform(r, n, 0.1, 3),
            Ops.Pow, Gens.Uniform(0.5, 2), Gens.Uniform(-1.5, 1.5), SecondOrder: true),
        new(BinaryOp.Equal, "equal", (a, b) => a == b ? 1 : 0, Tolerance.Arithmetic, (r, n, _) => Kernels.Inputs.SmallInts(r, n, -2, 2),
            (x, y) => Ops.Equal(x, y) * x, Gens.Grid(0.3, 0), Gens.Grid(0.3, 0.15)),
        new(BinaryOp.Greater, "greater", (a, b) => a > b ? 1 : 0, Tolerance.Arithmetic, (r, n, _) => Kernels.Inputs.SmallInts(r, n, -2, 2),
            (x, y) => Ops.Greater(x, y) * x, Gens.Grid(0.3, 0), Gens.Grid(0.3, 0.15)),
    ];

    /// <summary>The row of <paramref name="op"/>.</summary>
    public static UnaryOpRow Of(UnaryOp op) =>
        Unary.FirstOrDefault(r => r.Op == op) ?? throw new ArgumentException($"OpTable: unary op {op} has no row.", nameof(op));

    /// <summary>The row of <paramref name="op"/>.</summary>
    public static BinaryOpRow Of(BinaryOp op) =>
        Binary.FirstOrDefault(r => r.Op == op) ?? throw new ArgumentException($"OpTable: binary op {op} has no row.", nameof(op));

    /// <summary>Uniform in [-6, 6) with +0 and -0 in it.</summary>
    private static float[] Signed(Random rng, long n) => WithZeros(Kernels.Inputs.Uniform(rng, n, -6, 6), negativeZero: true);

    /// <summary>|x| in [0.25, 4) with a random sign.</summary>
    private static float[] AwayFromZero(Random rng, long n) => AwayFromZeroBetween(rng, n, 0.25, 4);

    private static float[] AwayFromZeroBetween(Random rng, long n, double lo, double hi)
    {
        var x = Kernels.Inputs.Uniform(rng, n, lo, hi);
        for (long i = 0; i < n; i++) if (rng.Next(2) == 0) x[i] = -x[i];
        return x;
    }

    /// <summary>Uniform in [-3, 3).</summary>
    private static float[] Plain(Random rng, long n, bool second) => Kernels.Inputs.Uniform(rng, n, -3, 3);

    /// <summary>Half small integers (ties between the operands), half arbitrary floats.</summary>
    private static float[] WithTies(Random rng, long n, bool second)
    {
        var x = Kernels.Inputs.Uniform(rng, n, -3, 3);
        for (long i = 0; i < n; i++) if (rng.Next(2) == 0) x[i] = rng.Next(-2, 3);
        return x;
    }

    private static float[] WithZeros(float[] x, bool negativeZero)
    {
        if (x.Length > 0) x[0] = 0f;
        if (negativeZero && x.Length > 2) x[x.Length / 2] = -0f;
        return x;
    }
}
