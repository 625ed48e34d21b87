using System.Runtime.InteropServices;

namespace Engine.Kernels.Cpu.Gemm;

/// <summary>
/// Per-thread packing buffers (packed A block, packed B block, operands a batch shares, one spare C tile), 64-byte
/// aligned native memory that only grows: allocated on a thread's first GEMM and reused by every later one. Freed by
/// the finalizer once the owning thread is gone.
/// </summary>
internal sealed unsafe class GemmWorkspace
{
    [ThreadStatic]
    private static GemmWorkspace? current;

    private float* a;
    private nint aLength;
    private float* b;
    private nint bLength;
    private float* scratch;
    private nint scratchLength;
    private float* shared;
    private nint sharedLength;

    private GemmWorkspace()
    {
        Tile = (float*)NativeMemory.AlignedAlloc(TileLength * sizeof(float), 64);
    }

    ~GemmWorkspace()
    {
        NativeMemory.AlignedFree(a);
        NativeMemory.AlignedFree(b);
        NativeMemory.AlignedFree(scratch);
        NativeMemory.AlignedFree(shared);
        NativeMemory.AlignedFree(Tile);
    }

    /// <summary>Floats in <see cref="Tile"/>: room for the largest MR x NR tile.</summary>
    public const int TileLength = 1024;

    /// <summary>The calling thread's workspace.</summary>
    public static GemmWorkspace Current => current ??= new GemmWorkspace();

    /// <summary>A scratch C tile for partial edge tiles.</summary>
    public float* Tile { get; }

    /// <summary>The packed-A buffer, at least <paramref name="length"/> floats.</summary>
    public float* PackedA(nint length)
    {
        if (length > aLength)
        {
            Grow(ref a, ref aLength, length);
        }
        return a;
    }

    /// <summary>The packed-B buffer, at least <paramref name="length"/> floats.</summary>
    public float* PackedB(nint length)
    {
        if (length > bLength)
        {
            Grow(ref b, ref bLength, length);
        }
        return b;
    }

    /// <summary>A staging buffer for gathered operand rows, at least <paramref name="length"/> floats.</summary>
    public float* Scratch(nint length)
    {
        if (length > scratchLength)
        {
            Grow(ref scratch, ref scratchLength, length);
        }
        return scratch;
    }

    /// <summary>
    /// The buffer for operands a batch shares, packed once by the calling thread and read by every worker of its
    /// GEMM, at least <paramref name="length"/> floats.
    /// </summary>
    public float* Shared(nint length)
    {
        if (length > sharedLength)
        {
            Grow(ref shared, ref sharedLength, length);
        }
        return shared;
    }

    private static void Grow(ref float* buffer, ref nint length, nint needed)
    {
        // Round up generously so a sequence of slightly growing shapes does not reallocate every call.
        nint size = Math.Max(needed, 64 * 1024);
        size = (size + 16383) & ~(nint)16383;
        NativeMemory.AlignedFree(buffer);
        buffer = null;
        length = 0;
        buffer = (float*)NativeMemory.AlignedAlloc((nuint)size * sizeof(float), 64);
        length = size;
    }
}
