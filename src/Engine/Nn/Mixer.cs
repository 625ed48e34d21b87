using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>A layer's size in the wide-sparse-MLP reading of a Mixer.</summary>
/// <param name="Name">Dotted module path ("blocks.0.token1").</param>
/// <param name="Parameters">Trainable scalars of the layer.</param>
/// <param name="EffectiveWidth">Output width of the equivalent dense layer (S·C for the mixing layers' outputs).</param>
/// <param name="Density">Fraction of non-zero weights in the equivalent dense weight (1 for dense layers).</param>
public sealed record LayerInfo(string Name, long Parameters, int EffectiveWidth, double Density);

/// <summary>
/// One MLP-Mixer block on token-major features x [B, S·C] (feature s·C + c is token s, channel c):
/// x ← x + TokenMix(LN(x)), x ← x + ChannelMix(LN(x)), LN over the C channels of each token. Both mixers are pairs of
/// permuted-Kronecker (PK) layers J_out (I_n ⊗ W) J_in with GELU between them:
/// channel mixing is I_S ⊗ W (no permutation: each token's channels are contiguous), token mixing is
/// "transpose to [C, S], I_C ⊗ W, transpose back". With <c>randomPermutations</c> the two transposes become seeded
/// random permutations (the RP-Mixer) at the same parameter count.
/// </summary>
/// <remarks>
/// By default the PK layers carry one bias per output unit (S·tokenHidden, S·C, S·channelHidden, S·C), as the wide
/// MLP they stand for; with <c>tiedBiases</c> they carry the textbook Mixer's biases, tied across the other axis
/// (tokenHidden, S, channelHidden, C). Everything else matches the textbook block.
/// </remarks>
public sealed class MixerBlock : Module
{
    /// <summary>Creates the block (unseeded: its seed is drawn from <see cref="Engine.Random"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public MixerBlock(int tokens, int channels, int tokenHidden, int channelHidden, bool randomPermutations = false,
        int? seed = null, Device? device = null, bool tiedBiases = false)
    {
        if (tokens <= 0 || channels <= 0 || tokenHidden <= 0 || channelHidden <= 0)
            throw new ArgumentOutOfRangeException(nameof(tokens),
                $"MixerBlock: sizes must be positive; got tokens {tokens}, channels {channels}, tokenHidden {tokenHidden}, channelHidden {channelHidden}.");
        Tokens = tokens;
        Channels = channels;
        TokenHidden = tokenHidden;
        ChannelHidden = channelHidden;
        RandomPermutations = randomPermutations;
        TiedBiases = tiedBiases;
        int s = tokens, c = channels, width = s * c;
        int seedValue = seed ?? Random.NextIntSeed();
        ulong us = (ulong)(uint)seedValue * 16;
        var jIn = randomPermutations ? Permutation.Random(width, seedValue * 2 + 1) : Permutation.Transpose(s, c);
        var jOut = randomPermutations ? Permutation.Random(width, seedValue * 2 + 2) : Permutation.Transpose(c, s);
        Norm1 = RegisterModule("norm1", new LayerNorm(c, device: device));
        // [S, C] --J_in--> [C, S] --(I_C ⊗ W1)--> [C, Ht] --(I_C ⊗ W2)--> [C, S] --J_out--> [S, C]
        Token1 = RegisterModule("token1", PermutedKroneckerLinear.BlockDiagonal(c, tokenHidden, s, jIn,
            Permutation.Identity(c * tokenHidden), seed: us + 1, device: device, tiedBias: tiedBiases));
        Token2 = RegisterModule("token2", PermutedKroneckerLinear.BlockDiagonal(c, s, tokenHidden,
            Permutation.Identity(c * tokenHidden), jOut, seed: us + 2, device: device, tiedBias: tiedBiases));
        Norm2 = RegisterModule("norm2", new LayerNorm(c, device: device));
        Channel1 = RegisterModule("channel1", PermutedKroneckerLinear.BlockDiagonal(s, channelHidden, c,
            Permutation.Identity(width), Permutation.Identity(s * channelHidden), seed: us + 3, device: device, tiedBias: tiedBiases));
        Channel2 = RegisterModule("channel2", PermutedKroneckerLinear.BlockDiagonal(s, c, channelHidden,
            Permutation.Identity(s * channelHidden), Permutation.Identity(width), seed: us + 4, device: device, tiedBias: tiedBiases));
    }

    /// <summary>Tokens S.</summary>
    public int Tokens { get; }
    /// <summary>Channels C.</summary>
    public int Channels { get; }
    /// <summary>Hidden width of the per-channel token MLP.</summary>
    public int TokenHidden { get; }
    /// <summary>Hidden width of the per-token channel MLP.</summary>
    public int ChannelHidden { get; }
    /// <summary>True for the RP-Mixer block (random permutations instead of transposes).</summary>
    public bool RandomPermutations { get; }
    /// <summary>True when the mixing layers' biases are tied as in the textbook Mixer.</summary>
    public bool TiedBiases { get; }
    /// <summary>Width S·C of the equivalent dense MLP.</summary>
    public int EffectiveWidth => Tokens * Channels;
    /// <summary>LayerNorm before token mixing.</summary>
    public LayerNorm Norm1 { get; }
    /// <summary>Token mixing, first layer (S → tokenHidden per channel).</summary>
    public PermutedKroneckerLinear Token1 { get; }
    /// <summary>Token mixing, second layer (tokenHidden → S per channel).</summary>
    public PermutedKroneckerLinear Token2 { get; }
    /// <summary>LayerNorm before channel mixing.</summary>
    public LayerNorm Norm2 { get; }
    /// <summary>Channel mixing, first layer (C → channelHidden per token).</summary>
    public PermutedKroneckerLinear Channel1 { get; }
    /// <summary>Channel mixing, second layer (channelHidden → C per token).</summary>
    public PermutedKroneckerLinear Channel2 { get; }

    /// <summary>Parameters of a block with these sizes (without building it).</summary>
    public static long CountParameters(int tokens, int channels, int tokenHidden, int channelHidden, bool tiedBiases = false)
    {
        long s = tokens, c = channels;
        long biases = tiedBiases
            ? tokenHidden + s + channelHidden + c                        // one per row of each shared block
            : c * tokenHidden + s * c + s * channelHidden + s * c;       // one per output unit
        return CountWeights(tokens, channels, tokenHidden, channelHidden) + biases + 4 * c; // + two LayerNorms
    }

    /// <summary>Weights of a block's four mixing matrices (no biases, no LayerNorm): 2·S·tokenHidden + 2·C·channelHidden.</summary>
    public static long CountWeights(int tokens, int channels, int tokenHidden, int channelHidden) =>
        2L * tokens * tokenHidden + 2L * channels * channelHidden;

    /// <summary>Width S·C of the equivalent dense MLP for S tokens and C channels.</summary>
    public static int EffectiveWidthOf(int tokens, int channels) => tokens * channels;

    /// <summary>The four mixing layers' sizes in the wide-MLP reading.</summary>
    public IEnumerable<LayerInfo> LayerInfos(string prefix = "")
    {
        yield return Info(prefix + "token1", Token1, Channels);
        yield return Info(prefix + "token2", Token2, Channels);
        yield return Info(prefix + "channel1", Channel1, Tokens);
        yield return Info(prefix + "channel2", Channel2, Tokens);
    }

    private static LayerInfo Info(string name, KroneckerLinear l, int blocks) =>
        new(name, l.ParameterCount, l.OutFeatures, 1.0 / blocks);

    /// <summary>
    /// Runs the block on token-major features [B, S·C] (the wide-MLP view), or on [B, S, C] (the usual Mixer view); the
    /// output has the input's shape.
    /// </summary>
    /// <exception cref="ArgumentException">The input is neither [B, S·C] nor [B, S, C].</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int width = Tokens * Channels;
        var s = input.Shape;
        if (s.Length == 3 && s[1] == Tokens && s[2] == Channels)
            return Forward(input.Reshape(-1, width)).Reshape(s);
        if (s.Length != 2 || s[1] != width)
            throw new ArgumentException(
                $"MixerBlock: expected input [B, tokens·channels] = [B, {Tokens}·{Channels} = {width}] (token-major) or [B, {Tokens}, {Channels}], got {Shape.Format(s)}.");
        var x = input;
        var h = Token2.Forward(Token1.Forward(Norm(Norm1, x)).Gelu());
        x = x + h;
        h = Channel2.Forward(Channel1.Forward(Norm(Norm2, x)).Gelu());
        return x + h;
    }

    private Tensor Norm(LayerNorm ln, Tensor x) =>
        ln.Forward(x.Reshape(-1, Tokens, Channels)).Reshape(-1, Tokens * Channels);

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{Tokens} tokens x {Channels} channels, hidden {TokenHidden}/{ChannelHidden}{(RandomPermutations ? ", random permutations" : "")}{(TiedBiases ? ", tied biases" : "")}";
}

