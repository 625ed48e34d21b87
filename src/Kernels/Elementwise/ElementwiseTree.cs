using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Elementwise;

// Expression trees of elementwise ops as one struct type: leaves name an input (Input0..Input3), nodes apply a unary
// or binary op struct to their children. A kernel generic over the tree reads each input once per element and keeps
// every intermediate in a register; a leaf repeated reads the same register again. Types such as
// BinaryNode<MulOp, Input1, BinaryNode<AddOp, UnaryNode<ErfOp, Input0>, Input0>> are built at run time with
// Type.MakeGenericType (see ElementwiseChains.Tree).

/// <summary>
/// An elementwise expression over up to four inputs, as one struct. Defined once for every kernel set, like
/// <see cref="IUnaryOp"/>: the CPU set runs <see cref="Vector{TV}"/>, the ILGPU set <see cref="Scalar"/>.
/// </summary>
internal interface ITreeOp
{
    /// <summary>Work per element relative to an add: the sum of the ops' costs (see <see cref="IUnaryOp.Cost"/>).</summary>
    static abstract int Cost { get; }

    /// <summary>Inputs the tree reads: one more than the highest input index among its leaves.</summary>
    static abstract int Arity { get; }

    /// <summary>The tree on one element of each input (inputs beyond <see cref="Arity"/> are ignored).</summary>
    float Scalar(float x0, float x1, float x2, float x3);

    /// <summary>The tree on one vector of each input, at any width.</summary>
    TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>The leaf reading input 0.</summary>
internal readonly struct Input0 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 1;
    public float Scalar(float x0, float x1, float x2, float x3) => x0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV> => x0;
}

/// <summary>The leaf reading input 1.</summary>
internal readonly struct Input1 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 2;
    public float Scalar(float x0, float x1, float x2, float x3) => x1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV> => x1;
}

/// <summary>The leaf reading input 2.</summary>
internal readonly struct Input2 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 3;
    public float Scalar(float x0, float x1, float x2, float x3) => x2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV> => x2;
}

/// <summary>The leaf reading input 3.</summary>
internal readonly struct Input3 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 4;
    public float Scalar(float x0, float x1, float x2, float x3) => x3;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV> => x3;
}

/// <summary>op(child): a unary op over a subtree.</summary>
internal readonly struct UnaryNode<TOp, TChild>(TOp op, TChild child) : ITreeOp
    where TOp : unmanaged, IUnaryOp
    where TChild : unmanaged, ITreeOp
{
    public static int Cost => TOp.Cost + TChild.Cost;
    public static int Arity => TChild.Arity;
    public float Scalar(float x0, float x1, float x2, float x3) => op.Scalar(child.Scalar(x0, x1, x2, x3));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV> => op.Vector(child.Vector(x0, x1, x2, x3));
}

/// <summary>op(left, right): a binary op over two subtrees.</summary>
internal readonly struct BinaryNode<TOp, TLeft, TRight>(TOp op, TLeft left, TRight right) : ITreeOp
    where TOp : unmanaged, IBinaryOp
    where TLeft : unmanaged, ITreeOp
    where TRight : unmanaged, ITreeOp
{
    public static int Cost => TOp.Cost + TLeft.Cost + TRight.Cost;
    public static int Arity => Math.Max(TLeft.Arity, TRight.Arity);
    public float Scalar(float x0, float x1, float x2, float x3) => op.Scalar(left.Scalar(x0, x1, x2, x3), right.Scalar(x0, x1, x2, x3));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV>(TV x0, TV x1, TV x2, TV x3) where TV : unmanaged, IFloatVector<TV> =>
        op.Vector(left.Vector(x0, x1, x2, x3), right.Vector(x0, x1, x2, x3));
}
