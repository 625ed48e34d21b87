using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// The ILGPU kernel set: every op as an ILGPU kernel, compiled once per accelerator (on first use) and cached as a
/// typed launcher. Runs on CUDA, OpenCL and ILGPU's CPU accelerator (an emulator, used to prove the kernels correct).
/// </summary>
/// <remarks>
/// All kernels are explicitly grouped with grid-stride loops, so the host chooses the launch shape per backend:
/// on GPUs 256-thread groups, 256-thread shared-memory trees and 16 x 16-thread GEMM groups (64 x 64 tiles of C,
/// 4 x 4 per thread); on the CPU emulator, which runs one OS thread per emulated thread and hands control through
/// every thread of a group at each barrier, tiny groups on one emulated multiprocessor (see
/// <see cref="IlgpuCpuOptions"/>). Launches and kernel loads are serialised by a lock, so one kernel set may be
/// shared by several threads.
/// </remarks>
public sealed partial class IlgpuKernelSet : IKernelSet, IDisposable
{
    private readonly object gate = new();
    private readonly Context context;
    private readonly Accelerator accelerator;
    private readonly IlgpuMemoryPool pool;
    private bool disposed;

    /// <summary>Threads per group of the 1-D (elementwise, per-line) kernels.</summary>
    private readonly int groupSize;
    /// <summary>Upper bound on groups of a 1-D launch (the grid-stride loops cover the rest).</summary>
    private readonly int maxGroups;
    /// <summary>Threads per group of the shared-memory tree kernels (a power of two).</summary>
    private readonly int treeGroupSize;
    /// <summary>Edge g of the GEMM group (g x g threads computing a 4g x 4g tile of C).</summary>
    private readonly int gemmGroup;
    /// <summary>Width of the K slab the GEMM stages in shared memory per step.</summary>
    private readonly int gemmSlab;
    /// <summary>Upper bound on groups of a GEMM launch; 0 = one group per tile.</summary>
    private readonly int gemmMaxGroups;
    /// <summary>Longest power-of-two complex FFT done in shared memory; longer ones run pass by pass over global memory.</summary>
    private readonly int fftSharedMax;

    internal IlgpuKernelSet(Device device, DeviceKind kind)
        : this(device, kind, kind == DeviceKind.IlgpuCpu ? IlgpuCpuOptions.FromEnvironment() : null) { }

    /// <summary>
    /// Creates a kernel set; for <see cref="DeviceKind.IlgpuCpu"/>, <paramref name="cpuOptions"/> overrides the
    /// emulator's shape and launch sizes (tests use it to run the GPU launch shapes, e.g. 16 x 16 GEMM groups, on the
    /// emulator).
    /// </summary>
    internal IlgpuKernelSet(Device device, DeviceKind kind, IlgpuCpuOptions? cpuOptions)
    {
        Device = device;
        Kind = kind;
        switch (kind)
        {
            case DeviceKind.IlgpuCpu:
            {
                var o = cpuOptions ?? new IlgpuCpuOptions();
                o.Validate();
                var cpu = new CPUDevice(o.ThreadsPerWarp, o.WarpsPerMultiprocessor, o.Multiprocessors);
                context = Context.Create(b => IlgpuContextSetup.Configure(b.CPU(cpu)));
                accelerator = CreateOrDispose(context, c => cpu.CreateCPUAccelerator(c, CPUAcceleratorMode.Parallel));
                groupSize = o.GroupSize;
                maxGroups = o.Multiprocessors;
                treeGroupSize = o.TreeGroupSize;
                gemmGroup = o.GemmGroup;
                gemmSlab = o.GemmSlab;
                gemmMaxGroups = o.Multiprocessors;
                fftSharedMax = o.FftSharedMax;
                pool = new IlgpuMemoryPool(accelerator, device.Counters, o.MaxCachedBytes ?? IlgpuMemoryPool.DefaultLimit(accelerator, kind));
                break;
            }
            case DeviceKind.Cuda:
            case DeviceKind.OpenCL:
            {
                var type = kind == DeviceKind.Cuda ? AcceleratorType.Cuda : AcceleratorType.OpenCL;
                context = Context.Create(b => IlgpuContextSetup.Configure(kind == DeviceKind.Cuda ? b.Cuda() : b.OpenCL()));
                accelerator = CreateOrDispose(context, c =>
                    (c.Devices.FirstOrDefault(d => d.AcceleratorType == type)
                        ?? throw new InvalidOperationException($"ilgpu: no {type} device found.")).CreateAccelerator(c));
                groupSize = Math.Min(256, accelerator.MaxNumThreadsPerGroup);
                maxGroups = Math.Max(1, accelerator.NumMultiprocessors) * 8;
                treeGroupSize = PowerOfTwoAtMost(Math.Min(256, accelerator.MaxNumThreadsPerGroup));
                gemmGroup = accelerator.MaxNumThreadsPerGroup >= 256 ? 16 : 8;
                gemmSlab = IlgpuKernels.MaxGemmSlab;
                gemmMaxGroups = 0;
                fftSharedMax = IlgpuKernels.MaxFftShared;
                pool = new IlgpuMemoryPool(accelerator, device.Counters, IlgpuMemoryPool.DefaultLimit(accelerator, kind));
                break;
            }
            default:
                throw new ArgumentException($"IlgpuKernelSet: {kind} is not an ILGPU device kind.", nameof(kind));
        }
    }

