using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Data;

/// <summary>
/// What a <see cref="DataLoader"/> iterates: a number of samples and a way to build the batch of any of them on a
/// device. Implemented by <see cref="Dataset"/> (host arrays), <see cref="TensorDataset"/> (tensors already on a
/// device) and <see cref="Subset"/> (a selection of another data set); implement it for data of your own.
/// </summary>
public interface IDataset
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Shape of one sample's features.</summary>
    int[] SampleShape { get; }

    /// <summary>True when samples carry class labels.</summary>
    bool HasLabels { get; }

    /// <summary>The device holding the data, or null for host data (a loader then places batches where it is told).</summary>
    Device? Device { get; }

    /// <summary>The batch of the samples <paramref name="indices"/> (in that order) on <paramref name="device"/>.</summary>
    Batch GetBatch(ReadOnlySpan<int> indices, Device device);
}

/// <summary>
/// An in-memory data set: N samples of one shape as a flat row-major float array, with optional integer labels
/// (classification) or float targets (regression).
/// </summary>
public sealed class Dataset : IDataset
{
    /// <summary>Creates the data set, checking that features, labels and targets agree on the sample count.</summary>
    public Dataset(float[] features, int[] sampleShape, int[]? labels = null, float[]? targets = null, int[]? targetShape = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        SampleShape = (int[])sampleShape.Clone();
        SampleSize = (int)Shape.Size(sampleShape);
        if (SampleSize == 0 || features.Length % SampleSize != 0)
            throw new ArgumentException($"Dataset: {features.Length} feature values are not a whole number of samples of shape {Shape.Format(sampleShape)}.");
        Count = features.Length / SampleSize;
        if (labels != null && labels.Length != Count)
            throw new ArgumentException($"Dataset: {Count} samples but {labels.Length} labels.");
        TargetShape = targetShape ?? (targets != null ? [targets.Length / Math.Max(Count, 1)] : []);
        if (targets != null && targets.Length != Count * Shape.Size(TargetShape))
            throw new ArgumentException($"Dataset: {Count} samples need {Count * Shape.Size(TargetShape)} target values of shape {Shape.Format(TargetShape)}, got {targets.Length}.");
        Features = features;
        Labels = labels;
        Targets = targets;
    }

    /// <summary>Flat features, [Count, SampleShape...].</summary>
    public float[] Features { get; }
    /// <summary>Class labels, or null.</summary>
    public int[]? Labels { get; }
    /// <summary>Flat regression targets, or null.</summary>
    public float[]? Targets { get; }
    /// <summary>Shape of one sample.</summary>
    public int[] SampleShape { get; }
    /// <summary>Shape of one target.</summary>
    public int[] TargetShape { get; }
    /// <summary>Elements per sample.</summary>
    public int SampleSize { get; }
    /// <summary>Number of samples.</summary>
    public int Count { get; }
    /// <inheritdoc />
    public bool HasLabels => Labels != null;
    /// <inheritdoc />
    Device? IDataset.Device => null;

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, Count).</exception>
    public Batch GetBatch(ReadOnlySpan<int> indices, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        int n = indices.Length, ss = SampleSize, ts = (int)Shape.Size(TargetShape);
        var x = new float[n * ss];
        int[]? labels = Labels == null ? null : new int[n];
        float[]? targets = Targets == null ? null : new float[n * ts];
        for (int i = 0; i < n; i++)
        {
            int s = indices[i];
            if ((uint)s >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Dataset: sample {s} is outside [0, {Count}).");
            Array.Copy(Features, (long)s * ss, x, (long)i * ss, ss);
            if (labels != null) labels[i] = Labels![s];
            if (targets != null) Array.Copy(Targets!, (long)s * ts, targets, (long)i * ts, ts);
        }
        var xt = Tensor.FromArray(x, [n, .. SampleShape], device);
        var tt = targets == null ? null : Tensor.FromArray(targets, [n, .. TargetShape], device);
        return new Batch(xt, labels, tt);
    }
}

