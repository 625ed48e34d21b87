using ILGPU;
using ILGPU.Runtime;
using Engine.Kernels.Cpu;
using Engine.Kernels.Ilgpu;

namespace Engine.Kernels;

/// <summary>The kinds of device a tensor can live on.</summary>
public enum DeviceKind
{
    /// <summary>The host CPU running the hand-written SIMD kernel set (the default without a GPU).</summary>
    Cpu,
    /// <summary>ILGPU's CPU accelerator running the ILGPU kernel set: an emulator, for proving GPU kernels correct.</summary>
    IlgpuCpu,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL GPU through ILGPU's OpenCL backend.</summary>
    OpenCL,
}

/// <summary>
/// A place where tensors live and kernels run. One instance per kind per process (<see cref="Get"/>), created on
/// first use. Choice: explicit (<see cref="Get"/>, <see cref="Parse"/>), by the environment variable
/// <c>ENGINE_DEVICE=cpu|ilgpu-cpu|cuda|opencl</c>, or automatic (CUDA &gt; OpenCL &gt; CPU) through <see cref="Default"/>.
/// </summary>
public sealed class Device : IDisposable
{
    /// <summary>Name of the environment variable that overrides <see cref="Default"/>.</summary>
    public const string EnvironmentVariable = "ENGINE_DEVICE";

    private static readonly object Gate = new();
    private static readonly Dictionary<DeviceKind, Device> Instances = new();
    private static IReadOnlyList<DeviceKind>? available;
    private static Device? defaultDevice;

    private readonly IKernelSet kernels;
    private readonly AsyncLocal<IKernelSet?> decorated = new();

    private Device(DeviceKind kind)
    {
        Kind = kind;
        if (kind == DeviceKind.Cpu)
        {
            kernels = new CpuKernelSet(this);
            Counters.UseCachedBytesSource(() => CpuArrayPools.PooledBytes);
        }
        else
        {
            kernels = new IlgpuKernelSet(this, kind);
        }
        Name = kind switch
        {
            DeviceKind.Cpu => "cpu",
            DeviceKind.IlgpuCpu => "ilgpu-cpu",
            DeviceKind.Cuda => "cuda",
            _ => "opencl",
        };
    }

    /// <summary>What this device is.</summary>
    public DeviceKind Kind { get; }

    /// <summary>The name used by <see cref="Parse"/> and in error messages.</summary>
    public string Name { get; }

    /// <summary>
    /// The kernel set that runs ops on this device: its own, or the decorator that <see cref="UseKernels"/> installed
    /// for the current execution flow.
    /// </summary>
    public IKernelSet Kernels => decorated.Value ?? kernels;

    /// <summary>What this device has done: allocations, bytes in use, kernel launches, host copies.</summary>
    public DeviceCounters Counters { get; } = new();

    /// <summary>
    /// Routes this device's kernel calls made from the current execution flow (this thread, and the threads and tasks
    /// it starts while the scope is open) through a decorator of its kernel set until the returned scope is disposed;
    /// other threads keep the device's own set. <paramref name="decorate"/> receives the set in force (the device's own, or an outer
    /// decorator) and returns the one to use. Uses: recording every kernel call of a step, counting calls, or
    /// exposing only the core contract so that every op takes its composite fallback (see
    /// <see cref="KernelCapabilities"/>). Buffers still come from, and belong to, the device's own set.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="decorate"/> is null or returns null.</exception>
    public IDisposable UseKernels(Func<IKernelSet, IKernelSet> decorate)
    {
        ArgumentNullException.ThrowIfNull(decorate);
        var previous = decorated.Value;
        var next = decorate(previous ?? kernels)
                   ?? throw new ArgumentNullException(nameof(decorate), $"UseKernels: the decorator returned no kernel set for device '{Name}'.");
        decorated.Value = next;
        return new KernelScope(this, previous);
    }

    /// <summary>Puts the kernel set that was in force before a <see cref="UseKernels"/> call back.</summary>
    private sealed class KernelScope(Device device, IKernelSet? previous) : IDisposable
    {
        private bool done;

        public void Dispose()
        {
            if (done) return;
            done = true;
            device.decorated.Value = previous;
        }
    }

    /// <summary>
    /// Gives the memory the device keeps for reuse (freed buffers cached to make the next step's allocations cheap)
    /// back to the system; returns the bytes released. The CPU device also does this by itself after
    /// 10 s without allocations. Buffers in use are not touched.
    /// </summary>
    public long TrimCache() => Kind == DeviceKind.Cpu ? CpuArrayPools.Trim() : 0;

    /// <summary>True once disposed.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>The SIMD CPU device (always available).</summary>
    public static Device Cpu => Get(DeviceKind.Cpu);

