using System.Collections.Concurrent;
using Engine.Kernels.Elementwise;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Ilgpu;

public sealed partial class IlgpuKernelSet : IGemmEpilogueKernels
{
    /// <summary>
    /// The loaded GEMM kernels by instantiation: the tiled kernel's variant (4 transA + 2 transB + vector) or -1 for the
    /// mapped kernel, and the launcher type (which names the store step).
    /// </summary>
    private readonly ConcurrentDictionary<(int Variant, Type Launcher), Delegate> gemmKernels = new();
    private DeviceBuffer<int>? noIndex;

    /// <inheritdoc />
    /// <remarks>
    /// Without index maps, matrices below 2^31 elements run the tiled kernel (<see cref="IlgpuKernels.GemmTiled"/>:
    /// 8 x 8 per thread, 16 x 16 groups on GPUs), its 16-byte-vector form when every extent, stride and offset is a
    /// multiple of 4. Index maps and larger matrices take the mapped kernel (maps applied in its tile loads and
    /// stores, 64-bit indices). Both run an epilogue in their stores (<see cref="EpilogueStore{TActivation}"/>).
    /// </remarks>
    void IKernelSet.Gemm(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c) => GemmCore(size, a, b, c);

    /// <inheritdoc />
    /// <remarks>Every epilogue: the bias, the residual and any activation chain run in the GEMM's store.</remarks>
    public bool RunsGemmEpilogue(bool bias, bool residual = false, IReadOnlyList<UnaryStep>? activation = null) => activation is not { Count: 0 };

    /// <inheritdoc />
    /// <remarks>Every tree of at most four inputs, as the last step of the store (<see cref="TreeStore{TActivation, TTree}"/>).</remarks>
    public bool RunsGemmTree(ElementwiseExpression tree) => tree.Arity <= ElementwiseExpression.MaxInputs;

    private void GemmCore(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c)
    {
        const string opName = "Gemm";
        size.Check($"{Name}.{opName}");
        a.Check($"{Name}.{opName}", nameof(a));
        b.Check($"{Name}.{opName}", nameof(b));
        c.Check($"{Name}.{opName}", runsEpilogues: true, size, runsTrees: true);
        // An activation output comes only with an activation (checked above), so an identity epilogue is no epilogue.
        if (c.Epilogue.IsIdentity)
        {
            GemmLaunch(size, a, b, c, default(PlainStore));
            return;
        }
        var activation = ElementwiseChains.Unary(c.Epilogue.Activation ?? []);
        if (c.Epilogue.Tree is { } tree)
            ElementwiseChains.RunPair(this, nameof(GemmWithTreeEpilogue), activation, ElementwiseChains.Tree(tree.Expression), size, a, b, c);
        else
            ElementwiseChains.Run(this, nameof(GemmWithEpilogue), activation, size, a, b, c);
    }

    /// <summary>The product with its epilogue in the store, the activation being <typeparamref name="TActivation"/> (checked by the caller).</summary>
    internal void GemmWithEpilogue<TActivation>(TActivation activation, GemmSize size, GemmOperand a, GemmOperand b, GemmOutput c)
        where TActivation : unmanaged, IUnaryOp =>
        GemmLaunch(size, a, b, c, EpilogueStoreFor(activation, size, c, LaidAsC(c.Buffer, size, c, "c")));

    /// <summary>
    /// The product with its epilogue and then its tree step (<typeparamref name="TTree"/>, the op struct of the epilogue's
    /// tree) in the store (checked by the caller).
    /// </summary>
    internal void GemmWithTreeEpilogue<TActivation, TTree>(TActivation activation, TTree tree, GemmSize size, GemmOperand a, GemmOperand b, GemmOutput c)
        where TActivation : unmanaged, IUnaryOp where TTree : unmanaged, ITreeOp
    {
        const string opName = "Gemm";
        var step = c.Epilogue.Tree!.Value;
        var laidAsC = LaidAsC(c.Buffer, size, c, "c");
        int scalars = 0;
        ArrayView<float> Input(int k)
        {
            var buffer = k < step.Inputs.Count ? step.Inputs[k] : null;
            if (buffer == null) return laidAsC;
            bool scalar = buffer.Length == 1;
            if (scalar) scalars |= 1 << k;
            return scalar ? View(buffer, 1, opName, $"tree input {k}") : LaidAsC(buffer, size, c, $"tree input {k}");
        }
        var store = new TreeStore<TActivation, TTree>
        {
            Epilogue = EpilogueStoreFor(activation, size, c, laidAsC),
            X0 = Input(0), X1 = Input(1), X2 = Input(2), X3 = Input(3),
            Value = step.ValueInput,
            Scalars = scalars,
            Arity = step.Inputs.Count,
            Tree = tree,
        };
        GemmLaunch(size, a, b, c, store);
    }

    /// <summary><paramref name="buffer"/> laid out as C: a view from C's offset over C's extent.</summary>
    private ArrayView<float> LaidAsC(DeviceBuffer<float> buffer, GemmSize size, in GemmOutput c, string name) =>
        View(buffer, c.Offset + Extent(size.Batch, c.BatchStride, (long)size.M * size.N), "Gemm", name).SubView(c.Offset);

