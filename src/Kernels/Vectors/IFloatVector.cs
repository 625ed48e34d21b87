using System.Runtime.Intrinsics;

namespace Engine.Kernels.Vectors;

/// <summary>
/// A SIMD vector of float lanes at one width, so that a CPU kernel is written once as a generic method over the
/// vector type and compiled per width (<see cref="Vec512"/>, <see cref="Vec256"/>, <see cref="Vec128"/>, and
/// <see cref="Vec1"/>, the scalar lane). Every member is an aggressively inlined static over the matching
/// <c>System.Runtime.Intrinsics</c> operation, so the JIT emits the instructions of hand-written code for that width;
/// a width without hardware support still runs (in software), which is how every width is tested everywhere.
/// Two things the JIT cannot see through a wrapper struct, so the interface states them itself: that an operand is a
/// constant (a clamp uses <see cref="MaxNative"/> and <see cref="MinNative"/>, one instruction each, where
/// <c>Max(x, constant)</c> would compile to the full NaN- and sign-aware sequence), and that a mask came from a
/// comparison (<see cref="Select"/>).
/// </summary>
/// <remarks>
/// The operations are lane-wise and give the same bits at every width (the scalar lane included): a kernel's scalar
/// tail computes one element through the same generic code as its vector body. Two exceptions, both documented where
/// they are: <see cref="Sum"/> adds the lanes in a width-dependent order, and masks (the results of comparisons) are
/// all-ones or all-zeros bit patterns, meant for <see cref="Select"/> and the bitwise operators only.
/// </remarks>
internal interface IFloatVector<TSelf> where TSelf : unmanaged, IFloatVector<TSelf>
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }

    /// <summary>All lanes 0.</summary>
    static abstract TSelf Zero { get; }

    /// <summary>All lanes 1.</summary>
    static abstract TSelf One { get; }

    /// <summary>All lanes <paramref name="value"/>.</summary>
    static abstract TSelf Create(float value);

    /// <summary>Loads <see cref="Count"/> floats (no alignment needed).</summary>
    static abstract unsafe TSelf Load(float* source);

    /// <summary>Stores <see cref="Count"/> floats (no alignment needed).</summary>
    static abstract unsafe void Store(TSelf value, float* destination);

    /// <summary>Stores with a non-temporal hint; <paramref name="destination"/> is aligned to the vector size.</summary>
    static abstract unsafe void StoreAlignedNonTemporal(TSelf value, float* destination);

    /// <summary>Lane <paramref name="index"/>.</summary>
    static abstract float GetElement(TSelf value, int index);

    /// <summary>Lane-wise sum.</summary>
    static abstract TSelf operator +(TSelf left, TSelf right);

    /// <summary>Lane-wise difference.</summary>
    static abstract TSelf operator -(TSelf left, TSelf right);

    /// <summary>Lane-wise product.</summary>
    static abstract TSelf operator *(TSelf left, TSelf right);

    /// <summary>Lane-wise quotient.</summary>
    static abstract TSelf operator /(TSelf left, TSelf right);

    /// <summary>Lane-wise negation.</summary>
    static abstract TSelf operator -(TSelf value);

    /// <summary>Bitwise and (with a mask: keeps the lanes where the mask is set).</summary>
    static abstract TSelf operator &(TSelf left, TSelf right);

    /// <summary>Bitwise or.</summary>
    static abstract TSelf operator |(TSelf left, TSelf right);

    /// <summary>Bitwise complement.</summary>
    static abstract TSelf operator ~(TSelf value);

    /// <summary>a · b + c with one rounding.</summary>
    static abstract TSelf FusedMultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>Square root (correctly rounded).</summary>
    static abstract TSelf Sqrt(TSelf value);

    /// <summary>|x|.</summary>
    static abstract TSelf Abs(TSelf value);

    /// <summary>The magnitude of <paramref name="value"/> with the sign of <paramref name="sign"/>.</summary>
    static abstract TSelf CopySign(TSelf value, TSelf sign);

    /// <summary>Round to the nearest integer, ties to even.</summary>
    static abstract TSelf Round(TSelf value);

    /// <summary>IEEE maximum: a NaN in either lane gives NaN, +0 is above -0.</summary>
    static abstract TSelf Max(TSelf left, TSelf right);

    /// <summary>
    /// The x86 <c>maxps</c> semantics on every platform's scalar lane: <paramref name="left"/> when it is greater,
    /// else <paramref name="right"/> (so a NaN in either gives <paramref name="right"/>). One instruction; clamp with the
    /// bound on the left to let NaN through.
    /// </summary>
    static abstract TSelf MaxNative(TSelf left, TSelf right);

    /// <summary>The <c>minps</c> twin of <see cref="MaxNative"/>: <paramref name="left"/> when it is smaller, else <paramref name="right"/>.</summary>
    static abstract TSelf MinNative(TSelf left, TSelf right);

    /// <summary>Mask of the lanes where left == right (false for NaN).</summary>
    static abstract TSelf Equal(TSelf left, TSelf right);

    /// <summary>Mask of the lanes where left &gt; right.</summary>
    static abstract TSelf GreaterThan(TSelf left, TSelf right);

    /// <summary>Mask of the lanes where left &gt;= right.</summary>
    static abstract TSelf GreaterThanOrEqual(TSelf left, TSelf right);

    /// <summary>Mask of the lanes where left &lt; right.</summary>
    static abstract TSelf LessThan(TSelf left, TSelf right);

    /// <summary>Mask of the lanes where left &lt;= right.</summary>
    static abstract TSelf LessThanOrEqual(TSelf left, TSelf right);

    /// <summary>
    /// <paramref name="ifTrue"/> where <paramref name="mask"/> is set, else <paramref name="ifFalse"/>, for a mask whose
    /// lanes are all ones or all zeros (comparisons and their bitwise combinations). One blend instruction where the CPU
    /// has it: the JIT cannot see through the wrapper that a mask came from a comparison, so a plain
    /// ConditionalSelect would cost an and, an andnot and an or.
    /// </summary>
    static abstract TSelf Select(TSelf mask, TSelf ifTrue, TSelf ifFalse);

    /// <summary>
    /// Lane i is <c>table[bits(index_i) &amp; 7]</c>: an 8-entry table lookup indexed by the low three bits of each
    /// lane's bit pattern (one variable permute on AVX2 and AVX-512). A piecewise fit reads its coefficients with it:
    /// the lanes of <c>j + 1.5·2^23</c> hold the small integer j in those bits.
    /// </summary>
    static abstract TSelf Lookup8(Vector256<float> table, TSelf index);

    /// <summary>
    /// p · 2^n for integral n in [-252, 254], as two scalings by normal powers of two (exact unless the result is
    /// subnormal): the last step of an exponential.
    /// </summary>
    static abstract TSelf ScaleByPowerOfTwo(TSelf p, TSelf n);

    /// <summary>Natural logarithm: the runtime's vector algorithm, whose lanes agree at every width.</summary>
    static abstract TSelf Log(TSelf value);

    /// <summary><see cref="MathF.Pow"/> lane by lane (its special cases are not worth a vector reimplementation).</summary>
    static abstract TSelf Pow(TSelf x, TSelf y);

    /// <summary>The sum of the lanes, in the width's own order.</summary>
    static abstract float Sum(TSelf value);

    /// <summary>
    /// Splits 2·Count interleaved (re, im) pairs, the first Count floats in <paramref name="low"/>, the rest in
    /// <paramref name="high"/>, into their real parts and their imaginary parts.
    /// </summary>
    static abstract void Deinterleave(TSelf low, TSelf high, out TSelf re, out TSelf im);

    /// <summary>The inverse of <see cref="Deinterleave"/>.</summary>
    static abstract void Interleave(TSelf re, TSelf im, out TSelf low, out TSelf high);
}