    /// <summary>The device this kernel set serves.</summary>
    public Device Device { get; }

    /// <summary>Which ILGPU backend.</summary>
    public DeviceKind Kind { get; }

    /// <summary>The ILGPU accelerator (for diagnostics and benchmarks).</summary>
    internal Accelerator Accelerator => accelerator;

    /// <inheritdoc />
    public string Name => Kind switch
    {
        DeviceKind.IlgpuCpu => "ilgpu-cpu",
        DeviceKind.Cuda => "ilgpu-cuda",
        _ => "ilgpu-opencl",
    };

    /// <inheritdoc />
    public DeviceBuffer<float> Allocate(long length)
    {
        lock (gate)
        {
            ThrowIfDisposed("Allocate");
            return new IlgpuBuffer<float>(this, pool, length);
        }
    }

    /// <inheritdoc />
    public DeviceBuffer<int> AllocateInt(long length)
    {
        lock (gate)
        {
            ThrowIfDisposed("AllocateInt");
            return new IlgpuBuffer<int>(this, pool, length);
        }
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        lock (gate)
        {
            ThrowIfDisposed("Synchronize");
            accelerator.Synchronize();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            accelerator.Synchronize();
            pool.Dispose();
            accelerator.Dispose();
            context.Dispose();
        }
    }

    /// <summary>The caching allocator behind this set's buffers.</summary>
    internal IlgpuMemoryPool Pool => pool;

    /// <summary>Frees the device memory the caching allocator keeps for reuse; returns the bytes released.</summary>
    internal long TrimCache() => pool.Trim();

