using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Vectors;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// The CPU reduction's row groups (<see cref="CpuKernelSet.GroupedColumnSums"/>): where the innermost dim is kept under
/// a reduced dim, the rows that add into the same outputs go a strip of columns at a time instead of one row at a
/// time. The additions are the same, so every output has the bits of the row-at-a-time reduction (on values whose
/// sums change with the order of the additions): checked for plain
/// sums and means read from memory (the Mixer's and FNO's bias gradients among them), for rows a fused tree computes
/// (stored or not), and for paired trees, over shapes that cross each partition of the reduction (row blocks, kept
/// splits, reduced dims above and below the group, rows shorter than a vector), at every width.
/// </summary>
public abstract class CpuReduceRowGroupTests : IDisposable
{
    private readonly IDisposable width;

    private protected CpuReduceRowGroupTests(SimdWidth width) => this.width = Simd.Force(width);

    private static IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    private static IFusedElementwiseKernels F => (IFusedElementwiseKernels)K;

    /// <summary>Shapes and reduced axes, each with a kept innermost dim under a reduced one once collapsed.</summary>
    public static TheoryData<int[], int[]> Cases => new()
    {
        { [64, 32768], [0] }, // the Mixer's token-bias gradient: row blocks of 8 rows
        { [20480, 64], [0] }, // the FNO's bias gradients: row blocks of 2560 rows of 64
        { [20480, 128], [0] },
        { [1031, 257], [0] },
        { [7, 20011], [0] }, // computed rows too long for a block: strips, the last one partial
        { [4099, 3], [0] }, // rows shorter than any vector
        { [13, 7, 4099], [0, 1] },
        { [6, 5, 3, 1031], [0, 2] }, // reduced dims above and below a kept one: groups meet the same outputs again
        { [3, 70001, 5], [1] }, // split along the outer kept dim
        { [2, 3, 5, 7], [0, 2] },
        { [5, 3, 17], [0] },
        { [1, 9, 1, 33], [1] },
        { [7, 1], [0] },
    };

    /// <summary>A plain sum and mean read from memory.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void MemorySums_HaveTheBitsOfOneRowAtATime(int[] shape, int[] axes)
    {
        var host = Cancelling(new Random(shape.Sum()), shape, axes);
        using var x = DeviceData.Upload(K, host);
        foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Mean })
        {
            var grouped = Run(true, y => K.Reduce(op, x, shape, axes, y), Outputs(shape, axes));
            var rowByRow = Run(false, y => K.Reduce(op, x, shape, axes, y), Outputs(shape, axes));
            KernelAssert.Bitwise(rowByRow, grouped, $"Reduce {op} [{string.Join(", ", shape)}] axes [{string.Join(", ", axes)}]");
        }
    }

    /// <summary>Rows a fused tree computes (its values stored or not), and two trees reduced as a pair.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void ComputedRows_HaveTheBitsOfOneRowAtATime(int[] shape, int[] axes)
    {
        var rng = new Random(shape.Sum() + 1);
        long n = Count(shape), outputs = Outputs(shape, axes);
        // Trees whose values are input 0's: x0 + 0 and x0 · 1.
        var inputs = new[] { Cancelling(rng, shape, axes), new float[n], Enumerable.Repeat(1f, (int)n).ToArray() }
            .Select(h => DeviceData.Upload(K, h)).ToList();
        int[][] shapes = [shape, shape, shape];
        var (add, mul) = (B(BinaryOp.Add, X(0), X(1)), B(BinaryOp.Mul, X(0), X(2)));
        string what = $"[{string.Join(", ", shape)}] axes [{string.Join(", ", axes)}]";
        try
        {
            foreach (bool store in new[] { false, true })
            {
                float[] Tree(bool grouped) => Run(grouped, r =>
                {
                    using var y = store ? DeviceData.Filled(K, n, float.NaN) : null;
                    F.ElementwiseTreeReduce(add, inputs, shapes, shape, y, ReduceOp.Sum, axes, r);
                }, outputs);
                KernelAssert.Bitwise(Tree(false), Tree(true), $"tree sum {what}, stored {store}");
            }
            float[] Pair(bool grouped, bool second)
            {
                using var other = DeviceData.Filled(K, outputs, float.NaN);
                return Run(grouped, r => F.ElementwiseTreeReducePair(add, mul, inputs, shapes, shape, null, null, ReduceOp.Mean, axes,
                    second ? other : r, second ? r : other), outputs);
            }
            KernelAssert.Bitwise(Pair(false, false), Pair(true, false), $"pair, first mean {what}");
            KernelAssert.Bitwise(Pair(false, true), Pair(true, true), $"pair, second mean {what}");
        }
        finally
        {
            foreach (var b in inputs) b.Dispose();
        }
    }

    /// <summary>The outputs of <paramref name="reduce"/> into a NaN-filled buffer, with the row groups on or off.</summary>
    private static float[] Run(bool grouped, Action<DeviceBuffer<float>> reduce, long outputs)
    {
        using var y = DeviceData.Filled(K, outputs, float.NaN);
        bool before = CpuKernelSet.GroupedColumnSums;
        CpuKernelSet.GroupedColumnSums = grouped;
        try
        {
            reduce(y);
        }
        finally
        {
            CpuKernelSet.GroupedColumnSums = before;
        }
        return y.ToArray();
    }

    /// <summary>
    /// Values whose sum depends on the order of the additions, even in double: along each output's reduced index t
    /// (row-major over the reduced axes), ±2^40 at every eighth t (cancelling in pairs eight apart, so across row
    /// blocks), ±2^20 at odd t (cancelling in neighbouring pairs) and small values of all scales between. Which small
    /// values a large partial sum absorbs depends on the order, and the result is of their size, so any change of order
    /// shows after rounding to float.
    /// </summary>
    private static float[] Cancelling(Random rng, int[] shape, int[] axes)
    {
        const float Large = 1L << 40, Medium = 1 << 20;
        long n = Count(shape), count = 1;
        foreach (var a in axes) count *= shape[a];
        long paired = count - count % 16;
        var v = new float[n];
        var index = new int[shape.Length];
        for (long i = 0; i < n; i++)
        {
            long t = 0;
            foreach (var a in axes) t = t * shape[a] + index[a];
            float small = (float)((rng.NextDouble() * 2 - 1) * Math.ScaleB(1.0, rng.Next(-30, 1)));
            v[i] = t >= paired ? small : (t % 16) switch
            {
                0 => Large,
                8 => -Large,
                _ when t % 4 == 1 => Medium,
                _ when t % 4 == 3 => -Medium,
                _ => small,
            };
            for (int d = shape.Length - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
        }
        return v;
    }

    private static long Count(int[] shape) => shape.Aggregate(1L, (a, d) => a * d);

    private static long Outputs(int[] shape, int[] axes) => Count(HostReference.ReducedShape(shape, axes));

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuReduceRowGroupTests512() : CpuReduceRowGroupTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuReduceRowGroupTests256() : CpuReduceRowGroupTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuReduceRowGroupTests128() : CpuReduceRowGroupTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuReduceRowGroupTestsScalar() : CpuReduceRowGroupTests(SimdWidth.Scalar);
