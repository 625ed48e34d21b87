using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>What the profiled code spent in one kernel-set entry point.</summary>
/// <param name="Op">The entry point: a core call (Gemm, Binary, ...) or a capability call (OptimizerKernels.AdamStep).</param>
/// <param name="Calls">Calls made.</param>
/// <param name="Time">Wall time inside the calls (the device synchronised after each when the profiler was asked to).</param>
/// <param name="Launches">Kernel launches they made (<see cref="DeviceCounters.KernelLaunches"/>).</param>
/// <param name="Allocations">Buffers allocated inside them (scratch).</param>
public sealed record ProfileEntry(string Op, long Calls, TimeSpan Time, long Launches, long Allocations);

/// <summary>
/// A profiler for eager code, in the spirit of <c>torch.profiler</c>: while it is open, every kernel-set call that
/// the current execution flow makes on its device is timed and counted per entry point, with the launches and
/// allocations it caused, and the allocations ops make for their results. Usage:
/// <c>using (var p = Profiler.Start(device)) step(); Console.Write(p.Report());</c>.
/// </summary>
public sealed class Profiler : IDisposable
{
    private readonly Dictionary<string, (long Calls, long Ticks, long Launches, long Allocations)> entries = new();
    private readonly Device device;
    private readonly bool synchronize;
    private readonly IDisposable scope;
    private readonly Stopwatch wall = Stopwatch.StartNew();
    private long resultAllocations;

    private Profiler(Device device, bool synchronize)
    {
        this.device = device;
        this.synchronize = synchronize;
        scope = device.UseKernels(k => ProfilingKernelSet.Create(k, this));
    }

    /// <summary>
    /// Starts profiling the kernel calls that the current execution flow makes on <paramref name="device"/>. With
    /// <paramref name="synchronize"/> the device is waited for after each call, so an asynchronous device's time lands
    /// on the call that queued the work (the CPU set is synchronous either way).
    /// </summary>
    public static Profiler Start(Device device, bool synchronize = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        return new Profiler(device, synchronize);
    }

    /// <summary>The entry points called so far, most time first.</summary>
    public IReadOnlyList<ProfileEntry> Entries
    {
        get
        {
            lock (entries)
                return entries.Select(e => new ProfileEntry(e.Key, e.Value.Calls, TimeSpan.FromTicks(e.Value.Ticks * TimeSpan.TicksPerSecond / Stopwatch.Frequency),
                    e.Value.Launches, e.Value.Allocations)).OrderByDescending(e => e.Time).ToList();
        }
    }

    /// <summary>Buffers allocated through the kernel set outside its calls: op results, gradients, state.</summary>
    public long ResultAllocations => Interlocked.Read(ref resultAllocations);

    /// <summary>Wall time since the profiler started.</summary>
    public TimeSpan Elapsed => wall.Elapsed;

    /// <summary>A table: per entry point its calls, time (and share of the profiled time), launches and allocations.</summary>
    public string Report()
    {
        var list = Entries;
        double total = list.Sum(e => e.Time.TotalMilliseconds);
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(ci, $"{"op",-34} {"calls",7} {"time ms",10} {"share",6} {"launches",9} {"allocs",7}");
        foreach (var e in list)
            sb.AppendLine(ci, $"{e.Op,-34} {e.Calls,7} {e.Time.TotalMilliseconds,10:F3} {(total > 0 ? e.Time.TotalMilliseconds / total : 0),6:P0} {e.Launches,9} {e.Allocations,7}");
        sb.AppendLine(ci, $"{"total in kernels",-34} {list.Sum(e => e.Calls),7} {total,10:F3} {"",6} {list.Sum(e => e.Launches),9} {list.Sum(e => e.Allocations),7}");
        sb.AppendLine(ci, $"allocations of results (outside kernels): {ResultAllocations}; wall time {Elapsed.TotalMilliseconds:F3} ms");
        return sb.ToString();
    }

    /// <summary>Stops profiling (the kernel set in force before <see cref="Start"/> is back).</summary>
    public void Dispose()
    {
        wall.Stop();
        scope.Dispose();
    }

    private void Record(string op, long ticks, long launches, long allocations)
    {
        lock (entries)
        {
            var e = entries.GetValueOrDefault(op);
            entries[op] = (e.Calls + 1, e.Ticks + ticks, e.Launches + launches, e.Allocations + allocations);
        }
    }

    /// <summary>The decorator that times each call.</summary>
    internal class ProfilingKernelSet : KernelSetDecorator
    {
        private Profiler profiler = null!;

        public static IKernelSet Create(IKernelSet inner, Profiler profiler) => Create<ProfilingKernelSet>(inner, p => p.profiler = profiler);

        /// <inheritdoc />
        protected override string Suffix => "+profiling";

        /// <inheritdoc />
        protected override void Allocated(object buffer) => Interlocked.Increment(ref profiler.resultAllocations);

        /// <inheritdoc />
        protected override object? Forward(MethodInfo method, object?[] args, Func<object?> run)
        {
            var counters = profiler.device.Counters;
            long launches = counters.KernelLaunches, allocations = counters.Allocations;
            long start = Stopwatch.GetTimestamp();
            var result = run();
            if (profiler.synchronize) Inner.Synchronize();
            profiler.Record(NameOf(method), Stopwatch.GetTimestamp() - start, counters.KernelLaunches - launches, counters.Allocations - allocations);
            return result;
        }
    }
}
