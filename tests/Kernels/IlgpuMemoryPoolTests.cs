using Engine.Kernels;
using Engine.Kernels.Ilgpu;

namespace Engine.Tests.Kernels;

/// <summary>
/// The ILGPU set's caching allocator on the CPU emulator: size classes, reuse as pool hits, no aliasing between live
/// buffers, the bound, trimming and disposal. Each test uses its own kernel set (sharing the emulator device's
/// counters), and runs alone so that no other test's buffers enter the counter differences.
/// </summary>
[Collection("serial")]
public sealed class IlgpuMemoryPoolTests
{
    private static Device Emulator => Device.Get(DeviceKind.IlgpuCpu);

    private static IlgpuKernelSet NewSet(long? maxCachedBytes = null) =>
        new(Emulator, DeviceKind.IlgpuCpu, IlgpuCpuOptions.Cooperative with { MaxCachedBytes = maxCachedBytes });

    /// <summary>Size classes: multiples of 512 bytes up to 1 MiB, then a quarter of the power of two (at most 25% slack).</summary>
    [Theory]
    [InlineData(0L, 512L)]
    [InlineData(1L, 512L)]
    [InlineData(512L, 512L)]
    [InlineData(513L, 1024L)]
    [InlineData(1L << 20, 1L << 20)]
    [InlineData((1L << 20) + 1, (1L << 20) + (1L << 18))]
    [InlineData(2L << 20, 2L << 20)]
    [InlineData((2L << 20) + 1, (2L << 20) + (1L << 19))]
    [InlineData(7_000_000L, 7_340_032L)]
    [InlineData(3L << 33, 3L << 33)]
    public void SizeClassesRoundUpWithBoundedSlack(long bytes, long expected)
    {
        long size = IlgpuMemoryPool.SizeClass(bytes);
        Assert.Equal(expected, size);
        Assert.True(size <= Math.Max(IlgpuMemoryPool.SmallStep, bytes + Math.Max(IlgpuMemoryPool.SmallStep - 1, bytes / 4)),
            $"class {size} for {bytes} bytes wastes more than a quarter");
    }

    /// <summary>
    /// A freed buffer's block is cached (its class's bytes) and serves the next allocation of the same class, whatever
    /// its element type and exact length: one allocation, one pool hit, the cache back where it was, and the new
    /// buffer's length exactly what was asked.
    /// </summary>
    [Fact]
    public void ReuseCountsAsPoolHit()
    {
        using var set = NewSet();
        var c = Emulator.Counters;
        const int n = 10_000; // 40,000 bytes: class 40,448
        long cachedBefore = c.CachedBytes;
        set.Allocate(n).Dispose();
        Assert.Equal(IlgpuMemoryPool.SizeClass(4L * n), c.CachedBytes - cachedBefore);
        Assert.Equal(IlgpuMemoryPool.SizeClass(4L * n), set.Pool.CachedBytes);

        foreach (var (length, asInt) in new[] { (n, false), (n - 3, false), (n - 5, true) })
        {
            var before = c.Snapshot();
            var b = asInt ? (object)set.AllocateInt(length) : set.Allocate(length);
            var d = c.Snapshot().Minus(before);
            Assert.Equal(1, d.Allocations);
            Assert.Equal(1, d.PoolHits);
            Assert.Equal(-IlgpuMemoryPool.SizeClass(4L * n), d.CachedBytes);
            Assert.Equal(4L * length, d.BytesInUse);
            if (b is DeviceBuffer<int> ib)
            {
                Assert.Equal(length, ib.Length);
                Assert.Equal(length, ((IlgpuBuffer<int>)ib).View.Length);
                ib.Dispose();
            }
            else
            {
                var fb = (DeviceBuffer<float>)b;
                Assert.Equal(length, fb.Length);
                Assert.Equal(length, ((IlgpuBuffer<float>)fb).View.Length);
                fb.Dispose();
            }
        }

        var miss = c.Snapshot();
        using (set.Allocate(3 * n)) { }
        Assert.Equal(0, c.Snapshot().Minus(miss).PoolHits);
    }

    /// <summary>
    /// Many live buffers, half of them from reused blocks (sizes in shared and distinct classes, float and int), each
    /// written with its own values: every one reads back exactly its own, so no two live buffers share memory.
    /// </summary>
    [Fact]
    public void LiveBuffersNeverAlias()
    {
        using var set = NewSet();
        int[] lengths = [1, 7, 128, 129, 1000, 1000, 1000, 4096, 5000, 70_000, 70_001, 300_000];
        foreach (var n in lengths) set.Allocate(n).Dispose(); // warm the pool: the first round below hits it
        var hitsBefore = Emulator.Counters.PoolHits;
        var floats = new List<(DeviceBuffer<float> Buffer, float[] Data)>();
        var ints = new List<(DeviceBuffer<int> Buffer, int[] Data)>();
        try
        {
            for (int round = 0; round < 2; round++)
                for (int i = 0; i < lengths.Length; i++)
                {
                    int id = round * lengths.Length + i, n = lengths[i];
                    var f = set.Allocate(n);
                    floats.Add((f, Enumerable.Range(0, n).Select(k => id * 1_000_000f + k).ToArray()));
                    f.CopyFromHost(floats[^1].Data);
                    var g = set.AllocateInt(n);
                    ints.Add((g, Enumerable.Range(0, n).Select(k => -(id * 1_000_000 + k) - 1).ToArray()));
                    g.CopyFromHost(ints[^1].Data);
                }
            int classes = lengths.Select(n => IlgpuMemoryPool.SizeClass(4L * n)).Distinct().Count();
            Assert.True(Emulator.Counters.PoolHits - hitsBefore >= classes, "the first round reuses the warmed blocks");
            foreach (var (b, data) in floats) KernelAssert.Bitwise(data, b.ToArray(), $"float buffer of {b.Length}");
            foreach (var (b, data) in ints) Assert.Equal(data, b.ToArray());
        }
        finally
        {
            foreach (var (b, _) in floats) b.Dispose();
            foreach (var (b, _) in ints) b.Dispose();
        }
    }

