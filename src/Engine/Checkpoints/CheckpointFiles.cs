using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Engine.Checkpoints;

/// <summary>
/// The file side of saving and loading: checks a path before anything is opened (so errors name the user's path, not
/// a temporary file), refuses anything but a regular file on load (a device or a named pipe would be read without
/// end or block forever), names temporary files so that stale ones of a crashed save can be recognised and removed,
/// and makes a rename durable by flushing its folder.
/// </summary>
public static partial class CheckpointFiles
{
    /// <summary>
    /// A temporary file whose writer cannot be shown to be gone is removed only after this long without a write: a
    /// running save writes continuously, so it never looks this old.
    /// </summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromHours(1);

    /// <summary>Longest text a message quotes from a file (a name, a shape, a value) before it is cut.</summary>
    internal const int MaxQuotedLength = 200;

    private static readonly string MachineTag = ((uint)StableHash(Environment.MachineName)).ToString("x8", CultureInfo.InvariantCulture);
    private static readonly ConcurrentDictionary<string, byte> ActiveTemporaries = new(StringComparer.Ordinal);

    // ".<target>.<machine>-<pid>-<guid>.tmp", and the older ".<target>.<guid>.tmp".
    [GeneratedRegex(@"^\.(?<target>.+)\.(?:(?<machine>[0-9a-f]{8})-(?<pid>[0-9]{1,10})-)?[0-9a-f]{32}\.tmp$", RegexOptions.CultureInvariant)]
    private static partial Regex TemporaryName();

