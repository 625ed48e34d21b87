using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

/// <summary>Offsets into up to two strided sources.</summary>
internal struct OffsetPair
{
    public long A, B;
}

/// <summary>
/// ILGPU kernel bodies. Every kernel is explicitly grouped and walks its index space with a grid-stride loop, so
/// the host picks any grid (a few groups on the CPU emulator, many on a GPU). Kernels never throw: the host
/// validates arguments before launch.
/// </summary>
internal static partial class IlgpuKernels
{
    /// <summary>First global thread index of a 1-D launch.</summary>
    internal static long GlobalStart => (long)Grid.IdxX * Group.DimX + Group.IdxX;

    /// <summary>Total number of threads of a 1-D launch (the grid-stride step).</summary>
    internal static long GlobalStride => (long)Grid.DimX * Group.DimX;

    /// <summary>Source offsets of output element <paramref name="i"/> under a strided layout (unrolled, right-aligned).</summary>
    internal static OffsetPair Offsets(long i, StridedLayout l)
    {
        var o = new OffsetPair();
        int rank = l.Rank;
        if (rank == 0) return o;
        long r = i;
        long c;
        if (rank == 1)
        {
            o.A += r * l.StrideA.V7;
            o.B += r * l.StrideB.V7;
            return o;
        }
        c = r % l.Size.V7;
        r /= l.Size.V7;
        o.A += c * l.StrideA.V7;
        o.B += c * l.StrideB.V7;
        if (rank == 2)
        {
            o.A += r * l.StrideA.V6;
            o.B += r * l.StrideB.V6;
            return o;
        }
        c = r % l.Size.V6;
        r /= l.Size.V6;
        o.A += c * l.StrideA.V6;
        o.B += c * l.StrideB.V6;
        if (rank == 3)
        {
            o.A += r * l.StrideA.V5;
            o.B += r * l.StrideB.V5;
            return o;
        }
        c = r % l.Size.V5;
        r /= l.Size.V5;
        o.A += c * l.StrideA.V5;
        o.B += c * l.StrideB.V5;
        if (rank == 4)
        {
            o.A += r * l.StrideA.V4;
            o.B += r * l.StrideB.V4;
            return o;
        }
        c = r % l.Size.V4;
        r /= l.Size.V4;
        o.A += c * l.StrideA.V4;
        o.B += c * l.StrideB.V4;
        if (rank == 5)
        {
            o.A += r * l.StrideA.V3;
            o.B += r * l.StrideB.V3;
            return o;
        }
        c = r % l.Size.V3;
        r /= l.Size.V3;
        o.A += c * l.StrideA.V3;
        o.B += c * l.StrideB.V3;
        if (rank == 6)
        {
            o.A += r * l.StrideA.V2;
            o.B += r * l.StrideB.V2;
            return o;
        }
        c = r % l.Size.V2;
        r /= l.Size.V2;
        o.A += c * l.StrideA.V2;
        o.B += c * l.StrideB.V2;
        if (rank == 7)
        {
            o.A += r * l.StrideA.V1;
            o.B += r * l.StrideB.V1;
            return o;
        }
        c = r % l.Size.V1;
        r /= l.Size.V1;
        o.A += c * l.StrideA.V1;
        o.B += c * l.StrideB.V1;
        if (rank == 8)
        {
            o.A += r * l.StrideA.V0;
            o.B += r * l.StrideB.V0;
            return o;
        }
        return o;
    }
}
