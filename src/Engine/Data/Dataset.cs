using Engine.Autodiff;

namespace Engine.Data;

/// <summary>
/// An in-memory data set: N samples of one shape as a flat row-major float array, with optional integer labels
/// (classification) or float targets (regression).
/// </summary>
public sealed class Dataset
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
}

/// <summary>One mini-batch: features on the device, labels on the host (and as an index tensor), targets on the device.</summary>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor x, int[]? labels, Tensor? targets)
    {
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
/// Iterates a <see cref="Dataset"/> in mini-batches, reshuffled every epoch from a seed (epoch e uses seed + e, so
/// a run is reproducible and independent of how many epochs came before).
/// </summary>
public sealed class DataLoader
{
    private readonly Dataset data;
    private int epoch;

    /// <summary>Creates the loader.</summary>
    public DataLoader(Dataset data, int batchSize, bool shuffle = true, int seed = 0, bool dropLast = false, Kernels.Device? device = null)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"DataLoader: batch size must be positive, got {batchSize}.");
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("DataLoader: the data set has no samples.", nameof(data));
        this.data = data;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        Device = device ?? Kernels.Device.Default;
    }

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

    /// <summary>Number of batches per epoch.</summary>
    public int BatchCount => DropLast ? data.Count / BatchSize : (data.Count + BatchSize - 1) / BatchSize;

    /// <summary>The batches of the next epoch (the caller disposes each batch, or a <see cref="TensorScope"/> does).</summary>
    public IEnumerable<Batch> NextEpoch()
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        if (Shuffle) new Random(Seed + epoch).Shuffle(order);
        epoch++;
        return Batches(order);
    }

    private IEnumerable<Batch> Batches(int[] order)
    {
        int ss = data.SampleSize;
        int ts = (int)Shape.Size(data.TargetShape);
        for (int start = 0; start < order.Length; start += BatchSize)
        {
            int n = Math.Min(BatchSize, order.Length - start);
            if (n < BatchSize && DropLast) yield break;
            var x = new float[n * ss];
            int[]? labels = data.Labels == null ? null : new int[n];
            float[]? targets = data.Targets == null ? null : new float[n * ts];
            for (int i = 0; i < n; i++)
            {
                int s = order[start + i];
                Array.Copy(data.Features, (long)s * ss, x, (long)i * ss, ss);
                if (labels != null) labels[i] = data.Labels![s];
                if (targets != null) Array.Copy(data.Targets!, (long)s * ts, targets, (long)i * ts, ts);
            }
            var xt = Tensor.FromArray(x, [n, .. data.SampleShape], Device);
            var tt = targets == null ? null : Tensor.FromArray(targets, [n, .. data.TargetShape], Device);
            yield return new Batch(xt, labels, tt);
        }
    }
}
