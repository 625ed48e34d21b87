using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Kernels.Cpu;

/// <summary>
/// Vectorised transcendental functions for the CPU kernel set. Each follows the formula of
/// <see cref="ScalarMath"/> (same operation order) with a SIMD exp (Cephes polynomial with FMA, about 1 ulp,
/// denormal and overflow ranges handled) and the runtime's SIMD log, so results match the scalar definitions
/// to a few ulp.
/// </summary>
internal static class SimdMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float ExpMin = -104f;
    private const float ExpMax = 89f;
    private const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f,
        P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;
    private const float T0 = -5.70498872745E-3f, T1 = 2.06390887954E-2f, T2 = -5.37397155531E-2f,
        T3 = 1.33314422036E-1f, T4 = -3.33332819422E-1f;
    private const float TanhSmall = 0.625f;
    private const float GeluCubic = 0.044715f;

    // ---------------------------------------------------------------- one lane
    // Scalar tails (and the peeled heads of streaming loops) compute one element through the 8-lane code, so an
    // element's result never depends on where it sits in the buffer, on the buffer's alignment or on how work was
    // split over threads. Without SIMD hardware they fall back to the scalar definitions.

    /// <summary>e^x, bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Exp(float x) => Vector256.IsHardwareAccelerated ? Exp(Vector256.Create(x)).ToScalar() : MathF.Exp(x);

    /// <summary>ln x, bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Log(float x) => Vector256.IsHardwareAccelerated ? Log(Vector256.Create(x)).ToScalar() : MathF.Log(x);

    /// <summary>tanh x, bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Tanh(float x) => Vector256.IsHardwareAccelerated ? Tanh(Vector256.Create(x)).ToScalar() : MathF.Tanh(x);

    /// <summary>Sigmoid, bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sigmoid(float x) => Vector256.IsHardwareAccelerated ? Sigmoid(Vector256.Create(x)).ToScalar() : 1f / (1f + MathF.Exp(-x));

    /// <summary>erf x, bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Erf(float x) => Vector256.IsHardwareAccelerated ? Erf(Vector256.Create(x)).ToScalar() : ScalarMath.Erf(x);

    /// <summary>GELU (tanh form), bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float GeluTanh(float x) => Vector256.IsHardwareAccelerated ? GeluTanh(Vector256.Create(x)).ToScalar() : ScalarMath.Apply(UnaryOp.GeluTanh, x);

    /// <summary>GELU (erf form), bitwise equal to a lane of the vector versions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float GeluErf(float x) => Vector256.IsHardwareAccelerated ? GeluErf(Vector256.Create(x)).ToScalar() : ScalarMath.Apply(UnaryOp.GeluErf, x);

    // ---------------------------------------------------------------- Vector512

    /// <summary>e^x per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        // Clamping keeps 2^n representable as a product of two normal powers of two; NaN survives Min/Max.
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpMin)), Vector512.Create(ExpMax));
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        var ni = Vector512.ConvertToInt32Native(n);
        var n1 = Vector512.ShiftRightArithmetic(ni, 1);
        var n2 = ni - n1;
        var s1 = Vector512.ShiftLeft(n1 + Vector512.Create(127), 23).AsSingle();
        var s2 = Vector512.ShiftLeft(n2 + Vector512.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    /// <summary>Natural logarithm per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Log(Vector512<float> x) => Vector512.Log(x);

    /// <summary>tanh per lane (Cephes: odd polynomial below 0.625, 1 - 2/(e^{2|x|} + 1) above).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Tanh(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var z = x * x;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(T0), z, Vector512.Create(T1));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(T2));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(T3));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(T4));
        var small = Vector512.FusedMultiplyAdd(p * z, x, x);
        var e = Exp(ax + ax);
        var big = Vector512<float>.One - Vector512.Create(2f) / (e + Vector512<float>.One);
        big = Vector512.CopySign(big, x);
        return Vector512.ConditionalSelect(Vector512.LessThan(ax, Vector512.Create(TanhSmall)), small, big);
    }

    /// <summary>1 / (1 + e^-x) per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Sigmoid(Vector512<float> x) =>
        Vector512<float>.One / (Vector512<float>.One + Exp(-x));

    /// <summary><see cref="ScalarMath.Erf"/> per lane (same fit and operation order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Erf(Vector512<float> x)
    {
        var z = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(0.5f) * z);
        var q = Vector512.Create(-0.82215223f) + t * Vector512.Create(0.17087277f);
        q = Vector512.Create(1.48851587f) + t * q;
        q = Vector512.Create(-1.13520398f) + t * q;
        q = Vector512.Create(0.27886807f) + t * q;
        q = Vector512.Create(-0.18628806f) + t * q;
        q = Vector512.Create(0.09678418f) + t * q;
        q = Vector512.Create(0.37409196f) + t * q;
        q = Vector512.Create(1.00002368f) + t * q;
        var arg = -z * z - Vector512.Create(1.26551223f) + t * q;
        var r = t * Exp(arg);
        var erf = Vector512<float>.One - r;
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), erf, -erf);
    }

    /// <summary>GELU, tanh form, per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> GeluTanh(Vector512<float> x)
    {
        var inner = x + Vector512.Create(GeluCubic) * x * x * x;
        var t = Tanh(Vector512.Create(ScalarMath.SqrtTwoOverPi) * inner);
        return Vector512.Create(0.5f) * x * (Vector512<float>.One + t);
    }

    /// <summary>GELU, erf form, per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> GeluErf(Vector512<float> x) =>
        Vector512.Create(0.5f) * x * (Vector512<float>.One + Erf(x * Vector512.Create(ScalarMath.InvSqrt2)));

    // ---------------------------------------------------------------- Vector256

    /// <summary>e^x per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpMin)), Vector256.Create(ExpMax));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        p = Vector256.FusedMultiplyAdd(p, r * r, r + Vector256<float>.One);
        var ni = Vector256.ConvertToInt32Native(n);
        var n1 = Vector256.ShiftRightArithmetic(ni, 1);
        var n2 = ni - n1;
        var s1 = Vector256.ShiftLeft(n1 + Vector256.Create(127), 23).AsSingle();
        var s2 = Vector256.ShiftLeft(n2 + Vector256.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    /// <summary>Natural logarithm per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Log(Vector256<float> x) => Vector256.Log(x);

    /// <summary>tanh per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Tanh(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var z = x * x;
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(T0), z, Vector256.Create(T1));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(T2));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(T3));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(T4));
        var small = Vector256.FusedMultiplyAdd(p * z, x, x);
        var e = Exp(ax + ax);
        var big = Vector256<float>.One - Vector256.Create(2f) / (e + Vector256<float>.One);
        big = Vector256.CopySign(big, x);
        return Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256.Create(TanhSmall)), small, big);
    }

    /// <summary>1 / (1 + e^-x) per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Sigmoid(Vector256<float> x) =>
        Vector256<float>.One / (Vector256<float>.One + Exp(-x));

    /// <summary><see cref="ScalarMath.Erf"/> per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Erf(Vector256<float> x)
    {
        var z = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(0.5f) * z);
        var q = Vector256.Create(-0.82215223f) + t * Vector256.Create(0.17087277f);
        q = Vector256.Create(1.48851587f) + t * q;
        q = Vector256.Create(-1.13520398f) + t * q;
        q = Vector256.Create(0.27886807f) + t * q;
        q = Vector256.Create(-0.18628806f) + t * q;
        q = Vector256.Create(0.09678418f) + t * q;
        q = Vector256.Create(0.37409196f) + t * q;
        q = Vector256.Create(1.00002368f) + t * q;
        var arg = -z * z - Vector256.Create(1.26551223f) + t * q;
        var r = t * Exp(arg);
        var erf = Vector256<float>.One - r;
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), erf, -erf);
    }

    /// <summary>GELU, tanh form, per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> GeluTanh(Vector256<float> x)
    {
        var inner = x + Vector256.Create(GeluCubic) * x * x * x;
        var t = Tanh(Vector256.Create(ScalarMath.SqrtTwoOverPi) * inner);
        return Vector256.Create(0.5f) * x * (Vector256<float>.One + t);
    }

    /// <summary>GELU, erf form, per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> GeluErf(Vector256<float> x) =>
        Vector256.Create(0.5f) * x * (Vector256<float>.One + Erf(x * Vector256.Create(ScalarMath.InvSqrt2)));
}
