using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Engine.Autodiff;

/// <summary>
/// A debugging mode like PyTorch's <c>torch.autograd.detect_anomaly</c>: while it is on, every op's result and every
/// backward rule's gradients are checked on the host, and the first one holding NaN or ±Infinity throws an
/// <see cref="AnomalyException"/> naming the op, its input shapes and where in the caller's code the op was recorded.
/// Slow (each op's output is copied to the host), so for finding where a run diverges, not for training. Per thread,
/// as <see cref="GradMode"/>.
/// </summary>
/// <example><code>
/// using (AnomalyMode.Enable())
/// {
///     var loss = model.Forward(x).Log().Mean();   // throws at the op that first produces NaN or Inf
///     loss.Backward();                            // or at the backward rule that does
/// }
/// </code></example>
public static class AnomalyMode
{
    [ThreadStatic] private static int depth;
    [ThreadStatic] private static int inBackwardRule;

    // Where each op of an anomaly-mode forward pass was recorded, for the backward pass's message.
    private static readonly ConditionalWeakTable<Node, string> RecordedAt = new();

    /// <summary>True while an <see cref="Enable"/> scope is open on this thread.</summary>
    public static bool IsEnabled => depth > 0;

    /// <summary>Turns anomaly detection on until the returned scope is disposed (scopes nest).</summary>
    public static IDisposable Enable() => new Scope();

    private sealed class Scope : IDisposable
    {
        private bool done;

        public Scope() => depth++;

        public void Dispose()
        {
            if (done) return;
            done = true;
            depth--;
        }
    }

    /// <summary>
    /// Runs a backward rule: the ops inside it are not checked one by one; <see cref="CheckBackward"/> checks what the
    /// rule returns and names the rule's op.
    /// </summary>
    internal static Tensor?[] RunBackwardRule(Node node, Tensor gradient)
    {
        inBackwardRule++;
        Tensor?[] grads;
        try
        {
            grads = node.Backward(gradient);
        }
        finally
        {
            inBackwardRule--;
        }
        CheckBackward(node, grads);
        return grads;
    }

    /// <summary>Checks an op's forward result (called by every op as it records itself).</summary>
    internal static void CheckForward(string op, Tensor result, Tensor[] inputs)
    {
        if (inBackwardRule > 0) return;
        string where = CallerFrames();
        if (FirstNonFinite(result) is { } bad)
            throw new AnomalyException(op, $"{op} produced {bad.Value} at element {bad.Index} of its result {result.Describe()} "
                + $"from inputs {DescribeAll(inputs)}; the op was called {where}.");
        if (result.Node != null) RecordedAt.AddOrUpdate(result.Node, where);
    }

    /// <summary>Checks the gradients a backward rule returned for its inputs.</summary>
    private static void CheckBackward(Node node, Tensor?[] inputGrads)
    {
        for (int i = 0; i < inputGrads.Length; i++)
        {
            if (inputGrads[i] is not { } g || FirstNonFinite(g) is not { } bad) continue;
            string where = RecordedAt.TryGetValue(node, out var w) ? w : "outside anomaly mode (enable it before the forward pass to see where)";
            throw new AnomalyException(node.Op, $"backward of {node.Op} produced {bad.Value} at element {bad.Index} of the gradient {g.Describe()} "
                + $"for its input {i} (inputs {DescribeAll(node.Inputs)}); the op was recorded {where}.");
        }
    }

    private static (int Index, float Value)? FirstNonFinite(Tensor t)
    {
        var values = t.ToArray();
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return (i, values[i]);
        return null;
    }

    private static string DescribeAll(Tensor[] inputs) => string.Join(", ", inputs.Select(t => t.Describe()));

    /// <summary>
    /// Where the caller's code called the op: the innermost frame outside the autodiff and kernel layers (often a
    /// module's Forward) and, when that is engine code, the innermost frame outside the engine too.
    /// </summary>
    internal static string CallerFrames()
    {
        var autodiff = typeof(AnomalyMode).Assembly;
        var kernels = typeof(Kernels.Device).Assembly;
        string? first = null;
        foreach (var frame in new StackTrace(2, fNeedFileInfo: true).GetFrames())
        {
            var method = frame.GetMethod();
            var assembly = method?.DeclaringType?.Assembly;
            if (method == null || assembly == null || assembly == autodiff || assembly == kernels || assembly == typeof(object).Assembly) continue;
            string text = Describe(frame, method);
            if (assembly.GetName().Name != "Engine") return first == null ? "at " + text : $"at {first} <- ... <- {text}";
            first ??= text;
        }
        return first == null ? "(no caller frame outside the engine)" : "at " + first;
    }

    private static string Describe(StackFrame frame, System.Reflection.MethodBase method)
    {
        var type = method.DeclaringType;
        while (type is { DeclaringType: not null } && type.Name.StartsWith('<')) type = type.DeclaringType; // lambdas' closure classes
        var file = frame.GetFileName();
        return $"{type?.Name}.{method.Name}{(file == null ? "" : $" ({Path.GetFileName(file)}:{frame.GetFileLineNumber()})")}";
    }
}

/// <summary>Thrown in <see cref="AnomalyMode"/> by the first op (forward or backward) whose result holds NaN or ±Infinity.</summary>
public sealed class AnomalyException : ArithmeticException
{
    /// <summary>Creates the exception for <paramref name="op"/>.</summary>
    public AnomalyException(string op, string message) : base(message) => Op = op;

    /// <summary>The op (as recorded on the tape) that produced the non-finite value.</summary>
    public string Op { get; }
}
