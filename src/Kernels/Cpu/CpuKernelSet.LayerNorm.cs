using System.Runtime.CompilerServices;
using Engine.Kernels.Vectors;
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
        Simd.Run(new LayerNormKernel(Ptr(xa), Ptr(ga), Ptr(ba), Ptr(ya), Ptr(ma), Ptr(ra), rows, cols, eps));
    }

    private readonly unsafe struct LayerNormKernel(float* x, float* gamma, float* beta, float* y, float* mean, float* rstd, int rows, int cols, float eps)
        : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => LayerNormCore<TV, TD>(x, gamma, beta, y, mean, rstd, rows, cols, eps);
    }

    private static unsafe void LayerNormCore<TV, TD>(float* px, float* pg, float* pb, float* py, float* pm, float* pr, int rows, int cols, float eps)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long n = (long)rows * cols;
        long c = cols;
        Action<long, long> body = (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                float* xr = px + r * c;
                double mu = SimdLoops<TV, TD>.Sum(xr, c) / c;
                float m = (float)mu;
                double var = SquaredDeviationSum<TV, TD>(xr, m, c) / c;
                float rs = (float)(1.0 / Math.Sqrt(var + eps));
                pm[r] = m;
                pr[r] = rs;
                LayerNormRow<TV>(xr, pg, pb, py + r * c, m, rs, c);
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
        Simd.Run(new LayerNormBackwardKernel(Ptr(dya), Ptr(xa), Ptr(ma), Ptr(ra), Ptr(ga), Ptr(dxa), Ptr(dga), Ptr(dba), rows, cols));
    }

    private readonly unsafe struct LayerNormBackwardKernel(float* dy, float* x, float* mean, float* rstd, float* gamma, float* dx,
        float* dgamma, float* dbeta, int rows, int cols) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => LayerNormBackwardCore<TV, TD>(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, rows, cols);
    }

    private static unsafe void LayerNormBackwardCore<TV, TD>(float* pdy, float* px, float* pm, float* pr, float* pg, float* pdx,
        float* pdg, float* pdb, int rows, int cols)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long n = (long)rows * cols;
        long c = cols;
        long rowsPerBlock = Math.Max(1, LayerNormBlock / c);
        long blocks = (rows + rowsPerBlock - 1) / rowsPerBlock;
        // Per block: [dgamma partial | dbeta partial] in double, summed in block order afterwards. The partials and
        // each part's xhat scratch come from the array pool: fresh arrays are large allocations on every call.
        var partials = CpuArrayPool<double>.Rent(checked((int)(blocks * 2 * c)));
        double* parts = Ptr(partials);
        Action<long, long> body = (b0, b1) =>
        {
            var xhat = CpuArrayPool<float>.Rent(checked((int)(rowsPerBlock * c)));
            float* ph = Ptr(xhat);
            for (long b = b0; b < b1; b++)
            {
                long r0 = b * rowsPerBlock, r1 = Math.Min(rows, r0 + rowsPerBlock);
                for (long r = r0; r < r1; r++)
                {
                    long o = r * c;
                    LayerNormBackwardRow<TV, TD>(pdy + o, px + o, pm[r], pr[r], pg, pdx + o, ph + (r - r0) * c, c);
                }
                double* accG = parts + b * 2 * c;
                LayerNormColumnPartials<TV, TD>(pdy + r0 * c, ph, r1 - r0, c, accG, accG + c);
            }
            CpuArrayPool<float>.Return(xhat);
        };
        if (n < 2 * CheapGrain || blocks == 1) body(0, blocks);
        else For(blocks, 1, body, 1);
        // Block by block into the first block's partials, in memory order: each column adds its blocks in block order.
        for (long b = 1; b < blocks; b++) SimdLoops<TV, TD>.AddDouble(parts, parts + b * 2 * c, 2 * c);
        for (long j = 0; j < c; j++)
        {
            pdg[j] = (float)parts[j];
            pdb[j] = (float)parts[c + j];
        }
        CpuArrayPool<double>.Return(partials);
    }

    /// <summary>Σ (x[i] - m)² accumulated in double (the deviations are formed in float, squared in double).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double SquaredDeviationSum<TV, TD>(float* x, float m, long n)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long i = 0;
        double s = 0;
        if (TV.Count > 1)
        {
            var vm = TV.Create(m);
            var s0 = TD.Zero;
            var s1 = TD.Zero;
            for (; i <= n - TV.Count; i += TV.Count)
            {
                TV.Widen(TV.Load(x + i) - vm, out var l, out var h);
                s0 = TD.FusedMultiplyAdd(l, l, s0);
                s1 = TD.FusedMultiplyAdd(h, h, s1);
            }
            s = TD.Sum(s0 + s1);
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
    private static unsafe void LayerNormRow<TV>(float* x, float* gamma, float* beta, float* y, float m, float rs, long n)
        where TV : unmanaged, IFloatVector<TV>
    {
        long i = 0;
        if (TV.Count > 1)
        {
            var vm = TV.Create(m);
            var vr = TV.Create(rs);
            for (; i <= n - TV.Count; i += TV.Count)
            {
                var h = (TV.Load(x + i) - vm) * vr;
                TV.Store(TV.FusedMultiplyAdd(h, TV.Load(gamma + i), TV.Load(beta + i)), y + i);
            }
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd((x[i] - m) * rs, gamma[i], beta[i]);
    }

    /// <summary>
    /// One row of the backward pass: dx from the row sums Σ dxhat and Σ dxhat · xhat (double); the row's xhat is
    /// stored into <paramref name="xhat"/> for the column partials.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void LayerNormBackwardRow<TV, TD>(float* dy, float* x, float m, float rs, float* gamma, float* dx, float* xhat, long n)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long i = 0;
        double s1 = 0, s2 = 0;
        int w = TV.Count;
        if (w > 1)
        {
            var vm = TV.Create(m);
            var vr = TV.Create(rs);
            TD a0 = TD.Zero, a1 = TD.Zero, b0 = TD.Zero, b1 = TD.Zero;
            for (; i <= n - w; i += w)
            {
                var d = TV.Load(dy + i);
                var h = (TV.Load(x + i) - vm) * vr;
                TV.Store(h, xhat + i);
                var g = d * TV.Load(gamma + i);
                TV.Widen(g, out var gl, out var gh);
                TV.Widen(h, out var hl, out var hh);
                a0 += gl;
                a1 += gh;
                b0 = TD.FusedMultiplyAdd(gl, hl, b0);
                b1 = TD.FusedMultiplyAdd(gh, hh, b1);
            }
            s1 = TD.Sum(a0 + a1);
            s2 = TD.Sum(b0 + b1);
        }
        for (; i < n; i++)
        {
            float d = dy[i];
            float h = (x[i] - m) * rs;
            xhat[i] = h;
            double g = d * gamma[i];
            s1 += g;
            s2 += g * h;
        }
        float c1 = (float)(s1 / n), c2 = (float)(s2 / n);
        i = 0;
        if (w > 1)
        {
            var v1 = TV.Create(c1);
            var v2 = TV.Create(c2);
            var vr = TV.Create(rs);
            for (; i <= n - w; i += w)
            {
                var g = TV.Load(dy + i) * TV.Load(gamma + i);
                var t = TV.FusedMultiplyAdd(-TV.Load(xhat + i), v2, g - v1);
                TV.Store(t * vr, dx + i);
            }
        }
        for (; i < n; i++) dx[i] = rs * MathF.FusedMultiplyAdd(-xhat[i], c2, dy[i] * gamma[i] - c1);
    }

    /// <summary>
    /// The column partials of one block of rows: accG[j] = Σ_r dy[r, j] · xhat[r, j] and accB[j] = Σ_r dy[r, j] in
    /// double, added row after row from zero, each column's sum in registers across the rows. <paramref name="dy"/>
    /// has rows of <paramref name="n"/>; <paramref name="xhat"/> holds the block's rows as the row routine stored them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void LayerNormColumnPartials<TV, TD>(float* dy, float* xhat, long rows, long n, double* accG, double* accB)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long j = 0;
        int w = TV.Count, h2 = TD.Count;
        if (w > 1)
        {
            for (; j <= n - w; j += w)
            {
                TD g0 = TD.Zero, g1 = TD.Zero, b0 = TD.Zero, b1 = TD.Zero;
                for (long r = 0; r < rows; r++)
                {
                    TV.Widen(TV.Load(dy + r * n + j), out var dl, out var dh);
                    TV.Widen(TV.Load(xhat + r * n + j), out var hl, out var hh);
                    g0 = TD.FusedMultiplyAdd(dl, hl, g0);
                    g1 = TD.FusedMultiplyAdd(dh, hh, g1);
                    b0 += dl;
                    b1 += dh;
                }
                TD.Store(g0, accG + j);
                TD.Store(g1, accG + j + h2);
                TD.Store(b0, accB + j);
                TD.Store(b1, accB + j + h2);
            }
        }
        for (; j < n; j++)
        {
            double g = 0, b = 0;
            for (long r = 0; r < rows; r++)
            {
                float d = dy[r * n + j];
                g += (double)d * xhat[r * n + j];
                b += d;
            }
            accG[j] = g;
            accB[j] = b;
        }
    }
}
