using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Nn;

/// <summary>The nonlinearity of an FNO's blocks and projection head.</summary>
public enum FnoActivation
{
    /// <summary>GELU (exact, erf form), as the reference FNO code.</summary>
    Gelu,

    /// <summary>ReLU, the activation of the FNO initialisation paper's mean-field analysis and deep-FNO experiments.</summary>
    Relu,
}

/// <summary>
/// The shared body of <see cref="Fno1d"/> and <see cref="Fno2d"/>: a pointwise lifting layer on (input channels, grid
/// coordinates), L Fourier blocks h ← σ(K h + W h + b) (no σ after the last block, as the reference code), and a
/// two-layer pointwise projection width → hidden → output channels with σ between; σ is GELU or ReLU
/// (<see cref="FnoActivation"/>). Activations are channels-last. The grid coordinates are built once per input size and
/// device and kept (a persistent tensor freed with the module).
/// </summary>
public abstract class FnoBase : Module
{
    private readonly List<Module> spectral = new();
    private readonly List<Linear> pointwise = new();
    private readonly IndexTensor inputSlots;
    private readonly Dictionary<(Device, int, int), Tensor> grids = new();

    /// <summary>Builds lifting, blocks and projection; <paramref name="makeSpectral"/> creates block i's spectral layer.</summary>
    private protected FnoBase(string name, int gridDims, int width, int blocks, int projectionHidden, ulong seed, Device? device,
        Func<int, Module> makeSpectral, int inChannels, int outChannels, FnoActivation activation)
    {
        if (width <= 0 || blocks <= 0 || projectionHidden <= 0 || inChannels <= 0 || outChannels <= 0)
            throw new ArgumentOutOfRangeException(nameof(width),
                $"{name}: width, blocks, projection width and channels must be positive; got width = {width}, blocks = {blocks}, projection = {projectionHidden}, in = {inChannels}, out = {outChannels}.");
        Name = name;
        Activation = activation;
        Width = width;
        Blocks = blocks;
        GridDims = gridDims;
        InChannels = inChannels;
        OutChannels = outChannels;
        inputSlots = new IndexTensor(Enumerable.Range(0, inChannels).ToArray());
        Lift = RegisterModule("lift", new Linear(inChannels + gridDims, width, seed: seed * 64 + 1, device: device));
        for (int i = 0; i < blocks; i++)
        {
            spectral.Add(RegisterModule($"spectral{i}", makeSpectral(i)));
            pointwise.Add(RegisterModule($"pointwise{i}", new Linear(width, width, seed: seed * 64 + 2 + (ulong)i, device: device)));
        }
        Projection1 = RegisterModule("proj1", new Linear(width, projectionHidden, seed: seed * 64 + 62, device: device));
        Projection2 = RegisterModule("proj2", new Linear(projectionHidden, outChannels, seed: seed * 64 + 63, device: device));
    }

    /// <summary>Layer name used in error messages ("Fno1d").</summary>
    private protected string Name { get; }
    /// <summary>Number of grid coordinates appended to the input.</summary>
    private protected int GridDims { get; }
    /// <summary>Channels of the hidden representation.</summary>
    public int Width { get; }
    /// <summary>The nonlinearity between blocks and in the projection head.</summary>
    public FnoActivation Activation { get; }
    /// <summary>Number of Fourier blocks.</summary>
    public int Blocks { get; }
    /// <summary>Channels of the input field (1 for a scalar field).</summary>
    public int InChannels { get; }
    /// <summary>Channels of the output field (1 for a scalar field).</summary>
    public int OutChannels { get; }
    /// <summary>Lifting layer (input channels + grid dims → width).</summary>
    public Linear Lift { get; }
    /// <summary>Pointwise (1x1) linear maps W of the blocks.</summary>
    public IReadOnlyList<Linear> Pointwise => pointwise;
    /// <summary>First projection layer (width → hidden).</summary>
    public Linear Projection1 { get; }
    /// <summary>Second projection layer (hidden → output channels).</summary>
    public Linear Projection2 { get; }
    /// <summary>The spectral layers K of the blocks.</summary>
    private protected IReadOnlyList<Module> SpectralModules => spectral;

