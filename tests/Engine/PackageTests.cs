using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Xml.Linq;
using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// PACKAGING TEST (slow, runs the .NET SDK: about 30-60 s on an idle 2-core machine; needs the NuGet sources that the
/// solution's own restore used). Copies the three libraries' sources to a temporary folder, runs `dotnet pack` there
/// with a unique prerelease version, checks the packages' contents, then builds and runs a tiny console program
/// against them through a nuget.config that adds the temporary feed and uses a private global-packages folder (with
/// the normal one as a read-only fallback), so a stale cached package can never satisfy the restore.
/// </summary>
[Trait("Category", "Packaging")]
public class PackageTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln")) && File.Exists(Path.Combine(d.FullName, "src", "Engine", "Engine.csproj")))
                return d.FullName;
        throw new InvalidOperationException($"PackageTests: no Engine.sln above {AppContext.BaseDirectory}.");
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from))
        {
            var name = Path.GetFileName(d);
            if (name is "bin" or "obj") continue;
            CopyTree(d, Path.Combine(to, name));
        }
    }

    private static string Dotnet(string workingDirectory, string arguments, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet", arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // A clean child build: none of the test host's MSBuild state, no build servers left running, no CI mode
        // (the copied sources have no git repository to make deterministic paths from).
        foreach (var key in psi.Environment.Keys.ToList())
            if (key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
                psi.Environment.Remove(key);
        psi.Environment["CI"] = "false";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {arguments} did not finish in {timeout.TotalSeconds} s.\n{stdout.Result}\n{stderr.Result}");
        }
        p.WaitForExit();
        var output = stdout.Result + stderr.Result;
        Assert.True(p.ExitCode == 0, $"dotnet {arguments} exited with {p.ExitCode}:\n{output}");
        return output;
    }

    private static XDocument Nuspec(ZipArchive zip) =>
        XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());

    [Fact]
    public void PackedLibrariesRestoreBuildAndRunInAConsumerProject()
    {
        var root = RepoRoot();
        var work = Path.Combine(Path.GetTempPath(), "engine-pack-" + Guid.NewGuid().ToString("N"));
        var version = "0.1.0-test." + Guid.NewGuid().ToString("N")[..12];
        try
        {
            var source = Path.Combine(work, "source");
            var feed = Path.Combine(work, "feed");
            CopyTree(Path.Combine(root, "src"), Path.Combine(source, "src"));
            foreach (var f in new[] { "Directory.Build.props", "README.md", "LICENSE" })
                File.Copy(Path.Combine(root, f), Path.Combine(source, f));
            // One pack of the three libraries; Engine depends on Engine.Autodiff, which depends on Engine.Kernels.
            File.WriteAllText(Path.Combine(source, "Pack.slnx"), """
                <Solution>
                  <Project Path="src/Kernels/Engine.Kernels.csproj" />
                  <Project Path="src/Autodiff/Engine.Autodiff.csproj" />
                  <Project Path="src/Engine/Engine.csproj" />
                </Solution>
                """);
            Dotnet(source, $"pack Pack.slnx -c Release -o \"{feed}\" -p:Version={version} -p:ContinuousIntegrationBuild=false -p:UseSharedCompilation=false",
                TimeSpan.FromMinutes(5));

            // Package ids carry a distinctive prefix (bare "Engine" would clash on a public feed); assemblies and
            // namespaces keep their names.
            var deps = new Dictionary<string, string?>
            {
                ["Kronograd.Engine"] = "Kronograd.Engine.Autodiff", ["Kronograd.Engine.Autodiff"] = "Kronograd.Engine.Kernels", ["Kronograd.Engine.Kernels"] = null,
            };
            Assert.Equal(deps.Keys.Order(), Directory.GetFiles(feed, "*.nupkg").Select(f => Path.GetFileName(f)[..^(version.Length + ".nupkg".Length + 1)]).Order());
            foreach (var (id, dependency) in deps)
            {
                var assembly = id["Kronograd.".Length..];
                var nupkg = Path.Combine(feed, $"{id}.{version}.nupkg");
                Assert.True(File.Exists(nupkg), $"missing {nupkg}; feed has {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
                Assert.True(File.Exists(Path.Combine(feed, $"{id}.{version}.snupkg")), $"no symbol package for {id}");
                using var zip = ZipFile.OpenRead(nupkg);
                var names = zip.Entries.Select(e => e.FullName).ToHashSet();
                Assert.Contains($"lib/net10.0/{assembly}.dll", names);
                Assert.Contains($"lib/net10.0/{assembly}.xml", names);
                Assert.Contains("README.md", names);
                Assert.Contains("LICENSE", names);
                var spec = Nuspec(zip);
                XNamespace ns = spec.Root!.Name.Namespace;
                var meta = spec.Root.Element(ns + "metadata")!;
                Assert.Equal(version, meta.Element(ns + "version")!.Value);
                Assert.Equal("MIT", meta.Element(ns + "license")!.Value);
                Assert.Equal("README.md", meta.Element(ns + "readme")!.Value);
                var dependencyIds = meta.Descendants(ns + "dependency").Select(d => (Id: d.Attribute("id")!.Value, Version: d.Attribute("version")!.Value)).ToList();
                if (dependency != null) Assert.Contains((dependency, version), dependencyIds);
            }

            var consumer = Path.Combine(work, "consumer");
            Directory.CreateDirectory(consumer);
            var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } gp
                ? gp : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var fallback = Directory.Exists(globalPackages) ? $"<fallbackPackageFolders><add key=\"user\" value=\"{globalPackages}\" /></fallbackPackageFolders>" : "";
            File.WriteAllText(Path.Combine(consumer, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(work, "packages")}" /></config>
                  {fallback}
                  <packageSources>
                    <add key="engine-test-feed" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(consumer, "Consumer.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Kronograd.Engine" Version="[{version}]" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(consumer, "Program.cs"), """
                using System.Globalization;
                using Engine.Autodiff;
                using Engine.Kernels;
                using Engine.Nn;

                using var layer = new Linear(4, 3, seed: 7, device: Device.Cpu);
                using var x = Tensor.FromArray([1f, 2f, 3f, 4f], [1, 4], Device.Cpu);
                var y = layer.Forward(x).ToArray();
                Console.WriteLine("engine-consumer " + string.Join(" ", y.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
                """);
            var output = Dotnet(consumer, "run -c Release -p:UseSharedCompilation=false", TimeSpan.FromMinutes(5));

            // The same computation in this process (built from the same sources) gives the expected line.
            using var layer = new Linear(4, 3, seed: 7, device: Device.Cpu);
            using var x = Tensor.FromArray([1f, 2f, 3f, 4f], [1, 4], Device.Cpu);
            var expected = "engine-consumer " + string.Join(" ", layer.Forward(x).ToArray().Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
            Assert.Contains(expected, output);
            // The consumer restored our freshly packed version, extracted into its private folder.
            Assert.True(Directory.Exists(Path.Combine(work, "packages", "kronograd.engine", version)), output);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
