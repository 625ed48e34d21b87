using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// The tensor conveniences beyond the gradcheck table: comparisons and logical reductions, closeness, positions of
/// extremes, multi-dimensional copies, printing, splitting, and their errors. Written once, run per kernel set.
/// </summary>
public abstract class TensorApiTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    private Tensor T(float[] data, params int[] shape) => Tensor.FromArray(data, shape, Device);

    public static TheoryData<string> Comparisons => new() { "eq", "ne", "gt", "ge", "lt", "le" };

    [Theory]
    [MemberData(nameof(Comparisons))]
    public void Comparison_matches_ieee_on_ties_and_nan(string name)
    {
        using var scope = new TensorScope();
        float[] a = [1f, 2f, float.NaN, -1f, 3f, 0f];
        float[] b = [1f, 3f, 1f, -2f, float.NaN, -0f];
        Func<float, float, bool> host = name switch
        {
            "eq" => (x, y) => x == y, "ne" => (x, y) => x != y, "gt" => (x, y) => x > y,
            "ge" => (x, y) => x >= y, "lt" => (x, y) => x < y, _ => (x, y) => x <= y,
        };
        Func<Tensor, Tensor, Tensor> op = name switch
        {
            "eq" => Ops.Eq, "ne" => Ops.Ne, "gt" => Ops.Gt, "ge" => Ops.Ge, "lt" => Ops.Lt, _ => Ops.Le,
        };
        Func<Tensor, float, Tensor> scalarOp = name switch
        {
            "eq" => Ops.Eq, "ne" => Ops.Ne, "gt" => Ops.Gt, "ge" => Ops.Ge, "lt" => Ops.Lt, _ => Ops.Le,
        };
        var y = op(T(a, 2, 3), T(b, 2, 3)).ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(host(a[i], b[i]) ? 1f : 0f, y[i]);
        var ys = scalarOp(T(a, 6), 1f).ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(host(a[i], 1f) ? 1f : 0f, ys[i]);
        // Broadcasting as arithmetic: [2, 3] against [3].
        var yb = op(T(a, 2, 3), T([1f, 2f, 3f], 3)).ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(host(a[i], new[] { 1f, 2f, 3f }[i % 3]) ? 1f : 0f, yb[i]);
    }

    [Fact]
    public void Comparisons_carry_no_gradient()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray([1f, 2f], [2], Device, requiresGrad: true);
        Assert.False(x.Gt(1.5f).RequiresGrad);
        Assert.False(x.Le(x).RequiresGrad);
    }

    [Fact]
    public void Any_and_All_reduce_whole_tensors_and_axes()
    {
        using var scope = new TensorScope();
        var x = T([0f, 0f, 1f, 2f, 0f, float.NaN], 2, 3);
        Assert.True(x.Any());
        Assert.False(x.All());
        Assert.True(T([1f, -1f, float.NaN], 3).All());
        Assert.False(T([0f, 0f], 2).Any());
        Assert.False(Tensor.Zeros([0, 3], Device).Any());
        Assert.True(Tensor.Zeros([0, 3], Device).All());
        Assert.Equal([1f, 1f], x.Any(1).ToArray());
        Assert.Equal([0f, 0f], x.All(1).ToArray());
        Assert.Equal([0f, 0f, 1f], x.All(0).ToArray());
        Assert.Equal([3, 1], x.Any(0, keepDim: true).Shape.Reverse().ToArray());
    }

    [Fact]
    public void AllClose_follows_numpy_tolerances_infinities_and_nan()
    {
        using var scope = new TensorScope();
        var a = T([1f, 100f, float.PositiveInfinity, float.NaN], 4);
        var b = T([1f + 5e-6f, 100.0005f, float.PositiveInfinity, float.NaN], 4);
        Assert.False(a.AllClose(b));                       // NaN != NaN
        Assert.True(a.AllClose(b, equalNan: true));
        Assert.Equal([1f, 1f, 1f, 0f], a.IsClose(b).ToArray());
        Assert.False(T([1f, 100f], 2).AllClose(T([1f, 100.01f], 2)));
        Assert.True(T([1f, 100f], 2).AllClose(T([1f, 100.01f], 2), rtol: 1e-3));
        Assert.True(T([0f, 1e-9f], 2).AllClose(T([0f], 1)));  // broadcast, atol
        Assert.False(T([float.PositiveInfinity], 1).AllClose(T([float.NegativeInfinity], 1)));
        Assert.Throws<ArgumentException>(() => T([1f, 2f], 2).AllClose(T([1f, 2f, 3f], 3)));
    }

    [Fact]
    public void Extremes_give_values_and_first_positions()
    {
        using var scope = new TensorScope();
        var x = T([3f, 1f, 3f, -2f, 5f, 5f], 2, 3);
        var (values, indices) = x.MaxWithIndices(1);
        Assert.Equal([3f, 5f], values.ToArray());
        Assert.Equal([0, 1], indices.ToInt32Array());
        var (minValues, minIndices) = x.MinWithIndices(0, keepDim: true);
        Assert.Equal([1, 3], minValues.Shape);
        Assert.Equal([-2f, 1f, 3f], minValues.ToArray());
        Assert.Equal([1, 0, 0], minIndices.ToInt32Array());
        Assert.Equal(4, x.ArgMax());
        Assert.Equal([1, 0], x.ArgMin(1).ToInt32Array());
        Assert.Equal([1], T([1f, float.NaN, 7f], 3).ArgMax(0, keepDim: false).Reshape(1).ToInt32Array());
        Assert.False(indices.RequiresGrad);
        Assert.Throws<ArgumentException>(() => Tensor.Zeros([0], Device).ArgMax());
    }

    [Fact]
    public void Multi_dimensional_copies_keep_row_major_order()
    {
        using var scope = new TensorScope();
        var data = Enumerable.Range(0, 24).Select(i => (float)i).ToArray();
        var a2 = T(data, 4, 6).ToArray2D();
        Assert.Equal(4, a2.GetLength(0));
        Assert.Equal(13f, a2[2, 1]);
        var a3 = T(data, 2, 3, 4).ToArray3D();
        Assert.Equal(23f, a3[1, 2, 3]);
        Assert.Equal(9f, a3[0, 2, 1]);
        var a4 = T(data, 2, 1, 3, 4).ToArray<float[,,,]>();
        Assert.Equal(17f, a4[1, 0, 1, 1]);
        Assert.Equal(data, T(data, 24).ToArray<float[]>());
        var e = Assert.Throws<InvalidOperationException>(() => T(data, 2, 12).ToArray3D());
        Assert.Contains("[2, 12]", e.Message);
        Assert.Throws<InvalidOperationException>(() => Tensor.Scalar(1f, Device).ToArray<float[]>());
    }

    [Fact]
    public void ToString_prints_nested_brackets_shape_and_device()
    {
        using var scope = new TensorScope();
        string dev = Device.Name;
        Assert.Equal($"tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  0.1250]], shape=[2, 2], device={dev})",
            T([1f, -2.5f, 3f, 0.125f], 2, 2).ToString());
        Assert.Equal($"tensor([1., 2., 3.], shape=[3], device={dev})", T([1f, 2f, 3f], 3).ToString());
        Assert.Equal($"tensor(0.5000, shape=[], device={dev})", Tensor.Scalar(0.5f, Device).ToString());
        Assert.Equal($"tensor([1.0000e-05, 1.0000e+00], shape=[2], device={dev})", T([1e-5f, 1f], 2).ToString());
        Assert.Equal($"tensor([nan, inf, 1.], shape=[3], device={dev})", T([float.NaN, float.PositiveInfinity, 1f], 3).ToString());
        Assert.Equal($"tensor([], shape=[0, 3], device={dev})", Tensor.Zeros([0, 3], Device).ToString());
        Assert.Equal($"tensor([[[0., 1.]],\n\n        [[2., 3.]]], shape=[2, 1, 2], device={dev})", T([0f, 1f, 2f, 3f], 2, 1, 2).ToString());
        var w = Tensor.FromArray([1f, 2f], [2], Device, requiresGrad: true);
        Assert.EndsWith(", requires_grad=true)", w.ToString());
        Assert.EndsWith(", grad_fn=<mul>)", (w * w).ToString());
    }

    [Fact]
    public void ToString_summarises_large_tensors_with_edge_items()
    {
        using var scope = new TensorScope();
        var big = Tensor.FromArray(Enumerable.Range(0, 40 * 50).Select(i => (float)i).ToArray(), [40, 50], Device);
        var s = big.ToString();
        var lines = s.Split('\n');
        Assert.Equal(7, lines.Length); // 3 rows, "...", 3 rows
        Assert.Equal("tensor([[   0.,    1.,    2.,  ...,   47.,   48.,   49.],", lines[0]);
        Assert.Equal("        ...,", lines[3]);
        Assert.Equal($"        [1950., 1951., 1952.,  ..., 1997., 1998., 1999.]], shape=[40, 50], device={Device.Name})", lines[6]);
        // 1000 entries or fewer print in full, wrapped at 80 characters.
        var row = Tensor.FromArray(Enumerable.Range(0, 30).Select(i => i + 0.5f).ToArray(), [30], Device).ToString();
        Assert.DoesNotContain("...", row);
        Assert.All(row.Split('\n'), l => Assert.True(l.Length <= 80 || l.Contains("shape="), l));
        Assert.Contains("29.5000", row);
    }

    [Fact]
    public void Split_and_chunk_follow_pytorch_sizes()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(Enumerable.Range(0, 14).Select(i => (float)i).ToArray(), [2, 7], Device);
        Assert.Equal([3, 3, 1], x.Chunk(3, 1).Select(p => p.Shape[1]).ToArray());
        Assert.Equal([2, 2, 1], Tensor.Zeros([5], Device).Chunk(4).Select(p => p.Shape[0]).ToArray());
        Assert.Equal([2, 2, 2, 1], x.Split(2, 1).Select(p => p.Shape[1]).ToArray());
        var pieces = x.Split([4, 0, 3], -1);
        Assert.Equal([0, 1, 2, 3, 7, 8, 9, 10], pieces[0].ToArray().Select(v => (int)v).ToArray());
        Assert.Equal([2, 0], pieces[1].Shape);
        Assert.Equal([4f, 5f, 6f, 11f, 12f, 13f], pieces[2].ToArray());
        Assert.Equal([2, 1, 7], x.Unsqueeze(1).Shape);
        Assert.Equal([2, 7, 1], x.Unsqueeze(-1).Shape);
    }

    [Fact]
    public void Indexer_selects_like_pytorch()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), [2, 3, 4], Device);
        Assert.Equal([3, 4], x[1].Shape);
        Assert.Equal(12f, x[1].ToArray()[0]);
        Assert.Equal([2, 4], x[.., 2].Shape);
        Assert.Equal([8f, 9f, 10f, 11f, 20f, 21f, 22f, 23f], x[.., 2].ToArray());
        Assert.Equal([], x[1, 2, 3].Shape);
        Assert.Equal(23f, x[-1, -1, -1].Item());
        Assert.Equal(23f, x[^1, ^1, ^1].Item());
        Assert.Equal([1, 2, 2], x[1.., 1.., ..2].Shape);
        Assert.Equal([17f, 21f], x[1, 1.., 1].ToArray());
        Assert.Equal([2, 0, 4], x[.., 3..].Shape);
    }

    public static TheoryData<string> BadSlices => new()
    {
        "narrow", "slice range", "slice step", "select", "indexer rank", "indexer position", "cat shapes", "cat empty", "stack shapes",
        "squeeze", "split sizes", "chunk", "unsqueeze",
    };

    [Theory]
    [MemberData(nameof(BadSlices))]
    public void Bad_slices_name_the_op_and_shapes(string which)
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([4, 5], Device);
        var y = Tensor.Zeros([3, 4], Device);
        Action act = which switch
        {
            "narrow" => () => x.Narrow(1, 3, 3),
            "slice range" => () => x.Slice(0, 2..7),
            "slice step" => () => x.Slice(0, 0, 4, 0),
            "select" => () => x.Select(1, 5),
            "indexer rank" => () => _ = x[0, 0, 0],
            "indexer position" => () => _ = x[.., -6],
            "cat shapes" => () => Ops.Cat([x, y], 0),
            "cat empty" => () => Ops.Cat([]),
            "stack shapes" => () => Ops.Stack([x, y]),
            "squeeze" => () => x.Squeeze(0),
            "split sizes" => () => x.Split([2, 2], 1),
            "chunk" => () => x.Chunk(0),
            _ => () => x.Unsqueeze(3),
        };
        var e = Assert.ThrowsAny<ArgumentException>(act);
        string op = which.Split(' ')[0] switch { "indexer" => "index", var s => s };
        Assert.Contains(op, e.Message);
        if (which != "cat empty") Assert.True(e.Message.Contains("[4, 5]") || e.Message.Contains("rank 2"), e.Message);
        if (which == "cat shapes") Assert.Contains("[3, 4]", e.Message);
    }

    [Fact]
    public void Slices_of_a_tensor_are_independent_copies_with_gradients_in_place()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], [3, 2], Device, requiresGrad: true);
        var loss = (x[0] * 2f).Sum() + x[1..].Square().Sum();
        loss.Backward();
        Assert.Equal([2f, 2f, 6f, 8f, 10f, 12f], x.Grad!.ToArray());
    }
}

/// <summary>Tensor conveniences on the CPU SIMD kernel set.</summary>
public sealed class CpuTensorApiTests : TensorApiTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>Tensor conveniences on the ILGPU kernel set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuTensorApiTests : TensorApiTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}
