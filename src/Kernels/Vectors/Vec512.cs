using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Intr = System.Runtime.Intrinsics.Vector512;

namespace Engine.Kernels.Vectors;

/// <summary>16 float lanes over <see cref="Vector512{T}"/> (AVX-512; where the CPU lacks it the runtime emulates it, which is how its code is tested everywhere).</summary>
internal readonly struct Vec512(Vector512<float> value) : IFloatVector<Vec512, Vec512D>
{
    /// <summary>The lanes.</summary>
    public readonly Vector512<float> Value = value;

    public static int Count => 16;
    public static Vec512 Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector512<float>.Zero); }
    public static Vec512 One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector512<float>.One); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Create(float value) => new(Intr.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec512 Load(float* source) => new(Intr.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec512 value, float* destination) => Intr.Store(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreAlignedNonTemporal(Vec512 value, float* destination) => Intr.StoreAlignedNonTemporal(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GetElement(Vec512 value, int index) => value.Value.GetElement(index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator +(Vec512 left, Vec512 right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator -(Vec512 left, Vec512 right) => new(left.Value - right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator *(Vec512 left, Vec512 right) => new(left.Value * right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator /(Vec512 left, Vec512 right) => new(left.Value / right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator -(Vec512 value) => new(-value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator &(Vec512 left, Vec512 right) => new(left.Value & right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator |(Vec512 left, Vec512 right) => new(left.Value | right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 operator ~(Vec512 value) => new(~value.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 FusedMultiplyAdd(Vec512 a, Vec512 b, Vec512 c) => new(Intr.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Sqrt(Vec512 value) => new(Intr.Sqrt(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Abs(Vec512 value) => new(Intr.Abs(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 CopySign(Vec512 value, Vec512 sign) => new(Intr.CopySign(value.Value, sign.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Round(Vec512 value) => new(Intr.Round(value.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Max(Vec512 left, Vec512 right) => new(Intr.Max(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 MaxNative(Vec512 left, Vec512 right) => new(Intr.MaxNative(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 MinNative(Vec512 left, Vec512 right) => new(Intr.MinNative(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Equal(Vec512 left, Vec512 right) => new(Intr.Equals(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 GreaterThan(Vec512 left, Vec512 right) => new(Intr.GreaterThan(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 GreaterThanOrEqual(Vec512 left, Vec512 right) => new(Intr.GreaterThanOrEqual(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 LessThan(Vec512 left, Vec512 right) => new(Intr.LessThan(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 LessThanOrEqual(Vec512 left, Vec512 right) => new(Intr.LessThanOrEqual(left.Value, right.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 Select(Vec512 mask, Vec512 ifTrue, Vec512 ifFalse) =>
        new(Avx512F.IsSupported ? Avx512F.BlendVariable(ifFalse.Value, ifTrue.Value, mask.Value) : Intr.ConditionalSelect(mask.Value, ifTrue.Value, ifFalse.Value));

    /// <summary>
    /// The 16-lane permute over the table in the low half, the index masked to its low three bits (the upper half is
    /// not set: Vector512.Create(table, table) is folded into a constant only in some inlining contexts and assembled
    /// on the stack in others).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 Lookup8(Vector256<float> table, Vec512 index)
    {
        var low3 = index.Value.AsInt32() & Intr.Create(7);
        return new(Avx512F.IsSupported ? Avx512F.PermuteVar16x32(table.ToVector512Unsafe(), low3) : Intr.Shuffle(Intr.Create(table, table), low3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 ScaleByPowerOfTwo(Vec512 p, Vec512 n)
    {
        var ni = Intr.ConvertToInt32Native(n.Value);
        var n1 = Intr.ShiftRightArithmetic(ni, 1);
        var n2 = ni - n1;
        var s1 = Intr.ShiftLeft(n1 + Intr.Create(127), 23).AsSingle();
        var s2 = Intr.ShiftLeft(n2 + Intr.Create(127), 23).AsSingle();
        return new(p.Value * s1 * s2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512 Log(Vec512 value) => new(Intr.Log(value.Value));

    public static unsafe Vec512 Pow(Vec512 x, Vec512 y)
    {
        float* r = stackalloc float[16];
        for (int i = 0; i < 16; i++) r[i] = MathF.Pow(x.Value.GetElement(i), y.Value.GetElement(i));
        return Load(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vec512 value) => Intr.Sum(value.Value);

    private static readonly Vector512<int> EvenIdx = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> OddIdx = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    private static readonly Vector512<int> LowIdx = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> HighIdx = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Deinterleave(Vec512 low, Vec512 high, out Vec512 re, out Vec512 im)
    {
        if (Avx512F.IsSupported)
        {
            re = new(Avx512F.PermuteVar16x32x2(low.Value, EvenIdx, high.Value));
            im = new(Avx512F.PermuteVar16x32x2(low.Value, OddIdx, high.Value));
            return;
        }
        Vec256.Deinterleave(new(low.Value.GetLower()), new(low.Value.GetUpper()), out var r0, out var i0);
        Vec256.Deinterleave(new(high.Value.GetLower()), new(high.Value.GetUpper()), out var r1, out var i1);
        re = new(Vector512.Create(r0.Value, r1.Value));
        im = new(Vector512.Create(i0.Value, i1.Value));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave(Vec512 re, Vec512 im, out Vec512 low, out Vec512 high)
    {
        if (Avx512F.IsSupported)
        {
            low = new(Avx512F.PermuteVar16x32x2(re.Value, LowIdx, im.Value));
            high = new(Avx512F.PermuteVar16x32x2(re.Value, HighIdx, im.Value));
            return;
        }
        Vec256.Interleave(new(re.Value.GetLower()), new(im.Value.GetLower()), out var l0, out var h0);
        Vec256.Interleave(new(re.Value.GetUpper()), new(im.Value.GetUpper()), out var l1, out var h1);
        low = new(Vector512.Create(l0.Value, h0.Value));
        high = new(Vector512.Create(l1.Value, h1.Value));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(Vec512 value, out Vec512D lower, out Vec512D upper)
    {
        var (l, u) = Intr.Widen(value.Value);
        lower = new(l);
        upper = new(u);
    }
}

/// <summary>8 double lanes over <see cref="Vector512{T}"/>: the accumulators of <see cref="Vec512"/>.</summary>
internal readonly struct Vec512D(Vector512<double> value) : IDoubleVector<Vec512D>
{
    /// <summary>The lanes.</summary>
    public readonly Vector512<double> Value = value;

    public static int Count => 8;
    public static Vec512D Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(Vector512<double>.Zero); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe Vec512D Load(double* source) => new(Intr.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(Vec512D value, double* destination) => Intr.Store(value.Value, destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec512D operator +(Vec512D left, Vec512D right) => new(left.Value + right.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512D FusedMultiplyAdd(Vec512D a, Vec512D b, Vec512D c) => new(Intr.FusedMultiplyAdd(a.Value, b.Value, c.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double Sum(Vec512D value) => Intr.Sum(value.Value);
}
