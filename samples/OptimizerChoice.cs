using System.Globalization;
using Engine.Autodiff;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Samples;

/// <summary>
/// The optimizer settings of a training task, read from the command line by <see cref="OptimizerChoice.Parse"/>.
/// </summary>
/// <param name="Name">sgd, adam, adamw, sam, fgr or dbgr.</param>
/// <param name="Base">For sam/fgr/dbgr: the wrapped optimizer (sgd, adam or adamw); for the plain ones, <paramref name="Name"/>.</param>
/// <param name="LearningRate">Learning rate of the (base) optimizer.</param>
/// <param name="Momentum">SGD momentum (Nesterov when above 0).</param>
/// <param name="WeightDecay">SGD/Adam L2 weight decay, or AdamW's decoupled decay.</param>
/// <param name="Rho">SAM radius ρ.</param>
/// <param name="Adaptive">Adaptive SAM (ASAM).</param>
/// <param name="Gamma">Gradient-penalty strength γ of F-GR and DB-GR.</param>
/// <param name="FdEpsilon">F-GR finite-difference step ε.</param>
/// <param name="FdDirection">F-GR direction.</param>
/// <param name="Flood">Flooding level b of the loss, or null for no flooding.</param>
public sealed record OptimizerSettings(string Name, string Base, float LearningRate, float Momentum, float WeightDecay,
    float Rho, bool Adaptive, float Gamma, float FdEpsilon, FdDirection FdDirection, float? Flood)
{
    /// <summary>True for the wrappers that evaluate the gradient more than once per step (sam, fgr, dbgr).</summary>
    public bool IsMultiGradient => OptimizerChoice.Wrappers.Contains(Name);
}

/// <summary>
/// The one place the sample tasks turn <c>--optimizer sgd|adam|adamw|sam|fgr|dbgr</c> and its hyper-parameters
/// (<c>--lr --momentum --weight-decay --base --rho --adaptive --gamma --fd-eps --fd-direction --flood</c>) into an
/// optimizer, a flooding wrapper and a one-line description for the log and the task's JSON. Train with
/// <see cref="Training.ClassifierTraining.Epoch"/> or <see cref="Optimizer.StepOnLoss"/>, which work for all of them.
/// </summary>
public static class OptimizerChoice
{
    /// <summary>The plain optimizers (also the choices of <c>--base</c>).</summary>
    public static readonly IReadOnlyList<string> Plain = ["sgd", "adam", "adamw"];

    /// <summary>The multi-gradient wrappers around a plain optimizer.</summary>
    public static readonly IReadOnlyList<string> Wrappers = ["sam", "fgr", "dbgr"];

    /// <summary>Every value of <c>--optimizer</c>.</summary>
    public static IReadOnlyList<string> Names => [.. Plain, .. Wrappers];

    /// <summary>Default SGD momentum (Nesterov).</summary>
    public const float DefaultMomentum = 0.9f;
    /// <summary>Default SAM radius.</summary>
    public const float DefaultRho = 0.05f;
    /// <summary>Default adaptive-SAM radius (its perturbation is relative to |θ|, so ρ is larger).</summary>
    public const float DefaultAdaptiveRho = 2.0f;
    /// <summary>Default F-GR/DB-GR penalty strength γ.</summary>
    public const float DefaultGamma = 0.05f;
    /// <summary>Default F-GR finite-difference step ε.</summary>
    public const float DefaultFdEpsilon = 0.05f;
    /// <summary>Default AdamW decoupled weight decay (PyTorch's).</summary>
    public const float DefaultAdamWDecay = 0.01f;

