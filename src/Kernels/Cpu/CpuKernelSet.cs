namespace Engine.Kernels.Cpu;

/// <summary>
/// The hand-written SIMD kernel set for CPUs: each kernel written once over the vector widths of
/// <see cref="Vectors.IFloatVector{TSelf}"/> (512, 256, 128 bits and scalar, with FMA) and run at the width
/// <see cref="Vectors.Simd"/> picks, work split over cores. Buffers are pinned host arrays (<see cref="CpuBuffer{T}"/>).
/// </summary>
public sealed partial class CpuKernelSet : IKernelSet
{
    internal CpuKernelSet(Device device) => Device = device;

    /// <summary>The device this kernel set serves.</summary>
    public Device Device { get; }

    /// <inheritdoc />
    public string Name => "cpu-simd";

    /// <inheritdoc />
    public DeviceBuffer<float> Allocate(long length) => new CpuBuffer<float>(Device, length);

    /// <inheritdoc />
    public DeviceBuffer<int> AllocateInt(long length) => new CpuBuffer<int>(Device, length);

    /// <inheritdoc />
    public void Synchronize() { }

    /// <summary>The host array behind a buffer of this device.</summary>
    internal static T[] Arr<T>(DeviceBuffer<T> buffer) where T : unmanaged =>
        buffer is CpuBuffer<T> c ? c.Data : throw new ArgumentException($"cpu kernel set: buffer lives on '{buffer.Device.Name}', not on the CPU.");
}