    /// <summary>
    /// Runs the network on channels-last features [B, ..., InChannels] (the input field) with the grid [..., GridDims]
    /// appended. When <paramref name="preActivations"/> is given, each block's pre-activation K h + W h + b is added to it.
    /// </summary>
    private protected Tensor Body(Tensor value, Tensor grid, IList<Tensor>? preActivations)
    {
        // [B, ..., c] -> [B, ..., c + d] with the field in the first c channels, then add the grid (zero there).
        var features = value.IndexAdd(value.Rank - 1, inputSlots, InChannels + GridDims) + grid;
        var h = Lift.Forward(features);
        for (int i = 0; i < Blocks; i++)
        {
            var z = spectral[i].Forward(h) + pointwise[i].Forward(h);
            preActivations?.Add(z);
            h = i < Blocks - 1 ? Activate(z) : z;
        }
        return Projection2.Forward(Activate(Projection1.Forward(h)));
    }

    private Tensor Activate(Tensor x) => Activation == FnoActivation.Relu ? x.Relu() : x.Gelu();

    /// <summary>
    /// Applies the spectral initialisation <paramref name="init"/> to every block (the constructors call this):
    /// <see cref="SpectralInit.ScaledUniform"/> keeps the layers' own draws; <see cref="SpectralInit.EdgeOfChaos"/>
    /// draws each block by <see cref="FnoInit.EdgeOfChaos(SpectralConv1d, Linear, ulong?, double)"/> at σ² =
    /// <see cref="FnoInit.EdgeOfChaosVariance"/>; <see cref="SpectralInit.He"/> and <see cref="SpectralInit.HeGaussian"/>
    /// re-draw the lifting layer and every block by <see cref="FnoInit.HeLift"/> and <c>FnoInit.He</c>.
    /// </summary>
    private protected void ApplyInit(SpectralInit init, ulong seed, Action<int, ulong> edgeOfChaos, Action<int, ulong, bool> he, double[] liftMoments)
    {
        if (init == SpectralInit.EdgeOfChaos)
            for (int i = 0; i < Blocks; i++) edgeOfChaos(i, seed * 64 + 32 + (ulong)i);
        if (init is SpectralInit.He or SpectralInit.HeGaussian)
        {
            // He: each input channel is assumed to have unit second moment (normalised data), a linspace(0, 1) coordinate has 1/3.
            FnoInit.HeLift(Lift, seed * 64 + 31, liftMoments);
            for (int i = 0; i < Blocks; i++) he(i, seed * 64 + 32 + (ulong)i, init == SpectralInit.He);
        }
    }

    /// <summary>Grid coordinates linspace(0, 1, n) (0 for n = 1), as the reference code.</summary>
    private protected static float Coordinate(int i, int n) => n == 1 ? 0f : (float)i / (n - 1);

