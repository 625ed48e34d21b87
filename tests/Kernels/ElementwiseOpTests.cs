using System.Reflection;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Kernels.Elementwise;
using Engine.Kernels.Ilgpu;
using Engine.Kernels.Vectors;
using Engine.Tests.Autodiff;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using KernelSpecialization = ILGPU.Runtime.KernelSpecialization;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Engine.Tests.Kernels;

/// <summary>
/// Every op code is defined everywhere: an op struct in the registry (so both kernel sets run it), a row of
/// <see cref="OpTable"/> (host reference, inputs, tolerance) and a gradcheck row. Adding an enum value without the
/// rest fails here.
/// </summary>
[Collection("ilgpu")]
public sealed class OpCoverageTests
{
    /// <summary>Every unary op code.</summary>
    public static TheoryData<UnaryOp> UnaryOps() => new(Enum.GetValues<UnaryOp>());

    /// <summary>Every binary op code.</summary>
    public static TheoryData<BinaryOp> BinaryOps() => new(Enum.GetValues<BinaryOp>());

    private static readonly DeviceKind[] Sets = [DeviceKind.Cpu, DeviceKind.IlgpuCpu];

    /// <summary>A unary op has a struct, a table row, a gradcheck row, and runs on both kernel sets.</summary>
    [Theory, MemberData(nameof(UnaryOps))]
    public void UnaryOp_IsDefinedEverywhere(UnaryOp op)
    {
        var row = OpTable.Unary.SingleOrDefault(r => r.Op == op);
        Assert.True(row != null, $"{op}: no row in OpTable (host reference, inputs, tolerance, gradcheck)");
        Assert.True(OpSpecs.ByName.ContainsKey(row.Name), $"{op}: no gradcheck row named '{row.Name}'");
        var type = ElementwiseOps.Visit<StructOf, Type>(op, default);
        Assert.True(type.IsValueType && typeof(IUnaryOp).IsAssignableFrom(type), $"{op}: registry gives {type}");
        var x = row.Inputs(new Random(1), 19);
        foreach (var kind in Sets)
        {
            var k = Device.Get(kind).Kernels;
            using var xb = Upload(k, x);
            using var yb = k.Allocate(x.Length);
            k.Unary(op, xb, yb);
            KernelAssert.Close(HostReference.Unary(op, x), yb.ToArray(), row.Tolerance, $"{op} on {k.Name}");
        }
    }

    /// <summary>A binary op has a struct, a table row, a gradcheck row per broadcasting pattern, and runs on both kernel sets.</summary>
    [Theory, MemberData(nameof(BinaryOps))]
    public void BinaryOp_IsDefinedEverywhere(BinaryOp op)
    {
        var row = OpTable.Binary.SingleOrDefault(r => r.Op == op);
        Assert.True(row != null, $"{op}: no row in OpTable (host reference, inputs, tolerance, gradcheck)");
        Assert.True(OpSpecs.All.Any(s => s.Name.StartsWith(row.Name + " ", StringComparison.Ordinal)), $"{op}: no gradcheck row for '{row.Name}'");
        var type = ElementwiseOps.Visit<StructOf, Type>(op, default);
        Assert.True(type.IsValueType && typeof(IBinaryOp).IsAssignableFrom(type), $"{op}: registry gives {type}");
        var rng = new Random(2);
        var a = row.Inputs(rng, 15, false);
        var b = row.Inputs(rng, 5, true);
        var expected = HostReference.Binary(op, a, [3, 5], b, [5], out var yShape);
        foreach (var kind in Sets)
        {
            var k = Device.Get(kind).Kernels;
            using var ab = Upload(k, a);
            using var bb = Upload(k, b);
            using var yb = k.Allocate(expected.Length);
            k.Binary(op, ab, [3, 5], bb, [5], yb, yShape);
            KernelAssert.Close(expected, yb.ToArray(), row.Tolerance, $"{op} on {k.Name}");
        }
    }

