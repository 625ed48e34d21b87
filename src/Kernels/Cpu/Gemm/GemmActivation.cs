using System.Collections.Concurrent;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>
/// The activation of a <see cref="GemmEpilogue"/> as the packed GEMM applies it to a stored tile: the chain's composed
/// op struct (<see cref="ElementwiseChains.Unary"/>, the same struct the eager and fused elementwise kernels run) over
/// each contiguous run of the tile, through <see cref="SimdLoops{TV, TD}.Map{TOp}"/> at the current width. Lanes and
/// tails of that loop give every element the same bits (the vector-lane tests), so a value gets the bits of the
/// separate elementwise call wherever the tile boundaries fall. One instance per chain, made once.
/// </summary>
internal abstract unsafe class GemmActivation
{
    // Keyed by the boxed op, which ElementwiseChains makes once per chain.
    private static readonly ConcurrentDictionary<object, GemmActivation> Cache = new(ReferenceEqualityComparer.Instance);

    /// <summary>The activation running <paramref name="steps"/> (made on first use).</summary>
    public static GemmActivation For(IReadOnlyList<UnaryStep> steps) =>
        Cache.GetOrAdd(ElementwiseChains.Unary(steps), op =>
            (GemmActivation)Activator.CreateInstance(typeof(Chain<>).MakeGenericType(op.GetType()), op)!);

    /// <summary>
    /// For each of <paramref name="runs"/> runs of <paramref name="length"/> values starting <paramref name="stride"/>
    /// apart from <paramref name="z"/>: y = op(z), stored <paramref name="shift"/> elements after z (0: in place).
    /// </summary>
    public abstract void Apply(float* z, nint shift, int runs, int length, nint stride);

    /// <summary>True when the chain is a single ReLU (<see cref="ReluOp"/>).</summary>
    public abstract bool IsRelu { get; }

    private sealed class Chain<TOp>(TOp op) : GemmActivation where TOp : unmanaged, IUnaryOp
    {
        public override void Apply(float* z, nint shift, int runs, int length, nint stride) =>
            Simd.Run(new Runs(op, z, shift, runs, length, stride));

        public override bool IsRelu => typeof(TOp) == typeof(ReluOp);

        private readonly struct Runs(TOp op, float* z, nint shift, int runs, int length, nint stride) : IWidthAction
        {
            void IWidthAction.Run<TV, TD>()
            {
                for (int r = 0; r < runs; r++)
                {
                    float* run = z + r * stride;
                    SimdLoops<TV, TD>.Map(op, run, run + shift, length);
                }
            }
        }
    }
}
