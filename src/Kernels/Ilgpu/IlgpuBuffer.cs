using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// A buffer in the memory of an ILGPU accelerator (device memory on CUDA/OpenCL, host memory on the CPU emulator),
/// wrapping a dense 1-D ILGPU memory buffer. Kernels reach the data through <see cref="View"/>.
/// </summary>
public sealed class IlgpuBuffer<T> : DeviceBuffer<T> where T : unmanaged
{
    private MemoryBuffer1D<T, Stride1D.Dense>? memory;

    internal IlgpuBuffer(IlgpuKernelSet owner, Accelerator accelerator, long length) : base(owner.Device, length)
    {
        Owner = owner;
        // ILGPU rejects empty allocations on some backends: keep one element behind an empty view.
        memory = accelerator.Allocate1D<T>(Math.Max(length, 1));
        View = memory.View.SubView(0, length);
    }

    /// <summary>The kernel set (and so the accelerator) that owns the memory.</summary>
    internal IlgpuKernelSet Owner { get; }

    /// <summary>A dense view of exactly <see cref="DeviceBuffer{T}.Length"/> elements, for kernel arguments.</summary>
    public ArrayView<T> View { get; private set; }

    /// <inheritdoc />
    protected override void CopyFromHostCore(ReadOnlySpan<T> source)
    {
        if (source.Length == 0) return;
        View.CopyFromCPU(ref MemoryMarshal.GetReference(source), source.Length);
    }

    /// <inheritdoc />
    protected override void CopyToHostCore(Span<T> destination)
    {
        if (destination.Length == 0) return;
        View.CopyToCPU(ref MemoryMarshal.GetReference(destination), destination.Length);
    }

    /// <inheritdoc />
    protected override void Release()
    {
        memory?.Dispose();
        memory = null;
        View = default;
    }
}
