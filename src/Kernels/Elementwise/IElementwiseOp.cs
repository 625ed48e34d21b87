using Engine.Kernels.Vectors;

namespace Engine.Kernels.Elementwise;

/// <summary>
/// An elementwise unary op, defined once for every kernel set. A struct implements it with no static state (only
/// parameters, if any, as fields), so kernels are generic over it and the JIT (CPU set) or ILGPU (GPU set) compiles
/// one specialised kernel per op type; ops compose by nesting (<see cref="Compose{TOuter, TInner}"/>).
/// </summary>
internal interface IUnaryOp
{
    /// <summary>
    /// Work per element relative to an add (1 for arithmetic, 4 for a transcendental function); the CPU set splits a
    /// kernel over cores from <c>CheapGrain / Cost</c> elements, and a composed op's cost is the sum of its parts'.
    /// </summary>
    static abstract int Cost { get; }

    /// <summary>
    /// True when <see cref="Vector{TV}"/> is a call rather than inlined code (the long functions of
    /// <see cref="VecMath"/>): a CPU loop then loads no vector ahead of it and holds none across it, since the runtime
    /// keeps a vector held across a call in a stack slot that is only 16-byte aligned. A composed op calls when a part
    /// does.
    /// </summary>
    static virtual bool Calls => false;

    /// <summary>
    /// The op's definition on one float: what the ILGPU kernels and host code run. It must compile inside an ILGPU
    /// kernel: no exceptions, no allocation, only math ILGPU maps (MathF's functions; not MathF.FusedMultiplyAdd,
    /// which ILGPU 1.5.3 leaves as an unresolved call in PTX).
    /// </summary>
    float Scalar(float x);

    /// <summary>
    /// The op on a vector of any width: what the CPU SIMD kernels run (<see cref="Vec1"/> for scalar tails, so a tail
    /// element gets the bits of a vector lane). The same formula as <see cref="Scalar"/>, except that transcendental
    /// functions use <see cref="VecMath"/>'s vector algorithms (a few ulp apart from MathF's).
    /// </summary>
    TV Vector<TV>(TV x) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>An elementwise binary op, defined once for every kernel set; see <see cref="IUnaryOp"/>.</summary>
internal interface IBinaryOp
{
    /// <summary>Work per element relative to an add; see <see cref="IUnaryOp.Cost"/>.</summary>
    static abstract int Cost { get; }

    /// <summary>True when the op's vector form is a call; see <see cref="IUnaryOp.Calls"/>.</summary>
    static virtual bool Calls => false;

    /// <summary>The op's definition on one pair of floats (ILGPU kernels, host code); see <see cref="IUnaryOp.Scalar"/>.</summary>
    float Scalar(float a, float b);

    /// <summary>The op on vectors of any width (CPU SIMD kernels); see <see cref="IUnaryOp.Vector{TV}"/>.</summary>
    TV Vector<TV>(TV a, TV b) where TV : unmanaged, IFloatVector<TV>;
}
