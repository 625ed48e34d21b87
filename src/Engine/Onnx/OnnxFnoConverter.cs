using Engine.Autodiff;
using Engine.Nn;

namespace Engine.Onnx;

/// <summary>
/// ONNX converter for <see cref="Fno1d"/>, in portable real linear algebra (MatMul, Add, Reshape, Transpose, Concat,
/// Expand, Shape; no DFT op): the spectral convolution is the GEMM route of <see cref="SpectralTransform"/> with its
/// exact constant truncated-DFT matrices, and the per-mode complex channel mixing is one batched MatMul with the real
/// block matrices [[Re R, Im R], [-Im R, Re R]] of <see cref="Ops.ComplexModeMix"/>.
/// </summary>
internal static class OnnxFnoConverter
{
    /// <summary>
    /// [batch, n, inChannels] (or [batch, n] for one channel) → [batch, n, outChannels] (or [batch, n]). The grid
    /// coordinate channel is a constant [1, n, 1] expanded to the runtime batch (Shape of the input's first axis, Concat
    /// with [n, 1], Expand) and concatenated after the field's channels, as <c>FnoBase</c> appends it; then lift, blocks
    /// (spectral + pointwise, GELU between blocks), projection.
    /// </summary>
    public static string Convert(OnnxGraphBuilder b, Fno1d m, string x)
    {
        var s = b.ShapeOf(x);
        int c = m.InChannels;
        if (!((s.Length == 2 && c == 1) || (s.Length == 3 && s[2] == c)) || s[1] <= 0)
            throw new ArgumentException($"ONNX export: {Name(b)} (Fno1d) expects [batch, n, {c}]{(c == 1 ? " or [batch, n]" : "")} with a fixed n, got {Shape.Format(s)}.");
        int n = s[1];
        if (m.Modes > SpectralTransform.MaxModes(n))
            throw new ArgumentException($"ONNX export: {Name(b)} (Fno1d) keeps {m.Modes} modes, more than n/2 + 1 = {SpectralTransform.MaxModes(n)} for n = {n}.");
        int batch = s[0];
        var value = b.Reshape(x, batch, n, c);
        var grid = new float[n];
        for (int i = 0; i < n; i++) grid[i] = n == 1 ? 0f : (float)i / (n - 1);
        var gridConst = b.AddInitializer("grid", grid, 1, n, 1);
        var batchDim = b.Node("Shape", [x], [1], OnnxAttribute.Int("start", 0), OnnxAttribute.Int("end", 1));
        var expandShape = b.Node("Concat", [batchDim, b.AddInt64Initializer("grid_shape", [n, 1L], 2)], [3], OnnxAttribute.Int("axis", 0));
        var gridB = b.Node("Expand", [gridConst, expandShape], [batch, n, 1]);
        var features = b.Node("Concat", [value, gridB], [batch, n, c + 1], OnnxAttribute.Int("axis", 2));

        var h = b.Convert(m.Lift, features, "lift");
        var (forward, inverse) = SpectralTransform.DftMatrices(n, m.Modes);
        int k = m.Modes;
        var f = b.AddInitializer("dft_forward", forward, 2 * k, n);
        var g = b.AddInitializer("dft_inverse", inverse, n, 2 * k);
        for (int i = 0; i < m.Blocks; i++)
        {
            var spectral = Spectral(b, m.Spectral[i], h, f, g, $"spectral{i}");
            var z = b.Elementwise("Add", spectral, b.Convert(m.Pointwise[i], h, $"pointwise{i}"));
            h = i < m.Blocks - 1 ? Activate(b, m, z) : z;
        }
        var p = Activate(b, m, b.Convert(m.Projection1, h, "proj1"));
        var y = b.Convert(m.Projection2, p, "proj2");
        return m.OutChannels == 1 ? b.Reshape(y, batch, n) : y;
    }

    private static string Activate(OnnxGraphBuilder b, Fno1d m, string x) =>
        m.Activation == FnoActivation.Relu ? b.Elementwise("Relu", x) : OnnxConverters.Gelu(b, x, false);

    private static string Name(OnnxGraphBuilder b) => b.Scope.Length > 0 ? b.Scope : "the model";

    /// <summary>
    /// h [B, n, Cin] → F h [B, 2k, Cin] → per mode [k, B, 2·Cin] · block [k, 2·Cin, 2·Cout] → [B, 2k, Cout] → G ŷ
    /// [B, n, Cout]: the same products as <see cref="SpectralConv1d.Forward"/> on the GEMM route.
    /// </summary>
    private static string Spectral(OnnxGraphBuilder b, SpectralConv1d c, string h, string f, string g, string name)
    {
        int n = b.ShapeOf(h)[1], k = c.Modes, cin = c.InChannels, cout = c.OutChannels;
        var xhat = b.Node("MatMul", [f, h], [-1, 2 * k, cin]);
        var perMode = b.Reshape(b.Transpose(b.Reshape(xhat, -1, 2, k, cin), 2, 0, 1, 3), k, -1, 2 * cin);
        var re = c.WeightRe.ToArray();
        var im = c.WeightIm.ToArray();
        // block[m, ri·Cin + i, ro·Cout + o]: (a + ib)(c + id) = [a, b] · [[c, d], [-d, c]].
        var block = new float[k * 2 * cin * 2 * cout];
        for (int mm = 0; mm < k; mm++)
            for (int i = 0; i < cin; i++)
                for (int o = 0; o < cout; o++)
                {
                    float cr = re[(mm * cin + i) * cout + o], ci = im[(mm * cin + i) * cout + o];
                    long row0 = (long)mm * 2 * cin + i, row1 = row0 + cin;
                    block[row0 * 2 * cout + o] = cr;
                    block[row0 * 2 * cout + cout + o] = ci;
                    block[row1 * 2 * cout + o] = -ci;
                    block[row1 * 2 * cout + cout + o] = cr;
                }
        var w = b.AddInitializer(name + ".mode_mix", block, k, 2 * cin, 2 * cout);
        var mixed = b.Node("MatMul", [perMode, w], [k, -1, 2 * cout]);
        var yhat = b.Reshape(b.Transpose(b.Reshape(mixed, k, -1, 2, cout), 1, 2, 0, 3), -1, 2 * k, cout);
        return b.Node("MatMul", [g, yhat], [-1, n, cout]);
    }
}
