using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Engine.Kernels;

/// <summary>
/// What the start-up probe found on this machine: the device kinds usable here and one finding per kind (the GPU
/// found, or why none was: driver library missing, no device, driver error).
/// </summary>
/// <param name="Available">Usable kinds; the two CPU kinds are always present.</param>
/// <param name="Findings">A short note per kind, e.g. "NVIDIA H200 (SM_90), CUDA driver loaded libcuda.so.1".</param>
public sealed record DeviceProbe(IReadOnlyList<DeviceKind> Available, IReadOnlyDictionary<DeviceKind, string> Findings)
{
    /// <summary>Probes the drivers through ILGPU (never throws: a broken driver leaves the CPU kinds).</summary>
    public static DeviceProbe Run()
    {
        NativeDrivers.Install();
        var available = new List<DeviceKind> { DeviceKind.Cpu, DeviceKind.IlgpuCpu };
        var findings = new Dictionary<DeviceKind, string>
        {
            [DeviceKind.Cpu] = DescribeCpu(),
            [DeviceKind.IlgpuCpu] = "ILGPU's CPU emulator (for testing GPU kernels, not for speed)",
        };
        try
        {
            // Default() finds only the CPU when no GPU driver is present, without throwing.
            using var context = Context.Create(b => b.Default());
            var cuda = context.Devices.OfType<CudaDevice>().FirstOrDefault();
            var cl = context.Devices.OfType<CLDevice>().FirstOrDefault();
            if (cuda != null) available.Add(DeviceKind.Cuda);
            if (cl != null) available.Add(DeviceKind.OpenCL);
            findings[DeviceKind.Cuda] = cuda != null
                ? $"{cuda.Name} ({cuda.Architecture?.ToString() ?? "unknown architecture"}, {cuda.MemorySize >> 30} GiB), driver {cuda.DriverVersion}, {Library("cuda")}"
                : $"no CUDA device: driver library {NativeDrivers.Outcome("cuda") ?? "not probed"}";
            findings[DeviceKind.OpenCL] = cl != null
                ? $"{cl.Name} ({cl.VendorName}, OpenCL C {cl.CVersion}), {Library("OpenCL")}"
                : $"no OpenCL device: library {NativeDrivers.Outcome("OpenCL") ?? "not probed"}";
        }
        catch (Exception e)
        {
            findings[DeviceKind.Cuda] = findings[DeviceKind.OpenCL] = $"GPU probe failed: {e.GetType().Name}: {e.Message}";
        }
        return new DeviceProbe(available, findings);
    }

    private static string Library(string importName) => NativeDrivers.Outcome(importName) ?? "library found by the default search";

    private static string DescribeCpu()
    {
        string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Avx2.IsSupported ? "AVX2" : Vector128.IsHardwareAccelerated ? "128-bit SIMD" : "scalar";
        string fma = Fma.IsSupported ? "+FMA" : "";
        return $"SIMD kernels ({simd}{fma}, {Environment.ProcessorCount} cores)";
    }

    /// <summary>The finding for a kind, or "not probed".</summary>
    public string FindingFor(DeviceKind kind) => Findings.TryGetValue(kind, out var f) ? f : "not probed";
}

/// <summary>The device a process computes on, and why it was chosen (the one-line start-up message).</summary>
/// <param name="Kind">The chosen kind.</param>
/// <param name="Reason">Why: the environment variable, or the automatic rule and what the probe found.</param>
/// <param name="Finding">What the probe found for the chosen kind (the GPU's name, the CPU's SIMD width).</param>
public sealed record DeviceSelection(DeviceKind Kind, string Reason, string Finding)
{
    /// <summary>
    /// Chooses as <see cref="Device.Default"/> does: the kind named by <paramref name="environmentValue"/>
    /// (<c>ENGINE_DEVICE</c>) when set, else CUDA, else OpenCL, else the SIMD CPU.
    /// </summary>
    /// <exception cref="ArgumentException">The name is unknown; the message lists what is available.</exception>
    /// <exception cref="InvalidOperationException">The named device is not available; the message says what the probe found.</exception>
    public static DeviceSelection Choose(string? environmentValue, DeviceProbe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        string availableNames = string.Join(", ", probe.Available.Select(Device.NameOf));
        if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            var kind = Device.KindOf(environmentValue)
                ?? throw new ArgumentException(
                    $"Device: unknown device name '{environmentValue}'. Known names: cpu, ilgpu-cpu, cuda, opencl; available here: {availableNames}.");
            if (!probe.Available.Contains(kind))
                throw new InvalidOperationException(
                    $"Device: '{Device.NameOf(kind)}' is not available on this machine ({probe.FindingFor(kind)}). Available: {availableNames}.");
            return new DeviceSelection(kind, $"{Device.EnvironmentVariable}={environmentValue.Trim()}", probe.FindingFor(kind));
        }
        foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
            if (probe.Available.Contains(kind))
                return new DeviceSelection(kind, "automatic: CUDA > OpenCL > CPU", probe.FindingFor(kind));
        return new DeviceSelection(DeviceKind.Cpu,
            $"automatic: no GPU found (cuda: {probe.FindingFor(DeviceKind.Cuda)}; opencl: {probe.FindingFor(DeviceKind.OpenCL)})",
            probe.FindingFor(DeviceKind.Cpu));
    }

    /// <summary>One line: "Engine device: cuda (NVIDIA H200 ...); automatic: CUDA &gt; OpenCL &gt; CPU".</summary>
    public override string ToString() => $"Engine device: {Device.NameOf(Kind)} ({Finding}); {Reason}";
}
