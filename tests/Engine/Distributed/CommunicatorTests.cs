using System.Diagnostics;
using Engine.Autodiff;
using Engine.Distributed;
using Engine.Kernels;

namespace Engine.Tests.Distributed;

/// <summary>The in-process communicator (threads as ranks): collectives, ordering, timeouts and failures.</summary>
public sealed class CommunicatorTests
{
    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    /// <summary>Rank r's value at element i: values whose float sum depends on the order they are added in.</summary>
    private static float Value(int rank, int i) => rank switch
    {
        0 => 1e8f + i,
        1 => 1f + 0.25f * i,
        _ => -1e8f - rank * i,
    };

    [Theory]
    [InlineData(1, 5, ReduceOperation.Sum)]
    [InlineData(2, 1, ReduceOperation.Sum)]
    [InlineData(3, 7, ReduceOperation.Sum)]
    [InlineData(3, 7, ReduceOperation.Max)]
    [InlineData(4, 13, ReduceOperation.Min)]
    public void AllReduce_of_device_buffers_combines_in_rank_order_on_every_rank(int ranks, int n, ReduceOperation op)
    {
        var results = RankThreads.RunAll(InProcessCommunicator.CreateGroup(ranks), c =>
        {
            var t = Tensor.FromArray(Enumerable.Range(0, n).Select(i => Value(c.Rank, i)).ToArray(), [n], Cpu);
            c.AllReduce(t, op);
            return t.ToArray();
        });
        for (int i = 0; i < n; i++)
        {
            float expected = Value(0, i);
            for (int r = 1; r < ranks; r++)
                expected = op switch { ReduceOperation.Sum => expected + Value(r, i), ReduceOperation.Max => Math.Max(expected, Value(r, i)), _ => Math.Min(expected, Value(r, i)) };
            foreach (var result in results) Assert.Equal(expected, result[i]);
        }
    }

    [Fact]
    public void Host_collectives_cover_doubles_ints_and_longs_and_broadcast_gather_and_barrier_work()
    {
        var results = RankThreads.RunAll(InProcessCommunicator.CreateGroup(3), c =>
        {
            var d = new[] { 0.5 * c.Rank, 1.0 };
            c.AllReduce<double>(d);
            var i = new[] { c.Rank + 1 };
            c.AllReduce<int>(i, ReduceOperation.Max);
            var l = new[] { 10L * c.Rank };
            c.Broadcast<long>(l, root: 2);
            var gathered = new float[6];
            c.AllGather<float>(new[] { (float)c.Rank, -c.Rank }, gathered);
            c.Barrier();
            return (d, i[0], l[0], gathered);
        });
        foreach (var (d, i, l, gathered) in results)
        {
            Assert.Equal(new[] { 1.5, 3.0 }, d);
            Assert.Equal(3, i);
            Assert.Equal(20L, l);
            Assert.Equal(new[] { 0f, -0f, 1f, -1f, 2f, -2f }, gathered);
        }
    }

    [Fact]
    public void Broadcast_of_a_tensor_copies_the_roots_data_to_every_rank()
    {
        var results = RankThreads.RunAll(InProcessCommunicator.CreateGroup(3), c =>
        {
            var t = Tensor.Full([4], c.Rank * 10f, Cpu);
            c.Broadcast(t, root: 1);
            return t.ToArray();
        });
        foreach (var r in results) Assert.Equal(new[] { 10f, 10f, 10f, 10f }, r);
    }

    /// <summary>
    /// With no latency the last rank to join completes the collective as it joins; its request must still start no
    /// later than it completes (a request that started after its completion made data-parallel training report a
    /// negative hidden time on a loaded machine).
    /// </summary>
    [Fact]
    public void A_request_never_completes_before_it_starts()
    {
        var results = RankThreads.RunAll(InProcessCommunicator.CreateGroup(2), c =>
        {
            using var a = Tensor.Zeros([8], Cpu);
            var times = new List<(long Start, long End)>();
            for (int i = 0; i < 20; i++)
            {
                var r = c.StartAllReduce(a.Buffer);
                r.Wait();
                times.Add((r.StartedAt, r.CompletedAt));
            }
            return times;
        });
        foreach (var times in results)
            foreach (var (start, end) in times)
                Assert.True(end >= start, $"completed {Stopwatch.GetElapsedTime(end, start).TotalMicroseconds:0.0} µs before it started");
    }

    [Fact]
    public void Simulated_latency_delays_completion_and_collectives_share_one_link()
    {
        var latency = TimeSpan.FromMilliseconds(30);
        var results = RankThreads.RunAll(InProcessCommunicator.CreateGroup(2, latency), c =>
        {
            var a = Tensor.Zeros([8], Cpu);
            var b = Tensor.Zeros([8], Cpu);
            var first = c.StartAllReduce(a.Buffer);
            var second = c.StartAllReduce(b.Buffer);
            c.Barrier(); // both ranks have joined both all-reduces
            bool earlyFirst = first.Test();
            first.Wait();
            second.Wait();
            return (earlyFirst, first.Duration!.Value, second.Duration!.Value);
        });
        foreach (var (earlyFirst, first, second) in results)
        {
            Assert.True(first >= latency * 0.99, $"first all-reduce took {first.TotalMilliseconds} ms, latency 30 ms");
            Assert.True(second >= latency * 1.99, $"second all-reduce took {second.TotalMilliseconds} ms: it should queue behind the first");
        }
    }

