using System.Runtime.CompilerServices;
using ILGPU.IR.Intrinsics;

namespace Engine.Kernels;

/// <summary>
/// Scalar math shared by the host, the CPU kernel set and the ILGPU kernels, for results that must not depend on the
/// backend. A plain <c>a * b + c</c> in a GPU kernel may or may not be contracted into one fused multiply-add by the
/// driver's compiler (ptxas contracts <c>mul.f32</c> feeding <c>add.f32</c>; OpenCL C contracts by default), so code
/// that promises the same bits everywhere writes every product that feeds a sum as <see cref="Fma"/>.
/// </summary>
internal static class KernelMath
{
    /// <summary>
    /// a·b + c with one rounding. On the host and ILGPU's CPU emulator this is <see cref="MathF.FusedMultiplyAdd"/>;
    /// ILGPU compiles it to <c>fma.rn.f32</c> (PTX) and <c>fma</c> (OpenCL C) through the intrinsics that
    /// <c>IlgpuContextSetup</c> registers (ILGPU 1.5.3 has no mapping of its own for <see cref="MathF.FusedMultiplyAdd"/>
    /// and would emit an unresolved external call).
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
}
