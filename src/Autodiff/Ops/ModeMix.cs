using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    private static readonly ConditionalWeakTable<Device, ConcurrentDictionary<int, Tensor>> ComplexPatterns = new();

    /// <summary>
    /// Complex channel mixing per Fourier mode, the heart of a spectral (FNO) layer:
    /// ŷ[m, b, o] = Σ_i x̂[m, b, i] R[m, i, o] with R = <paramref name="weightRe"/> + i·<paramref name="weightIm"/>.
    /// <paramref name="xhat"/> is [M, B, 2·Cin] (per mode and sample: Cin real parts, then Cin imaginary parts), the
    /// weights [M, Cin, Cout]; the result is [M, B, 2·Cout] in the same layout.
    /// </summary>
    /// <remarks>
    /// (a + ib)(c + id) = (ac - bd) + i(ad + bc) is one real product per mode: [a, b] · [[c, d], [-d, c]]. The block
    /// matrix [M, 2Cin, 2Cout] is assembled by two broadcast products with constant 2x2 patterns (I and [[0, 1], [-1, 0]]),
    /// so the op is one batched GEMM over the mode axis plus small weight-sized work, and its backward comes from
    /// MatMul and Mul (differentiable again).
    /// </remarks>
    /// <exception cref="ArgumentException">Ranks, mode counts or channel counts disagree (the message names the shapes).</exception>
    public static Tensor ComplexModeMix(this Tensor xhat, Tensor weightRe, Tensor weightIm)
    {
        const string op = "complex_mode_mix";
        CheckSameDevice(op, xhat, weightRe);
        CheckSameDevice(op, xhat, weightIm);
        if (weightRe.Rank != 3 || !Shape.Equal(weightRe.shape, weightIm.shape))
            throw new ArgumentException($"{op}: weights must be [modes, Cin, Cout] with equal real and imaginary shapes; got {weightRe.Describe()} and {weightIm.Describe()}.");
        int m = weightRe.shape[0], cin = weightRe.shape[1], cout = weightRe.shape[2];
        if (xhat.Rank != 3 || xhat.shape[0] != m || xhat.shape[2] != 2 * cin)
            throw new ArgumentException($"{op}: input must be [modes, batch, 2·Cin] = [{m}, B, {2 * cin}] for weights {weightRe.Describe()}; got {xhat.Describe()}.");
        var (eye, rot) = Patterns(xhat.Device);
        var c = weightRe.Reshape(m, 1, cin, 1, cout);
        var d = weightIm.Reshape(m, 1, cin, 1, cout);
        var block = (c * eye + d * rot).Reshape(m, 2 * cin, 2 * cout);
        return MatMul(xhat, block);
    }

    /// <summary>The constant [2, 1, 2, 1] patterns I and [[0, 1], [-1, 0]] (rows: input re/im, columns: output re/im).</summary>
    private static (Tensor Eye, Tensor Rot) Patterns(Device device)
    {
        var d = ComplexPatterns.GetOrCreateValue(device);
        Tensor Get(int key, float[] v)
        {
            if (d.TryGetValue(key, out var t) && !t.IsDisposed) return t;
            t = Tensor.Empty([2, 1, 2, 1], device, track: false);
            t.Persistent = true;
            t.Buffer.CopyFromHost(v);
            d[key] = t;
            return t;
        }
        return (Get(0, [1f, 0f, 0f, 1f]), Get(1, [0f, 1f, -1f, 0f]));
    }
}
