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
    private static DeviceProbe? probe;
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
    /// back to the system or the GPU driver; returns the bytes released. The CPU device also does this by itself after
    /// 10 s without allocations; an ILGPU device's caching allocator keeps its blocks until this call, a failed
    /// allocation, or the device's disposal. Buffers in use are not touched.
    /// </summary>
    public long TrimCache() => kernels switch
    {
        CpuKernelSet => CpuArrayPools.Trim(),
        IlgpuKernelSet ilgpu => ilgpu.TrimCache(),
        _ => 0,
    };

    /// <summary>True once disposed.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>The SIMD CPU device (always available).</summary>
    public static Device Cpu => Get(DeviceKind.Cpu);

    /// <summary>
    /// The device used when none is named: <c>ENGINE_DEVICE</c> if set, else the best available
    /// (CUDA &gt; OpenCL &gt; CPU). Choosing it raises <see cref="Selected"/> with the reason; a library never prints it.
    /// </summary>
    public static Device Default
    {
        get
        {
            lock (Gate)
            {
                if (defaultDevice is { IsDisposed: false }) return defaultDevice;
            }
            var selection = DeviceSelection.Choose(Environment.GetEnvironmentVariable(EnvironmentVariable), Probe());
            var d = Get(selection.Kind);
            lock (Gate)
            {
                defaultDevice = d;
                Selection = selection;
            }
            Selected?.Invoke(selection);
            return d;
        }
    }

    /// <summary>
    /// Raised when <see cref="Default"/> chooses its device, with the device and why (its <c>ToString()</c> is the
    /// one-line start-up message). Programs that want the message log it from here or print
    /// <see cref="DescribeSelection"/>.
    /// </summary>
    public static event Action<DeviceSelection>? Selected;

    /// <summary>The choice <see cref="Default"/> made, or null before it was first used.</summary>
    public static DeviceSelection? Selection { get; private set; }

    /// <summary>
    /// The one-line start-up message: which device <see cref="Default"/> uses and why, e.g.
    /// "Engine device: cpu (SIMD kernels (AVX2+FMA, 2 cores)); automatic: no GPU found (cuda: ...)". Chooses without
    /// creating the device when <see cref="Default"/> was not used yet.
    /// </summary>
    public static string DescribeSelection()
    {
        lock (Gate)
        {
            if (Selection != null && defaultDevice is { IsDisposed: false }) return Selection.ToString();
        }
        return DeviceSelection.Choose(Environment.GetEnvironmentVariable(EnvironmentVariable), Probe()).ToString();
    }

    /// <summary>The device an <c>ENGINE_DEVICE</c> value selects: <see cref="Parse"/> of it, or <see cref="Auto"/> when empty.</summary>
    public static Device Resolve(string? environmentValue) => Get(DeviceSelection.Choose(environmentValue, Probe()).Kind);

    /// <summary>The best available device: CUDA, else OpenCL, else the SIMD CPU.</summary>
    public static Device Auto() => Get(DeviceSelection.Choose(null, Probe()).Kind);

    /// <summary>Kinds usable on this machine (probed once: the CPU kinds always, GPUs when ILGPU finds a driver).</summary>
    public static IReadOnlyList<DeviceKind> Available() => Probe().Available;

    /// <summary>
    /// What the start-up probe found (run once per process): the usable kinds and, per kind, the device found or why
    /// none was. The CUDA driver is found as <c>libcuda.so</c> or <c>libcuda.so.1</c>, OpenCL as <c>libOpenCL.so</c> or
    /// <c>libOpenCL.so.1</c>.
    /// </summary>
    public static DeviceProbe Probe()
    {
        lock (Gate) return probe ??= DeviceProbe.Run();
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
        ArgumentNullException.ThrowIfNull(name);
        var kind = KindOf(name) ?? throw new ArgumentException(
            $"Device: unknown device name '{name}'. Known names: cpu, ilgpu-cpu, cuda, opencl; available here: {AvailableNames()}.");
        return Get(kind);
    }

    /// <summary>The kind named cpu, ilgpu-cpu, cuda or opencl (case-insensitive, trimmed), or null.</summary>
    public static DeviceKind? KindOf(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cpu" => DeviceKind.Cpu,
        "ilgpu-cpu" => DeviceKind.IlgpuCpu,
        "cuda" => DeviceKind.Cuda,
        "opencl" => DeviceKind.OpenCL,
        _ => null,
    };

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
