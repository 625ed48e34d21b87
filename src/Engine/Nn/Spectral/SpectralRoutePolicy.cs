using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>
/// Which route (<see cref="SpectralRoute.Gemm"/>: products with truncated-DFT matrices, O(N·k) per row;
/// <see cref="SpectralRoute.Fft"/>: the FFT ops, O(N log N), plus gathers of the kept bins) a spectral layer's
/// transforms take, per device kind and shape. <see cref="SpectralConv1d"/> and <see cref="SpectralConv2d"/> ask it
/// when their <c>Route</c> is <see cref="SpectralRoute.Auto"/>; <see cref="Force"/> overrides it for a scope.
/// </summary>
/// <remarks>
/// <para>Rule: the FFT route for a 1-D transform when modes ≥ f·log2 N, with f the device kind's factor
/// (<see cref="FftModesFactor"/>); for a 2-D transform only when both axes pass (2·modes1 ≥ f·log2 H and
/// modes2 ≥ f·log2 W); the GEMM route otherwise. On ILGPU devices the FFT route also needs power-of-two lengths (other
/// lengths run the ILGPU set's direct DFT, O(N²) per row).</para>
/// <para>CPU kernel set, f = 10, measured: forward plus inverse transform, forward and backward, channels-last, batch
/// 20, 2-core shared machine (bench `fno-route t1d|t2d`). 1-D, width 64, GEMM / FFT ms: N = 256: k = 16 2.1 / 5.1,
/// k = 64 4.0 / 6.8, k = 129 6.8 / 6.3; N = 1024: k = 16 7.1 / 18.1, k = 64 14.2 / 20.7, k = 128 31.4 / 22.0;
/// N = 4096: k = 16 23.5 / 62.5, k = 64 57.2 / 75.5, k = 128 99.6 / 81.6, k = 256 118.5 / 48.1. The crossover sits near
/// k ≈ 100 (10·log2 N puts it at 80, 100, 120). 2-D, width 32: 85², 12 modes 18.3 / 97.6; 85², 32 modes 81.7 / 221.7;
/// 64², 32 modes (all rows) 41.9 / 101.3; 128², 12 modes 74.8 / 274.6; 256², 16 modes 1580 / 2731 (best of 3:
/// 1431 / 1002). The FFT route pays for channels-last data: a permute to put the axis last, the full transform of every
/// channel, a gather of the kept bins and a permute back (and the adjoints in backward), while the GEMMs read the input
/// once; 85 = 5·17 also takes the Bluestein path of the CPU FFT. The FFT route also needs 1.5-2.4x the peak memory. So
/// every FNO configuration in use (Burgers: N = 1024, 16 modes; Darcy: 85 x 85, 12 x 12 modes) runs the GEMMs.</para>
/// <para>CUDA, OpenCL and the ILGPU emulator: f = +∞ (always the GEMM route) until measured. The ILGPU set now has a
/// Stockham FFT, so the FFT route is a candidate there; the GPU check (tools/gpu-check) times both routes at the FNO
/// shapes on CUDA, and <see cref="SetFftModesFactor"/> adopts a measured factor.</para>
/// </remarks>
public static class SpectralRoutePolicy
{
    private static readonly object Gate = new();
    private static readonly Dictionary<DeviceKind, double> Factors = new()
    {
        [DeviceKind.Cpu] = 10.0,
        [DeviceKind.IlgpuCpu] = double.PositiveInfinity,
        [DeviceKind.Cuda] = double.PositiveInfinity,
        [DeviceKind.OpenCL] = double.PositiveInfinity,
    };

    private static readonly AsyncLocal<SpectralRoute?> Forced = new();

    /// <summary>The factor f of a device kind: the FFT route when modes ≥ f·log2 N (+∞: never).</summary>
    public static double FftModesFactor(DeviceKind kind)
    {
        lock (Gate) return Factors.TryGetValue(kind, out var f) ? f : double.PositiveInfinity;
    }

    /// <summary>Sets the factor of a device kind for this process (a measured crossover; +∞ for the GEMM route always).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The factor is NaN or not positive.</exception>
    public static void SetFftModesFactor(DeviceKind kind, double factor)
    {
        if (double.IsNaN(factor) || factor <= 0)
            throw new ArgumentOutOfRangeException(nameof(factor), factor, $"SpectralRoutePolicy: the factor for {kind} must be positive (+∞: never the FFT route).");
        lock (Gate) Factors[kind] = factor;
    }

    /// <summary>
    /// The route for a 1-D transform of length <paramref name="n"/> keeping <paramref name="modes"/> modes on
    /// <paramref name="device"/> (see the class remarks).
    /// </summary>
    public static SpectralRoute Choose1d(Device device, int n, int modes)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.Kind != DeviceKind.Cpu && !IsPowerOfTwo(n)) return SpectralRoute.Gemm;
        return modes >= FftModesFactor(device.Kind) * Math.Log2(Math.Max(n, 2)) ? SpectralRoute.Fft : SpectralRoute.Gemm;
    }

    /// <summary>
    /// The route for a 2-D transform of an <paramref name="h"/> x <paramref name="w"/> field keeping 2·<paramref name="modes1"/>
    /// rows and <paramref name="modes2"/> columns on <paramref name="device"/>: the FFT route only when both axes pass
    /// the 1-D rule.
    /// </summary>
    public static SpectralRoute Choose2d(Device device, int h, int w, int modes1, int modes2) =>
        Choose1d(device, h, 2 * modes1) == SpectralRoute.Fft && Choose1d(device, w, modes2) == SpectralRoute.Fft
            ? SpectralRoute.Fft : SpectralRoute.Gemm;

    /// <summary>
    /// Makes every <see cref="SpectralRoute.Auto"/> request in the calling async flow take <paramref name="route"/> until
    /// the returned scope is disposed (benchmarks and comparisons of whole models; a layer's explicit route still wins).
    /// Scopes nest; disposing restores the previous setting.
    /// </summary>
    public static IDisposable Force(SpectralRoute route) => new RouteScope(route);

    /// <summary>The route a layer takes for a 1-D transform: <paramref name="requested"/> unless Auto, then a forced one, then <see cref="Choose1d"/>.</summary>
    public static SpectralRoute Resolve1d(SpectralRoute requested, Device device, int n, int modes) =>
        requested != SpectralRoute.Auto ? requested
        : Forced.Value is { } f && f != SpectralRoute.Auto ? f
        : Choose1d(device, n, modes);

    /// <summary>The route a layer takes for a 2-D transform (as <see cref="Resolve1d"/>, with <see cref="Choose2d"/>).</summary>
    public static SpectralRoute Resolve2d(SpectralRoute requested, Device device, int h, int w, int modes1, int modes2) =>
        requested != SpectralRoute.Auto ? requested
        : Forced.Value is { } f && f != SpectralRoute.Auto ? f
        : Choose2d(device, h, w, modes1, modes2);

    private static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    private sealed class RouteScope : IDisposable
    {
        private readonly SpectralRoute? previous;
        private bool disposed;

        public RouteScope(SpectralRoute route)
        {
            previous = Forced.Value;
            Forced.Value = route;
        }

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            Forced.Value = previous;
        }
    }
}
