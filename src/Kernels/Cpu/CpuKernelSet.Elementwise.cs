using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <summary>The array behind a float buffer, after checking it is alive and holds at least <paramref name="needed"/> elements.</summary>
    private static float[] Data(DeviceBuffer<float> buffer, long needed, string op)
    {
        buffer.ThrowIfDisposed(op);
        var a = Arr(buffer);
        if (a.LongLength < needed)
            throw new ArgumentException($"{op}: buffer holds {a.LongLength} elements, the shapes need {needed}.");
        return a;
    }

    /// <summary>The array behind an int buffer, after checking it is alive and long enough.</summary>
    private static int[] Data(DeviceBuffer<int> buffer, long needed, string op)
    {
        buffer.ThrowIfDisposed(op);
        var a = Arr(buffer);
        if (a.LongLength < needed)
            throw new ArgumentException($"{op}: int buffer holds {a.LongLength} elements, the shapes need {needed}.");
        return a;
    }

    /// <summary>
    /// Runs a unary op over n elements at the current vector width, split over cores from <c>CheapGrain / Cost</c>
    /// elements; streaming stores for huge outputs.
    /// </summary>
    private static void MapPar<TOp>(TOp op, float[] x, float[] y, long n) where TOp : unmanaged, IUnaryOp =>
        Simd.Run(new MapParKernel<TOp>(op, x, y, n));

    /// <summary>Runs a same-shape binary op over n elements; see <see cref="MapPar{TOp}"/>.</summary>
    private static void ZipPar<TOp>(TOp op, float[] a, float[] b, float[] y, long n) where TOp : unmanaged, IBinaryOp =>
        Simd.Run(new ZipParKernel<TOp>(op, a, b, y, n));

    private readonly struct MapParKernel<TOp>(TOp op, float[] x, float[] y, long n) : IWidthAction where TOp : unmanaged, IUnaryOp
    {
        void IWidthAction.Run<TV, TD>() => MapPar<TOp, TV, TD>(op, x, y, n);
    }

    private readonly struct ZipParKernel<TOp>(TOp op, float[] a, float[] b, float[] y, long n) : IWidthAction where TOp : unmanaged, IBinaryOp
    {
        void IWidthAction.Run<TV, TD>() => ZipPar<TOp, TV, TD>(op, a, b, y, n);
    }

    private static unsafe void MapPar<TOp, TV, TD>(TOp op, float[] x, float[] y, long n)
        where TOp : unmanaged, IUnaryOp where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        if (n <= 0) return;
        long grain = CheapGrain / TOp.Cost;
        float* px = Ptr(x), py = Ptr(y);
        if (n < 2 * grain) SimdLoops<TV, TD>.Map(op, px, py, n);
        else if (n >= StreamingThreshold) For(n, grain, (s, e) => SimdLoops<TV, TD>.Map<TOp, StreamingStore>(op, px + s, py + s, e - s));
        else For(n, grain, (s, e) => SimdLoops<TV, TD>.Map(op, px + s, py + s, e - s));
    }

    private static unsafe void ZipPar<TOp, TV, TD>(TOp op, float[] a, float[] b, float[] y, long n)
        where TOp : unmanaged, IBinaryOp where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        if (n <= 0) return;
        long grain = CheapGrain / TOp.Cost;
        float* pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        if (n < 2 * grain) SimdLoops<TV, TD>.Zip(op, pa, pb, py, n);
        else if (n >= StreamingThreshold) For(n, grain, (s, e) => SimdLoops<TV, TD>.Zip<TOp, StreamingStore>(op, pa + s, pb + s, py + s, e - s));
        else For(n, grain, (s, e) => SimdLoops<TV, TD>.Zip(op, pa + s, pb + s, py + s, e - s));
    }

    /// <inheritdoc />
    internal unsafe void Fill(DeviceBuffer<float> dst, float value)
    {
        var y = Data(dst, 0, "Fill");
        long n = y.LongLength;
        if (n < 2 * CheapGrain)
        {
            y.AsSpan().Fill(value);
            return;
        }
        float* py = Ptr(y);
        For(n, CheapGrain, (s, e) => SimdLoops.Fill(py + s, e - s, value));
    }

    /// <inheritdoc />
    internal unsafe void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count)
    {
        if (count < 0 || srcOffset < 0 || dstOffset < 0)
            throw new ArgumentOutOfRangeException(nameof(count), "Copy: offsets and count must be non-negative.");
        var x = Data(src, srcOffset + count, "Copy");
        var y = Data(dst, dstOffset + count, "Copy");
        if (count == 0) return;
        if (ReferenceEquals(x, y) || count < 2 * CheapGrain)
        {
            // Overlapping ranges of one buffer need memmove semantics: one sequential call.
            Array.Copy(x, srcOffset, y, dstOffset, count);
            return;
        }
        float* px = Ptr(x) + srcOffset, py = Ptr(y) + dstOffset;
        For(count, CheapGrain * 4, (s, e) => Buffer.MemoryCopy(px + s, py + s, (e - s) * sizeof(float), (e - s) * sizeof(float)));
    }

    /// <inheritdoc />
    internal unsafe void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high)
    {
        var y = Data(dst, 0, "RandomUniform");
        float* py = Ptr(y);
        For(y.LongLength, MathGrain, (s, e) => UniformLoop(py, s, e, seed, low, high));
    }

    /// <summary>
    /// y[i] = <see cref="CounterRng.Uniform"/>(seed, i, low, high) for i in [start, end): the same integer mixing in
    /// 64-bit lanes, the same exact conversion and the same fused multiply-add, so the bits equal the scalar
    /// definition. Only a 512-bit body: narrower vectors have no 64-bit lane multiply, which is what this loop is made of
    /// (hardware Vector512 implies AVX-512DQ's). A width forced to 512 on other machines runs it emulated (tests).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void UniformLoop(float* y, long start, long end, ulong seed, float low, float high)
    {
        long i = start;
        if (Simd.Width == SimdWidth.V512)
        {
            var c2 = Vector512.Create(0xD1B54A32D192ED03UL);
            var m1 = Vector512.Create(0xBF58476D1CE4E5B9UL);
            var m2 = Vector512.Create(0x94D049BB133111EBUL);
            var s = Vector512.Create(unchecked(seed * 0x9E3779B97F4A7C15UL));
            var lanes = Vector512.Create(1UL, 2UL, 3UL, 4UL, 5UL, 6UL, 7UL, 8UL);
            var eight = Vector512.Create(8UL);
            var vlow = Vector512.Create(low);
            var vrange = Vector512.Create(high - low);
            var scale = Vector512.Create(1f / 16777216f);
            for (; i <= end - 16; i += 16)
            {
                var k0 = Vector512.Create((ulong)i) + lanes;
                var k1 = k0 + eight;
                var z0 = s + k0 * c2;
                var z1 = s + k1 * c2;
                z0 = (z0 ^ (z0 >> 30)) * m1;
                z1 = (z1 ^ (z1 >> 30)) * m1;
                z0 = (z0 ^ (z0 >> 27)) * m2;
                z1 = (z1 ^ (z1 >> 27)) * m2;
                z0 = (z0 ^ (z0 >> 31)) >> 40;
                z1 = (z1 ^ (z1 >> 31)) >> 40;
                var u = Vector512.ConvertToSingle(Vector512.Narrow(z0, z1).AsInt32()) * scale;
                Vector512.Store(Vector512.FusedMultiplyAdd(vrange, u, vlow), y + i);
            }
        }
        for (; i < end; i++) y[i] = CounterRng.Uniform(seed, (ulong)i, low, high);
    }

    /// <inheritdoc />
    internal unsafe void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std)
    {
        var y = Data(dst, 0, "RandomNormal");
        float* py = Ptr(y);
        For(y.LongLength, MathGrain / 4, (s, e) =>
        {
            for (long i = s; i < e; i++) py[i] = CounterRng.Normal(seed, (ulong)i, mean, std);
        });
    }

    /// <inheritdoc />
    internal void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) =>
        ElementwiseOps.Visit<UnaryVisitor, bool>(op, new UnaryVisitor(this, x, y));

    /// <summary>y[i] = op(x[i]) for any op struct (composed ones included), as one kernel.</summary>
    internal void Unary<TOp>(TOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) where TOp : unmanaged, IUnaryOp
    {
        var xa = Data(x, 0, "Unary");
        long n = xa.LongLength;
        MapPar(op, xa, Data(y, n, "Unary"), n);
    }

    private readonly struct UnaryVisitor(CpuKernelSet set, DeviceBuffer<float> x, DeviceBuffer<float> y) : IUnaryOpVisitor<bool>
    {
        bool IUnaryOpVisitor<bool>.Visit<TOp>(TOp op)
        {
            set.Unary(op, x, y);
            return true;
        }
    }

    /// <inheritdoc />
    internal void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift)
    {
        var xa = Data(x, 0, "Affine");
        long n = xa.LongLength;
        MapPar(new AffineOp(scale, shift), xa, Data(y, n, "Affine"), n);
    }

    /// <inheritdoc />
    internal void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        var xa = Data(x, 0, "Axpy");
        long n = xa.LongLength;
        var ya = Data(y, n, "Axpy");
        ZipPar(new AxpyOp(alpha), xa, ya, ya, n);
    }
}
