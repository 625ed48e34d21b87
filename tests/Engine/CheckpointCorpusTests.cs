using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Autodiff;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Xunit.Abstractions;

namespace Engine.Tests.EngineTests;

/// <summary>
/// A corruption corpus generated from one valid checkpoint (model and Adam state): bit flips, truncations, header
/// mutations, offsets, dtypes, shapes, duplicates, missing and extra entries, metadata, non-finite and changed values.
/// Every case must be rejected with <see cref="InvalidDataException"/> leaving the target model and optimizer exactly
/// as they were, or load and leave them holding exactly what the file says; never anything else. The comparison
/// includes the global generator's state (a checkpoint holds it), which any test building an unseeded layer advances:
/// so these tests run alone.
/// </summary>
[Collection("serial")]
public class CheckpointCorpusTests(ITestOutputHelper output)
{
    private static readonly Device Cpu = Device.Cpu;

    private static Sequential Model(ulong seed) => new(
        new Linear(5, 7, seed: seed, device: Cpu), new Tanh(), new Linear(7, 3, seed: seed + 3, device: Cpu));

    private static void Train(Module m, Optimizer opt, int steps, ulong seed)
    {
        for (int i = 0; i < steps; i++)
        {
            using var scope = new TensorScope();
            opt.ZeroGrad();
            var loss = m.Forward(Tensor.Normal([4, 5], seed + (ulong)i, device: Cpu)).Square().Mean();
            loss.Backward();
            opt.Step();
        }
    }

    private static byte[] Bytes(Module m, Optimizer opt)
    {
        using var ms = new MemoryStream();
        Checkpoint.Write(m, ms, opt);
        return ms.ToArray();
    }

    // ---------- a small independent model of the format: entries in, bytes out ----------

    /// <summary>One tensor of a file as the test sees it: the raw header object and its data bytes.</summary>
    private sealed record Entry(string Name, JsonObject Info, byte[] Data);

    private sealed record Parsed(List<Entry> Entries, JsonObject? Metadata, int HeaderLength);

    private static Parsed Parse(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = (JsonObject)JsonNode.Parse(Encoding.UTF8.GetString(file, 8, n))!;
        var entries = new List<Entry>();
        JsonObject? meta = null;
        foreach (var (name, node) in header)
        {
            if (name == Safetensors.MetadataKey)
            {
                meta = (JsonObject)node!.DeepClone();
                continue;
            }
            var info = (JsonObject)node!.DeepClone();
            var off = info["data_offsets"]!.AsArray().Select(v => (int)v!.GetValue<long>()).ToArray();
            entries.Add(new Entry(name, info, file[(8 + n + off[0])..(8 + n + off[1])]));
        }
        return new Parsed(entries, meta, n);
    }

    /// <summary>A file of <paramref name="entries"/> laid out contiguously (offsets recomputed unless <paramref name="keepOffsets"/>).</summary>
    private static byte[] Build(IEnumerable<Entry> entries, JsonObject? metadata, bool keepOffsets = false)
    {
        var header = new JsonObject();
        if (metadata != null) header[Safetensors.MetadataKey] = metadata.DeepClone();
        var data = new MemoryStream();
        foreach (var e in entries)
        {
            var info = (JsonObject)e.Info.DeepClone();
            if (!keepOffsets) info["data_offsets"] = new JsonArray(data.Length, data.Length + e.Data.Length);
            header[e.Name] = info;
            data.Write(e.Data);
        }
        return Join(header.ToJsonString(), data.ToArray());
    }

    private static byte[] Join(string headerText, byte[] data) => SafetensorsBytes.Join(headerText, data);

