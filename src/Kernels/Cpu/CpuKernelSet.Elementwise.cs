using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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

    /// <summary>Runs a unary kernel over n elements, split over cores above <paramref name="grain"/>; streaming stores for huge outputs.</summary>
    private static unsafe void MapPar<T>(T op, float[] x, float[] y, long n, long grain) where T : struct, IUnaryKernel
    {
        if (n <= 0) return;
        float* px = Ptr(x), py = Ptr(y);
        if (n < 2 * grain)
        {
            SimdLoops.Map(op, px, py, n);
            return;
        }
        if (n >= StreamingThreshold) For(n, grain, (s, e) => SimdLoops.Map<T, StreamingStore>(op, px + s, py + s, e - s));
        else For(n, grain, (s, e) => SimdLoops.Map(op, px + s, py + s, e - s));
    }

    /// <summary>Runs a same-shape binary kernel over n elements, split over cores above <paramref name="grain"/>; streaming stores for huge outputs.</summary>
    private static unsafe void ZipPar<T>(T op, float[] a, float[] b, float[] y, long n, long grain) where T : struct, IBinaryKernel
    {
        if (n <= 0) return;
        float* pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        if (n < 2 * grain)
        {
            SimdLoops.Zip(op, pa, pb, py, n);
            return;
        }
        if (n >= StreamingThreshold) For(n, grain, (s, e) => SimdLoops.Zip<T, StreamingStore>(op, pa + s, pb + s, py + s, e - s));
        else For(n, grain, (s, e) => SimdLoops.Zip(op, pa + s, pb + s, py + s, e - s));
    }

    /// <inheritdoc />
    public unsafe void Fill(DeviceBuffer<float> dst, float value)
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
    public unsafe void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count)
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
    public unsafe void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high)
    {
        var y = Data(dst, 0, "RandomUniform");
        float* py = Ptr(y);
        For(y.LongLength, MathGrain, (s, e) => UniformLoop(py, s, e, seed, low, high));
    }

    /// <summary>
    /// y[i] = <see cref="CounterRng.Uniform"/>(seed, i, low, high) for i in [start, end): the same integer mixing in
    /// 64-bit lanes (AVX-512DQ multiplies), the same exact conversion and the same fused multiply-add, so the bits
    /// equal the scalar definition.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void UniformLoop(float* y, long start, long end, ulong seed, float low, float high)
    {
        long i = start;
        if (Vector512.IsHardwareAccelerated && Avx512DQ.IsSupported)
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
    public unsafe void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std)
    {
        var y = Data(dst, 0, "RandomNormal");
        float* py = Ptr(y);
        For(y.LongLength, MathGrain / 4, (s, e) =>
        {
            for (long i = s; i < e; i++) py[i] = CounterRng.Normal(seed, (ulong)i, mean, std);
        });
    }

    /// <inheritdoc />
    public void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        var xa = Data(x, 0, "Unary");
        long n = xa.LongLength;
        var ya = Data(y, n, "Unary");
        const long G = CheapGrain, M = MathGrain;
        switch (op)
        {
            case UnaryOp.Neg: MapPar(new NegK(), xa, ya, n, G); break;
            case UnaryOp.Exp: MapPar(new ExpK(), xa, ya, n, M); break;
            case UnaryOp.Log: MapPar(new LogK(), xa, ya, n, M); break;
            case UnaryOp.Sqrt: MapPar(new SqrtK(), xa, ya, n, G); break;
            case UnaryOp.Relu: MapPar(new ReluK(), xa, ya, n, G); break;
            case UnaryOp.GeluTanh: MapPar(new GeluTanhK(), xa, ya, n, M); break;
            case UnaryOp.GeluErf: MapPar(new GeluErfK(), xa, ya, n, M); break;
            case UnaryOp.Tanh: MapPar(new TanhK(), xa, ya, n, M); break;
            case UnaryOp.Sigmoid: MapPar(new SigmoidK(), xa, ya, n, M); break;
            case UnaryOp.Erf: MapPar(new ErfK(), xa, ya, n, M); break;
            case UnaryOp.Abs: MapPar(new AbsK(), xa, ya, n, G); break;
            case UnaryOp.Sign: MapPar(new SignK(), xa, ya, n, G); break;
            case UnaryOp.Step: MapPar(new StepK(), xa, ya, n, G); break;
            case UnaryOp.Square: MapPar(new SquareK(), xa, ya, n, G); break;
            case UnaryOp.Reciprocal: MapPar(new ReciprocalK(), xa, ya, n, G); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Unary: unknown op.");
        }
    }

    /// <inheritdoc />
    public void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift)
    {
        var xa = Data(x, 0, "Affine");
        long n = xa.LongLength;
        MapPar(new AffineK(scale, shift), xa, Data(y, n, "Affine"), n, CheapGrain);
    }

    /// <inheritdoc />
    public void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        var xa = Data(x, 0, "Axpy");
        long n = xa.LongLength;
        var ya = Data(y, n, "Axpy");
        ZipPar(new AxpyK(alpha), xa, ya, ya, n, CheapGrain);
    }
}