    /// <summary>Trimming gives every cached byte back (the counters' cached bytes drop by as much); buffers in use stay intact.</summary>
    [Fact]
    public void TrimReturnsTheCachedBytes()
    {
        using var set = NewSet();
        var c = Emulator.Counters;
        using var live = set.Allocate(3000);
        live.CopyFromHost(Enumerable.Range(0, 3000).Select(k => (float)k).ToArray());
        foreach (var n in new[] { 100, 20_000, 400_000 }) set.Allocate(n).Dispose();
        long expected = new[] { 100, 20_000, 400_000 }.Sum(n => IlgpuMemoryPool.SizeClass(4L * n));
        Assert.Equal(expected, set.Pool.CachedBytes);
        long before = c.CachedBytes;
        Assert.Equal(expected, set.TrimCache());
        Assert.Equal(0, set.Pool.CachedBytes);
        Assert.Equal(before - expected, c.CachedBytes);
        KernelAssert.Bitwise(Enumerable.Range(0, 3000).Select(k => (float)k).ToArray(), live.ToArray(), "live buffer after a trim");
        var miss = c.Snapshot();
        using (set.Allocate(20_000)) { }
        Assert.Equal(0, c.Snapshot().Minus(miss).PoolHits);
    }

    /// <summary>
    /// Device.TrimCache empties the emulator device's own pool and reports the bytes; the device's cached bytes drop by
    /// as much (other kernel sets on the same device, such as the GPU-shape tests', keep theirs).
    /// </summary>
    [Fact]
    public void DeviceTrimCacheEmptiesTheDevicePool()
    {
        var pool = ((IlgpuKernelSet)Emulator.Kernels).Pool;
        Emulator.Kernels.Allocate(50_000).Dispose();
        Assert.True(pool.CachedBytes >= 200_000, $"cached {pool.CachedBytes}");
        long before = Emulator.Counters.CachedBytes;
        long trimmed = Emulator.TrimCache();
        Assert.True(trimmed >= 200_000, $"trimmed {trimmed}");
        Assert.Equal(0, pool.CachedBytes);
        Assert.Equal(before - trimmed, Emulator.Counters.CachedBytes);
    }

    /// <summary>The pool never holds more than its bound: freed blocks that do not fit go back to the driver.</summary>
    [Fact]
    public void TheCacheIsBounded()
    {
        const long bound = 64 * 1024;
        using var set = NewSet(bound);
        var blocks = Enumerable.Range(0, 10).Select(_ => set.Allocate(5000)).ToList(); // 20,480 bytes each
        var kept = blocks.Select(b => ((IlgpuBuffer<float>)b).Block!).ToList();
        foreach (var b in blocks) b.Dispose();
        long size = IlgpuMemoryPool.SizeClass(20_000);
        Assert.Equal(bound / size * size, set.Pool.CachedBytes);
        Assert.Equal(10 - (int)(bound / size), kept.Count(b => b.IsDisposed));
        using (set.Allocate(bound)) { } // larger than the bound: freed at once
        Assert.Equal(bound / size * size, set.Pool.CachedBytes);
    }

    /// <summary>
    /// Disposing the kernel set (the accelerator) frees every block, cached or still held by a buffer; the counters'
    /// cached bytes go back to where they started, and a buffer disposed afterwards caches nothing.
    /// </summary>
    [Fact]
    public void DisposingTheSetFreesEverything()
    {
        var c = Emulator.Counters;
        long cachedBefore = c.CachedBytes;
        var set = NewSet();
        var freed = set.Allocate(10_000);
        var cachedBlock = ((IlgpuBuffer<float>)freed).Block!;
        freed.Dispose();
        var live = set.Allocate(2000);
        var liveBlock = ((IlgpuBuffer<float>)live).Block!;
        Assert.True(c.CachedBytes > cachedBefore);
        set.Dispose();
        Assert.True(cachedBlock.IsDisposed, "a cached block is freed");
        Assert.True(liveBlock.IsDisposed, "a block still held by a buffer is freed with the accelerator");
        Assert.Equal(cachedBefore, c.CachedBytes);
        live.Dispose();
        Assert.Equal(cachedBefore, c.CachedBytes);
        Assert.Equal(0, set.Pool.CachedBytes);
        Assert.Throws<ObjectDisposedException>(() => set.Allocate(1));
    }
}
