using System.Text;

namespace Engine.Data.Pde;

/// <summary>
/// Pairs (input field, solution field) from a PDE generator, stored as float32 (computed in double), each sample of
/// shape <see cref="SampleShape"/> ([s] for Burgers, [s, s] for Darcy).
/// </summary>
/// <param name="Inputs">Flat inputs, [Count, SampleShape...].</param>
/// <param name="Targets">Flat solutions, same shape.</param>
/// <param name="Count">Number of pairs.</param>
/// <param name="SampleShape">Shape of one field.</param>
public sealed record PdeData(float[] Inputs, float[] Targets, int Count, int[] SampleShape)
{
    /// <summary>Values per field.</summary>
    public int SampleSize => SampleShape.Aggregate(1, (a, b) => a * b);

    /// <summary>Pairs [start, start + count) as a new data set.</summary>
    public PdeData Slice(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"PdeData.Slice: [{start}, {start + count}) is outside 0..{Count}.");
        int n = SampleSize;
        return new PdeData(Inputs[(start * n)..((start + count) * n)], Targets[(start * n)..((start + count) * n)], count, SampleShape);
    }

    /// <summary>||prediction - target|| / ||target|| in double (the FNO papers' relative L2 error of one field).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static double RelativeL2(ReadOnlySpan<double> prediction, ReadOnlySpan<float> target)
    {
        if (prediction.Length != target.Length)
            throw new ArgumentException($"PdeData.RelativeL2: prediction has {prediction.Length} values, target {target.Length}.");
        double err = 0, norm = 0;
        for (int j = 0; j < target.Length; j++)
        {
            double d = prediction[j] - target[j];
            err += d * d;
            norm += (double)target[j] * target[j];
        }
        return Math.Sqrt(err / norm);
    }

    /// <summary>
    /// Mean relative L2 error on these pairs of predicting the mean target field of <paramref name="train"/> for every
    /// input: the mean-field baseline (what a model that ignores its input at best achieves in L2).
    /// </summary>
    /// <exception cref="ArgumentException">The field shapes differ.</exception>
    public double MeanFieldBaselineError(PdeData train)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (!train.SampleShape.SequenceEqual(SampleShape))
            throw new ArgumentException($"PdeData.MeanFieldBaselineError: training fields [{string.Join(", ", train.SampleShape)}] differ from these [{string.Join(", ", SampleShape)}].");
        int n = SampleSize;
        var mean = new double[n];
        for (int i = 0; i < train.Count; i++)
            for (int j = 0; j < n; j++) mean[j] += train.Targets[i * n + j];
        for (int j = 0; j < n; j++) mean[j] /= train.Count;
        double sum = 0;
        for (int i = 0; i < Count; i++) sum += RelativeL2(mean, Targets.AsSpan(i * n, n));
        return sum / Count;
    }

    /// <summary>As an engine <see cref="Dataset"/> (features = inputs, regression targets = solutions).</summary>
    public Dataset ToDataset() => new(Inputs, SampleShape, targets: Targets, targetShape: SampleShape);
}

/// <summary>
/// The cache file of a PDE generator: a header (magic "EPDE", format version, generator kind, count, field shape,
/// seed, and the generator's parameters as doubles) and the float32 inputs and targets, little-endian. Written to a
/// temporary file and renamed, so a reader never sees half a file; a file whose header differs in any field is
/// rejected (the caller regenerates).
/// </summary>
public static class PdeCache
{
    private const uint Magic = 0x45445045; // "EPDE" little-endian
    private const int Version = 1;

    /// <summary>The header fields that must match for a cached file to be used.</summary>
    /// <param name="Kind">Generator name ("burgers", "darcy").</param>
    /// <param name="Count">Number of pairs.</param>
    /// <param name="SampleShape">Field shape.</param>
    /// <param name="Seed">Generation seed.</param>
    /// <param name="Parameters">Generator parameters (viscosity, grid, tolerance, ...).</param>
    public sealed record Header(string Kind, int Count, int[] SampleShape, ulong Seed, double[] Parameters)
    {
        /// <summary>Field-by-field equality (the arrays by content).</summary>
        public bool Matches(Header o) => Kind == o.Kind && Count == o.Count && SampleShape.SequenceEqual(o.SampleShape)
            && Seed == o.Seed && Parameters.SequenceEqual(o.Parameters);

        /// <inheritdoc />
        public override string ToString() =>
            $"{Kind} count {Count} shape [{string.Join(", ", SampleShape)}] seed {Seed} parameters [{string.Join(", ", Parameters)}]";
    }

    /// <summary>Writes <paramref name="data"/> under <paramref name="header"/> atomically (temporary file, then rename).</summary>
    public static void Write(string path, Header header, PdeData data)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        using (var w = new BinaryWriter(File.Create(tmp), Encoding.UTF8))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write(header.Kind);
            w.Write(header.Count);
            w.Write(header.SampleShape.Length);
            foreach (var d in header.SampleShape) w.Write(d);
            w.Write(header.Seed);
            w.Write(header.Parameters.Length);
            foreach (var p in header.Parameters) w.Write(p);
            foreach (var v in data.Inputs) w.Write(v);
            foreach (var v in data.Targets) w.Write(v);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// The cached data if <paramref name="path"/> exists and its header matches <paramref name="expected"/>; otherwise
    /// null with <paramref name="reason"/> saying why (missing, other magic/version, which field differs, truncated).
    /// </summary>
    public static PdeData? TryRead(string path, Header expected, out string reason)
    {
        if (!File.Exists(path))
        {
            reason = "no cache file";
            return null;
        }
        try
        {
            using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (r.ReadUInt32() != Magic) { reason = "not a PDE cache file (magic)"; return null; }
            int version = r.ReadInt32();
            if (version != Version) { reason = $"cache format version {version}, expected {Version}"; return null; }
            var kind = r.ReadString();
            int count = r.ReadInt32();
            var shape = new int[r.ReadInt32()];
            for (int i = 0; i < shape.Length; i++) shape[i] = r.ReadInt32();
            ulong seed = r.ReadUInt64();
            var ps = new double[r.ReadInt32()];
            for (int i = 0; i < ps.Length; i++) ps[i] = r.ReadDouble();
            var found = new Header(kind, count, shape, seed, ps);
            if (!found.Matches(expected)) { reason = $"cache holds {found}, expected {expected}"; return null; }
            int n = count * shape.Aggregate(1, (a, b) => a * b);
            var inputs = new float[n];
            var targets = new float[n];
            for (int i = 0; i < n; i++) inputs[i] = r.ReadSingle();
            for (int i = 0; i < n; i++) targets[i] = r.ReadSingle();
            reason = "ok";
            return new PdeData(inputs, targets, count, shape);
        }
        catch (EndOfStreamException)
        {
            reason = "cache file is truncated";
            return null;
        }
    }
}
