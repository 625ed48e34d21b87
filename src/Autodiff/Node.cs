namespace Engine.Autodiff;

/// <summary>
/// One recorded op on the tape: its inputs and its backward rule. The rule maps the gradient of the op's output
/// to the gradients of its inputs (null where an input gets none) and is written in differentiable tensor ops,
/// so a backward pass run with <c>createGraph: true</c> is itself recorded and can be differentiated again.
/// </summary>
internal sealed class Node
{
    public Node(string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        Op = op;
        Inputs = inputs;
        Backward = backward;
    }

    public string Op { get; }
    public Tensor[] Inputs { get; }
    public Func<Tensor, Tensor?[]> Backward { get; }
}