    /// <summary>
    /// The store step of C's bias, residual and activation; an absent buffer's view is <paramref name="laidAsC"/>
    /// (C's own, never read).
    /// </summary>
    private EpilogueStore<TActivation> EpilogueStoreFor<TActivation>(TActivation activation, GemmSize size, in GemmOutput c, ArrayView<float> laidAsC)
        where TActivation : unmanaged, IUnaryOp
    {
        var e = c.Epilogue;
        return new EpilogueStore<TActivation>
        {
            Bias = e.Bias == null ? laidAsC : View(e.Bias, e.Bias.Length, "Gemm", "bias"),
            BiasRows = e.Bias == null ? 0 : e.Bias.Length / size.N,
            N = size.N,
            Residual = e.Residual == null ? laidAsC : LaidAsC(e.Residual, size, c, "residual"),
            HasResidual = e.Residual == null ? 0 : 1,
            Output = e.ActivationOutput == null ? laidAsC : LaidAsC(e.ActivationOutput, size, c, "activation output"),
            HasOutput = e.ActivationOutput == null ? 0 : 1,
            Activation = activation,
        };
    }

    /// <summary>Launches the tiled or the mapped kernel with <paramref name="store"/> finishing each stored value (checked by the caller).</summary>
    private void GemmLaunch<TStore>(GemmSize size, in GemmOperand a, in GemmOperand b, in GemmOutput c, TStore store)
        where TStore : struct, IGemmStoreStep
    {
        const string opName = "Gemm";
        var (batch, m, n, k) = size;
        // A mapped operand's view spans its reads up to the map's entry bound (the entries themselves stay on the device).
        var av = View(a.Buffer, a.Offset + a.ReadExtent(batch, (long)m * k), opName, nameof(a)).SubView(a.Offset);
        var bv = View(b.Buffer, b.Offset + b.ReadExtent(batch, (long)k * n), opName, nameof(b)).SubView(b.Offset);
        var cv = View(c.Buffer, c.Offset + Extent(batch, c.BatchStride, (long)m * n), opName, nameof(c)).SubView(c.Offset);
        var ai = IndexView(a.Index, a.IndexLength, a.IndexEntries(batch), (long)m * k, opName, "aIndex");
        var bi = IndexView(b.Index, b.IndexLength, b.IndexEntries(batch), (long)k * n, opName, "bIndex");
        var ci = IndexView(c.Index, c.IndexLength, c.IndexLength, (long)m * n, opName, "cIndex");
        if (batch == 0 || m == 0 || n == 0) return;
        long strideA = a.BatchStride, strideB = b.BatchStride, strideC = c.BatchStride;
        bool transA = a.Transposed, transB = b.Transposed;
        float alpha = c.Alpha, beta = c.Beta;
        DeviceBuffer<int>? aIndex = a.Index, bIndex = b.Index, cIndex = c.Index;
        var epilogue = c.Epilogue;
        bool mapped = aIndex != null || bIndex != null || cIndex != null;
        bool small = (long)m * k < int.MaxValue && (long)k * n < int.MaxValue && (long)m * n < int.MaxValue;
        if (!mapped && small)
        {
            var tp = new GemmTiledParams
            {
                Batch = batch, M = m, N = n, K = k,
                StrideA = strideA, StrideB = strideB, StrideC = strideC,
                Alpha = alpha, Beta = beta,
            };
            bool vector = m % 4 == 0 && n % 4 == 0 && k % 4 == 0 && strideA % 4 == 0 && strideB % 4 == 0 && strideC % 4 == 0
                          && a.Offset % 4 == 0 && b.Offset % 4 == 0 && c.Offset % 4 == 0;
            int variant = (transA ? 4 : 0) + (transB ? 2 : 0) + (vector ? 1 : 0);
            var tiled = GemmKernel(variant, acc => acc.LoadStreamKernel(GemmTiledKernel<TStore>(gemmGroup, transA, transB, vector)));
            var tiledConfig = GemmConfig(batch, m, n, IlgpuKernels.GemmSlab * gemmGroup, gemmGroup);
            Launch(opName, () => tiled(tiledConfig, av, bv, cv, tp, store), a.Buffer, b.Buffer, c.Buffer, epilogue.Bias, epilogue.Residual, epilogue.ActivationOutput,
                epilogue.Tree?.Inputs);
            return;
        }

        var p = new GemmParams
        {
            Batch = batch, M = m, N = n, K = k,
            StrideA = strideA, StrideB = strideB, StrideC = strideC,
            Alpha = alpha, Beta = beta,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
            TileLog2 = Log2(IlgpuKernels.GemmMicro * gemmGroup),
            SlabLog2 = Log2(gemmSlab),
            ALen = aIndex == null ? 0 : a.IndexLength, BLen = bIndex == null ? 0 : b.IndexLength, CLen = cIndex == null ? 0 : c.IndexLength,
            AIdxStride = aIndex == null ? 0 : a.IndexBatchStride, BIdxStride = bIndex == null ? 0 : b.IndexBatchStride,
        };
        var config = GemmConfig(batch, m, n, IlgpuKernels.GemmMicro * gemmGroup, gemmGroup);
        var kernel = GemmKernel(-1, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<int>, GemmParams, TStore>(IlgpuKernels.Gemm));
        Launch(opName, () => kernel(config, av, bv, cv, ai, bi, ci, p, store), a.Buffer, b.Buffer, c.Buffer, aIndex, bIndex, cIndex,
            epilogue.Bias, epilogue.Residual, epilogue.ActivationOutput, epilogue.Tree?.Inputs);
    }

