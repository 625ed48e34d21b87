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

    private static DeviceProbe FakeProbe(params DeviceKind[] gpus)
    {
        var findings = new Dictionary<DeviceKind, string>
        {
            [DeviceKind.Cpu] = "SIMD kernels (test)",
            [DeviceKind.IlgpuCpu] = "emulator (test)",
            [DeviceKind.Cuda] = gpus.Contains(DeviceKind.Cuda) ? "Fake H200 (SM_90)" : "no CUDA device: driver library not found (tried libcuda.so, libcuda.so.1)",
            [DeviceKind.OpenCL] = gpus.Contains(DeviceKind.OpenCL) ? "Fake OpenCL GPU" : "no OpenCL device: library not found",
        };
        return new DeviceProbe([DeviceKind.Cpu, DeviceKind.IlgpuCpu, .. gpus], findings);
    }

    /// <summary>The automatic rule on fake machines: CUDA &gt; OpenCL &gt; CPU, each with its reason.</summary>
    [Theory]
    [InlineData(new DeviceKind[0], DeviceKind.Cpu)]
    [InlineData(new[] { DeviceKind.OpenCL }, DeviceKind.OpenCL)]
    [InlineData(new[] { DeviceKind.Cuda }, DeviceKind.Cuda)]
    [InlineData(new[] { DeviceKind.OpenCL, DeviceKind.Cuda }, DeviceKind.Cuda)]
    public void Selection_AutomaticRule(DeviceKind[] gpus, DeviceKind expected)
    {
        var s = DeviceSelection.Choose(null, FakeProbe(gpus));
        Assert.Equal(expected, s.Kind);
        Assert.StartsWith("automatic", s.Reason);
        var line = s.ToString();
        Assert.StartsWith($"Engine device: {Device.NameOf(expected)} (", line);
        Assert.DoesNotContain("\n", line);
        if (expected == DeviceKind.Cpu)
        {
            // Falling back to the CPU says why: what the probe found for each GPU backend.
            Assert.Contains("tried libcuda.so, libcuda.so.1", line);
            Assert.Contains("no OpenCL device", line);
        }
        else
        {
            Assert.Contains(expected == DeviceKind.Cuda ? "Fake H200" : "Fake OpenCL GPU", line);
        }
    }

    /// <summary>The environment variable wins over the rule; a named device that is absent says what the probe found.</summary>
    [Fact]
    public void Selection_EnvironmentValue()
    {
        var both = FakeProbe(DeviceKind.Cuda, DeviceKind.OpenCL);
        var s = DeviceSelection.Choose(" OpenCL ", both);
        Assert.Equal(DeviceKind.OpenCL, s.Kind);
        Assert.Equal("ENGINE_DEVICE=OpenCL", s.Reason);
        Assert.Equal(DeviceKind.Cpu, DeviceSelection.Choose("cpu", both).Kind);

        var e = Assert.Throws<InvalidOperationException>(() => DeviceSelection.Choose("cuda", FakeProbe()));
        Assert.Contains("'cuda' is not available", e.Message);
        Assert.Contains("tried libcuda.so, libcuda.so.1", e.Message);
        var u = Assert.Throws<ArgumentException>(() => DeviceSelection.Choose("tpu", both));
        Assert.Contains("available here: cpu, ilgpu-cpu, cuda, opencl", u.Message);
    }

    /// <summary>The driver libraries are looked up under both the development and the runtime names on Linux.</summary>
    [Fact]
    public void DriverLibraryCandidates()
    {
        Assert.Equal(["libcuda.so", "libcuda.so.1"], Engine.Kernels.Ilgpu.NativeDrivers.Candidates("cuda", isLinux: true));
        Assert.Equal(["libOpenCL.so", "libOpenCL.so.1"], Engine.Kernels.Ilgpu.NativeDrivers.Candidates("OpenCL", isLinux: true));
        Assert.Empty(Engine.Kernels.Ilgpu.NativeDrivers.Candidates("cuda", isLinux: false));
        Assert.Empty(Engine.Kernels.Ilgpu.NativeDrivers.Candidates("cublas", isLinux: true));
    }

    /// <summary>The real probe on this machine: the message names the device Default uses, and Default records it.</summary>
    [Fact]
    public void DescribeSelection_MatchesDefault()
    {
        var line = Device.DescribeSelection();
        Assert.StartsWith("Engine device: ", line);
        var d = Device.Default;
        Assert.StartsWith($"Engine device: {d.Name} (", Device.DescribeSelection());
        Assert.NotNull(Device.Selection);
        Assert.Equal(d.Kind, Device.Selection!.Kind);
        foreach (var kind in Enum.GetValues<DeviceKind>()) Assert.False(string.IsNullOrEmpty(Device.Probe().FindingFor(kind)));
    }
}
