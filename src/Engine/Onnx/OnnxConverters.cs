using Engine.Autodiff;
using Engine.Nn;

namespace Engine.Onnx;

/// <summary>The built-in module converters (see <see cref="OnnxExporter"/>).</summary>
internal static class OnnxConverters
{
    public static void RegisterBuiltIns()
    {
        OnnxExporter.Register<Sequential>(ConvertSequential);
        OnnxExporter.Register<Linear>(ConvertLinear);
        OnnxExporter.Register<ReLU>((b, _, x) => b.Elementwise("Relu", x));
        OnnxExporter.Register<Tanh>((b, _, x) => b.Elementwise("Tanh", x));
        OnnxExporter.Register<Sigmoid>((b, _, x) => b.Elementwise("Sigmoid", x));
        OnnxExporter.Register<GELU>((b, m, x) => Gelu(b, x, m.Approximate));
        OnnxExporter.Register<Softmax>(ConvertSoftmax);
        OnnxExporter.Register<LayerNorm>(ConvertLayerNorm);
        OnnxExporter.Register<KroneckerLinear>(ConvertKronecker);
        OnnxExporter.Register<MixerBlock>(ConvertMixerBlock);
        OnnxExporter.Register<Mixer>(ConvertMixer);
        OnnxExporter.Register<Fno1d>(OnnxFnoConverter.Convert);
        OnnxExporter.Register<Conv2d>(ConvertConv2d);
        OnnxExporter.Register<Conv1d>(ConvertConv1d);
        OnnxExporter.Register<Dropout>((_, _, x) => x); // an exported model is run for inference: dropout is the identity
        OnnxExporter.Register<Embedding>(ConvertEmbedding);
        OnnxExporter.Register<Flatten>(ConvertFlatten);
    }

    private static string ConvertFlatten(OnnxGraphBuilder b, Flatten f, string x)
    {
        var s = b.ShapeOf(x);
        int start = f.StartAxis < 0 ? f.StartAxis + s.Length : f.StartAxis;
        if (start < 1 || start >= s.Length)
            throw new ArgumentException($"ONNX export: {b.Scope} (Flatten) from axis {f.StartAxis} on {Shape.Format(s)} must keep the batch axis.");
        int rest = 1;
        for (int i = start; i < s.Length; i++) rest *= s[i];
        return b.Reshape(x, [.. s[..start], rest]);
    }

    private static string ConvertConv2d(OnnxGraphBuilder b, Conv2d c, string x)
    {
        var s = b.ShapeOf(x);
        if (s.Length != 4 || s[1] != c.InChannels)
            throw new ArgumentException($"ONNX export: {b.Scope} (Conv2d) expects [batch, {c.InChannels}, h, w], got {Shape.Format(s)}.");
        int oh = (s[2] + 2 * c.Padding.H - c.Dilation.H * (c.KernelSize.H - 1) - 1) / c.Stride.H + 1;
        int ow = (s[3] + 2 * c.Padding.W - c.Dilation.W * (c.KernelSize.W - 1) - 1) / c.Stride.W + 1;
        return Conv(b, x, c.Weight, c.Bias, [s[0], c.OutChannels, oh, ow], [c.KernelSize.H, c.KernelSize.W], [c.Stride.H, c.Stride.W],
            [c.Padding.H, c.Padding.W], [c.Dilation.H, c.Dilation.W], c.Groups);
    }

    private static string ConvertConv1d(OnnxGraphBuilder b, Conv1d c, string x)
    {
        var s = b.ShapeOf(x);
        if (s.Length != 3 || s[1] != c.InChannels)
            throw new ArgumentException($"ONNX export: {b.Scope} (Conv1d) expects [batch, {c.InChannels}, length], got {Shape.Format(s)}.");
        int ol = (s[2] + 2 * c.Padding - c.Dilation * (c.KernelSize - 1) - 1) / c.Stride + 1;
        return Conv(b, x, c.Weight, c.Bias, [s[0], c.OutChannels, ol], [c.KernelSize], [c.Stride], [c.Padding], [c.Dilation], c.Groups);
    }

    /// <summary>ONNX Conv (cross-correlation, as ours) with symmetric padding: pads lists the begins, then the ends.</summary>
    private static string Conv(OnnxGraphBuilder b, string x, Tensor weight, Tensor? bias, int[] outShape, long[] kernel, long[] strides,
        long[] padding, long[] dilations, int groups)
    {
        var w = b.AddInitializer("weight", weight.ToArray(), weight.Shape.Select(d => (long)d).ToArray());
        string[] inputs = bias != null ? [x, w, b.AddInitializer("bias", bias.ToArray(), bias.Size)] : [x, w];
        return b.Node("Conv", inputs, outShape, OnnxAttribute.Ints("kernel_shape", kernel), OnnxAttribute.Ints("strides", strides),
            OnnxAttribute.Ints("pads", [.. padding, .. padding]), OnnxAttribute.Ints("dilations", dilations), OnnxAttribute.Int("group", groups));
    }