    [Fact]
    public void Collectives_that_differ_between_ranks_are_reported()
    {
        var group = InProcessCommunicator.CreateGroup(2);
        foreach (var c in group) c.Timeout = TimeSpan.FromSeconds(1);
        var results = RankThreads.Run(group, c =>
        {
            var t = Tensor.Zeros([3], Cpu);
            if (c.Rank == 0) c.AllReduce(t);
            else
            {
                Thread.Sleep(50);
                c.Broadcast(t, 0);
            }
            return 0;
        });
        Assert.Contains(results, r => r.Error is InvalidOperationException e && e.Message.Contains("differs between ranks"));
    }

    [Fact]
    public void A_rank_that_stops_calling_makes_the_others_time_out_naming_it()
    {
        var group = InProcessCommunicator.CreateGroup(3);
        foreach (var c in group) c.Timeout = TimeSpan.FromMilliseconds(300);
        var results = RankThreads.Run(group, c =>
        {
            if (c.Rank == 2) return 0; // stops taking part
            c.Barrier();
            return 1;
        });
        foreach (var r in new[] { 0, 1 })
        {
            var e = Assert.IsType<CommunicationTimeoutException>(results[r].Error);
            Assert.Equal(r, e.Rank);
            Assert.Contains("rank 2 did not join", e.Message);
        }
    }

    [Fact]
    public void A_rank_that_throws_under_RunOrAbort_stops_the_others_with_its_name_and_reason()
    {
        var group = InProcessCommunicator.CreateGroup(3);
        foreach (var c in group) c.Timeout = TimeSpan.FromSeconds(60);
        var clock = Stopwatch.StartNew();
        var results = RankThreads.Run(group, c =>
        {
            c.RunOrAbort(() =>
            {
                c.Barrier();
                if (c.Rank == 1) throw new ArgumentException("bad batch");
                c.Barrier(); // ranks 0 and 2 wait here for rank 1
            });
            return 0;
        });
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the others took {clock.Elapsed.TotalSeconds} s to stop");
        Assert.IsType<ArgumentException>(results[1].Error);
        foreach (var r in new[] { 0, 2 })
        {
            var e = Assert.IsType<RankFailedException>(results[r].Error);
            Assert.Equal(1, e.FailedRank);
            Assert.Contains("ArgumentException: bad batch", e.Message);
        }
    }

    [Fact]
    public void A_rank_that_leaves_the_group_fails_the_waiting_ranks_at_once()
    {
        var group = InProcessCommunicator.CreateGroup(2);
        foreach (var c in group) c.Timeout = TimeSpan.FromSeconds(60);
        var clock = Stopwatch.StartNew();
        var results = RankThreads.Run(group, c =>
        {
            if (c.Rank == 1)
            {
                Thread.Sleep(50);
                c.Dispose(); // as a killed process
                return 0;
            }
            c.Barrier();
            return 1;
        });
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
        var e = Assert.IsType<RankFailedException>(results[0].Error);
        Assert.Equal(1, e.FailedRank);
        Assert.Contains("left the group", e.Message);
    }

    [Fact]
    public void Bad_arguments_name_the_communicator_and_the_values()
    {
        var c = InProcessCommunicator.CreateGroup(2)[0];
        Assert.Contains("root 2", Assert.Throws<ArgumentOutOfRangeException>(() => c.Broadcast<int>(new int[1], 2)).Message);
        Assert.Contains("need 6", Assert.Throws<ArgumentException>(() => c.AllGather<int>(new int[3], new int[5])).Message);
        Assert.Throws<NotSupportedException>(() => c.AllReduce<short>(new short[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => InProcessCommunicator.CreateGroup(0));
        c.Dispose();
        Assert.Throws<ObjectDisposedException>(() => c.Barrier());
    }
}

/// <summary>Staging through host memory, on the ILGPU set's CPU accelerator (which runs one kernel at a time).</summary>
[Collection("ilgpu")]
public sealed class CommunicatorStagingTests
{
    [Fact]
    public void A_device_other_than_the_cpu_is_staged_through_host_memory()
    {
        var results = RankThreads.RunAll(InProcessCommunicator.CreateGroup(2), c =>
        {
            var buffer = Device.Get(DeviceKind.IlgpuCpu).Kernels.Allocate(3);
            buffer.CopyFromHost(new[] { 1f, 2f, c.Rank * 4f });
            c.AllReduce(buffer);
            var result = buffer.ToArray();
            buffer.Dispose();
            return result;
        });
        foreach (var r in results) Assert.Equal(new[] { 2f, 4f, 4f }, r);
    }
}
