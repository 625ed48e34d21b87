using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// The FFTs on ILGPU. Powers of two: Stockham radix-4/2 transforms (<see cref="IlgpuKernels.FftRowsShared"/> and
/// friends), one group per row in shared memory up to <see cref="IlgpuKernels.MaxFftShared"/> complex values, one
/// launch per pass over global memory beyond; real transforms of even power-of-two length through one complex
/// transform of half the length. Other lengths: direct DFTs (one thread per output element, O(n) work each), which are
/// exact in structure and fine for the short odd lengths of spectral layers (2-D FNOs at s = 85). Twiddle tables
/// (cos, sin of 2πt/n for t &lt; n, computed in double on the host) are uploaded once per length and cached.
/// </summary>
public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, float>? kDftComplex;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kDftReal;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kIdftReal;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float>? kDftColumns;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kFftRowsShared;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kRfftRowsShared;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kIrfftRowsShared;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kFftColumnsShared;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kFftPass4;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kFftPass2;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kRfftPost;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>? kIrfftPre;
    private readonly Dictionary<int, DeviceBuffer<float>> fftTwiddles = new();

    /// <summary>The cached twiddle table of length n: [cos(2πt/n), sin(2πt/n)] for t &lt; n.</summary>
    private ArrayView<float> FftTwiddles(int n)
    {
        lock (gate)
        {
            ThrowIfDisposed("fft twiddles");
            if (!fftTwiddles.TryGetValue(n, out var buf))
            {
                var host = new float[2 * n];
                for (int t = 0; t < n; t++)
                {
                    // Exact values at the quarter turns (sin π = 0, not 1.2e-16).
                    if (4L * t % n == 0)
                    {
                        int q = (int)(4L * t / n);
                        host[2 * t] = q switch { 0 => 1f, 1 => 0f, 2 => -1f, _ => 0f };
                        host[2 * t + 1] = q switch { 1 => 1f, 3 => -1f, _ => 0f };
                        continue;
                    }
                    double a = 2 * Math.PI * t / n;
                    host[2 * t] = (float)Math.Cos(a);
                    host[2 * t + 1] = (float)Math.Sin(a);
                }
                buf = new IlgpuBuffer<float>(this, pool, host.Length);
                buf.CopyFromHost(host);
                fftTwiddles[n] = buf;
            }
            return ((IlgpuBuffer<float>)buf).View;
        }
    }

    private void CheckFft(string op, int batch, params int[] lengths)
    {
        if (batch < 0) throw new ArgumentException($"{Name}.{op}: batch {batch} must be non-negative.");
        foreach (var n in lengths)
            if (n < 1) throw new ArgumentException($"{Name}.{op}: transform length {n} must be at least 1.");
    }

    /// <inheritdoc />
    public void Fft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n, bool inverse, float scale)
    {
        const string opName = "Fft";
        CheckFft(opName, batch, n);
        long count = (long)batch * n * 2;
        var xv = View(x, count, opName, nameof(x));
        var yv = View(y, count, opName, nameof(y));
        if (batch == 0) return;
        float sign = inverse ? 1f : -1f;
        if (IsFftLength(n))
        {
            ComplexRows(opName, xv, yv, batch, n, sign, scale, x, y);
            return;
        }
        var tw = FftTwiddles(n);
        var k = Kernel(ref kDftComplex, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, float>(IlgpuKernels.DftComplex));
        Launch(opName, () => k(Config1D((long)batch * n), xv, yv, tw, batch, n, sign, scale), x, y);
    }

    /// <summary>Lengths the Stockham kernels take: powers of two from 2.</summary>
    private static bool IsFftLength(int n) => n >= 2 && (n & (n - 1)) == 0;

    /// <summary>Threads per FFT group: the tree group size, but no more than the butterflies of a radix-2 pass.</summary>
    private int FftGroup(int n) => Math.Max(1, Math.Min(treeGroupSize, PowerOfTwoAtMost(Math.Max(1, n / 2))));

    /// <summary>A launch of one FFT group per line (grid-stride over lines beyond the group cap).</summary>
    private KernelConfig ConfigFft(long lines, int n) =>
        new(new Index1D((int)Math.Clamp(lines, 1, Kind == DeviceKind.IlgpuCpu ? maxGroups : 65535)), new Index1D(FftGroup(n)));

    /// <summary>Complex FFTs of rows [rows, n] (n a power of two): in shared memory, or pass by pass over global memory.</summary>
    private void ComplexRows(string opName, ArrayView<float> xv, ArrayView<float> yv, int rows, int n, float sign, float scale,
        DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        var tw = FftTwiddles(n);
        var p = new FftParams { Lines = rows, N = n, Sign = sign, Scale = scale };
        if (n <= fftSharedMax)
        {
            var k = Kernel(ref kFftRowsShared, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.FftRowsShared));
            Launch(opName, () => k(ConfigFft(rows, n), xv, yv, tw, p), x, y);
            return;
        }
        using var tmp = (IlgpuBuffer<float>)Allocate((long)rows * n * 2);
        GlobalPasses(opName, xv, yv, tmp.View, rows, n, sign, scale, tw, x, y, tmp);
    }

    /// <summary>
    /// The Stockham passes of length-n transforms of <paramref name="rows"/> rows over global memory, from
    /// <paramref name="src"/> into <paramref name="dst"/> through <paramref name="tmp"/> (the passes alternate so the
    /// last one lands in dst; src is only read); the last pass applies the scale.
    /// </summary>
    private void GlobalPasses(string opName, ArrayView<float> src, ArrayView<float> dst, ArrayView<float> tmp, int rows, int n,
        float sign, float scale, ArrayView<float> tw, params object?[] keep)
    {
        var strides = new List<(int P, int Radix)>();
        int stride = 1;
        for (; 4 * stride <= n; stride *= 4) strides.Add((stride, 4));
        if (stride < n) strides.Add((stride, 2));
        var k4 = Kernel(ref kFftPass4, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.FftPassRadix4));
        var k2 = Kernel(ref kFftPass2, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.FftPassRadix2));
        var from = src;
        for (int i = 0; i < strides.Count; i++)
        {
            var to = (strides.Count - 1 - i) % 2 == 0 ? dst : tmp;
            var (pStride, radix) = strides[i];
            var p = new FftParams { Lines = rows, N = n, Sign = sign, Scale = i == strides.Count - 1 ? scale : 1f, P = pStride };
            var input = from;
            var config = Config1D((long)rows * (n / radix));
            if (radix == 4) Launch(opName, () => k4(config, input, to, tw, p), keep);
            else Launch(opName, () => k2(config, input, to, tw, p), keep);
            from = to;
        }
    }

    /// <inheritdoc />
    public void Rfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n)
    {
        const string opName = "Rfft";
        CheckFft(opName, batch, n);
        var xv = View(x, (long)batch * n, opName, nameof(x));
        var yv = View(y, (long)batch * (n / 2 + 1) * 2, opName, nameof(y));
        if (batch == 0) return;
        RealRows(opName, xv, yv, batch, n, x, y);
    }

    /// <inheritdoc />
    public void Irfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n)
    {
        const string opName = "Irfft";
        CheckFft(opName, batch, n);
        var xv = View(x, (long)batch * (n / 2 + 1) * 2, opName, nameof(x));
        var yv = View(y, (long)batch * n, opName, nameof(y));
        if (batch == 0) return;
        InverseRealRows(opName, xv, yv, batch, n, x, y);
    }

    /// <inheritdoc />
    public void Rfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w)
    {
        const string opName = "Rfft2";
        CheckFft(opName, batch, h, w);
        int m = w / 2 + 1;
        var xv = View(x, (long)batch * h * w, opName, nameof(x));
        var yv = View(y, (long)batch * h * m * 2, opName, nameof(y));
        if (batch == 0) return;
        using var tmp = Allocate((long)batch * h * m * 2);
        var tv = ((IlgpuBuffer<float>)tmp).View;
        RealRows(opName, xv, tv, batch * h, w, x, tmp);
        Columns(opName, tv, yv, batch, h, m, -1f, 1f, tmp, y);
    }

    /// <inheritdoc />
    public void Irfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w)
    {
        const string opName = "Irfft2";
        CheckFft(opName, batch, h, w);
        int m = w / 2 + 1;
        var xv = View(x, (long)batch * h * m * 2, opName, nameof(x));
        var yv = View(y, (long)batch * h * w, opName, nameof(y));
        if (batch == 0) return;
        using var tmp = Allocate((long)batch * h * m * 2);
        var tv = ((IlgpuBuffer<float>)tmp).View;
        Columns(opName, xv, tv, batch, h, m, 1f, 1f / h, x, tmp);
        InverseRealRows(opName, tv, yv, batch * h, w, tmp, y);
    }

    private void RealRows(string opName, ArrayView<float> xv, ArrayView<float> yv, int rows, int n, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        if (IsFftLength(n))
        {
            int h = n / 2;
            var twFull = FftTwiddles(n);
            var p = new FftParams { Lines = rows, N = h };
            if (h <= fftSharedMax)
            {
                var twHalf = FftTwiddles(h);
                var ks = Kernel(ref kRfftRowsShared, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.RfftRowsShared));
                Launch(opName, () => ks(ConfigFft(rows, h), xv, yv, twHalf, twFull, p), x, y);
                return;
            }
            using var z = (IlgpuBuffer<float>)Allocate((long)rows * n);
            using var tmp = (IlgpuBuffer<float>)Allocate((long)rows * n);
            GlobalPasses(opName, xv, z.View, tmp.View, rows, h, -1f, 1f, FftTwiddles(h), x, z, tmp);
            var kp = Kernel(ref kRfftPost, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.RfftPost));
            var zv = z.View;
            Launch(opName, () => kp(Config1D((long)rows * (h + 1)), zv, yv, twFull, p), z, y);
            return;
        }
        var tw = FftTwiddles(n);
        var k = Kernel(ref kDftReal, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.DftReal));
        Launch(opName, () => k(Config1D((long)rows * (n / 2 + 1)), xv, yv, tw, rows, n), x, y);
    }

    private void InverseRealRows(string opName, ArrayView<float> xv, ArrayView<float> yv, int rows, int n, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        if (IsFftLength(n))
        {
            int h = n / 2;
            var twFull = FftTwiddles(n);
            var p = new FftParams { Lines = rows, N = h };
            if (h <= fftSharedMax)
            {
                var twHalf = FftTwiddles(h);
                var ks = Kernel(ref kIrfftRowsShared, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.IrfftRowsShared));
                Launch(opName, () => ks(ConfigFft(rows, h), xv, yv, twHalf, twFull, p), x, y);
                return;
            }
            using var z = (IlgpuBuffer<float>)Allocate((long)rows * n);
            using var tmp = (IlgpuBuffer<float>)Allocate((long)rows * n);
            var kp = Kernel(ref kIrfftPre, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.IrfftPre));
            var zv = z.View;
            Launch(opName, () => kp(Config1D((long)rows * h), xv, zv, twFull, p), x, z);
            GlobalPasses(opName, zv, yv, tmp.View, rows, h, 1f, 1f, FftTwiddles(h), z, y, tmp);
            return;
        }
        var tw = FftTwiddles(n);
        var k = Kernel(ref kIdftReal, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.IdftReal));
        Launch(opName, () => k(Config1D((long)rows * n), xv, yv, tw, rows, n), x, y);
    }

    private void Columns(string opName, ArrayView<float> xv, ArrayView<float> yv, int batch, int h, int m, float sign, float scale,
        DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        if (IsFftLength(h) && h <= fftSharedMax)
        {
            var twh = FftTwiddles(h);
            var p = new FftParams { Lines = batch * m, N = h, H = h, M = m, Sign = sign, Scale = scale };
            var kc = Kernel(ref kFftColumnsShared, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, FftParams>(IlgpuKernels.FftColumnsShared));
            Launch(opName, () => kc(ConfigFft((long)batch * m, h), xv, yv, twh, p), x, y);
            return;
        }
        var tw = FftTwiddles(h);
        var k = Kernel(ref kDftColumns, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float>(IlgpuKernels.DftColumns));
        Launch(opName, () => k(Config1D((long)batch * h * m), xv, yv, tw, batch, h, m, sign, scale), x, y);
    }
}