/// <summary>
/// A data set whose features (and targets) are tensors already on a device, [N, ...] (PyTorch's TensorDataset): batches
/// are gathered on that device (one IndexSelect per tensor), with no host copy. Labels, when given, stay on the host
/// (the loss and the accuracy read them there).
/// </summary>
public sealed class TensorDataset : IDataset
{
    /// <summary>Wraps the tensors (not copied; they must outlive the data set and are not disposed by it).</summary>
    /// <exception cref="ArgumentException">Sample counts differ, or the tensors live on different devices.</exception>
    public TensorDataset(Tensor features, int[]? labels = null, Tensor? targets = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.Rank < 1) throw new ArgumentException($"TensorDataset: features {Shape.Format(features.Shape)} need a sample axis first.", nameof(features));
        Count = features.Shape[0];
        if (labels != null && labels.Length != Count)
            throw new ArgumentException($"TensorDataset: {Count} samples (features {Shape.Format(features.Shape)}) but {labels.Length} labels.", nameof(labels));
        if (targets != null)
        {
            if (targets.Rank < 1 || targets.Shape[0] != Count)
                throw new ArgumentException($"TensorDataset: features {Shape.Format(features.Shape)} and targets {Shape.Format(targets.Shape)} differ in sample count.", nameof(targets));
            if (!ReferenceEquals(targets.Device, features.Device))
                throw new ArgumentException($"TensorDataset: features live on '{features.Device.Name}', targets on '{targets.Device.Name}'.", nameof(targets));
        }
        Features = features;
        Labels = labels == null ? null : (int[])labels.Clone();
        Targets = targets;
    }

    /// <summary>Features [N, ...].</summary>
    public Tensor Features { get; }
    /// <summary>Class labels, or null.</summary>
    public int[]? Labels { get; }
    /// <summary>Targets [N, ...], or null.</summary>
    public Tensor? Targets { get; }
    /// <inheritdoc />
    public int Count { get; }
    /// <inheritdoc />
    public int[] SampleShape => Features.Shape[1..];
    /// <inheritdoc />
    public bool HasLabels => Labels != null;
    /// <inheritdoc />
    public Device? Device => Features.Device;

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, Count).</exception>
    public Batch GetBatch(ReadOnlySpan<int> indices, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var index = new IndexTensor(indices);
        index.CheckRange("TensorDataset", Count);
        Tensor x, t;
        using (GradMode.NoGrad())
        {
            x = Features.IndexSelect(0, index);
            t = Targets?.IndexSelect(0, index)!;
        }
        Features.Device.Kernels.Synchronize(); // the gathers read the index buffer, freed on return
        if (!ReferenceEquals(device, Features.Device))
        {
            var moved = x.To(device);
            x.Dispose();
            x = moved;
            if (t != null)
            {
                var movedT = t.To(device);
                t.Dispose();
                t = movedT;
            }
        }
        int[]? labels = null;
        if (Labels != null)
        {
            labels = new int[indices.Length];
            for (int i = 0; i < labels.Length; i++) labels[i] = Labels[indices[i]];
        }
        return new Batch(x, labels, t);
    }
}

/// <summary>
/// The samples <see cref="Indices"/> of another data set, in that order (PyTorch's Subset): a split or a selection
/// without copying. <see cref="RandomSplit(IDataset, int[], int)"/> cuts a data set into random disjoint subsets.
/// </summary>
public sealed class Subset : IDataset
{
    private readonly int[] indices;