/// <summary>
/// MLP-Mixer for images of h x w pixels with c input channels: non-overlapping ph x pw patches (S = (h/ph)·(w/pw)
/// tokens, row-major over the patch grid), each flattened channel-major (c, ph, pw) and embedded by one shared
/// Linear(c·ph·pw, C), then N <see cref="MixerBlock"/>s, a final LayerNorm over channels, the mean over tokens and a
/// Linear head. Images come as [B, c, h, w] (PyTorch's layout), [B, h, w] when c = 1, or flat [B, c·h·w] in the same
/// order.
/// </summary>
public sealed class Mixer : Module
{
    private readonly List<MixerBlock> blocks = new();

    /// <summary>
    /// Creates the model for square single-channel images of <paramref name="imageSize"/>² pixels and square patches
    /// (unseeded: its seed is drawn from <see cref="Engine.Random"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The patch does not tile the image, or a size is not positive.</exception>
    public Mixer(int imageSize, int patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        bool randomPermutations = false, int? seed = null, Device? device = null, bool tiedBiases = false)
        : this(new Int2(imageSize, imageSize), new Int2(patch, patch), channels, blocks, tokenHidden, channelHidden, classes,
            randomPermutations, seed, device, tiedBiases: tiedBiases)
    {
    }

    /// <summary>
    /// Creates the model for <paramref name="image"/> = (h, w) pixels with <paramref name="inputChannels"/> channels and
    /// (ph, pw) patches (unseeded: its seed is drawn from <see cref="Engine.Random"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The patch does not tile the image, or a size is not positive.</exception>
    public Mixer(Int2 image, Int2 patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        bool randomPermutations = false, int? seed = null, Device? device = null, int inputChannels = 1, bool tiedBiases = false)
    {
        if (image.H <= 0 || image.W <= 0 || patch.H <= 0 || patch.W <= 0 || image.H % patch.H != 0 || image.W % patch.W != 0)
            throw new ArgumentException($"Mixer: the patch size {patch} must tile the image {image.H}x{image.W} (all sizes positive).");
        if (channels <= 0 || blocks < 0 || classes <= 0 || inputChannels <= 0)
            throw new ArgumentException(
                $"Mixer: channels ({channels}), classes ({classes}) and input channels ({inputChannels}) must be positive, blocks ({blocks}) non-negative.");
        ImageHeight = image.H;
        ImageWidth = image.W;
        PatchHeight = patch.H;
        PatchWidth = patch.W;
        InputChannels = inputChannels;
        Channels = channels;
        Classes = classes;
        RandomPermutations = randomPermutations;
        GridHeight = image.H / patch.H;
        GridWidth = image.W / patch.W;
        Tokens = GridHeight * GridWidth;
        int seedValue = seed ?? Random.NextIntSeed();
        ulong us = (ulong)(uint)seedValue * 1000;
        Embed = RegisterModule("embed", new Linear(inputChannels * patch.H * patch.W, channels, seed: us + 1, device: device));
        var list = RegisterModule("blocks", new Sequential());
        for (int i = 0; i < blocks; i++)
        {
            var b = new MixerBlock(Tokens, channels, tokenHidden, channelHidden, randomPermutations, seedValue * 100 + i + 1, device, tiedBiases);
            list.Add(b);
            this.blocks.Add(b);
        }
        Blocks = list;
        FinalNorm = RegisterModule("norm", new LayerNorm(channels, device: device));
        Head = RegisterModule("head", new Linear(channels, classes, seed: us + 2, device: device));
    }

