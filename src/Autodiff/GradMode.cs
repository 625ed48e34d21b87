namespace Engine.Autodiff;

/// <summary>
/// Whether ops record themselves on the tape. Inside <see cref="NoGrad"/> nothing is recorded (inference,
/// optimizer updates); the setting is per thread.
/// </summary>
public static class GradMode
{
    [ThreadStatic] private static int disabledDepth;

    /// <summary>True when ops record backward information for tensors that require gradients.</summary>
    public static bool IsEnabled => disabledDepth == 0;

    /// <summary>Disables recording until the returned scope is disposed (scopes nest).</summary>
    public static IDisposable NoGrad() => new Scope(-1);

    /// <summary>Re-enables recording inside a <see cref="NoGrad"/> region (used by create-graph backward passes).</summary>
    public static IDisposable EnableGrad() => new Scope(+1);

    private sealed class Scope : IDisposable
    {
        private readonly int saved;
        private bool done;

        public Scope(int direction)
        {
            saved = disabledDepth;
            disabledDepth = direction < 0 ? disabledDepth + 1 : 0;
        }

        public void Dispose()
        {
            if (done) return;
            done = true;
            disabledDepth = saved;
        }
    }
}
