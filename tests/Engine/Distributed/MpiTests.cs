using System.Diagnostics;

namespace Engine.Tests.Distributed;

/// <summary>Runs the worker program (Engine.Tests.Distributed) under Open MPI's mpirun on this machine.</summary>
internal static class MpiJob
{
    private static readonly Lazy<string?> Mpirun = new(() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists));

    /// <summary>Why the MPI tests are skipped, or null when mpirun and libmpi are installed.</summary>
    public static string? Missing =>
        Mpirun.Value != null && System.Runtime.InteropServices.NativeLibrary.TryLoad("libmpi.so.40", out _)
            ? null
            : "Open MPI is not installed (apt-get install -y openmpi-bin libopenmpi-dev); .ci/run installs it";

    /// <summary>
    /// mpirun -np <paramref name="ranks"/> over the worker, each rank with one CPU thread; returns its exit code,
    /// combined output and wall time. A job still running after <paramref name="limitSeconds"/> is killed and fails the test.
    /// </summary>
    public static (int ExitCode, string Output, TimeSpan Elapsed) Run(int ranks, string mode, string output, double limitSeconds, params string[] args) =>
        Launch(ranks, "Engine.Tests.Distributed.dll", [mode, output, .. args], limitSeconds);

    /// <summary>
    /// mpirun -np <paramref name="ranks"/> over the program <paramref name="dll"/> (beside the tests) with
    /// <paramref name="args"/>, each rank with one CPU thread; as <see cref="Run"/>.
    /// </summary>
    public static (int ExitCode, string Output, TimeSpan Elapsed) Launch(int ranks, string dll, IReadOnlyList<string> args, double limitSeconds)
    {
        var program = Path.Combine(AppContext.BaseDirectory, dll);
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(Mpirun.Value!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe", "-x", "DOTNET_PROCESSOR_COUNT=1", dotnet, program })
            start.ArgumentList.Add(a);
        foreach (var a in args) start.ArgumentList.Add(a);
        // CI runs as root; Open MPI refuses root unless told twice.
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        start.Environment["TERM"] = "dumb";
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(limitSeconds)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun {dll} {string.Join(' ', args)} still ran after {limitSeconds} s");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
    }
}

/// <summary>A fact that is skipped where Open MPI is not installed.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when mpirun or libmpi is missing.</summary>
    public MpiFactAttribute()
    {
        if (MpiJob.Missing is { } why) Skip = why;
    }
}

/// <summary>A theory that is skipped where Open MPI is not installed.</summary>
public sealed class MpiTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when mpirun or libmpi is missing.</summary>
    public MpiTheoryAttribute()
    {
        if (MpiJob.Missing is { } why) Skip = why;
    }
}

/// <summary>One mpirun job with 2 ranks training every scenario, shared by the comparisons.</summary>
public sealed class MpiTrainingRun : IDisposable
{
    /// <summary>Where rank 0 wrote each scenario's final parameters.</summary>
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("ddp-mpi-").FullName;

    private readonly Lazy<(int ExitCode, string Output, TimeSpan Elapsed)> job;

    /// <summary>Prepares the job (it runs on first use).</summary>
    public MpiTrainingRun() =>
        job = new(() => MpiJob.Run(2, "train", Directory, 300, DdpScenarios.All.Keys.ToArray()));

    /// <summary>The job's outcome.</summary>
    public (int ExitCode, string Output, TimeSpan Elapsed) Job => job.Value;

    /// <inheritdoc />
    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

/// <summary>
/// Data-parallel training across processes: mpirun -np 2 on localhost, each rank one process with one CPU thread,
/// talking through Open MPI.
/// </summary>
public sealed class MpiTests(MpiTrainingRun run) : IClassFixture<MpiTrainingRun>
{
    private static float[][] Read(string path, float[][] shapeLike)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        return shapeLike.Select(p => p.Select(_ => r.ReadSingle()).ToArray()).ToArray();
    }

