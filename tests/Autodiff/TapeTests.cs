using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>The tape itself: accumulation, grad mode, detach, sharing, explicit gradients, create-graph, scopes, views.</summary>
public sealed class TapeTests
{
    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    private static Tensor Leaf(float[] data, params int[] shape) => Tensor.FromArray(data, shape, Cpu, requiresGrad: true);

    private static void Close(double[] expected, Tensor? actual, double tol = 1e-5)
    {
        Assert.NotNull(actual);
        var a = actual!.ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(a[i] - expected[i]) <= tol * (1 + Math.Abs(expected[i])),
                $"element {i}: {a[i]:G9}, expected {expected[i]:G9}");
    }

    private static readonly float[] X3 = [0.5f, -1f, 2f];

    [Fact]
    public void Gradients_accumulate_across_two_backward_calls()
    {
        var x = Leaf(X3, 3);
        var loss = (x * x).Sum();
        loss.Backward(retainGraph: true);
        Close([1, -2, 4], x.Grad);
        loss.Backward(); // the same graph again, kept on purpose: the gradient adds up
        Close([2, -4, 8], x.Grad);
        (x * 3f).Sum().Backward(); // a fresh graph adds too
        Close([5, -1, 11], x.Grad);
    }

    [Fact]
    public void ZeroGrad_clears_and_the_next_backward_starts_from_zero()
    {
        var x = Leaf(X3, 3);
        (x * x).Sum().Backward();
        var old = x.Grad!;
        x.ZeroGrad();
        Assert.Null(x.Grad);
        Assert.True(old.IsDisposed); // the engine-owned gradient buffer is freed
        (x * x).Sum().Backward();
        Close([1, -2, 4], x.Grad);
        x.ZeroGrad();
        x.ZeroGrad(); // twice is harmless
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Leaf_gradient_is_an_own_copy_that_keeps_past_a_scope()
    {
        var x = Leaf(X3, 3);
        using (new TensorScope())
        {
            x.Square().Sum().Backward();
        }
        Assert.False(x.Grad!.IsDisposed);
        Assert.False(x.Grad.RequiresGrad);
        Close([1, -2, 4], x.Grad);
    }

    [Fact]
    public void NoGrad_records_nothing_and_scopes_nest()
    {
        var x = Leaf(X3, 3);
        Assert.True(GradMode.IsEnabled);
        using (GradMode.NoGrad())
        {
            Assert.False(GradMode.IsEnabled);
            var y = (x * x).Exp().Sum();
            Assert.False(y.RequiresGrad);
            Assert.True(y.IsLeaf);
            Assert.Throws<InvalidOperationException>(() => y.Backward());
            using (GradMode.NoGrad()) Assert.False(GradMode.IsEnabled);
            Assert.False(GradMode.IsEnabled);
            using (GradMode.EnableGrad())
            {
                Assert.True(GradMode.IsEnabled);
                Assert.True((x * 2f).RequiresGrad);
            }
            Assert.False(GradMode.IsEnabled);
        }
        Assert.True(GradMode.IsEnabled);
        var z = x * 2f;
        Assert.True(z.RequiresGrad);
        Assert.False(z.IsLeaf);
    }

    [Fact]
    public void Ops_on_tensors_without_RequiresGrad_are_not_recorded()
    {
        var a = Tensor.FromArray(X3, [3], Cpu);
        var y = a.Exp() * a;
        Assert.False(y.RequiresGrad);
        Assert.True(y.IsLeaf);
    }

    [Fact]
    public void Detach_stops_the_gradient_and_shares_the_data()
    {
        var x = Leaf(X3, 3);
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        Assert.True(d.IsLeaf);
        Close([0.5, -1, 2], d);
        // d(x_detached * x)/dx = x_detached: only the non-detached path contributes.
        (d * x).Sum().Backward();
        Close([0.5, -1, 2], x.Grad);
        Assert.Null(d.Grad);

        x.CopyFrom([7f, 8f, 9f]);
        Close([7, 8, 9], d); // same storage
    }

    [Fact]
    public void Detached_only_graph_has_nothing_to_differentiate()
    {
        var x = Leaf(X3, 3);
        var y = (x.Detach() * 2f).Sum();
        Assert.False(y.RequiresGrad);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("backward", e.Message);
    }

    [Fact]
    public void Tensor_used_twice_gets_the_sum_of_both_paths()
    {
        var x = Leaf(X3, 3);
        (x * x).Sum().Backward();
        Close([1, -2, 4], x.Grad);

        var y = Leaf(X3, 3);
        (y + y).Sum().Backward();
        Close([2, 2, 2], y.Grad);

        // Diamond: a = exp(z) feeds two branches; L = Σ a² + a, dL/dz = (2a + 1) a.
        var z = Leaf(X3, 3);
        var a = z.Exp();
        (a * a + a).Sum().Backward();
        Close(X3.Select(v => (2 * Math.Exp(v) + 1) * Math.Exp(v)).ToArray(), z.Grad, 1e-5);

        // Through a reshape view and the original at once.
        var w = Leaf([1f, 2f, 3f, 4f], 2, 2);
        (w.Reshape(4) * w.Reshape(4)).Sum().Backward();
        Close([2, 4, 6, 8], w.Grad);
    }

    [Fact]
    public void Backward_on_a_non_scalar_without_gradient_throws()
    {
        var x = Leaf(X3, 3);
        var y = x * 2f;
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("backward", e.Message);
        Assert.Contains("[3]", e.Message);
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Backward_on_a_one_element_non_scalar_implies_a_gradient_of_one()
    {
        var x = Leaf(X3, 3);
        var y = x.Sum([0], keepDim: true); // shape [1]
        y.Backward();
        Close([1, 1, 1], x.Grad);
    }

    [Fact]
    public void Backward_with_explicit_gradient()
    {
        var x = Leaf(X3, 3);
        var y = x * x; // dy/dx = 2x elementwise
        y.Backward(Tensor.FromArray([1f, 10f, 100f], [3], Cpu));
        Close([1, -20, 400], x.Grad);

        var m = Leaf([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        m.Sum(1).Backward(Tensor.FromArray([2f, -1f], [2], Cpu));
        Close([2, 2, 2, -1, -1, -1], m.Grad);
    }

    [Fact]
    public void Backward_with_a_gradient_of_the_wrong_shape_throws()
    {
        var x = Leaf(X3, 3);
        var y = x * 2f;
        var e = Assert.Throws<ArgumentException>(() => y.Backward(Tensor.FromArray([1f, 1f], [2], Cpu)));
        Assert.Contains("[2]", e.Message);
        Assert.Contains("[3]", e.Message);
    }

    [Fact]
    public void Backward_on_a_leaf_accumulates_the_gradient_itself()
    {
        var x = Leaf([3f], []);
        x.Backward();
        Close([1], x.Grad);
    }

    [Fact]
    public void Inputs_without_RequiresGrad_get_no_gradient()
    {
        var x = Leaf(X3, 3);
        var c = Tensor.FromArray([1f, 2f, 3f], [3], Cpu);
        (x * c).Sum().Backward();
        Close([1, 2, 3], x.Grad);
        Assert.Null(c.Grad);
    }

    [Fact]
    public void RequiresGrad_cannot_be_cleared_on_an_op_result()
    {
        var x = Leaf(X3, 3);
        var y = x.Exp();
        var e = Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
        Assert.Contains("exp", e.Message);
        Assert.Contains("Detach", e.Message);
    }

    [Fact]
    public void CreateGraph_gives_a_differentiable_gradient_of_x_cubed()
    {
        foreach (var cube in new Func<Tensor, Tensor>[] { x => x.Pow(3f), x => x * x * x, x => x.Square() * x })
        {
            var x = Leaf(X3, 3);
            cube(x).Sum().Backward(createGraph: true);
            var g = x.Grad!;
            Assert.True(g.RequiresGrad);
            Assert.False(g.IsLeaf);
            Close(X3.Select(v => 3.0 * v * v).ToArray(), g);

            x.ZeroGrad(); // g is not engine-owned: it stays alive
            Assert.False(g.IsDisposed);
            g.Sum().Backward();
            Close(X3.Select(v => 6.0 * v).ToArray(), x.Grad);
            Assert.False(x.Grad!.RequiresGrad);

            // Third order: d³/dx³ x³ = 6.
            x.ZeroGrad();
            cube(x).Sum().Backward(createGraph: true);
            var g1 = x.Grad!;
            x.ZeroGrad();
            g1.Sum().Backward(createGraph: true);
            var g2 = x.Grad!;
            x.ZeroGrad();
            g2.Sum().Backward();
            Close([6, 6, 6], x.Grad);
        }
    }

    [Fact]
    public void CreateGraph_second_derivative_of_tanh()
    {
        // d²/dx² tanh x = -2 tanh x (1 - tanh² x).
        var x = Leaf(X3, 3);
        x.Tanh().Sum().Backward(createGraph: true);
        var g = x.Grad!;
        Close(X3.Select(v => 1 - Math.Tanh(v) * Math.Tanh(v)).ToArray(), g);
        x.ZeroGrad();
        g.Sum().Backward();
        Close(X3.Select(v => -2 * Math.Tanh(v) * (1 - Math.Tanh(v) * Math.Tanh(v))).ToArray(), x.Grad);
    }

    [Fact]
    public void CreateGraph_mixed_partials_of_a_product()
    {
        // f = Σ x² y: ∂f/∂x = 2xy; ∂/∂y Σ ∂f/∂x = 2x.
        var x = Leaf(X3, 3);
        var y = Leaf([1f, 2f, 3f], 3);
        (x.Square() * y).Sum().Backward(createGraph: true);
        var gx = x.Grad!;
        Close([1, -4, 12], gx);
        x.ZeroGrad();
        y.ZeroGrad();
        gx.Sum().Backward();
        Close([1, -2, 4], y.Grad);
        Close([2, 4, 6], x.Grad);
    }

    [Fact]
    public void Without_createGraph_the_gradient_is_a_constant()
    {
        var x = Leaf(X3, 3);
        x.Pow(3f).Sum().Backward();
        Assert.False(x.Grad!.RequiresGrad);
        Assert.True(x.Grad.IsLeaf);
    }

    [Fact]
    public void TensorScope_disposes_temporaries_and_keeps_kept_ones()
    {
        var outside = Tensor.FromArray(X3, [3], Cpu);
        Tensor temp, kept, innerKept, innerTemp;
        using (var scope = new TensorScope())
        {
            temp = outside * 2f;
            kept = scope.Keep(temp + 1f);
            using (var inner = new TensorScope())
            {
                innerTemp = kept.Exp();
                innerKept = inner.Keep(kept * 3f);
            }
            Assert.True(innerTemp.IsDisposed);
            Assert.False(innerKept.IsDisposed); // moved to the outer scope
        }
        Assert.True(temp.IsDisposed);
        Assert.True(innerKept.IsDisposed); // the outer scope did not keep it
        Assert.False(kept.IsDisposed);
        Assert.False(outside.IsDisposed);
        Close([2, -1, 5], kept);
        Assert.Throws<ObjectDisposedException>(() => temp.ToArray());
    }

    [Fact]
    public void TensorScope_keeps_parameter_gradients_and_frees_the_graph()
    {
        var w = Leaf(X3, 3);
        Tensor hidden;
        using (new TensorScope())
        {
            hidden = w.Exp();
            (hidden * w).Sum().Backward();
        }
        Assert.True(hidden.IsDisposed);
        Assert.False(w.IsDisposed);
        Close(X3.Select(v => Math.Exp(v) * (1 + v)).ToArray(), w.Grad);
    }

    [Fact]
    public void Disposing_twice_is_harmless_and_scope_after_manual_dispose_is_fine()
    {
        Tensor t;
        using (new TensorScope())
        {
            t = Tensor.FromArray(X3, [3], Cpu);
            t.Dispose();
            t.Dispose();
        }
        Assert.True(t.IsDisposed);
    }

    [Fact]
    public void Reshape_views_share_storage()
    {
        var x = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], [2, 3], Cpu);
        var v = x.Reshape(3, 2);
        var w = x.Reshape(-1);
        Assert.Equal([3, 2], v.Shape);
        Assert.Equal([6], w.Shape);
        Close([1, 2, 3, 4, 5, 6], v);

        x.CopyFrom([6f, 5f, 4f, 3f, 2f, 1f]);
        Close([6, 5, 4, 3, 2, 1], v);
        v.CopyFrom([0f, 1f, 0f, 1f, 0f, 1f]);
        Close([0, 1, 0, 1, 0, 1], x);
        Close([0, 1, 0, 1, 0, 1], w);

        // The storage lives until the last view is disposed.
        x.Dispose();
        Assert.Throws<ObjectDisposedException>(() => x.ToArray());
        Close([0, 1, 0, 1, 0, 1], v);
        v.Dispose();
        Close([0, 1, 0, 1, 0, 1], w);
        w.Dispose();
    }

    [Fact]
    public void Clone_has_its_own_storage()
    {
        var x = Tensor.FromArray([1f, 2f], [2], Cpu);
        var c = x.Clone();
        x.CopyFrom([5f, 6f]);
        Close([1, 2], c);
    }

    [Fact]
    public void To_the_same_device_returns_the_tensor()
    {
        var x = Leaf(X3, 3);
        Assert.Same(x, x.To(Cpu));
    }

    [Fact]
    public void Backward_visits_a_deep_chain_without_recursion_limits()
    {
        var x = Leaf([0.1f], 1);
        var y = x;
        for (int i = 0; i < 5000; i++) y = y * 1f;
        y.Sum().Backward();
        Close([1], x.Grad);
    }
}

/// <summary>Gradients at the documented special points: ties, kinks, zero exponents, and engine-owned buffers.</summary>
public sealed class GradientEdgeTests
{
    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    private static float[] GradOf(Func<Tensor, Tensor> f, float[] x0)
    {
        var x = Tensor.FromArray(x0, [x0.Length], Cpu, requiresGrad: true);
        f(x).Sum().Backward();
        return x.Grad!.ToArray();
    }

    [Fact]
    public void Relu_and_abs_have_zero_gradient_at_zero()
    {
        Assert.Equal([0f, 1f, 0f], GradOf(x => x.Relu(), [0f, 2f, -2f]));
        Assert.Equal([0f, 1f, -1f], GradOf(x => x.Abs(), [0f, 2f, -2f]));
    }

    [Fact]
    public void Max_reduction_splits_the_gradient_between_ties()
    {
        Assert.Equal([0f, 0.5f, 0.5f, 0f], GradOf(x => x.Max(), [1f, 3f, 3f, -4f]));
        var m = Tensor.FromArray([2f, 2f, 1f, 0f, 5f, 5f], [2, 3], Cpu, requiresGrad: true);
        m.Max(1).Sum().Backward();
        Assert.Equal([0.5f, 0.5f, 0f, 0f, 0.5f, 0.5f], m.Grad!.ToArray());
    }

    [Fact]
    public void Maximum_and_minimum_split_the_gradient_on_ties()
    {
        var a = Tensor.FromArray([1f, 2f, 3f], [3], Cpu, requiresGrad: true);
        var b = Tensor.FromArray([1f, 5f, 0f], [3], Cpu, requiresGrad: true);
        (Ops.Maximum(a, b) + 10f * Ops.Minimum(a, b)).Sum().Backward();
        Assert.Equal([5.5f, 10f, 1f], a.Grad!.ToArray());
        Assert.Equal([5.5f, 1f, 10f], b.Grad!.ToArray());
    }

    [Fact]
    public void Pow_with_constant_exponent_zero_has_zero_gradient_at_zero()
    {
        // d/dx x⁰ = 0, including at x = 0 (PyTorch and JAX give 0); 0 · 0⁻¹ must not turn into NaN.
        Assert.Equal([0f, 0f, 0f], GradOf(x => x.Pow(0f), [0f, 1f, -2f]));
    }

    [Fact]
    public void Pow_with_tensor_exponent_zero_has_zero_base_gradient_at_zero()
    {
        var x = Tensor.FromArray([0f, 1f], [2], Cpu, requiresGrad: true);
        var zero = Tensor.FromArray([0f, 0f], [2], Cpu);
        Ops.Pow(x, zero).Sum().Backward();
        Assert.Equal([0f, 0f], x.Grad!.ToArray());
    }

    [Fact]
    public void Pow_with_exponent_one_and_two_at_zero_is_finite()
    {
        Assert.Equal([1f, 1f], GradOf(x => x.Pow(1f), [0f, 3f]));
        Assert.Equal([0f, 6f], GradOf(x => x.Pow(2f), [0f, 3f]));
    }

    [Fact]
    public void Engine_owned_gradient_replaced_by_a_create_graph_pass_is_freed()
    {
        var x = Tensor.FromArray([1f, 2f], [2], Cpu, requiresGrad: true);
        x.Square().Sum().Backward();
        var owned = x.Grad!; // engine-owned (ZeroGrad would free it)
        using (new TensorScope())
        {
            x.Square().Sum().Backward(createGraph: true);
            Assert.Equal([4f, 8f], x.Grad!.ToArray());
            x.ZeroGrad();
        }
        // Nothing references the first buffer any more: it must have been freed, not leaked (device memory on a GPU).
        Assert.True(owned.IsDisposed, "the engine-owned gradient of the first pass leaked");
    }
}
