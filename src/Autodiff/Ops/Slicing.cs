using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// One entry of a tensor index (<see cref="Tensor.this[TensorIndex[]]"/>): an integer picks one position and drops the
/// axis (negative integers count from the end, as in PyTorch), a <see cref="System.Index"/> (<c>^1</c>) does the same
/// from the end, and a <see cref="System.Range"/> (<c>1..3</c>, <c>..</c>, <c>^2..</c>) keeps the axis.
/// </summary>
public readonly struct TensorIndex
{
    private readonly Index position;
    private readonly Range range;
    private readonly int integer;
    private readonly byte kind; // 0 integer, 1 Index, 2 Range

    private TensorIndex(int integer, Index position, Range range, byte kind)
    {
        this.integer = integer;
        this.position = position;
        this.range = range;
        this.kind = kind;
    }

    /// <summary>An integer position (negative: from the end).</summary>
    public static implicit operator TensorIndex(int i) => new(i, default, default, 0);

    /// <summary>A position, possibly from the end (<c>^1</c> is the last).</summary>
    public static implicit operator TensorIndex(Index i) => new(0, i, default, 1);

    /// <summary>A range of positions; the axis is kept.</summary>
    public static implicit operator TensorIndex(Range r) => new(0, default, r, 2);

    /// <summary>True for a range (the axis is kept), false for a single position (the axis is dropped).</summary>
    public bool IsRange => kind == 2;

    /// <summary>The position this entry picks on an axis of <paramref name="extent"/> (before the bounds check).</summary>
    internal int PositionIn(int extent) => kind switch
    {
        0 => integer < 0 ? integer + extent : integer,
        _ => position.GetOffset(extent),
    };

    /// <summary>The range (valid when <see cref="IsRange"/>).</summary>
    internal Range Range => range;

    /// <inheritdoc />
    public override string ToString() => kind switch { 0 => integer.ToString(System.Globalization.CultureInfo.InvariantCulture), 1 => position.ToString(), _ => range.ToString() };
}

