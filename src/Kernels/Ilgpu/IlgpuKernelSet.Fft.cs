using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// The FFTs on ILGPU as direct DFTs (one thread per output element, O(n) work each, any length): correct on every
/// backend and simple enough to prove on the emulator; fine for the short lengths of spectral layers, not fast for long
/// transforms. Twiddle tables (cos, sin of 2πt/n for t &lt; n, computed in double on the host) are uploaded once per
/// length and cached with the kernel set.
/// </summary>
public sealed partial class IlgpuKernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, float>? kDftComplex;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kDftReal;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? kIdftReal;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float>? kDftColumns;
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
                buf = new IlgpuBuffer<float>(this, accelerator, host.Length);
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
        var tw = FftTwiddles(n);
        var k = Kernel(ref kDftComplex, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, float>(IlgpuKernels.DftComplex));
        Launch(opName, () => k(Config1D((long)batch * n), xv, yv, tw, batch, n, inverse ? 1f : -1f, scale), x, y);
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
        var tw = FftTwiddles(n);
        var k = Kernel(ref kDftReal, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.DftReal));
        Launch(opName, () => k(Config1D((long)rows * (n / 2 + 1)), xv, yv, tw, rows, n), x, y);
    }

    private void InverseRealRows(string opName, ArrayView<float> xv, ArrayView<float> yv, int rows, int n, DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        var tw = FftTwiddles(n);
        var k = Kernel(ref kIdftReal, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.IdftReal));
        Launch(opName, () => k(Config1D((long)rows * n), xv, yv, tw, rows, n), x, y);
    }

    private void Columns(string opName, ArrayView<float> xv, ArrayView<float> yv, int batch, int h, int m, float sign, float scale,
        DeviceBuffer<float> x, DeviceBuffer<float> y)
    {
        var tw = FftTwiddles(h);
        var k = Kernel(ref kDftColumns, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float>(IlgpuKernels.DftColumns));
        Launch(opName, () => k(Config1D((long)batch * h * m), xv, yv, tw, batch, h, m, sign, scale), x, y);
    }
}