    /// <summary>
    /// The grid features [h, (w,) InChannels + GridDims] for an input of <paramref name="h"/> (x <paramref name="w"/>)
    /// points: zero in the field's channels, the coordinates after them. Built on first use per size and device, then
    /// reused (not tracked by any <see cref="TensorScope"/>; freed with the module).
    /// </summary>
    private protected Tensor GridFeatures(Device device, int h, int w)
    {
        lock (grids)
        {
            if (grids.TryGetValue((device, h, w), out var cached) && !cached.IsDisposed) return cached;
            int c = InChannels + GridDims;
            var data = new float[h * w * c];
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    int at = (i * w + j) * c + InChannels;
                    if (GridDims == 1) data[at] = Coordinate(j, w);
                    else
                    {
                        data[at] = Coordinate(i, h);
                        data[at + 1] = Coordinate(j, w);
                    }
                }
            int[] shape = GridDims == 1 ? [w, c] : [h, w, c];
            var grid = Tensor.FromArray(data, shape, device);
            grid.Persistent = true; // no TensorScope frees it
            grids[(device, h, w)] = grid;
            return grid;
        }
    }

    /// <summary>
    /// Checks an input field [B, n..., InChannels] (or [B, n...] for one channel) with <paramref name="spatial"/> grid
    /// axes, and returns it channels-last.
    /// </summary>
    private protected Tensor ChannelsLast(Tensor input, int spatial)
    {
        var s = input.Shape;
        bool plain = InChannels == 1 && s.Length == 1 + spatial;
        bool withChannels = s.Length == 2 + spatial && s[^1] == InChannels;
        if (!plain && !withChannels)
        {
            string axes = spatial == 1 ? "n" : "h, w";
            throw new ArgumentException(
                $"{Name}: expected input [batch, {axes}, {InChannels}]{(InChannels == 1 ? $" or [batch, {axes}]" : "")}, got {Shape.Format(s)}.");
        }
        return plain ? input.Reshape([.. s, 1]) : input;
    }

    /// <summary>The projection's output [B, n..., OutChannels] as [B, n...] for one output channel.</summary>
    private protected Tensor OutputShape(Tensor y) => OutChannels == 1 ? y.Reshape(y.Shape[..^1]) : y;

    /// <summary>Frees the parameters, the cached grids and the channel index's device copies.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inputSlots.Dispose();
            lock (grids)
            {
                foreach (var g in grids.Values) g.Dispose();
                grids.Clear();
            }
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// 1-D Fourier Neural Operator: input [B, n, inChannels] (or [B, n] for one channel) sampled on linspace(0, 1, n),
/// output [B, n, outChannels] (or [B, n] for one). Lifts (u, x) to <see cref="FnoBase.Width"/> channels, applies the
/// Fourier blocks (<see cref="SpectralConv1d"/> plus a pointwise <see cref="Linear"/>, GELU or ReLU between blocks) and projects
/// width → 128 → outChannels.
/// </summary>
public sealed class Fno1d : FnoBase
{
    /// <summary>Creates the network.</summary>
    /// <param name="modes">Fourier modes kept by every spectral layer (at most n/2 + 1 for the inputs it will see).</param>
    /// <param name="width">Hidden channels.</param>
    /// <param name="blocks">Fourier blocks (the reference uses 4).</param>
    /// <param name="projectionHidden">Hidden width of the projection head (128 in the reference).</param>
    /// <param name="init">Block initialisation; every choice but <see cref="SpectralInit.ScaledUniform"/> also re-draws the pointwise maps.</param>
    /// <param name="seed">Seed of every initialiser (unseeded: one drawn from <see cref="Engine.Random"/>).</param>
    /// <param name="device">Device of the parameters.</param>
    /// <param name="inChannels">Channels of the input field.</param>
    /// <param name="outChannels">Channels of the output field.</param>
    /// <param name="activation">Nonlinearity between blocks and in the head (GELU as the reference code).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public Fno1d(int modes, int width, int blocks = 4, int projectionHidden = 128, SpectralInit init = SpectralInit.ScaledUniform,
        ulong? seed = null, Device? device = null, int inChannels = 1, int outChannels = 1, FnoActivation activation = FnoActivation.Gelu)
        : this(modes, width, blocks, projectionHidden, init, device, seed ?? Random.NextSeed(), inChannels, outChannels, activation) { }

    private Fno1d(int modes, int width, int blocks, int projectionHidden, SpectralInit init, Device? device, ulong seed, int inChannels, int outChannels,
        FnoActivation activation)
        : base("Fno1d", 1, width, blocks, projectionHidden, seed, device,
            i => new SpectralConv1d(width, width, modes, seed * 64 + 32 + (ulong)i, device), inChannels, outChannels, activation)
    {
        Modes = modes;
        Init = init;
        ApplyInit(init, seed, (i, sd) => FnoInit.EdgeOfChaos(Spectral[i], Pointwise[i], sd),
            (i, sd, orthogonal) => FnoInit.He(Spectral[i], Pointwise[i], sd, orthogonal), [.. Enumerable.Repeat(1.0, inChannels), 1.0 / 3]);
    }

    /// <summary>Modes kept by each spectral layer.</summary>
    public int Modes { get; }
    /// <summary>The initialisation the network was built with.</summary>
    public SpectralInit Init { get; }
    /// <summary>The blocks' spectral layers.</summary>
    public IReadOnlyList<SpectralConv1d> Spectral => SpectralModules.Cast<SpectralConv1d>().ToList();

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Forward(input, null);

    /// <summary>
    /// The forward pass; with <paramref name="preActivations"/>, each block's pre-activation [B, n, width] is appended
    /// to the list (for initialisation studies).
    /// </summary>
    /// <exception cref="ArgumentException">The input is not [B, n, inChannels] (or [B, n] for one channel), n is 0, or modes &gt; n/2 + 1.</exception>
    public Tensor Forward(Tensor input, IList<Tensor>? preActivations)
    {
        ArgumentNullException.ThrowIfNull(input);
        var x = ChannelsLast(input, 1);
        var s = input.Shape;
        int n = s[1];
        if (n == 0)
            throw new ArgumentException($"Fno1d: input {Shape.Format(s)} has n = 0 points.");
        if (Modes > SpectralTransform.MaxModes(n))
            throw new ArgumentException($"Fno1d: {Modes} modes need modes <= n/2 + 1, i.e. n >= {2 * (Modes - 1)}; got input {Shape.Format(s)} with n = {n}.");
        return OutputShape(Body(x, GridFeatures(input.Device, 1, n), preActivations));
    }
}

