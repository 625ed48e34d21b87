using System.IO.Compression;
using Engine.Data;

namespace Engine.Tests.EngineTests;

/// <summary>The IDX reader and the Fashion-MNIST loader on small files the tests write (raw and gzip-compressed).</summary>
public sealed class IdxTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "engine-idx-" + Guid.NewGuid().ToString("N"));

    public IdxTests() => Directory.CreateDirectory(dir);

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    /// <summary>An unsigned-byte IDX file: 00 00 08 rank, big-endian dimensions, the values.</summary>
    public static byte[] IdxBytes(int[] dims, byte[] values, byte type = 0x08)
    {
        var ms = new MemoryStream();
        ms.Write([0, 0, type, (byte)dims.Length]);
        foreach (int d in dims) ms.Write([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        ms.Write(values);
        return ms.ToArray();
    }

    /// <summary>Writes the four Fashion-MNIST files of a tiny set (images count x side x side) into <paramref name="folder"/>.</summary>
    internal static void WriteTinyFashionMnist(string folder, int train, int test, int side, bool gzip, int seed = 1)
    {
        Directory.CreateDirectory(folder);
        var rng = new Random(seed);
        foreach (var (split, n) in new[] { ("train", train), ("t10k", test) })
        {
            var pixels = new byte[n * side * side];
            rng.NextBytes(pixels);
            var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
            Write(Path.Combine(folder, $"{split}-images-idx3-ubyte"), IdxBytes([n, side, side], pixels), gzip);
            Write(Path.Combine(folder, $"{split}-labels-idx1-ubyte"), IdxBytes([n], labels), gzip);
        }
    }

    private static void Write(string path, byte[] bytes, bool gzip)
    {
        if (!gzip)
        {
            File.WriteAllBytes(path, bytes);
            return;
        }
        using var f = File.Create(path + ".gz");
        using var z = new GZipStream(f, CompressionLevel.Fastest);
        z.Write(bytes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsDimensionsAndValuesRawOrGzipped(bool gzip)
    {
        var values = Enumerable.Range(0, 2 * 3 * 5).Select(i => (byte)(i * 7)).ToArray();
        Write(Path.Combine(dir, "a.idx"), IdxBytes([2, 3, 5], values), gzip);
        var a = Idx.Read(Path.Combine(dir, gzip ? "a.idx.gz" : "a.idx"));
        Assert.Equal([2, 3, 5], a.Dimensions);
        Assert.Equal(values, a.Data);
    }

    [Fact]
    public void BigEndianDimensionsAboveOneByte()
    {
        var a = Idx.Read(new MemoryStream(IdxBytes([300, 1], new byte[300])), "big");
        Assert.Equal([300, 1], a.Dimensions);
    }

    [Fact]
    public void MalformedFilesAreClearErrors()
    {
        var e = Assert.Throws<FormatException>(() => Idx.Read(new MemoryStream([1, 2, 8, 1, 0, 0, 0, 1, 5]), "x"));
        Assert.Contains("IDX header", e.Message);
        e = Assert.Throws<FormatException>(() => Idx.Read(new MemoryStream(IdxBytes([2], [1, 2], type: 0x0D)), "floats"));
        Assert.Contains("0x0D", e.Message);
        e = Assert.Throws<FormatException>(() => Idx.Read(new MemoryStream(IdxBytes([4, 2], [1, 2, 3])), "short"));
        Assert.Contains("ends after 3 of the 8 bytes", e.Message);
        e = Assert.Throws<FormatException>(() => Idx.Read(new MemoryStream([0, 0, 8]), "stub"));
        Assert.Contains("header", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FashionMnistLoadsScaledPixelsAndLabels(bool gzip)
    {
        WriteTinyFashionMnist(dir, train: 12, test: 5, side: 28, gzip);
        var (train, test) = FashionMnist.Load(dir);
        Assert.Equal(12, train.Count);
        Assert.Equal(5, test.Count);
        Assert.Equal([784], train.SampleShape);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i % 10), train.Labels!);
        Assert.All(train.Features, v => Assert.InRange(v, 0f, 1f));
        var raw = Idx.Read(Path.Combine(dir, gzip ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte"));
        Assert.Equal(raw.Data[100] / 255f, train.Features[100]);
    }

    [Fact]
    public void MissingFilesSayHowToGetThem()
    {
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(Path.Combine(dir, "nowhere")));
        Assert.Contains("apt-get install -y dataset-fashion-mnist", e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
    }

    [Fact]
    public void MismatchedCountsAndBadLabelsAreClearErrors()
    {
        WriteTinyFashionMnist(dir, train: 4, test: 3, side: 2, gzip: false);
        File.WriteAllBytes(Path.Combine(dir, "t10k-labels-idx1-ubyte"), IdxBytes([2], [1, 2]));
        var e = Assert.Throws<FormatException>(() => FashionMnist.LoadSplit(dir, "t10k"));
        Assert.Contains("3 images but 2 labels", e.Message);
        File.WriteAllBytes(Path.Combine(dir, "t10k-labels-idx1-ubyte"), IdxBytes([3], [1, 12, 2]));
        e = Assert.Throws<FormatException>(() => FashionMnist.LoadSplit(dir, "t10k"));
        Assert.Contains("label 1 is 12", e.Message);
    }
}
