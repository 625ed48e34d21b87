using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace Engine.Bench;

/// <summary>
/// Chooses OpenBLAS's kernel family (<c>OPENBLAS_CORETYPE</c>) for this CPU before the library loads. A
/// <c>DYNAMIC_ARCH</c> OpenBLAS picks its kernels from the CPU model when it loads, and older builds (Debian's
/// 0.3.21) do not know newer models: on an AVX-512 Zen 4 they run the AVX2 Haswell kernels, which would make the
/// baseline look half as fast as it is. The choice follows the instruction sets .NET reports, so OpenBLAS runs on
/// the same vector width as the engine's kernels (<c>DOTNET_EnableAVX512=0</c> turns both to AVX2).
/// </summary>
public static partial class OpenBlasCoreType
{
    /// <summary>The environment variable OpenBLAS reads when it loads.</summary>
    public const string EnvironmentVariable = "OPENBLAS_CORETYPE";

    /// <summary>
    /// The core type for this CPU: <c>Cooperlake</c> (AVX-512 with BF16) or <c>SkylakeX</c> (AVX-512 F/BW/DQ/VL),
    /// else <c>Zen</c> (AVX2 + FMA on AMD or Hygon) or <c>Haswell</c> (AVX2 + FMA elsewhere); null when none applies
    /// (no AVX2, or not x86), where OpenBLAS's own detection is left alone.
    /// </summary>
    public static string? ForThisCpu()
    {
        if (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported)
        {
            // CPUID leaf 7 sub-leaf 1, EAX bit 5: AVX512_BF16 (OpenBLAS refuses Cooperlake without it).
            return (X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0 ? "Cooperlake" : "SkylakeX";
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            return Vendor() is "AuthenticAMD" or "HygonGenuine" ? "Zen" : "Haswell";
        }
        return null;
    }

    /// <summary>
    /// Sets <c>OPENBLAS_CORETYPE</c> in the native environment to <see cref="ForThisCpu"/> unless the user set it;
    /// call before the library loads. Returns the value in force (null: OpenBLAS detects the CPU itself) and a
    /// phrase saying where it came from, for the benchmark report.
    /// </summary>
    public static (string? Value, string Source) Apply()
    {
        string? user = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(user))
        {
            return (user, $"{EnvironmentVariable}={user} set by the user");
        }
        string? chosen = ForThisCpu();
        if (chosen == null)
        {
            return (null, $"{EnvironmentVariable} unset (no AVX2 core type applies; OpenBLAS detected the CPU itself)");
        }
        // OpenBLAS reads getenv() in its load-time constructor; Environment.SetEnvironmentVariable changes only
        // .NET's copy of the environment on Unix, so the native one is set directly.
        if (OperatingSystem.IsWindows() || SetEnv(EnvironmentVariable, chosen, 1) != 0)
        {
            return (null, $"{EnvironmentVariable} could not be set (would have been {chosen}; OpenBLAS detected the CPU itself)");
        }
        return (chosen, $"{EnvironmentVariable}={chosen} set by the benchmark for {Isa()} on {Vendor()}");
    }

    private static string Isa() => Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported ? "AVX2" : "no AVX2";

    private static string Vendor()
    {
        if (!X86Base.IsSupported)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), ebx);
        BitConverter.TryWriteBytes(bytes.AsSpan(4), edx);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), ecx);
        return Encoding.ASCII.GetString(bytes);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
