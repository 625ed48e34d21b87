using System.Diagnostics;
using Engine.Data;
using Engine.Distributed;
using Engine.Nn;

namespace Engine.Tests.Distributed;

/// <summary>
/// What each rank of an MPI test runs (<c>mpirun -np N dotnet Engine.Tests.Distributed.dll MODE OUT ...</c>). Rank 0
/// writes results under OUT for the test to check; any rank that fails prints <c>rank R: error: ...</c> and exits 3.
/// </summary>
public static class Program
{
    /// <summary>Modes: train NAME..., throw, kill, hang, resume-save STEPS, resume-load STEPS, measure [STEPS] (<see cref="StepTiming"/>).</summary>
    public static int Main(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: Engine.Tests.Distributed train|throw|kill|hang|resume-save|resume-load|measure OUT [ARGS...]");
            return 2;
        }
        var comm = MpiCommunicator.World;
        string mode = args[0], output = args[1];
        var started = Stopwatch.StartNew();
        try
        {
            comm.RunOrAbort(() => Run(comm, mode, output, args[2..]));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"rank {comm.Rank}: error after {started.Elapsed.TotalSeconds:0.0} s: {e.GetType().Name}: {e.Message}");
            if (comm.Rank == 0) File.WriteAllText(Path.Combine(output, "rank0-error.txt"), $"{e.GetType().Name}\n{started.Elapsed.TotalSeconds}\n{e.Message}");
            Console.Error.Flush();
            // No MPI_Finalize: a peer is gone or out of step. The runtime ends the job on this non-zero exit.
            Environment.Exit(3);
        }
        comm.Dispose();
        return 0;
    }

    private static void Run(Communicator comm, string mode, string output, string[] rest)
    {
        switch (mode)
        {
            case "train":
                foreach (var name in rest)
                {
                    var parameters = DdpScenarios.Train(DdpScenarios.All[name], comm);
                    if (comm.Rank == 0) Write(Path.Combine(output, name + ".bin"), parameters);
                    Console.WriteLine($"rank {comm.Rank}: {name}: done");
                }
                break;
            case "throw":
            case "kill":
            case "hang":
                comm.Timeout = TimeSpan.FromSeconds(5);
                DdpScenarios.Train(DdpScenarios.All["mlp"] with { Steps = 1000 }, comm, afterStep: step =>
                {
                    if (comm.Rank != 1 || step != 5) return;
                    if (mode == "kill") Process.GetCurrentProcess().Kill();
                    if (mode == "hang") Thread.Sleep(Timeout.Infinite);
                    string? missing = rest.Length > 99 ? "never" : null;
                    _ = missing!.Length; // a NullReferenceException: the runtime's own signal handling must survive MPI's
                });
                break;
            case "resume-save":
            case "resume-load":
            {
                int steps = int.Parse(rest[0], System.Globalization.CultureInfo.InvariantCulture);
                var scenario = DdpScenarios.All["mlp"] with { Steps = steps };
                string checkpoint = Path.Combine(output, "resume.safetensors");
                var parameters = DdpScenarios.Train(scenario, comm, resumeFrom: mode == "resume-load" ? checkpoint : null,
                    saveTo: mode == "resume-save" ? checkpoint : null);
                if (comm.Rank == 0) Write(Path.Combine(output, $"{mode}-{comm.Size}.bin"), parameters);
                break;
            }
            case "measure":
                StepTiming.Run(comm, output, rest.Length > 0 ? int.Parse(rest[0], System.Globalization.CultureInfo.InvariantCulture) : 10);
                break;
            default:
                throw new ArgumentException($"unknown mode '{mode}'");
        }
    }

    /// <summary>Writes parameters as raw float32, one tensor after another.</summary>
    public static void Write(string path, float[][] parameters)
    {
        using var w = new BinaryWriter(File.Create(path));
        foreach (var p in parameters)
            foreach (var v in p) w.Write(v);
    }
}
