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
    /// apart from <paramref name="z"/>: z = tree(inputs), each input read at the run's offset from C's buffer start
    /// <paramref name="c"/> (see <see cref="CpuKernelSet.GemmTreeInputs"/>).
    /// </summary>
    public abstract void Apply(float* z, in CpuKernelSet.TreeInputs inputs, float* c, int runs, int length, nint stride);

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

        public override void Apply(float* z, in CpuKernelSet.TreeInputs inputs, float* c, int runs, int length, nint stride) =>
            Simd.Run(new Runs(tree, z, inputs, c, runs, length, stride));

        private readonly struct Runs(TTree tree, float* z, CpuKernelSet.TreeInputs inputs, float* c, int runs, int length, nint stride) : IWidthAction
        {
            void IWidthAction.Run<TV, TD>() => CpuKernelSet.TreeOverRuns<TTree, TV>(tree, z, inputs, c, runs, length, stride);
        }
    }
}