    /// <summary>Selects <paramref name="indices"/> of <paramref name="source"/> (copied; repeats allowed).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside the source.</exception>
    public Subset(IDataset source, int[] indices)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(indices);
        int bad = Array.FindIndex(indices, i => i < 0 || i >= source.Count);
        if (bad >= 0)
            throw new ArgumentOutOfRangeException(nameof(indices), $"Subset: index {indices[bad]} at position {bad} is outside the source's [0, {source.Count}).");
        Source = source;
        this.indices = (int[])indices.Clone();
    }

    /// <summary>The data set selected from.</summary>
    public IDataset Source { get; }
    /// <summary>The selected samples of <see cref="Source"/>.</summary>
    public IReadOnlyList<int> Indices => indices;
    /// <inheritdoc />
    public int Count => indices.Length;
    /// <inheritdoc />
    public int[] SampleShape => Source.SampleShape;
    /// <inheritdoc />
    public bool HasLabels => Source.HasLabels;
    /// <inheritdoc />
    public Device? Device => Source.Device;

    /// <inheritdoc />
    public Batch GetBatch(ReadOnlySpan<int> positions, Device device)
    {
        var mapped = new int[positions.Length];
        for (int i = 0; i < mapped.Length; i++)
        {
            int p = positions[i];
            if ((uint)p >= (uint)indices.Length) throw new ArgumentOutOfRangeException(nameof(positions), $"Subset: sample {p} is outside [0, {indices.Length}).");
            mapped[i] = indices[p];
        }
        return Source.GetBatch(mapped, device);
    }

    /// <summary>
    /// Splits <paramref name="source"/> into disjoint random subsets of the given <paramref name="counts"/> (which must
    /// add up to its size), from one shuffle seeded by <paramref name="seed"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The counts are negative or do not add up to the source's size.</exception>
    public static Subset[] RandomSplit(IDataset source, int[] counts, int seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Any(c => c < 0) || counts.Sum(c => (long)c) != source.Count)
            throw new ArgumentException($"RandomSplit: counts [{string.Join(", ", counts)}] must be non-negative and add up to the {source.Count} samples.", nameof(counts));
        var order = Enumerable.Range(0, source.Count).ToArray();
        new Random(seed).Shuffle(order);
        var parts = new Subset[counts.Length];
        int start = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            parts[i] = new Subset(source, order[start..(start + counts[i])]);
            start += counts[i];
        }
        return parts;
    }

    /// <summary>
    /// Splits by fractions that add up to 1 (as PyTorch: each part gets ⌊fraction · N⌋ samples, and the remainder goes one
    /// sample at a time to the parts in order).
    /// </summary>
    /// <exception cref="ArgumentException">A fraction is negative, or they do not add up to 1.</exception>
    public static Subset[] RandomSplit(IDataset source, double[] fractions, int seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(fractions);
        if (fractions.Length == 0 || fractions.Any(f => !(f >= 0)) || Math.Abs(fractions.Sum() - 1) > 1e-6)
            throw new ArgumentException($"RandomSplit: fractions [{string.Join(", ", fractions)}] must be non-negative and add up to 1.", nameof(fractions));
        var counts = fractions.Select(f => (int)Math.Floor(f * source.Count)).ToArray();
        int remainder = source.Count - counts.Sum();
        for (int i = 0; remainder > 0; i = (i + 1) % counts.Length, remainder--) counts[i]++;
        return RandomSplit(source, counts, seed);
    }
}

/// <summary>One mini-batch: features on the device, labels on the host (and as an index tensor), targets on the device.</summary>
public sealed class Batch : IDisposable
{
    /// <summary>A batch of features <paramref name="x"/> [B, ...] with optional labels and targets (the batch owns the tensors).</summary>
    /// <exception cref="ArgumentException">The label count or the targets' first axis differ from the batch size.</exception>
    public Batch(Tensor x, int[]? labels = null, Tensor? targets = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank < 1) throw new ArgumentException($"Batch: features {Shape.Format(x.Shape)} need a batch axis first.", nameof(x));
        if (labels != null && labels.Length != x.Shape[0])
            throw new ArgumentException($"Batch: {x.Shape[0]} samples but {labels.Length} labels.", nameof(labels));
        if (targets != null && (targets.Rank < 1 || targets.Shape[0] != x.Shape[0]))
            throw new ArgumentException($"Batch: features {Shape.Format(x.Shape)} and targets {Shape.Format(targets.Shape)} differ in batch size.", nameof(targets));
        X = x;
        Labels = labels;
        LabelIndex = labels == null ? null : new IndexTensor(labels);
        Targets = targets;
    }

    /// <summary>Features [B, SampleShape...].</summary>
    public Tensor X { get; }
    /// <summary>Labels, or null.</summary>
    public int[]? Labels { get; }
    /// <summary>Labels as an index tensor (for the fused cross-entropy), or null.</summary>
    public IndexTensor? LabelIndex { get; }
    /// <summary>Targets [B, TargetShape...], or null.</summary>
    public Tensor? Targets { get; }
    /// <summary>Number of samples in the batch.</summary>
    public int Size => X.Shape[0];

    /// <summary>Frees the batch's device memory.</summary>
    public void Dispose()
    {
        X.Dispose();
        Targets?.Dispose();
        LabelIndex?.Dispose();
    }
}