    /// <summary>Embedding: the float indices cast to int64, then Gather of the table's rows.</summary>
    private static string ConvertEmbedding(OnnxGraphBuilder b, Embedding e, string x)
    {
        var s = b.ShapeOf(x);
        var indices = b.Node("Cast", [x], s, OnnxAttribute.Int("to", 7)); // 7: INT64
        var table = b.AddInitializer("weight", e.Weight.ToArray(), e.Count, e.Dimension);
        return b.Node("Gather", [table, indices], [.. s, e.Dimension], OnnxAttribute.Int("axis", 0));
    }

    private static string ConvertSequential(OnnxGraphBuilder b, Sequential s, string x)
    {
        foreach (var (name, m) in s.Children) x = b.Convert(m, x, name);
        return x;
    }

    private static string ConvertLinear(OnnxGraphBuilder b, Linear l, string x)
    {
        var s = b.ShapeOf(x);
        if (s[^1] != l.InFeatures)
            throw new ArgumentException($"ONNX export: {b.Scope} (Linear) expects [..., {l.InFeatures}], got {Shape.Format(s)}.");
        var outShape = (int[])s.Clone();
        outShape[^1] = l.OutFeatures;
        if (s.Length == 2)
        {
            // Gemm computes x Wᵀ + b in one node with W kept in its [out, in] layout.
            var w = b.AddInitializer("weight", l.Weight.ToArray(), l.OutFeatures, l.InFeatures);
            string[] inputs = l.Bias != null ? [x, w, b.AddInitializer("bias", l.Bias.ToArray(), l.OutFeatures)] : [x, w];
            return b.Node("Gemm", inputs, outShape, OnnxAttribute.Int("transB", 1));
        }
        // Other ranks: MatMul (which broadcasts over leading axes) with Wᵀ stored [in, out], then the bias.
        var wt = b.AddInitializer("weight_t", Transpose(l.Weight.ToArray(), l.OutFeatures, l.InFeatures), l.InFeatures, l.OutFeatures);
        var y = b.Node("MatMul", [x, wt], outShape);
        return l.Bias != null ? b.Node("Add", [y, b.AddInitializer("bias", l.Bias.ToArray(), l.OutFeatures)], outShape) : y;
    }

    /// <summary>GELU: the Gelu op from opset 20; before that x·½(1 + erf(x/√2)) or the tanh form, as our kernels.</summary>
    public static string Gelu(OnnxGraphBuilder b, string x, bool approximate)
    {
        if (b.Opset >= 20)
            return b.Node("Gelu", [x], b.ShapeOf(x), OnnxAttribute.String("approximate", approximate ? "tanh" : "none"));
        string scaled;
        if (approximate)
        {
            // ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))
            var x3 = b.Elementwise("Mul", b.Elementwise("Mul", x, x), x);
            var inner = b.Elementwise("Add", x, b.Elementwise("Mul", x3, b.Constant("c", 0.044715f)));
            scaled = b.Elementwise("Tanh", b.Elementwise("Mul", inner, b.Constant("c", MathF.Sqrt(2f / MathF.PI))));
        }
        else
        {
            scaled = b.Elementwise("Erf", b.Elementwise("Mul", x, b.Constant("c", 1f / MathF.Sqrt(2f))));
        }
        var onePlus = b.Elementwise("Add", scaled, b.Constant("one", 1f));
        return b.Elementwise("Mul", b.Elementwise("Mul", x, onePlus), b.Constant("half", 0.5f));
    }

    private static string ConvertSoftmax(OnnxGraphBuilder b, Softmax s, string x) =>
        b.Node("Softmax", [x], b.ShapeOf(x), OnnxAttribute.Int("axis", s.Axis));