/// <summary>A float vector with its double twin of the same width: reductions widen floats and accumulate in double.</summary>
/// <typeparam name="TSelf">The float vector.</typeparam>
/// <typeparam name="TDouble">Double lanes of the same register width (half as many lanes).</typeparam>
internal interface IFloatVector<TSelf, TDouble> : IFloatVector<TSelf>
    where TSelf : unmanaged, IFloatVector<TSelf, TDouble>
    where TDouble : unmanaged, IDoubleVector<TDouble>
{
    /// <summary>The lower and upper halves of the lanes converted to double (exact).</summary>
    static abstract void Widen(TSelf value, out TDouble lower, out TDouble upper);
}

/// <summary>A SIMD vector of double lanes (the accumulators of <see cref="IFloatVector{TSelf, TDouble}"/>).</summary>
internal interface IDoubleVector<TSelf> where TSelf : unmanaged, IDoubleVector<TSelf>
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }

    /// <summary>All lanes 0.</summary>
    static abstract TSelf Zero { get; }

    /// <summary>Loads <see cref="Count"/> doubles.</summary>
    static abstract unsafe TSelf Load(double* source);

    /// <summary>Stores <see cref="Count"/> doubles.</summary>
    static abstract unsafe void Store(TSelf value, double* destination);

    /// <summary>Lane-wise sum.</summary>
    static abstract TSelf operator +(TSelf left, TSelf right);

    /// <summary>a · b + c with one rounding.</summary>
    static abstract TSelf FusedMultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>The sum of the lanes, in the width's own order.</summary>
    static abstract double Sum(TSelf value);
}
