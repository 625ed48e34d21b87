using System.Collections.Concurrent;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>
/// The tree step of a <see cref="GemmEpilogue"/> as the packed GEMM applies it to a stored block: the tree's op struct
/// (<see cref="ElementwiseChains.Tree"/>, the struct the fused elementwise kernel runs) over each contiguous run of the
/// block, through the fused kernel's own span loop at the current width, so every element gets the bits of the
/// separate tree call wherever the block boundaries fall. One instance per tree, made once.
/// </summary>
internal abstract unsafe class GemmTree
{
    // Keyed by the boxed op, which ElementwiseChains makes once per tree.
    private static readonly ConcurrentDictionary<object, GemmTree> Cache = new(ReferenceEqualityComparer.Instance);

    /// <summary>The step running <paramref name="tree"/> (made on first use).</summary>
    public static GemmTree For(ElementwiseExpression tree) =>
        Cache.GetOrAdd(ElementwiseChains.Tree(tree), op =>
            (GemmTree)Activator.CreateInstance(typeof(Of<>).MakeGenericType(op.GetType()), op)!);

    /// <summary>
    /// For each of <paramref name="runs"/> runs of <paramref name="length"/> values starting <paramref name="stride"/>
    /// apart from <paramref name="z"/>: z = tree(inputs), the inputs read where <paramref name="leaves"/> says.
    /// </summary>
    public abstract void Apply(float* z, in GemmTreeLeaves leaves, int runs, int length, nint stride);

    /// <summary>The tree's cost per element, in the units that size the elementwise kernels' chunks (<see cref="ITreeOp.Cost"/>).</summary>
    public abstract int Cost { get; }

    /// <summary>
    /// The work of the step on <paramref name="elements"/> values counted as product flops, for the GEMM's choice of
    /// threads: the fused tree kernel splits from <c>CheapGrain / Cost</c> elements per part, about what a product of
    /// 16 flops per cost unit splits at.
    /// </summary>
    public long FlopsFor(long elements) => elements * Cost * 16;

    private sealed class Of<TTree>(TTree tree) : GemmTree where TTree : unmanaged, ITreeOp
    {
        public override int Cost => Math.Max(1, TTree.Cost);

        public override void Apply(float* z, in GemmTreeLeaves leaves, int runs, int length, nint stride) =>
            Simd.Run(new Runs(tree, z, leaves, runs, length, stride));

        private readonly struct Runs(TTree tree, float* z, GemmTreeLeaves leaves, int runs, int length, nint stride) : IWidthAction
        {
            void IWidthAction.Run<TV, TD>() => CpuKernelSet.TreeOverRuns<TTree, TV>(tree, z, leaves, runs, length, stride);
        }
    }
}

/// <summary>
/// Where each of the four inputs of a tree step is read for an element of C: the element itself (the value input, and
/// inputs the tree does not read), the element at the same position of a buffer laid out as C (<c>Shift</c> elements
/// after C's), or one scalar (a non-null <c>Scalar</c> pointer).
/// </summary>
internal readonly unsafe struct GemmTreeLeaves(nint shift0, nint shift1, nint shift2, nint shift3, float* scalar0, float* scalar1, float* scalar2,
    float* scalar3)
{
    public readonly nint Shift0 = shift0, Shift1 = shift1, Shift2 = shift2, Shift3 = shift3;
    public readonly float* Scalar0 = scalar0, Scalar1 = scalar1, Scalar2 = scalar2, Scalar3 = scalar3;

    /// <summary>
    /// The leaves of <paramref name="step"/> for C's buffer at <paramref name="c"/>, each input buffer pinned at
    /// <paramref name="pointer"/>(buffer).
    /// </summary>
    public static GemmTreeLeaves Of(GemmTreeStep step, float* c, Func<DeviceBuffer<float>, nint> pointer)
    {
        var shift = new nint[ElementwiseExpression.MaxInputs];
        var scalar = new nint[ElementwiseExpression.MaxInputs];
        for (int k = 0; k < step.Inputs.Count; k++)
        {
            if (step.Inputs[k] is not { } input) continue;
            nint at = pointer(input);
            if (input.Length == 1) scalar[k] = at;
            else shift[k] = (at - (nint)c) / sizeof(float);
        }
        return new(shift[0], shift[1], shift[2], shift[3], (float*)scalar[0], (float*)scalar[1], (float*)scalar[2], (float*)scalar[3]);
    }
}