    /// <summary>Image height in pixels.</summary>
    public int ImageHeight { get; }
    /// <summary>Image width in pixels.</summary>
    public int ImageWidth { get; }
    /// <summary>Channels of the input image (1 for grey levels).</summary>
    public int InputChannels { get; }
    /// <summary>Patch height.</summary>
    public int PatchHeight { get; }
    /// <summary>Patch width.</summary>
    public int PatchWidth { get; }
    /// <summary>Patches per image column (image height / patch height).</summary>
    public int GridHeight { get; }
    /// <summary>Patches per image row (image width / patch width).</summary>
    public int GridWidth { get; }
    /// <summary>Image side length of a square image (its height otherwise; see <see cref="ImageWidth"/>).</summary>
    public int ImageSize => ImageHeight;
    /// <summary>Patch side length of a square patch (its height otherwise; see <see cref="PatchWidth"/>).</summary>
    public int Patch => PatchHeight;
    /// <summary>Patches per side of a square grid (per column otherwise; see <see cref="GridWidth"/>).</summary>
    public int Grid => GridHeight;
    /// <summary>Tokens S = GridHeight · GridWidth.</summary>
    public int Tokens { get; }
    /// <summary>Channels C.</summary>
    public int Channels { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>True for the RP-Mixer.</summary>
    public bool RandomPermutations { get; }
    /// <summary>Width S·C of the blocks' equivalent dense MLP.</summary>
    public int EffectiveWidth => Tokens * Channels;
    /// <summary>Values per image (input channels · height · width).</summary>
    public int Pixels => InputChannels * ImageHeight * ImageWidth;
    /// <summary>Patch embedding.</summary>
    public Linear Embed { get; }
    /// <summary>The mixer blocks (a <see cref="Sequential"/>).</summary>
    public Sequential Blocks { get; }
    /// <summary>Final LayerNorm over channels.</summary>
    public LayerNorm FinalNorm { get; }
    /// <summary>Classifier head.</summary>
    public Linear Head { get; }

    /// <summary>Parameters of a Mixer for square single-channel images with these sizes (without building it).</summary>
    public static long CountParameters(int imageSize, int patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        bool tiedBiases = false) =>
        CountParameters(new Int2(imageSize, imageSize), new Int2(patch, patch), channels, blocks, tokenHidden, channelHidden, classes,
            tiedBiases: tiedBiases);

    /// <summary>Parameters of a Mixer with these sizes (without building it).</summary>
    public static long CountParameters(Int2 image, Int2 patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        int inputChannels = 1, bool tiedBiases = false)
    {
        int tokens = (image.H / patch.H) * (image.W / patch.W);
        return ((long)inputChannels * patch.H * patch.W + 1) * channels
            + blocks * MixerBlock.CountParameters(tokens, channels, tokenHidden, channelHidden, tiedBiases)
            + 2L * channels + (long)(channels + 1) * classes;
    }

    /// <summary>Weights of a Mixer for square single-channel images with these sizes (see the general overload).</summary>
    public static long CountWeights(int imageSize, int patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10) =>
        CountWeights(new Int2(imageSize, imageSize), new Int2(patch, patch), channels, blocks, tokenHidden, channelHidden, classes);

    /// <summary>
    /// Weights of a Mixer with these sizes, biases and LayerNorm gains excluded: patch embedding c·ph·pw·C, the blocks'
    /// mixing matrices, and the head C·classes (the budget of a width study that does not let biases decide C).
    /// </summary>
    public static long CountWeights(Int2 image, Int2 patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        int inputChannels = 1)
    {
        int tokens = (image.H / patch.H) * (image.W / patch.W);
        return (long)inputChannels * patch.H * patch.W * channels
            + blocks * MixerBlock.CountWeights(tokens, channels, tokenHidden, channelHidden)
            + (long)channels * classes;
    }

    /// <summary>Every layer's parameter count and effective width: embedding, the blocks' mixing layers, head.</summary>
    public IReadOnlyList<LayerInfo> LayerInfos()
    {
        var r = new List<LayerInfo> { new("embed", Embed.ParameterCount, EffectiveWidth, 1.0 / Tokens) };
        for (int i = 0; i < blocks.Count; i++) r.AddRange(blocks[i].LayerInfos($"blocks.{i}."));
        r.Add(new("head", Head.ParameterCount, Classes, 1.0));
        return r;
    }

    /// <summary>
    /// Images ([B, c, h, w], [B, h, w] for one channel, or flat [B, c·h·w]) to patches [B, S, c·ph·pw]: token s = (row,
    /// column) of the patch grid, each patch flattened channel-major.
    /// </summary>
    /// <exception cref="ArgumentException">The input has none of the accepted shapes.</exception>
    public Tensor Patches(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var s = images.Shape;
        bool flat = s.Length == 2 && s[1] == Pixels;
        bool planes = s.Length == 3 && InputChannels == 1 && s[1] == ImageHeight && s[2] == ImageWidth;
        bool full = s.Length == 4 && s[1] == InputChannels && s[2] == ImageHeight && s[3] == ImageWidth;
        if (!flat && !planes && !full)
            throw new ArgumentException(
                $"Mixer: expected images [B, {InputChannels}, {ImageHeight}, {ImageWidth}]{(InputChannels == 1 ? $", [B, {ImageHeight}, {ImageWidth}]" : "")} or flat [B, {Pixels}] ({InputChannels}x{ImageHeight}x{ImageWidth}, row-major), got {Shape.Format(s)}.");
        int patchSize = InputChannels * PatchHeight * PatchWidth;
        if (Tokens == 1) return images.Reshape(-1, 1, patchSize);
        // [B, c, Gh, ph, Gw, pw] → [B, Gh, Gw, c, ph, pw] → [B, S, c·ph·pw].
        return images.Reshape(-1, InputChannels, GridHeight, PatchHeight, GridWidth, PatchWidth).Permute(0, 2, 4, 1, 3, 5)
            .Reshape(-1, Tokens, patchSize);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input has none of the shapes <see cref="Patches"/> accepts.</exception>
    public override Tensor Forward(Tensor input)
    {
        var x = Embed.Forward(Patches(input)).Reshape(-1, Tokens * Channels);
        x = Blocks.Forward(x);
        var h = FinalNorm.Forward(x.Reshape(-1, Tokens, Channels)).Mean(1);
        return Head.Forward(h);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{InputChannels}x{ImageHeight}x{ImageWidth} images, {PatchHeight}x{PatchWidth} patches: {Tokens} tokens x {Channels} channels, {blocks.Count} blocks, {Classes} classes{(RandomPermutations ? ", random permutations" : "")}";
}
