using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Intr = System.Runtime.Intrinsics.Vector256;

namespace Engine.Kernels.Vectors;

/// <summary>8 float lanes over <see cref="Vector256{T}"/> (AVX2 with FMA).</summary>
internal readonly struct Vec256(Vector256<float> value) : IFloatVector<Vec256, Vec256D>
{
    /// <summary>The lanes.</summary>
    public readonly Vector256<float> Value = value;

    public static int Count => 8;
    public static Vec256 Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector256<float>.Zero); }
    public static Vec256 One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector256<float>.One); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Create(float value) => new(Intr.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec256 Load(float* source) => new(Intr.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec256 value, float* destination) => Intr.Store(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreAlignedNonTemporal(Vec256 value, float* destination) => Intr.StoreAlignedNonTemporal(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GetElement(Vec256 value, int index) => value.Value.GetElement(index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator +(Vec256 left, Vec256 right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator -(Vec256 left, Vec256 right) => new(left.Value - right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator *(Vec256 left, Vec256 right) => new(left.Value * right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator /(Vec256 left, Vec256 right) => new(left.Value / right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator -(Vec256 value) => new(-value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator &(Vec256 left, Vec256 right) => new(left.Value & right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator |(Vec256 left, Vec256 right) => new(left.Value | right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 operator ~(Vec256 value) => new(~value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 FusedMultiplyAdd(Vec256 a, Vec256 b, Vec256 c) => new(Intr.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Sqrt(Vec256 value) => new(Intr.Sqrt(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Abs(Vec256 value) => new(Intr.Abs(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 CopySign(Vec256 value, Vec256 sign) => new(Intr.CopySign(value.Value, sign.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Round(Vec256 value) => new(Intr.Round(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Max(Vec256 left, Vec256 right) => new(Intr.Max(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 MaxNative(Vec256 left, Vec256 right) => new(Intr.MaxNative(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 MinNative(Vec256 left, Vec256 right) => new(Intr.MinNative(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Equal(Vec256 left, Vec256 right) => new(Intr.Equals(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 GreaterThan(Vec256 left, Vec256 right) => new(Intr.GreaterThan(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 GreaterThanOrEqual(Vec256 left, Vec256 right) => new(Intr.GreaterThanOrEqual(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 LessThan(Vec256 left, Vec256 right) => new(Intr.LessThan(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 LessThanOrEqual(Vec256 left, Vec256 right) => new(Intr.LessThanOrEqual(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 Select(Vec256 mask, Vec256 ifTrue, Vec256 ifFalse) =>
        new(Avx.IsSupported ? Avx.BlendVariable(ifFalse.Value, ifTrue.Value, mask.Value) : Intr.ConditionalSelect(mask.Value, ifTrue.Value, ifFalse.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 ScaleByPowerOfTwo(Vec256 p, Vec256 n)
    {
        var ni = Intr.ConvertToInt32Native(n.Value);
        var n1 = Intr.ShiftRightArithmetic(ni, 1);
        var n2 = ni - n1;
        var s1 = Intr.ShiftLeft(n1 + Intr.Create(127), 23).AsSingle();
        var s2 = Intr.ShiftLeft(n2 + Intr.Create(127), 23).AsSingle();
        return new(p.Value * s1 * s2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256 Log(Vec256 value) => new(Intr.Log(value.Value));

    public static unsafe Vec256 Pow(Vec256 x, Vec256 y)
    {
        float* r = stackalloc float[8];
        for (int i = 0; i < 8; i++) r[i] = MathF.Pow(x.Value.GetElement(i), y.Value.GetElement(i));
        return Load(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec256 value) => Intr.Sum(value.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(Vec256 value, out Vec256D lower, out Vec256D upper)
    {
        var (l, u) = Intr.Widen(value.Value);
        lower = new(l);
        upper = new(u);
    }
}

/// <summary>4 double lanes over <see cref="Vector256{T}"/>: the accumulators of <see cref="Vec256"/>.</summary>
internal readonly struct Vec256D(Vector256<double> value) : IDoubleVector<Vec256D>
{
    /// <summary>The lanes.</summary>
    public readonly Vector256<double> Value = value;

    public static int Count => 4;
    public static Vec256D Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector256<double>.Zero); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec256D Load(double* source) => new(Intr.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec256D value, double* destination) => Intr.Store(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec256D operator +(Vec256D left, Vec256D right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256D FusedMultiplyAdd(Vec256D a, Vec256D b, Vec256D c) => new(Intr.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double Sum(Vec256D value) => Intr.Sum(value.Value);
}
