using System.Runtime.Intrinsics;

namespace Engine.Kernels.Vectors;

/// <summary>The vector widths the CPU kernels are compiled for, by float lanes per vector.</summary>
internal enum SimdWidth
{
    /// <summary>One lane (<see cref="Vec1"/>): the kernels' scalar code only.</summary>
    Scalar = 1,
    /// <summary><see cref="Vec128"/>.</summary>
    V128 = 4,
    /// <summary><see cref="Vec256"/>.</summary>
    V256 = 8,
    /// <summary><see cref="Vec512"/>.</summary>
    V512 = 16,
}

/// <summary>A kernel body generic over the vector width; <see cref="Simd.Run{TAction}"/> runs it at the current width.</summary>
internal interface IWidthAction
{
    /// <summary>Runs the body with <typeparamref name="TV"/> floats and <typeparamref name="TD"/> double accumulators.</summary>
    void Run<TV, TD>() where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>;
}

/// <summary>A kernel body generic over the vector width that returns a value; see <see cref="Simd.Run{TFunc, TResult}"/>.</summary>
internal interface IWidthFunc<out TResult>
{
    /// <summary>Runs the body with <typeparamref name="TV"/> floats and <typeparamref name="TD"/> double accumulators.</summary>
    TResult Run<TV, TD>() where TV : unmanaged, IFloatVector<TV, TD> where TD : unmanaged, IDoubleVector<TD>;
}

/// <summary>
/// Which vector width the CPU kernels run at, and the one place that turns it into a type argument. By default the
/// widest width the hardware accelerates; the environment variable <see cref="EnvironmentVariable"/> (512, 256, 128 or
/// scalar) picks another at start-up, and tests switch it with <see cref="Force"/>. Any width runs on any machine (a
/// width the CPU lacks runs in software, slowly but with the same results), so every width's code is tested on every
/// machine.
/// </summary>
internal static class Simd
{
    /// <summary>Environment variable that overrides the detected width: 512, 256, 128 or scalar.</summary>
    public const string EnvironmentVariable = "ENGINE_SIMD_WIDTH";

    // Lazy rather than a static initializer, so a bad environment value throws its own ArgumentException (on every use)
    // instead of a TypeInitializationException.
    private static readonly Lazy<SimdWidth> DefaultWidth = new(() => FromEnvironment() ?? Widest());

    /// <summary>The width chosen at start-up: the environment's, else the widest the hardware accelerates.</summary>
    public static SimdWidth Default => DefaultWidth.Value;

    private static SimdWidth? forced;

    /// <summary>The width kernels run at now.</summary>
    public static SimdWidth Width => forced ?? DefaultWidth.Value;

    /// <summary>The widest width the hardware accelerates.</summary>
    public static SimdWidth Widest() =>
        Vector512.IsHardwareAccelerated ? SimdWidth.V512
        : Vector256.IsHardwareAccelerated ? SimdWidth.V256
        : Vector128.IsHardwareAccelerated ? SimdWidth.V128
        : SimdWidth.Scalar;

    /// <summary>Parses <see cref="EnvironmentVariable"/>; null when it is unset.</summary>
    public static SimdWidth? FromEnvironment() => Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>Parses a width name (512, 256, 128 or scalar); null for null or empty.</summary>
    public static SimdWidth? Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "512" => SimdWidth.V512,
        "256" => SimdWidth.V256,
        "128" => SimdWidth.V128,
        "scalar" or "1" => SimdWidth.Scalar,
        _ => throw new ArgumentException($"{EnvironmentVariable}: unknown width '{value}'; use 512, 256, 128 or scalar."),
    };

    /// <summary>
    /// Runs every CPU kernel at <paramref name="width"/> until the returned scope is disposed. Process-wide: only for
    /// tests that run alone (a collection with parallelization disabled).
    /// </summary>
    public static IDisposable Force(SimdWidth width)
    {
        var previous = forced;
        forced = width;
        return new Restore(previous);
    }

    private sealed class Restore(SimdWidth? previous) : IDisposable
    {
        public void Dispose() => forced = previous;
    }

    /// <summary>Runs <paramref name="action"/> at the current width.</summary>
    public static void Run<TAction>(TAction action) where TAction : struct, IWidthAction
    {
        switch (Width)
        {
            case SimdWidth.V512: action.Run<Vec512, Vec512D>(); break;
            case SimdWidth.V256: action.Run<Vec256, Vec256D>(); break;
            case SimdWidth.V128: action.Run<Vec128, Vec128D>(); break;
            default: action.Run<Vec1, Vec1D>(); break;
        }
    }

    /// <summary>Runs <paramref name="func"/> at the current width.</summary>
    public static TResult Run<TFunc, TResult>(TFunc func) where TFunc : struct, IWidthFunc<TResult> => Width switch
    {
        SimdWidth.V512 => func.Run<Vec512, Vec512D>(),
        SimdWidth.V256 => func.Run<Vec256, Vec256D>(),
        SimdWidth.V128 => func.Run<Vec128, Vec128D>(),
        _ => func.Run<Vec1, Vec1D>(),
    };
}