    private static string ConvertLayerNorm(OnnxGraphBuilder b, LayerNorm ln, string x)
    {
        var gamma = b.AddInitializer("weight", ln.Gamma.ToArray(), ln.Gamma.Size);
        var beta = b.AddInitializer("bias", ln.Beta.ToArray(), ln.Beta.Size);
        return b.Node("LayerNormalization", [x, gamma, beta], b.ShapeOf(x),
            OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", ln.Eps));
    }

    /// <summary>
    /// y = J_out (A ⊗ B) J_in x + b on [batch, n·q]: Gather by J_in, view as [batch, n, q], MatMul by Bᵀ [q, p], MatMul
    /// by A [m, n] from the left (skipped for A = I), view as [batch, m·p], Gather by J_out, add the bias.
    /// </summary>
    private static string ConvertKronecker(OnnxGraphBuilder b, KroneckerLinear k, string x)
    {
        var s = b.ShapeOf(x);
        if (s.Length != 2 || s[1] != k.InFeatures)
            throw new NotSupportedException($"ONNX export: {b.Scope} ({k.GetType().Name}) is exported for inputs [batch, {k.InFeatures}], got {Shape.Format(s)}.");
        int batch = s[0];
        var pk = k as PermutedKroneckerLinear;
        if (pk != null && !pk.InputPermutation.IsIdentity) x = Permute(b, x, pk.InputPermutation, k.Q, k.N, "input_permutation");
        x = b.Reshape(x, batch, k.N, k.Q);
        var bt = b.AddInitializer("b_t", Transpose(k.B.ToArray(), k.P, k.Q), k.Q, k.P);
        var y = b.Node("MatMul", [x, bt], [batch, k.N, k.P]);
        if (k.A != null)
            y = b.Node("MatMul", [b.AddInitializer("a", k.A.ToArray(), k.M, k.N), y], [batch, k.M, k.P]);
        y = b.Reshape(y, batch, k.OutFeatures);
        if (pk != null && !pk.OutputPermutation.IsIdentity) y = Permute(b, y, pk.OutputPermutation, k.M, k.P, "output_permutation");
        var bias = k.UnitBias();
        return bias != null ? b.Elementwise("Add", y, b.AddInitializer("bias", bias, k.OutFeatures)) : y;
    }

    /// <summary>
    /// Applies a feature permutation to [batch, features]: the vec-transpose of [rows, cols] (the Mixer's token mixing)
    /// as Reshape + Transpose + Reshape, which runtimes execute as a plain copy; any other permutation as a Gather.
    /// </summary>
    private static string Permute(OnnxGraphBuilder b, string x, Permutation p, int rows, int cols, string hint)
    {
        if (rows > 1 && cols > 1 && p.Indices.SequenceEqual(Permutation.Transpose(rows, cols).Indices))
        {
            int batch = b.ShapeOf(x)[0];
            return b.Reshape(b.Transpose(b.Reshape(x, batch, rows, cols), 0, 2, 1), batch, rows * cols);
        }
        return Gather(b, x, p, hint);
    }

    private static string Gather(OnnxGraphBuilder b, string x, Permutation p, string hint)
    {
        var idx = b.AddInt64Initializer(hint, p.Indices.Select(i => (long)i).ToArray(), p.Length);
        return b.Node("Gather", [x, idx], b.ShapeOf(x), OnnxAttribute.Int("axis", 1));
    }

    private static string ConvertMixerBlock(OnnxGraphBuilder b, MixerBlock m, string x)
    {
        var shape = b.ShapeOf(x);
        int batch = shape[0], s = m.Tokens, c = m.Channels;
        if (shape.Length == 3) // [B, S, C]: the block runs on the token-major view and comes back to this shape
            return b.Reshape(ConvertMixerBlock(b, m, b.Reshape(x, batch, s * c)), batch, s, c);
        string Norm(LayerNorm ln, string name, string v) => b.Reshape(b.Convert(ln, b.Reshape(v, batch, s, c), name), batch, s * c);
        var h = b.Convert(m.Token2, Gelu(b, b.Convert(m.Token1, Norm(m.Norm1, "norm1", x), "token1"), false), "token2");
        x = b.Elementwise("Add", x, h);
        h = b.Convert(m.Channel2, Gelu(b, b.Convert(m.Channel1, Norm(m.Norm2, "norm2", x), "channel1"), false), "channel2");
        return b.Elementwise("Add", x, h);
    }

    private static string ConvertMixer(OnnxGraphBuilder b, Mixer m, string x)
    {
        var s = b.ShapeOf(x);
        bool flat = s.Length == 2 && s[1] == m.Pixels;
        bool full = s.Length == 4 && s[1] == m.InputChannels && s[2] == m.ImageHeight && s[3] == m.ImageWidth;
        bool planes = s.Length == 3 && m.InputChannels == 1 && s[1] == m.ImageHeight && s[2] == m.ImageWidth;
        if (!flat && !full && !planes)
            throw new ArgumentException(
                $"ONNX export: Mixer expects images [batch, {m.Pixels}] or [batch, {m.InputChannels}, {m.ImageHeight}, {m.ImageWidth}], got {Shape.Format(s)}.");
        int batch = s[0], patch = m.InputChannels * m.PatchHeight * m.PatchWidth;
        // Patches: [B, c, Gh, ph, Gw, pw] → [B, Gh, Gw, c, ph, pw] → [B, S, c·ph·pw], as Mixer.Patches.
        x = m.Tokens == 1
            ? b.Reshape(x, batch, 1, patch)
            : b.Reshape(b.Transpose(b.Reshape(x, batch, m.InputChannels, m.GridHeight, m.PatchHeight, m.GridWidth, m.PatchWidth), 0, 2, 4, 1, 3, 5),
                batch, m.Tokens, patch);
        x = b.Reshape(b.Convert(m.Embed, x, "embed"), batch, m.Tokens * m.Channels);
        x = b.Convert(m.Blocks, x, "blocks");
        var h = b.Convert(m.FinalNorm, b.Reshape(x, batch, m.Tokens, m.Channels), "norm");
        h = b.Opset >= 18
            ? b.Node("ReduceMean", [h, b.AddInt64Initializer("axes", [1L], 1)], [batch, m.Channels], OnnxAttribute.Int("keepdims", 0))
            : b.Node("ReduceMean", [h], [batch, m.Channels], OnnxAttribute.Ints("axes", 1), OnnxAttribute.Int("keepdims", 0));
        return b.Convert(m.Head, h, "head");
    }

    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                t[j * rows + i] = a[i * cols + j];
        return t;
    }
}
