using System.Runtime.CompilerServices;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Warns, once per device, when the device memory held by live tensors grows steadily across training steps: the
/// sign of a loop without a <see cref="TensorScope"/> per step (every step's temporaries are left to the garbage
/// collector, which never sees device memory) or of one scope around the whole loop (nothing is freed until it
/// ends). Cheap: the bytes in use are read every <see cref="CheckEvery"/> optimizer steps (<see cref="StepCompleted"/>); only while they keep
/// growing is one tensor in <see cref="SampleEvery"/> stamped with where it was created, so the warning can name the
/// code that made the tensors still alive.
/// </summary>
public static class LeakDetector
{
    /// <summary>Optimizer steps between two readings of the device's bytes in use.</summary>
    public const int CheckEvery = 16;

    /// <summary>Readings in a row that must each be higher than the one before for the warning.</summary>
    public const int GrowingReadings = 8;

    /// <summary>While growth is suspected, one created tensor in this many records its creation site.</summary>
    public const int SampleEvery = 16;

    /// <summary>Growth over the readings below this many bytes is not reported.</summary>
    public const long MinimumGrowthBytes = 64 * 1024;

    /// <summary>Turns the detector off (or on again); on by default.</summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>Where the warning goes (default: standard error). Set to capture it, e.g. into a log.</summary>
    public static Action<string> Warn { get; set; } = message => Console.Error.WriteLine(message);

    private sealed class DeviceState
    {
        public long Steps;
        public long LastBytes = -1;
        public long FirstGrowingBytes;
        public int Growing;
        public bool Warned;
    }

    private static readonly ConditionalWeakTable<Device, DeviceState> States = new();
    private static readonly List<(WeakReference<Tensor> Tensor, string Site)> Samples = [];
    private static volatile bool sampling;
    private static int created;

    /// <summary>True while creation sites are being sampled (read on every tensor creation, so kept cheap).</summary>
    internal static bool Sampling => sampling;

    /// <summary>
    /// Notes the end of a training step on <paramref name="device"/>: the optimizers call it after each step that
    /// updated parameters; a hand-written update loop may call it once per step too.
    /// </summary>
    public static void StepCompleted(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (!Enabled) return;
        var s = States.GetOrCreateValue(device);
        if (s.Warned || ++s.Steps % CheckEvery != 0) return;
        long bytes = device.Counters.BytesInUse;
        lock (s)
        {
            if (s.LastBytes >= 0 && bytes > s.LastBytes)
            {
                if (s.Growing++ == 0) s.FirstGrowingBytes = s.LastBytes;
            }
            else
            {
                s.Growing = 0;
                StopSampling();
            }
            s.LastBytes = bytes;
            if (s.Growing == GrowingReadings / 2) sampling = true;
            if (s.Growing < GrowingReadings || bytes - s.FirstGrowingBytes < MinimumGrowthBytes) return;
            s.Warned = true;
        }
        long steps = (long)CheckEvery * GrowingReadings;
        double perStep = (bytes - s.FirstGrowingBytes) / (double)steps;
        Warn($"warning: device memory in use on {device.Name} grew at every check for the last {steps} optimizer steps, "
            + $"by {perStep / 1024:F1} KB per step ({bytes / (1024.0 * 1024):F1} MB now): tensors are not being freed. Open a "
            + $"`using var scope = new TensorScope();` inside the loop, once per step (a scope around the whole loop frees nothing "
            + $"until it ends), and Keep() what must outlive the step. {Sites()}");
        StopSampling();
    }

    /// <summary>Called for every tensor created while <see cref="Sampling"/>.</summary>
    internal static void OnCreate(Tensor t)
    {
        if (Interlocked.Increment(ref created) % SampleEvery != 0) return;
        var site = AnomalyMode.CallerFrames();
        lock (Samples)
        {
            if (Samples.Count < 4096) Samples.Add((new WeakReference<Tensor>(t), site));
        }
    }

    private static string Sites()
    {
        lock (Samples)
        {
            var alive = Samples.Where(x => x.Tensor.TryGetTarget(out var t) && !t.IsDisposed).Select(x => x.Site).ToList();
            if (alive.Count == 0) return "No sampled tensor is still alive (the growth may be in buffers outside tensors).";
            var top = alive.GroupBy(x => x).OrderByDescending(g => g.Count()).Take(3)
                .Select(g => $"{g.Count()} of {alive.Count} were created {g.Key}");
            return "Of the tensors sampled while memory grew and still not disposed: " + string.Join("; ", top) + ".";
        }
    }

    private static void StopSampling()
    {
        sampling = false;
        lock (Samples) Samples.Clear();
    }

    /// <summary>Forgets every reading and warning (for tests).</summary>
    internal static void Reset()
    {
        foreach (var (device, _) in States) States.Remove(device);
        StopSampling();
    }
}
