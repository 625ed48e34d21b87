using Engine.Autodiff;
using Engine.Kernels;
using Xunit.Abstractions;

namespace Engine.Tests.Compilation;

/// <summary>
/// What a replayed step costs the device, read from <see cref="Device.Counters"/> beside the eager step of the same
/// problem: no allocation at all, and the launch count the graph reports. Inputs are made (and labels uploaded)
/// before the measured window, as a data loader would.
/// </summary>
public abstract class CompilerCounterTests(ITestOutputHelper output)
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    /// <summary>Where the tests print what they measured.</summary>
    protected ITestOutputHelper Output { get; } = output;

    /// <summary>Kernel launches per kernel-set call (1 on the CPU set; the ILGPU set may launch several per call).</summary>
    protected virtual bool OneLaunchPerCall => true;

    [Theory]
    [InlineData("mlp-adam-cosine")]
    [InlineData("mixer-sgd-momentum")]
    [InlineData("fno1d-adamw")]
    [InlineData("spn-adam")]
    [InlineData("sam-adam")]
    public void AReplayedStepAllocatesNothing(string scenario)
    {
        const int measured = 5;
        var (eagerCost, replayed, graph, replays) = MeasureSteps(scenario, measured);
        Output.WriteLine($"{scenario} on {Device.Name}, per step: eager {eagerCost.KernelLaunches / measured} launches, {eagerCost.Allocations / measured} allocations; " +
                         $"compiled {replayed.KernelLaunches / measured} launches, {replayed.Allocations / (double)measured} allocations " +
                         $"({graph.ScratchAllocations} kernel scratch), {replayed.DeviceToHostCopies / measured} host reads inside kernels; " +
                         $"memory plan {graph.Temporaries} temporaries ({graph.TemporaryBytes} B) in {graph.Slots} slots ({graph.SlotBytes} B)");
        Assert.Equal(1 + measured, replays);
        Assert.True(graph.ScratchAllocations * measured == replayed.Allocations, $"replayed {replayed}; graph {graph}");
        if (Device.Kind == DeviceKind.Cpu) Assert.Equal(0, replayed.Allocations);
        // Copies a kernel set makes inside its own entry points (the ILGPU SPN kernels read sizes back) are its business;
        // the graph itself adds none.
        Assert.True(replayed.DeviceToHostCopies <= eagerCost.DeviceToHostCopies, $"replayed {replayed}, eager {eagerCost}");
        if (Device.Kind == DeviceKind.Cpu) Assert.Equal(0, replayed.DeviceToHostCopies);
        if (OneLaunchPerCall) Assert.Equal(graph.Launches * measured, replayed.KernelLaunches);
        // On the CPU set a launch is an entry-point call, so the count is exact; the ILGPU set launches per call a
        // number of kernels that can depend on the buffers it gets (measured, not asserted, there).
        Assert.True(replayed.KernelLaunches <= eagerCost.KernelLaunches, $"compiled {replayed.KernelLaunches} launches, eager {eagerCost.KernelLaunches}");
        Assert.True(graph.SlotBytes <= graph.TemporaryBytes);
        Assert.Equal(0, replayed.KernelLoads);
        if (Device.Kind == DeviceKind.Cpu) Assert.Equal(0, graph.KernelLoads);
    }

    /// <summary>
    /// The graph reports the kernels its build and first replay loaded: what the device's counters saw over the
    /// third call (the last eager trace, whose kernels the two before it loaded, and the build) and the fourth (the
    /// first replay). Later replays load nothing.
    /// </summary>
    [Theory]
    [InlineData("mlp-adam-cosine")]
    [InlineData("fno1d-adamw")]
    public void TheGraphReportsTheKernelsItLoaded(string scenario)
    {
        using var problem = CompilerTests.Problem.Make(scenario, Device);
        using var step = problem.Compile(new CompileOptions());
        var batches = Enumerable.Range(0, 6).Select(s => problem.Batch(s)).ToList();
        foreach (var b in batches)
            if (b.Y is IndexTensor y) y.On(Device);
        for (int s = 0; s < 2; s++) step.Call(batches[s].X, batches[s].Y).Dispose();
        var before = Device.Counters.Snapshot();
        for (int s = 2; s < 4; s++) step.Call(batches[s].X, batches[s].Y).Dispose();
        var compiling = Device.Counters.Snapshot().Minus(before);
        before = Device.Counters.Snapshot();
        for (int s = 4; s < 6; s++) step.Call(batches[s].X, batches[s].Y).Dispose();
        var replaying = Device.Counters.Snapshot().Minus(before);
        var graph = step.LastGraph!;
        Output.WriteLine($"{scenario} on {Device.Name}: {graph.KernelLoads} kernels loaded in {graph.KernelLoadMilliseconds:F1} ms");
        foreach (var b in batches) b.Dispose();

        Assert.Equal(3, step.Replays);
        Assert.Equal(compiling.KernelLoads, graph.KernelLoads);
        Assert.Equal(compiling.KernelLoadTime.TotalMilliseconds, graph.KernelLoadMilliseconds, 9);
        Assert.Equal(0, replaying.KernelLoads);
        Assert.Contains($"kernel loads: {graph.KernelLoads} kernels", step.Explain());
        if (Device.Kind == DeviceKind.Cpu) Assert.Equal(0, graph.KernelLoads);
    }

    /// <summary>
    /// The counters of <paramref name="measured"/> eager steps and as many replays of the compiled step (each after
    /// four warm-up calls), the compiled step's graph and its replay count.
    /// </summary>
    protected (DeviceCounterSnapshot Eager, DeviceCounterSnapshot Replayed, CompiledGraphStats Graph, int Replays) MeasureSteps(string scenario, int measured)
    {
        using var eager = CompilerTests.Problem.Make(scenario, Device);
        using var compiled = CompilerTests.Problem.Make(scenario, Device);
        using var step = compiled.Compile(new CompileOptions());
        var batches = Enumerable.Range(0, 4 + measured).Select(s => compiled.Batch(s)).ToList();
        foreach (var b in batches)
            if (b.Y is IndexTensor y) y.On(Device);
        for (int s = 0; s < 4; s++) step.Call(batches[s].X, batches[s].Y).Dispose();

        var before = Device.Counters.Snapshot();
        for (int s = 4; s < 4 + measured; s++) step.Call(batches[s].X, batches[s].Y).Dispose();
        var replayed = Device.Counters.Snapshot().Minus(before);

        var eagerBatches = Enumerable.Range(0, 4 + measured).Select(s => eager.Batch(s)).ToList();
        foreach (var b in eagerBatches)
            if (b.Y is IndexTensor y) y.On(Device);
        for (int s = 0; s < 4; s++) eager.EagerStep(eagerBatches[s]);
        before = Device.Counters.Snapshot();
        for (int s = 4; s < 4 + measured; s++) eager.EagerStep(eagerBatches[s]);
        var eagerCost = Device.Counters.Snapshot().Minus(before);
        foreach (var b in batches.Concat(eagerBatches)) b.Dispose();
        return (eagerCost, replayed, step.LastGraph!, step.Replays);
    }
}

