using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Intr = System.Runtime.Intrinsics.Vector128;

namespace Engine.Kernels.Vectors;

/// <summary>4 float lanes over <see cref="Vector128{T}"/> (SSE / NEON).</summary>
internal readonly struct Vec128(Vector128<float> value) : IFloatVector<Vec128, Vec128D>
{
    /// <summary>The lanes.</summary>
    public readonly Vector128<float> Value = value;

    public static int Count => 4;
    public static Vec128 Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector128<float>.Zero); }
    public static Vec128 One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector128<float>.One); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Create(float value) => new(Intr.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec128 Load(float* source) => new(Intr.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec128 value, float* destination) => Intr.Store(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreAlignedNonTemporal(Vec128 value, float* destination) => Intr.StoreAlignedNonTemporal(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GetElement(Vec128 value, int index) => value.Value.GetElement(index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator +(Vec128 left, Vec128 right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator -(Vec128 left, Vec128 right) => new(left.Value - right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator *(Vec128 left, Vec128 right) => new(left.Value * right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator /(Vec128 left, Vec128 right) => new(left.Value / right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator -(Vec128 value) => new(-value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator &(Vec128 left, Vec128 right) => new(left.Value & right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator |(Vec128 left, Vec128 right) => new(left.Value | right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 operator ~(Vec128 value) => new(~value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 FusedMultiplyAdd(Vec128 a, Vec128 b, Vec128 c) => new(Intr.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Sqrt(Vec128 value) => new(Intr.Sqrt(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Abs(Vec128 value) => new(Intr.Abs(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 CopySign(Vec128 value, Vec128 sign) => new(Intr.CopySign(value.Value, sign.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Round(Vec128 value) => new(Intr.Round(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Max(Vec128 left, Vec128 right) => new(Intr.Max(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 MaxNative(Vec128 left, Vec128 right) => new(Intr.MaxNative(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 MinNative(Vec128 left, Vec128 right) => new(Intr.MinNative(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Equal(Vec128 left, Vec128 right) => new(Intr.Equals(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 GreaterThan(Vec128 left, Vec128 right) => new(Intr.GreaterThan(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 GreaterThanOrEqual(Vec128 left, Vec128 right) => new(Intr.GreaterThanOrEqual(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 LessThan(Vec128 left, Vec128 right) => new(Intr.LessThan(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 LessThanOrEqual(Vec128 left, Vec128 right) => new(Intr.LessThanOrEqual(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 Select(Vec128 mask, Vec128 ifTrue, Vec128 ifFalse) =>
        new(Sse41.IsSupported ? Sse41.BlendVariable(ifFalse.Value, ifTrue.Value, mask.Value) : Intr.ConditionalSelect(mask.Value, ifTrue.Value, ifFalse.Value));

    /// <summary>
    /// Looks up both 4-entry halves of the table by the low two index bits (one <c>vpermilps</c> each with AVX) and
    /// picks by the third bit, moved into the sign bit that <c>blendvps</c> reads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 Lookup8(Vector256<float> table, Vec128 index)
    {
        var i = index.Value.AsInt32();
        Vector128<float> lower, upper;
        if (Avx.IsSupported)
        {
            lower = Avx.PermuteVar(table.GetLower(), i);
            upper = Avx.PermuteVar(table.GetUpper(), i);
        }
        else
        {
            var low2 = i & Intr.Create(3);
            lower = Intr.Shuffle(table.GetLower(), low2);
            upper = Intr.Shuffle(table.GetUpper(), low2);
        }
        var third = Intr.ShiftLeft(i, 29).AsSingle();
        return new(Sse41.IsSupported ? Sse41.BlendVariable(lower, upper, third) : Intr.ConditionalSelect(Intr.ShiftRightArithmetic(i << 29, 31).AsSingle(), upper, lower));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 ScaleByPowerOfTwo(Vec128 p, Vec128 n)
    {
        var ni = Intr.ConvertToInt32Native(n.Value);
        var n1 = Intr.ShiftRightArithmetic(ni, 1);
        var n2 = ni - n1;
        var s1 = Intr.ShiftLeft(n1 + Intr.Create(127), 23).AsSingle();
        var s2 = Intr.ShiftLeft(n2 + Intr.Create(127), 23).AsSingle();
        return new(p.Value * s1 * s2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128 Log(Vec128 value) => new(Intr.Log(value.Value));

    public static unsafe Vec128 Pow(Vec128 x, Vec128 y)
    {
        float* r = stackalloc float[4];
        for (int i = 0; i < 4; i++) r[i] = MathF.Pow(x.Value.GetElement(i), y.Value.GetElement(i));
        return Load(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec128 value) => Intr.Sum(value.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Deinterleave(Vec128 low, Vec128 high, out Vec128 re, out Vec128 im)
    {
        if (Sse.IsSupported)
        {
            re = new(Sse.Shuffle(low.Value, high.Value, 0b10_00_10_00));
            im = new(Sse.Shuffle(low.Value, high.Value, 0b11_01_11_01));
            return;
        }
        re = new(Vector128.Create(low.Value[0], low.Value[2], high.Value[0], high.Value[2]));
        im = new(Vector128.Create(low.Value[1], low.Value[3], high.Value[1], high.Value[3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave(Vec128 re, Vec128 im, out Vec128 low, out Vec128 high)
    {
        if (Sse.IsSupported)
        {
            low = new(Sse.UnpackLow(re.Value, im.Value));
            high = new(Sse.UnpackHigh(re.Value, im.Value));
            return;
        }
        low = new(Vector128.Create(re.Value[0], im.Value[0], re.Value[1], im.Value[1]));
        high = new(Vector128.Create(re.Value[2], im.Value[2], re.Value[3], im.Value[3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(Vec128 value, out Vec128D lower, out Vec128D upper)
    {
        var (l, u) = Intr.Widen(value.Value);
        lower = new(l);
        upper = new(u);
    }
}

/// <summary>2 double lanes over <see cref="Vector128{T}"/>: the accumulators of <see cref="Vec128"/>.</summary>
internal readonly struct Vec128D(Vector128<double> value) : IDoubleVector<Vec128D>
{
    /// <summary>The lanes.</summary>
    public readonly Vector128<double> Value = value;

    public static int Count => 2;
    public static Vec128D Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector128<double>.Zero); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec128D Load(double* source) => new(Intr.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec128D value, double* destination) => Intr.Store(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec128D operator +(Vec128D left, Vec128D right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128D FusedMultiplyAdd(Vec128D a, Vec128D b, Vec128D c) => new(Intr.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double Sum(Vec128D value) => Intr.Sum(value.Value);
}
