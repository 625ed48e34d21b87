using System.Reflection;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Ilgpu;

namespace Engine.Tests.Kernels;

/// <summary>
/// The kernel contract stays slim: the core interface has at most 30 members, and no method of it or of a capability
/// interface takes more than 8 parameters (operands with many properties come as descriptors). Both built-in sets
/// implement every capability; a set that implements only the core gets the composites.
/// </summary>
public sealed class KernelContractTests
{
    private static readonly Type[] Capabilities = [typeof(IFftKernels), typeof(ISpnKernels), typeof(IOptimizerKernels), typeof(ILayerNormKernels)];

    /// <summary>Core: at most 30 members.</summary>
    [Fact]
    public void CoreHasAtMostThirtyMembers()
    {
        var members = typeof(IKernelSet).GetMembers().Where(m => m is not MethodInfo { IsSpecialName: true }).ToList();
        Assert.True(members.Count <= 30, $"IKernelSet has {members.Count} members: {string.Join(", ", members.Select(m => m.Name))}");
    }

    /// <summary>No contract method takes more than 8 parameters.</summary>
    [Fact]
    public void NoMethodTakesMoreThanEightParameters()
    {
        foreach (var type in Capabilities.Prepend(typeof(IKernelSet)))
            foreach (var m in type.GetMethods())
                Assert.True(m.GetParameters().Length <= 8, $"{type.Name}.{m.Name} takes {m.GetParameters().Length} parameters");
    }

    /// <summary>Both sets implement every capability, so the composites run only for other sets.</summary>
    [Fact]
    public void BuiltInSetsImplementEveryCapability()
    {
        foreach (var set in new[] { typeof(CpuKernelSet), typeof(IlgpuKernelSet) })
            foreach (var capability in Capabilities)
                Assert.True(capability.IsAssignableFrom(set), $"{set.Name} lacks {capability.Name}");
        var core = new CoreOnlyKernelSet(Device.Cpu.Kernels);
        Assert.False(core.FftKernels() is IKernelSet);
        Assert.Same(core.FftKernels(), core.FftKernels());
        Assert.Same(Device.Cpu.Kernels, Device.Cpu.Kernels.OptimizerKernels());
    }
}
