using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// Finds the GPU driver libraries for ILGPU. ILGPU imports the CUDA driver as <c>cuda</c> and OpenCL as
/// <c>OpenCL</c>, which .NET resolves to <c>libcuda.so</c> and <c>libOpenCL.so</c> on Linux: the names the driver
/// development packages install. A machine with only the runtime driver has <c>libcuda.so.1</c> and
/// <c>libOpenCL.so.1</c>, where ILGPU silently finds no GPU. A DLL-import resolver for ILGPU's assembly tries both
/// names and remembers which file it loaded (or what it tried), for the start-up message of <see cref="DeviceProbe"/>.
/// </summary>
internal static class NativeDrivers
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, string> Outcomes = new();
    private static bool installed;
    private static string? installError;

    /// <summary>
    /// The file names to try for an ILGPU import name on an OS, in order (empty: leave it to .NET's default probing).
    /// </summary>
    public static IReadOnlyList<string> Candidates(string importName, bool isLinux) => (importName, isLinux) switch
    {
        ("cuda", true) => ["libcuda.so", "libcuda.so.1"],
        ("OpenCL", true) => ["libOpenCL.so", "libOpenCL.so.1"],
        _ => [],
    };

    /// <summary>Installs the resolver once per process (before ILGPU first touches a driver).</summary>
    public static void Install()
    {
        lock (Gate)
        {
            if (installed) return;
            installed = true;
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, Resolve);
            }
            catch (InvalidOperationException e)
            {
                // The application installed its own resolver for ILGPU first: it decides.
                installError = e.Message;
            }
        }
    }

    /// <summary>What happened to an import name: "loaded FILE", "not found (tried A, B)", or null when never asked.</summary>
    public static string? Outcome(string importName)
    {
        lock (Gate)
        {
            if (installError != null) return $"resolved by the application ({installError})";
            return Outcomes.TryGetValue(importName, out var o) ? o : null;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var candidates = Candidates(libraryName, RuntimeInformation.IsOSPlatform(OSPlatform.Linux));
        if (candidates.Count == 0) return IntPtr.Zero;
        foreach (var file in candidates)
        {
            if (NativeLibrary.TryLoad(file, assembly, searchPath, out var handle))
            {
                lock (Gate) Outcomes[libraryName] = $"loaded {file}";
                return handle;
            }
        }
        lock (Gate) Outcomes[libraryName] = $"not found (tried {string.Join(", ", candidates)})";
        return IntPtr.Zero;
    }
}
