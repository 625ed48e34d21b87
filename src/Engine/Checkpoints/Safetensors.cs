using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Engine.Checkpoints;

/// <summary>Element types of the safetensors format (the names are the format's dtype strings).</summary>
public enum SafetensorsDType
{
    /// <summary>Boolean, 1 byte.</summary>
    BOOL,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>8-bit float, e5m2.</summary>
    F8_E5M2,
    /// <summary>8-bit float, e4m3.</summary>
    F8_E4M3,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE half.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE single.</summary>
    F32,
    /// <summary>IEEE double.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>One tensor to write: name, element type, shape and a producer of its little-endian bytes.</summary>
/// <param name="Name">Tensor name (unique in the file, not "__metadata__").</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions (non-negative; empty for a scalar).</param>
/// <param name="GetBytes">Called once, while the file is written, for exactly elements × size bytes.</param>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, Func<byte[]> GetBytes)
{
    /// <summary>An F32 entry whose values come from <paramref name="values"/> when written.</summary>
    public static SafetensorsEntry Singles(string name, long[] shape, Func<float[]> values) =>
        new(name, SafetensorsDType.F32, shape, () => Safetensors.ToBytes<float>(values()));

    /// <summary>An I32 entry whose values come from <paramref name="values"/> when written.</summary>
    public static SafetensorsEntry Int32s(string name, long[] shape, Func<int[]> values) =>
        new(name, SafetensorsDType.I32, shape, () => Safetensors.ToBytes<int>(values()));
}

/// <summary>A tensor read from a validated safetensors file.</summary>
public sealed class SafetensorsTensor
{
    internal SafetensorsTensor(string name, SafetensorsDType dtype, long[] shape, long elements, ReadOnlyMemory<byte> data)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        ElementCount = elements;
        Data = data;
    }

    /// <summary>Name in the file.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public SafetensorsDType DType { get; }
    /// <summary>Dimensions.</summary>
    public long[] Shape { get; }
    /// <summary>Product of the dimensions.</summary>
    public long ElementCount { get; }
    /// <summary>The raw little-endian bytes.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The values of an F32 tensor.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not F32.</exception>
    public float[] ToSingles() => Decode<float>(SafetensorsDType.F32);

    /// <summary>The values of an I32 tensor.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not I32.</exception>
    public int[] ToInt32s() => Decode<int>(SafetensorsDType.I32);

    private T[] Decode<T>(SafetensorsDType expected) where T : unmanaged
    {
        if (DType != expected)
            throw new InvalidOperationException($"safetensors: tensor '{Name}' is {DType}, not {expected}.");
        var r = MemoryMarshal.Cast<byte, T>(Data.Span).ToArray();
        if (!BitConverter.IsLittleEndian) Safetensors.SwapBytes(MemoryMarshal.AsBytes(r.AsSpan()), Marshal.SizeOf<T>());
        return r;
    }
}

/// <summary>A parsed, fully validated safetensors file.</summary>
public sealed class SafetensorsFile
{
    private readonly Dictionary<string, SafetensorsTensor> byName;

