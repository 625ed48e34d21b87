namespace Engine.Kernels.Ilgpu;

/// <summary>
/// The ILGPU kernel set: every op as an ILGPU kernel, compiled once per accelerator and cached.
/// Runs on CUDA, OpenCL and ILGPU's CPU accelerator (an emulator, used to prove the kernels correct).
/// </summary>
public sealed partial class IlgpuKernelSet : IKernelSet, IDisposable
{
    internal IlgpuKernelSet(Device device, DeviceKind kind)
    {
        Device = device;
        Kind = kind;
    }

    /// <summary>The device this kernel set serves.</summary>
    public Device Device { get; }

    /// <summary>Which ILGPU backend.</summary>
    public DeviceKind Kind { get; }

    /// <inheritdoc />
    public string Name => "ilgpu-" + Engine.Kernels.Device.NameOf(Kind);

    /// <inheritdoc />
    public DeviceBuffer<float> Allocate(long length) => throw new NotImplementedException();

    /// <inheritdoc />
    public DeviceBuffer<int> AllocateInt(long length) => throw new NotImplementedException();

    /// <inheritdoc />
    public void Synchronize() => throw new NotImplementedException();

    /// <inheritdoc />
    public void Dispose() { }
}
