using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Kernels.Vectors;

/// <summary>
/// One float lane: the scalar width, and the type of every kernel's scalar tail. Each operation gives the bits one lane
/// of <see cref="Vec256"/> (or any other width) gives, so an element's result never depends on whether it fell into a
/// vector body or a tail, on the buffer's alignment or on how work was split over threads.
/// </summary>
internal readonly struct Vec1(float value) : IFloatVector<Vec1, Vec1D>
{
    /// <summary>The lane.</summary>
    public readonly float Value = value;

    /// <summary>A lane holding <paramref name="value"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static implicit operator Vec1(float value) => new(value);

    /// <summary>The lane's value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static implicit operator float(Vec1 value) => value.Value;

    public static int Count => 1;
    public static Vec1 Zero => new(0f);
    public static Vec1 One => new(1f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Create(float value) => new(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec1 Load(float* source) => new(*source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec1 value, float* destination) => *destination = value.Value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreAlignedNonTemporal(Vec1 value, float* destination) => *destination = value.Value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GetElement(Vec1 value, int index) => value.Value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator +(Vec1 left, Vec1 right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator -(Vec1 left, Vec1 right) => new(left.Value - right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator *(Vec1 left, Vec1 right) => new(left.Value * right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator /(Vec1 left, Vec1 right) => new(left.Value / right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator -(Vec1 value) => new(-value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator &(Vec1 left, Vec1 right) => FromBits(Bits(left) & Bits(right));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator |(Vec1 left, Vec1 right) => FromBits(Bits(left) | Bits(right));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 operator ~(Vec1 value) => FromBits(~Bits(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 FusedMultiplyAdd(Vec1 a, Vec1 b, Vec1 c) => new(MathF.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Sqrt(Vec1 value) => new(MathF.Sqrt(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Abs(Vec1 value) => new(MathF.Abs(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 CopySign(Vec1 value, Vec1 sign) => new(MathF.CopySign(value.Value, sign.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Round(Vec1 value) => new(MathF.Round(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Max(Vec1 left, Vec1 right) => new(MathF.Max(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 MaxNative(Vec1 left, Vec1 right) => left.Value > right.Value ? left : right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 MinNative(Vec1 left, Vec1 right) => left.Value < right.Value ? left : right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Equal(Vec1 left, Vec1 right) => Mask(left.Value == right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 GreaterThan(Vec1 left, Vec1 right) => Mask(left.Value > right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 GreaterThanOrEqual(Vec1 left, Vec1 right) => Mask(left.Value >= right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 LessThan(Vec1 left, Vec1 right) => Mask(left.Value < right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 LessThanOrEqual(Vec1 left, Vec1 right) => Mask(left.Value <= right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 Select(Vec1 mask, Vec1 ifTrue, Vec1 ifFalse) => FromBits((Bits(ifTrue) & Bits(mask)) | (Bits(ifFalse) & ~Bits(mask)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 Lookup8(Vector256<float> table, Vec1 index) => new(table.GetElement(Bits(index) & 7));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 ScaleByPowerOfTwo(Vec1 p, Vec1 n)
    {
        // The vector versions' integer steps on one lane; an out-of-range or NaN n only reaches here with p NaN.
        int ni = (int)n.Value;
        int n1 = ni >> 1, n2 = ni - n1;
        return new(p.Value * BitConverter.Int32BitsToSingle((n1 + 127) << 23) * BitConverter.Int32BitsToSingle((n2 + 127) << 23));
    }

    /// <summary>ln x through the runtime's 4-lane algorithm (the one every wider vector runs), else <see cref="MathF.Log(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1 Log(Vec1 value) =>
        new(Vector128.IsHardwareAccelerated ? Vector128.Log(Vector128.CreateScalar(value.Value)).ToScalar() : MathF.Log(value.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1 Pow(Vec1 x, Vec1 y) => new(MathF.Pow(x.Value, y.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec1 value) => value.Value;

    /// <summary>One (re, im) pair is one lane of each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Deinterleave(Vec1 low, Vec1 high, out Vec1 re, out Vec1 im)
    {
        re = low;
        im = high;
    }

    /// <summary>One (re, im) pair is one lane of each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave(Vec1 re, Vec1 im, out Vec1 low, out Vec1 high)
    {
        low = re;
        high = im;
    }

    /// <summary>The lane as one double; the upper half is empty (kernels run their widening loops only for wider vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(Vec1 value, out Vec1D lower, out Vec1D upper)
    {
        lower = new(value.Value);
        upper = Vec1D.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static int Bits(Vec1 v) => BitConverter.SingleToInt32Bits(v.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static Vec1 FromBits(int bits) => new(BitConverter.Int32BitsToSingle(bits));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static Vec1 Mask(bool set) => FromBits(set ? -1 : 0);
}

/// <summary>One double lane: the accumulator of <see cref="Vec1"/>.</summary>
internal readonly struct Vec1D(double value) : IDoubleVector<Vec1D>
{
    /// <summary>The lane.</summary>
    public readonly double Value = value;

    public static int Count => 1;
    public static Vec1D Zero => new(0.0);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec1D Load(double* source) => new(*source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec1D value, double* destination) => *destination = value.Value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec1D operator +(Vec1D left, Vec1D right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec1D FusedMultiplyAdd(Vec1D a, Vec1D b, Vec1D c) => new(Math.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double Sum(Vec1D value) => value.Value;
}