    /// <summary>
    /// The GEMM kernel of an instantiation (<paramref name="variant"/>: the tiled kernel's, or -1 for the mapped kernel)
    /// whose launcher is <typeparamref name="TLauncher"/>: loaded on first use, then cached.
    /// </summary>
    private TLauncher GemmKernel<TLauncher>(int variant, Func<Accelerator, TLauncher> load) where TLauncher : Delegate =>
        Cached(gemmKernels, (variant, typeof(TLauncher)), load);

    /// <summary>The instantiation of <see cref="IlgpuKernels.GemmTiled"/> for a group edge and switches, without an epilogue.</summary>
    internal static Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmTiledParams, PlainStore> GemmTiledKernel(int group, bool transA, bool transB, bool vector) =>
        GemmTiledKernel<PlainStore>(group, transA, transB, vector);

    /// <summary>The instantiation of <see cref="IlgpuKernels.GemmTiled"/> for a group edge, switches and store step.</summary>
    internal static Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmTiledParams, TStore> GemmTiledKernel<TStore>(int group, bool transA, bool transB,
        bool vector) where TStore : struct, IGemmStoreStep
    {
        var g = group switch
        {
            16 => typeof(GemmGroup16),
            8 => typeof(GemmGroup8),
            4 => typeof(GemmGroup4),
            2 => typeof(GemmGroup2),
            1 => typeof(GemmGroup1),
            _ => throw new ArgumentOutOfRangeException(nameof(group), group, "GEMM group edge must be 1, 2, 4, 8 or 16."),
        };
        static Type Switch(bool on) => on ? typeof(SwitchOn) : typeof(SwitchOff);
        var method = typeof(IlgpuKernels).GetMethod(nameof(IlgpuKernels.GemmTiled), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(g, Switch(transA), Switch(transB), Switch(vector), typeof(TStore));
        return method.CreateDelegate<Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmTiledParams, TStore>>();
    }

    /// <summary>
    /// The launch of a tiled GEMM: on GPUs one group per tile (grid-stride loops cover grids beyond the hardware
    /// limits); on the CPU emulator a few groups walk all tiles (per-group setup and barriers dominate there).
    /// </summary>
    private KernelConfig GemmConfig(int batch, int m, int n, int tile, int g)
    {
        long tilesN = (n + tile - 1) / tile, tilesM = (m + tile - 1) / tile;
        if (gemmMaxGroups > 0)
        {
            int gx = (int)Math.Min(tilesN, gemmMaxGroups);
            int gy = (int)Math.Min(tilesM, Math.Max(1, gemmMaxGroups / gx));
            int gz = (int)Math.Min(batch, Math.Max(1, gemmMaxGroups / (gx * gy)));
            return new KernelConfig(new Index3D(gx, gy, gz), new Index3D(g, g, 1));
        }
        return new KernelConfig(
            new Index3D((int)Math.Min(tilesN, 65535), (int)Math.Min(tilesM, 65535), Math.Min(batch, 65535)),
            new Index3D(g, g, 1));
    }

    /// <summary>
    /// The view of an index map (a one-element dummy when null) of which the batch reads <paramref name="entries"/>;
    /// checks its length divides the matrix.
    /// </summary>
    private ArrayView<int> IndexView(DeviceBuffer<int>? index, int length, long entries, long matrix, string op, string name)
    {
        if (index == null)
        {
            var dummy = Volatile.Read(ref noIndex);
            if (dummy == null)
            {
                lock (gate) { dummy = noIndex ??= AllocateInt(1); }
            }
            return View(dummy, 1, op, name);
        }
        if (length <= 0)
            throw new ArgumentException($"{Name}.{op}: map '{name}' needs a positive length, got {length}.", name);
        if (matrix % length != 0)
            throw new ArgumentException($"{Name}.{op}: map '{name}' has length {length}, which does not divide the matrix size {matrix}.", name);
        return View(index, entries, op, name);
    }

    private static int Log2(int powerOfTwo) => System.Numerics.BitOperations.Log2((uint)powerOfTwo);

    /// <summary>Elements a batched operand spans: the last matrix starts at (batch - 1) * stride.</summary>
    private static long Extent(int batch, long stride, long matrix) =>
        batch == 0 || matrix == 0 ? 0 : (batch - 1) * stride + matrix;
}
