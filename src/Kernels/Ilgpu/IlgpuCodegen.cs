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

    /// <inheritdoc />
    public void Dispose()
    {
        openCL.Dispose();
        ptx.Dispose();
        context.Dispose();
    }
}
