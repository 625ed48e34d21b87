using System.Collections.Concurrent;

namespace Engine.Autodiff;

/// <summary>A pair of sizes (height, width) for 2-D convolutions; an int converts to the same value on both axes.</summary>
/// <param name="H">The value along the height (rows).</param>
/// <param name="W">The value along the width (columns).</param>
public readonly record struct Int2(int H, int W)
{
    /// <summary>The same value on both axes.</summary>
    public static implicit operator Int2(int both) => new(both, both);

    /// <summary>(height, width).</summary>
    public static implicit operator Int2((int H, int W) pair) => new(pair.H, pair.W);

    /// <inheritdoc />
    public override string ToString() => H == W ? H.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"({H}, {W})";
}

/// <summary>
/// Convolutions (cross-correlations, as PyTorch) on the engine's GEMM: an im2col gather builds, for every output
/// position, the receptive field's inputs as a column (one IndexSelect kernel over the flattened spatial axis, with a
/// zero slot appended for the padding), and one batched GEMM multiplies the weight [out, in·kernel] by the columns.
/// The gradient comes from the same ops: the gather's adjoint scatters (adds) the columns back onto the input, and the
/// GEMM's rules give the weight's. Groups run as a batched GEMM over the groups.
/// </summary>
public static partial class Ops
{
    /// <summary>
    /// 2-D convolution of <paramref name="input"/> [batch, inChannels, h, w] with <paramref name="weight"/>
    /// [outChannels, inChannels / groups, kh, kw] plus an optional <paramref name="bias"/> [outChannels]; output
    /// [batch, outChannels, oh, ow] with oh = ⌊(h + 2·padding.H − dilation.H·(kh − 1) − 1) / stride.H⌋ + 1 (likewise ow).
    /// Zero padding on both sides; stride, padding and dilation default to 1, 0 and 1.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes that do not fit (named with both operands), or bad sizes.</exception>
    public static Tensor Conv2d(this Tensor input, Tensor weight, Tensor? bias = null, Int2? stride = null, Int2? padding = null,
        Int2? dilation = null, int groups = 1)
    {
        const string op = "conv2d";
        CheckSameDevice(op, input, weight);
        if (input.Rank != 4 || weight.Rank != 4)
            throw new ArgumentException($"{op}: input {input.Describe()} must be [batch, channels, h, w] and weight {weight.Describe()} [out, in / groups, kh, kw].");
        return Convolve(op, input, weight, bias, stride ?? 1, padding ?? 0, dilation ?? 1, groups);
    }

