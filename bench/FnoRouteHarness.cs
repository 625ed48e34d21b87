using System.Diagnostics;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Bench;

/// <summary>
/// Stopwatch harness comparing the two <see cref="SpectralTransform"/> routes (truncated-DFT GEMMs vs the FFT ops):
/// `dotnet run -c Release --project bench -- fno-route &lt;case&gt; &lt;gemm|fft|auto&gt; [steps]`. Cases:
/// `burgers` (Fno1d training step, s = 1024, 16 modes, width 64, batch 20), `darcy` (Fno2d step, s = 85, 12 modes,
/// width 32, batch 20), `t1d` / `t2d` (one spectral convolution's forward and inverse transform, forward and backward,
/// at those shapes). Prints the median and best step time and the process's peak working set; run each route in its
/// own process so the peak belongs to it.
/// </summary>
public static class FnoRouteHarness
{
    /// <summary>Runs one case with one route and writes the timings to <paramref name="log"/>.</summary>
    public static void Run(string[] args, TextWriter log)
    {
        string which = args.Length > 0 ? args[0] : "darcy";
        var route = args.Length > 1 ? Enum.Parse<SpectralRoute>(args[1], ignoreCase: true) : SpectralRoute.Auto;
        int steps = args.Length > 2 ? int.Parse(args[2]) : 5;
        var d = Device.Cpu;
        using var forced = SpectralRoutePolicy.Force(route);
        Func<float> step;
        IDisposable owner;
        switch (which)
        {
            case "burgers":
            case "darcy":
            {
                bool two = which == "darcy";
                Module model = two ? new Fno2d(12, 12, 32, 4, seed: 1, device: d) : new Fno1d(16, 64, 4, seed: 1, device: d);
                var opt = new Adam(model.Parameters(), 1e-3f, weightDecay: 1e-4f);
                int[] shape = two ? [20, 85, 85] : [20, 1024];
                var x = Tensor.Normal(shape, 2, device: d);
                var y = Tensor.Normal(shape, 3, device: d);
                step = () =>
                {
                    using var scope = new TensorScope();
                    opt.ZeroGrad();
                    var loss = OperatorTraining.RelativeL2(model.Forward(x), y);
                    loss.Backward();
                    opt.Step();
                    return loss.Item();
                };
                owner = new Owner(model, opt, x, y);
                break;
            }
            case "parts2d":
            {
                var conv = new SpectralConv2d(32, 32, 12, 12, seed: 1, device: d);
                var lin = new Linear(32, 128, seed: 2, device: d);
                var x = Tensor.Normal([20, 85, 85, 32], 2, device: d);
                x.RequiresGrad = true;
                void Time(string name, Func<Tensor> f)
                {
                    var sw = Stopwatch.StartNew();
                    using (new TensorScope())
                    {
                        var o = f();
                        double fw = sw.Elapsed.TotalMilliseconds;
                        (o * o).Sum().Backward();
                        log.WriteLine($"  {name}: forward {fw:F1} ms, +backward {sw.Elapsed.TotalMilliseconds:F1} ms");
                    }
                    x.ZeroGrad();
                }
                step = () =>
                {
                    Time("spectral conv", () => conv.Forward(x));
                    Time("rfft2 modes", () => SpectralTransform.Rfft2Modes(x, 12, 12, SpectralRoutePolicy.Resolve2d(route, d, 85, 85, 12, 12)));
                    Time("permute", () => x.Permute(0, 3, 1, 2));
                    Time("linear 32->128", () => lin.Forward(x));
                    Time("gelu", () => x.Gelu());
                    Time("add", () => x + x);
                    return 0;
                };
                owner = new Owner(conv, lin, x);
                break;
            }
            default:
            {
                bool two = which == "t2d";
                // Optional sizes after the step count: n (or s), modes, width, batch.
                int n = args.Length > 3 ? int.Parse(args[3]) : two ? 85 : 1024;
                int k = args.Length > 4 ? int.Parse(args[4]) : two ? 12 : 16;
                int c = args.Length > 5 ? int.Parse(args[5]) : two ? 32 : 64;
                int bsz = args.Length > 6 ? int.Parse(args[6]) : 20;
                int[] shape = two ? [bsz, n, n, c] : [bsz, n, c];
                var x = Tensor.Normal(shape, 2, device: d);
                x.RequiresGrad = true;
                step = () =>
                {
                    using var scope = new TensorScope();
                    var r = two ? SpectralRoutePolicy.Resolve2d(route, d, n, n, k, k) : SpectralRoutePolicy.Resolve1d(route, d, n, k);
                    var xh = two ? SpectralTransform.Rfft2Modes(x, k, k, r) : SpectralTransform.RfftModes(x, k, axis: 1, r);
                    var back = two ? SpectralTransform.Irfft2Modes(xh, n, n, r) : SpectralTransform.IrfftModes(xh, n, axis: 1, r);
                    var loss = (back * back).Sum();
                    loss.Backward();
                    float v = loss.Item();
                    x.ZeroGrad();
                    return v;
                };
                owner = x;
                break;
            }
        }
        using (owner)
        {
            step(); // warm-up: plans, caches, JIT
            var times = new List<double>();
            for (int i = 0; i < steps; i++)
            {
                var sw = Stopwatch.StartNew();
                step();
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            long peak = Process.GetCurrentProcess().PeakWorkingSet64;
            log.WriteLine($"{which} {string.Join(' ', args.Skip(3))} route={route} steps={steps} median={times[times.Count / 2]:F1} ms best={times[0]:F1} ms peakWS={peak / 1e6:F0} MB");
        }
    }

    private sealed class Owner(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var i in items) i.Dispose();
        }
    }
}