/// <summary>
/// 2-D Fourier Neural Operator: input [B, h, w, inChannels] (or [B, h, w] for one channel) sampled on
/// linspace(0, 1, h) x linspace(0, 1, w), output [B, h, w, outChannels] (or [B, h, w] for one). Lifts (a, x, y) to
/// <see cref="FnoBase.Width"/> channels, applies the Fourier blocks (<see cref="SpectralConv2d"/> plus a pointwise
/// <see cref="Linear"/>) and projects width → 128 → outChannels.
/// </summary>
public sealed class Fno2d : FnoBase
{
    /// <summary>Creates the network (see <see cref="Fno1d(int, int, int, int, SpectralInit, ulong?, Device?, int, int, FnoActivation)"/>).</summary>
    /// <param name="modes1">Row frequencies kept per sign (2·modes1 rows, needs h &gt;= 2·modes1).</param>
    /// <param name="modes2">Column frequencies kept (at most w/2 + 1).</param>
    /// <param name="width">Hidden channels.</param>
    /// <param name="blocks">Fourier blocks.</param>
    /// <param name="projectionHidden">Hidden width of the projection head.</param>
    /// <param name="init">Spectral initialisation.</param>
    /// <param name="seed">Seed of every initialiser (unseeded: one drawn from <see cref="Engine.Random"/>).</param>
    /// <param name="device">Device of the parameters.</param>
    /// <param name="inChannels">Channels of the input field.</param>
    /// <param name="outChannels">Channels of the output field.</param>
    /// <param name="activation">Nonlinearity between blocks and in the head (GELU as the reference code).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public Fno2d(int modes1, int modes2, int width, int blocks = 4, int projectionHidden = 128,
        SpectralInit init = SpectralInit.ScaledUniform, ulong? seed = null, Device? device = null, int inChannels = 1, int outChannels = 1,
        FnoActivation activation = FnoActivation.Gelu)
        : this(modes1, modes2, width, blocks, projectionHidden, init, device, seed ?? Random.NextSeed(), inChannels, outChannels, activation) { }

    private Fno2d(int modes1, int modes2, int width, int blocks, int projectionHidden, SpectralInit init, Device? device, ulong seed,
        int inChannels, int outChannels, FnoActivation activation)
        : base("Fno2d", 2, width, blocks, projectionHidden, seed, device,
            i => new SpectralConv2d(width, width, modes1, modes2, seed * 64 + 32 + (ulong)i, device), inChannels, outChannels, activation)
    {
        Modes1 = modes1;
        Modes2 = modes2;
        Init = init;
        ApplyInit(init, seed, (i, sd) => FnoInit.EdgeOfChaos(Spectral[i], Pointwise[i], sd),
            (i, sd, orthogonal) => FnoInit.He(Spectral[i], Pointwise[i], sd, orthogonal), [.. Enumerable.Repeat(1.0, inChannels), 1.0 / 3, 1.0 / 3]);
    }

    /// <summary>Row frequencies kept per sign.</summary>
    public int Modes1 { get; }
    /// <summary>Column frequencies kept.</summary>
    public int Modes2 { get; }
    /// <summary>The initialisation the network was built with.</summary>
    public SpectralInit Init { get; }
    /// <summary>The blocks' spectral layers.</summary>
    public IReadOnlyList<SpectralConv2d> Spectral => SpectralModules.Cast<SpectralConv2d>().ToList();

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Forward(input, null);

    /// <summary>The forward pass; with <paramref name="preActivations"/>, each block's pre-activation is appended.</summary>
    /// <exception cref="ArgumentException">The input is not [B, h, w, inChannels] (or [B, h, w] for one channel) or too small for the modes.</exception>
    public Tensor Forward(Tensor input, IList<Tensor>? preActivations)
    {
        ArgumentNullException.ThrowIfNull(input);
        var x = ChannelsLast(input, 2);
        var s = input.Shape;
        int h = s[1], w = s[2];
        if (h < 2 * Modes1 || w == 0 || Modes2 > SpectralTransform.MaxModes(w))
            throw new ArgumentException(
                $"Fno2d: modes ({Modes1}, {Modes2}) need h >= 2·modes1 = {2 * Modes1} and w >= {2 * (Modes2 - 1)} with w > 0; got input {Shape.Format(s)}.");
        return OutputShape(Body(x, GridFeatures(input.Device, h, w), preActivations));
    }
}
