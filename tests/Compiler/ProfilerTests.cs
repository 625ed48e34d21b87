using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Compilation;

/// <summary>The eager profiler: per entry point calls, launches and allocations add up to the device's counters.</summary>
[Collection("serial")]
public sealed class ProfilerTests
{
    [Fact]
    public void AnEagerStepIsCountedPerOpAndAddsUpToTheCounters()
    {
        var device = Device.Get(DeviceKind.Cpu);
        using var p = CompilerTests.Problem.Make("mlp-adam-cosine", device);
        using (var warm = p.Batch(0)) p.EagerStep(warm);
        using var batch = p.Batch(1);
        ((IndexTensor)batch.Y).On(device);
        var before = device.Counters.Snapshot();
        Profiler profiler;
        using (profiler = Profiler.Start(device)) p.EagerStep(batch);
        var step = device.Counters.Snapshot().Minus(before);
        var entries = profiler.Entries;
        Assert.Equal(step.KernelLaunches, entries.Sum(e => e.Launches));
        Assert.Equal(step.Allocations, entries.Sum(e => e.Allocations) + profiler.ResultAllocations);
        Assert.Equal(3 + 3 + 2, entries.Single(e => e.Op == "Gemm").Calls);
        Assert.Equal(6, entries.Single(e => e.Op == "OptimizerKernels.AdamStep").Calls);
        Assert.All(entries, e => Assert.True(e.Time >= TimeSpan.Zero));
        var report = profiler.Report();
        Assert.Contains("OptimizerKernels.AdamStep", report);
        Assert.Contains("total in kernels", report);
        // Closed: later calls are not profiled.
        p.EagerStep(batch);
        Assert.Equal(entries.Sum(e => e.Calls), profiler.Entries.Sum(e => e.Calls));
    }
}
