using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Vectors;
using static Engine.Kernels.Cpu.CpuParallel;

namespace Engine.Kernels.Cpu;

public sealed partial class CpuKernelSet
{
    /// <summary>Tile edge of the blocked transpose inside <see cref="Permute"/>.</summary>
    private const int TransposeTile = 64;

    /// <inheritdoc />
    internal unsafe void Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y)
    {
        int r = xShape.Length;
        if (perm.Length != r) throw new ArgumentException($"Permute: perm has {perm.Length} entries for rank {r}.");
        var seen = new bool[r];
        foreach (var p in perm)
        {
            if ((uint)p >= (uint)r || seen[p]) throw new ArgumentException($"Permute: [{string.Join(", ", perm)}] is not a permutation of rank {r}.");
            seen[p] = true;
        }
        long n = Prod(xShape);
        var xa = Data(x, n, "Permute");
        var ya = Data(y, n, "Permute");
        if (n == 0) return;

        // Collapse: drop size-1 dims, then merge input dims that stay adjacent and in order in the output.
        var newIndex = new int[r];
        int k0 = 0;
        for (int d = 0; d < r; d++) newIndex[d] = xShape[d] == 1 ? -1 : k0++;
        var pl = new List<int>(r);
        foreach (var p in perm)
            if (newIndex[p] >= 0) pl.Add(newIndex[p]);
        var e0 = new long[k0];
        for (int d = 0; d < r; d++)
            if (newIndex[d] >= 0) e0[newIndex[d]] = xShape[d];
        // Groups of consecutive output positions whose input dims are consecutive.
        var groupOfInput = new int[k0];
        var groupsOut = new List<(int first, int last)>();
        for (int i = 0; i < pl.Count; i++)
        {
            if (groupsOut.Count > 0 && pl[i] == groupsOut[^1].last + 1) groupsOut[^1] = (groupsOut[^1].first, pl[i]);
            else groupsOut.Add((pl[i], pl[i]));
        }
        int k = groupsOut.Count;
        if (k <= 1 || IsIdentityOrder(groupsOut))
        {
            MapPar(new IdentityOp(), xa, ya, n);
            return;
        }
        // Collapsed input dims are the groups ordered by their first input dim.
        var order = new int[k];
        for (int i = 0; i < k; i++) order[i] = i;
        Array.Sort(order, (u, v) => groupsOut[u].first.CompareTo(groupsOut[v].first));
        var ext = new long[k];       // collapsed input extents
        var cperm = new int[k];      // output position -> collapsed input dim
        for (int ci = 0; ci < k; ci++)
        {
            var g = groupsOut[order[ci]];
            long e = 1;
            for (int d = g.first; d <= g.last; d++) e *= e0[d];
            ext[ci] = e;
            cperm[order[ci]] = ci;
        }
        var istr = new long[k];
        long s = 1;
        for (int d = k - 1; d >= 0; d--)
        {
            istr[d] = s;
            s *= ext[d];
        }
        var oext = new long[k];
        var ostr = new long[k];
        var ois = new long[k];       // input stride of each output position
        s = 1;
        for (int i = k - 1; i >= 0; i--)
        {
            oext[i] = ext[cperm[i]];
            ois[i] = istr[cperm[i]];
            ostr[i] = s;
            s *= oext[i];
        }
        float* px = Ptr(xa), py = Ptr(ya);

        if (cperm[k - 1] == k - 1)
        {
            // The innermost dim stays innermost: copy contiguous runs, rows visited in output order.
            long run = ext[k - 1];
            long rowsTotal = n / run;
            int outerDims = k - 1;
            Action<long, long> rowsBody = (r0, r1) =>
            {
                Span<long> idx = outerDims <= 16 ? stackalloc long[16] : new long[outerDims];
                long rem = r0, xo = 0;
                for (int d = outerDims - 1; d >= 0; d--)
                {
                    idx[d] = rem % oext[d];
                    rem /= oext[d];
                    xo += idx[d] * ois[d];
                }
                float* yr = py + r0 * run;
                for (long row = r0; row < r1; row++, yr += run)
                {
                    float* xr = px + xo;
                    if (run < 16) for (long t = 0; t < run; t++) yr[t] = xr[t];
                    else Buffer.MemoryCopy(xr, yr, run * sizeof(float), run * sizeof(float));
                    for (int d = outerDims - 1; d >= 0; d--)
                    {
                        xo += ois[d];
                        if (++idx[d] < oext[d]) break;
                        xo -= ois[d] * oext[d];
                        idx[d] = 0;
                    }
                }
            };
            if (n < 2 * CheapGrain) rowsBody(0, rowsTotal);
            else For(rowsTotal, Math.Max(1, CheapGrain / run), rowsBody, 1);
            return;
        }

        // Otherwise a batch of 2-D transposes: output position j holds the input's innermost dim, the output's
        // innermost dim reads with input stride sq.
        int j = Array.IndexOf(cperm, k - 1);
        long la = oext[j];           // extent of the input's innermost dim
        long lb = oext[k - 1];       // extent of the output's innermost dim
        long sq = ois[k - 1];        // input stride of the output's innermost dim
        long soj = ostr[j];          // output stride of position j
        // The other output positions form the batch.
        var bext = new List<long>();
        var bis = new List<long>();
        var bos = new List<long>();
        for (int i = 0; i < k - 1; i++)
        {
            if (i == j) continue;
            bext.Add(oext[i]);
            bis.Add(ois[i]);
            bos.Add(ostr[i]);
        }
        var be = bext.ToArray();
        var bi = bis.ToArray();
        var bo = bos.ToArray();
        long batch = 1;
        foreach (var e in be) batch *= e;
        long aTiles = (la + TransposeTile - 1) / TransposeTile;
        long bTiles = (lb + TransposeTile - 1) / TransposeTile;
        long tiles = aTiles * bTiles;
        long items = batch * tiles;
        Action<long, long> body = (i0, i1) =>
        {
            for (long it = i0; it < i1; it++)
            {
                long bIndex = it / tiles, t = it % tiles;
                long aTile = t / bTiles, bTile = t % bTiles;
                long xoff = 0, yoff = 0, rem = bIndex;
                for (int d = be.Length - 1; d >= 0; d--)
                {
                    long q = rem % be[d];
                    rem /= be[d];
                    xoff += q * bi[d];
                    yoff += q * bo[d];
                }
                long a0 = aTile * TransposeTile, a1 = Math.Min(la, a0 + TransposeTile);
                long b0 = bTile * TransposeTile, b1 = Math.Min(lb, b0 + TransposeTile);
                TransposeBlock(px + xoff, py + yoff, a0, a1, b0, b1, sq, soj);
            }
        };
        long perItem = (long)TransposeTile * Math.Min(lb, TransposeTile);
        if (n < 2 * CheapGrain) body(0, items);
        else For(items, Math.Max(1, CheapGrain / perItem), body, 1);
    }

    private static bool IsIdentityOrder(List<(int first, int last)> groups)
    {
        for (int i = 1; i < groups.Count; i++)
            if (groups[i].first < groups[i - 1].first) return false;
        return true;
    }

    /// <summary>
    /// y[a * soj + b] = x[b * sq + a] for a in [a0, a1), b in [b0, b1): one cache- and TLB-sized tile. With AVX:
    /// 16x16 super-blocks of four in-register 8x8 transposes; scalar edges.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TransposeBlock(float* x, float* y, long a0, long a1, long b0, long b1, long sq, long soj)
    {
        long a = a0;
        if (Avx.IsSupported)
        {
            for (; a + 16 <= a1; a += 16)
            {
                long b = b0;
                for (; b + 16 <= b1; b += 16)
                {
                    float* xs = x + b * sq + a;
                    float* yd = y + a * soj + b;
                    nint ss = (nint)sq, ds = (nint)soj;
                    SimdTranspose.Transpose8x8(xs, ss, yd, ds);
                    SimdTranspose.Transpose8x8(xs + 8, ss, yd + 8 * ds, ds);
                    SimdTranspose.Transpose8x8(xs + 8 * ss, ss, yd + 8, ds);
                    SimdTranspose.Transpose8x8(xs + 8 * ss + 8, ss, yd + 8 * ds + 8, ds);
                }
                for (long aa = a; aa < a + 16; aa++)
                {
                    float* yr = y + aa * soj;
                    float* xc = x + aa;
                    for (long bb = b; bb < b1; bb++) yr[bb] = xc[bb * sq];
                }
            }
        }
        for (long aa = a; aa < a1; aa++)
        {
            float* yr = y + aa * soj;
            float* xc = x + aa;
            for (long b = b0; b < b1; b++) yr[b] = xc[b * sq];
        }
    }

    /// <summary>Splits a shape at <paramref name="axis"/> into (outer, axis extent, inner).</summary>
    private static (long outer, long len, long inner) SplitAt(int[] shape, int axis, string op)
    {
        if ((uint)axis >= (uint)shape.Length)
            throw new ArgumentOutOfRangeException(nameof(axis), $"{op}: axis {axis} out of range for rank {shape.Length}.");
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[axis], inner);
    }

    private static void CheckIndices(int[] index, long count, long bound, string op)
    {
        for (long j = 0; j < count; j++)
            if ((uint)index[j] >= (ulong)bound)
                throw new ArgumentOutOfRangeException(nameof(index), $"{op}: index {index[j]} at position {j} is outside [0, {bound}).");
    }

    /// <inheritdoc />
    internal unsafe void IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y)
    {
        var (outer, len, inner) = SplitAt(xShape, axis, "IndexSelect");
        var xa = Data(x, outer * len * inner, "IndexSelect");
        var ia = Data(index, indexLength, "IndexSelect");
        long rows = outer * indexLength;
        var ya = Data(y, rows * inner, "IndexSelect");
        if (rows * inner == 0) return;
        CheckIndices(ia, indexLength, len, "IndexSelect");
        float* px = Ptr(xa), py = Ptr(ya);
        int* pi = Ptr(ia);
        long jl = indexLength;
        if (inner == 1)
        {
            GatherLastAxis(px, len, pi, jl, py, outer);
            return;
        }
        Action<long, long> body = (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                long o = r / jl, jj = r % jl;
                float* src = px + (o * len + pi[jj]) * inner;
                float* dst = py + r * inner;
                if (inner == 1) *dst = *src;
                else Buffer.MemoryCopy(src, dst, inner * sizeof(float), inner * sizeof(float));
            }
        };
        if (rows * inner < 2 * CheapGrain) body(0, rows);
        else For(rows, Math.Max(1, CheapGrain / inner), body, 1);
    }

    /// <summary>
    /// IndexSelect along the last axis: y[r, j] = x[r, index[j]] for <paramref name="rows"/> rows. A random index
    /// (a permutation of a layer's features) makes every load a cache miss of its own, so the loads are issued eight at
    /// a time by hardware gathers, two gathers in flight, and the flat output is split over cores at any row boundary.
    /// </summary>
    private static unsafe void GatherLastAxis(float* x, long len, int* index, long jl, float* y, long rows)
    {
        long total = rows * jl;
        Action<long, long> body = (e0, e1) =>
        {
            long r = e0 / jl, j = e0 - r * jl;
            for (long e = e0; e < e1;)
            {
                float* src = x + r * len;
                float* dst = y + e;
                int* ip = index + j;
                long run = Math.Min(jl - j, e1 - e), u = 0;
                if (Avx2.IsSupported)
                {
                    for (; u + 16 <= run; u += 16)
                    {
                        var g0 = Avx2.GatherVector256(src, Avx.LoadVector256(ip + u), 4);
                        var g1 = Avx2.GatherVector256(src, Avx.LoadVector256(ip + u + 8), 4);
                        Avx.Store(dst + u, g0);
                        Avx.Store(dst + u + 8, g1);
                    }
                }
                for (; u < run; u++) dst[u] = src[ip[u]];
                e += run;
                r++;
                j = 0;
            }
        };
        if (total < 2 * CheapGrain) body(0, total);
        else For(total, CheapGrain, body);
    }

    /// <inheritdoc />
    internal void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape) =>
        IndexAdd(src, srcShape, axis, index, y, yShape, false, "IndexAdd");

    /// <summary>
    /// <see cref="IndexAdd(DeviceBuffer{float}, int[], int, DeviceBuffer{int}, DeviceBuffer{float}, int[])"/>, with y
    /// first zeroed when <paramref name="clear"/> (by the same chunk that then adds into it, so one pass over y).
    /// </summary>
    internal unsafe void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape, bool clear,
        string op)
    {
        var (outer, jl, inner) = SplitAt(srcShape, axis, op);
        var (youter, len, yinner) = SplitAt(yShape, axis, op);
        if (youter != outer || yinner != inner)
            throw new ArgumentException($"{op}: shapes [{string.Join(", ", srcShape)}] and [{string.Join(", ", yShape)}] differ outside axis {axis}.");
        var sa = Data(src, outer * jl * inner, op);
        var ia = Data(index, jl, op);
        var ya = Data(y, outer * len * inner, op);
        long n = outer * jl * inner;
        if (n == 0)
        {
            if (clear) SimdLoops.Fill(Ptr(ya), outer * len * inner, 0f);
            return;
        }
        CheckIndices(ia, jl, len, op);
        float* ps = Ptr(sa), py = Ptr(ya);
        int* pi = Ptr(ia);
        Simd.Run(new IndexAddKernel(ps, pi, py, outer, jl, len, inner, clear));
    }

    private readonly unsafe struct IndexAddKernel(float* src, int* index, float* y, long outer, long jl, long len, long inner, bool clear) : IWidthAction
    {
        void IWidthAction.Run<TV, TD>() => IndexAddCore<TV, TD>(src, index, y, outer, jl, len, inner, clear);
    }

    /// <summary>y[o, index[j], c] += src[o, j, c] over [outer, jl, inner] (y is [outer, len, inner]), y zeroed first when <paramref name="clear"/>.</summary>
    private static unsafe void IndexAddCore<TV, TD>(float* ps, int* pi, float* py, long outer, long jl, long len, long inner, bool clear)
        where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>
    {
        long n = outer * jl * inner;
        // Repeated indices hit the same output row, so chunks own disjoint outer slices or disjoint column ranges.
        if (outer >= 2 * Workers || inner < 256 || n < 2 * CheapGrain)
        {
            Action<long, long> body = (o0, o1) =>
            {
                if (clear) SimdLoops.Fill(py + o0 * len * inner, (o1 - o0) * len * inner, 0f);
                for (long o = o0; o < o1; o++)
                {
                    float* so = ps + o * jl * inner;
                    float* yo = py + o * len * inner;
                    if (inner == 1)
                    {
                        for (long j = 0; j < jl; j++) yo[pi[j]] += so[j];
                    }
                    else
                    {
                        for (long j = 0; j < jl; j++)
                        {
                            float* yr = yo + pi[j] * inner;
                            SimdLoops<TV, TD>.Zip(new AddOp(), yr, so + j * inner, yr, inner);
                        }
                    }
                }
            };
            if (n < 2 * CheapGrain) body(0, outer);
            else For(outer, Math.Max(1, CheapGrain / (jl * inner)), body, 1);
        }
        else
        {
            For(inner, Math.Max(16, CheapGrain / (outer * jl)), (c0, c1) =>
            {
                for (long o = 0; o < outer; o++)
                {
                    float* so = ps + o * jl * inner + c0;
                    float* yo = py + o * len * inner + c0;
                    if (clear)
                        for (long t = 0; t < len; t++) SimdLoops.Fill(yo + t * inner, c1 - c0, 0f);
                    for (long j = 0; j < jl; j++)
                    {
                        float* yr = yo + pi[j] * inner;
                        SimdLoops<TV, TD>.Zip(new AddOp(), yr, so + j * inner, yr, c1 - c0);
                    }
                }
            });
        }
    }
}
