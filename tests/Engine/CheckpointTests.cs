using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Autodiff;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

public class CheckpointTests
{
    private static readonly Device Cpu = Device.Cpu;

    private static Sequential Mlp(ulong seed) => new(
        new Linear(6, 8, seed: seed, device: Cpu), new ReLU(), new Linear(8, 3, seed: seed + 7, device: Cpu));

    private static Mixer RpMixer(int seed) => new(4, 2, 3, 1, 5, 6, 3, randomPermutations: true, seed: seed, device: Cpu);

    private static void TrainSteps(Module m, Optimizer opt, int inputs, int steps, ulong seed)
    {
        for (int i = 0; i < steps; i++)
        {
            opt.ZeroGrad();
            using var x = Tensor.Normal([5, inputs], seed + (ulong)i, device: Cpu);
            var loss = m.Forward(x).Square().Mean();
            loss.Backward();
            opt.Step();
        }
    }

    /// <summary>Every parameter's bits, to prove a failed load changed nothing.</summary>
    private static List<int[]> Bits(Module m) =>
        m.Parameters().Select(p => p.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray()).ToList();

    private static void AssertSameBits(List<int[]> expected, List<int[]> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i], actual[i]);
    }

    private static byte[] Save(Module m, Optimizer? opt = null)
    {
        using var ms = new MemoryStream();
        Checkpoint.Write(m, ms, opt);
        return ms.ToArray();
    }

    /// <summary>The module's state dictionary alone (no generator state), so its last tensor is the module's last.</summary>
    private static byte[] SaveWeights(Module m)
    {
        using var ms = new MemoryStream();
        Checkpoint.WriteStateDict(m.StateDict(), ms);
        return ms.ToArray();
    }

    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-ckpt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void RoundTripIsBitwiseIncludingAdamState()
    {
        var dir = TempDir();
        try
        {
            using var a = Mlp(1);
            using var optA = new Adam(a.Parameters(), 1e-2f);
            TrainSteps(a, optA, 6, 3, 100);
            var path = Path.Combine(dir, "mlp.safetensors");
            Checkpoint.Save(a, path, optA, new Dictionary<string, string> { ["note"] = "hi" });

            using var b = Mlp(50);
            using var optB = new Adam(b.Parameters(), 5e-1f);
            var meta = Checkpoint.Load(b, path, optB);
            Assert.Equal("hi", meta["note"]);
            AssertSameBits(Bits(a), Bits(b));
            Assert.Equal(optA.StepCount, optB.StepCount);
            Assert.Equal(optA.LearningRate, optB.LearningRate);

            // Equal moments and step counts make the next update identical, bit for bit.
            TrainSteps(a, optA, 6, 1, 999);
            TrainSteps(b, optB, 6, 1, 999);
            AssertSameBits(Bits(a), Bits(b));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void SgdMomentumRoundTripsAndContinuesIdentically()
    {
        using var a = Mlp(2);
        using var optA = new Sgd(a.Parameters(), 0.05f, momentum: 0.9f);
        TrainSteps(a, optA, 6, 2, 7);
        var bytes = Save(a, optA);
        using var b = Mlp(3);
        using var optB = new Sgd(b.Parameters(), 0.05f, momentum: 0.9f);
        Checkpoint.Read(b, bytes, optB);
        TrainSteps(a, optA, 6, 2, 70);
        TrainSteps(b, optB, 6, 2, 70);
        AssertSameBits(Bits(a), Bits(b));
    }

    [Fact]
    public void RandomPermutationsAreSavedAsI32AndRestored()
    {
        using var a = RpMixer(1);
        using var b = RpMixer(2);
        var pa = a.NamedBuffers().Select(x => x.Value.Read()).ToList();
        Assert.NotEqual(pa, b.NamedBuffers().Select(x => x.Value.Read()).ToList());
        var bytes = Save(a);
        var file = Safetensors.Read(bytes);
        var buf = file.Find("blocks.0.token1.input_permutation");
        Assert.NotNull(buf);
        Assert.Equal(SafetensorsDType.I32, buf.DType);
        Checkpoint.Read(b, bytes);
        Assert.Equal(pa, b.NamedBuffers().Select(x => x.Value.Read()).ToList());
        using var x = Tensor.Normal([3, 16], 5, device: Cpu);
        Assert.Equal(a.Forward(x).ToArray(), b.Forward(x).ToArray());
    }

    [Fact]
    public void IndependentReaderSeesTheSameTensors()
    {
        using var m = Mlp(4);
        var bytes = Save(m);
        // A minimal reader written from the format description, not from our reader.
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, (8 + n) % 8);
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n));
        int dataStart = 8 + (int)n;
        var seen = new List<string>();
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__") continue;
            if (prop.Name.StartsWith(Checkpoint.RandomPrefix))
            {
                // The global generator's state: two I64 scalars.
                Assert.Equal("I64", prop.Value.GetProperty("dtype").GetString());
                Assert.Equal(0, prop.Value.GetProperty("shape").GetArrayLength());
                continue;
            }
            seen.Add(prop.Name);
            Assert.Equal("F32", prop.Value.GetProperty("dtype").GetString());
            var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var off = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var values = new float[(off[1] - off[0]) / 4];
            for (int i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart + off[0] + 4 * i));
            var p = m.NamedParameters().Single(q => q.Name == prop.Name).Value;
            Assert.Equal(p.Shape, shape);
            Assert.Equal(p.ToArray(), values);
        }
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], seen);
    }

    // ---------- corrupted files ----------

    private static (JsonObject Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return ((JsonObject)JsonNode.Parse(Encoding.UTF8.GetString(file, 8, n))!, file[(8 + n)..]);
    }

    private static byte[] Join(string header, byte[] data) => SafetensorsBytes.Join(header, data);

    private static byte[] Edit(byte[] file, Action<JsonObject> edit)
    {
        var (h, d) = Split(file);
        edit(h);
        return Join(h.ToJsonString(), d);
    }

    private static void AssertRejected(Module m, byte[] bytes, string expected, Optimizer? opt = null)
    {
        var before = Bits(m);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Read(m, bytes, opt));
        Assert.Contains(expected, e.Message);
        AssertSameBits(before, Bits(m));
    }

    public static TheoryData<string, string> Corruptions => new()
    {
        { "short", "shorter than the 8-byte header length" },
        { "truncated", "truncated" },
        { "header-past-end", "runs past the end of the file" },
        { "header-too-large", "exceeds the limit" },
        { "not-json", "not valid JSON" },
        { "not-object", "does not start with '{'" },
        { "bad-utf8", "not valid UTF-8" },
        { "duplicate", "twice" },
        { "overlap", "overlapping" },
        { "gap", "gap" },
        { "trailing-bytes", "unaccounted" },
        { "wrong-dtype", "is I32 [8, 6] in the file, expected F32" },
        { "unknown-dtype", "unknown dtype 'F33'" },
        { "size-mismatch", "need" },
        { "wrong-shape", "expected [8, 6]" },
        { "overflow", "overflows the element count" },
        { "nan", "NaN" },
        { "missing", "is missing" },
        { "unknown-tensor", "not parameters or buffers of the Sequential" },
        { "negative-dim", "invalid dimension" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void CorruptedFileIsRejectedAndModelUnchanged(string kind, string expected)
    {
        using var source = Mlp(5);
        var good = SaveWeights(source);
        using var m = Mlp(6);
        var (h, data) = Split(good);
        string headerText = h.ToJsonString();
        byte[] bad = kind switch
        {
            "short" => good[..5],
            "truncated" => good[..^4],
            "header-past-end" => WithLength(good, (ulong)good.Length),
            "header-too-large" => WithLength(good, 200_000_000),
            "not-json" => Join("{\"0.weight\": [1, 2", data),
            "not-object" => Join("[]", data),
            "bad-utf8" => Join(headerText, data).Also(b => b[8 + 3] = 0xFF),
            // JsonNode cannot hold a duplicate key: splice the text.
            "duplicate" => Join(headerText.Replace("\"0.bias\":", "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"0.bias\":"), data),
            "overlap" => Edit(good, o => Shift(o, "0.bias", -4)),
            // 2.bias (3 floats) is last: move it 4 bytes on and put 4 unclaimed bytes before it.
            "gap" => Join(Shifted(h, "2.bias", 4), [.. data[..^12], 0, 0, 0, 0, .. data[^12..]]),
            "trailing-bytes" => [.. good, 1, 2, 3, 4],
            "wrong-dtype" => Edit(good, o => o["0.weight"]!["dtype"] = "I32"),
            "unknown-dtype" => Edit(good, o => o["0.weight"]!["dtype"] = "F33"),
            "size-mismatch" => Edit(good, o => o["0.weight"]!["dtype"] = "F64"),
            "wrong-shape" => Edit(good, o => o["0.weight"]!["shape"] = new JsonArray(6, 8)),
            "overflow" => Edit(good, o => o["0.weight"]!["shape"] = new JsonArray(1L << 40, 1L << 40)),
            "nan" => WithFloat(good, "2.weight", 3, float.NaN),
            "missing" => RemoveTensor(good, "2.bias"),
            // An empty extra tensor at the end keeps the layout valid; only its name is wrong.
            "unknown-tensor" => Edit(good, o => o["2.extra"] = new JsonObject
            {
                ["dtype"] = "F32", ["shape"] = new JsonArray(0), ["data_offsets"] = new JsonArray(data.Length, data.Length),
            }),
            "negative-dim" => Edit(good, o => o["0.bias"]!["shape"] = new JsonArray(-8)),
            _ => throw new ArgumentException(kind),
        };
        AssertRejected(m, bad, expected);
    }

    private static byte[] WithLength(byte[] file, ulong n)
    {
        var r = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(r, n);
        return r;
    }

    private static void Shift(JsonObject header, string name, long by)
    {
        var off = header[name]!["data_offsets"]!.AsArray().Select(v => v!.GetValue<long>() + by).ToArray();
        header[name]!["data_offsets"] = new JsonArray(off[0], off[1]);
    }

    private static byte[] WithFloat(byte[] file, string name, int index, float value)
    {
        var (h, _) = Split(file);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        long begin = h[name]!["data_offsets"]![0]!.GetValue<long>();
        var r = (byte[])file.Clone();
        BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan(8 + n + (int)begin + 4 * index), value);
        return r;
    }

    /// <summary>Drops the last tensor (2.bias is last) with its data, leaving a valid file that lacks it.</summary>
    private static byte[] RemoveTensor(byte[] file, string name)
    {
        var (h, d) = Split(file);
        var off = h[name]!["data_offsets"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();
        Assert.Equal(d.Length, off[1]);
        h.Remove(name);
        return Join(h.ToJsonString(), d[..(int)off[0]]);
    }

    private static string Shifted(JsonObject header, string name, long by)
    {
        var copy = (JsonObject)header.DeepClone();
        Shift(copy, name, by);
        return copy.ToJsonString();
    }

    [Fact]
    public void NonFiniteValuesLoadWhenAllowed()
    {
        using var source = Mlp(5);
        var bad = WithFloat(Save(source), "0.bias", 1, float.PositiveInfinity);
        using var m = Mlp(6);
        AssertRejected(m, bad, "Infinity");
        Checkpoint.Read(m, bad, allowNonFinite: true);
        Assert.Equal(float.PositiveInfinity, m.NamedParameters().Single(p => p.Name == "0.bias").Value.ToArray()[1]);
    }

    [Fact]
    public void InvalidPermutationIsRejectedAndNothingChanges()
    {
        using var source = RpMixer(1);
        var good = Save(source);
        var (h, _) = Split(good);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(good);
        long begin = h["blocks.0.token2.output_permutation"]!["data_offsets"]![0]!.GetValue<long>();
        var bad = (byte[])good.Clone();
        // Repeat the first index in the second slot: no longer a permutation.
        bad.AsSpan(8 + n + (int)begin, 4).CopyTo(bad.AsSpan(8 + n + (int)begin + 4));
        using var m = RpMixer(2);
        var buffersBefore = m.NamedBuffers().Select(x => x.Value.Read()).ToList();
        AssertRejected(m, bad, "appears twice");
        Assert.Equal(buffersBefore, m.NamedBuffers().Select(x => x.Value.Read()).ToList());
    }

    [Fact]
    public void OptimizerMismatchesAreRejected()
    {
        using var a = Mlp(1);
        using var sgd = new Sgd(a.Parameters(), 0.1f, momentum: 0.9f);
        TrainSteps(a, sgd, 6, 1, 3);
        var bytes = Save(a, sgd);
        using var b = Mlp(2);
        using var adam = new Adam(b.Parameters());
        AssertRejected(b, bytes, "the state was saved from Sgd; this optimizer is Adam", adam);
        AssertRejected(b, Save(a), "no optimizer state was saved", adam);
        // Loading weights only ignores the optimizer entries.
        Checkpoint.Read(b, bytes);
        AssertSameBits(Bits(a), Bits(b));
        // An incomplete Adam state (exp_avg_sq dropped) is rejected.
        using var c = Mlp(3);
        using var adamC = new Adam(c.Parameters());
        TrainSteps(c, adamC, 6, 1, 3);
        var full = Save(c, adamC);
        var (hdr, data) = Split(full);
        var node = hdr["optimizer.state.0.exp_avg_sq"]!.DeepClone();
        hdr.Remove("optimizer.state.0.exp_avg_sq");
        hdr["optimizer.state.0.other"] = node;
        using var d = Mlp(4);
        using var adamD = new Adam(d.Parameters());
        AssertRejected(d, Join(hdr.ToJsonString(), data), "entry 'state.0.exp_avg_sq' is missing", adamD);
    }

    private sealed class Pair : Module
    {
        public Pair()
        {
            First = RegisterParameter("first", Tensor.Full([4], 1f, Device.Cpu));
            Second = RegisterParameter("second", Tensor.Full([4], 2f, Device.Cpu));
        }

        public Tensor First { get; }
        public Tensor Second { get; }
        public override Tensor Forward(Tensor input) => input * First + Second;
    }

    [Fact]
    public void FailedSaveLeavesTheTargetUntouched()
    {
        var dir = TempDir();
        try
        {
            var path = Path.Combine(dir, "model.safetensors");
            using var good = Mlp(1);
            Checkpoint.Save(good, path);
            var before = File.ReadAllBytes(path);

            // The second tensor throws while its data is written, after the header and the first tensor.
            var m = new Pair();
            m.Second.Dispose();
            Assert.ThrowsAny<Exception>(() => Checkpoint.Save(m, path));
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Single(Directory.GetFiles(dir));

            // The same through the raw writer: a producer that returns the wrong size.
            var entries = new[]
            {
                SafetensorsEntry.Singles("a", [2], () => [1f, 2f]),
                new SafetensorsEntry("b", SafetensorsDType.F32, [3], () => new byte[4]),
            };
            var e = Assert.Throws<ArgumentException>(() => Safetensors.WriteFile(path, entries));
            Assert.Contains("'b' produced 4 bytes", e.Message);
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Single(Directory.GetFiles(dir));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

internal static class TestExtensions
{
    /// <summary>Applies <paramref name="change"/> to <paramref name="value"/> and returns it (for one-line corruptions).</summary>
    public static T Also<T>(this T value, Action<T> change)
    {
        change(value);
        return value;
    }
}