/// <summary>Counters of compiled steps on the CPU set.</summary>
[Collection("serial")]
public sealed class CpuCompilerCounterTests(ITestOutputHelper output) : CompilerCounterTests(output)
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Counters of compiled steps on the ILGPU set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuCompilerCounterTests(ITestOutputHelper output) : CompilerCounterTests(output)
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);

    /// <inheritdoc />
    protected override bool OneLaunchPerCall => false;

    /// <summary>
    /// The launches per step on the emulator, eager and replayed, as measured: a replay launches fewer kernels than
    /// the eager step, the multi-tensor optimizer update taking two launches (Adam: update, then the step counts) or
    /// one (SGD) per eight parameters where eager takes two or one per parameter, and the Mixer's sums of one shape
    /// (bias gradients, and a residual-gradient sum beside a bias gradient of the same gradient) paired two to a launch;
    /// each cross-entropy takes its gradient's softmax, one-hot and difference into one launch (SAM's two of them).
    /// </summary>
    [Theory]
    [InlineData("mlp-adam-cosine", 49, 15, 0)]
    [InlineData("mixer-sgd-momentum", 188, 70, 6)]
    [InlineData("sam-adam", 106, 47, 0)]
    public void AReplayLaunchesTheMeasuredCount(string scenario, int eagerLaunches, int replayLaunches, int reductionsPaired)
    {
        const int measured = 2;
        var (eager, replayed, graph, _) = MeasureSteps(scenario, measured);
        Output.WriteLine($"{scenario} on {Device.Name}, launches per step: eager {eager.KernelLaunches / (double)measured}, " +
                         $"compiled {replayed.KernelLaunches / (double)measured} (the graph calls {graph.Launches} entry points)");
        Assert.Equal(eagerLaunches * measured, eager.KernelLaunches);
        Assert.Equal(replayLaunches * measured, replayed.KernelLaunches);
        Assert.Equal(reductionsPaired, graph.ReductionsPaired);
        Assert.True(replayed.KernelLaunches <= eager.KernelLaunches);
    }
}
