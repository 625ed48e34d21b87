using System.Runtime.InteropServices;

namespace Engine.Distributed;

/// <summary>
/// The slice of Open MPI's C API (libmpi.so.40, MPI-3) that <see cref="MpiCommunicator"/> uses. Open MPI's handles
/// are pointers to predefined global objects (<c>MPI_COMM_WORLD</c> is <c>&amp;ompi_mpi_comm_world</c>), read here
/// from the library's exports; MPICH's integer handles would need another table.
/// </summary>
internal static partial class MpiNative
{
    public const string Library = "libmpi.so.40";

    public const int Success = 0;
    public const int ThreadSerialized = 2;
    public const int AnySource = -1;
    public const int MaxErrorString = 256;
    public static readonly nint InPlace = 1;

    /// <summary>Open MPI's <c>MPI_Status</c>: three public ints, then a cancelled flag and a size_t count.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Status
    {
        public int Source;
        public int Tag;
        public int Error;
        public int Cancelled;
        public nuint Count;
    }

    private static nint handle;

    /// <summary>
    /// Loads libmpi with RTLD_GLOBAL (Open MPI's plugins resolve its symbols from the global scope) and keeps Open MPI
    /// off the signals the .NET runtime handles itself (SIGSEGV and SIGFPE become managed exceptions).
    /// </summary>
    /// <exception cref="DllNotFoundException">Open MPI is not installed.</exception>
    public static void Load()
    {
        if (handle != 0) return;
        // The .NET runtime keeps its own copy of the environment on Unix: Open MPI reads the C one.
        setenv("OMPI_MCA_opal_signal", "", 0);
        handle = dlopen(Library, RtldNow | RtldGlobal);
        if (handle == 0)
            throw new DllNotFoundException($"MpiCommunicator: cannot load {Library} ({Marshal.PtrToStringUTF8(dlerror()) ?? "unknown error"}); install Open MPI: apt-get install -y openmpi-bin libopenmpi-dev.");
    }

    /// <summary>The address of one of Open MPI's predefined objects (a handle).</summary>
    public static nint Global(string name) => NativeLibrary.GetExport(handle, name);

    private const int RtldNow = 2;
    private const int RtldGlobal = 0x100;

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint dlopen(string file, int mode);

    [LibraryImport("libc")]
    private static partial nint dlerror();

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport(Library)] public static partial int MPI_Initialized(out int flag);
    [LibraryImport(Library)] public static partial int MPI_Finalized(out int flag);
    [LibraryImport(Library)] public static partial int MPI_Init_thread(nint argc, nint argv, int required, out int provided);
    [LibraryImport(Library)] public static partial int MPI_Finalize();
    [LibraryImport(Library)] public static partial int MPI_Abort(nint comm, int errorCode);
    [LibraryImport(Library)] public static partial int MPI_Comm_rank(nint comm, out int rank);
    [LibraryImport(Library)] public static partial int MPI_Comm_size(nint comm, out int size);
    [LibraryImport(Library)] public static partial int MPI_Comm_dup(nint comm, out nint newComm);
    [LibraryImport(Library)] public static partial int MPI_Comm_free(ref nint comm);
    [LibraryImport(Library)] public static partial int MPI_Comm_set_errhandler(nint comm, nint errhandler);
    [LibraryImport(Library)] public static partial int MPI_Error_string(int code, nint text, out int length);

    [LibraryImport(Library)]
    public static partial int MPI_Iallreduce(nint sendBuffer, nint receiveBuffer, int count, nint datatype, nint op, nint comm, out nint request);

    [LibraryImport(Library)]
    public static partial int MPI_Ibcast(nint buffer, int count, nint datatype, int root, nint comm, out nint request);

    [LibraryImport(Library)]
    public static partial int MPI_Iallgather(nint sendBuffer, int sendCount, nint sendType, nint receiveBuffer, int receiveCount, nint receiveType, nint comm, out nint request);

    [LibraryImport(Library)] public static partial int MPI_Ibarrier(nint comm, out nint request);
    [LibraryImport(Library)] public static partial int MPI_Isend(nint buffer, int count, nint datatype, int destination, int tag, nint comm, out nint request);
    [LibraryImport(Library)] public static partial int MPI_Irecv(nint buffer, int count, nint datatype, int source, int tag, nint comm, out nint request);
    [LibraryImport(Library)] public static partial int MPI_Test(ref nint request, out int flag, out Status status);
    [LibraryImport(Library)] public static partial int MPI_Cancel(ref nint request);
    [LibraryImport(Library)] public static partial int MPI_Request_free(ref nint request);

    /// <summary>MPI's text for an error code.</summary>
    public static string ErrorString(int code)
    {
        var text = Marshal.AllocHGlobal(MaxErrorString + 1);
        try
        {
            return MPI_Error_string(code, text, out int length) == Success
                ? Marshal.PtrToStringUTF8(text, length)
                : $"MPI error {code}";
        }
        finally
        {
            Marshal.FreeHGlobal(text);
        }
    }
}
