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
    /// <summary>Creates the block.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public MixerBlock(int tokens, int channels, int tokenHidden, int channelHidden, bool randomPermutations = false,
        int seed = 0, Device? device = null, bool tiedBiases = false)
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
        ulong us = (ulong)(uint)seed * 16;
        var jIn = randomPermutations ? Permutation.Random(width, seed * 2 + 1) : Permutation.Transpose(s, c);
        var jOut = randomPermutations ? Permutation.Random(width, seed * 2 + 2) : Permutation.Transpose(c, s);
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

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [B, S·C].</exception>
    public override Tensor Forward(Tensor input)
    {
        int width = Tokens * Channels;
        if (input.Rank != 2 || input.Shape[1] != width)
            throw new ArgumentException(
                $"MixerBlock: expected input [B, tokens·channels] = [B, {Tokens}·{Channels} = {width}] (token-major), got {Shape.Format(input.Shape)}.");
        var x = input;
        var h = Token2.Forward(Token1.Forward(Norm(Norm1, x)).Gelu());
        x = x + h;
        h = Channel2.Forward(Channel1.Forward(Norm(Norm2, x)).Gelu());
        return x + h;
    }

    private Tensor Norm(LayerNorm ln, Tensor x) =>
        ln.Forward(x.Reshape(-1, Tokens, Channels)).Reshape(-1, Tokens * Channels);
}

/// <summary>
/// MLP-Mixer for square images given as flat row-major pixels [B, imageSize²]: non-overlapping patch×patch patches
/// (S = (imageSize/patch)² tokens, row-major over the patch grid) embedded by one shared Linear(patch², C), then
/// N <see cref="MixerBlock"/>s, a final LayerNorm over channels, the mean over tokens and a Linear head.
/// </summary>
public sealed class Mixer : Module
{
    private readonly List<MixerBlock> blocks = new();

    /// <summary>Creates the model.</summary>
    /// <exception cref="ArgumentException">The patch does not tile the image, or a size is not positive.</exception>
    public Mixer(int imageSize, int patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        bool randomPermutations = false, int seed = 0, Device? device = null, bool tiedBiases = false)
    {
        if (imageSize <= 0 || patch <= 0 || imageSize % patch != 0)
            throw new ArgumentException($"Mixer: the patch size {patch} must divide the image size {imageSize} (both positive).");
        if (channels <= 0 || blocks < 0 || classes <= 0)
            throw new ArgumentException($"Mixer: channels ({channels}) and classes ({classes}) must be positive, blocks ({blocks}) non-negative.");
        ImageSize = imageSize;
        Patch = patch;
        Channels = channels;
        Classes = classes;
        RandomPermutations = randomPermutations;
        Grid = imageSize / patch;
        Tokens = Grid * Grid;
        ulong us = (ulong)(uint)seed * 1000;
        Embed = RegisterModule("embed", new Linear(patch * patch, channels, seed: us + 1, device: device));
        var list = RegisterModule("blocks", new Sequential());
        for (int i = 0; i < blocks; i++)
        {
            var b = new MixerBlock(Tokens, channels, tokenHidden, channelHidden, randomPermutations, seed * 100 + i + 1, device, tiedBiases);
            list.Add(b);
            this.blocks.Add(b);
        }
        Blocks = list;
        FinalNorm = RegisterModule("norm", new LayerNorm(channels, device: device));
        Head = RegisterModule("head", new Linear(channels, classes, seed: us + 2, device: device));
    }

    /// <summary>Image side length.</summary>
    public int ImageSize { get; }
    /// <summary>Patch side length.</summary>
    public int Patch { get; }
    /// <summary>Patches per image side.</summary>
    public int Grid { get; }
    /// <summary>Tokens S = Grid².</summary>
    public int Tokens { get; }
    /// <summary>Channels C.</summary>
    public int Channels { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>True for the RP-Mixer.</summary>
    public bool RandomPermutations { get; }
    /// <summary>Width S·C of the blocks' equivalent dense MLP.</summary>
    public int EffectiveWidth => Tokens * Channels;
    /// <summary>Patch embedding.</summary>
    public Linear Embed { get; }
    /// <summary>The mixer blocks (a <see cref="Sequential"/>).</summary>
    public Sequential Blocks { get; }
    /// <summary>Final LayerNorm over channels.</summary>
    public LayerNorm FinalNorm { get; }
    /// <summary>Classifier head.</summary>
    public Linear Head { get; }

    /// <summary>Parameters of a Mixer with these sizes (without building it).</summary>
    public static long CountParameters(int imageSize, int patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10,
        bool tiedBiases = false)
    {
        int tokens = (imageSize / patch) * (imageSize / patch);
        return (long)(patch * patch + 1) * channels
            + blocks * MixerBlock.CountParameters(tokens, channels, tokenHidden, channelHidden, tiedBiases)
            + 2L * channels + (long)(channels + 1) * classes;
    }

    /// <summary>
    /// Weights of a Mixer with these sizes, biases and LayerNorm gains excluded: patch embedding patch²·C, the blocks'
    /// mixing matrices, and the head C·classes (the budget of a width study that does not let biases decide C).
    /// </summary>
    public static long CountWeights(int imageSize, int patch, int channels, int blocks, int tokenHidden, int channelHidden, int classes = 10)
    {
        int tokens = (imageSize / patch) * (imageSize / patch);
        return (long)patch * patch * channels + blocks * MixerBlock.CountWeights(tokens, channels, tokenHidden, channelHidden)
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

    /// <summary>[B, imageSize²] pixels to [B, S, patch²] patches, token s = (row, column) of the patch grid.</summary>
    public Tensor Patches(Tensor images)
    {
        int pixels = ImageSize * ImageSize;
        if (images.Rank != 2 || images.Shape[1] != pixels)
            throw new ArgumentException(
                $"Mixer: expected images [B, {pixels}] ({ImageSize}x{ImageSize} pixels, row-major), got {Shape.Format(images.Shape)}.");
        if (Patch == ImageSize) return images.Reshape(-1, 1, pixels);
        return images.Reshape(-1, Grid, Patch, Grid, Patch).Permute(0, 1, 3, 2, 4).Reshape(-1, Tokens, Patch * Patch);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [B, imageSize²].</exception>
    public override Tensor Forward(Tensor input)
    {
        var x = Embed.Forward(Patches(input)).Reshape(-1, Tokens * Channels);
        x = Blocks.Forward(x);
        var h = FinalNorm.Forward(x.Reshape(-1, Tokens, Channels)).Mean(1);
        return Head.Forward(h);
    }
}