    private static byte[] HeaderEdit(byte[] file, Func<string, string> edit)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return Join(edit(Encoding.UTF8.GetString(file, 8, n)), file[(8 + n)..]);
    }

    private static byte[] EntryEdit(byte[] good, Random rng, Action<Entry, Random> edit, bool keepOffsets = true)
    {
        var p = Parse(good);
        var entries = p.Entries.Select(e => e with { Info = (JsonObject)e.Info.DeepClone(), Data = (byte[])e.Data.Clone() }).ToList();
        edit(entries[rng.Next(entries.Count)], rng);
        return Build(entries, p.Metadata, keepOffsets);
    }

    // ---------- the corpus ----------

    private sealed record Case(string Kind, byte[] Bytes);

    private static readonly string[] DTypeNames = [.. Enum.GetNames<SafetensorsDType>(), "f32", "F33", "", "11", "float32"];

    private static IEnumerable<Case> Corpus(byte[] good)
    {
        var rng = new Random(20240611);
        var parsed = Parse(good);
        int headerEnd = 8 + parsed.HeaderLength;

        for (int i = 0; i < 300; i++)
        {
            var b = (byte[])good.Clone();
            int at = i < 200 ? rng.Next(headerEnd) : headerEnd + rng.Next(good.Length - headerEnd);
            b[at] ^= (byte)(1 << rng.Next(8));
            yield return new(i < 200 ? "bit flip in header" : "bit flip in data", b);
        }
        foreach (int len in Enumerable.Range(0, 17).Concat([headerEnd - 1, headerEnd, headerEnd + 1, good.Length - 1]).Concat(Enumerable.Range(0, 100).Select(_ => rng.Next(good.Length))))
            yield return new("truncation", good[..len]);
        for (int i = 0; i < 30; i++)
            yield return new("appended bytes", [.. good, .. Enumerable.Range(0, 1 + rng.Next(64)).Select(_ => (byte)rng.Next(256))]);
        foreach (ulong n in new ulong[] { 0, 1, 7, (ulong)parsed.HeaderLength - 1, (ulong)parsed.HeaderLength + 1, (ulong)good.Length, (ulong)good.Length - 8,
                     Safetensors.MaxHeaderBytes + 1, ulong.MaxValue, 1UL << 63, uint.MaxValue }.Concat(Enumerable.Range(0, 30).Select(_ => (ulong)rng.NextInt64())))
        {
            var b = (byte[])good.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(b, n);
            yield return new("header length", b);
        }
        for (int i = 0; i < 200; i++)
            yield return new("dtype", EntryEdit(good, rng, (e, r) => e.Info["dtype"] = DTypeNames[r.Next(DTypeNames.Length)]));
        for (int i = 0; i < 160; i++)
            yield return new("shape", EntryEdit(good, rng, MutateShape));
        yield return new("shape", MillionDimensions(good, "0.weight"));
        for (int i = 0; i < 160; i++)
            yield return new("offsets", EntryEdit(good, rng, MutateOffsets));
        for (int i = 0; i < 60; i++)
            yield return new("fields", EntryEdit(good, rng, MutateFields));
        for (int i = 0; i < 60; i++)
        {
            var p = Parse(good);
            int k = rng.Next(p.Entries.Count);
            string name = rng.Next(6) switch
            {
                0 => Safetensors.MetadataKey,
                1 => "",
                2 => new string('x', 100_000),
                3 => p.Entries[(k + 1) % p.Entries.Count].Name + "\u00e9",
                4 => "optimizer." + p.Entries[k].Name,
                _ => p.Entries[k].Name + "." + rng.Next(1000),
            };
            p.Entries[k] = p.Entries[k] with { Name = name };
            yield return new("renamed entry", Build(p.Entries, p.Metadata));
        }
        foreach (var e in parsed.Entries.Take(20))
            yield return new("duplicate entry", HeaderEdit(good, h => h.Replace("{\"" + Safetensors.MetadataKey, "{\"" + e.Name + "\":" + e.Info.ToJsonString() + ",\"" + Safetensors.MetadataKey)));
        yield return new("duplicate entry", HeaderEdit(good, h => h.Replace("{\"engine.format\"", "{\"engine.format\":\"x\",\"engine.format\"")));
        for (int k = 0; k < parsed.Entries.Count; k++)
            yield return new("missing entry", Build(parsed.Entries.Where((_, j) => j != k), parsed.Metadata));
        for (int i = 0; i < 30; i++)
        {
            var e = parsed.Entries[rng.Next(parsed.Entries.Count)];
            string name = rng.Next(3) switch { 0 => "3.weight", 1 => "optimizer.extra.exp_avg", _ => e.Name + "_copy" };
            yield return new("extra entry", Build([.. parsed.Entries, e with { Name = name }], parsed.Metadata));
        }
        for (int i = 0; i < 60; i++)
        {
            var meta = (JsonObject)parsed.Metadata!.DeepClone();
            var keys = meta.Select(kv => kv.Key).ToList();
            string key = keys[rng.Next(keys.Count)];
            string[] values = ["", "x", "-1", "NaN", "Infinity", "1e40", "2147483648", "0", "Sgd", "Adam", "engine-checkpoint/999", new string('9', 5000)];
            switch (rng.Next(4))
            {
                case 0: meta.Remove(key); break;
                case 1: meta[key] = rng.Next(2) == 0 ? 5 : new JsonArray(1); break;
                default: meta[key] = values[rng.Next(values.Length)]; break;
            }
            yield return new("metadata", Build(parsed.Entries, i == 0 ? null : meta));
        }
        var floats = parsed.Entries.Where(e => e.Info["dtype"]!.GetValue<string>() == "F32" && e.Data.Length > 0).ToList();
        for (int i = 0; i < 60; i++)
        {
            var p = Parse(good);
            string pick = floats[rng.Next(floats.Count)].Name;
            var e = p.Entries.FirstOrDefault(x => x.Name == pick) ?? throw new InvalidOperationException($"no '{pick}' in [{string.Join(", ", p.Entries.Select(x => x.Name))}]");
            float value = i < 40 ? new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity }[i % 3] : (float)(rng.NextDouble() * 4 - 2);
            BinaryPrimitives.WriteSingleLittleEndian(e.Data.AsSpan(4 * rng.Next(e.Data.Length / 4)), value);
            yield return new(i < 40 ? "non-finite value" : "changed value", Build(p.Entries, p.Metadata));
        }
        for (int i = 0; i < 60; i++)
        {
            int n = parsed.HeaderLength;
            string text = Encoding.UTF8.GetString(good, 8, n);
            int at = rng.Next(text.Length);
            text = rng.Next(3) switch
            {
                0 => text.Remove(at, 1),
                1 => text.Insert(at, "{}[]\",: 0-e"[rng.Next(11)].ToString()),
                _ => new[] { "{}", "[]", "null", "\"x\"", "{\"a\":1}", "  " + text, text + "  " }[rng.Next(7)],
            };
            yield return new("header text", Join(text, good[(8 + n)..]));
        }
    }

    /// <summary><paramref name="name"/> with a shape of a million ones (spliced as text: a JsonArray of that size is slow).</summary>
    private static byte[] MillionDimensions(byte[] good, string name)
    {
        var p = Parse(good);
        p.Entries.Single(x => x.Name == name).Info["shape"] = "MILLION";
        var file = Build(p.Entries, p.Metadata, keepOffsets: true);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        string text = Encoding.UTF8.GetString(file, 8, n)
            .Replace("\"MILLION\"", "[" + string.Join(",", Enumerable.Repeat("1", 1_000_000)) + "]", StringComparison.Ordinal);
        return Join(text, file[(8 + n)..]);
    }

    private static void MutateShape(Entry e, Random rng)
    {
        var shape = e.Info["shape"]!.AsArray().Select(v => v!.GetValue<long>()).ToList();
        JsonNode?[] Dims(IEnumerable<long> dims) => [.. dims.Select(d => (JsonNode?)d)];
        e.Info["shape"] = rng.Next(10) switch
        {
            0 => new JsonArray(Dims(shape.Skip(1))),
            1 => new JsonArray(Dims([.. shape, 1])),
            2 => new JsonArray(Dims([.. shape, 2])),
            3 => new JsonArray(Dims(shape.Select((d, i) => i == 0 ? d + (rng.Next(2) == 0 ? 1 : -1) : d))),
            4 => new JsonArray(Dims([-1, .. shape])),
            5 => new JsonArray(Dims([1L << 40, 1L << 40, .. shape])),
            6 => new JsonArray(2.5, 3),
            7 => new JsonArray("8", null),
            8 => new JsonArray(Dims(Enumerable.Reverse(shape))),
            _ => new JsonArray(Dims([shape.Aggregate(1L, (a, d) => a * d)])),
        };
    }

    private static void MutateOffsets(Entry e, Random rng)
    {
        var off = e.Info["data_offsets"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();
        long k = 1 + rng.Next(16);
        e.Info["data_offsets"] = rng.Next(9) switch
        {
            0 => new JsonArray(off[0] + k, off[1] + k),
            1 => new JsonArray(off[0] - k, off[1] - k),
            2 => new JsonArray(off[0], off[1] + k),
            3 => new JsonArray(off[1], off[0]),
            4 => new JsonArray(0, 0),
            5 => new JsonArray(-k, off[1]),
            6 => new JsonArray(off[0], long.MaxValue),
            7 => new JsonArray(off[0], off[1], off[1]),
            _ => new JsonArray("0", off[1]),
        };
    }

    private static void MutateFields(Entry e, Random rng)
    {
        switch (rng.Next(5))
        {
            case 0: e.Info.Remove(new[] { "dtype", "shape", "data_offsets" }[rng.Next(3)]); break;
            case 1: e.Info["extra"] = 1; break;
            case 2: e.Info["dtype"] = 32; break;
            case 3: e.Info["shape"] = "[2, 3]"; break;
            default: e.Info["data_offsets"] = null; break;
        }
    }

    [Fact]
    public void EveryCorruptionIsRejectedCleanlyOrLoadsExactlyWhatTheFileHolds()
    {
        using var source = Model(1);
        using var sourceOpt = new Adam(source.Parameters(), 1e-2f);
        Train(source, sourceOpt, 2, 10);
        var good = Bytes(source, sourceOpt);

        var target = Model(2);
        var targetOpt = new Adam(target.Parameters(), 3e-3f);
        Train(target, targetOpt, 1, 20);
        var before = Bytes(target, targetOpt);

        var outcomes = new SortedDictionary<string, (int Rejected, int Loaded)>(StringComparer.Ordinal);
        int longestMessage = 0;
        var watch = Stopwatch.StartNew();
        var corpus = Corpus(good).ToList();
        double generated = watch.Elapsed.TotalSeconds;
        int cases = 0;
        foreach (var c in corpus)
        {
            cases++;
            bool loaded;
            try
            {
                Checkpoint.Read(target, c.Bytes, targetOpt);
                loaded = true;
            }
            catch (InvalidDataException e)
            {
                loaded = false;
                longestMessage = Math.Max(longestMessage, e.Message.Length);
                Assert.True(e.Message.Length <= 2000, $"{c.Kind}: a {e.Message.Length}-character message");
                // Never partially applied: the model and optimizer are exactly as before.
                Assert.True(before.AsSpan().SequenceEqual(Bytes(target, targetOpt)), $"{c.Kind}: a rejected file changed the target ({e.Message})");
            }
            catch (Exception e)
            {
                Assert.Fail($"{c.Kind}: {e.GetType().Name} instead of InvalidDataException: {e.Message}");
                throw;
            }
            if (loaded)
            {
                AssertHoldsTheFile(c.Kind, c.Bytes, Bytes(target, targetOpt));
                target.Dispose();
                targetOpt.Dispose();
                target = Model(2);
                targetOpt = new Adam(target.Parameters(), 3e-3f);
                Checkpoint.Read(target, before, targetOpt);
                Assert.Equal(before, Bytes(target, targetOpt));
            }
            var (r, l) = outcomes.GetValueOrDefault(c.Kind);
            outcomes[c.Kind] = loaded ? (r, l + 1) : (r + 1, l);
        }
        watch.Stop();
        target.Dispose();
        targetOpt.Dispose();

        output.WriteLine($"{cases} corrupted checkpoints generated in {generated:F2} s, tried in {watch.Elapsed.TotalSeconds - generated:F2} s; longest message {longestMessage} characters");
        foreach (var (kind, (r, l)) in outcomes) output.WriteLine($"  {kind,-20} rejected {r,4}  loaded {l,4}");
        Assert.True(cases >= 1000, $"only {cases} cases");
        // Changing a value to another finite one is undetectable without a checksum: those load (exactly, as checked).
        Assert.Equal(0, outcomes["changed value"].Rejected);
        // (A missing per-parameter step count may load as step 0: what optimizer state must be complete is the
        // optimizer's state contract, not the file format's; loaded or not, the invariant above holds.)
        foreach (var kind in new[] { "truncation", "header length", "duplicate entry", "extra entry", "non-finite value" })
            Assert.Equal(0, outcomes[kind].Loaded);
    }

    /// <summary>Every tensor of <paramref name="file"/> is in the re-saved target with the same dtype, shape and bytes.</summary>
    private static void AssertHoldsTheFile(string kind, byte[] file, byte[] resaved)
    {
        var saved = Parse(resaved).Entries.ToDictionary(e => e.Name);
        foreach (var e in Parse(file).Entries)
        {
            Assert.True(saved.TryGetValue(e.Name, out var s), $"{kind}: loaded, but '{e.Name}' did not reach the target");
            Assert.Equal(e.Info["dtype"]!.ToJsonString(), s!.Info["dtype"]!.ToJsonString());
            Assert.Equal(e.Info["shape"]!.ToJsonString(), s.Info["shape"]!.ToJsonString());
            Assert.True(e.Data.AsSpan().SequenceEqual(s.Data), $"{kind}: '{e.Name}' differs from the file after loading");
        }
    }

    // ---------- files that are not checkpoints at all, and paths that cannot be one ----------

    public static TheoryData<string> SpecialPaths()
    {
        var rows = new TheoryData<string> { "directory", "empty", "blank", "nul", "under-a-file", "missing", "missing-folder" };
        if (OperatingSystem.IsLinux())
            foreach (var row in new[] { "/dev/zero", "/dev/urandom", "/dev/null", "fifo", "symlink-to-fifo" }) rows.Add(row);
        return rows;
    }

    [Theory]
    [MemberData(nameof(SpecialPaths))]
    public async Task AnythingButARegularFileIsRefusedFastNamingThePath(string kind)
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-special-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var file = Path.Combine(dir, "a-file");
            File.WriteAllText(file, "x");
            string path = kind switch
            {
                "directory" => dir,
                "empty" => "",
                "blank" => "   ",
                "nul" => Path.Combine(dir, "a\0b"),
                "under-a-file" => Path.Combine(file, "model.safetensors"),
                "missing" => Path.Combine(dir, "none.safetensors"),
                "missing-folder" => Path.Combine(dir, "no", "model.safetensors"),
                "fifo" => MakeFifo(Path.Combine(dir, "pipe")),
                "symlink-to-fifo" => File.CreateSymbolicLink(Path.Combine(dir, "link"), MakeFifo(Path.Combine(dir, "pipe"))).FullName,
                _ => kind,
            };
            using var m = Model(3);
            var weights = m.Parameters().Select(p => p.ToArray()).ToList();
            // A blocking read (a pipe with no writer) would hang: run it with a deadline.
            var load = Task.Run(() => Checkpoint.Load(m, path));
            Assert.Same(load, await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(10))));
            var e = Assert.IsAssignableFrom<IOException>(load.Exception?.InnerException);
            string quoted = path.Replace("\0", "\\0", StringComparison.Ordinal);
            Assert.Contains($"'{quoted}'", e.Message);
            Assert.DoesNotContain(".tmp", e.Message);
            Assert.Equal(weights, m.Parameters().Select(p => p.ToArray()).ToList());

            if (kind is "/dev/zero" or "/dev/urandom" or "/dev/null" or "fifo" or "symlink-to-fifo" or "missing") return;
            var save = Assert.Throws<IOException>(() => Checkpoint.Save(m, path));
            Assert.Contains($"'{quoted}'", save.Message);
            Assert.DoesNotContain(".tmp", save.Message);
            Assert.Single(Directory.GetFiles(dir)); // only a-file: no temporary left behind
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string MakeFifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }

    [Fact]
    public void MessagesQuoteAtMostAFewHundredCharactersOfWhatTheFileSays()
    {
        using var m = Model(4);
        using var opt = new Adam(m.Parameters());
        var good = Bytes(m, opt);
        var p = Parse(good);
        var e1 = Assert.Throws<InvalidDataException>(() => Checkpoint.Read(m, MillionDimensions(good, "0.weight")));
        Assert.True(e1.Message.Length < 500, $"{e1.Message.Length} characters");
        Assert.Contains("(1000000 dimensions)", e1.Message);

        var renamed = p.Entries.Select(e => e.Name == "0.bias" ? e with { Name = new string('n', 1_000_000) } : e);
        var e2 = Assert.Throws<InvalidDataException>(() => Checkpoint.Read(m, Build(renamed, p.Metadata)));
        Assert.True(e2.Message.Length < 1000, $"{e2.Message.Length} characters");
    }
}
