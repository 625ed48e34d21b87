namespace Engine.GpuCheck;

/// <summary>Entry point: <c>Engine.GpuCheck check|bench|tests|table --out DIR [options]</c> (see <see cref="Usage"/>).</summary>
public static class Program
{
    private const string Usage = """
        usage: Engine.GpuCheck <command> --out DIR [options]
          bench   device peak, GEMM 1024/2048/4096, rfft 4096x1024, MLP/Mixer/FNO steps (cuda and cpu; compiled beside
                  eager on cuda: time, launches, kernel loads, agreement), spectral routes
          tests   the kernel and autodiff tests on the check's device (or ENGINE_TEST_DEVICE) through the in-process runner
          table   prints the table from DIR/results.jsonl and DIR/baselines.jsonl (the PyTorch figures: baselines.py)
          check   bench, tests, table
        options:
          --device cuda|opencl|ilgpu-cpu   device of the GPU rows (default: cuda if present, else ilgpu-cpu)
          --small                          tiny sizes (the emulator; checks the tool end to end, not speed)
          --exclude A,B                    test classes to leave out (default IlgpuGpuShapeTests,IlgpuCodegenTests)
          --only A,B                       run only test classes whose names contain one of these
          --deadline SECONDS               tests: stop starting new tests after this long (the rest count as not run;
                                           default: none, with --small 60); the ILGPU classes run first
        Every result is appended to DIR/results.jsonl as soon as it is measured.
        """;

    /// <summary>Runs a command; returns the process exit code (1 when a test failed).</summary>
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        var options = Options.Parse(args.Skip(1).ToArray());
        Directory.CreateDirectory(options.Out);
        var log = new ResultLog(Path.Combine(options.Out, "results.jsonl"));
        int code = 0;
        switch (args[0])
        {
            case "bench":
                Measurements.Run(options, log);
                break;
            case "tests":
                code = TestRunner.Run(options, log);
                break;
            case "table":
                Table.Print(options.Out, Console.Out);
                break;
            case "check":
                Measurements.Run(options, log);
                code = TestRunner.Run(options, log);
                Table.Print(options.Out, Console.Out);
                break;
            default:
                Console.Error.WriteLine($"unknown command '{args[0]}'.\n{Usage}");
                return 2;
        }
        return code;
    }
}

/// <summary>Command-line options.</summary>
public sealed record Options(string Out, string? Device, bool Small, string[] Exclude, string[] Only, double DeadlineSeconds)
{
    /// <summary>Parses <c>--out DIR --device NAME --small --exclude A,B --only A,B --deadline S</c>.</summary>
    public static Options Parse(string[] args)
    {
        string @out = "gpu-check-out";
        string? device = null;
        bool small = false;
        string[] exclude = ["IlgpuGpuShapeTests", "IlgpuCodegenTests"];
        string[] only = [];
        double? deadline = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value.");
            switch (args[i])
            {
                case "--out": @out = Next(); break;
                case "--device": device = Next(); break;
                case "--small": small = true; break;
                case "--exclude": exclude = Next().Split(',', StringSplitOptions.RemoveEmptyEntries); break;
                case "--only": only = Next().Split(',', StringSplitOptions.RemoveEmptyEntries); break;
                case "--deadline": deadline = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option '{args[i]}'.");
            }
        }
        return new Options(@out, device, small, exclude, only, deadline ?? (small ? 60 : double.PositiveInfinity));
    }
}