    private static DeviceBuffer<float> Upload(IKernelSet k, float[] data)
    {
        var b = k.Allocate(data.Length);
        b.CopyFromHost(data);
        return b;
    }

    private readonly struct StructOf : IUnaryOpVisitor<Type>, IBinaryOpVisitor<Type>
    {
        Type IUnaryOpVisitor<Type>.Visit<TOp>(TOp op) => typeof(TOp);
        Type IBinaryOpVisitor<Type>.Visit<TOp>(TOp op) => typeof(TOp);
    }
}

/// <summary>
/// Composed op structs run as one kernel on both kernel sets and give the bits of the ops applied in turn; a
/// composition built at run time with MakeGenericType (as a fusing compiler would) runs too.
/// </summary>
[Collection("ilgpu")]
public sealed class ComposedOpTests
{
    /// <summary>Both kernel sets.</summary>
    public static TheoryData<DeviceKind> Sets() => new(DeviceKind.Cpu, DeviceKind.IlgpuCpu);

    /// <summary>tanh(x²) as one <c>Compose&lt;TanhOp, SquareOp&gt;</c> kernel equals square, then tanh.</summary>
    [Theory, MemberData(nameof(Sets))]
    public void ComposedUnary_MatchesOpsInTurn(DeviceKind kind)
    {
        var k = Device.Get(kind).Kernels;
        var x = Inputs.Uniform(new Random(3), 70, -3, 3);
        using var xb = Upload(k, x);
        using var fused = k.Allocate(x.Length);
        RunUnary(k, new Compose<TanhOp, SquareOp>(), xb, fused);
        using var t = k.Allocate(x.Length);
        using var inTurn = k.Allocate(x.Length);
        k.Unary(UnaryOp.Square, xb, t);
        k.Unary(UnaryOp.Tanh, t, inTurn);
        KernelAssert.Bitwise(inTurn.ToArray(), fused.ToArray(), $"tanh(square(x)) on {k.Name}");
        if (k is IlgpuKernelSet g) Assert.Contains(typeof(Compose<TanhOp, SquareOp>), g.SpecialisedOps("Unary"));
    }

    /// <summary>exp(a · b) with broadcasting as one <c>Then&lt;MulOp, ExpOp&gt;</c> kernel equals mul, then exp.</summary>
    [Theory, MemberData(nameof(Sets))]
    public void ComposedBinary_MatchesOpsInTurn(DeviceKind kind)
    {
        var k = Device.Get(kind).Kernels;
        var rng = new Random(4);
        var a = Inputs.Uniform(rng, 3, -2, 2);
        var b = Inputs.Uniform(rng, 37, -2, 2);
        int[] aShape = [3, 1], bShape = [1, 37], yShape = [3, 37];
        using var ab = Upload(k, a);
        using var bb = Upload(k, b);
        using var fused = k.Allocate(3 * 37);
        switch (k)
        {
            case CpuKernelSet c: c.Binary(new Then<MulOp, ExpOp>(), ab, aShape, bb, bShape, fused, yShape); break;
            case IlgpuKernelSet g: g.Binary(new Then<MulOp, ExpOp>(), ab, aShape, bb, bShape, fused, yShape); break;
        }
        using var t = k.Allocate(3 * 37);
        using var inTurn = k.Allocate(3 * 37);
        k.Binary(BinaryOp.Mul, ab, aShape, bb, bShape, t, yShape);
        k.Unary(UnaryOp.Exp, t, inTurn);
        KernelAssert.Bitwise(inTurn.ToArray(), fused.ToArray(), $"exp(a * b) on {k.Name}");
    }