    /// <summary>
    /// The options <see cref="Parse"/> reads, for a task's declaration; <paramref name="lrDefault"/> and
    /// <paramref name="weightDecayDefault"/> are the task's defaults as the help shows them.
    /// </summary>
    public static IReadOnlyList<OptionSpec> Declare(string lrDefault, string weightDecayDefault = "0") =>
    [
        Opt.Choice("optimizer", "optimizer; sam/fgr/dbgr wrap --base and cost 2 (dbgr ~3) gradient passes per step", Names, "adam"),
        Opt.Choice("base", "optimizer wrapped by sam, fgr, dbgr", Plain, "adam"),
        Opt.Float("lr", "learning rate", 0, @default: lrDefault),
        Opt.Float("momentum", "sgd momentum (Nesterov)", 0, 1, @default: "0.9"),
        Opt.Float("weight-decay", "sgd/adam L2 weight decay, or adamw's decoupled decay", 0, @default: $"{weightDecayDefault}; adamw 0.01"),
        Opt.Float("rho", "sam radius", 0, @default: "0.05; --adaptive 2"),
        Opt.Flag("adaptive", "sam: adaptive SAM (ASAM)"),
        Opt.Float("gamma", "fgr/dbgr gradient-penalty strength", 0, @default: "0.05"),
        Opt.Float("fd-eps", "fgr finite-difference step", 0, minExclusive: true, @default: "0.05"),
        Opt.Choice("fd-direction", "fgr direction", ["forward", "backward"], "forward"),
        Opt.Float("flood", "flooding: train on |loss - B| + B", 0, @default: "off"),
    ];

    /// <summary>
    /// Reads and validates the optimizer options; <paramref name="defaultLr"/> is the task's learning rate when
    /// <c>--lr</c> is absent, <paramref name="defaultWeightDecay"/> the SGD/Adam weight decay when
    /// <c>--weight-decay</c> is absent (AdamW keeps its own default), and <paramref name="task"/> names the task in
    /// error messages.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown optimizer, base or direction, or an option that does not apply.</exception>
    public static OptimizerSettings Parse(Options o, float defaultLr, string task, float defaultWeightDecay = 0f)
    {
        ArgumentNullException.ThrowIfNull(o);
        string name = o.Get("optimizer", "adam").ToLowerInvariant();
        if (!Names.Contains(name))
            throw new ArgumentException($"{task}: unknown optimizer '{name}'; choices: {string.Join(", ", Names)} (--optimizer).");
        bool wrapper = Wrappers.Contains(name);
        string baseName = o.Get("base", "adam").ToLowerInvariant();
        if (!wrapper && o.Has("base"))
            throw new ArgumentException($"{task}: --base applies only to the wrappers {string.Join(", ", Wrappers)}, not to --optimizer {name}.");
        if (wrapper && !Plain.Contains(baseName))
            throw new ArgumentException($"{task}: unknown base optimizer '{baseName}'; choices: {string.Join(", ", Plain)} (--base).");
        string inner = wrapper ? baseName : name;

        float lr = o.Float("lr", defaultLr);
        float momentum = o.Float("momentum", inner == "sgd" ? DefaultMomentum : 0f);
        if (inner != "sgd" && o.Has("momentum"))
            throw new ArgumentException($"{task}: --momentum applies only to sgd (the optimizer here is {inner}; Adam's betas are fixed at 0.9/0.999).");
        float weightDecay = o.Float("weight-decay", inner == "adamw" ? DefaultAdamWDecay : defaultWeightDecay);
        bool adaptive = o.Flag("adaptive");
        float rho = o.Float("rho", adaptive ? DefaultAdaptiveRho : DefaultRho);
        float gamma = o.Float("gamma", DefaultGamma);
        float fdEps = o.Float("fd-eps", DefaultFdEpsilon);
        string dir = o.Get("fd-direction", "forward").ToLowerInvariant();
        var direction = dir switch
        {
            "forward" => FdDirection.Forward,
            "backward" => FdDirection.Backward,
            _ => throw new ArgumentException($"{task}: unknown --fd-direction '{dir}'; choices: forward, backward."),
        };
        // Options of one wrapper given with another are most likely a mistake: say so rather than ignore them.
        // (--rho and --gamma are not checked: gr-diagonal reads them too, and `all` passes one option set to every task.)
        var owners = new (string Option, string Owner)[] { ("adaptive", "sam"), ("fd-eps", "fgr"), ("fd-direction", "fgr") };
        foreach (var (option, owner) in owners)
            if (o.Has(option) && name != owner)
                throw new ArgumentException($"{task}: --{option} applies only to --optimizer {owner}, not {name}.");
        float? flood = o.Has("flood") ? o.Float("flood", 0f) : null;
        if (flood is { } b && !(float.IsFinite(b) && b >= 0))
            throw new ArgumentException($"{task}: --flood must be a finite number >= 0, got {b}.");
        return new OptimizerSettings(name, inner, lr, momentum, weightDecay, rho, adaptive, gamma, fdEps, direction, flood);
    }

