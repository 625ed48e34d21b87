using System.Runtime.InteropServices;

namespace Engine.Bench;

/// <summary>
/// FFTW (single precision), loaded at run time from <c>libfftw3f.so.3</c> and, for the multi-threaded plans,
/// <c>libfftw3f_threads.so.3</c> (Debian/Ubuntu: <c>apt-get install libfftw3-single3</c>), as the baseline for the FFT
/// benchmarks. When a library is missing, <see cref="IsAvailable"/> / <see cref="ThreadsAvailable"/> are false and
/// <see cref="Note"/> says why; nothing throws at load time.
/// </summary>
public static unsafe class Fftw
{
    /// <summary>FFTW_MEASURE: plan by timing candidate algorithms (overwrites the arrays while planning).</summary>
    public const uint Measure = 0;

    /// <summary>FFTW_ESTIMATE: plan by heuristics, without running anything.</summary>
    public const uint Estimate = 1u << 6;

    private const string LibraryName = "libfftw3f.so.3";
    private const string ThreadsLibraryName = "libfftw3f_threads.so.3";

    private static readonly delegate* unmanaged[Cdecl]<int, int*, int, float*, int*, int, int, float*, int*, int, int, uint, nint> PlanManyR2cPtr;
    private static readonly delegate* unmanaged[Cdecl]<nint, void> ExecutePtr;
    private static readonly delegate* unmanaged[Cdecl]<nint, void> DestroyPtr;
    private static readonly delegate* unmanaged[Cdecl]<int, void> PlanWithThreadsPtr;

    static Fftw()
    {
        if (!NativeLibrary.TryLoad(LibraryName, out nint lib))
        {
            Note = $"FFTW baseline skipped: {LibraryName} could not be loaded (install it with 'apt-get install libfftw3-single3').";
            return;
        }
        if (!NativeLibrary.TryGetExport(lib, "fftwf_plan_many_dft_r2c", out nint plan)
            || !NativeLibrary.TryGetExport(lib, "fftwf_execute", out nint exec)
            || !NativeLibrary.TryGetExport(lib, "fftwf_destroy_plan", out nint destroy))
        {
            Note = $"FFTW baseline skipped: {LibraryName} lacks fftwf_plan_many_dft_r2c/fftwf_execute/fftwf_destroy_plan.";
            return;
        }
        PlanManyR2cPtr = (delegate* unmanaged[Cdecl]<int, int*, int, float*, int*, int, int, float*, int*, int, int, uint, nint>)plan;
        ExecutePtr = (delegate* unmanaged[Cdecl]<nint, void>)exec;
        DestroyPtr = (delegate* unmanaged[Cdecl]<nint, void>)destroy;
        IsAvailable = true;
        Note = "FFTW baseline: " + LibraryName;
        if (NativeLibrary.TryLoad(ThreadsLibraryName, out nint tlib)
            && NativeLibrary.TryGetExport(tlib, "fftwf_init_threads", out nint init)
            && NativeLibrary.TryGetExport(tlib, "fftwf_plan_with_nthreads", out nint with)
            && ((delegate* unmanaged[Cdecl]<int>)init)() != 0)
        {
            PlanWithThreadsPtr = (delegate* unmanaged[Cdecl]<int, void>)with;
            ThreadsAvailable = true;
            Note += " and " + ThreadsLibraryName;
        }
        else
        {
            Note += $"; multi-threaded plans skipped ({ThreadsLibraryName} could not be loaded or initialised)";
        }
    }

    /// <summary>True when <c>libfftw3f.so.3</c> loaded with the functions used here.</summary>
    public static bool IsAvailable { get; }

    /// <summary>True when <c>libfftw3f_threads.so.3</c> loaded and initialised.</summary>
    public static bool ThreadsAvailable { get; }

    /// <summary>A one-line description of what loaded, or why not.</summary>
    public static string Note { get; }

    /// <summary>
    /// A plan for <paramref name="howMany"/> contiguous real transforms of shape <paramref name="dims"/> (rank 1 or 2,
    /// row-major) from <paramref name="input"/> into the half-spectra at <paramref name="output"/>, using
    /// <paramref name="threads"/> threads (1 unless <see cref="ThreadsAvailable"/>).
    /// </summary>
    public static nint PlanManyR2c(int[] dims, int howMany, float* input, float* output, uint flags, int threads = 1)
    {
        if (!IsAvailable) throw new InvalidOperationException(Note);
        if (threads != 1)
        {
            if (!ThreadsAvailable) throw new InvalidOperationException(Note);
        }
        if (ThreadsAvailable) PlanWithThreadsPtr(threads);
        int real = 1;
        foreach (var d in dims) real *= d;
        int complex = real / dims[^1] * (dims[^1] / 2 + 1);
        fixed (int* n = dims)
        {
            nint p = PlanManyR2cPtr(dims.Length, n, howMany, input, null, 1, real, output, null, 1, complex, flags);
            if (p == 0) throw new InvalidOperationException("fftwf_plan_many_dft_r2c returned no plan.");
            return p;
        }
    }

    /// <summary>Runs a plan on the arrays it was made for.</summary>
    public static void Execute(nint plan) => ExecutePtr(plan);

    /// <summary>Frees a plan.</summary>
    public static void Destroy(nint plan)
    {
        if (plan != 0) DestroyPtr(plan);
    }
}
