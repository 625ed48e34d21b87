namespace Engine.Autodiff;

public sealed partial class Tensor
{
    /// <summary>The reference-counted storage behind this tensor, for a compiled graph that keeps an output alive.</summary>
    internal Storage SharedStorage => storage;
}