    /// <summary>
    /// The full path of <paramref name="path"/> after checking it can name a file: not null, empty, blank or holding
    /// a NUL; not an existing directory; its folder exists and is a folder.
    /// </summary>
    /// <param name="path">The user's path.</param>
    /// <param name="verb">"save to" or "load", for the message.</param>
    /// <exception cref="IOException">The path cannot name a file; the message quotes <paramref name="path"/>.</exception>
    internal static string CheckPath(string path, string verb)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (string.IsNullOrWhiteSpace(path)) throw new IOException($"checkpoint: cannot {verb} '{Clip(path)}': the path is empty.");
        if (path.Contains('\0')) throw new IOException($"checkpoint: cannot {verb} '{Clip(path.Replace("\0", "\\0", StringComparison.Ordinal))}': the path contains a NUL character.");
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new IOException($"checkpoint: cannot {verb} '{Clip(path)}': {e.Message}", e);
        }
        if (Directory.Exists(full)) throw new IOException($"checkpoint: cannot {verb} '{Clip(path)}': it is a directory, not a file.");
        var dir = Path.GetDirectoryName(full);
        if (dir != null && !Directory.Exists(dir))
            throw new IOException(File.Exists(dir) || FirstFileAbove(dir) is not null
                ? $"checkpoint: cannot {verb} '{Clip(path)}': '{FirstFileAbove(dir) ?? dir}' is a file, not a folder."
                : $"checkpoint: cannot {verb} '{Clip(path)}': the folder '{dir}' does not exist.");
        return full;
    }

    private static string? FirstFileAbove(string dir)
    {
        for (var d = dir; d != null; d = Path.GetDirectoryName(d))
            if (File.Exists(d)) return d;
        return null;
    }

    /// <summary>
    /// Checks that <paramref name="full"/> is an existing regular file (symbolic links followed) and returns its
    /// length; devices, named pipes and sockets are refused before they are opened.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    /// <exception cref="IOException">It is not a regular file.</exception>
    internal static long CheckRegularFile(string full, string userPath)
    {
        if (OperatingSystem.IsLinux() && LinuxFileType(full) is { } type && type != FileTypeRegular)
            throw new IOException($"checkpoint: cannot load '{Clip(userPath)}': it is {DescribeType(type)}, not a regular file.");
        var info = new FileInfo(full);
        if (!info.Exists) throw new FileNotFoundException($"checkpoint: cannot load '{Clip(userPath)}': no such file.", userPath);
        if ((info.Attributes & FileAttributes.Device) != 0)
            throw new IOException($"checkpoint: cannot load '{Clip(userPath)}': it is a device, not a regular file.");
        return info.Length;
    }

    /// <summary>A new temporary file name beside <paramref name="full"/>, registered as in use until <see cref="Release"/>.</summary>
    internal static string NewTemporary(string full)
    {
        var tmp = Path.Combine(Path.GetDirectoryName(full) ?? ".",
            $".{Path.GetFileName(full)}.{MachineTag}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}.tmp");
        ActiveTemporaries[tmp] = 0;
        return tmp;
    }

    /// <summary>Marks a temporary file of <see cref="NewTemporary"/> as no longer in use.</summary>
    internal static void Release(string tmp) => ActiveTemporaries.TryRemove(tmp, out _);

    /// <summary>
    /// Removes the temporary files that crashed or failed saves of <paramref name="path"/> left beside it, and only
    /// those: names of our pattern for this target, written by a process of this machine that no longer runs (or by
    /// this process, but no save of it is using them), or, when the writer cannot be checked (another machine, an
    /// older name without a process id, a process id in use), not written for <see cref="StaleAfter"/>. Never throws:
    /// a file that cannot be removed stays.
    /// </summary>
    /// <returns>The number of files removed.</returns>
    public static int RemoveStaleTemporaries(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return 0;
        }
        var dir = Path.GetDirectoryName(full);
        var target = Path.GetFileName(full);
        if (dir == null || target.Length == 0 || !Directory.Exists(dir)) return 0;
        int removed = 0;
        try
        {
            foreach (var candidate in Directory.EnumerateFiles(dir, "." + EscapeWildcards(target) + ".*.tmp"))
            {
                var m = TemporaryName().Match(Path.GetFileName(candidate));
                if (!m.Success || m.Groups["target"].Value != target || !IsStale(candidate, m)) continue;
                try
                {
                    File.Delete(candidate);
                    removed++;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Another cleaner was faster, or the file is protected: leave it.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The folder cannot be listed: nothing to clean.
        }
        return removed;
    }

    private static string EscapeWildcards(string name) =>
        name.Contains('*') || name.Contains('?') ? "*" : name;

    private static bool IsStale(string file, Match m)
    {
        bool sameMachine = m.Groups["machine"].Success && m.Groups["machine"].Value == MachineTag;
        if (sameMachine && int.TryParse(m.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
        {
            if (pid == Environment.ProcessId) return !ActiveTemporaries.ContainsKey(file);
            if (!IsRunning(pid)) return true;
        }
        try
        {
            return DateTime.UtcNow - File.GetLastWriteTimeUtc(file) > StaleAfter;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Flushes the folder of a file just renamed into it, so the new name survives a power loss (POSIX systems; on
    /// Windows the rename is journaled by the file system). Best effort: a folder that cannot be opened is skipped.
    /// </summary>
    internal static void FlushDirectory(string dir)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())) return;
        try
        {
            int fd = Open(dir, 0);
            if (fd < 0) return;
            try
            {
                if (Fsync(fd) != 0)
                    throw new IOException($"checkpoint: flushing the folder '{dir}' after the rename failed (errno {Marshal.GetLastPInvokeError()}).");
            }
            finally
            {
                _ = Close(fd);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No libc to call: the rename stands, only its durability on power loss is not forced.
        }
    }

    /// <summary>Cuts <paramref name="text"/> to <see cref="MaxQuotedLength"/> characters for a message, saying how long it was.</summary>
    internal static string Clip(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length <= MaxQuotedLength ? text : $"{text[..MaxQuotedLength]}... ({text.Length} characters)";
    }

    /// <summary>A whole message cut to 1,000 characters (for messages built elsewhere from what a file holds).</summary>
    internal static string ClipMessage(string message)
    {
        const int max = 1000;
        return message.Length <= max ? message : $"{message[..max]}... (message of {message.Length} characters cut)";
    }

    /// <summary>A shape for a message: every dimension up to 8, else the first 8 and the count.</summary>
    internal static string FormatShape(IReadOnlyList<long> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        const int shown = 8;
        return shape.Count <= shown
            ? $"[{string.Join(", ", shape)}]"
            : $"[{string.Join(", ", shape.Take(shown))}, ... ({shape.Count} dimensions)]";
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (char c in s) h = (h ^ c) * 16777619;
            return h;
        }
    }

    // ---------- Linux file types (statx: one layout on every architecture) ----------

    private const int FileTypeRegular = 0x8000;

    private static string DescribeType(int type) => type switch
    {
        0x1000 => "a named pipe",
        0x2000 => "a character device",
        0x4000 => "a directory",
        0x6000 => "a block device",
        0xA000 => "a symbolic link",
        0xC000 => "a socket",
        _ => $"a special file (type 0x{type:x})",
    };

    /// <summary>The S_IFMT bits of <paramref name="path"/>, or null when statx is unavailable or fails.</summary>
    private static int? LinuxFileType(string path)
    {
        var buffer = new byte[256];
        try
        {
            const int atFdCwd = -100, statxType = 1;
            if (Statx(atFdCwd, path, 0, statxType, buffer) != 0) return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        // struct statx: stx_mode is the 16-bit field at byte 28.
        return BitConverter.ToUInt16(buffer, 28) & 0xF000;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