    internal SafetensorsFile(IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
        byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The tensors in file (offset) order.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>The "__metadata__" string map (empty if absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    public SafetensorsTensor? Find(string name) => byName.TryGetValue(name, out var t) ? t : null;
}

/// <summary>
/// Reader and writer of the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>, padded with
/// spaces to a multiple of 8), then the raw little-endian data, offsets relative to its start. The reader checks
/// everything the reference implementation checks (header length bounded and inside the file, JSON object, offsets
/// contiguous from 0 and covering the data exactly, sizes = dtype × shape) plus strict UTF-8, duplicate names,
/// unknown fields and overflow in the element counts, and throws <see cref="InvalidDataException"/> on any violation.
/// </summary>
public static class Safetensors
{
    /// <summary>Largest header accepted (as the reference implementation: 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The metadata key.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8_E5M2 or SafetensorsDType.F8_E4M3 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), $"safetensors: unknown dtype {dtype}."),
    };

    // ---------- writing ----------

    /// <summary>Writes <paramref name="entries"/> (in this order) and <paramref name="metadata"/> to <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentException">A name is empty, reserved or repeated, a dimension negative, or a producer
    /// returned the wrong number of bytes (the stream then holds a partial file).</exception>
    public static void Write(Stream stream, IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = BuildHeader(entries, metadata, out var sizes);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        stream.Write(header);
        for (int i = 0; i < entries.Count; i++)
        {
            // Produced one at a time, so a large model never needs two host copies of all its data.
            var bytes = entries[i].GetBytes();
            if (bytes.LongLength != sizes[i])
                throw new ArgumentException($"safetensors: tensor '{entries[i].Name}' produced {bytes.LongLength} bytes, its dtype and shape need {sizes[i]}.");
            stream.Write(bytes);
        }
    }

    /// <summary>
    /// Writes a file atomically: to a temporary file beside <paramref name="path"/>, flushed to disk, then renamed over
    /// it. If anything fails the target is untouched and the temporary file removed.
    /// </summary>
    public static void WriteFile(string path, IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicWrite(path, s => Write(s, entries, metadata));

    /// <summary>
    /// Runs <paramref name="write"/> on a temporary file beside <paramref name="path"/>, flushes it to disk, renames it
    /// over the target and flushes the folder. Stale temporary files of earlier crashed saves of the same target are
    /// removed first (<see cref="CheckpointFiles.RemoveStaleTemporaries"/>). Path problems are reported with the
    /// user's path before anything is written.
    /// </summary>
    /// <exception cref="IOException">The path cannot be written (empty, a directory, a folder that is missing or a
    /// file, no permission); the message quotes <paramref name="path"/>.</exception>
    internal static void AtomicWrite(string path, Action<Stream> write)
    {
        var full = CheckpointFiles.CheckPath(path, "save to");
        var dir = Path.GetDirectoryName(full) ?? ".";
        CheckpointFiles.RemoveStaleTemporaries(full);
        var tmp = CheckpointFiles.NewTemporary(full);
        try
        {
            FileStream fs;
            try
            {
                fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"checkpoint: cannot save to '{CheckpointFiles.Clip(path)}': cannot create a file in '{dir}' ({e.GetType().Name}).", e);
            }
            using (fs)
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            try
            {
                File.Move(tmp, full, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"checkpoint: cannot save to '{CheckpointFiles.Clip(path)}': replacing it failed ({e.Message}).", e);
            }
            CheckpointFiles.FlushDirectory(dir);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        finally
        {
            CheckpointFiles.Release(tmp);
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata, out long[] sizes)
    {
        sizes = new long[entries.Count];
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            for (int i = 0; i < entries.Count; i++)
            {
                var e = entries[i];
                if (string.IsNullOrEmpty(e.Name) || e.Name == MetadataKey)
                    throw new ArgumentException($"safetensors: '{e.Name}' is not a valid tensor name.");
                if (!names.Add(e.Name)) throw new ArgumentException($"safetensors: tensor name '{e.Name}' appears twice.");
                long bytes = checked(ElementCount(e.Shape, e.Name) * ElementSize(e.DType));
                sizes[i] = bytes;
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.ToString());
                w.WriteStartArray("shape");
                foreach (var d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data starts 8-byte aligned (as the reference writer does).
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private static long ElementCount(long[] shape, string name)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"safetensors: tensor '{name}' has a negative dimension in {CheckpointFiles.FormatShape(shape)}.");
            n = checked(n * d);
        }
        return n;
    }

    // ---------- reading ----------

    /// <summary>
    /// Reads and validates a file (see <see cref="Read(ReadOnlyMemory{byte})"/>). Only a regular file is opened
    /// (devices, named pipes and sockets are refused first), and it is read with a bound: the 8-byte length, then the
    /// header, whose offsets must account for the file's size exactly before its data is read. Stale temporary files
    /// of crashed saves of the same target are removed first.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file; the message says why.</exception>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="IOException">The path is not a regular file or cannot be read; the message quotes it.</exception>
    public static SafetensorsFile ReadFile(string path)
    {
        var full = CheckpointFiles.CheckPath(path, "load");
        CheckpointFiles.RemoveStaleTemporaries(full);
        long length = CheckpointFiles.CheckRegularFile(full, path);
        if (length > Array.MaxLength)
            throw new InvalidDataException($"safetensors: '{path}' is {length} bytes; files over {Array.MaxLength} bytes are not supported.");
        try
        {
            return Read(ReadBounded(full, path, length));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{e.Message} (file '{CheckpointFiles.Clip(path)}')", e);
        }
    }

    /// <summary>
    /// The bytes of a regular file of <paramref name="length"/> bytes (its size when checked): the header first, whose
    /// layout must match that size, then exactly the rest; a file that grew or shrank meanwhile is refused.
    /// </summary>
    private static byte[] ReadBounded(string full, string path, long length)
    {
        // Too short to be a checkpoint: Read says so from the length alone. Not opening it also keeps a device or a
        // pipe (size 0) shut where the file type could not be checked.
        if (length < 8) return new byte[length];
        FileStream fs;
        try
        {
            fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException and not FileNotFoundException)
        {
            throw new IOException($"checkpoint: cannot load '{CheckpointFiles.Clip(path)}': {e.Message}", e);
        }
        using (fs)
        {
            var head = new byte[8];
            fs.ReadExactly(head);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(head);
            CheckHeaderLength(n, length);
            var file = new byte[length];
            head.CopyTo(file, 0);
            fs.ReadExactly(file, 8, (int)n);
            // The header's offsets must cover the data exactly before the data is read.
            var (infos, _) = ParseHeader(file.AsSpan(8, (int)n));
            CheckLayout(infos, length - 8 - (long)n);
            try
            {
                fs.ReadExactly(file, 8 + (int)n, (int)(length - 8 - (long)n));
            }
            catch (EndOfStreamException e)
            {
                throw new InvalidDataException($"safetensors: the file shrank from {length} bytes while it was read.", e);
            }
            if (fs.ReadByte() != -1)
                throw new InvalidDataException($"safetensors: the file grew past {length} bytes while it was read.");
            return file;
        }
    }

    private static void CheckHeaderLength(ulong n, long fileLength)
    {
        if (n > MaxHeaderBytes)
            throw new InvalidDataException($"safetensors: header length {n} exceeds the limit of {MaxHeaderBytes} bytes.");
        if (n > (ulong)(fileLength - 8))
            throw new InvalidDataException($"safetensors: header length {n} runs past the end of the file ({fileLength} bytes, {fileLength - 8} after the length field).");
    }

    /// <summary>Parses and validates a whole file held in memory; the returned tensors view <paramref name="file"/>.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a valid safetensors file; the message says why.</exception>
    public static SafetensorsFile Read(ReadOnlyMemory<byte> file)
    {
        var span = file.Span;
        if (span.Length < 8)
            throw new InvalidDataException($"safetensors: the file is {span.Length} bytes, shorter than the 8-byte header length.");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(span);
        CheckHeaderLength(n, span.Length);
        int headerLength = (int)n;
        var (infos, metadata) = ParseHeader(span.Slice(8, headerLength));
        var ordered = CheckLayout(infos, span.Length - 8L - headerLength);
        int dataStart = 8 + headerLength;
        var tensors = ordered.Select(t => new SafetensorsTensor(t.Name, t.DType, t.Shape, t.Elements,
            file.Slice(dataStart + (int)t.Begin, (int)(t.End - t.Begin)))).ToList();
        return new SafetensorsFile(tensors, metadata);
    }

    private static (List<TensorInfo> Infos, Dictionary<string, string> Metadata) ParseHeader(ReadOnlySpan<byte> headerBytes)
    {
        if (headerBytes.Length == 0 || headerBytes[0] != (byte)'{')
            throw new InvalidDataException("safetensors: the header does not start with '{'.");
        string json;
        try
        {
            json = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(headerBytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"safetensors: the header is not valid UTF-8 ({e.Message}).", e);
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"safetensors: the header is not valid JSON ({e.Message}).", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException("safetensors: the header is not a JSON object.");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var infos = new List<TensorInfo>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new InvalidDataException($"safetensors: the header names '{Clip(prop.Name)}' twice.");
                if (prop.Name == MetadataKey)
                {
                    ParseMetadata(prop.Value, metadata);
                    continue;
                }
                infos.Add(ParseTensor(prop.Name, prop.Value));
            }
            return (infos, metadata);
        }
    }

    /// <summary>Checks the offsets tile [0, <paramref name="dataLength"/>) exactly; returns the tensors in offset order.</summary>
    private static List<TensorInfo> CheckLayout(List<TensorInfo> infos, long dataLength)
    {
        // Sorted by begin, each tensor must start where the previous ends.
        var ordered = infos.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long expected = 0;
        foreach (var t in ordered)
        {
            if (t.Begin != expected)
                throw new InvalidDataException(t.Begin > expected
                    ? $"safetensors: tensor '{Clip(t.Name)}' starts at data offset {t.Begin}, leaving a gap after offset {expected}."
                    : $"safetensors: tensor '{Clip(t.Name)}' starts at data offset {t.Begin}, overlapping data that ends at offset {expected}.");
            expected = t.End;
        }
        if (expected != dataLength)
            throw new InvalidDataException(expected > dataLength
                ? $"safetensors: the tensors need {expected} data bytes, the file holds {dataLength} (truncated?)."
                : $"safetensors: the tensors cover {expected} data bytes, the file holds {dataLength}: {dataLength - expected} bytes are unaccounted for.");
        return ordered;
    }

    private readonly record struct TensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Elements, long Begin, long End);

