using System.Runtime.CompilerServices;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <summary>Product of the extents (1 for a scalar).</summary>
    private static long Prod(int[] shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"cpu kernel set: negative extent {d} in shape [{string.Join(", ", shape)}].");
            n *= d;
        }
        return n;
    }

    /// <summary>
    /// Broadcast iteration space: <paramref name="yShape"/> with size-1 dims dropped and adjacent dims merged where
    /// both operands stay affine, as extents and per-operand element strides (0 on broadcast dims). Operands of lower
    /// rank align to the right; a null <paramref name="bShape"/> yields zero strides for b. Always at least one dim.
    /// </summary>
    private static int CollapseBroadcast(int[] yShape, int[] aShape, int[]? bShape, out long[] ext, out long[] sa, out long[] sb)
    {
        int r = yShape.Length;
        var e = new long[Math.Max(1, r)];
        var ta = new long[e.Length];
        var tb = new long[e.Length];
        int m = 0;
        long strideA = 1, strideB = 1;
        // Walk from the innermost dim outwards, merging into the previous (inner) collapsed dim when possible.
        var re = new long[e.Length];
        var ra = new long[e.Length];
        var rb = new long[e.Length];
        for (int i = r - 1; i >= 0; i--)
        {
            long ext_i = yShape[i];
            int ja = i - (r - aShape.Length);
            long da = ja >= 0 ? aShape[ja] : 1;
            long a_i = da == 1 ? 0 : strideA;
            if (ja >= 0) strideA *= da;
            long b_i = 0;
            if (bShape != null)
            {
                int jb = i - (r - bShape.Length);
                long db = jb >= 0 ? bShape[jb] : 1;
                b_i = db == 1 ? 0 : strideB;
                if (jb >= 0) strideB *= db;
            }
            if (ext_i == 1) continue;
            if (m > 0 && a_i == ra[m - 1] * re[m - 1] && b_i == rb[m - 1] * re[m - 1])
            {
                // Outer dim i continues the inner collapsed dim for both operands: merge.
                re[m - 1] *= ext_i;
                continue;
            }
            re[m] = ext_i;
            ra[m] = a_i;
            rb[m] = b_i;
            m++;
        }
        if (m == 0)
        {
            re[0] = 1;
            ra[0] = 0;
            rb[0] = 0;
            m = 1;
        }
        // Reverse into outer..inner order.
        for (int k = 0; k < m; k++)
        {
            e[k] = re[m - 1 - k];
            ta[k] = ra[m - 1 - k];
            tb[k] = rb[m - 1 - k];
        }
        ext = e;
        sa = ta;
        sb = tb;
        return m;
    }

    /// <summary>The element offsets of row <paramref name="row"/> (all dims but the innermost) for both operands.</summary>
    private static void RowStart(long row, int outer, long[] ext, long[] sa, long[] sb, Span<long> idx, out long oa, out long ob)
    {
        oa = 0;
        ob = 0;
        long rem = row;
        for (int d = outer - 1; d >= 0; d--)
        {
            long i = rem % ext[d];
            rem /= ext[d];
            idx[d] = i;
            oa += i * sa[d];
            ob += i * sb[d];
        }
    }

    /// <summary>Advances the row odometer by one row.</summary>
    private static void RowNext(int outer, long[] ext, long[] sa, long[] sb, Span<long> idx, ref long oa, ref long ob)
    {
        for (int d = outer - 1; d >= 0; d--)
        {
            oa += sa[d];
            ob += sb[d];
            if (++idx[d] < ext[d]) return;
            oa -= sa[d] * ext[d];
            ob -= sb[d] * ext[d];
            idx[d] = 0;
        }
    }

    /// <inheritdoc />
    internal void Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape) =>
        ElementwiseOps.Visit<BinaryVisitor, bool>(op, new BinaryVisitor(this, a, aShape, b, bShape, y, yShape));

    /// <summary>y = op(a, b) with NumPy broadcasting for any op struct (composed ones included), as one kernel.</summary>
    internal void Binary<TOp>(TOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape)
        where TOp : unmanaged, IBinaryOp
    {
        long n = Prod(yShape);
        var aa = Data(a, Prod(aShape), "Binary");
        var ba = Data(b, Prod(bShape), "Binary");
        var ya = Data(y, n, "Binary");
        if (n == 0) return;
        Simd.Run(new BinaryKernel<TOp>(op, aa, aShape, ba, bShape, ya, yShape, n));
    }

    private readonly struct BinaryVisitor(CpuKernelSet set, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape,
        DeviceBuffer<float> y, int[] yShape) : IBinaryOpVisitor<bool>
    {
        bool IBinaryOpVisitor<bool>.Visit<TOp>(TOp op)
        {
            set.Binary(op, a, aShape, b, bShape, y, yShape);
            return true;
        }
    }

    private readonly struct BinaryKernel<TOp>(TOp op, float[] a, int[] aShape, float[] b, int[] bShape, float[] y, int[] yShape, long n)
        : IWidthAction where TOp : unmanaged, IBinaryOp
    {
        void IWidthAction.Run<TV, TD>() => BinaryCore<TOp, TV, TD>(op, a, aShape, b, bShape, y, yShape, n);
    }

    private static unsafe void BinaryCore<TOp, TV, TD>(TOp op, float[] a, int[] aShape, float[] b, int[] bShape, float[] y, int[] yShape, long n)
        where TOp : unmanaged, IBinaryOp where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long grain = CheapGrain / TOp.Cost;
        long na = Prod(aShape), nb = Prod(bShape);
        float* pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        // Fast paths: same shape, one operand a scalar.
        if (na == n && nb == n)
        {
            ZipPar<TOp, TV, TD>(op, a, b, y, n);
            return;
        }
        if (nb == 1 && na == n)
        {
            float s = b[0];
            if (n < 2 * grain) SimdLoops<TV, TD>.ZipVS(op, pa, s, py, n);
            else if (n >= StreamingThreshold) For(n, grain, (s0, e0) => SimdLoops<TV, TD>.ZipVS<TOp, StreamingStore>(op, pa + s0, s, py + s0, e0 - s0));
            else For(n, grain, (s0, e0) => SimdLoops<TV, TD>.ZipVS(op, pa + s0, s, py + s0, e0 - s0));
            return;
        }
        if (na == 1 && nb == n)
        {
            float s = a[0];
            if (n < 2 * grain) SimdLoops<TV, TD>.ZipSV(op, s, pb, py, n);
            else if (n >= StreamingThreshold) For(n, grain, (s0, e0) => SimdLoops<TV, TD>.ZipSV<TOp, StreamingStore>(op, s, pb + s0, py + s0, e0 - s0));
            else For(n, grain, (s0, e0) => SimdLoops<TV, TD>.ZipSV(op, s, pb + s0, py + s0, e0 - s0));
            return;
        }
        // General: collapsed strides; rows of the innermost dim run as same-shape, scalar-vector or vector-scalar
        // SIMD loops (this covers row broadcasts such as [B,N] + [N] and [B,N] * [B,1] at full speed).
        int m = CollapseBroadcast(yShape, aShape, bShape, out var ext, out var sa, out var sb);
        long inner = ext[m - 1];
        long rows = n / inner;
        if (n < 2 * grain) BinaryRows<TOp, CachedStore, TV, TD>(op, pa, pb, py, m, ext, sa, sb, 0, rows);
        else if (n >= StreamingThreshold && inner >= 1024)
            For(rows, Math.Max(1, grain / inner), (r0, r1) => BinaryRows<TOp, StreamingStore, TV, TD>(op, pa, pb, py, m, ext, sa, sb, r0, r1), 1);
        else For(rows, Math.Max(1, grain / inner), (r0, r1) => BinaryRows<TOp, CachedStore, TV, TD>(op, pa, pb, py, m, ext, sa, sb, r0, r1), 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void BinaryRows<TOp, TS, TV, TD>(TOp op, float* a, float* b, float* y, int m, long[] ext, long[] sa, long[] sb, long r0, long r1)
        where TOp : unmanaged, IBinaryOp where TS : struct, IStoreMode
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        int outer = m - 1;
        Span<long> idx = outer <= 16 ? stackalloc long[16] : new long[outer];
        RowStart(r0, outer, ext, sa, sb, idx, out long oa, out long ob);
        long inner = ext[m - 1], ia = sa[m - 1], ib = sb[m - 1];
        float* yr = y + r0 * inner;
        for (long r = r0; r < r1; r++, yr += inner)
        {
            float* ar = a + oa, br = b + ob;
            if (inner < 16)
            {
                for (long k = 0; k < inner; k++) yr[k] = op.Vector<Vec1>(ar[k * ia], br[k * ib]);
            }
            else if (ia != 0 && ib != 0) SimdLoops<TV, TD>.Zip<TOp, TS>(op, ar, br, yr, inner);
            else if (ib == 0 && ia != 0) SimdLoops<TV, TD>.ZipVS<TOp, TS>(op, ar, *br, yr, inner);
            else if (ia == 0 && ib != 0) SimdLoops<TV, TD>.ZipSV<TOp, TS>(op, *ar, br, yr, inner);
            else SimdLoops.Fill(yr, inner, op.Vector<Vec1>(*ar, *br));
            RowNext(outer, ext, sa, sb, idx, ref oa, ref ob);
        }
    }

    /// <inheritdoc />
    internal unsafe void BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape)
    {
        long n = Prod(yShape);
        long nx = Prod(xShape);
        var xa = Data(x, nx, "BroadcastTo");
        var ya = Data(y, n, "BroadcastTo");
        if (n == 0) return;
        float* px = Ptr(xa), py = Ptr(ya);
        if (nx == n)
        {
            MapPar(new IdentityOp(), xa, ya, n);
            return;
        }
        if (nx == 1)
        {
            float v = xa[0];
            if (n < 2 * CheapGrain) SimdLoops.Fill(py, n, v);
            else For(n, CheapGrain, (s, e) => SimdLoops.Fill(py + s, e - s, v));
            return;
        }
        int m = CollapseBroadcast(yShape, xShape, null, out var ext, out var sx, out var sz);
        long inner = ext[m - 1];
        long rows = n / inner;
        if (n < 2 * CheapGrain) BroadcastRows(px, py, m, ext, sx, sz, 0, rows);
        else For(rows, Math.Max(1, CheapGrain / inner), (r0, r1) => BroadcastRows(px, py, m, ext, sx, sz, r0, r1), 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void BroadcastRows(float* x, float* y, int m, long[] ext, long[] sx, long[] sz, long r0, long r1)
    {
        int outer = m - 1;
        Span<long> idx = outer <= 16 ? stackalloc long[16] : new long[outer];
        RowStart(r0, outer, ext, sx, sz, idx, out long ox, out long oz);
        long inner = ext[m - 1], ix = sx[m - 1];
        float* yr = y + r0 * inner;
        for (long r = r0; r < r1; r++, yr += inner)
        {
            float* xr = x + ox;
            if (ix == 0) SimdLoops.Fill(yr, inner, *xr);
            else if (inner < 16) for (long k = 0; k < inner; k++) yr[k] = xr[k];
            else Buffer.MemoryCopy(xr, yr, inner * sizeof(float), inner * sizeof(float));
            RowNext(outer, ext, sx, sz, idx, ref ox, ref oz);
        }
    }
}
