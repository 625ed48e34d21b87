using System.Reflection;
using System.Text.RegularExpressions;
using Engine.Kernels;
using Engine.Kernels.Ilgpu;
using static Engine.Tests.Kernels.ElementwiseTrees;

namespace Engine.Tests.Kernels;

/// <summary>
/// What the ILGPU kernels become on a GPU, checked without one: every kernel is compiled to PTX for sm_90 and to
/// OpenCL C for a device without fp64, with the kernel set's own compiler settings (<see cref="IlgpuContextSetup"/>),
/// and the generated code is read for what would break the documented precision on the hardware.
/// </summary>
public sealed class IlgpuCodegenTests : IClassFixture<IlgpuCodegenTests.Compiler>
{
    private readonly Compiler compiler;

    /// <summary>Creates the test class around the shared compiler.</summary>
    public IlgpuCodegenTests(Compiler compiler) => this.compiler = compiler;

    /// <summary>One code generator (context + backends) for the whole class: creating one costs about a second.</summary>
    public sealed class Compiler : IDisposable
    {
        private readonly Dictionary<string, string> ptx = new();

        /// <summary>The code generator.</summary>
        internal IlgpuCodegen Codegen { get; } = new();

        /// <summary>The PTX of a kernel (a name from <see cref="Kernels"/>), compiled once.</summary>
        public string Ptx(string kernel)
        {
            lock (ptx)
            {
                if (!ptx.TryGetValue(kernel, out var code)) ptx[kernel] = code = Codegen.Ptx(KernelMethod(kernel, openCL: false));
                return code;
            }
        }

        /// <inheritdoc />
        public void Dispose() => Codegen.Dispose();
    }

    /// <summary>Kernels whose results are promised bitwise equal on every kernel set.</summary>
    private static readonly string[] BitwiseKernels = ["RandomUniform", "RandomNormal", "Perturb", "CombineGradients"];

    /// <summary>
    /// Approximate PTX instructions no kernel may contain: the precision the kernel tests promise would not hold.
    /// (<c>ex2.approx.f32</c> and <c>lg2.approx.f32</c> are allowed outside the bitwise kernels: see
    /// <see cref="IlgpuContextSetup"/>.)
    /// </summary>
    private static readonly Regex Forbidden = new(
        @"\b(tanh|sin|cos|rsqrt|rcp|sqrt|div)\.(approx|full)\.[a-z0-9.]+|\.ftz\b", RegexOptions.Compiled);

    private static readonly Type KernelsType = typeof(IlgpuKernelSet).Assembly.GetType("Engine.Kernels.Ilgpu.IlgpuKernels")!;

    /// <summary>
    /// Every explicitly grouped kernel of the ILGPU kernel set (static, void, taking array views), by name; generic
    /// kernels once per value of their compile-time switches (the GEMM with 16 x 16 groups), e.g.
    /// "GemmTiled&lt;GemmGroup16,SwitchOn,SwitchOff,SwitchOn&gt;". Compile-time switches that name a backend feature
    /// (warp shuffles) are set as each backend's kernel set sets them.
    /// </summary>
    public static IEnumerable<object[]> Kernels() =>
        KernelsType.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Where(m => m.ReturnType == typeof(void) && m.GetParameters().Any(p => HoldsView(p.ParameterType, depth: 3)))
            .SelectMany(m => m.IsGenericMethodDefinition ? TypeArgumentNames(m) : [m.Name])
            .Distinct().Order().Select(n => new object[] { n });

    /// <summary>True for an ArrayView, or a struct holding one in its fields (a table of segments passed by value).</summary>
    private static bool HoldsView(Type type, int depth) =>
        type.Name.StartsWith("ArrayView", StringComparison.Ordinal)
        || (depth > 0 && type.IsValueType && !type.IsPrimitive && !type.IsEnum
            && type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Any(f => HoldsView(f.FieldType, depth - 1)));

    /// <summary>The bitwise kernels.</summary>
    public static IEnumerable<object[]> Bitwise() => BitwiseKernels.Select(n => new object[] { n });

