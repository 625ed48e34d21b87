using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// A buffer in the memory of an ILGPU accelerator (device memory on CUDA/OpenCL, host memory on the CPU emulator): a
/// block of its kernel set's caching allocator (<see cref="IlgpuMemoryPool"/>), which may be larger than the buffer;
/// kernels reach exactly <see cref="DeviceBuffer{T}.Length"/> elements of it through <see cref="View"/>. Disposing
/// gives the block back to the pool.
/// </summary>
public sealed class IlgpuBuffer<T> : DeviceBuffer<T> where T : unmanaged
{
    private readonly IlgpuMemoryPool pool;
    private MemoryBuffer1D<byte, Stride1D.Dense>? block;

    internal IlgpuBuffer(IlgpuKernelSet owner, IlgpuMemoryPool pool, long length) : base(owner.Device, length)
    {
        Owner = owner;
        this.pool = pool;
        // The pool's smallest block also keeps ILGPU from seeing an empty allocation, which some backends reject.
        block = pool.Rent(length * Unsafe.SizeOf<T>(), out bool poolHit);
        ArrayView<byte> bytes = block.View;
        View = bytes.Cast<T>().SubView(0, length);
        TrackAllocation(poolHit);
    }

    /// <summary>The kernel set (and so the accelerator) that owns the memory.</summary>
    internal IlgpuKernelSet Owner { get; }

    /// <summary>The pool block behind the buffer (null once disposed), for tests of the allocator.</summary>
    internal MemoryBuffer1D<byte, Stride1D.Dense>? Block => block;

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
        // Keep the buffer (and its pool block, freed by ILGPU's finaliser if the buffer is never disposed) alive until the
        // copy has finished.
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
        if (block != null) pool.Return(block);
        block = null;
        View = default;
    }
}
