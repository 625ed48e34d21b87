using Engine.Kernels;
using static Engine.Kernels.ElementwiseExpression;
using static Engine.Tests.Kernels.GemmStoreEpilogueTests;

namespace Engine.Tests.Kernels;

/// <summary>
/// The tree step of a <see cref="GemmEpilogue"/> (<see cref="GemmTreeStep"/>) on a set that runs it: the product stored
/// with a tree over its value and other buffers equals, bit for bit, the product (with its bias and activation)
/// followed by the separate fused tree call, with C and the tree's inputs at an offset and with gaps between batch
/// items (which must stay untouched), the value at any input of the tree, and scalar inputs.
/// </summary>
public abstract class GemmTreeEpilogueTests
{
    /// <summary>The set under test.</summary>
    protected abstract IKernelSet K { get; }

    /// <summary>d/dx GELU(x) times x0: the backward tree of the exact GELU, over the product's value (x0) and the pre-activation (x1).</summary>
    internal static readonly ElementwiseExpression GeluBackward = new Binary(BinaryOp.Mul, new Input(0),
        new Binary(BinaryOp.Add,
            new Unary(UnaryStep.Affine(0.5f, 0.5f), new Unary(UnaryOp.Erf, new Unary(UnaryStep.Affine(0.70710677f, 0f), new Input(1)))),
            new Binary(BinaryOp.Mul, new Input(1),
                new Unary(UnaryOp.Exp, new Unary(UnaryStep.Affine(-0.5f, -0.9189385f), new Unary(UnaryOp.Square, new Input(1)))))));

    // The tree, the input reading the product, and which other inputs hold one element.
    protected static readonly (ElementwiseExpression Tree, int Value, bool[] Scalar)[] Trees =
    [
        (GeluBackward, 0, [false, false]),
        (new Binary(BinaryOp.Mul, new Input(0), new Binary(BinaryOp.Sub, new Input(1), new Input(2))), 1, [true, false, false]),
        (new Binary(BinaryOp.Mul, new Input(1), new Unary(UnaryOp.Step, new Input(0))), 1, [false, false]),
        (new Binary(BinaryOp.Add, new Binary(BinaryOp.Mul, new Input(3), new Input(2)), new Binary(BinaryOp.Div, new Input(0), new Input(1))), 2,
            [false, true, false, false]),
    ];

    /// <summary>
    /// A product the tree step runs on: batch, m, n, k, the stored layouts, C's offset, the gap between batch items,
    /// whether a bias and an activation come before the tree, and whether A is read through an index map.
    /// </summary>
    protected readonly record struct Shape(int Batch, int M, int N, int K, bool TransA, bool TransB, int Offset, int Gap, bool Before, bool Mapped = false);

    /// <summary>Every (shape, tree) pair of <paramref name="shapes"/> and <see cref="Trees"/>.</summary>
    protected static TheoryData<int, int> CasesOf(Shape[] shapes)
    {
        var data = new TheoryData<int, int>();
        for (int s = 0; s < shapes.Length; s++)
            for (int t = 0; t < Trees.Length; t++)
                data.Add(s, t);
        return data;
    }