    /// <summary>The names of a generic kernel's instantiations: GEMM groups of 16, every switch both ways.</summary>
    private static IEnumerable<string> TypeArgumentNames(MethodInfo m)
    {
        IEnumerable<string> prefixes = [""];
        foreach (var arg in m.GetGenericArguments())
        {
            var constraints = arg.GetGenericParameterConstraints();
            var choices = constraints.Any(c => c.Name == "IGemmGroup") ? ["GemmGroup16"]
                : arg.Name == "TShuffle" ? ["Backend"]
                // The op-generic kernels with one representative op each (the op table compiles every op struct).
                : constraints.Any(c => c.Name == "IUnaryOp") ? ["TanhOp"]
                : constraints.Any(c => c.Name == "IBinaryOp") ? ["MulOp"]
                : constraints.Any(c => c.Name == "ITreeOp") ? ["Input0"]
                // The reductions read from a view, or compute a tree (one representative tree: its leaf).
                : constraints.Any(c => c.Name == "IReduceSource") ? ["ViewSource", TreeSourceName]
                // The GEMM stores: plain, and an epilogue with an activation (GELU).
                : constraints.Any(c => c.Name == "IGemmStoreStep") ? ["PlainStore", EpilogueStoreName]
                // The paired reductions likewise: two views (a split's partials), or two trees (their leaves).
                : constraints.Any(c => c.Name == "IReducePairSource") ? ["PairViewSource", TreePairSourceName]
                : new[] { "SwitchOff", "SwitchOn" };
            prefixes = prefixes.SelectMany(p => choices.Select(c => p.Length == 0 ? c : p + "," + c)).ToList();
        }
        return prefixes.Select(p => $"{m.Name}<{p}>");
    }

