using System.IO.Compression;

namespace Engine.Data;

/// <summary>The contents of an IDX file: its dimensions and its unsigned bytes, row-major.</summary>
/// <param name="Dimensions">Sizes of the dimensions (the first is the item count).</param>
/// <param name="Data">The values, Π dimensions of them.</param>
public sealed record IdxArray(int[] Dimensions, byte[] Data);

/// <summary>
/// Reader for the IDX format of MNIST and Fashion-MNIST: a big-endian header (two zero bytes, a type code, the number
/// of dimensions, then each dimension as a 32-bit integer) followed by the values. Only unsigned bytes (type 0x08) are
/// read, the type of every image and label file of both sets. Files ending in ".gz" are decompressed on the fly.
/// </summary>
public static class Idx
{
    /// <summary>Reads an IDX file of unsigned bytes (gzip-compressed when the name ends in .gz).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">The header is not an unsigned-byte IDX header, or the file is shorter than it says.</exception>
    public static IdxArray Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"idx: file not found: {path}", path);
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        return Read(stream, path);
    }

    /// <summary>Reads an IDX array of unsigned bytes from <paramref name="stream"/>; <paramref name="name"/> appears in errors.</summary>
    /// <exception cref="FormatException">The header is not an unsigned-byte IDX header, or the stream ends early.</exception>
    public static IdxArray Read(Stream stream, string name)
    {
        var magic = ReadExactly(stream, 4, name, "header");
        if (magic[0] != 0 || magic[1] != 0)
            throw new FormatException($"idx: {name} does not start with an IDX header (first bytes {magic[0]:X2} {magic[1]:X2}, expected 00 00).");
        if (magic[2] != 0x08)
            throw new FormatException($"idx: {name} holds values of type 0x{magic[2]:X2}; only unsigned bytes (0x08) are supported.");
        int rank = magic[3];
        if (rank < 1) throw new FormatException($"idx: {name} declares {rank} dimensions.");
        var dims = new int[rank];
        var raw = ReadExactly(stream, 4 * rank, name, "dimensions");
        long total = 1;
        for (int i = 0; i < rank; i++)
        {
            dims[i] = (raw[4 * i] << 24) | (raw[4 * i + 1] << 16) | (raw[4 * i + 2] << 8) | raw[4 * i + 3];
            if (dims[i] < 0) throw new FormatException($"idx: {name} dimension {i} is negative ({dims[i]}).");
            total *= dims[i];
        }
        if (total > Array.MaxLength) throw new FormatException($"idx: {name} declares {total} values, more than an array holds.");
        return new IdxArray(dims, ReadExactly(stream, (int)total, name, $"{total} values"));
    }

    private static byte[] ReadExactly(Stream s, int count, string name, string what)
    {
        var buf = new byte[count];
        int read = 0;
        while (read < count)
        {
            int n = s.Read(buf, read, count - read);
            if (n == 0) throw new FormatException($"idx: {name} ends after {read} of the {count} bytes of its {what}.");
            read += n;
        }
        return buf;
    }
}

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 60,000 training and 10,000 test images of 28x28 grey levels in
/// 10 classes, read from the original IDX files (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
/// <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>, each optionally .gz). Pixels are scaled to [0, 1].
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DefaultFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>How to get the files, for error messages.</summary>
    public const string HowToGet = "install them with `apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu; puts them in "
        + DefaultFolder + "), or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
        + "(data/fashion) into a folder and pass it with --data";

    /// <summary>
    /// The training and test sets from <paramref name="folder"/> (default <see cref="DefaultFolder"/>) as data sets of
    /// [784] samples (row-major 28x28) with labels 0..9.
    /// </summary>
    /// <exception cref="FileNotFoundException">A file is missing (the message says how to get them).</exception>
    /// <exception cref="FormatException">A file is malformed, or image and label counts disagree.</exception>
    public static (Dataset Train, Dataset Test) Load(string? folder = null)
    {
        folder ??= DefaultFolder;
        return (LoadSplit(folder, "train"), LoadSplit(folder, "t10k"));
    }

    /// <summary>One split ("train" or "t10k") from <paramref name="folder"/>.</summary>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="FormatException">A file is malformed, or the counts disagree.</exception>
    public static Dataset LoadSplit(string folder, string split)
    {
        var images = Idx.Read(Find(folder, $"{split}-images-idx3-ubyte"));
        var labels = Idx.Read(Find(folder, $"{split}-labels-idx1-ubyte"));
        if (images.Dimensions.Length != 3 || labels.Dimensions.Length != 1)
            throw new FormatException($"fashion-mnist: {split} images must be [N, rows, columns] and labels [N]; got [{string.Join(", ", images.Dimensions)}] and [{string.Join(", ", labels.Dimensions)}].");
        int n = images.Dimensions[0], pixels = images.Dimensions[1] * images.Dimensions[2];
        if (labels.Dimensions[0] != n)
            throw new FormatException($"fashion-mnist: {split} has {n} images but {labels.Dimensions[0]} labels.");
        var features = new float[images.Data.Length];
        for (int i = 0; i < features.Length; i++) features[i] = images.Data[i] / 255f;
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = labels.Data[i];
            if (y[i] > 9) throw new FormatException($"fashion-mnist: {split} label {i} is {y[i]}, expected 0..9.");
        }
        return new Dataset(features, [pixels], y);
    }

    private static string Find(string folder, string stem)
    {
        foreach (var name in new[] { stem, stem + ".gz" })
        {
            var p = Path.Combine(folder, name);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"fashion-mnist: {Path.Combine(folder, stem)}[.gz] not found; {HowToGet}.", Path.Combine(folder, stem));
    }
}