    /// <summary>Creates the accelerator, disposing the context if that fails.</summary>
    private static Accelerator CreateOrDispose(Context context, Func<Context, Accelerator> create)
    {
        try
        {
            return create(context);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private void ThrowIfDisposed(string op)
    {
        if (disposed) throw new ObjectDisposedException(nameof(IlgpuKernelSet), $"{Name}.{op}: the ILGPU kernel set was disposed.");
    }

    private static int PowerOfTwoAtMost(int n)
    {
        int p = 1;
        while (p * 2 <= n) p *= 2;
        return p;
    }

    // ---- argument checks (cheap, host side: kernels cannot throw) ----

    /// <summary>The view behind a buffer of this accelerator, at least <paramref name="minLength"/> long.</summary>
    private ArrayView<T> View<T>(DeviceBuffer<T> buffer, long minLength, string op, string name) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        if (buffer is not IlgpuBuffer<T> ib || !ReferenceEquals(ib.Owner, this))
            throw new ArgumentException(
                $"{Name}.{op}: buffer '{name}' lives on '{buffer.Device.Name}', not on this ILGPU accelerator ({Name}).", name);
        ib.ThrowIfDisposed(op);
        if (buffer.Length < minLength)
            throw new ArgumentException($"{Name}.{op}: buffer '{name}' holds {buffer.Length} elements, {minLength} are needed.", name);
        return ib.View;
    }

    private static void CheckShape(int[] shape, string op, string name)
    {
        ArgumentNullException.ThrowIfNull(shape, name);
        foreach (var s in shape)
            if (s < 0) throw new ArgumentException($"{op}: shape {Layout.Fmt(shape)} of '{name}' has a negative size.", name);
    }

    // ---- launch shapes ----

    /// <summary>A 1-D launch covering <paramref name="n"/> work items with grid-stride loops.</summary>
    private KernelConfig Config1D(long n)
    {
        long groups = Math.Clamp((n + groupSize - 1) / groupSize, 1, maxGroups);
        return new KernelConfig(new Index1D((int)groups), new Index1D(groupSize));
    }

    /// <summary>
    /// A launch of tree groups, one group per line for up to <see cref="maxGroups"/> lines. Group size: the tree group
    /// size on the emulator; on GPUs about a quarter of the line, a power of two from one warp to the tree group size.
    /// </summary>
    private KernelConfig ConfigTree(long lines, long lineLength)
    {
        long groups = Math.Clamp(lines, 1, maxGroups);
        int size = Kind == DeviceKind.IlgpuCpu
            ? treeGroupSize
            : Math.Clamp(PowerOfTwoAtMost((int)Math.Clamp(lineLength / 4, 1, int.MaxValue)), Math.Min(accelerator.WarpSize, treeGroupSize), treeGroupSize);
        return new KernelConfig(new Index1D((int)groups), new Index1D(size));
    }

    /// <summary>
    /// Whether a line-wise op should use one group per line (few long lines) rather than one thread per line.
    /// </summary>
    /// <remarks>
    /// On a GPU a group per line pays off from a few warps' worth of elements (128) while there are fewer lines than
    /// threads in flight: its loads are coalesced, where a thread per line strides through memory. The emulator has few
    /// threads, so its bound is a small constant instead: up to 7 long lines take the tree path, which keeps it
    /// exercised by tests.
    /// </remarks>
    private bool PreferTree(long lines, long lineLength) => Kind == DeviceKind.IlgpuCpu
        ? lineLength >= 4L * treeGroupSize && lines < Math.Max((long)groupSize * maxGroups, 8)
        : lineLength >= 4L * accelerator.WarpSize && lines < (long)groupSize * maxGroups;

    /// <summary>Whether the group reductions use warp shuffles (not on OpenCL, where they need subgroup support).</summary>
    private bool shuffles => Kind != DeviceKind.OpenCL;

    // ---- kernel cache: each kernel is compiled once per accelerator, on first use (counted in Device.Counters.KernelLoads) ----

    private T Kernel<T>(ref T? slot, Func<Accelerator, T> load) where T : class
    {
        var k = Volatile.Read(ref slot);
        if (k != null) return k;
        lock (gate)
        {
            ThrowIfDisposed("load kernel");
            return slot ??= Timed(load);
        }
    }

    /// <summary>Runs a kernel load (under the lock), counting it and its time on the device's counters.</summary>
    private T Timed<T>(Func<Accelerator, T> load)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var kernel = load(accelerator);
        Device.Counters.RecordKernelLoad(System.Diagnostics.Stopwatch.GetTimestamp() - start);
        return kernel;
    }

    /// <summary>The generic elementwise kernels, compiled once per accelerator and op struct type.</summary>
    private enum ElementwiseKernel
    {
        /// <summary><see cref="IlgpuKernels.Unary{TOp}"/>.</summary>
        Unary,
        /// <summary><see cref="IlgpuKernels.Zip{TOp}"/>.</summary>
        Zip,
        /// <summary><see cref="IlgpuKernels.Binary{TOp}"/>.</summary>
        Binary,
        /// <summary><see cref="IlgpuKernels.Tree{TTree}"/>.</summary>
        Tree,
        /// <summary><see cref="IlgpuKernels.BroadcastTree{TTree}"/>.</summary>
        BroadcastTree,
        /// <summary><see cref="IlgpuKernels.ReduceThread{TSource}"/> over a <see cref="TreeSource{TTree}"/>.</summary>
        TreeReduceThread,
        /// <summary><see cref="IlgpuKernels.ReduceGroup{TShuffle, TSource}"/> over a <see cref="TreeSource{TTree}"/>.</summary>
        TreeReduceGroup,
        /// <summary><see cref="IlgpuKernels.ReducePairThread{TSource}"/> over a <see cref="TreePairSource{TFirst, TSecond}"/>.</summary>
        TreeReducePairThread,
        /// <summary><see cref="IlgpuKernels.ReducePairGroup{TShuffle, TSource}"/> over a <see cref="TreePairSource{TFirst, TSecond}"/> or (the fold of split partials) a <see cref="PairViewSource"/>.</summary>
        TreeReducePairGroup,
        /// <summary><see cref="IlgpuKernels.ReduceThenMapThread{TSource, TMap}"/> over a <see cref="TreeSource{TTree}"/>.</summary>
        ReduceThenMapThread,
        /// <summary><see cref="IlgpuKernels.ReduceThenMapGroup{TShuffle, TSource, TMap}"/> over a <see cref="TreeSource{TTree}"/>.</summary>
        ReduceThenMapGroup,
    }

