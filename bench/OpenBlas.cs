using System.Runtime.InteropServices;
using Engine.Kernels.Cpu;

namespace Engine.Bench;

/// <summary>
/// OpenBLAS <c>cblas_sgemm</c>, loaded at run time from <c>libopenblas.so.0</c> (Debian/Ubuntu:
/// <c>apt-get install libopenblas0</c>), as the baseline for the GEMM benchmarks. When the library is missing,
/// <see cref="IsAvailable"/> is false and <see cref="Note"/> says why; nothing throws at load time. Before loading,
/// <see cref="OpenBlasCoreType.Apply"/> points OpenBLAS at its best kernels for this CPU; after loading, OpenBLAS runs
/// on as many threads as the engine's CPU kernels (<see cref="CpuThreads.Count"/>) unless <c>OPENBLAS_NUM_THREADS</c>
/// is set. <see cref="Note"/> reports the core type OpenBLAS chose and its thread count.
/// </summary>
public static unsafe class OpenBlas
{
    /// <summary>CBLAS_ORDER: row-major.</summary>
    public const int RowMajor = 101;

    /// <summary>CBLAS_TRANSPOSE: no transpose.</summary>
    public const int NoTrans = 111;

    /// <summary>CBLAS_TRANSPOSE: transpose.</summary>
    public const int Trans = 112;

    private const string LibraryName = "libopenblas.so.0";

    private static readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> SgemmPtr;
    private static readonly delegate* unmanaged[Cdecl]<nint> ConfigPtr;
    private static readonly delegate* unmanaged[Cdecl]<nint> CoreNamePtr;
    private static readonly delegate* unmanaged[Cdecl]<int> NumThreadsPtr;

    static OpenBlas()
    {
        var (coreType, coreTypeSource) = OpenBlasCoreType.Apply();
        if (!NativeLibrary.TryLoad(LibraryName, out nint lib))
        {
            Note = $"OpenBLAS baseline skipped: {LibraryName} could not be loaded (install it with 'apt-get install libopenblas0').";
            return;
        }
        if (!NativeLibrary.TryGetExport(lib, "cblas_sgemm", out nint sgemm))
        {
            Note = $"OpenBLAS baseline skipped: {LibraryName} has no cblas_sgemm export.";
            return;
        }
        SgemmPtr = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
        if (NativeLibrary.TryGetExport(lib, "openblas_get_config", out nint config))
        {
            ConfigPtr = (delegate* unmanaged[Cdecl]<nint>)config;
        }
        if (NativeLibrary.TryGetExport(lib, "openblas_get_corename", out nint coreName))
        {
            CoreNamePtr = (delegate* unmanaged[Cdecl]<nint>)coreName;
        }
        if (NativeLibrary.TryGetExport(lib, "openblas_get_num_threads", out nint getThreads))
        {
            NumThreadsPtr = (delegate* unmanaged[Cdecl]<int>)getThreads;
        }
        string threadsSource = MatchEngineThreads(lib);
        IsAvailable = true;
        string refused = coreType == null || string.Equals(coreType, CoreName, StringComparison.OrdinalIgnoreCase)
            ? "" : $" (this build does not run {coreType} here)";
        Note = $"OpenBLAS baseline: {Config}; core {CoreName}{refused}, {coreTypeSource}; {Threads} thread(s), {threadsSource}";
    }

    /// <summary>
    /// Gives OpenBLAS the engine's thread count, so each GEMM row compares the same number of cores, unless the user
    /// chose one with <c>OPENBLAS_NUM_THREADS</c>. Returns a phrase for the report.
    /// </summary>
    private static string MatchEngineThreads(nint lib)
    {
        string? user = Environment.GetEnvironmentVariable("OPENBLAS_NUM_THREADS");
        if (!string.IsNullOrEmpty(user))
        {
            return $"OPENBLAS_NUM_THREADS={user} (set by the user)";
        }
        if (!NativeLibrary.TryGetExport(lib, "openblas_set_num_threads", out nint setThreads))
        {
            return "OpenBLAS's default (no openblas_set_num_threads export)";
        }
        ((delegate* unmanaged[Cdecl]<int, void>)setThreads)(CpuThreads.Count);
        return $"as the engine's CPU kernels ({CpuThreads.EnvironmentVariable})";
    }

    /// <summary>True when <c>libopenblas.so.0</c> loaded and exports <c>cblas_sgemm</c>.</summary>
    public static bool IsAvailable { get; }

    /// <summary>A one-line description: the library's build configuration, or why it is unavailable.</summary>
    public static string Note { get; }

    /// <summary>OpenBLAS's <c>openblas_get_config()</c> string (version, architecture), or "unknown".</summary>
    public static string Config => ConfigPtr == null ? "unknown" : Marshal.PtrToStringAnsi(ConfigPtr()) ?? "unknown";

    /// <summary>The kernel family OpenBLAS runs (<c>openblas_get_corename()</c>, e.g. "SkylakeX", "Zen"), or "unknown".</summary>
    public static string CoreName => CoreNamePtr == null ? "unknown" : Marshal.PtrToStringAnsi(CoreNamePtr()) ?? "unknown";

    /// <summary>OpenBLAS's thread count (<c>openblas_get_num_threads()</c>), or 0 when unknown.</summary>
    public static int Threads => NumThreadsPtr == null ? 0 : NumThreadsPtr();

    /// <summary>
    /// <c>cblas_sgemm</c>: C = alpha op(A) op(B) + beta C with the CBLAS constants above (<see cref="RowMajor"/>,
    /// <see cref="NoTrans"/>, <see cref="Trans"/>). Throws when <see cref="IsAvailable"/> is false.
    /// </summary>
    public static void Sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (!IsAvailable)
        {
            throw new InvalidOperationException(Note);
        }
        SgemmPtr(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>Row-major C (m x n) = alpha op(A) op(B) + beta C on pinned or fixed spans.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, float beta, Span<float> c)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            Sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha,
                pa, transA ? m : k, pb, transB ? k : n, beta, pc, n);
        }
    }

    /// <summary>
    /// Row-major C_p (m x n, contiguous) = op(A_p) op(B_p) for p &lt; batch, one call per matrix: A_p and B_p start
    /// <paramref name="strideA"/> and <paramref name="strideB"/> elements apart (0: one matrix for the batch). Returns
    /// at once when the library is missing.
    /// </summary>
    public static void SgemmBatch(int batch, int m, int n, int k, bool transA, bool transB,
        float[] a, long strideA, float[] b, long strideB, float[] c)
    {
        if (!IsAvailable)
        {
            return;
        }
        fixed (float* pa = a, pb = b, pc = c)
        {
            for (int p = 0; p < batch; p++)
            {
                Sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, 1f,
                    pa + p * strideA, transA ? m : k, pb + p * strideB, transB ? k : n, 0f, pc + (long)p * m * n, n);
            }
        }
    }
}
