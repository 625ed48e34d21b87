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
/// <see cref="IUnaryOp"/>: the CPU set runs <see cref="Vector{TV, TLeaves}"/>, the ILGPU set <see cref="Scalar"/>.
/// </summary>
internal interface ITreeOp
{
    /// <summary>Work per element relative to an add: the sum of the ops' costs (see <see cref="IUnaryOp.Cost"/>).</summary>
    static abstract int Cost { get; }

    /// <summary>Inputs the tree reads: one more than the highest input index among its leaves.</summary>
    static abstract int Arity { get; }

    /// <summary>True when the tree's vector form makes a call (an op with <see cref="IUnaryOp.Calls"/>).</summary>
    static abstract bool Calls { get; }

    /// <summary>The tree on one element of each input (inputs beyond <see cref="Arity"/> are ignored).</summary>
    float Scalar(float x0, float x1, float x2, float x3);

    /// <summary>The tree on one vector of each input, at any width, each leaf reading its input where it stands.</summary>
    TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves;
}

/// <summary>
/// The inputs of a tree at one position of a CPU loop, read by each leaf where it stands in the tree. A tree that
/// calls (<see cref="IUnaryOp.Calls"/>) thus reads an input again after the call rather than holding it across the
/// call: the runtime keeps a vector held across a call in a stack slot that is only 16-byte aligned, which costs a
/// fixed share of the loop in some processes and not others.
/// </summary>
internal interface ITreeLeaves
{
    /// <summary>Input 0 at the loop's position.</summary>
    TV Read0<TV>() where TV : unmanaged, IFloatVector<TV>;

    /// <summary>Input 1 at the loop's position.</summary>
    TV Read1<TV>() where TV : unmanaged, IFloatVector<TV>;

    /// <summary>Input 2 at the loop's position.</summary>
    TV Read2<TV>() where TV : unmanaged, IFloatVector<TV>;

    /// <summary>Input 3 at the loop's position.</summary>
    TV Read3<TV>() where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>The leaf reading input 0.</summary>
internal readonly struct Input0 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 1;
    public static bool Calls => false;
    public float Scalar(float x0, float x1, float x2, float x3) => x0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves => x.Read0<TV>();
}

/// <summary>The leaf reading input 1.</summary>
internal readonly struct Input1 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 2;
    public static bool Calls => false;
    public float Scalar(float x0, float x1, float x2, float x3) => x1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves => x.Read1<TV>();
}

/// <summary>The leaf reading input 2.</summary>
internal readonly struct Input2 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 3;
    public static bool Calls => false;
    public float Scalar(float x0, float x1, float x2, float x3) => x2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves => x.Read2<TV>();
}

/// <summary>The leaf reading input 3.</summary>
internal readonly struct Input3 : ITreeOp
{
    public static int Cost => 0;
    public static int Arity => 4;
    public static bool Calls => false;
    public float Scalar(float x0, float x1, float x2, float x3) => x3;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves => x.Read3<TV>();
}

/// <summary>op(child): a unary op over a subtree.</summary>
internal readonly struct UnaryNode<TOp, TChild>(TOp op, TChild child) : ITreeOp
    where TOp : unmanaged, IUnaryOp
    where TChild : unmanaged, ITreeOp
{
    public static int Cost => TOp.Cost + TChild.Cost;
    public static int Arity => TChild.Arity;
    public static bool Calls => TOp.Calls || TChild.Calls;
    public float Scalar(float x0, float x1, float x2, float x3) => op.Scalar(child.Scalar(x0, x1, x2, x3));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves =>
        op.Vector(child.Vector<TV, TLeaves>(in x));
}

/// <summary>op(left, right): a binary op over two subtrees.</summary>
internal readonly struct BinaryNode<TOp, TLeft, TRight>(TOp op, TLeft left, TRight right) : ITreeOp
    where TOp : unmanaged, IBinaryOp
    where TLeft : unmanaged, ITreeOp
    where TRight : unmanaged, ITreeOp
{
    public static int Cost => TOp.Cost + TLeft.Cost + TRight.Cost;
    public static int Arity => Math.Max(TLeft.Arity, TRight.Arity);
    public static bool Calls => TOp.Calls || TLeft.Calls || TRight.Calls;
    public float Scalar(float x0, float x1, float x2, float x3) => op.Scalar(left.Scalar(x0, x1, x2, x3), right.Scalar(x0, x1, x2, x3));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Vector<TV, TLeaves>(in TLeaves x) where TV : unmanaged, IFloatVector<TV> where TLeaves : struct, ITreeLeaves =>
        op.Vector(left.Vector<TV, TLeaves>(in x), right.Vector<TV, TLeaves>(in x));
}
