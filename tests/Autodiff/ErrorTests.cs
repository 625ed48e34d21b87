using Engine.Autodiff;
using Engine.Kernels;
using Engine.Tests.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// Bad input fails on the host, before any kernel runs, with a message that names the op and the offending
/// shapes or values in the user's terms. Inputs are built with FromArray only (a host copy, no kernel), so these
/// tests also pass against kernel sets that are mere stubs: proof that validation precedes the launch.
/// </summary>
public sealed class ErrorTests
{
    private static Device Cpu => Device.Get(DeviceKind.Cpu);

    /// <summary>Asserts that the message of <paramref name="e"/> contains each of <paramref name="parts"/>; returns e.</summary>
    internal static TException AssertNames<TException>(TException e, params string[] parts) where TException : Exception
    {
        foreach (var part in parts) Assert.Contains(part, e.Message);
        return e;
    }

    private static Tensor T(params int[] shape) =>
        Tensor.FromArray(Enumerable.Range(0, (int)HostReference.Numel(shape)).Select(i => 0.1f * i).ToArray(), shape, Cpu, requiresGrad: true);

    [Fact]
    public void Add_with_mismatched_shapes_names_op_and_both_shapes()
    {
        var e = AssertNames(Assert.Throws<ArgumentException>(() => T(3, 4) + T(5)), "add", "[3, 4]", "[5]");
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
        AssertNames(Assert.Throws<ArgumentException>(() => T(3, 4).MatMul(T(5, 2))), "matmul", "[3, 4]", "[5, 2]");

        // With transposes the check uses op(A), op(B).
        AssertNames(Assert.Throws<ArgumentException>(() => T(4, 3).MatMul(T(5, 2), transA: true)), "[4, 3]");
    }

    [Fact]
    public void Matmul_with_mismatched_batches_or_rank_names_shapes()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3, 4).MatMul(T(3, 4, 5))), "matmul", "[2, 3, 4]", "[3, 4, 5]");

        AssertNames(Assert.Throws<ArgumentException>(() => T(4).MatMul(T(4, 2))), "matmul", "[4]");
    }

    [Fact]
    public void Cross_entropy_label_out_of_range_names_the_label()
    {
        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(3, 4).CrossEntropy([1, 7, 0])), "cross_entropy", "7", "[0, 4)");

        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(2, 4).CrossEntropy([-1, 0])), "-1");
    }

    [Fact]
    public void Cross_entropy_label_count_mismatch_names_both_counts()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(3, 4).CrossEntropy([1, 2])), "cross_entropy", "[3, 4]", "2 labels");
    }

    [Fact]
    public void Cross_entropy_needs_rank_two_logits()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3, 4).CrossEntropy([0, 1])), "cross_entropy", "[2, 3, 4]");
    }

    [Fact]
    public void Mse_loss_with_different_shapes_names_both()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(3, 4).MseLoss(T(4, 3))), "mse_loss", "[3, 4]", "[4, 3]");
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
        AssertNames(Assert.Throws<ObjectDisposedException>(() => x.Backward(T(3))), "backward");
        AssertNames(Assert.Throws<ObjectDisposedException>(() => x.ToArray()), "ToArray");
    }

    [Fact]
    public void Reshape_to_an_incompatible_size_names_both_shapes()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3).Reshape(4, 2)), "reshape", "[2, 3]", "[4, 2]");

        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3).Reshape(-1, 4)), "[-1, 4]");
        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3).Reshape(-1, -1)), "-1");
    }

    [Fact]
    public void Permute_with_a_repeated_axis_names_the_permutation()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3, 4).Permute(0, 2, 0)), "permute", "[0, 2, 0]");

        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3, 4).Permute(1, 0)), "[2, 3, 4]");
        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(2, 3).Permute(0, 2)), "permute");
    }

    [Fact]
    public void Index_select_with_an_out_of_range_index_names_index_and_extent()
    {
        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(4, 3).IndexSelect(0, new IndexTensor(new[] { 0, 3, 4, 1 }))),
            "index_select", "index 4", "[0, 4)");

        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(2, 3).IndexAdd(1, new IndexTensor(new[] { 0, 5, 1 }), 4)), "index_add", "5");

        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3).IndexAdd(1, new IndexTensor(new[] { 0, 1 }), 4)), "index_add");
    }

    [Fact]
    public void Axis_out_of_range_names_op_and_rank()
    {
        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(2, 3).Sum(2)), "sum", "rank 2");
        AssertNames(Assert.ThrowsAny<ArgumentException>(() => T(2, 3).Softmax(-3)), "softmax");
        AssertNames(Assert.Throws<ArgumentException>(() => T(2, 3).Mean([1, -1])), "mean");
    }

    [Fact]
    public void Broadcast_to_an_incompatible_shape_names_both()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => T(3, 2).BroadcastTo([3, 4])), "broadcast_to", "[3, 2]", "[3, 4]");
    }

    [Fact]
    public void Unknown_device_name_lists_the_available_names()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => Device.Parse("tpu")), "tpu", "cpu", "ilgpu-cpu");
        Assert.Same(Cpu, Device.Parse(" CPU "));
    }

    [Fact]
    public void FromArray_with_the_wrong_length_names_shape_and_length()
    {
        AssertNames(Assert.Throws<ArgumentException>(() => Tensor.FromArray(new float[5], [2, 3], Cpu)), "FromArray", "[2, 3]", "6", "5");
    }

    [Fact]
    public void Item_on_a_multi_element_tensor_names_the_shape()
    {
        AssertNames(Assert.Throws<InvalidOperationException>(() => T(2, 2).Item()), "[2, 2]");
    }

    [Fact]
    public void Names_appear_in_messages()
    {
        var w = T(3, 4);
        w.Name = "weight";
        AssertNames(Assert.Throws<ArgumentException>(() => w.MatMul(T(3, 4))), "weight [3, 4]");
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
        var ilgpu = TestDevices.Ilgpu;
        using var a = Tensor.FromArray(new float[6], [2, 3], cpu);
        using var b = Tensor.FromArray(new float[6], [2, 3], ilgpu);

        ErrorTests.AssertNames(Assert.Throws<ArgumentException>(() => a + b), "add", "'cpu'", $"'{ilgpu.Name}'");

        ErrorTests.AssertNames(Assert.Throws<ArgumentException>(() => b.MatMul(a, transB: true)), "matmul", "'cpu'", $"'{ilgpu.Name}'");

        using var bw = Tensor.FromArray(new float[3], [3], ilgpu);
        var x = Tensor.FromArray(new float[3], [3], cpu, requiresGrad: true);
        ErrorTests.AssertNames(Assert.Throws<ArgumentException>(() => x.Backward(bw)), "backward");
    }
}
