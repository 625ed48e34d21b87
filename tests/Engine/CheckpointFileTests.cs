using System.Diagnostics;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Xunit.Abstractions;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The file side of checkpoints: temporary files of crashed saves are removed by the next save or load of the same
/// target (and nothing else is), and a save killed at any moment leaves the target either the old or the new file.
/// </summary>
public class CheckpointFileTests(ITestOutputHelper output)
{
    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-ckpt-files-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static Sequential Small(ulong seed) => new(new Linear(3, 4, seed: seed, device: Device.Cpu));

    private static string[] Temporaries(string dir) => Directory.GetFiles(dir, ".*.tmp");

    [Fact]
    public void StaleTemporariesOfTheTargetAreRemovedAndNothingElse()
    {
        var dir = TempDir();
        try
        {
            var target = Path.Combine(dir, "model.safetensors");
            string guid() => Guid.NewGuid().ToString("N");
            // A dead writer on this machine (no process has id int.MaxValue), one of this process that no save uses,
            // an old-style name without a writer (old enough), and the same but recent (kept: it may be running).
            using (var m = Small(1)) Checkpoint.Save(m, target);
            Assert.Empty(Temporaries(dir));
            string tag = MachineTagOfASave(dir, target);
            var deadWriter = Path.Combine(dir, $".model.safetensors.{tag}-2147483647-{guid()}.tmp");
            var thisProcess = Path.Combine(dir, $".model.safetensors.{tag}-{Environment.ProcessId}-{guid()}.tmp");
            var oldStyle = Path.Combine(dir, $".model.safetensors.{guid()}.tmp");
            var recentOldStyle = Path.Combine(dir, $".model.safetensors.{guid()}.tmp");
            var otherMachineRunning = Path.Combine(dir, $".model.safetensors.{(tag == "00000000" ? "00000001" : "00000000")}-1-{guid()}.tmp");
            // Not ours: another target, our pattern's look-alikes, and a user's file.
            var otherTarget = Path.Combine(dir, $".other.safetensors.{tag}-2147483647-{guid()}.tmp");
            var notHex = Path.Combine(dir, $".model.safetensors.{tag}-2147483647-{new string('z', 32)}.tmp");
            var users = Path.Combine(dir, ".model.safetensors.backup.tmp");
            foreach (var f in new[] { deadWriter, thisProcess, oldStyle, recentOldStyle, otherMachineRunning, otherTarget, notHex, users })
                File.WriteAllBytes(f, [1, 2, 3]);
            var longAgo = DateTime.UtcNow - CheckpointFiles.StaleAfter - TimeSpan.FromMinutes(5);
            File.SetLastWriteTimeUtc(oldStyle, longAgo);

            Assert.Equal(3, CheckpointFiles.RemoveStaleTemporaries(target));
            Assert.Equal(new[] { users, notHex, otherTarget, otherMachineRunning, recentOldStyle }.Order(), Temporaries(dir).Order());

            // A load cleans up the same way; a stale writer of another machine goes once it is old enough.
            File.SetLastWriteTimeUtc(otherMachineRunning, longAgo);
            File.WriteAllBytes(deadWriter, [1]);
            using (var m = Small(2)) Checkpoint.Load(m, target);
            Assert.False(File.Exists(deadWriter));
            Assert.False(File.Exists(otherMachineRunning));
            Assert.True(File.Exists(otherTarget) && File.Exists(users) && File.Exists(notHex) && File.Exists(recentOldStyle));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The machine tag of this machine's temporary names, seen on a save that is made to fail half-way.</summary>
    private static string MachineTagOfASave(string dir, string target)
    {
        string? seen = null;
        var entries = new[]
        {
            new SafetensorsEntry("a", SafetensorsDType.F32, [1], () =>
            {
                seen = Temporaries(dir).Single();
                return new byte[4];
            }),
        };
        Safetensors.WriteFile(target + ".probe", entries);
        File.Delete(target + ".probe");
        var name = Path.GetFileName(seen!);
        return name.Split('.')[^2][..8];
    }

    [Fact]
    public void ASaveKilledAtAnyMomentLeavesTheOldOrTheNewFileAndTheNextLoadCleansUp()
    {
        var child = Path.Combine(AppContext.BaseDirectory, "SaveLoop.dll");
        Assert.True(File.Exists(child), $"{child} is missing (built with the tests)");
        var dir = TempDir();
        using var a = SaveLoopModels.Create(1);
        using var b = SaveLoopModels.Create(2);
        var bitsA = Bits(a);
        var bitsB = Bits(b);
        try
        {
            var target = Path.Combine(dir, "model.safetensors");
            var rng = new Random(7);
            int kills = 0, leftAfterKill = 0, leftAfterNext = 0, loadedA = 0, loadedB = 0;
            long bytesAfterKill = 0;
            // 6 kills by default (a few seconds); ENGINE_KILL_ROUNDS=100 runs the long version.
            int rounds = int.TryParse(Environment.GetEnvironmentVariable("ENGINE_KILL_ROUNDS"), out int n) && n > 0 ? n : 6;
            for (int round = 0; round < rounds; round++)
            {
                using (var p = StartChild(child, target))
                {
                    // Wait for a few complete saves, then kill at a random moment of the loop.
                    int wanted = 2 + rng.Next(3);
                    for (int saved = 0; saved < wanted;)
                    {
                        var line = p.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"SaveLoop ended: {p.StandardError.ReadToEnd()}");
                        if (line.StartsWith("saved ", StringComparison.Ordinal)) saved++;
                    }
                    Thread.Sleep(rng.Next(15));
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit();
                    kills++;
                }
                leftAfterKill += Temporaries(dir).Length;
                bytesAfterKill += Temporaries(dir).Sum(f => new FileInfo(f).Length);
                // Alternately the next load and the next save must clean up; the target is always a whole file.
                using var m = SaveLoopModels.Create(9);
                Checkpoint.Load(m, target);
                var bits = Bits(m);
                if (bits.SequenceEqual(bitsA)) loadedA++;
                else if (bits.SequenceEqual(bitsB)) loadedB++;
                else Assert.Fail("the target is neither model A nor model B");
                if (round % 2 == 1) Checkpoint.Save(m, target);
                leftAfterNext += Temporaries(dir).Length;
            }
            output.WriteLine($"{kills} kills during a save loop: {leftAfterKill} temporary files ({bytesAfterKill} bytes) right after the kills, {leftAfterNext} after the next load or save; target was model A {loadedA} times, B {loadedB} times");
            Assert.Equal(rounds, kills);
            Assert.Equal(0, leftAfterNext);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Process StartChild(string dll, string target)
    {
        // The dotnet host that runs these tests runs the child too.
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
        var start = new ProcessStartInfo(host, ["exec", dll, target])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        return Process.Start(start) ?? throw new InvalidOperationException($"could not start {host} {dll}");
    }

    private static int[] Bits(Module m) =>
        m.Parameters().SelectMany(p => p.ToArray()).Select(BitConverter.SingleToInt32Bits).ToArray();
}