public sealed partial class Tensor
{
    /// <summary>
    /// Indexing and slicing, one entry per leading axis (missing trailing axes are kept whole):
    /// <c>t[1]</c> is row 1 (the axis is dropped), <c>t[.., 2]</c> column 2, <c>t[1..3, ^1]</c> rows 1-2 of the last
    /// column, <c>t[-1]</c> the last row. The result is a new tensor, recorded on the tape (the gradient is scattered
    /// back into the selected positions). Ranges out of bounds throw, as C# arrays do.
    /// </summary>
    /// <exception cref="ArgumentException">More entries than axes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A position or range outside its axis.</exception>
    [System.Runtime.CompilerServices.IndexerName("At")] // "Item" is taken by Item(), the scalar's value
    public Tensor this[params TensorIndex[] indices]
    {
        get
        {
            ArgumentNullException.ThrowIfNull(indices);
            CheckAlive("index");
            if (indices.Length > Rank)
                throw new ArgumentException($"index: {indices.Length} indices [{string.Join(", ", indices)}] for tensor {Describe()} of rank {Rank}.");
            var r = this;
            int axis = 0;
            foreach (var ix in indices)
            {
                if (ix.IsRange)
                {
                    r = r.Slice(axis, ix.Range);
                    axis++;
                }
                else
                {
                    int extent = r.shape[axis];
                    int p = ix.PositionIn(extent);
                    if (p < 0 || p >= extent)
                        throw new ArgumentOutOfRangeException(nameof(indices),
                            $"index: position {ix} is out of range for axis {axis} of extent {extent} in {r.Describe()}.");
                    r = r.Select(axis, p);
                }
            }
            return ReferenceEquals(r, this) ? Ops.Take("index", this, 0, 0, Rank == 0 ? 1 : shape[0], 1) : r;
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Rows along one axis that are copied one contiguous run at a time; with more, the slice runs as one gather
    /// (IndexSelect) or scatter (IndexAdd) kernel with a temporary index.
    /// </summary>
    private const long CopyRunsLimit = 16;

    /// <summary>
    /// The <paramref name="length"/> entries of <paramref name="axis"/> starting at <paramref name="start"/> (PyTorch's
    /// narrow). Differentiable: the gradient is zero outside the slice.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The slice does not fit the axis.</exception>
    public static Tensor Narrow(this Tensor x, int axis, int start, int length)
    {
        const string op = "narrow";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        int extent = x.shape[ax];
        if (start < 0 || length < 0 || (long)start + length > extent)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"{op}: start {start} and length {length} do not fit axis {ax} of extent {extent} in {x.Describe()}.");
        return Take(op, x, ax, start, length, 1);
    }

    /// <summary>The entries of <paramref name="axis"/> in <paramref name="range"/> (<c>x.Slice(1, 2..^1)</c>); see <see cref="Narrow"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range does not fit the axis.</exception>
    public static Tensor Slice(this Tensor x, int axis, Range range)
    {
        const string op = "slice";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        int extent = x.shape[ax];
        int start = range.Start.GetOffset(extent), end = range.End.GetOffset(extent);
        if (start < 0 || end > extent || start > end)
            throw new ArgumentOutOfRangeException(nameof(range),
                $"{op}: range {range} is out of bounds for axis {ax} of extent {extent} in {x.Describe()}.");
        return Take(op, x, ax, start, end - start, 1);
    }

    /// <summary>
    /// Every <paramref name="step"/>-th entry of <paramref name="axis"/> from <paramref name="start"/> up to (not
    /// including) <paramref name="end"/>, like Python's <c>x[start:end:step]</c>; negative start and end count from the
    /// end of the axis. Differentiable.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound outside the axis, or a step below 1.</exception>
    public static Tensor Slice(this Tensor x, int axis, int start, int end, int step = 1)
    {
        const string op = "slice";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        int extent = x.shape[ax];
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"{op}: step must be at least 1, got {step} (on {x.Describe()}).");
        int s = start < 0 ? start + extent : start, e = end < 0 ? end + extent : end;
        if (s < 0 || e > extent || s > e)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"{op}: [{start}:{end}:{step}] is out of bounds for axis {ax} of extent {extent} in {x.Describe()}.");
        return Take(op, x, ax, s, (e - s + step - 1) / step, step);
    }

    /// <summary>Position <paramref name="index"/> of <paramref name="axis"/>, with that axis removed (negative: from the end).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The position is outside the axis.</exception>
    public static Tensor Select(this Tensor x, int axis, int index)
    {
        const string op = "select";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        int extent = x.shape[ax];
        int p = index < 0 ? index + extent : index;
        if (p < 0 || p >= extent)
            throw new ArgumentOutOfRangeException(nameof(index), $"{op}: index {index} is out of range for axis {ax} of extent {extent} in {x.Describe()}.");
        var outShape = x.shape.Where((_, i) => i != ax).ToArray();
        return Take(op, x, ax, p, 1, 1).Reshape(outShape);
    }

    /// <summary>
    /// Concatenates tensors along <paramref name="axis"/>; every other extent must agree. Differentiable: each input
    /// gets its slice of the gradient.
    /// </summary>
    /// <exception cref="ArgumentException">No tensors, different ranks, devices or extents.</exception>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int axis = 0)
    {
        const string op = "cat";
        var first = FirstOf(op, tensors);
        if (first.Rank == 0) throw new ArgumentException($"{op}: cannot concatenate scalars ({first.Describe()}); use Stack.", nameof(tensors));
        int ax = AxisIn(op, axis, first, first.Rank);
        var offsets = new int[tensors.Count];
        long total = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            CheckSameDevice(op, first, t);
            bool fits = t.Rank == first.Rank;
            for (int d = 0; fits && d < t.Rank; d++) fits = d == ax || t.shape[d] == first.shape[d];
            if (!fits)
                throw new ArgumentException(
                    $"{op}: tensor {i} {t.Describe()} does not match tensor 0 {first.Describe()} outside axis {ax} (shapes: {string.Join(", ", tensors.Select(u => Shape.Format(u.shape)))}).",
                    nameof(tensors));
            offsets[i] = (int)total;
            total += t.shape[ax];
        }
        if (total > int.MaxValue) throw new ArgumentException($"{op}: the result would have {total} entries along axis {ax}.", nameof(tensors));
        var outShape = (int[])first.shape.Clone();
        outShape[ax] = (int)total;
        var y = Tensor.Empty(outShape, first.Device);
        if (!CopiesRuns(outShape, ax, 1)) first.K.Fill(y.Buffer, 0f);
        for (int i = 0; i < tensors.Count; i++)
            Strided(first.K, tensors[i].Buffer, tensors[i].shape, y.Buffer, outShape, ax, offsets[i], 1, gather: false);
        var parts = tensors.ToArray();
        return y.Record(op, parts, g => parts.Select((t, i) => t.RequiresGrad ? Narrow(g, ax, offsets[i], t.shape[ax]) : null).ToArray());
    }

    /// <summary>Stacks tensors of one shape along a new axis <paramref name="axis"/> (0 ≤ axis ≤ rank; negative from the end).</summary>
    /// <exception cref="ArgumentException">No tensors, or shapes or devices that differ.</exception>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int axis = 0)
    {
        const string op = "stack";
        var first = FirstOf(op, tensors);
        for (int i = 1; i < tensors.Count; i++)
        {
            CheckSameDevice(op, first, tensors[i]);
            if (!Shape.Equal(first.shape, tensors[i].shape))
                throw new ArgumentException($"{op}: tensor {i} {tensors[i].Describe()} differs in shape from tensor 0 {first.Describe()}.", nameof(tensors));
        }
        int ax = AxisIn(op, axis, first, first.Rank + 1);
        return Cat(tensors.Select(t => t.Unsqueeze(ax)).ToArray(), ax);
    }

    /// <summary>The first of a non-empty list of tensors (alive), or an exception naming <paramref name="op"/>.</summary>
    private static Tensor FirstOf(string op, IReadOnlyList<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException($"{op}: no tensors given.", nameof(tensors));
        tensors[0].CheckAlive(op);
        return tensors[0];
    }

    /// <summary>Splits <paramref name="axis"/> into pieces of <paramref name="size"/> entries (the last may be smaller).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is below 1.</exception>
    public static Tensor[] Split(this Tensor x, int size, int axis = 0)
    {
        const string op = "split";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"{op}: piece size must be at least 1, got {size} (on {x.Describe()}).");
        int extent = x.shape[ax];
        var pieces = new List<Tensor>();
        for (int s = 0; s < extent; s += size) pieces.Add(Take(op, x, ax, s, Math.Min(size, extent - s), 1));
        return pieces.ToArray();
    }

    /// <summary>Splits <paramref name="axis"/> into pieces of the given <paramref name="sizes"/>, which must add up to its extent.</summary>
    /// <exception cref="ArgumentException">The sizes are negative or do not add up to the axis' extent.</exception>
    public static Tensor[] Split(this Tensor x, int[] sizes, int axis = 0)
    {
        const string op = "split";
        ArgumentNullException.ThrowIfNull(sizes);
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        if (sizes.Any(s => s < 0) || sizes.Sum(s => (long)s) != x.shape[ax])
            throw new ArgumentException($"{op}: sizes [{string.Join(", ", sizes)}] must be non-negative and add up to {x.shape[ax]}, the extent of axis {ax} in {x.Describe()}.", nameof(sizes));
        var pieces = new Tensor[sizes.Length];
        int start = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            pieces[i] = Take(op, x, ax, start, sizes[i], 1);
            start += sizes[i];
        }
        return pieces;
    }

    /// <summary>
    /// Splits <paramref name="axis"/> into <paramref name="chunks"/> pieces of ⌈extent / chunks⌉ entries, as PyTorch's
    /// chunk (the last piece may be smaller, and there may be fewer pieces when the extent is small).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than one chunk.</exception>
    public static Tensor[] Chunk(this Tensor x, int chunks, int axis = 0)
    {
        const string op = "chunk";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        if (chunks < 1) throw new ArgumentOutOfRangeException(nameof(chunks), $"{op}: chunks must be at least 1, got {chunks} (on {x.Describe()}).");
        int extent = x.shape[ax];
        return extent == 0 ? [Take(op, x, ax, 0, 0, 1)] : Split(x, (extent + chunks - 1) / chunks, ax);
    }

    /// <summary>A view with a new axis of extent 1 at <paramref name="axis"/> (0 ≤ axis ≤ rank; negative from the end).</summary>
    public static Tensor Unsqueeze(this Tensor x, int axis)
    {
        x.CheckAlive("unsqueeze");
        int ax = AxisIn("unsqueeze", axis, x, x.Rank + 1);
        var s = new List<int>(x.shape);
        s.Insert(ax, 1);
        return x.Reshape(s.ToArray());
    }

    /// <summary>A view without the axes of extent 1 (all of them), as PyTorch's squeeze().</summary>
    public static Tensor Squeeze(this Tensor x)
    {
        x.CheckAlive("squeeze");
        return x.Reshape(x.shape.Where(d => d != 1).ToArray());
    }

    /// <summary>A view without <paramref name="axis"/>, which must have extent 1.</summary>
    /// <exception cref="ArgumentException">The axis has another extent (PyTorch silently keeps it; here it is an error).</exception>
    public static Tensor Squeeze(this Tensor x, int axis)
    {
        const string op = "squeeze";
        x.CheckAlive(op);
        int ax = AxisIn(op, axis, x, x.Rank);
        if (x.shape[ax] != 1)
            throw new ArgumentException($"{op}: axis {ax} of {x.Describe()} has extent {x.shape[ax]}, not 1.", nameof(axis));
        return x.Reshape(x.shape.Where((_, i) => i != ax).ToArray());
    }

    /// <summary>Normalises an axis of <paramref name="x"/> (one of <paramref name="rank"/> positions), or throws naming the op and the tensor.</summary>
    private static int AxisIn(string op, int axis, Tensor x, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw new ArgumentOutOfRangeException(nameof(axis),
                $"{op}: axis {axis} is out of range for {x.Describe()} ({(rank == x.Rank ? $"rank {rank}" : $"{rank} places for a new axis")}).");
        return a;
    }

    /// <summary>
    /// Entries start, start + step, ... (<paramref name="count"/> of them) along axis <paramref name="ax"/> of x, as a
    /// new tensor; its backward rule scatters into zeros (<see cref="Put"/>), whose rule is this gather again.
    /// </summary>
    internal static Tensor Take(string op, Tensor x, int ax, int start, int count, int step)
    {
        if (x.Rank == 0)
        {
            var copy = Tensor.Empty(x.shape, x.Device);
            x.K.Copy(x.Buffer, 0, copy.Buffer, 0, 1);
            return copy.Record(op, [x], g => [g]);
        }
        var outShape = (int[])x.shape.Clone();
        outShape[ax] = count;
        var y = Tensor.Empty(outShape, x.Device);
        Strided(x.K, x.Buffer, x.shape, y.Buffer, outShape, ax, start, step, gather: true);
        int extent = x.shape[ax];
        return y.Record(op, [x], g => [Put(op, g, ax, start, step, extent)]);
    }

    /// <summary>The adjoint of <see cref="Take"/>: zeros with <paramref name="extent"/> entries along the axis, g at start + j·step.</summary>
    private static Tensor Put(string op, Tensor g, int ax, int start, int step, int extent)
    {
        var outShape = (int[])g.shape.Clone();
        outShape[ax] = extent;
        var y = Tensor.Empty(outShape, g.Device);
        g.K.Fill(y.Buffer, 0f);
        Strided(g.K, g.Buffer, g.shape, y.Buffer, outShape, ax, start, step, gather: false);
        int count = g.shape[ax];
        return y.Record(op + "_backward", [g], gg => [Take(op, gg, ax, start, count, step)]);
    }

    /// <summary>True when a step-1 move along <paramref name="ax"/> of <paramref name="shape"/> runs as a few contiguous copies.</summary>
    private static bool CopiesRuns(int[] shape, int ax, int step) => step == 1 && Shape.Size(shape.AsSpan(0, ax)) <= CopyRunsLimit;

    /// <summary>
    /// Gather (dst = src at start + j·step along <paramref name="ax"/>) or scatter-add (dst at start + j·step += src;
    /// dst must be zero there or the copies overwrite). Contiguous slices with few outer rows are plain copies, others one
    /// IndexSelect/IndexAdd kernel with a temporary index buffer.
    /// </summary>
    private static void Strided(IKernelSet k, DeviceBuffer<float> src, int[] srcShape, DeviceBuffer<float> dst, int[] dstShape,
        int ax, int start, int step, bool gather)
    {
        var whole = gather ? srcShape : dstShape;
        int count = gather ? dstShape[ax] : srcShape[ax];
        int extent = whole[ax];
        long outer = Shape.Size(whole.AsSpan(0, ax)), inner = Shape.Size(whole.AsSpan(ax + 1));
        if (count == 0 || outer == 0 || inner == 0) return;
        if (CopiesRuns(whole, ax, step))
        {
            long run = count * inner;
            for (long o = 0; o < outer; o++)
            {
                long sliced = o * run, full = (o * extent + start) * inner;
                if (gather) k.Copy(src, full, dst, sliced, run);
                else k.Copy(src, sliced, dst, full, run);
            }
            return;
        }
        var index = new int[count];
        for (int j = 0; j < count; j++) index[j] = start + j * step;
        using var temp = new TemporaryIndex(k, index);
        if (gather) k.IndexSelect(src, srcShape, ax, temp.Buffer, count, dst);
        else k.IndexAdd(src, srcShape, ax, temp.Buffer, dst, dstShape);
    }

    /// <summary>
    /// An index buffer for one kernel call, freed after the device has finished with it (a GPU runs kernels
    /// asynchronously, so the free waits for the queue).
    /// </summary>
    private sealed class TemporaryIndex : IDisposable
    {
        private readonly IKernelSet kernels;

        public TemporaryIndex(IKernelSet kernels, int[] values)
        {
            this.kernels = kernels;
            Buffer = kernels.AllocateInt(values.Length);
            Buffer.CopyFromHost(values);
        }

        public DeviceBuffer<int> Buffer { get; }

        public void Dispose()
        {
            kernels.Synchronize();
            Buffer.Dispose();
        }
    }
}
