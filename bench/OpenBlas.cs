using System.Runtime.InteropServices;

namespace Engine.Bench;

/// <summary>
/// OpenBLAS <c>cblas_sgemm</c>, loaded at run time from <c>libopenblas.so.0</c> (Debian/Ubuntu:
/// <c>apt-get install libopenblas0</c>), as the baseline for the GEMM benchmarks. When the library is missing,
/// <see cref="IsAvailable"/> is false and <see cref="Note"/> says why; nothing throws at load time.
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

    static OpenBlas()
    {
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
        IsAvailable = true;
        Note = $"OpenBLAS baseline: {Config}";
    }

    /// <summary>True when <c>libopenblas.so.0</c> loaded and exports <c>cblas_sgemm</c>.</summary>
    public static bool IsAvailable { get; }

    /// <summary>A one-line description: the library's build configuration, or why it is unavailable.</summary>
    public static string Note { get; }

    /// <summary>OpenBLAS's <c>openblas_get_config()</c> string (version, architecture), or "unknown".</summary>
    public static string Config => ConfigPtr == null ? "unknown" : Marshal.PtrToStringAnsi(ConfigPtr()) ?? "unknown";

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
}
