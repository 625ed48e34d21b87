using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;

namespace Engine.Kernels.Vectors;

/// <summary>
/// Transcendental functions at any vector width. Each follows the scalar definition of its op (the op structs of
/// src/Kernels/Elementwise, same operation order) with a vector exp (Cephes polynomial with FMA, about 1 ulp,
/// denormal and overflow ranges handled) and the runtime's vector log, so results match the scalar definitions to a
/// few ulp, and a <see cref="Vec1"/> lane gives the same bits as a lane of any wider vector.
/// </summary>
/// <remarks>
/// The long functions (tanh, erf and the GELUs) are not inlined: each vector operation is an inlined call into the
/// width's wrapper struct, and inlining such a body into a loop exhausts the JIT's inline budget, which then leaves
/// the wrappers themselves as calls with every vector spilled around them. As their own methods they compile to
/// straight-line intrinsics, called once per vector (a GELU inlines its tanh or erf body into its own method, so it is
/// one call too). The vector goes to and from the call through a 64-byte-aligned slot in the caller's frame, not by
/// value: the runtime passes a vector argument and result through the stack, which is only 16-byte aligned, and in
/// the processes whose stack sits at the wrong offset each such store and its reload straddle cache lines (a GELU
/// pass measured 1.9 ns per element there against 0.85 elsewhere, one thread; through the slot, 0.5 in every
/// process). Loops that call one (<see cref="IUnaryOp.Calls"/>) also hold no other vector across the call. Exp and
/// the sigmoid stay inlined (their loops stay clean).
/// </remarks>
internal static class VecMath
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

    /// <summary>e^x per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        // Clamping keeps 2^n representable as a product of two normal powers of two. The bound is the left operand of
        // the native min/max, so a NaN lane passes through unchanged.
        x = TV.MinNative(TV.Create(ExpMax), TV.MaxNative(TV.Create(ExpMin), x));
        return ExpInRange(x);
    }

    /// <summary>e^x for x in [-104, 89] or NaN (<see cref="Exp{TV}"/> after its clamp; also the exp of the erf baseline in bench/).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV ExpInRange<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        var n = TV.Round(x * TV.Create(Log2E));
        var r = TV.FusedMultiplyAdd(n, TV.Create(-Ln2Hi), x);
        r = TV.FusedMultiplyAdd(n, TV.Create(-Ln2Lo), r);
        var p = TV.FusedMultiplyAdd(TV.Create(P0), r, TV.Create(P1));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(P2));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(P3));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(P4));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(P5));
        p = TV.FusedMultiplyAdd(p, r * r, r + TV.One);
        return TV.ScaleByPowerOfTwo(p, n);
    }

    /// <summary>tanh per lane (Cephes: odd polynomial below 0.625, 1 - 2/(e^{2|x|} + 1) above).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Tanh<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => CallThroughSlot<TV, TanhFn>(x);

    private readonly struct TanhFn : ILongFunction
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static unsafe void InPlace<TV>(float* slot) where TV : unmanaged, IFloatVector<TV> => TV.Store(TanhBody(TV.Load(slot)), slot);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV TanhBody<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        var ax = TV.Abs(x);
        var z = x * x;
        var p = TV.FusedMultiplyAdd(TV.Create(T0), z, TV.Create(T1));
        p = TV.FusedMultiplyAdd(p, z, TV.Create(T2));
        p = TV.FusedMultiplyAdd(p, z, TV.Create(T3));
        p = TV.FusedMultiplyAdd(p, z, TV.Create(T4));
        var small = TV.FusedMultiplyAdd(p * z, x, x);
        var e = Exp(ax + ax);
        var big = TV.One - TV.Create(2f) / (e + TV.One);
        big = TV.CopySign(big, x);
        return TV.Select(TV.LessThan(ax, TV.Create(TanhSmall)), small, big);
    }

    /// <summary>1 / (1 + e^-x) per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Sigmoid<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.One / (TV.One + Exp(-x));

    /// <summary><see cref="ScalarMath.Erf"/> per lane (same fit and operation order; coefficients by 8-entry lookups).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Erf<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => CallThroughSlot<TV, ErfFn>(x);

    private readonly struct ErfFn : ILongFunction
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static unsafe void InPlace<TV>(float* slot) where TV : unmanaged, IFloatVector<TV> => TV.Store(ErfBody(TV.Load(slot)), slot);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ErfBody<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        // The bound on the left: a NaN lane passes through.
        var a = TV.MinNative(TV.Create(ErfFit.Last), TV.Abs(x));
        var index = TV.FusedMultiplyAdd(a, TV.Create(2f), TV.Create(-0.5f)) + TV.Create(ErfFit.IndexBias);
        var j = index - TV.Create(ErfFit.IndexBias);
        var r = TV.FusedMultiplyAdd(j, TV.Create(-0.5f), a);
        var r2 = r * r;
        var p45 = TV.FusedMultiplyAdd(TV.Lookup8(ErfFit.Column(5), index), r, TV.Lookup8(ErfFit.Column(4), index));
        var p23 = TV.FusedMultiplyAdd(TV.Lookup8(ErfFit.Column(3), index), r, TV.Lookup8(ErfFit.Column(2), index));
        var q = TV.FusedMultiplyAdd(TV.Lookup8(ErfFit.Column(7), index), r, TV.Lookup8(ErfFit.Column(6), index));
        q = TV.FusedMultiplyAdd(TV.FusedMultiplyAdd(q, r2, p45), r2, p23);
        var b = TV.Select(TV.Equal(j, TV.Zero), r, TV.Lookup8(ErfFit.Column(0), index));
        var p = TV.FusedMultiplyAdd(TV.FusedMultiplyAdd(q, r, TV.Lookup8(ErfFit.Column(1), index)), r, b);
        // p is erf(|x|) >= +0, so or-ing in x's sign bit is the copysign.
        return p | (x & TV.Create(-0f));
    }

    /// <summary>GELU, tanh form, per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV GeluTanh<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => CallThroughSlot<TV, GeluTanhFn>(x);

    private readonly struct GeluTanhFn : ILongFunction
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static unsafe void InPlace<TV>(float* slot) where TV : unmanaged, IFloatVector<TV> => TV.Store(GeluTanhBody(TV.Load(slot)), slot);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV GeluTanhBody<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        var inner = x + TV.Create(GeluCubic) * x * x * x;
        var t = TanhBody(TV.Create(ScalarMath.SqrtTwoOverPi) * inner);
        return TV.Create(0.5f) * x * (TV.One + t);
    }

    /// <summary>GELU, erf form, per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV GeluErf<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => CallThroughSlot<TV, GeluErfFn>(x);

    private readonly struct GeluErfFn : ILongFunction
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static unsafe void InPlace<TV>(float* slot) where TV : unmanaged, IFloatVector<TV>
        {
            // The body is written here, not in a helper method: one more level of inlining, and the JIT no longer
            // folds the erf's doubled coefficient tables into constants but assembles each on the stack per call.
            var x = TV.Load(slot);
            TV.Store(TV.Create(0.5f) * x * (TV.One + ErfBody(x * TV.Create(ScalarMath.InvSqrt2))), slot);
        }
    }

    /// <summary>A long function as a method that is not inlined: it replaces the vector in a slot by its value.</summary>
    private interface ILongFunction
    {
        /// <summary>The function of the vector at <paramref name="slot"/> (64-byte aligned), stored back there.</summary>
        static abstract unsafe void InPlace<TV>(float* slot) where TV : unmanaged, IFloatVector<TV>;
    }

    /// <summary>128 bytes on the caller's frame: room for one 64-byte-aligned slot wherever the frame sits.</summary>
    [InlineArray(32)]
    private struct SlotStorage
    {
        private float first;
    }

    /// <summary>
    /// <typeparamref name="TF"/> of <paramref name="x"/> through an aligned slot on this frame (see the remarks above):
    /// a full-width store, the call, and a full-width load, none crossing a cache line. Not zeroed first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining), SkipLocalsInit]
    private static unsafe TV CallThroughSlot<TV, TF>(TV x) where TV : unmanaged, IFloatVector<TV> where TF : ILongFunction
    {
        Unsafe.SkipInit(out SlotStorage storage);
        float* slot = (float*)(((nint)Unsafe.AsPointer(ref storage) + 63) & ~(nint)63);
        TV.Store(x, slot);
        TF.InPlace<TV>(slot);
        return TV.Load(slot);
    }

    /// <summary>e^x on one value, bitwise equal to a lane of <see cref="Exp{TV}"/> at any width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x) => Exp<Vec1>(x);
}
