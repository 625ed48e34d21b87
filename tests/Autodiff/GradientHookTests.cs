using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>Post-accumulate gradient hooks and queued callbacks of the backward walk.</summary>
public sealed class GradientHookTests
{
    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    private static Tensor Leaf(float[] data, params int[] shape) => Tensor.FromArray(data, shape, Cpu, requiresGrad: true);

    [Fact]
    public void A_hook_sees_the_final_gradient_of_a_leaf_used_twice_once_per_pass()
    {
        var x = Leaf([0.5f, -1f, 2f], 3);
        var seen = new List<float[]>();
        using var handle = x.RegisterPostAccumulateGradHook(t => seen.Add(t.Grad!.ToArray()));
        ((x * x).Sum() + (x * 3f).Sum()).Backward(); // two uses: 2x + 3
        Assert.Single(seen);
        Assert.Equal(new[] { 4f, 1f, 7f }, seen[0]);
        (x * 2f).Sum().Backward(); // a second pass accumulates: the hook sees the running total
        Assert.Equal(2, seen.Count);
        Assert.Equal(new[] { 6f, 3f, 9f }, seen[1]);
    }

    [Fact]
    public void Hooks_fire_from_the_output_side_while_the_leaves_nearer_the_input_still_wait()
    {
        // y = w2 · relu(w1 · x): w2's gradient is final before the walk reaches w1.
        var x = Tensor.FromArray([1f, 2f], [1, 2], Cpu);
        var w1 = Leaf([0.5f, -0.25f, 1f, 0.75f], 2, 2);
        var w2 = Leaf([1f, -2f], 2, 1);
        var events = new List<string>();
        using var h1 = w1.RegisterPostAccumulateGradHook(_ => events.Add("w1"));
        using var h2 = w2.RegisterPostAccumulateGradHook(_ => events.Add(w1.Grad == null ? "w2 (w1 pending)" : "w2 (w1 done)"));
        x.MatMul(w1).Relu().MatMul(w2).Sum().Backward();
        Assert.Equal(new[] { "w2 (w1 pending)", "w1" }, events);
    }

    [Fact]
    public void Queued_callbacks_run_after_every_hook_before_backward_returns_and_may_queue_more()
    {
        var a = Leaf([1f, 2f], 2);
        var b = Leaf([3f], 1);
        var events = new List<string>();
        using var ha = a.RegisterPostAccumulateGradHook(_ =>
        {
            events.Add("a");
            Autograd.QueueCallback(() =>
            {
                events.Add("callback");
                Autograd.QueueCallback(() => events.Add("nested"));
            });
        });
        using var hb = b.RegisterPostAccumulateGradHook(_ => events.Add("b"));
        ((a * 2f).Sum() + b.Sum() * 5f).Backward();
        Assert.Equal(4, events.Count);
        Assert.Equal(["callback", "nested"], events.Skip(2));
        Assert.Contains("a", events.Take(2));
        Assert.Contains("b", events.Take(2));
    }

    [Fact]
    public void Grad_fires_no_hook_and_a_disposed_handle_removes_its_hook()
    {
        var x = Leaf([1f, 2f], 2);
        int calls = 0;
        var handle = x.RegisterPostAccumulateGradHook(_ => calls++);
        Autograd.Grad((x * x).Sum(), [x]);
        Assert.Equal(0, calls);
        (x * x).Sum().Backward();
        Assert.Equal(1, calls);
        handle.Dispose();
        handle.Dispose();
        (x * x).Sum().Backward();
        Assert.Equal(1, calls);
    }

    [Fact]
    public void A_create_graph_pass_fires_hooks_with_a_differentiable_gradient()
    {
        var x = Leaf([1f, 2f], 2);
        bool recorded = false;
        using var handle = x.RegisterPostAccumulateGradHook(t => recorded = t.Grad!.RequiresGrad);
        (x * x * x).Sum().Backward(createGraph: true);
        Assert.True(recorded);
    }

    [Fact]
    public void A_throwing_hook_ends_the_pass_and_drops_its_callbacks()
    {
        var x = Leaf([1f, 2f], 2);
        bool ran = false;
        using var handle = x.RegisterPostAccumulateGradHook(_ =>
        {
            Autograd.QueueCallback(() => ran = true);
            throw new InvalidOperationException("hook failed");
        });
        var e = Assert.Throws<InvalidOperationException>(() => (x * x).Sum().Backward());
        Assert.Equal("hook failed", e.Message);
        Assert.False(ran);
        handle.Dispose();
        (x * x).Sum().Backward(); // the next pass starts clean
        Assert.False(ran);
    }

    [Fact]
    public void Bad_registrations_and_callbacks_outside_a_pass_throw_clear_errors()
    {
        var x = Leaf([1f, 2f], 2);
        var y = x * 2f;
        Assert.Contains("result of", Assert.Throws<InvalidOperationException>(() => y.RegisterPostAccumulateGradHook(_ => { })).Message);
        var constant = Tensor.FromArray([1f], [1], Cpu);
        Assert.Contains("does not require gradients", Assert.Throws<InvalidOperationException>(() => constant.RegisterPostAccumulateGradHook(_ => { })).Message);
        Assert.Contains("no backward pass", Assert.Throws<InvalidOperationException>(() => Autograd.QueueCallback(() => { })).Message);
    }
}
