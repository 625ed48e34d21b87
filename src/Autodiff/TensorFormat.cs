using System.Globalization;
using System.Text;

namespace Engine.Autodiff;

public sealed partial class Tensor
{
    /// <summary>Entries above which <see cref="ToString"/> summarises (PyTorch's print threshold).</summary>
    public const int PrintThreshold = 1000;

    /// <summary>Entries shown at each end of every axis of a summarised tensor (PyTorch's edgeitems).</summary>
    public const int PrintEdgeItems = 3;

    private const int PrintLineWidth = 80;

    /// <summary>Copies a rank-2 tensor to a new host array [rows, columns].</summary>
    /// <exception cref="InvalidOperationException">The tensor's rank is not 2.</exception>
    public float[,] ToArray2D() => ToArray<float[,]>();

    /// <summary>Copies a rank-3 tensor to a new host array.</summary>
    /// <exception cref="InvalidOperationException">The tensor's rank is not 3.</exception>
    public float[,,] ToArray3D() => ToArray<float[,,]>();

    /// <summary>
    /// Copies the data to a new multi-dimensional host array of the tensor's rank, as <typeparamref name="T"/>:
    /// <c>t.ToArray&lt;float[,,,]&gt;()</c> for a rank-4 tensor (<c>float[]</c> for rank 1).
    /// </summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not a float array of the tensor's rank.</exception>
    public T ToArray<T>() where T : class
    {
        CheckAlive("ToArray");
        var type = typeof(T);
        if (!type.IsArray || type.GetElementType() != typeof(float) || type.GetArrayRank() != Math.Max(Rank, 1) || Rank == 0)
            throw new InvalidOperationException(
                $"ToArray<{type.Name}>: tensor {Describe()} of rank {Rank} copies to a float array of rank {Rank} (float{(Rank <= 1 ? "[]" : "[" + new string(',', Rank - 1) + "]")}).");
        var flat = ToArray();
        if (Rank == 1) return (T)(object)flat;
        var array = Array.CreateInstance(typeof(float), shape);
        System.Buffer.BlockCopy(flat, 0, array, 0, flat.Length * sizeof(float));
        return (T)(object)array;
    }

    /// <summary>
    /// The values in nested brackets, PyTorch style, followed by the shape, the device and how the tensor takes part in
    /// autodiff: <c>tensor([[ 1.0000, -2.5000], [...]], shape=[2, 2], device=cpu, requires_grad=true)</c>. Tensors of
    /// more than <see cref="PrintThreshold"/> entries show <see cref="PrintEdgeItems"/> entries at each end of every
    /// axis with "..." between; values print with 4 decimals, in scientific notation when their magnitudes span more
    /// than 1000 or leave [1e-4, 1e8], and as whole numbers ("3.") when all are integers.
    /// </summary>
    public override string ToString()
    {
        var suffix = new StringBuilder();
        suffix.Append(", shape=").Append(Autodiff.Shape.Format(shape));
        if (disposed) return $"tensor(<disposed>{suffix})";
        suffix.Append(", device=").Append(Device.Name);
        if (Name != null) suffix.Append(", name=").Append(Name);
        if (Node != null) suffix.Append(", grad_fn=<").Append(Node.Op).Append('>');
        else if (RequiresGrad) suffix.Append(", requires_grad=true");
        var data = Buffer.ToArray();
        const string prefix = "tensor(";
        if (data.Length == 0) return $"{prefix}[]{suffix})";
        bool summarise = data.Length > PrintThreshold;
        var shown = new List<float>();
        CollectShown(data, 0, 0, summarise, shown);
        var formatter = new ValueFormatter(shown);
        if (Rank == 0) return $"{prefix}{formatter.Format(data[0])}{suffix})";
        var body = FormatAxis(data, 0, 0, prefix.Length, summarise, formatter);
        return $"{prefix}{body}{suffix})";
    }

    /// <summary>Positions printed along an axis of <paramref name="extent"/> entries; -1 marks the "..." gap.</summary>
    private static IEnumerable<int> Shown(int extent, bool summarise)
    {
        if (!summarise || extent <= 2 * PrintEdgeItems)
        {
            for (int i = 0; i < extent; i++) yield return i;
            yield break;
        }
        for (int i = 0; i < PrintEdgeItems; i++) yield return i;
        yield return -1;
        for (int i = extent - PrintEdgeItems; i < extent; i++) yield return i;
    }

    private void CollectShown(float[] data, int axis, long offset, bool summarise, List<float> shown)
    {
        if (Rank == 0)
        {
            shown.Add(data[0]);
            return;
        }
        long stride = Autodiff.Shape.Size(shape.AsSpan(axis + 1));
        foreach (int i in Shown(shape[axis], summarise))
        {
            if (i < 0) continue;
            if (axis == Rank - 1) shown.Add(data[offset + i]);
            else CollectShown(data, axis + 1, offset + i * stride, summarise, shown);
        }
    }

    private string FormatAxis(float[] data, int axis, long offset, int indent, bool summarise, ValueFormatter formatter)
    {
        int extent = shape[axis];
        if (axis == Rank - 1)
        {
            var items = Shown(extent, summarise).Select(i => i < 0 ? " ..." : formatter.Format(data[offset + i]).PadLeft(formatter.Width)).ToList();
            int perLine = Math.Max(1, (PrintLineWidth - indent) / (formatter.Width + 2));
            var lines = items.Chunk(perLine).Select(chunk => string.Join(", ", chunk));
            return "[" + string.Join(",\n" + new string(' ', indent + 1), lines) + "]";
        }
        long stride = Autodiff.Shape.Size(shape.AsSpan(axis + 1));
        var slices = Shown(extent, summarise).Select(i => i < 0 ? "..." : FormatAxis(data, axis + 1, offset + i * stride, indent + 1, summarise, formatter));
        var separator = "," + new string('\n', Rank - axis - 1) + new string(' ', indent + 1);
        return "[" + string.Join(separator, slices) + "]";
    }

    /// <summary>PyTorch's choice of number format for a whole tensor: integers, fixed 4 decimals, or scientific.</summary>
    private sealed class ValueFormatter
    {
        private readonly bool integers, scientific;

        public ValueFormatter(List<float> data)
        {
            var finite = data.Where(float.IsFinite).ToArray();
            integers = finite.All(v => v == MathF.Round(v));
            var nonzero = finite.Where(v => v != 0).Select(MathF.Abs).ToArray();
            if (nonzero.Length > 0)
            {
                double max = nonzero.Max(), min = nonzero.Min();
                scientific = integers ? max > 1e8 : max / min > 1000 || max > 1e8 || min < 1e-4;
            }
            // As PyTorch, only finite values set the column width: "nan" and "inf" are not padded for.
            Width = finite.Length == 0 ? 1 : finite.Max(v => Format(v).Length);
        }

        /// <summary>Characters of the widest value.</summary>
        public int Width { get; }

        public string Format(float v)
        {
            if (float.IsNaN(v)) return "nan";
            if (float.IsInfinity(v)) return v > 0 ? "inf" : "-inf";
            if (scientific) return v.ToString("0.0000e+00", CultureInfo.InvariantCulture);
            if (integers) return v.ToString("0", CultureInfo.InvariantCulture) + ".";
            return v.ToString("F4", CultureInfo.InvariantCulture);
        }
    }
}