    /// <summary>The product of <paramref name="shape"/> with tree <paramref name="treeIndex"/> against the separate calls.</summary>
    protected void TreeStepHasTheBitsOfTheSeparateCalls(Shape shape, int seed, int treeIndex)
    {
        var (batch, m, n, k, transA, transB, offset, gap, before, mapped) = shape;
        var (tree, value, scalar) = Trees[treeIndex];
        var rng = new Random(seed * 10 + treeIndex);
        var size = new GemmSize(batch, m, n, k);
        long matrix = (long)m * n, total = batch * matrix, stride = matrix + gap;
        int length = (int)(offset + (batch - 1) * stride + matrix + 3);
        using var ab = Upload(Values(rng, (long)batch * m * k));
        using var bb = Upload(Values(rng, (long)batch * k * n));
        // A mapped A reads each matrix reversed.
        using var map = mapped ? DeviceData.Upload(K, Enumerable.Range(0, m * k).Reverse().ToArray()) : null;
        var opA = new GemmOperand(ab, transA, (long)m * k) { Index = map, IndexLength = mapped ? m * k : 0 };
        var opB = new GemmOperand(bb, transB, (long)k * n);
        using var bias = before ? Upload(Values(rng, n)) : null;
        UnaryStep[]? activation = before ? [UnaryOp.Tanh] : null;

        // The tree's other inputs: laid out as C (with the same offset and gaps) or one element.
        var laidOut = new DeviceBuffer<float>?[tree.Arity];
        var packed = new DeviceBuffer<float>[tree.Arity];
        for (int i = 0; i < tree.Arity; i++)
        {
            if (i == value) continue;
            var data = scalar[i] ? Values(rng, 1) : Values(rng, length);
            laidOut[i] = Upload(data);
            packed[i] = Upload(scalar[i] ? data : Gather(data, batch, matrix, offset, stride));
        }

        // The eager calls on contiguous buffers.
        using var z = Upload(new float[total]);
        K.Gemm(size, opA, opB, new GemmOutput(z, matrix) { Epilogue = new GemmEpilogue(bias, activation) });
        packed[value] = z;
        using var expected = Upload(new float[total]);
        ((IFusedElementwiseKernels)K).ElementwiseTree(tree, packed, expected);

        // The product with the tree step.
        using var c = Upload(Nans(length));
        var step = new GemmTreeStep(tree, value, laidOut);
        K.Gemm(size, opA, opB, new GemmOutput(c, stride) { Offset = offset, Epilogue = new GemmEpilogue(bias, activation) { Tree = step } });

        Same(expected.ToArray(), c.ToArray(), batch, matrix, offset, stride, $"{size} tree {tree} (value x{value}) offset {offset} gap {gap}");
        for (int i = 0; i < tree.Arity; i++)
        {
            laidOut[i]?.Dispose();
            if (i != value) packed[i].Dispose();
        }
    }

    public static TheoryData<string, string> BadTrees => new()
    {
        { "with an activation output", "both a tree step and an activation output" },
        { "too few inputs", "reads 2 inputs (at most 4); 1 are given" },
        { "value input out of range", "value input 2 is not one of its 2 inputs" },
        { "value input given a buffer", "value input 0 reads the product; its buffer entry must be null" },
        { "missing input", "input 1 has no buffer" },
        { "short input", "tree input 1 of the epilogue holds 5 elements; C's layout needs 6" },
        { "input is C", "tree input 1 of the epilogue is C's own buffer" },
    };

    [Theory]
    [MemberData(nameof(BadTrees))]
    public void ABadTreeStepIsRejectedBeforeAnyWork(string bad, string message)
    {
        using var ab = Upload(new float[12]);
        using var bb = Upload(new float[12]);
        using var cb = Upload([7f, 7f, 7f, 7f, 7f, 7f]);
        using var shortBuffer = Upload(new float[5]);
        using var other = Upload(new float[6]);
        var tree = bad switch
        {
            "too few inputs" => new GemmTreeStep(GeluBackward, 0, [null]),
            "value input out of range" => new GemmTreeStep(GeluBackward, 2, [null, other]),
            "value input given a buffer" => new GemmTreeStep(GeluBackward, 0, [other, other]),
            "missing input" => new GemmTreeStep(GeluBackward, 0, [null, null]),
            "short input" => new GemmTreeStep(GeluBackward, 0, [null, shortBuffer]),
            "input is C" => new GemmTreeStep(GeluBackward, 0, [null, cb]),
            _ => new GemmTreeStep(GeluBackward, 0, [null, other]),
        };
        var epilogue = bad == "with an activation output"
            ? new GemmEpilogue(Activation: [UnaryOp.Relu]) { ActivationOutput = other, Tree = tree }
            : new GemmEpilogue { Tree = tree };
        var e = Assert.Throws<ArgumentException>(() =>
            K.Gemm(GemmSize.Single(2, 3, 2), new GemmOperand(ab), new GemmOperand(bb), new GemmOutput(cb) { Epilogue = epilogue }));
        Assert.Contains("Gemm: ", e.Message);
        Assert.Contains(message, e.Message);
        Assert.Equal([7f, 7f, 7f, 7f, 7f, 7f], cb.ToArray());
    }

    [Fact]
    public void TheSetSaysItRunsATreeStep() => Assert.True(((IGemmEpilogueKernels)K).RunsGemmTree(GeluBackward));