    /// <summary>Loaded specialisations of the generic kernels, by kernel and op struct type.</summary>
    private readonly ConcurrentDictionary<(ElementwiseKernel Kernel, Type Op), Delegate> specialised = new();

    /// <summary>
    /// The launcher of <paramref name="kernel"/> specialised for <typeparamref name="TOp"/>: compiled on first use (ILGPU
    /// compiles one kernel per struct type argument) and cached for the life of the accelerator.
    /// </summary>
    private TLauncher Specialised<TOp, TLauncher>(ElementwiseKernel kernel, Func<Accelerator, TLauncher> load) where TLauncher : Delegate =>
        Cached(specialised, (kernel, typeof(TOp)), load);

    /// <summary>The kernel <paramref name="cache"/> holds under <paramref name="key"/>, loaded (and counted) on first use.</summary>
    private TLauncher Cached<TKey, TLauncher>(ConcurrentDictionary<TKey, Delegate> cache, TKey key, Func<Accelerator, TLauncher> load)
        where TKey : notnull where TLauncher : Delegate
    {
        if (cache.TryGetValue(key, out var k)) return (TLauncher)k;
        lock (gate)
        {
            ThrowIfDisposed("load kernel");
            if (!cache.TryGetValue(key, out k)) cache[key] = k = Timed(load);
            return (TLauncher)k;
        }
    }

    /// <summary>Op struct types with a loaded specialisation of the generic kernel of that name ("Unary", "Zip", "Binary", "Tree", "BroadcastTree", "TreeReduceThread", "TreeReduceGroup", "TreeReducePairThread", "TreeReducePairGroup"; the pair kernels by source type).</summary>
    internal IEnumerable<Type> SpecialisedOps(string kernel) =>
        specialised.Keys.Where(k => k.Kernel.ToString() == kernel).Select(k => k.Op);

    /// <summary>
    /// Runs a launch under the lock and keeps the buffer objects in <paramref name="keep"/> reachable until it has
    /// returned: a kernel holds only raw views, and a buffer whose caller no longer references it (an input used
    /// for the last time) could otherwise be finalised, its memory freed, while the kernel still reads it. CPU
    /// emulator launches return only once the kernel has run (measured), so this covers the whole run there; GPU
    /// launches are asynchronous, and a freed buffer's memory is reused only by work queued after it on the same
    /// stream (see <see cref="IlgpuMemoryPool"/>). Each call counts one launch on the device's counters.
    /// </summary>
    private void Launch(string op, Action run, params ReadOnlySpan<object?> keep)
    {
        lock (gate)
        {
            ThrowIfDisposed(op);
            run();
        }
        Device.Counters.RecordLaunch();
        foreach (var o in keep) GC.KeepAlive(o);
    }
}

/// <summary>
/// Shape of ILGPU's CPU emulator and the launch sizes used on it. Defaults: CPUDevice(4, 16, 1), one emulated
/// multiprocessor. The emulator runs one OS thread per emulated thread: with more than 32 threads per multiprocessor
/// ILGPU starts them lazily, up to the largest group launched so far, every launch wakes every started thread, and
/// every group barrier hands control through all of a group's threads. So the capacity is generous (64) while
/// launches keep groups tiny: 1 thread for 1-D kernels (grid-stride loops do the rest), 2 x 2 for GEMM (8 x 8
/// tiles, 16-wide K slabs) and 4 for the shared-memory trees; the 2 x 2 and 4-thread groups still make the
/// emulator prove the cooperative (shared memory + barrier) code paths. One multiprocessor, because each extra
/// one adds OS-thread wake-ups to every launch (measured: 20-35 us per launch with one, 0.2-2 ms with two on a
/// loaded two-core machine), and test shapes are too small to gain from a second core.
/// </summary>
internal sealed record IlgpuCpuOptions
{
    public int ThreadsPerWarp { get; init; } = 4;
    public int WarpsPerMultiprocessor { get; init; } = 16;
    public int Multiprocessors { get; init; } = 1;
    /// <summary>Threads per group of the 1-D kernels.</summary>
    public int GroupSize { get; init; } = 1;
    /// <summary>Threads per group of the tree kernels (a power of two).</summary>
    public int TreeGroupSize { get; init; } = 4;
    /// <summary>GEMM group edge g (a power of two; the tile is 4g, at most 64).</summary>
    public int GemmGroup { get; init; } = 2;
    /// <summary>K-slab width of the mapped GEMM (a power of two, at most 16).</summary>
    public int GemmSlab { get; init; } = 16;
    /// <summary>
    /// Longest complex FFT done in shared memory (a power of two, at most <see cref="IlgpuKernels.MaxFftShared"/>); tests
    /// lower it to reach the pass-by-pass path with small lengths.
    /// </summary>
    public int FftSharedMax { get; init; } = IlgpuKernels.MaxFftShared;
    /// <summary>Bound on the bytes the caching allocator keeps (null: <see cref="IlgpuMemoryPool.DefaultLimit"/>); tests lower it.</summary>
    public long? MaxCachedBytes { get; init; }

