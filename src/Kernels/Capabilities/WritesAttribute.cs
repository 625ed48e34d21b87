namespace Engine.Kernels;

/// <summary>
/// Marks a parameter of a capability's entry point whose buffers the call writes (a buffer, or every buffer of a
/// parameter record). An entry point with a marked parameter writes no buffer outside its marked ones; it may read any
/// buffer it is given, the marked ones included. The compiler's passes order, fold and fuse the calls around such an
/// entry point by these effects; an entry point without marks is taken to write every buffer it touches.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class WritesAttribute : Attribute
{
}