    /// <summary>Compose&lt;ExpOp, NegOp&gt; built with MakeGenericType and run through the generic kernel entry point.</summary>
    [Theory, MemberData(nameof(Sets))]
    public void RuntimeComposition_Runs(DeviceKind kind)
    {
        var k = Device.Get(kind).Kernels;
        var x = Inputs.Uniform(new Random(5), 40, -3, 3);
        using var xb = Upload(k, x);
        using var fused = k.Allocate(x.Length);
        var type = typeof(Compose<,>).MakeGenericType(typeof(ExpOp), typeof(NegOp));
        var entry = typeof(ComposedOpTests).GetMethod(nameof(RunUnary), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(type);
        entry.Invoke(null, [k, Activator.CreateInstance(type), xb, fused]);
        using var inTurn = k.Allocate(x.Length);
        k.Unary(UnaryOp.Neg, xb, inTurn);
        k.Unary(UnaryOp.Exp, inTurn, inTurn);
        KernelAssert.Bitwise(inTurn.ToArray(), fused.ToArray(), $"exp(-x) built at run time on {k.Name}");
    }

    private static void RunUnary<TOp>(IKernelSet k, TOp op, DeviceBuffer<float> x, DeviceBuffer<float> y) where TOp : unmanaged, IUnaryOp
    {
        switch (k)
        {
            case CpuKernelSet c: c.Unary(op, x, y); break;
            case IlgpuKernelSet g: g.Unary(op, x, y); break;
            default: throw new ArgumentException($"no generic entry point on {k.Name}");
        }
    }

    private static DeviceBuffer<float> Upload(IKernelSet k, float[] data)
    {
        var b = k.Allocate(data.Length);
        b.CopyFromHost(data);
        return b;
    }
}

/// <summary>
/// The vector form of every op at every width agrees with its one-lane form bit for bit (NaN with NaN), on special
/// values and on random ones: a kernel's scalar tail computes what a vector lane would.
/// </summary>
public sealed class VectorLaneTests
{
    /// <summary>
    /// The reduced-instruction-set runs of .ci/run (this class is among their tests) really run reduced: .NET 10 reads
    /// DOTNET_EnableAVX512, not the older DOTNET_EnableAVX512F, and a switch the runtime ignores left those runs at full
    /// width with no sign of it.
    /// </summary>
    [Fact]
    public void TheRunsInstructionSetSwitchesAreInForce()
    {
        static bool Off(string name) => Environment.GetEnvironmentVariable(name) == "0";
        if (Off("DOTNET_EnableAVX512F") || Off("DOTNET_EnableAVX512"))
        {
            Assert.False(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, "AVX-512 is switched off but still supported");
            Assert.True(Simd.Default < SimdWidth.V512, $"AVX-512 is switched off but the kernels' width is {Simd.Default}");
        }
        if (Off("DOTNET_EnableHWIntrinsic"))
        {
            Assert.False(System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated, "intrinsics are switched off but still accelerated");
            Assert.Equal(SimdWidth.Scalar, Simd.Default);
        }
    }

