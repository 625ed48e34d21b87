using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// The differentiable ops. Each op checks its inputs on the host (naming itself and the shapes), asks the device's
/// kernel set to compute, and records a backward rule written in these same ops (so gradients are differentiable
/// again). Files: Unary (elementwise functions), Binary (broadcasting arithmetic), Reduce, MatMul, Layout
/// (permute, index select/add), Softmax, Losses.
/// </summary>
public static partial class Ops
{
    internal static void CheckSameDevice(string op, Tensor a, Tensor b)
    {
        a.CheckAlive(op);
        b.CheckAlive(op);
        if (!ReferenceEquals(a.Device, b.Device))
            throw new ArgumentException($"{op}: tensors live on different devices: {a.Describe()} on '{a.Device.Name}', {b.Describe()} on '{b.Device.Name}'. Move one with To(device).");
    }

    /// <summary>A copy of <paramref name="x"/> on <paramref name="device"/> (through the host; gradient flows back).</summary>
    public static Tensor To(this Tensor x, Device device)
    {
        x.CheckAlive("to");
        if (ReferenceEquals(x.Device, device)) return x;
        var r = Tensor.Empty(x.shape, device);
        r.Buffer.CopyFromHost(x.Buffer.ToArray());
        var from = x.Device;
        return r.Record("to", [x], g => [g.To(from)]);
    }
}

public sealed partial class Tensor
{
    /// <summary>Elementwise sum with broadcasting.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);
    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);
    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);
    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);
    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => Ops.Neg(a);
    /// <summary>Adds a constant.</summary>
    public static Tensor operator +(Tensor a, float s) => Ops.Affine(a, 1f, s);
    /// <summary>Adds a constant.</summary>
    public static Tensor operator +(float s, Tensor a) => Ops.Affine(a, 1f, s);
    /// <summary>Subtracts a constant.</summary>
    public static Tensor operator -(Tensor a, float s) => Ops.Affine(a, 1f, -s);
    /// <summary>Constant minus tensor.</summary>
    public static Tensor operator -(float s, Tensor a) => Ops.Affine(a, -1f, s);
    /// <summary>Scales by a constant.</summary>
    public static Tensor operator *(Tensor a, float s) => Ops.Affine(a, s, 0f);
    /// <summary>Scales by a constant.</summary>
    public static Tensor operator *(float s, Tensor a) => Ops.Affine(a, s, 0f);
    /// <summary>Divides by a constant.</summary>
    public static Tensor operator /(Tensor a, float s) => Ops.Affine(a, 1f / s, 0f);
}
