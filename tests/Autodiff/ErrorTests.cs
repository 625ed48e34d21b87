using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// Bad input fails on the host, before any kernel runs, with a message that names the op and the offending
/// shapes or values in the user's terms. Inputs are built with FromArray only (a host copy, no kernel), so these
/// tests also pass against kernel sets that are mere stubs: proof that validation precedes the launch.
/// </summary>
public sealed class ErrorTests
{
    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    private static Tensor T(params int[] shape) =>
        Tensor.FromArray(Enumerable.Range(0, (int)HostRef.Size(shape)).Select(i => 0.1f * i).ToArray(), shape, Cpu, requiresGrad: true);

    [Fact]
    public void Add_with_mismatched_shapes_names_op_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => T(3, 4) + T(5));
        Assert.Contains("add", e.Message);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[5]", e.Message);
        Assert.True(e.Message.IndexOf("[3, 4]", StringComparison.Ordinal) < e.Message.IndexOf("[5]", StringComparison.Ordinal),
            "shapes in operand order: " + e.Message);
    }

    [Theory]
    [InlineData("sub")]
    [InlineData("mul")]
    [InlineData("div")]
    [InlineData("maximum")]
    [InlineData("minimum")]
    [InlineData("pow")]
    public void Other_binary_ops_with_mismatched_shapes_name_op_and_shapes(string op)
    {
        Func<Tensor, Tensor, Tensor> f = op switch
        {
            "sub" => (a, b) => a - b,
            "mul" => (a, b) => a * b,
            "div" => (a, b) => a / b,
            "maximum" => Ops.Maximum,
            "minimum" => Ops.Minimum,
            _ => Ops.Pow,
        };
        var e = Assert.Throws<ArgumentException>(() => f(T(2, 3), T(4, 3)));
        Assert.StartsWith(op + ":", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4, 3]", e.Message);
    }

    [Fact]
    public void Matmul_with_mismatched_inner_dimensions_names_op_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => T(3, 4).MatMul(T(5, 2)));
        Assert.Contains("matmul", e.Message);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[5, 2]", e.Message);

        // With transposes the check uses op(A), op(B).
        var t = Assert.Throws<ArgumentException>(() => T(4, 3).MatMul(T(5, 2), transA: true));
        Assert.Contains("[4, 3]", t.Message);
    }

    [Fact]
    public void Matmul_with_mismatched_batches_or_rank_names_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => T(2, 3, 4).MatMul(T(3, 4, 5)));
        Assert.Contains("matmul", e.Message);
        Assert.Contains("[2, 3, 4]", e.Message);
        Assert.Contains("[3, 4, 5]", e.Message);

        var r = Assert.Throws<ArgumentException>(() => T(4).MatMul(T(4, 2)));
        Assert.Contains("matmul", r.Message);
        Assert.Contains("[4]", r.Message);
    }

    [Fact]
    public void Cross_entropy_label_out_of_range_names_the_label()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => T(3, 4).CrossEntropy([1, 7, 0]));
        Assert.Contains("cross_entropy", e.Message);
        Assert.Contains("7", e.Message);
        Assert.Contains("[0, 4)", e.Message);

        var neg = Assert.ThrowsAny<ArgumentException>(() => T(2, 4).CrossEntropy([-1, 0]));
        Assert.Contains("-1", neg.Message);
    }

    [Fact]
    public void Cross_entropy_label_count_mismatch_names_both_counts()
    {
        var e = Assert.Throws<ArgumentException>(() => T(3, 4).CrossEntropy([1, 2]));
        Assert.Contains("cross_entropy", e.Message);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("2 labels", e.Message);
    }

    [Fact]
    public void Cross_entropy_needs_rank_two_logits()
    {
        var e = Assert.Throws<ArgumentException>(() => T(2, 3, 4).CrossEntropy([0, 1]));
        Assert.Contains("cross_entropy", e.Message);
        Assert.Contains("[2, 3, 4]", e.Message);
    }

    [Fact]
    public void Mse_loss_with_different_shapes_names_both()
    {
        var e = Assert.Throws<ArgumentException>(() => T(3, 4).MseLoss(T(4, 3)));
        Assert.Contains("mse_loss", e.Message);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[4, 3]", e.Message);
    }

    public static TheoryData<string> DisposedOps => new()
    {
        "exp", "gelu_tanh", "gelu_erf", "add", "matmul", "sum", "max", "softmax", "log_softmax", "reshape", "permute",
        "index_select", "cross_entropy", "affine", "clone", "detach", "to", "broadcast_to",
    };

    [Theory]
    [MemberData(nameof(DisposedOps))]
    public void Tensor_used_after_dispose_throws_naming_the_op(string op)
    {
        var x = T(2, 3);
        var other = T(2, 3);
        x.Dispose();
        Func<Tensor> f = op switch
        {
            "exp" => () => x.Exp(),
            "gelu_tanh" => () => x.GeluTanh(),
            "gelu_erf" => () => x.GeluErf(),
            "add" => () => other + x,
            "matmul" => () => other.MatMul(x, transB: true),
            "sum" => () => x.Sum(),
            "max" => () => x.Max(0),
            "softmax" => () => x.Softmax(),
            "log_softmax" => () => x.LogSoftmax(),
            "reshape" => () => x.Reshape(3, 2),
            "permute" => () => x.Permute(1, 0),
            "index_select" => () => x.IndexSelect(0, new IndexTensor(new[] { 0 })),
            "cross_entropy" => () => x.CrossEntropy([0, 1]),
            "affine" => () => x * 2f,
            "clone" => () => x.Clone(),
            "detach" => () => x.Detach(),
            "to" => () => x.To(Cpu),
            _ => () => x.BroadcastTo([4, 2, 3]),
        };
        var e = Assert.Throws<ObjectDisposedException>(() => f());
        Assert.Contains(op, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith(op + ":", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("[2, 3]", e.Message);
    }

    [Fact]
    public void Backward_and_ToArray_after_dispose_throw()
    {
        var x = T(3);
        x.Dispose();
        var b = Assert.Throws<ObjectDisposedException>(() => x.Backward(T(3)));
        Assert.Contains("backward", b.Message);
        var e = Assert.Throws<ObjectDisposedException>(() => x.ToArray());
        Assert.Contains("ToArray", e.Message);
    }

    [Fact]
    public void Reshape_to_an_incompatible_size_names_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => T(2, 3).Reshape(4, 2));
        Assert.Contains("reshape", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4, 2]", e.Message);

        var infer = Assert.Throws<ArgumentException>(() => T(2, 3).Reshape(-1, 4));
        Assert.Contains("[-1, 4]", infer.Message);
        var twice = Assert.Throws<ArgumentException>(() => T(2, 3).Reshape(-1, -1));
        Assert.Contains("-1", twice.Message);
    }

    [Fact]
    public void Permute_with_a_repeated_axis_names_the_permutation()
    {
        var e = Assert.Throws<ArgumentException>(() => T(2, 3, 4).Permute(0, 2, 0));
        Assert.Contains("permute", e.Message);
        Assert.Contains("[0, 2, 0]", e.Message);

        var len = Assert.Throws<ArgumentException>(() => T(2, 3, 4).Permute(1, 0));
        Assert.Contains("[2, 3, 4]", len.Message);
        var range = Assert.ThrowsAny<ArgumentException>(() => T(2, 3).Permute(0, 2));
        Assert.Contains("permute", range.Message);
    }

    [Fact]
    public void Index_select_with_an_out_of_range_index_names_index_and_extent()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => T(4, 3).IndexSelect(0, new IndexTensor(new[] { 0, 3, 4, 1 })));
        Assert.Contains("index_select", e.Message);
        Assert.Contains("index 4", e.Message);
        Assert.Contains("[0, 4)", e.Message);

        var add = Assert.ThrowsAny<ArgumentException>(() => T(2, 3).IndexAdd(1, new IndexTensor(new[] { 0, 5, 1 }), 4));
        Assert.Contains("index_add", add.Message);
        Assert.Contains("5", add.Message);

        var len = Assert.Throws<ArgumentException>(() => T(2, 3).IndexAdd(1, new IndexTensor(new[] { 0, 1 }), 4));
        Assert.Contains("index_add", len.Message);
    }

    [Fact]
    public void Axis_out_of_range_names_op_and_rank()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => T(2, 3).Sum(2));
        Assert.Contains("sum", e.Message);
        Assert.Contains("rank 2", e.Message);
        var s = Assert.ThrowsAny<ArgumentException>(() => T(2, 3).Softmax(-3));
        Assert.Contains("softmax", s.Message);
        var d = Assert.Throws<ArgumentException>(() => T(2, 3).Mean([1, -1]));
        Assert.Contains("mean", d.Message);
    }

    [Fact]
    public void Broadcast_to_an_incompatible_shape_names_both()
    {
        var e = Assert.Throws<ArgumentException>(() => T(3, 2).BroadcastTo([3, 4]));
        Assert.Contains("broadcast_to", e.Message);
        Assert.Contains("[3, 2]", e.Message);
        Assert.Contains("[3, 4]", e.Message);
    }

    [Fact]
    public void Unknown_device_name_lists_the_available_names()
    {
        var e = Assert.Throws<ArgumentException>(() => Device.Parse("tpu"));
        Assert.Contains("tpu", e.Message);
        Assert.Contains("cpu", e.Message);
        Assert.Contains("ilgpu-cpu", e.Message);
        Assert.Same(Cpu, Device.Parse(" CPU "));
    }

    [Fact]
    public void FromArray_with_the_wrong_length_names_shape_and_length()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new float[5], [2, 3], Cpu));
        Assert.Contains("FromArray", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("6", e.Message);
        Assert.Contains("5", e.Message);
    }

    [Fact]
    public void Item_on_a_multi_element_tensor_names_the_shape()
    {
        var e = Assert.Throws<InvalidOperationException>(() => T(2, 2).Item());
        Assert.Contains("[2, 2]", e.Message);
    }

    [Fact]
    public void Names_appear_in_messages()
    {
        var w = T(3, 4);
        w.Name = "weight";
        var e = Assert.Throws<ArgumentException>(() => w.MatMul(T(3, 4)));
        Assert.Contains("weight [3, 4]", e.Message);
    }
}