    private static string Clip(string text) => CheckpointFiles.Clip(text);

    private static void ParseMetadata(JsonElement e, Dictionary<string, string> metadata)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"safetensors: '{MetadataKey}' must be an object of strings, got {e.ValueKind}.");
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"safetensors: metadata '{Clip(p.Name)}' must be a string, got {p.Value.ValueKind}.");
            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
                throw new InvalidDataException($"safetensors: metadata names '{Clip(p.Name)}' twice.");
        }
    }

    private static TensorInfo ParseTensor(string fullName, JsonElement e)
    {
        string name = Clip(fullName); // for messages
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"safetensors: tensor '{name}' must be an object, got {e.ValueKind}.");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype" when dtypeEl == null: dtypeEl = p.Value; break;
                case "shape" when shapeEl == null: shapeEl = p.Value; break;
                case "data_offsets" when offsetsEl == null: offsetsEl = p.Value; break;
                case "dtype" or "shape" or "data_offsets":
                    throw new InvalidDataException($"safetensors: tensor '{name}' has '{p.Name}' twice.");
                default:
                    throw new InvalidDataException($"safetensors: tensor '{name}' has an unknown field '{Clip(p.Name)}'.");
            }
        }
        if (dtypeEl is not { ValueKind: JsonValueKind.String } d)
            throw new InvalidDataException($"safetensors: tensor '{name}' has no string 'dtype'.");
        var dtypeName = d.GetString()!;
        // Only the exact names: Enum.TryParse alone would also take "11" or "f32".
        if (!Enum.GetNames<SafetensorsDType>().Contains(dtypeName, StringComparer.Ordinal))
            throw new InvalidDataException($"safetensors: tensor '{name}' has unknown dtype '{Clip(dtypeName)}'.");
        var dtype = Enum.Parse<SafetensorsDType>(dtypeName);
        if (shapeEl is not { ValueKind: JsonValueKind.Array } s)
            throw new InvalidDataException($"safetensors: tensor '{name}' has no 'shape' array.");
        var shape = new long[s.GetArrayLength()];
        int k = 0;
        foreach (var v in s.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var dim) || dim < 0)
                throw new InvalidDataException($"safetensors: tensor '{name}' has an invalid dimension {Clip(v.GetRawText())} (must be a non-negative integer).");
            shape[k++] = dim;
        }
        long elements = 1;
        long bytes;
        try
        {
            foreach (var dim in shape) elements = checked(elements * dim);
            bytes = checked(elements * ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"safetensors: tensor '{name}' shape {CheckpointFiles.FormatShape(shape)} of {dtype} overflows the element count.");
        }
        if (offsetsEl is not { ValueKind: JsonValueKind.Array } o || o.GetArrayLength() != 2)
            throw new InvalidDataException($"safetensors: tensor '{name}' needs 'data_offsets' [begin, end].");
        var off = o.EnumerateArray().Select(v =>
            v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var x) && x >= 0 ? x
            : throw new InvalidDataException($"safetensors: tensor '{name}' has an invalid data offset {Clip(v.GetRawText())}.")).ToArray();
        if (off[1] < off[0])
            throw new InvalidDataException($"safetensors: tensor '{name}' has data_offsets [{off[0]}, {off[1]}] with end before begin.");
        if (off[1] - off[0] != bytes)
            throw new InvalidDataException($"safetensors: tensor '{name}' spans {off[1] - off[0]} bytes, its dtype {dtype} and shape {CheckpointFiles.FormatShape(shape)} need {bytes}.");
        return new TensorInfo(fullName, dtype, shape, elements, off[0], off[1]);
    }

    // ---------- helpers ----------

    internal static byte[] ToBytes<T>(T[] values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        if (!BitConverter.IsLittleEndian) SwapBytes(bytes, Marshal.SizeOf<T>());
        return bytes;
    }

    internal static void SwapBytes(Span<byte> data, int size)
    {
        for (int i = 0; i + size <= data.Length; i += size) data.Slice(i, size).Reverse();
    }
}
