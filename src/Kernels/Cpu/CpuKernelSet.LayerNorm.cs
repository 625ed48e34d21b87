using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <summary>
    /// Elements per row block of the LayerNorm backward's column sums. The blocks depend on the shape only (never on
    /// the core count), so dgamma and dbeta come out bit-identical on every machine and every run.
    /// </summary>
    private const long LayerNormBlock = 16 * 1024;

    /// <inheritdoc />
    internal unsafe void LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, DeviceBuffer<float> y,
        DeviceBuffer<float> mean, DeviceBuffer<float> rstd, int rows, int cols, float eps)
    {
        const string op = "LayerNorm";
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"{op}: extents [{rows}, {cols}] must be non-negative.");
        long n = (long)rows * cols;
        var xa = Data(x, n, op);
        var ga = Data(gamma, cols, op);
        var ba = Data(beta, cols, op);
        var ya = Data(y, n, op);
        var ma = Data(mean, rows, op);
        var ra = Data(rstd, rows, op);
        if (rows == 0) return;
        if (cols == 0)
        {
            Array.Fill(ma, float.NaN, 0, rows);
            Array.Fill(ra, float.NaN, 0, rows);
            return;
        }
        float* px = Ptr(xa), pg = Ptr(ga), pb = Ptr(ba), py = Ptr(ya), pm = Ptr(ma), pr = Ptr(ra);
        long c = cols;
        Action<long, long> body = (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                float* xr = px + r * c;
                double mu = SimdLoops.Sum(xr, c) / c;
                float m = (float)mu;
                double var = SquaredDeviationSum(xr, m, c) / c;
                float rs = (float)(1.0 / Math.Sqrt(var + eps));
                pm[r] = m;
                pr[r] = rs;
                LayerNormRow(xr, pg, pb, py + r * c, m, rs, c);
            }
        };
        if (n < 2 * CheapGrain) body(0, rows);
        else For(rows, Math.Max(1, CheapGrain / c), body, 1);
    }

    /// <inheritdoc />
    internal unsafe void LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, DeviceBuffer<float> mean, DeviceBuffer<float> rstd,
        DeviceBuffer<float> gamma, DeviceBuffer<float> dx, DeviceBuffer<float> dgamma, DeviceBuffer<float> dbeta, int rows, int cols)
    {
        const string op = "LayerNormBackward";
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"{op}: extents [{rows}, {cols}] must be non-negative.");
        long n = (long)rows * cols;
        var dya = Data(dy, n, op);
        var xa = Data(x, n, op);
        var ma = Data(mean, rows, op);
        var ra = Data(rstd, rows, op);
        var ga = Data(gamma, cols, op);
        var dxa = Data(dx, n, op);
        var dga = Data(dgamma, cols, op);
        var dba = Data(dbeta, cols, op);
        if (cols == 0) return;
        if (rows == 0)
        {
            Array.Fill(dga, 0f, 0, cols);
            Array.Fill(dba, 0f, 0, cols);
            return;
        }
        float* pdy = Ptr(dya), px = Ptr(xa), pm = Ptr(ma), pr = Ptr(ra), pg = Ptr(ga), pdx = Ptr(dxa), pdg = Ptr(dga), pdb = Ptr(dba);
        long c = cols;
        long rowsPerBlock = Math.Max(1, LayerNormBlock / c);
        long blocks = (rows + rowsPerBlock - 1) / rowsPerBlock;
        // Per block: [dgamma partial | dbeta partial] in double, summed in block order afterwards.
        var partials = GC.AllocateArray<double>(checked((int)(blocks * 2 * c)), pinned: true);
        double* parts = Ptr(partials);
        Action<long, long> body = (b0, b1) =>
        {
            var xhat = GC.AllocateUninitializedArray<float>((int)c, pinned: true);
            float* ph = Ptr(xhat);
            for (long b = b0; b < b1; b++)
            {
                double* accG = parts + b * 2 * c, accB = accG + c;
                long r1 = Math.Min(rows, (b + 1) * rowsPerBlock);
                for (long r = b * rowsPerBlock; r < r1; r++)
                {
                    long o = r * c;
                    LayerNormBackwardRow(pdy + o, px + o, pm[r], pr[r], pg, pdx + o, ph, accG, accB, c);
                }
            }
            GC.KeepAlive(xhat);
        };
        if (n < 2 * CheapGrain || blocks == 1) body(0, blocks);
        else For(blocks, 1, body, 1);
        for (long j = 0; j < c; j++)
        {
            double sg = 0, sb = 0;
            for (long b = 0; b < blocks; b++)
            {
                sg += parts[b * 2 * c + j];
                sb += parts[b * 2 * c + c + j];
            }
            pdg[j] = (float)sg;
            pdb[j] = (float)sb;
        }
        GC.KeepAlive(partials);
    }

    /// <summary>Σ (x[i] - m)² accumulated in double (the deviations are formed in float, squared in double).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double SquaredDeviationSum(float* x, float m, long n)
    {
        long i = 0;
        double s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(m);
            var s0 = Vector512<double>.Zero;
            var s1 = Vector512<double>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var (l, h) = Vector512.Widen(Vector512.Load(x + i) - vm);
                s0 = Vector512.FusedMultiplyAdd(l, l, s0);
                s1 = Vector512.FusedMultiplyAdd(h, h, s1);
            }
            s = Vector512.Sum(s0 + s1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(m);
            var s0 = Vector256<double>.Zero;
            var s1 = Vector256<double>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var (l, h) = Vector256.Widen(Vector256.Load(x + i) - vm);
                s0 = Vector256.FusedMultiplyAdd(l, l, s0);
                s1 = Vector256.FusedMultiplyAdd(h, h, s1);
            }
            s = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++)
        {
            double d = x[i] - m;
            s += d * d;
        }
        return s;
    }

    /// <summary>y[i] = (x[i] - m) · rs · gamma[i] + beta[i] over one row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void LayerNormRow(float* x, float* gamma, float* beta, float* y, float m, float rs, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(m);
            var vr = Vector512.Create(rs);
            for (; i <= n - 16; i += 16)
            {
                var h = (Vector512.Load(x + i) - vm) * vr;
                Vector512.Store(Vector512.FusedMultiplyAdd(h, Vector512.Load(gamma + i), Vector512.Load(beta + i)), y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(m);
            var vr = Vector256.Create(rs);
            for (; i <= n - 8; i += 8)
            {
                var h = (Vector256.Load(x + i) - vm) * vr;
                Vector256.Store(Vector256.FusedMultiplyAdd(h, Vector256.Load(gamma + i), Vector256.Load(beta + i)), y + i);
            }
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd((x[i] - m) * rs, gamma[i], beta[i]);
    }

    /// <summary>
    /// One row of the backward pass: dx from the row sums Σ dxhat and Σ dxhat · xhat (double), and the row's
    /// contributions dy · xhat and dy added into the double column partials. <paramref name="xhat"/> is scratch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void LayerNormBackwardRow(float* dy, float* x, float m, float rs, float* gamma, float* dx, float* xhat,
        double* accG, double* accB, long n)
    {
        long i = 0;
        double s1 = 0, s2 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(m);
            var vr = Vector512.Create(rs);
            Vector512<double> a0 = default, a1 = default, b0 = default, b1 = default;
            for (; i <= n - 16; i += 16)
            {
                var d = Vector512.Load(dy + i);
                var h = (Vector512.Load(x + i) - vm) * vr;
                Vector512.Store(h, xhat + i);
                var g = d * Vector512.Load(gamma + i);
                var (gl, gh) = Vector512.Widen(g);
                var (hl, hh) = Vector512.Widen(h);
                var (dl, dh) = Vector512.Widen(d);
                a0 += gl;
                a1 += gh;
                b0 = Vector512.FusedMultiplyAdd(gl, hl, b0);
                b1 = Vector512.FusedMultiplyAdd(gh, hh, b1);
                Vector512.Store(Vector512.FusedMultiplyAdd(dl, hl, Vector512.Load(accG + i)), accG + i);
                Vector512.Store(Vector512.FusedMultiplyAdd(dh, hh, Vector512.Load(accG + i + 8)), accG + i + 8);
                Vector512.Store(Vector512.Load(accB + i) + dl, accB + i);
                Vector512.Store(Vector512.Load(accB + i + 8) + dh, accB + i + 8);
            }
            s1 = Vector512.Sum(a0 + a1);
            s2 = Vector512.Sum(b0 + b1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(m);
            var vr = Vector256.Create(rs);
            Vector256<double> a0 = default, a1 = default, b0 = default, b1 = default;
            for (; i <= n - 8; i += 8)
            {
                var d = Vector256.Load(dy + i);
                var h = (Vector256.Load(x + i) - vm) * vr;
                Vector256.Store(h, xhat + i);
                var g = d * Vector256.Load(gamma + i);
                var (gl, gh) = Vector256.Widen(g);
                var (hl, hh) = Vector256.Widen(h);
                var (dl, dh) = Vector256.Widen(d);
                a0 += gl;
                a1 += gh;
                b0 = Vector256.FusedMultiplyAdd(gl, hl, b0);
                b1 = Vector256.FusedMultiplyAdd(gh, hh, b1);
                Vector256.Store(Vector256.FusedMultiplyAdd(dl, hl, Vector256.Load(accG + i)), accG + i);
                Vector256.Store(Vector256.FusedMultiplyAdd(dh, hh, Vector256.Load(accG + i + 4)), accG + i + 4);
                Vector256.Store(Vector256.Load(accB + i) + dl, accB + i);
                Vector256.Store(Vector256.Load(accB + i + 4) + dh, accB + i + 4);
            }
            s1 = Vector256.Sum(a0 + a1);
            s2 = Vector256.Sum(b0 + b1);
        }
        for (; i < n; i++)
        {
            float d = dy[i];
            float h = (x[i] - m) * rs;
            xhat[i] = h;
            double g = d * gamma[i];
            s1 += g;
            s2 += g * h;
            accG[i] += (double)d * h;
            accB[i] += d;
        }
        float c1 = (float)(s1 / n), c2 = (float)(s2 / n);
        i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v1 = Vector512.Create(c1);
            var v2 = Vector512.Create(c2);
            var vr = Vector512.Create(rs);
            for (; i <= n - 16; i += 16)
            {
                var g = Vector512.Load(dy + i) * Vector512.Load(gamma + i);
                var t = Vector512.FusedMultiplyAdd(-Vector512.Load(xhat + i), v2, g - v1);
                Vector512.Store(t * vr, dx + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var v1 = Vector256.Create(c1);
            var v2 = Vector256.Create(c2);
            var vr = Vector256.Create(rs);
            for (; i <= n - 8; i += 8)
            {
                var g = Vector256.Load(dy + i) * Vector256.Load(gamma + i);
                var t = Vector256.FusedMultiplyAdd(-Vector256.Load(xhat + i), v2, g - v1);
                Vector256.Store(t * vr, dx + i);
            }
        }
        for (; i < n; i++) dx[i] = rs * MathF.FusedMultiplyAdd(-xhat[i], c2, dy[i] * gamma[i] - c1);
    }
}