/// <summary>Errors that need a second device (ILGPU's CPU accelerator); in the ilgpu collection, which runs alone.</summary>
[Collection("ilgpu")]
public sealed class DeviceMixingErrorTests
{
    [Fact]
    public void Mixing_devices_names_both_devices()
    {
        var cpu = Device.Get(DeviceKind.Cpu);
        var ilgpu = Device.Get(DeviceKind.IlgpuCpu);
        using var a = Tensor.FromArray(new float[6], [2, 3], cpu);
        using var b = Tensor.FromArray(new float[6], [2, 3], ilgpu);

        var e = Assert.Throws<ArgumentException>(() => a + b);
        Assert.Contains("add", e.Message);
        Assert.Contains("'cpu'", e.Message);
        Assert.Contains("'ilgpu-cpu'", e.Message);

        var m = Assert.Throws<ArgumentException>(() => b.MatMul(a, transB: true));
        Assert.Contains("matmul", m.Message);
        Assert.Contains("'cpu'", m.Message);
        Assert.Contains("'ilgpu-cpu'", m.Message);

        using var bw = Tensor.FromArray(new float[3], [3], ilgpu);
        var x = Tensor.FromArray(new float[3], [3], cpu, requiresGrad: true);
        var g = Assert.Throws<ArgumentException>(() => x.Backward(bw));
        Assert.Contains("backward", g.Message);
    }
}
