namespace Engine.Autodiff;

public sealed partial class Tensor
{
    private List<Action<Tensor>>? postAccumulateGradHooks;

    /// <summary>
    /// Registers <paramref name="hook"/> to run each time a backward pass (<see cref="Backward"/>) has accumulated this
    /// leaf's gradient, as PyTorch's <c>register_post_accumulate_grad_hook</c>. The backward walk visits tensors in
    /// reverse topological order, so when it reaches a leaf every op that feeds it has already contributed: the
    /// <see cref="Grad"/> the hook sees is final for that pass, while the rest of the pass (the leaves nearer the
    /// inputs) is still to run. That is what lets data-parallel training start reducing a layer's gradients while the
    /// backward pass of the layers below it goes on. Hooks run on the thread of the backward pass, in registration
    /// order, once per pass in which the leaf receives a gradient (never for a leaf the pass does not reach);
    /// <see cref="Autograd.Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor}?, bool, bool?)"/> does not
    /// accumulate into <see cref="Grad"/> and fires none. A hook may read or update <see cref="Grad"/> in place; an
    /// exception it throws ends the backward pass and propagates to the caller. Dispose the returned handle to remove
    /// the hook.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tensor is not a leaf that requires gradients.</exception>
    public IDisposable RegisterPostAccumulateGradHook(Action<Tensor> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        CheckAlive("RegisterPostAccumulateGradHook");
        if (!IsLeaf || !RequiresGrad)
            throw new InvalidOperationException(
                $"RegisterPostAccumulateGradHook: tensor {Describe()} is {(IsLeaf ? "a leaf that does not require gradients" : $"the result of '{Node!.Op}'")}; only leaves that require gradients accumulate one.");
        var hooks = postAccumulateGradHooks ??= new List<Action<Tensor>>();
        hooks.Add(hook);
        return new HookHandle(hooks, hook);
    }

    /// <summary>Runs the post-accumulate hooks (called by the backward walk once this leaf's gradient is final).</summary>
    internal void RunPostAccumulateGradHooks()
    {
        if (postAccumulateGradHooks is not { Count: > 0 } hooks) return;
        // A copy: a hook may remove itself (or add another) while the list is walked.
        foreach (var hook in hooks.ToArray()) hook(this);
    }

    private sealed class HookHandle(List<Action<Tensor>> hooks, Action<Tensor> hook) : IDisposable
    {
        private bool removed;

        public void Dispose()
        {
            if (removed) return;
            removed = true;
            hooks.Remove(hook);
        }
    }
}
