using System.Numerics;
using System.Runtime.CompilerServices;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

// The global squared norm of a list of buffers in the order SumOfSquaresOrder fixes (shared with the ILGPU set, so
// the two agree bitwise): blocks of 4096 elements, 32 interleaved double lanes per block combined by halving, block
// partials combined by doubling strides.
public sealed partial class CpuKernelSet
{
    /// <summary>
    /// Blocks per parallel chunk (256K elements): a memory-bound pass gains from a second core only on long inputs,
    /// and below that, waking a worker costs more than the work (a Mixer's many small gradients stay on one thread).
    /// </summary>
    private const long SquaresBlocksPerChunk = 64;

    /// <summary><see cref="IOptimizerKernels.SumOfSquares"/>.</summary>
    internal unsafe void SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights, DeviceScalar result)
    {
        const string op = "SumOfSquares";
        ArgumentNullException.ThrowIfNull(buffers);
        ArgumentNullException.ThrowIfNull(result);
        if (weights != null && weights.Count != buffers.Count)
            throw new ArgumentException($"{op}: {weights.Count} weight entries for {buffers.Count} buffers.", nameof(weights));
        // Validate everything before any work.
        var xs = new float[buffers.Count][];
        var ws = new float[]?[buffers.Count];
        var firstBlock = new long[buffers.Count + 1];
        for (int k = 0; k < buffers.Count; k++)
        {
            xs[k] = Data(buffers[k], 0, op);
            var w = weights?[k];
            ws[k] = w == null ? null : Data(w, xs[k].LongLength, op);
            firstBlock[k + 1] = firstBlock[k] + SumOfSquaresOrder.Blocks(xs[k].LongLength);
        }
        var scalar = Data(result.Buffer, 2, op);
        long blocks = firstBlock[^1];
        var partials = new double[blocks];
        For(blocks, SquaresBlocksPerChunk, (b0, b1) =>
        {
            // The buffer holding block b0, then walk on.
            int k = Array.BinarySearch(firstBlock, b0);
            if (k < 0) k = ~k - 1;
            while (firstBlock[k + 1] <= b0) k++;
            for (long g = b0; g < b1; g++)
            {
                while (firstBlock[k + 1] <= g) k++;
                long start = (g - firstBlock[k]) * SumOfSquaresOrder.Block;
                var xa = xs[k];
                var wa = ws[k];
                int len = (int)Math.Min(SumOfSquaresOrder.Block, xa.LongLength - start);
                fixed (float* px = xa, pw = wa)
                {
                    partials[g] = SquaresBlock(px + start, pw == null ? null : pw + start, len);
                }
            }
        }, 1);
        var (hi, lo) = DeviceScalar.Split(CombineByDoubling(partials));
        scalar[0] = hi;
        scalar[1] = lo;
    }

    /// <summary>One block's partial: 32 interleaved lanes in double, combined by halving.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double SquaresBlock(float* x, float* w, int len)
    {
        const int lanes = SumOfSquaresOrder.Lanes;
        Span<double> lane = stackalloc double[lanes];
        lane.Clear();
        int i = 0;
        int wf = Vector<float>.Count, wd = Vector<double>.Count;
        if (Vector.IsHardwareAccelerated && lanes % wf == 0)
        {
            // acc[t] holds lanes t·wd .. t·wd + wd - 1: one load of wf floats widens into two of them.
            Span<Vector<double>> acc = stackalloc Vector<double>[lanes / wd];
            acc.Clear();
            for (; i + lanes <= len; i += lanes)
            {
                for (int q = 0; q < lanes / wf; q++)
                {
                    var v = Unsafe.ReadUnaligned<Vector<float>>(x + i + q * wf);
                    if (w != null) v *= Unsafe.ReadUnaligned<Vector<float>>(w + i + q * wf);
                    Vector.Widen(v, out var low, out var high);
                    acc[2 * q] += low * low;
                    acc[2 * q + 1] += high * high;
                }
            }
            for (int t = 0; t < acc.Length; t++) acc[t].CopyTo(lane.Slice(t * wd, wd));
        }
        for (; i < len; i++)
        {
            float v = w == null ? x[i] : x[i] * w[i];
            lane[i % lanes] += (double)v * v;
        }
        for (int s = lanes / 2; s > 0; s >>= 1)
            for (int j = 0; j < s; j++) lane[j] += lane[j + s];
        return lane[0];
    }

    /// <summary>The block partials combined by doubling strides (P_i += P_{i+s} for s = 1, 2, 4, ...); 0 when empty.</summary>
    private static double CombineByDoubling(double[] partials)
    {
        long m = partials.LongLength;
        for (long s = 1; s < m; s *= 2)
            for (long i = 0; i + s < m; i += 2 * s) partials[i] += partials[i + s];
        return m == 0 ? 0 : partials[0];
    }
}