    private static readonly float[] Specials =
    [
        float.NaN, 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon, 1e-40f, -1e-40f,
        1e-30f, 1f, -1f, 0.5f, -0.5f, 0.625f, -0.625f, 0.62499994f, 88.7f, 89f, 89.5f, -103.9f, -104f, -105f, 1e30f, -1e30f,
        float.MaxValue, float.MinValue, 3f, -2f, 2.5f,
        // erf's interval boundaries (|x| = j/2), its clamp (the float below 4), and GELU inputs whose x/√2 lands next to them.
        0.99999994f, -0.99999994f, 1.0000001f, 3.9999998f, 4f, -4f, 4.0000005f, 1.4142135f, -1.4142137f, 5.656854f,
        0.49999997f, 1.5f, -1.5f, 1.5000001f, 2.4999998f, 3.5f, -3.5f, 0.70710677f, 2.1213202f, -2.828427f, 3.535534f,
        4.2426405f, 4.9497476f,
        // NaNs with payloads: erf's lookup index then has bits above the low three set (only a NaN lane gives that),
        // which the 16-lane lookup must mask away, as every width does.
        BitConverter.Int32BitsToSingle(0x7FC0000F), BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00008)),
        BitConverter.Int32BitsToSingle(0x7FFFFFFF),
    ];

    /// <summary>Special values, then uniform ones in [-20, 20], then log-spaced magnitudes of both signs: a multiple of 16.</summary>
    private static float[] Values()
    {
        var rng = new Random(9);
        var v = new List<float>(Specials);
        while (v.Count < 96) v.Add((float)(rng.NextDouble() * 40 - 20));
        while (v.Count < 160) v.Add((float)((rng.Next(2) * 2 - 1) * Math.Pow(10, rng.NextDouble() * 12 - 6)));
        return [.. v];
    }

    /// <summary>Every unary op code.</summary>
    public static TheoryData<UnaryOp> UnaryOps() => new(Enum.GetValues<UnaryOp>());

    /// <summary>Every binary op code.</summary>
    public static TheoryData<BinaryOp> BinaryOps() => new(Enum.GetValues<BinaryOp>());

    /// <summary>Unary ops: each lane at 512, 256 and 128 bits equals the one-lane form.</summary>
    [Theory, MemberData(nameof(UnaryOps))]
    public void Unary_LanesMatchScalarTail(UnaryOp op) => ElementwiseOps.Visit<UnaryLanes, bool>(op, new(Values()));

    /// <summary>Binary ops: each lane equals the one-lane form, with every value against a shifted copy.</summary>
    [Theory, MemberData(nameof(BinaryOps))]
    public void Binary_LanesMatchScalarTail(BinaryOp op)
    {
        var a = Values();
        var b = a.Skip(7).Concat(a.Take(7)).ToArray();
        ElementwiseOps.Visit<BinaryLanes, bool>(op, new(a, b));
    }

    /// <summary>The long math functions and the vector-only helpers used by kernels directly.</summary>
    [Fact]
    public void Math_LanesMatchScalarTail()
    {
        var x = Values();
        CheckUnary(new Compose<ExpOp, NegOp>(), x, "exp(-x)");
        CheckUnary(new AffineOp(-1.5f, 0.25f), x, "affine");
        CheckBinary(new AxpyOp(0.37f), x, x.Reverse().ToArray(), "axpy");
        CheckBinary(new Then<SubOp, ExpOp>(), x, x.Reverse().ToArray(), "exp(a - b)");
    }

    private readonly struct UnaryLanes(float[] x) : IUnaryOpVisitor<bool>
    {
        bool IUnaryOpVisitor<bool>.Visit<TOp>(TOp op)
        {
            CheckUnary(op, x, typeof(TOp).Name);
            return true;
        }
    }

    private readonly struct BinaryLanes(float[] a, float[] b) : IBinaryOpVisitor<bool>
    {
        bool IBinaryOpVisitor<bool>.Visit<TOp>(TOp op)
        {
            CheckBinary(op, a, b, typeof(TOp).Name);
            return true;
        }
    }

    private static unsafe void CheckUnary<TOp>(TOp op, float[] x, string what) where TOp : unmanaged, IUnaryOp
    {
        var tail = x.Select(v => (float)op.Vector<Vec1>(v)).ToArray();
        Same(tail, Lanes<Vec512>(x, v => op.Vector(v)), what + " at 512 bits");
        Same(tail, Lanes<Vec256>(x, v => op.Vector(v)), what + " at 256 bits");
        Same(tail, Lanes<Vec128>(x, v => op.Vector(v)), what + " at 128 bits");
    }

    private static void CheckBinary<TOp>(TOp op, float[] a, float[] b, string what) where TOp : unmanaged, IBinaryOp
    {
        var tail = a.Select((v, i) => (float)op.Vector<Vec1>(v, b[i])).ToArray();
        Same(tail, Lanes2<Vec512>(a, b, (u, v) => op.Vector(u, v)), what + " at 512 bits");
        Same(tail, Lanes2<Vec256>(a, b, (u, v) => op.Vector(u, v)), what + " at 256 bits");
        Same(tail, Lanes2<Vec128>(a, b, (u, v) => op.Vector(u, v)), what + " at 128 bits");
    }

    private static unsafe float[] Lanes<TV>(float[] x, Func<TV, TV> f) where TV : unmanaged, IFloatVector<TV>
    {
        var y = new float[x.Length];
        fixed (float* px = x, py = y)
            for (int i = 0; i < x.Length; i += TV.Count) TV.Store(f(TV.Load(px + i)), py + i);
        return y;
    }

    private static unsafe float[] Lanes2<TV>(float[] a, float[] b, Func<TV, TV, TV> f) where TV : unmanaged, IFloatVector<TV>
    {
        var y = new float[a.Length];
        fixed (float* pa = a, pb = b, py = y)
            for (int i = 0; i < a.Length; i += TV.Count) TV.Store(f(TV.Load(pa + i), TV.Load(pb + i)), py + i);
        return y;
    }

    private static void Same(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(expected[i]) && float.IsNaN(actual[i])) continue;
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: lane {i} gives {actual[i]:R}, the scalar tail {expected[i]:R}");
        }
    }
}