    /// <summary>
    /// 1-D convolution of <paramref name="input"/> [batch, inChannels, length] with <paramref name="weight"/>
    /// [outChannels, inChannels / groups, k] plus an optional <paramref name="bias"/> [outChannels]; output
    /// [batch, outChannels, ⌊(length + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1].
    /// </summary>
    /// <exception cref="ArgumentException">Shapes that do not fit (named with both operands), or bad sizes.</exception>
    public static Tensor Conv1d(this Tensor input, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
    {
        const string op = "conv1d";
        CheckSameDevice(op, input, weight);
        if (input.Rank != 3 || weight.Rank != 3)
            throw new ArgumentException($"{op}: input {input.Describe()} must be [batch, channels, length] and weight {weight.Describe()} [out, in / groups, k].");
        var x4 = input.Reshape(input.shape[0], input.shape[1], 1, input.shape[2]);
        var w4 = weight.Reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2]);
        var y = Convolve(op, x4, w4, bias, (1, stride), (0, padding), (1, dilation), groups, input, weight);
        return y.Reshape(y.shape[0], y.shape[1], y.shape[3]);
    }

    private static Tensor Convolve(string op, Tensor x, Tensor w, Tensor? bias, Int2 stride, Int2 padding, Int2 dilation, int groups,
        Tensor? userInput = null, Tensor? userWeight = null)
    {
        string Operands() => $"input {(userInput ?? x).Describe()}, weight {(userWeight ?? w).Describe()}";
        int batch = x.shape[0], inChannels = x.shape[1], h = x.shape[2], wd = x.shape[3];
        int outChannels = w.shape[0], groupIn = w.shape[1], kh = w.shape[2], kw = w.shape[3];
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"{op}: groups = {groups} must be at least 1 and divide both {inChannels} input and {outChannels} output channels ({Operands()}).");
        if (groupIn * groups != inChannels)
            throw new ArgumentException($"{op}: the weight expects {groupIn}·{groups} = {groupIn * groups} input channels, the input has {inChannels} ({Operands()}).");
        if (stride.H < 1 || stride.W < 1 || dilation.H < 1 || dilation.W < 1 || padding.H < 0 || padding.W < 0 || kh < 1 || kw < 1)
            throw new ArgumentException($"{op}: stride {stride} and dilation {dilation} must be at least 1, padding {padding} non-negative and the kernel non-empty ({Operands()}).");
        if (bias != null)
        {
            CheckSameDevice(op, x, bias);
            if (bias.Rank != 1 || bias.shape[0] != outChannels)
                throw new ArgumentException($"{op}: bias {bias.Describe()} must be [{outChannels}] ({Operands()}).");
        }
        var geometry = ConvGeometry.Get(h, wd, kh, kw, stride, padding, dilation);
        if (geometry.OutH < 1 || geometry.OutW < 1)
            throw new ArgumentException(
                $"{op}: the kernel {kh}x{kw} with dilation {dilation} does not fit the input padded by {padding}; the output would be {geometry.OutH}x{geometry.OutW} ({Operands()}).");
        int k = kh * kw, positions = geometry.OutH * geometry.OutW;
        Tensor columns; // [batch, inChannels · k, positions], row c·k + (i·kw + j)
        if (geometry.Index == null)
        {
            columns = x.Reshape(batch, inChannels, h * wd); // a 1x1 kernel, stride 1, no padding: the input itself
        }
        else
        {
            var flat = x.Reshape(batch, inChannels, h * wd);
            if (geometry.NeedsZeroSlot)
            {
                using var zero = Tensor.Zeros([batch, inChannels, 1], x.Device);
                flat = Cat([flat, zero], 2);
            }
            columns = flat.IndexSelect(2, geometry.Index);
        }
        Tensor y;
        if (groups == 1)
        {
            y = w.Reshape(outChannels, inChannels * k).MatMul(columns.Reshape(batch, inChannels * k, positions));
        }
        else
        {
            int go = outChannels / groups, gi = inChannels / groups * k;
            var wg = w.Reshape(groups, go, gi).BroadcastTo([batch, groups, go, gi]);
            y = wg.MatMul(columns.Reshape(batch, groups, gi, positions)).Reshape(batch, outChannels, positions);
        }
        if (bias != null) y = y + bias.Reshape(outChannels, 1);
        return y.Reshape(batch, outChannels, geometry.OutH, geometry.OutW);
    }

    /// <summary>
    /// Output size and im2col gather of one convolution geometry, cached (a model calls the same few geometries every
    /// step). Index entry (i·kw + j)·positions + p is the flattened input position read by kernel tap (i, j) at output
    /// position p, or h·w (the appended zero) where the tap falls into the padding.
    /// </summary>
    private sealed class ConvGeometry
    {
        private const int CacheLimit = 256;
        private static readonly ConcurrentDictionary<(int, int, int, int, Int2, Int2, Int2), ConvGeometry> Cache = new();

        private ConvGeometry(int h, int w, int kh, int kw, Int2 stride, Int2 padding, Int2 dilation)
        {
            OutH = (h + 2 * padding.H - dilation.H * (kh - 1) - 1) / stride.H + 1;
            OutW = (w + 2 * padding.W - dilation.W * (kw - 1) - 1) / stride.W + 1;
            // Floor division for negative numerators: a kernel larger than the padded input has no output.
            if (h + 2 * padding.H - dilation.H * (kh - 1) - 1 < 0) OutH = 0;
            if (w + 2 * padding.W - dilation.W * (kw - 1) - 1 < 0) OutW = 0;
            if (OutH < 1 || OutW < 1) return;
            if (kh == 1 && kw == 1 && stride == new Int2(1, 1) && padding == new Int2(0, 0)) return;
            int positions = OutH * OutW, zero = h * w;
            var index = new int[checked(kh * kw * positions)];
            bool padded = false;
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                    for (int oy = 0; oy < OutH; oy++)
                        for (int ox = 0; ox < OutW; ox++)
                        {
                            int iy = oy * stride.H - padding.H + i * dilation.H, ix = ox * stride.W - padding.W + j * dilation.W;
                            bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                            padded |= !inside;
                            index[((i * kw) + j) * positions + oy * OutW + ox] = inside ? iy * w + ix : zero;
                        }
            NeedsZeroSlot = padded;
            Index = new IndexTensor(index);
        }

        public int OutH { get; }
        public int OutW { get; }
        /// <summary>The gather, or null when the columns are the input itself.</summary>
        public IndexTensor? Index { get; }
        /// <summary>True when some tap reads the padding (the zero slot at h·w).</summary>
        public bool NeedsZeroSlot { get; }

        public static ConvGeometry Get(int h, int w, int kh, int kw, Int2 stride, Int2 padding, Int2 dilation)
        {
            var key = (h, w, kh, kw, stride, padding, dilation);
            if (Cache.TryGetValue(key, out var g)) return g;
            g = new ConvGeometry(h, w, kh, kw, stride, padding, dilation);
            // Beyond the limit (shapes changing every call) geometries are rebuilt each time rather than kept forever.
            if (Cache.Count < CacheLimit) g = Cache.GetOrAdd(key, g);
            return g;
        }
    }
}