    /// <summary>
    /// Parses the options (<see cref="Parse"/>) and builds the optimizer over <paramref name="parameters"/>. The
    /// flooding wrapper, if any, comes from <see cref="CreateFlooding"/>.
    /// </summary>
    public static Optimizer Create(Options o, IEnumerable<Tensor> parameters, float defaultLr, string task) =>
        Create(Parse(o, defaultLr, task), parameters);

    /// <summary>Builds the optimizer <paramref name="s"/> describes over <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException">Unknown names (settings not made by <see cref="Parse"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">A hyper-parameter out of range (the optimizer's own message).</exception>
    public static Optimizer Create(OptimizerSettings s, IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(parameters);
        if (!Names.Contains(s.Name))
            throw new ArgumentException($"unknown optimizer '{s.Name}'; choices: {string.Join(", ", Names)}.", nameof(s));
        var inner = CreatePlain(s.Base, s, parameters);
        try
        {
            return s.Name switch
            {
                "sam" => new Sam(inner, s.Rho, s.Adaptive),
                "fgr" => new FiniteDifferenceGr(inner, s.Gamma, s.FdEpsilon, s.FdDirection),
                "dbgr" => new DoubleBackpropGr(inner, s.Gamma),
                _ => inner,
            };
        }
        catch
        {
            inner.Dispose();
            throw;
        }
    }

    private static Optimizer CreatePlain(string name, OptimizerSettings s, IEnumerable<Tensor> parameters) => name switch
    {
        "sgd" => new Sgd(parameters, s.LearningRate, momentum: s.Momentum, weightDecay: s.WeightDecay, nesterov: s.Momentum > 0),
        "adam" => new Adam(parameters, s.LearningRate, weightDecay: s.WeightDecay),
        "adamw" => new AdamW(parameters, s.LearningRate, weightDecay: s.WeightDecay),
        _ => throw new ArgumentException($"unknown base optimizer '{name}'; choices: {string.Join(", ", Plain)}.", nameof(name)),
    };

    /// <summary>The loss wrapper for <c>--flood b</c>, or null without it.</summary>
    public static Flooding? CreateFlooding(OptimizerSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.Flood is { } b ? new Flooding(b) : null;
    }

    /// <summary>
    /// One line naming the optimizer and every hyper-parameter that acts, for the log and the JSON's "optimizer",
    /// e.g. <c>sam(rho=0.05) over adam(lr=0.001)</c>, <c>sgd(lr=0.1, momentum=0.9 nesterov), flood b=0.02</c>.
    /// </summary>
    public static string Describe(OptimizerSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var baseArgs = new List<string> { $"lr={F(s.LearningRate)}" };
        if (s.Base == "sgd" && s.Momentum > 0) baseArgs.Add($"momentum={F(s.Momentum)} nesterov");
        if (s.WeightDecay != 0 || s.Base == "adamw") baseArgs.Add($"weight_decay={F(s.WeightDecay)}");
        string plain = $"{s.Base}({string.Join(", ", baseArgs)})";
        string text = s.Name switch
        {
            "sam" => $"{(s.Adaptive ? "asam" : "sam")}(rho={F(s.Rho)}) over {plain}",
            "fgr" => $"fgr(gamma={F(s.Gamma)}, eps={F(s.FdEpsilon)}, {s.FdDirection.ToString().ToLowerInvariant()}) over {plain}",
            "dbgr" => $"dbgr(gamma={F(s.Gamma)}) over {plain}",
            _ => plain,
        };
        return s.Flood is { } b ? $"{text}, flood b={F(b)}" : text;
    }

    /// <summary>Shorthand: <see cref="Describe(OptimizerSettings)"/> of the parsed options.</summary>
    public static string Describe(Options o, float defaultLr, string task) => Describe(Parse(o, defaultLr, task));

    private static string F(float v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