    /// <summary>The method a name from <see cref="Kernels"/> stands for ("Backend": shuffles on PTX, off on OpenCL).</summary>
    private static MethodInfo KernelMethod(string name, bool openCL)
    {
        int lt = name.IndexOf('<');
        if (lt < 0) return KernelsType.GetMethod(name, BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!;
        var definition = KernelsType.GetMethod(name[..lt], BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!;
        var args = name[(lt + 1)..^1].Split(',')
            .Select(a => a == "Backend" ? (openCL ? "SwitchOff" : "SwitchOn") : a)
            .Select(a => a == TreeSourceName ? TreeSource : a == EpilogueStoreName ? EpilogueStore
                : a == TreePairSourceName ? TreePairSource
                : KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu." + a) ?? KernelsType.Assembly.GetType("Engine.Kernels.Elementwise." + a)!).ToArray();
        return definition.MakeGenericMethod(args);
    }

    /// <summary>The name a reduction's tree source goes by in kernel names: TreeSource&lt;Input0&gt;.</summary>
    private const string TreeSourceName = "TreeSource-Input0";

    private static Type TreeSource => KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.TreeSource`1")!
        .MakeGenericType(KernelsType.Assembly.GetType("Engine.Kernels.Elementwise.Input0")!);

    /// <summary>The name a GEMM epilogue store goes by in kernel names: EpilogueStore&lt;GeluErfOp&gt;.</summary>
    private const string EpilogueStoreName = "EpilogueStore-GeluErfOp";

    private static Type EpilogueStore => KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.EpilogueStore`1")!
        .MakeGenericType(KernelsType.Assembly.GetType("Engine.Kernels.Elementwise.GeluErfOp")!);
    /// <summary>The name a paired reduction's tree source goes by in kernel names: TreePairSource&lt;Input0, Input1&gt;.</summary>
    private const string TreePairSourceName = "TreePairSource-Input0-Input1";

    private static Type TreePairSource => KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.TreePairSource`2")!
        .MakeGenericType(KernelsType.Assembly.GetType("Engine.Kernels.Elementwise.Input0")!, KernelsType.Assembly.GetType("Engine.Kernels.Elementwise.Input1")!);

    /// <summary>
    /// Every kernel compiles to PTX with no call left unresolved (an <c>.extern .func</c> fails at module load: ILGPU
    /// emits one for a .NET method it cannot lower, e.g. <see cref="MathF.FusedMultiplyAdd"/>) and with no
    /// approximate instruction that breaks the documented tolerances.
    /// </summary>
    [Theory, MemberData(nameof(Kernels))]
    public void Ptx_HasNoUnresolvedCallsAndNoForbiddenApproximations(string kernel)
    {
        var ptx = compiler.Ptx(kernel);
        Assert.DoesNotContain(".extern", ptx);
        var bad = Forbidden.Matches(ptx).Select(m => m.Value).Distinct().ToList();
        Assert.True(bad.Count == 0, $"{kernel}: forbidden PTX instructions {string.Join(", ", bad)}");
    }

    /// <summary>
    /// Every kernel compiles to OpenCL C for a device without fp64 (ILGPU refuses a double it would need), except the
    /// double-precision forms of kernels that have a double-float twin (X and XDoubleFloat): such a device runs the twin.
    /// </summary>
    [Theory, MemberData(nameof(Kernels))]
    public void OpenCL_CompilesWithoutFp64(string kernel)
    {
        if (KernelsType.GetMethod(kernel + "DoubleFloat", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic) != null)
        {
            Assert.Throws<ILGPU.InternalCompilerException>(() => compiler.Codegen.OpenCL(KernelMethod(kernel, openCL: true)));
            return;
        }
        var source = compiler.Codegen.OpenCL(KernelMethod(kernel, openCL: true));
        Assert.DoesNotMatch(@"\bdouble\b", source);
    }

    /// <summary>
    /// The bitwise kernels: no approximate instruction at all, no fp64, and no product feeding a sum that the
    /// driver's compiler could contract into a fused multiply-add (every such pair is an explicit <c>fma.rn</c>).
    /// </summary>
    [Theory, MemberData(nameof(Bitwise))]
    public void Ptx_BitwiseKernelsAreDeterministic(string kernel)
    {
        var ptx = compiler.Ptx(kernel);
        Assert.DoesNotMatch(@"\.approx\.", ptx);
        Assert.DoesNotMatch(@"\.f64\b", ptx);
        var pairs = Ptx.ContractiblePairs(ptx);
        Assert.True(pairs.Count == 0, $"{kernel}: contractible mul/add pairs:\n  {string.Join("\n  ", pairs)}");
        Assert.Contains("fma.rn.f32", ptx);
    }

    /// <summary>
    /// No kernel leaves a plain product feeding a sum: every float product is <c>mul.rn.f32</c>, which ptxas never
    /// contracts, so each product and sum rounds on its own as on the other kernel sets (fused multiply-adds only where
    /// a kernel calls for one).
    /// </summary>
    [Theory, MemberData(nameof(Kernels))]
    public void Ptx_NoProductIsContractible(string kernel)
    {
        var ptx = compiler.Ptx(kernel);
        var pairs = Ptx.ContractiblePairs(ptx);
        Assert.True(pairs.Count == 0, $"{kernel}: contractible mul/add pairs:\n  {string.Join("\n  ", pairs)}");
        Assert.DoesNotMatch(@"\bmul\.f32\b", ptx);
    }

    /// <summary>Trees a compiled graph fuses: the spectral weights' assembly, GELU's backward, the SPN's step, an affine map of a product.</summary>
    private static readonly Dictionary<string, ElementwiseExpression> FusedTrees = new()
    {
        ["spectral-weights"] = B(BinaryOp.Add, B(BinaryOp.Mul, X(0), X(1)), B(BinaryOp.Mul, X(2), X(3))),
        ["gelu-backward"] = GeluBackward,
        ["spn-step"] = B(BinaryOp.Sub, X(0), B(BinaryOp.Mul, U(UnaryOp.Exp, X(1)), X(2))),
        ["affine-of-product"] = A(2f, 0.5f, B(BinaryOp.Mul, X(0), B(BinaryOp.Sub, X(1), X(2)))),
    };

    /// <summary>The names of <see cref="FusedTrees"/>.</summary>
    public static IEnumerable<object[]> FusedTreeNames() => FusedTrees.Keys.Select(k => new object[] { k });

    /// <summary>
    /// A fused tree's kernels (flat, broadcasting, the reductions reading it, a reduction then the tree as its map, and
    /// the GEMMs storing through it) round
    /// each op as the separate kernels do on a GPU: no product feeds a sum in a form ptxas may contract into one fused
    /// multiply-add, so a compiled graph's fused groups keep eager's bits on CUDA as on the emulator.
    /// </summary>
    [Theory, MemberData(nameof(FusedTreeNames))]
    public void Ptx_FusedTreesRoundEveryOp(string name)
    {
        var chains = typeof(IlgpuKernelSet).Assembly.GetType("Engine.Kernels.ElementwiseChains")!;
        var tree = chains.GetMethod("Tree", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!.Invoke(null, [FusedTrees[name]])!.GetType();
        var source = KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.TreeSource`1")!.MakeGenericType(tree);
        var on = KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.SwitchOn")!;
        MethodInfo Kernel(string kernel, params Type[] args) =>
            KernelsType.GetMethod(kernel, BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!.MakeGenericMethod(args);
        foreach (var kernel in new[]
                 {
                     Kernel("Tree", tree), Kernel("BroadcastTree", tree), Kernel("ReduceThread", source), Kernel("ReduceGroup", on, source),
                     Kernel("ReduceThenMapThread", source, tree), Kernel("ReduceThenMapGroup", on, source, tree),
                 })
        {
            var ptx = compiler.Codegen.Ptx(kernel);
            var pairs = Ptx.ContractiblePairs(ptx);
            Assert.True(pairs.Count == 0, $"{name} {kernel.Name}: contractible mul/add pairs:\n  {string.Join("\n  ", pairs)}");
            Assert.Contains("mul.rn.f32", ptx);
            Assert.DoesNotContain(".local", ptx);
        }
        // As the last step of a product's store: the tiled kernel (16 x 16 groups, vector form) and the mapped kernel.
        var store = KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.TreeStore`2")!
            .MakeGenericType(KernelsType.Assembly.GetType("Engine.Kernels.Elementwise.IdentityOp")!, tree);
        var (group, off) = (KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.GemmGroup16")!, KernelsType.Assembly.GetType("Engine.Kernels.Ilgpu.SwitchOff")!);
        foreach (var kernel in new[] { Kernel("GemmTiled", group, off, off, on, store), Kernel("Gemm", store) })
        {
            var pairs = Ptx.ContractiblePairs(compiler.Codegen.Ptx(kernel));
            Assert.True(pairs.Count == 0, $"{name} {kernel.Name} with the tree step: contractible mul/add pairs:\n  {string.Join("\n  ", pairs)}");
        }
    }

    /// <summary>
    /// The tiled GEMM as a GPU runs it (16 x 16 groups): per slab 8 unrolled k steps, each four <c>ld.shared.v4</c> and
    /// 64 fused multiply-adds (512 per slab; the beta epilogue adds 64); no local memory; every global access in the
    /// global address space, 16-byte wide in the vector form; two barriers (after the first slab, then one per slab).
    /// </summary>
    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(true, true, false)]
    [InlineData(false, false, true)]
    [InlineData(true, true, true)]
    public void Ptx_GemmInnerLoop(bool transA, bool transB, bool vector)
    {
        var kernel = IlgpuKernelSet.GemmTiledKernel(16, transA, transB, vector).Method;
        var facts = IlgpuCodegen.Facts(compiler.Codegen.Ptx(kernel));
        Assert.Equal(512 + 64, facts.Fma);
        Assert.Equal(32, facts.SharedLoadV4);
        Assert.Equal(32, facts.SharedLoads);
        Assert.Equal(0, facts.LocalDeclarations);
        Assert.Equal(0, facts.GenericAccesses);
        Assert.Equal(2, facts.Barriers);
        if (vector)
        {
            Assert.Equal(facts.GlobalLoads, facts.GlobalLoadV4);
            Assert.Equal(16, facts.GlobalStoreV4);
        }
        else
        {
            Assert.Equal(0, facts.GlobalLoadV4);
        }
    }

    /// <summary>The mapped GEMM accumulates its 4 x 4 block with 16 explicit fused multiply-adds per k step.</summary>
    [Fact]
    public void Ptx_MappedGemmAccumulatesWithFma()
    {
        var facts = IlgpuCodegen.Facts(compiler.Ptx("Gemm<PlainStore>"));
        Assert.Equal(16, facts.Fma);
    }

    /// <summary>The contraction check itself finds a plain multiply feeding an add, also through a move.</summary>
    [Fact]
    public void ContractiblePairs_FindsMulFeedingAdd()
    {
        const string code = """
            mul.f32 %f3, %f1, %f2;
            mov.f32 %f4, %f3;
            add.f32 %f5, %f4, %f0;
            mul.rn.f32 %f6, %f1, %f2;
            add.f32 %f7, %f6, %f0;
            fma.rn.f32 %f8, %f1, %f2, %f0;
            sub.f32 %f9, %f8, %f3;
            """;
        var pairs = Ptx.ContractiblePairs(code);
        Assert.Equal(2, pairs.Count);
        Assert.Contains(pairs, p => p.Contains("%f5"));
        Assert.Contains(pairs, p => p.Contains("%f9"));
    }

    /// <summary>The redirected tanh with the host exponential: within 1.5e-7 relative of tanh in double.</summary>
    [Fact]
    public void PreciseTanh_IsAccurate()
    {
        double worst = 0;
        for (int i = -200_000; i <= 200_000; i++)
        {
            float x = i * 5e-5f;
            double exact = Math.Tanh(x);
            double err = Math.Abs(IlgpuContextSetup.PreciseTanh(x) - exact) / Math.Max(Math.Abs(exact), 1e-30);
            worst = Math.Max(worst, err);
        }
        Assert.True(worst < 1.5e-7, $"worst relative error {worst:G3}");
        Assert.Equal(1f, IlgpuContextSetup.PreciseTanh(float.PositiveInfinity));
        Assert.Equal(-1f, IlgpuContextSetup.PreciseTanh(-100f));
        Assert.True(float.IsNaN(IlgpuContextSetup.PreciseTanh(float.NaN)));
        Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(IlgpuContextSetup.PreciseTanh(-0f)));
    }

    /// <summary>The tanh kernels keep no <c>tanh.approx</c> and gain the redirected implementation.</summary>
    [Fact]
    public void Ptx_TanhIsRedirected()
    {
        var ptx = compiler.Ptx("Unary<TanhOp>");
        Assert.DoesNotContain("tanh.approx", ptx);
        Assert.Contains("copysign.f32", ptx);
    }
}

/// <summary>Reading PTX text.</summary>
public static class Ptx
{
    private static readonly Regex Instruction = new(@"^\s*(?:@%p\d+\s+)?([a-z][a-z0-9.]*)\s+([^;]*);", RegexOptions.Multiline | RegexOptions.Compiled);

    /// <summary>
    /// Plain <c>add.f32</c>/<c>sub.f32</c> instructions that read the result of a plain <c>mul.f32</c> (directly or
    /// through <c>mov</c>): pairs ptxas may fuse. Instructions with a rounding modifier (<c>mul.rn</c>) are never fused.
    /// </summary>
    public static List<string> ContractiblePairs(string ptx)
    {
        var products = new HashSet<string>();
        var pairs = new List<string>();
        foreach (Match m in Instruction.Matches(ptx))
        {
            string op = m.Groups[1].Value;
            var operands = m.Groups[2].Value.Split(',', StringSplitOptions.TrimEntries);
            if (operands.Length == 0) continue;
            string dst = operands[0];
            switch (op)
            {
                case "mul.f32":
                    products.Add(dst);
                    break;
                case "mov.f32" when operands.Length == 2:
                    if (products.Contains(operands[1])) products.Add(dst);
                    break;
                case "add.f32" or "sub.f32":
                    if (operands.Skip(1).Any(products.Contains)) pairs.Add(m.Value.Trim());
                    break;
            }
        }
        return pairs;
    }
}

