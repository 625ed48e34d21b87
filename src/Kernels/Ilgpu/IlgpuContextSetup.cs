using ILGPU;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.IR;
using ILGPU.IR.Intrinsics;
using ILGPU.IR.Values;

namespace Engine.Kernels.Ilgpu;

/// <summary>
/// The compiler settings of every GPU context the ILGPU kernel set creates (and of the code-generation checks in the
/// tests, which compile the same kernels to PTX and OpenCL C without a GPU), so the precision the kernel tests
/// promise holds on the hardware:
/// <list type="bullet">
/// <item><see cref="OptimizationLevel.O2"/>: at ILGPU's default level (Release) every global load and store is emitted
/// in the generic address space (<c>ld.f32</c>, no <c>cvta.to.global</c>) and never vectorised; O2 infers the
/// address spaces (<c>ld.global.v4</c>) and schedules blocks for PTX.</item>
/// <item><see cref="MathMode.Default"/>: no <c>.ftz</c>, correctly rounded <c>div.rn</c>, <c>rcp.rn</c> and
/// <c>sqrt.rn</c> (<see cref="MathMode.Fast"/> flushes denormals and uses approximate division).</item>
/// <item>ILGPU.Algorithms for the transcendental functions. On PTX, exp and log become <c>ex2.approx.f32</c> and
/// <c>lg2.approx.f32</c> after a scaling multiply: about 2^-22 relative error in the function plus the rounding of the
/// scaled argument, inside the kernel tests' 2e-5 (checked by the PTX tests, which allow only these two).</item>
/// <item><c>tanh</c> on PTX would be <c>tanh.approx.f32</c> (sm_75+, relative error about 2^-11): redirected to
/// <see cref="PreciseTanh"/>.</item>
/// <item><see cref="KernelMath.Fma"/> lowered to <c>fma.rn.f32</c> (PTX) and <c>fma</c> (OpenCL C).</item>
/// <item>Every other float product lowered to <c>mul.rn.f32</c> (<see cref="GenerateRoundedProductPtx"/>), which
/// ptxas never contracts with an addition.</item>
/// </list>
/// </summary>
internal static class IlgpuContextSetup
{
    /// <summary>Applies the kernel set's compiler settings to a context builder.</summary>
    public static Context.Builder Configure(Context.Builder builder)
    {
        builder.EnableAlgorithms();
        builder.Optimize(OptimizationLevel.O2);
        builder.Math(MathMode.Default);
        var manager = builder.GetIntrinsicManager();
        var fma = typeof(KernelMath).GetMethod(nameof(KernelMath.Fma))
            ?? throw new InvalidOperationException("IlgpuContextSetup: KernelMath.Fma not found.");
        manager.RegisterMethod(fma, new PTXIntrinsic(typeof(IlgpuContextSetup), nameof(GenerateFmaPtx), IntrinsicImplementationMode.GenerateCode));
        manager.RegisterMethod(fma, new CLIntrinsic(typeof(IlgpuContextSetup), nameof(GenerateFmaOpenCL), IntrinsicImplementationMode.GenerateCode));
        manager.RegisterBinaryArithmetic(BinaryArithmeticKind.Mul, BasicValueType.Float32,
            new PTXIntrinsic(typeof(IlgpuContextSetup), nameof(GenerateRoundedProductPtx), IntrinsicImplementationMode.GenerateCode));
        manager.RegisterUnaryArithmetic(UnaryArithmeticKind.TanhF, BasicValueType.Float32,
            new PTXIntrinsic(typeof(IlgpuContextSetup), nameof(PreciseTanh), IntrinsicImplementationMode.Redirect));
        return builder;
    }

    /// <summary>
    /// Emits <c>mul.rn.f32 d, a, b</c> for every float product. ptxas may contract a plain <c>mul.f32</c> and the
    /// <c>add.f32</c> reading it into one fused multiply-add, which rounds once: a fused tree computing x0 · x1 + x2
    /// would then differ from the same ops run as separate kernels (and from the other kernel sets). A product with a
    /// rounding modifier is never contracted, so every product rounds on its own, as in .NET; fused multiply-adds stay
    /// where a kernel asks for one (<see cref="KernelMath.Fma"/>).
    /// </summary>
    private static void GenerateRoundedProductPtx(PTXBackend backend, PTXCodeGenerator codeGenerator, Value value) =>
        EmitPtx(codeGenerator, value, "mul.rn.f32", 2);

    /// <summary>Emits <paramref name="instruction"/> with <paramref name="value"/>'s register and its first <paramref name="operands"/> operands.</summary>
    private static void EmitPtx(PTXCodeGenerator codeGenerator, Value value, string instruction, int operands)
    {
        var sources = Enumerable.Range(0, operands).Select(i => codeGenerator.LoadPrimitive(value[i])).ToList();
        var target = codeGenerator.AllocateHardware(value);
        using var command = codeGenerator.BeginCommand(instruction);
        command.AppendArgument(target);
        foreach (var source in sources) command.AppendArgument(source);
    }

    /// <summary>Emits <c>fma.rn.f32 d, a, b, c</c> for a call of <see cref="KernelMath.Fma"/>.</summary>
    private static void GenerateFmaPtx(PTXBackend backend, PTXCodeGenerator codeGenerator, Value value) =>
        EmitPtx(codeGenerator, value, "fma.rn.f32", 3);

    /// <summary>Emits <c>d = fma(a, b, c)</c> (OpenCL C's correctly rounded fused multiply-add).</summary>
    private static void GenerateFmaOpenCL(CLBackend backend, CLCodeGenerator codeGenerator, Value value)
    {
        var target = codeGenerator.Allocate(value);
        using var statement = codeGenerator.BeginStatement(target);
        statement.AppendCommand("fma");
        statement.BeginArguments();
        statement.AppendArgument(codeGenerator.Load(value[0]));
        statement.AppendArgument(codeGenerator.Load(value[1]));
        statement.AppendArgument(codeGenerator.Load(value[2]));
        statement.EndArguments();
    }

    /// <summary>
    /// tanh for PTX within a few ulp (Cephes' tanhf): an odd polynomial below |x| = 0.625, else 1 - 2/(e^{2|x|} + 1)
    /// with the sign restored. The exponential's error (see the class remarks) enters at most halved, since
    /// d tanh / (de/e) = 2e/(e + 1)² ≤ 1/2, and tanh ≥ 0.55 there. NaN propagates, ±0 and ±∞ map to themselves and ±1.
    /// </summary>
    internal static float PreciseTanh(float x)
    {
        float a = MathF.Abs(x);
        float t;
        if (a > 0.625f)
        {
            t = 1f - 2f / (MathF.Exp(2f * a) + 1f);
        }
        else
        {
            float z = a * a;
            float p = KernelMath.Fma(-5.70498872745e-3f, z, 2.06390887954e-2f);
            p = KernelMath.Fma(p, z, -5.37397155531e-2f);
            p = KernelMath.Fma(p, z, 1.33314422036e-1f);
            p = KernelMath.Fma(p, z, -3.33332819422e-1f);
            t = KernelMath.Fma(p * z, a, a);
        }
        return MathF.CopySign(t, x);
    }
}