/// <summary>
/// Every op struct's scalar form compiles inside ILGPU's generic kernels for the GPU backends (PTX and OpenCL C),
/// without a GPU: no unsupported construct and no call left unresolved (an unmapped .NET method becomes a PTX
/// <c>.extern</c> that fails when the module loads).
/// </summary>
public sealed class IlgpuBackendCompileTests
{
    /// <summary>The generic kernel specialised for every registry op and a composed op compiles for both backends.</summary>
    [Fact]
    public void ElementwiseKernels_CompileForGpuBackends()
    {
        // The kernel set's own compiler settings (its intrinsics: KernelMath.Fma, which the affine map uses).
        using var context = Context.Create(b => IlgpuContextSetup.Configure(b.Cuda().OpenCL()));
        Backend[] backends =
        [
            new PTXBackend(context, CudaArchitecture.SM_70, CudaInstructionSet.ISA_70, nvvmAPI: null!),
            new CLBackend(context, new CLCapabilityContext(true, true, true, true, true), CLDeviceVendor.Nvidia, CLCVersion.CL20),
        ];
        var kernels = typeof(IlgpuKernelSet).Assembly.GetType("Engine.Kernels.Ilgpu.IlgpuKernels", throwOnError: true)!;
        var unary = Enum.GetValues<UnaryOp>().Select(op => ElementwiseOps.Visit<TypeOf, Type>(op, default))
            .Append(typeof(Compose<TanhOp, SquareOp>)).Append(typeof(AffineOp)).Append(typeof(Compose<AffineOp, ErfOp>));
        var binary = Enum.GetValues<BinaryOp>().Select(op => ElementwiseOps.Visit<TypeOf, Type>(op, default))
            .Append(typeof(Then<MulOp, ExpOp>)).Append(typeof(AxpyOp)).Append(typeof(OnOperands<MulOp, IdentityOp, StepOp>));
        var methods = unary.Select(t => Generic("Unary", t)).Concat(binary.Select(t => Generic("Binary", t)));
        foreach (var method in methods)
        foreach (var backend in backends)
        {
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var compiled = backend.Compile(entry, new KernelSpecialization());
            if (compiled is PTXCompiledKernel ptx)
                Assert.False(ptx.PTXAssembly.Contains(".extern", StringComparison.Ordinal),
                    $"{method.Name}<{method.GetGenericArguments()[0].Name}>: PTX calls an unresolved function:\n{ptx.PTXAssembly}");
        }

        MethodInfo Generic(string name, Type op) =>
            kernels.GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(op);
    }

    private readonly struct TypeOf : IUnaryOpVisitor<Type>, IBinaryOpVisitor<Type>
    {
        Type IUnaryOpVisitor<Type>.Visit<TOp>(TOp op) => typeof(TOp);
        Type IBinaryOpVisitor<Type>.Visit<TOp>(TOp op) => typeof(TOp);
    }
}