    private DeviceBuffer<float> Upload(float[] data) => DeviceData.Upload(K, data);
}

/// <summary>
/// The tree step on the CPU set, on shapes that take every store path of the packed GEMM and the dedicated
/// matrix-vector and tall-depth paths.
/// </summary>
public sealed class CpuGemmTreeEpilogueTests : GemmTreeEpilogueTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.Cpu).Kernels;

    private static readonly Shape[] Shapes =
    [
        new(1, 1, 1, 1, false, false, 0, 0, false),
        new(1, 7, 13, 5, false, true, 3, 0, true),
        new(1, 64, 3, 17, true, false, 0, 0, false),     // thin C: computed as C^T
        new(3, 13, 37, 11, true, true, 2, 7, true),
        new(2, 130, 129, 131, false, false, 1, 3, false), // split over threads
        new(2, 5, 9, 0, false, false, 4, 2, true),        // k = 0: C = 0 (+ bias), then the tree
        new(1, 500, 300, 64, true, false, 0, 0, false),   // several row blocks per part
        new(1, 300, 1, 37, false, true, 3, 0, false),     // matrix-vector by rows
        new(2, 1, 70, 33, true, false, 0, 4, true),       // a row of C as a column of C^T
        new(1, 64, 48, 4500, true, false, 0, 0, false),   // tall depth
        new(64, 8, 24, 16, false, false, 0, 5, false),    // batch spread over threads
        new(2, 9, 11, 6, false, false, 2, 1, true, Mapped: true),
    ];

    public static TheoryData<int, int> Cases() => CasesOf(Shapes);

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheTreeStepHasTheBitsOfTheSeparateCalls(int shapeIndex, int treeIndex) =>
        TreeStepHasTheBitsOfTheSeparateCalls(Shapes[shapeIndex], shapeIndex, treeIndex);

    /// <summary>
    /// The loop of a product's tree step is compiled once, fully optimised, and never inlined into its caller: with the
    /// runtime's default profile-guided tiering, a long run recompiled the caller with the loop inlined into code that
    /// ran the FNO's GELU-backward epilogues 3-5x slower (a speed the unit tests cannot see, so the attributes are pinned).
    /// </summary>
    [Fact]
    public void TheTreeStepLoopIsNeverInlinedIntoItsCaller()
    {
        var loop = typeof(Engine.Kernels.Cpu.CpuKernelSet).GetMethod("TreeOverRuns", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static);
        Assert.NotNull(loop);
        var flags = loop.GetMethodImplementationFlags();
        Assert.True(flags.HasFlag(System.Reflection.MethodImplAttributes.NoInlining), flags.ToString());
        Assert.True(flags.HasFlag(System.Reflection.MethodImplAttributes.AggressiveOptimization), flags.ToString());
    }
}

/// <summary>
/// The tree step on the ILGPU set (CPU emulator), in the tiled kernel's scalar and 16-byte-vector forms and the mapped
/// kernel, on shapes that cross its tiles.
/// </summary>
[Collection("ilgpu")]
public sealed class IlgpuGemmTreeEpilogueTests : GemmTreeEpilogueTests
{
    /// <inheritdoc />
    protected override IKernelSet K => Device.Get(DeviceKind.IlgpuCpu).Kernels;

    private static readonly Shape[] Shapes =
    [
        new(1, 1, 1, 1, false, false, 0, 0, false),
        new(1, 7, 13, 5, false, true, 3, 0, true),
        new(1, 64, 3, 17, true, false, 0, 0, false),
        new(3, 13, 37, 11, true, true, 2, 7, true),
        new(2, 5, 9, 0, false, false, 4, 2, true),        // k = 0
        new(2, 1, 70, 33, true, false, 0, 4, true),
        new(2, 8, 12, 4, false, false, 4, 4, true),       // every extent, stride and offset a multiple of 4: the vector form
        new(2, 9, 11, 6, false, false, 2, 1, true, Mapped: true),
    ];

    public static TheoryData<int, int> Cases() => CasesOf(Shapes);

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheTreeStepHasTheBitsOfTheSeparateCalls(int shapeIndex, int treeIndex) =>
        TreeStepHasTheBitsOfTheSeparateCalls(Shapes[shapeIndex], shapeIndex, treeIndex);
}
