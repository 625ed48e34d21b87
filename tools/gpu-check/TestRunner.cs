using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Engine.Tests;
using Xunit.Sdk;

namespace Engine.GpuCheck;

/// <summary>
/// A small in-process runner for the xUnit 2 tests compiled into this assembly (tests/Kernels, tests/Autodiff): every
/// public test class, every <see cref="FactAttribute"/> method (inherited ones included), <see cref="TheoryAttribute"/>
/// rows from any <see cref="DataAttribute"/> (InlineData, MemberData, the kernel tables' KernelCases); class fixtures
/// (<see cref="IClassFixture{TFixture}"/>) passed to the constructor; a new instance per test, disposed after it. Tests
/// run one at a time. The ILGPU test classes use <c>ENGINE_TEST_DEVICE</c> (see <see cref="TestDevices"/>).
/// </summary>
public static class TestRunner
{
    /// <summary>Runs the selected classes; logs the counts, writes the failures to DIR/test-failures.txt; 1 when any failed.</summary>
    public static int Run(Options o, ResultLog log)
    {
        string device;
        try
        {
            // The tests run on the check's device unless ENGINE_TEST_DEVICE names another.
            if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(TestDevices.EnvironmentVariable)))
                Environment.SetEnvironmentVariable(TestDevices.EnvironmentVariable, Measurements.ChooseDevice(o).Name);
            device = TestDevices.Ilgpu.Name;
        }
        catch (Exception e)
        {
            log.Add("tests", "device", double.NaN, "", $"{TestDevices.EnvironmentVariable}: {e.Message}");
            return 1;
        }
        var failures = new StringBuilder();
        int passed = 0, failed = 0, skipped = 0, notRun = 0;
        var sw = Stopwatch.StartNew();
        foreach (var type in TestClasses(o))
        {
            if (sw.Elapsed.TotalSeconds > o.DeadlineSeconds)
            {
                notRun += Tests(type, []).Count();
                continue;
            }
            int classFailed = 0, classPassed = 0;
            var fixtures = CreateFixtures(type);
            try
            {
                foreach (var (name, run) in Tests(type, fixtures))
                {
                    if (sw.Elapsed.TotalSeconds > o.DeadlineSeconds)
                    {
                        notRun++;
                        continue;
                    }
                    if (run == null)
                    {
                        skipped++;
                        continue;
                    }
                    try
                    {
                        run();
                        passed++;
                        classPassed++;
                    }
                    catch (Exception e)
                    {
                        failed++;
                        classFailed++;
                        var inner = e is TargetInvocationException { InnerException: { } ie } ? ie : e;
                        failures.AppendLine($"FAIL {name}\n  {inner.GetType().Name}: {FirstLines(inner.Message, 8)}\n");
                    }
                }
            }
            finally
            {
                foreach (var f in fixtures.Values.OfType<IDisposable>()) f.Dispose();
            }
            log.Add("test-class", type.Name, classPassed, "passed", $"{classFailed} failed");
        }
        File.WriteAllText(Path.Combine(o.Out, "test-failures.txt"), failures.Length == 0 ? "no failures\n" : failures.ToString());
        log.Add("tests", device, passed, "passed",
            string.Create(CultureInfo.InvariantCulture,
                $"{failed} failed, {skipped} skipped, {notRun} not run (deadline), {sw.Elapsed.TotalSeconds:F0} s; failures in test-failures.txt"));
        return failed > 0 ? 1 : 0;
    }

    private static string FirstLines(string text, int lines) => string.Join("\n  ", text.Split('\n').Take(lines));

    /// <summary>
    /// Public, non-abstract classes with test methods, filtered by --only / --exclude (substring of the class name); the
    /// ILGPU classes (those that run on the device under test) first, so a deadline cuts the CPU set's classes.
    /// </summary>
    private static IEnumerable<Type> TestClasses(Options o) =>
        typeof(TestRunner).Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && (t.IsPublic || t.IsNestedPublic) && TestMethods(t).Any())
            .Where(t => o.Only.Length == 0 || o.Only.Any(n => t.Name.Contains(n, StringComparison.Ordinal)))
            .Where(t => !o.Exclude.Any(n => t.Name == n))
            .OrderBy(t => t.Name.Contains("Ilgpu", StringComparison.Ordinal) ? 0 : 1)
            .ThenBy(t => t.FullName, StringComparer.Ordinal);

    private static IEnumerable<MethodInfo> TestMethods(Type t) =>
        t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static)
            .Where(m => m.GetCustomAttributes<FactAttribute>(inherit: true).Any());

    /// <summary>One instance of each <see cref="IClassFixture{TFixture}"/> the class asks for.</summary>
    private static Dictionary<Type, object> CreateFixtures(Type t) =>
        t.GetInterfaces()
            .Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IClassFixture<>))
            .Select(i => i.GetGenericArguments()[0])
            .ToDictionary(f => f, f => Activator.CreateInstance(f)!);

    /// <summary>(name, run) per test case; run is null for a skipped test.</summary>
    private static IEnumerable<(string Name, Action? Run)> Tests(Type t, Dictionary<Type, object> fixtures)
    {
        foreach (var m in TestMethods(t).OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            var fact = m.GetCustomAttributes<FactAttribute>(inherit: true).First();
            string baseName = $"{t.Name}.{m.Name}";
            if (fact.Skip != null)
            {
                yield return (baseName, null);
                continue;
            }
            if (fact is not TheoryAttribute)
            {
                yield return (baseName, () => Invoke(t, m, fixtures, []));
                continue;
            }
            List<object?[]> rows;
            string? dataError = null;
            try
            {
                rows = m.GetCustomAttributes<DataAttribute>(inherit: true).SelectMany(d => d.GetData(m)).Select(r => (object?[])r).ToList();
            }
            catch (Exception e)
            {
                rows = [];
                dataError = e.Message;
            }
            if (dataError != null)
            {
                yield return (baseName + " [data]", () => throw new InvalidOperationException($"theory data failed: {dataError}"));
                continue;
            }
            foreach (var row in rows)
            {
                var args = row;
                yield return ($"{baseName}({string.Join(", ", args.Select(Describe))})", () => Invoke(t, m, fixtures, args));
            }
        }
    }

    private static string Describe(object? v) => v switch
    {
        null => "null",
        string s => $"\"{s}\"",
        Array a => "[" + string.Join(",", a.Cast<object?>().Take(8).Select(Describe)) + (a.Length > 8 ? ",…" : "") + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>Creates the instance (constructor arguments from the fixtures), calls the method, disposes the instance.</summary>
    private static void Invoke(Type t, MethodInfo m, Dictionary<Type, object> fixtures, object?[] row)
    {
        object? instance = null;
        if (!m.IsStatic)
        {
            var ctor = t.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
            var ctorArgs = ctor.GetParameters().Select(p => fixtures.TryGetValue(p.ParameterType, out var f) ? f
                : throw new InvalidOperationException($"{t.Name}: no fixture of type {p.ParameterType.Name} for its constructor.")).ToArray();
            instance = ctor.Invoke(ctorArgs);
        }
        try
        {
            var result = m.Invoke(instance, ConvertArguments(m, row));
            if (result is Task task) task.GetAwaiter().GetResult();
        }
        finally
        {
            (instance as IDisposable)?.Dispose();
        }
    }

    /// <summary>Theory data converted to the parameter types as xUnit does (numbers, enums), defaults for missing optional parameters.</summary>
    private static object?[] ConvertArguments(MethodInfo m, object?[] row)
    {
        var ps = m.GetParameters();
        var args = new object?[ps.Length];
        for (int i = 0; i < ps.Length; i++)
        {
            if (i >= row.Length)
            {
                args[i] = ps[i].HasDefaultValue ? ps[i].DefaultValue : throw new ArgumentException($"{m.Name}: {row.Length} values for {ps.Length} parameters.");
                continue;
            }
            var v = row[i];
            var target = Nullable.GetUnderlyingType(ps[i].ParameterType) ?? ps[i].ParameterType;
            args[i] = v == null || target.IsInstanceOfType(v) ? v
                : target.IsEnum ? Enum.ToObject(target, v)
                : v is IConvertible ? Convert.ChangeType(v, target, CultureInfo.InvariantCulture)
                : v;
        }
        return args;
    }
}
