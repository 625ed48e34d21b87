using Engine.Kernels.Cpu;

namespace Engine.Bench;

/// <summary>
/// The bandwidth baseline of the CPU kernel benchmarks: <see cref="Span{T}.CopyTo"/> split into chunks exactly as the
/// CPU kernel set splits a memory-bound elementwise op (same splitter, same grain, <see cref="CpuThreads.Count"/>
/// threads), so a kernel's ratio to it compares work, not thread counts.
/// </summary>
internal static class ThreadedCopy
{
    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (at least as long).</summary>
    public static void Run(float[] source, float[] destination) =>
        CpuParallel.For(source.Length, CpuParallel.CheapGrain,
            (start, end) => source.AsSpan((int)start, (int)(end - start)).CopyTo(destination.AsSpan((int)start)));
}