    /// <summary>
    /// The device used when none is named: <c>ENGINE_DEVICE</c> if set, else the best available
    /// (CUDA &gt; OpenCL &gt; CPU).
    /// </summary>
    public static Device Default
    {
        get
        {
            lock (Gate)
            {
                if (defaultDevice is { IsDisposed: false }) return defaultDevice;
            }
            var d = Resolve(Environment.GetEnvironmentVariable(EnvironmentVariable));
            lock (Gate) defaultDevice = d;
            return d;
        }
    }

    /// <summary>The device an <c>ENGINE_DEVICE</c> value selects: <see cref="Parse"/> of it, or <see cref="Auto"/> when empty.</summary>
    public static Device Resolve(string? environmentValue) =>
        string.IsNullOrWhiteSpace(environmentValue) ? Auto() : Parse(environmentValue);

    /// <summary>The best available device: CUDA, else OpenCL, else the SIMD CPU.</summary>
    public static Device Auto()
    {
        var kinds = Available();
        if (kinds.Contains(DeviceKind.Cuda)) return Get(DeviceKind.Cuda);
        if (kinds.Contains(DeviceKind.OpenCL)) return Get(DeviceKind.OpenCL);
        return Cpu;
    }

    /// <summary>Kinds usable on this machine (probed once: the CPU kinds always, GPUs when ILGPU finds a driver).</summary>
    public static IReadOnlyList<DeviceKind> Available()
    {
        lock (Gate)
        {
            if (available != null) return available;
            var list = new List<DeviceKind> { DeviceKind.Cpu, DeviceKind.IlgpuCpu };
            try
            {
                // Default() finds only the CPU when no GPU driver is present, without throwing.
                using var context = Context.Create(b => b.Default());
                if (context.Devices.Any(d => d.AcceleratorType == AcceleratorType.Cuda)) list.Add(DeviceKind.Cuda);
                if (context.Devices.Any(d => d.AcceleratorType == AcceleratorType.OpenCL)) list.Add(DeviceKind.OpenCL);
            }
            catch (Exception)
            {
                // A broken GPU driver leaves the CPU kinds; the probe never takes the process down.
            }
            available = list;
            return list;
        }
    }

    /// <summary>Names accepted by <see cref="Parse"/> for the available kinds, for error messages.</summary>
    public static string AvailableNames() => string.Join(", ", Available().Select(NameOf));

    /// <summary>The name of a kind: cpu, ilgpu-cpu, cuda, opencl.</summary>
    public static string NameOf(DeviceKind kind) => kind switch
    {
        DeviceKind.Cpu => "cpu",
        DeviceKind.IlgpuCpu => "ilgpu-cpu",
        DeviceKind.Cuda => "cuda",
        DeviceKind.OpenCL => "opencl",
        _ => kind.ToString(),
    };

    /// <summary>Parses cpu, ilgpu-cpu, cuda or opencl (case-insensitive) and returns that device.</summary>
    /// <exception cref="ArgumentException">The name is unknown or the device is unavailable; the message lists what is available.</exception>
    public static Device Parse(string name)
    {
        var kind = name.Trim().ToLowerInvariant() switch
        {
            "cpu" => DeviceKind.Cpu,
            "ilgpu-cpu" => DeviceKind.IlgpuCpu,
            "cuda" => DeviceKind.Cuda,
            "opencl" => DeviceKind.OpenCL,
            _ => throw new ArgumentException(
                $"Device: unknown device name '{name}'. Known names: cpu, ilgpu-cpu, cuda, opencl; available here: {AvailableNames()}."),
        };
        return Get(kind);
    }

    /// <summary>Returns the process-wide device of <paramref name="kind"/>, creating it on first use.</summary>
    /// <exception cref="InvalidOperationException">The device is not available here; the message lists what is.</exception>
    public static Device Get(DeviceKind kind)
    {
        if (!Available().Contains(kind))
            throw new InvalidOperationException(
                $"Device: '{NameOf(kind)}' is not available on this machine. Available: {AvailableNames()}.");
        lock (Gate)
        {
            if (Instances.TryGetValue(kind, out var d) && !d.IsDisposed) return d;
            d = new Device(kind);
            Instances[kind] = d;
            return d;
        }
    }

    /// <summary>Throws if this device was disposed.</summary>
    public void ThrowIfDisposed(string op)
    {
        if (IsDisposed) throw new ObjectDisposedException(nameof(Device), $"{op}: device '{Name}' was disposed.");
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>Frees the device's context and cached kernels; a later <see cref="Get"/> creates a new one.</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        (kernels as IDisposable)?.Dispose();
    }
}