    [MpiTheory]
    [InlineData("mlp")]
    [InlineData("mixer")]
    [InlineData("fno")]
    [InlineData("spn")]
    [InlineData("sam")]
    [InlineData("fgr")]
    [InlineData("dbgr")]
    public void Two_processes_equal_the_summed_partial_gradients_bitwise_and_one_process_closely(string name)
    {
        var (exitCode, output, _) = run.Job;
        Assert.True(exitCode == 0, $"mpirun failed ({exitCode}):\n{output}");
        var scenario = DdpScenarios.All[name];
        var reference = DdpScenarios.SummedPartialGradients(scenario, 2);
        var trained = Read(Path.Combine(run.Directory, name + ".bin"), reference);
        DistributedDataParallelTests.AssertBitwiseEqual(reference, trained, $"{name} over MPI");
        if (name == "dbgr") return; // another objective than one process's: see the in-process test
        double difference = DistributedDataParallelTests.MaxRelativeDifference(trained, DdpScenarios.SingleProcess(scenario));
        Assert.True(difference < DistributedDataParallelTests.SingleProcessTolerance, $"{name}: {difference:G3} from one process");
    }

    private static string ErrorOfRank0(string directory) => File.ReadAllText(Path.Combine(directory, "rank0-error.txt"));

    [MpiFact]
    public void A_rank_that_throws_stops_the_other_within_seconds_with_its_name()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("ddp-mpi-throw-").FullName;
        var (exitCode, output, elapsed) = MpiJob.Run(2, "throw", dir, 120);
        Assert.NotEqual(0, exitCode);
        var error = ErrorOfRank0(dir);
        Assert.StartsWith("RankFailedException", error);
        Assert.Contains("rank 1 failed and aborted the group: NullReferenceException", error);
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"the job took {elapsed.TotalSeconds:0} s to end:\n{output}");
        System.IO.Directory.Delete(dir, true);
    }

    [MpiFact]
    public void A_rank_that_is_killed_ends_the_job_with_its_name()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("ddp-mpi-kill-").FullName;
        var (exitCode, output, elapsed) = MpiJob.Run(2, "kill", dir, 120);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("rank 1", output);
        Assert.Contains("signal 9", output);
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"the job took {elapsed.TotalSeconds:0} s to end:\n{output}");
        System.IO.Directory.Delete(dir, true);
    }

    [MpiFact]
    public void A_rank_that_hangs_makes_the_other_time_out_naming_it()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("ddp-mpi-hang-").FullName;
        var (exitCode, output, elapsed) = MpiJob.Run(2, "hang", dir, 120);
        Assert.NotEqual(0, exitCode);
        var error = ErrorOfRank0(dir);
        Assert.StartsWith("CommunicationTimeoutException", error);
        Assert.Contains("rank 1 is alive but has started", error);
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"the job took {elapsed.TotalSeconds:0} s to end:\n{output}");
        System.IO.Directory.Delete(dir, true);
    }

    [MpiFact]
    public void A_run_checkpointed_on_two_processes_resumes_on_one()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("ddp-mpi-resume-").FullName;
        var save = MpiJob.Run(2, "resume-save", dir, 120, "10");
        Assert.True(save.ExitCode == 0, save.Output);
        var load = MpiJob.Run(1, "resume-load", dir, 120, "20");
        Assert.True(load.ExitCode == 0, load.Output);
        var straight = DdpScenarios.SummedPartialGradients(DdpScenarios.All["mlp"], 2);
        var resumed = Read(Path.Combine(dir, "resume-load-1.bin"), straight);
        double difference = DistributedDataParallelTests.MaxRelativeDifference(resumed, straight);
        Assert.True(difference < DistributedDataParallelTests.SingleProcessTolerance, $"resumed on 1 rank: {difference:G3} from 20 steps on 2");
        System.IO.Directory.Delete(dir, true);
    }

    [MpiFact]
    public void The_mlp_task_launched_under_mpirun_trains_on_two_ranks_and_rank_0_writes_the_json()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("ddp-mpi-sample-").FullName;
        var (exitCode, output, _) = MpiJob.Launch(2, "Engine.Samples.dll", ["mlp", "--quick", "--distributed", "--device", "cpu", "--out", dir], 240);
        Assert.True(exitCode == 0, $"mpirun mlp --distributed failed ({exitCode}):\n{output}");
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "mlp.json")));
        Assert.Equal(2, json.RootElement.GetProperty("ranks").GetInt32());
        // Quick settings (3 epochs) reach about 95 % on one process; two ranks take the same steps.
        double accuracy = json.RootElement.GetProperty("test_accuracy").GetDouble();
        Assert.True(accuracy > 0.9, $"test accuracy {accuracy:P1} over 2 ranks");
        // Only rank 0 logs: one line per epoch, not two.
        Assert.Equal(3, output.Split('\n').Count(l => l.StartsWith("epoch ", StringComparison.Ordinal)));
        System.IO.Directory.Delete(dir, true);
    }
}
