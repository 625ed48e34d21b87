using System.Runtime.CompilerServices;

namespace Engine.Autodiff;

/// <summary>
/// Functional reverse mode, as <c>torch.autograd.grad</c>: gradients of outputs with respect to chosen inputs, returned
/// as tensors instead of accumulated into <see cref="Tensor.Grad"/>, and Hessian-vector products built on it.
/// </summary>
public static class Autograd
{
    /// <summary>
    /// d(Σ_k ⟨gradOutputs[k], outputs[k]⟩)/d inputs[j] for every j, without touching any <see cref="Tensor.Grad"/>.
    /// <paramref name="gradOutputs"/> defaults to ones for one-element outputs. With <paramref name="createGraph"/> the
    /// backward pass is recorded, so the returned gradients can be differentiated again (double backpropagation).
    /// An input the outputs do not depend on gets null. Inputs may be leaves or intermediate results.
    /// </summary>
    /// <exception cref="ArgumentException">Empty lists, mismatched shapes or devices, an input that does not require gradients.</exception>
    /// <exception cref="InvalidOperationException">No output requires gradients, or a gradient must be implied for a non-scalar.</exception>
    /// <param name="outputs">The tensors to differentiate.</param>
    /// <param name="inputs">The tensors to differentiate with respect to.</param>
    /// <param name="gradOutputs">The outputs' gradients (default: ones for one-element outputs).</param>
    /// <param name="createGraph">Record the backward pass (for higher-order gradients).</param>
    /// <param name="retainGraph">Keep the outputs' graph usable for another backward pass (default:
    /// <paramref name="createGraph"/>, as PyTorch's <c>retain_graph</c>).</param>
    public static Tensor?[] Grad(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor>? gradOutputs = null,
        bool createGraph = false, bool? retainGraph = null)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(inputs);
        if (outputs.Count == 0) throw new ArgumentException("grad: no outputs.", nameof(outputs));
        if (inputs.Count == 0) throw new ArgumentException("grad: no inputs.", nameof(inputs));
        if (gradOutputs != null && gradOutputs.Count != outputs.Count)
            throw new ArgumentException($"grad: {gradOutputs.Count} output gradients for {outputs.Count} outputs.", nameof(gradOutputs));
        foreach (var x in inputs)
        {
            x.CheckAlive("grad");
            if (!x.RequiresGrad)
                throw new ArgumentException($"grad: input {x.Describe()} does not require gradients.", nameof(inputs));
        }
        var roots = new List<Tensor>();
        var seeds = new List<Tensor>();
        for (int k = 0; k < outputs.Count; k++)
        {
            var y = outputs[k];
            y.CheckAlive("grad");
            if (!y.RequiresGrad) continue; // contributes nothing
            Tensor seed;
            if (gradOutputs == null)
            {
                if (y.Size != 1)
                    throw new InvalidOperationException($"grad: a gradient can be implied only for a one-element output; output {k} {y.Describe()} has {y.Size} elements: pass gradOutputs.");
                seed = y.OnesLike();
            }
            else
            {
                seed = gradOutputs[k];
                Ops.CheckSameDevice("grad", y, seed);
                if (!Shape.Equal(seed.shape, y.shape))
                    throw new ArgumentException($"grad: output gradient {seed.Describe()} differs from output {k} {y.Describe()}.", nameof(gradOutputs));
            }
            roots.Add(y);
            seeds.Add(seed);
        }
        if (roots.Count == 0)
            throw new InvalidOperationException("grad: no output requires gradients (none depends on an input with RequiresGrad = true).");
        var capture = new Dictionary<Tensor, Tensor?>(ReferenceEqualityComparer.Instance);
        foreach (var x in inputs) capture[x] = null;
        RunBackward(roots.ToArray(), seeds.ToArray(), createGraph, retainGraph ?? createGraph, capture);
        return inputs.Select(x => capture[x]).ToArray();
    }

    /// <summary>The gradient of a scalar <paramref name="output"/> with respect to <paramref name="inputs"/> (see the list overload).</summary>
    public static Tensor?[] Grad(Tensor output, IReadOnlyList<Tensor> inputs, bool createGraph = false, bool? retainGraph = null) =>
        Grad([output], inputs, null, createGraph, retainGraph);

    /// <summary>
    /// Hessian-vector product H v of a scalar <paramref name="loss"/> with respect to <paramref name="inputs"/>, with
    /// <paramref name="vectors"/> shaped like the inputs: the gradient g is taken with a recorded backward pass, then
    /// ⟨g, v⟩ is differentiated once more (Pearlmutter's trick: two backward passes, no Hessian formed). The loss's
    /// graph must still be alive, and stays alive: both passes retain it, so the same loss serves several products
    /// and a later backward pass. Inputs the gradient does not depend on get zeros. With
    /// <paramref name="createGraph"/> the result is itself differentiable.
    /// </summary>
    public static Tensor[] Hvp(Tensor loss, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> vectors, bool createGraph = false)
    {
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Count != inputs.Count)
            throw new ArgumentException($"hvp: {vectors.Count} vectors for {inputs.Count} inputs.", nameof(vectors));
        if (loss.Size != 1)
            throw new ArgumentException($"hvp: the loss must have one element, got {loss.Describe()}.", nameof(loss));
        for (int i = 0; i < inputs.Count; i++)
        {
            Ops.CheckSameDevice("hvp", inputs[i], vectors[i]);
            if (!Shape.Equal(inputs[i].shape, vectors[i].shape))
                throw new ArgumentException($"hvp: vector {i} {vectors[i].Describe()} differs from input {inputs[i].Describe()}.", nameof(vectors));
        }
        var g = Grad([loss], inputs, null, createGraph: true);
        Tensor? dot = null;
        using (GradMode.EnableGrad()) // ⟨g, v⟩ must be recorded even when the caller runs under NoGrad
        {
            for (int i = 0; i < g.Length; i++)
            {
                if (g[i] is not { RequiresGrad: true } gi) continue; // a gradient constant in the inputs: H v gets nothing from it
                var term = (gi * vectors[i]).Sum();
                dot = dot == null ? term : dot + term;
            }
        }
        var result = new Tensor[inputs.Count];
        Tensor?[] hv = dot == null ? new Tensor?[inputs.Count] : Grad([dot], inputs, null, createGraph, retainGraph: true);
        for (int i = 0; i < result.Length; i++) result[i] = hv[i] ?? inputs[i].ZerosLike();
        return result;
    }

    /// <summary>
    /// The reverse walk shared by <see cref="Tensor.Backward"/> and <see cref="Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor}?, bool, bool?)"/>: seeds each root with its
    /// gradient and propagates through the recorded backward rules (recorded themselves when
    /// <paramref name="createGraph"/>). Without <paramref name="capture"/>, leaf gradients accumulate into
    /// <see cref="Tensor.Grad"/> and each leaf's post-accumulate hooks fire as the walk reaches it; with it, the total
    /// gradient of every tensor in the dictionary's keys is stored as its value instead, no <see cref="Tensor.Grad"/>
    /// is touched and no hook fires. Callbacks queued during the walk run after it.
    /// </summary>
    /// <remarks>
    /// Without <paramref name="retainGraph"/> the walked ops are marked released when the walk completes, and a later
    /// walk through any of them throws (as PyTorch without <c>retain_graph</c>): a second <c>Backward()</c> on the same
    /// graph would otherwise add the same gradients again. The engine's own repeated passes retain: a create-graph
    /// pass (its default), and both passes of <see cref="Hvp"/>.
    /// </remarks>
    internal static void RunBackward(Tensor[] roots, Tensor[] seeds, bool createGraph, bool retainGraph, Dictionary<Tensor, Tensor?>? capture)
    {
        var order = TopologicalOrder(roots);
        foreach (var t in order)
            if (t.Node != null && Released.TryGetValue(t.Node, out _))
                throw new InvalidOperationException(
                    $"backward: the graph through '{t.Node.Op}' (result {t.Describe()}) was already used by a backward pass and released; "
                    + "pass retainGraph: true to the earlier Backward or Autograd.Grad to run backward through it again, or recompute the forward pass.");
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        for (int r = 0; r < roots.Length; r++)
            grads[roots[r]] = grads.TryGetValue(roots[r], out var acc0) ? acc0 + seeds[r] : seeds[r];
        using var mode = createGraph ? GradMode.EnableGrad() : GradMode.NoGrad();
        var outerCallbacks = queuedCallbacks;
        queuedCallbacks = null;
        walkDepth++;
        try
        {
            Walk(order, grads, createGraph, capture);
            if (!retainGraph)
                foreach (var t in order)
                    if (t.Node != null) Released.AddOrUpdate(t.Node, Released);
            // Callbacks queued by hooks run once the whole pass is done; a callback may queue another.
            while (queuedCallbacks is { Count: > 0 } pending)
            {
                queuedCallbacks = null;
                foreach (var callback in pending) callback();
            }
        }
        finally
        {
            walkDepth--;
            queuedCallbacks = outerCallbacks;
        }
    }

    [ThreadStatic] private static List<Action>? queuedCallbacks;
    [ThreadStatic] private static int walkDepth;

    /// <summary>
    /// Runs <paramref name="callback"/> once the backward pass in progress on this thread has finished: after the last
    /// op's backward rule ran and every leaf's gradient was accumulated and its hooks fired (PyTorch's
    /// <c>Variable._execution_engine.queue_callback</c>). Call it from a hook registered with
    /// <see cref="Tensor.RegisterPostAccumulateGradHook"/>, for work that needs the whole pass done, such as waiting for
    /// the gradient reductions a data-parallel wrapper started in its hooks. Callbacks run in the order queued, on the
    /// thread of the pass, before <see cref="Tensor.Backward"/> returns; a pass that throws drops its callbacks.
    /// </summary>
    /// <exception cref="InvalidOperationException">No backward pass is running on this thread.</exception>
    public static void QueueCallback(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (walkDepth == 0)
            throw new InvalidOperationException("QueueCallback: no backward pass is running on this thread; call it from a gradient hook.");
        (queuedCallbacks ??= new List<Action>()).Add(callback);
    }

    /// <summary>The reverse walk itself: each tensor's total gradient through its backward rule, or into a leaf.</summary>
    private static void Walk(List<Tensor> order, Dictionary<Tensor, Tensor> grads, bool createGraph, Dictionary<Tensor, Tensor?>? capture)
    {
        for (int idx = order.Count - 1; idx >= 0; idx--)
        {
            var t = order[idx];
            if (!grads.Remove(t, out var g)) continue;
            if (capture != null)
            {
                if (capture.ContainsKey(t)) capture[t] = g;
                if (t.Node == null) continue;
            }
            else if (t.Node == null)
            {
                // Every consumer of this leaf comes later in the order and has already run: its gradient is final.
                t.AccumulateGrad(g, createGraph);
                t.RunPostAccumulateGradHooks();
                continue;
            }
            var inputGrads = AnomalyMode.IsEnabled ? AnomalyMode.RunBackwardRule(t.Node, g) : t.Node.Backward(g);
            var inputs = t.Node.Inputs;
            for (int i = 0; i < inputs.Length; i++)
            {
                var gi = inputGrads[i];
                var x = inputs[i];
                if (gi == null || !x.RequiresGrad) continue;
                if (!Shape.Equal(gi.shape, x.shape))
                    throw new InvalidOperationException($"backward of '{t.Node.Op}': gradient {gi.Describe()} does not match input {x.Describe()} (an engine bug).");
                grads[x] = grads.TryGetValue(x, out var acc) ? acc + gi : gi;
            }
        }
    }

    // Ops whose graph a backward pass without retainGraph has used up.
    private static readonly ConditionalWeakTable<Node, object> Released = new();

    /// <summary>Tensors reachable from the roots through recorded ops, inputs before the ops that use them.</summary>
    private static List<Tensor> TopologicalOrder(Tensor[] roots)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, int next)>();
        foreach (var root in roots)
        {
            if (!visited.Add(root)) continue;
            stack.Push((root, 0));
            DepthFirst(stack, visited, order);
        }
        return order;
    }

    /// <summary>Post-order depth-first walk from the tensors on <paramref name="stack"/>, appending to <paramref name="order"/>.</summary>
    private static void DepthFirst(Stack<(Tensor t, int next)> stack, HashSet<Tensor> visited, List<Tensor> order)
    {
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.Node?.Inputs ?? [];
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.RequiresGrad && visited.Add(child)) stack.Push((child, 0));
            }
            else
            {
                order.Add(t);
            }
        }
    }
}
