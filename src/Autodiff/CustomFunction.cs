namespace Engine.Autodiff;

/// <summary>
/// A differentiable op defined by the user (PyTorch's <c>torch.autograd.Function</c>): a forward computation and its
/// backward rule. <see cref="Apply"/> runs the forward without recording what happens inside it and puts one node on
/// the tape whose backward rule is the user's, exactly as for the built-in ops.
/// </summary>
/// <remarks>
/// The backward rule receives a <see cref="FunctionBackward"/> (the inputs, the output and the output's gradient) and
/// returns one gradient per input (null where an input gets none). Written in tensor ops, it is recorded when the
/// backward pass itself is (<c>createGraph: true</c>), so higher-order gradients work as for built-in ops. Written in
/// host code (read <see cref="Tensor.ToArray()"/>, compute, build with <see cref="Tensor.FromArray(float[], int[], Kernels.Device?, bool)"/>),
/// construct the function with <c>differentiableBackward: false</c>: the backward then runs without recording, and an
/// attempt to differentiate its result again throws instead of silently giving zero. One output per function.
/// </remarks>
/// <example>
/// <code>
/// var cube = new CustomFunction("cube",
///     forward: xs => xs[0] * xs[0] * xs[0],
///     backward: b => [b.GradOutput * 3f * b.Inputs[0].Square()]);
/// var y = cube.Apply(x);
/// </code>
/// </example>
public sealed class CustomFunction
{
    private readonly Func<Tensor[], Tensor> forward;
    private readonly Func<FunctionBackward, Tensor?[]> backward;

    /// <summary>Creates the function.</summary>
    /// <param name="name">The op's name on the tape and in error messages.</param>
    /// <param name="forward">Computes the output from the inputs (runs without recording; any tensor code).</param>
    /// <param name="backward">Returns one gradient per input, each shaped like its input, or null for none.</param>
    /// <param name="differentiableBackward">
    /// True (the default) when <paramref name="backward"/> is written in tensor ops, so it can be differentiated again;
    /// false for host code.
    /// </param>
    public CustomFunction(string name, Func<Tensor[], Tensor> forward, Func<FunctionBackward, Tensor?[]> backward, bool differentiableBackward = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(backward);
        Name = name;
        this.forward = forward;
        this.backward = backward;
        DifferentiableBackward = differentiableBackward;
    }

    /// <summary>The op's name.</summary>
    public string Name { get; }

    /// <summary>Whether the backward rule is written in tensor ops (and so can be differentiated again).</summary>
    public bool DifferentiableBackward { get; }

    /// <summary>Runs the function on <paramref name="inputs"/> and records it on the tape when any input requires gradients.</summary>
    /// <exception cref="ArgumentException">No inputs, or inputs on different devices.</exception>
    /// <exception cref="InvalidOperationException">The forward returned null or a tensor on another device.</exception>
    public Tensor Apply(params Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Length == 0) throw new ArgumentException($"{Name}: a custom function needs at least one input.", nameof(inputs));
        foreach (var x in inputs)
        {
            ArgumentNullException.ThrowIfNull(x, nameof(inputs));
            Ops.CheckSameDevice(Name, inputs[0], x);
        }
        var args = (Tensor[])inputs.Clone();
        Tensor y;
        using (GradMode.NoGrad()) y = forward(args);
        if (y == null) throw new InvalidOperationException($"{Name}: the forward returned null.");
        y.CheckAlive(Name);
        if (!ReferenceEquals(y.Device, inputs[0].Device))
            throw new InvalidOperationException($"{Name}: the forward returned a tensor on '{y.Device.Name}' for inputs on '{inputs[0].Device.Name}'.");
        // The output must be a fresh node: an input returned as is (or a tensor recorded elsewhere) gets a new handle.
        if (!y.IsLeaf || y.RequiresGrad || args.Any(x => ReferenceEquals(x, y))) y = y.Detach();
        var output = y;
        return y.Record(Name, args, g => Backward(args, output, g));
    }

    private Tensor?[] Backward(Tensor[] inputs, Tensor output, Tensor gradOutput)
    {
        bool createGraph = GradMode.IsEnabled;
        var context = new FunctionBackward(inputs, output, gradOutput);
        Tensor?[] grads;
        if (DifferentiableBackward) grads = backward(context);
        else
            using (GradMode.NoGrad()) grads = backward(context);
        if (grads == null || grads.Length != inputs.Length)
            throw new InvalidOperationException($"{Name}: the backward returned {grads?.Length ?? 0} gradients for {inputs.Length} inputs.");
        for (int i = 0; i < grads.Length; i++)
        {
            var gi = grads[i];
            if (gi == null) continue;
            gi.CheckAlive(Name + " backward");
            if (!ReferenceEquals(gi.Device, inputs[i].Device) || !Shape.Equal(gi.shape, inputs[i].shape))
                throw new InvalidOperationException(
                    $"{Name}: the backward returned gradient {gi.Describe()} on '{gi.Device.Name}' for input {i} {inputs[i].Describe()} on '{inputs[i].Device.Name}'; it must match the input's shape and device.");
            if (!DifferentiableBackward && createGraph)
                grads[i] = gi.Detach().Record(Name + "_backward", [gradOutput, .. inputs], _ => throw new InvalidOperationException(
                    $"{Name}: its backward is host code (differentiableBackward: false), so its gradients cannot be differentiated again; write the backward in tensor ops for higher-order gradients."));
        }
        return grads;
    }
}

/// <summary>What a <see cref="CustomFunction"/>'s backward rule receives.</summary>
public sealed class FunctionBackward
{
    internal FunctionBackward(Tensor[] inputs, Tensor output, Tensor gradOutput)
    {
        Inputs = inputs;
        Output = output;
        GradOutput = gradOutput;
    }

    /// <summary>The inputs the forward ran on, in order.</summary>
    public IReadOnlyList<Tensor> Inputs { get; }

    /// <summary>The forward's output (use it, as exp's rule does, instead of recomputing).</summary>
    public Tensor Output { get; }

    /// <summary>The gradient of the loss with respect to the output, shaped like it.</summary>
    public Tensor GradOutput { get; }

    /// <summary>True when the backward pass is being recorded (createGraph), so a tensor-op rule is differentiable.</summary>
    public bool CreateGraph => GradMode.IsEnabled;
}
