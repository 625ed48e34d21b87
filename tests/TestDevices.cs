using Engine.Kernels;

namespace Engine.Tests;

/// <summary>
/// The device the ILGPU test classes run on, from <c>ENGINE_TEST_DEVICE=cuda|opencl|ilgpu-cpu</c> (default ilgpu-cpu,
/// ILGPU's CPU emulator): the same kernel, autodiff and layer tests then run on a real GPU where one is present (the GPU
/// check in tools/gpu-check does that). Naming a device that is absent fails those tests with the probe's finding.
/// </summary>
public static class TestDevices
{
    /// <summary>Name of the environment variable.</summary>
    public const string EnvironmentVariable = "ENGINE_TEST_DEVICE";

    private static readonly Lazy<DeviceKind> IlgpuKind = new(() =>
    {
        var value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(value)) return DeviceKind.IlgpuCpu;
        var kind = Device.KindOf(value);
        if (kind is not (DeviceKind.IlgpuCpu or DeviceKind.Cuda or DeviceKind.OpenCL))
            throw new ArgumentException($"{EnvironmentVariable}: '{value}' is not an ILGPU device; use cuda, opencl or ilgpu-cpu.");
        return kind.Value;
    });

    /// <summary>The ILGPU device under test.</summary>
    public static Device Ilgpu => Device.Get(IlgpuKind.Value);

    /// <summary>True when the ILGPU tests run on ILGPU's CPU emulator (the default).</summary>
    public static bool IsEmulator => IlgpuKind.Value == DeviceKind.IlgpuCpu;
}