    /// <summary>Name of the environment variable that picks a profile: coop (default), fast or gpu.</summary>
    public const string EnvironmentVariable = "ENGINE_ILGPU_CPU_PROFILE";

    /// <summary>The default profile: single-thread 1-D groups, 2 x 2 GEMM groups, 4-thread trees.</summary>
    public static IlgpuCpuOptions Cooperative { get; } = new();

    /// <summary>
    /// Every group a single thread (GEMM 1 x 1 groups computing 4 x 4 tiles, 1-thread trees): the cheapest launches
    /// (no extra emulation thread is ever woken) but no inter-thread cooperation is exercised.
    /// </summary>
    public static IlgpuCpuOptions Fast { get; } = new() { TreeGroupSize = 1, GemmGroup = 1 };

    /// <summary>
    /// The GPU launch shapes (256-thread 1-D groups and trees, 16 x 16 GEMM groups) on a 256-thread emulated
    /// multiprocessor: proves exactly what a GPU runs, at a high price per barrier.
    /// </summary>
    public static IlgpuCpuOptions GpuShapes { get; } = new()
    {
        ThreadsPerWarp = 32, WarpsPerMultiprocessor = 8, GroupSize = 256, TreeGroupSize = 256, GemmGroup = 16,
    };

    /// <summary>The profile named by <see cref="EnvironmentVariable"/>, else <see cref="Cooperative"/>.</summary>
    public static IlgpuCpuOptions FromEnvironment()
    {
        var v = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return v?.Trim().ToLowerInvariant() switch
        {
            null or "" or "coop" => Cooperative,
            "fast" => Fast,
            "gpu" => GpuShapes,
            _ => throw new ArgumentException($"{EnvironmentVariable}: unknown profile '{v}'; use coop, fast or gpu."),
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> for shapes the kernels cannot run.</summary>
    public void Validate()
    {
        static bool Pow2(int v) => v > 0 && (v & (v - 1)) == 0;
        int capacity = ThreadsPerWarp * WarpsPerMultiprocessor;
        if (ThreadsPerWarp < 1 || WarpsPerMultiprocessor < 1 || Multiprocessors < 1 || GroupSize < 1 || GroupSize > capacity)
            throw new ArgumentException($"IlgpuCpuOptions: invalid device/group shape {this}.");
        if (!Pow2(TreeGroupSize) || TreeGroupSize > Math.Min(capacity, IlgpuKernels.MaxTreeGroup))
            throw new ArgumentException($"IlgpuCpuOptions: tree group {TreeGroupSize} must be a power of two within {capacity} threads.");
        if (!Pow2(GemmGroup) || IlgpuKernels.GemmMicro * GemmGroup > IlgpuKernels.MaxGemmTile || GemmGroup * GemmGroup > capacity)
            throw new ArgumentException($"IlgpuCpuOptions: GEMM group {GemmGroup} must be a power of two with a tile of at most {IlgpuKernels.MaxGemmTile} and {capacity} threads.");
        if (!Pow2(FftSharedMax) || FftSharedMax > IlgpuKernels.MaxFftShared)
            throw new ArgumentException($"IlgpuCpuOptions: FFT shared length {FftSharedMax} must be a power of two of at most {IlgpuKernels.MaxFftShared}.");
        if (!Pow2(GemmSlab) || GemmSlab > IlgpuKernels.MaxGemmSlab)
            throw new ArgumentException($"IlgpuCpuOptions: GEMM slab {GemmSlab} must be a power of two of at most {IlgpuKernels.MaxGemmSlab}.");
    }
}