/// <summary>
/// Iterates a data set in mini-batches, reshuffled every epoch from a seed: epoch e visits the samples in the order of
/// a shuffle seeded by seed + e, so a run is reproducible and any epoch can be replayed or resumed by setting
/// <see cref="Epoch"/>.
/// </summary>
public sealed class DataLoader
{
    private readonly IDataset data;
    private int epoch;

    /// <summary>
    /// Creates the loader. Batches go to <paramref name="device"/>; by default to the data's own device (a
    /// <see cref="TensorDataset"/>) or <see cref="Kernels.Device.Default"/>. With a <paramref name="sampler"/>
    /// (data-parallel training), <paramref name="batchSize"/> is the global batch, and each batch the loader yields is
    /// this rank's share of it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is not positive.</exception>
    public DataLoader(IDataset data, int batchSize, bool shuffle = true, int seed = 0, bool dropLast = false, Kernels.Device? device = null,
        DistributedSampler? sampler = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"DataLoader: batch size must be positive, got {batchSize}.");
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("DataLoader: the data set has no samples.", nameof(data));
        this.data = data;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        Device = device ?? data.Device ?? Kernels.Device.Default;
        Sampler = sampler;
    }

    /// <summary>The data set iterated.</summary>
    public IDataset Data => data;

    /// <summary>This rank's share of every global batch, or null for a single process.</summary>
    public DistributedSampler? Sampler { get; }

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Whether each epoch visits samples in a new random order.</summary>
    public bool Shuffle { get; }
    /// <summary>Base seed of the shuffles.</summary>
    public int Seed { get; }
    /// <summary>Whether a last, smaller batch is skipped.</summary>
    public bool DropLast { get; }
    /// <summary>Where batches are placed.</summary>
    public Kernels.Device Device { get; }

    /// <summary>
    /// The epoch the next <see cref="NextEpoch"/> produces, counted from 0 (it advances by one per call). Set it to resume
    /// a run exactly: after epochs 0..k-1 have been trained, Epoch = k gives the order epoch k would have had.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set below 0.</exception>
    public int Epoch
    {
        get => epoch;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            epoch = value;
        }
    }

    /// <summary>Number of batches per epoch (global batches with a sampler; a last one smaller than the rank count is skipped).</summary>
    public int BatchCount => DropLast || (Sampler != null && data.Count % BatchSize < Sampler.Ranks)
        ? data.Count / BatchSize
        : (data.Count + BatchSize - 1) / BatchSize;

    /// <summary>The sample order of epoch <paramref name="epochIndex"/> (what <see cref="NextEpoch"/> visits then).</summary>
    public int[] Order(int epochIndex)
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        if (Shuffle) new Random(Seed + epochIndex).Shuffle(order);
        return order;
    }

    /// <summary>The batches of the next epoch (the caller disposes each batch, or a <see cref="TensorScope"/> does).</summary>
    public IEnumerable<Batch> NextEpoch()
    {
        var order = Order(epoch);
        epoch++;
        return Batches(order);
    }

    private IEnumerable<Batch> Batches(int[] order)
    {
        for (int start = 0; start < order.Length; start += BatchSize)
        {
            int n = Math.Min(BatchSize, order.Length - start);
            if (n < BatchSize && DropLast) yield break;
            int first = start;
            if (Sampler != null)
            {
                (int offset, n) = Sampler.Share(n);
                if (n == 0) yield break;
                first += offset;
            }
            yield return data.GetBatch(order.AsSpan(first, n), Device);
        }
    }
}
