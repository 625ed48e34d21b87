using Engine.Kernels;

namespace Engine.Tests;

public class DeviceTests
{
    [Fact]
    public void CpuKindsAreAlwaysAvailable()
    {
        Assert.Contains(DeviceKind.Cpu, Device.Available());
        Assert.Contains(DeviceKind.IlgpuCpu, Device.Available());
        Assert.Same(Device.Cpu, Device.Get(DeviceKind.Cpu));
        Assert.Equal("cpu-simd", Device.Cpu.Kernels.Name);
    }

    [Theory]
    [InlineData("cpu", DeviceKind.Cpu)]
    [InlineData("CPU", DeviceKind.Cpu)]
    [InlineData(" ilgpu-cpu ", DeviceKind.IlgpuCpu)]
    public void ParseAcceptsKnownNames(string name, DeviceKind kind) => Assert.Equal(kind, Device.Parse(name).Kind);

    [Fact]
    public void EnvironmentValueOverridesTheAutomaticChoice()
    {
        Assert.Equal(DeviceKind.IlgpuCpu, Device.Resolve("ilgpu-cpu").Kind);
        Assert.Equal(DeviceKind.Cpu, Device.Resolve("cpu").Kind);
        // Without a value: CUDA > OpenCL > CPU; on a machine without a GPU driver that is the SIMD CPU.
        var auto = Device.Resolve(null);
        if (!Device.Available().Contains(DeviceKind.Cuda) && !Device.Available().Contains(DeviceKind.OpenCL))
            Assert.Equal(DeviceKind.Cpu, auto.Kind);
        else
            Assert.NotEqual(DeviceKind.IlgpuCpu, auto.Kind);
    }

    [Fact]
    public void UnknownNameListsWhatIsAvailable()
    {
        var e = Assert.Throws<ArgumentException>(() => Device.Resolve("tpu"));
        Assert.Contains("'tpu'", e.Message);
        Assert.Contains("available here: cpu, ilgpu-cpu", e.Message);
    }

    [Fact]
    public void UnavailableDeviceListsWhatIsAvailable()
    {
        if (Device.Available().Contains(DeviceKind.Cuda)) return; // only meaningful without a CUDA driver
        var e = Assert.Throws<InvalidOperationException>(() => Device.Parse("cuda"));
        Assert.Contains("'cuda' is not available", e.Message);
        Assert.Contains("cpu, ilgpu-cpu", e.Message);
    }

    [Fact]
    public void BufferUsedAfterDisposeNamesTheCall()
    {
        var b = Device.Cpu.Kernels.Allocate(4);
        b.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => b.ToArray());
        Assert.Contains("CopyToHost", e.Message);
    }
}
