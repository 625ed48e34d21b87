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
        TrackAllocation(poolHit: false);
    }

    /// <summary>The kernel set (and so the accelerator) that owns the memory.</summary>
    internal IlgpuKernelSet Owner { get; }

    /// <summary>A dense view of exactly <see cref="DeviceBuffer{T}.Length"/> elements, for kernel arguments.</summary>
    public ArrayView<T> View { get; private set; }

    /// <inheritdoc />
    /// <remarks>
    /// ILGPU copies through the raw address of the host data, so the span is pinned for the copy: an unpinned
    /// managed array can be moved by a compacting GC mid-copy (seen as all-zero downloads under GC pressure).
    /// </remarks>
    protected override unsafe void CopyFromHostCore(ReadOnlySpan<T> source)
    {
        if (source.Length == 0) return;
        fixed (T* p = source)
        {
            View.CopyFromCPU(ref *p, source.Length);
        }
        // Keep the buffer (and its ILGPU memory, freed by a finaliser) alive until the copy has finished.
        GC.KeepAlive(this);
    }

    /// <inheritdoc />
    protected override unsafe void CopyToHostCore(Span<T> destination)
    {
        if (destination.Length == 0) return;
        fixed (T* p = destination)
        {
            View.CopyToCPU(ref *p, destination.Length);
        }
        GC.KeepAlive(this);
    }

    /// <inheritdoc />
    protected override void Release()
    {
        memory?.Dispose();
        memory = null;
        View = default;
    }
}
