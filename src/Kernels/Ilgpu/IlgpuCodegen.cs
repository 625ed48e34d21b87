using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// Compiles the kernel set's kernels to PTX and OpenCL C without a GPU or driver, with the settings of
/// <see cref="IlgpuContextSetup"/>: what the tests and the GPU check inspect (approximate instructions, fp64,
/// unresolved calls, local memory, the GEMM inner loop). Thread-safe; one context and backend per instance.
/// </summary>
internal sealed class IlgpuCodegen : IDisposable
{
    private readonly object gate = new();
    private readonly Context context;
    private readonly PTXBackend ptx;
    private readonly CLBackend openCL;

    /// <summary>A code generator for <paramref name="architecture"/> (default sm_90, the H100/H200).</summary>
    public IlgpuCodegen(CudaArchitecture? architecture = null)
    {
        var arch = architecture ?? CudaArchitecture.SM_90;
        // b.Cuda() and b.OpenCL() register no device when no driver is present; the backends below need none.
        context = Context.Create(b => IlgpuContextSetup.Configure(b));
        ptx = new PTXBackend(context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, null);
        // An OpenCL 2.0 device without fp64, fp16, 64-bit atomics or subgroups: what every kernel must compile for.
        openCL = new CLBackend(context, new CLCapabilityContext(false, false, false, false, false), CLDeviceVendor.Other, CLCVersion.CL20);
    }

    /// <summary>The PTX of an explicitly grouped kernel (one launched with a <see cref="KernelConfig"/>).</summary>
    public string Ptx(MethodInfo kernel)
    {
        lock (gate)
            return ((PTXCompiledKernel)ptx.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), KernelSpecialization.Empty)).PTXAssembly;
    }

    /// <summary>The OpenCL C source of an explicitly grouped kernel.</summary>
    public string OpenCL(MethodInfo kernel)
    {
        lock (gate)
            return ((CLCompiledKernel)openCL.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), KernelSpecialization.Empty)).Source;
    }

    /// <summary>Counts of what matters in a kernel's PTX (see <see cref="PtxFacts"/>).</summary>
    public static PtxFacts Facts(string ptx) => PtxFacts.Of(ptx);

    /// <inheritdoc />
    public void Dispose()
    {
        openCL.Dispose();
        ptx.Dispose();
        context.Dispose();
    }
}

/// <summary>
/// Instruction counts of one kernel's PTX: fused multiply-adds, 16-byte shared and global accesses, scalar generic
/// (address-space-less) accesses, barriers, local memory (spill or stack frames: <c>.local</c>) and the virtual
/// registers declared. What ptxas makes of it (physical registers, spills) is only known on the GPU.
/// </summary>
internal sealed record PtxFacts(int Fma, int SharedLoadV4, int SharedLoads, int GlobalLoadV4, int GlobalLoads, int GlobalStoreV4,
    int GenericAccesses, int Barriers, int LocalDeclarations, int F32Registers, int B32Registers, int B64Registers)
{
    private static int Count(string ptx, string pattern) =>
        System.Text.RegularExpressions.Regex.Matches(ptx, pattern, System.Text.RegularExpressions.RegexOptions.Multiline).Count;

    private static int Declared(string ptx, string kind)
    {
        var m = System.Text.RegularExpressions.Regex.Match(ptx, @"\.reg \." + kind + @"\s+%\w+<(\d+)>");
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>Reads the facts from PTX text (the entry function's, when one file holds helpers too).</summary>
    public static PtxFacts Of(string ptx)
    {
        int entry = ptx.IndexOf(".entry", StringComparison.Ordinal);
        string body = entry >= 0 ? ptx[entry..] : ptx;
        return new PtxFacts(
            Fma: Count(body, @"^\s*fma\.rn\.f32"),
            SharedLoadV4: Count(body, @"^\s*ld\.shared\.v4\."),
            SharedLoads: Count(body, @"^\s*ld\.shared\."),
            GlobalLoadV4: Count(body, @"^\s*ld\.global\.(nc\.)?v4\."),
            GlobalLoads: Count(body, @"^\s*ld\.global\."),
            GlobalStoreV4: Count(body, @"^\s*st\.global\.v4\."),
            GenericAccesses: Count(body, @"^\s*(ld|st)\.(v[24]\.)?[fbsu]\d+\s"),
            Barriers: Count(body, @"^\s*bar\.sync"),
            LocalDeclarations: Count(body, @"\.local\b"),
            F32Registers: Declared(body, "f32"),
            B32Registers: Declared(body, "b32"),
            B64Registers: Declared(body, "b64"));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Fma} fma.rn.f32, {SharedLoadV4} ld.shared.v4 of {SharedLoads} shared loads, {GlobalLoadV4} ld.global.v4 of {GlobalLoads} global loads, " +
        $"{GlobalStoreV4} st.global.v4, {GenericAccesses} generic accesses, {Barriers} barriers, {LocalDeclarations} .local, " +
        $"virtual registers f32 {F32Registers} b32 {B32Registers} b64 {B64Registers}";
}
