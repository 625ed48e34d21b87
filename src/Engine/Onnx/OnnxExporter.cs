using System.Collections.Concurrent;
using Engine.Autodiff;
using Engine.Nn;

namespace Engine.Onnx;

/// <summary>Settings of an ONNX export.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The ai.onnx opset (17 to 21; 17 is the first with LayerNormalization, 20 the first with Gelu).</summary>
    public int Opset { get; init; } = OnnxExporter.DefaultOpset;
    /// <summary>Name of the graph input.</summary>
    public string InputName { get; init; } = "input";
    /// <summary>Name of the graph output.</summary>
    public string OutputName { get; init; } = "output";
    /// <summary>Graph name.</summary>
    public string GraphName { get; init; } = "engine";
    /// <summary>Free text stored in the model's doc_string, or null.</summary>
    public string? DocString { get; init; }
}

/// <summary>
/// Writes a module's forward pass (inference only) as an ONNX model: parameters become initializers, layers become
/// standard ai.onnx ops. Built in: <see cref="Sequential"/>, <see cref="Linear"/> (Gemm, or MatMul + Add beyond 2-D),
/// <see cref="ReLU"/>, <see cref="Tanh"/>, <see cref="Sigmoid"/>, <see cref="Softmax"/>, <see cref="GELU"/> (Gelu from
/// opset 20, before that the same formula in Erf or Tanh ops), <see cref="LayerNorm"/> (LayerNormalization),
/// <see cref="KroneckerLinear"/>/<see cref="PermutedKroneckerLinear"/> (Gather for the permutations, MatMul for the
/// factors), <see cref="MixerBlock"/> and <see cref="Mixer"/>. Other module types plug in with
/// <see cref="Register{T}"/>.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The default opset.</summary>
    public const int DefaultOpset = 17;

    private static readonly ConcurrentDictionary<Type, Func<OnnxGraphBuilder, Module, string, string>> Converters = new();

    static OnnxExporter() => OnnxConverters.RegisterBuiltIns();

    /// <summary>
    /// Registers (or replaces) how modules of type <typeparamref name="T"/> are written: the converter receives the
    /// builder, the module and its input value's name, adds nodes, and returns its output value's name (with its shape
    /// recorded through <see cref="OnnxGraphBuilder.SetShape"/> or a builder helper).
    /// </summary>
    public static void Register<T>(Func<OnnxGraphBuilder, T, string, string> converter) where T : Module =>
        Converters[typeof(T)] = (b, m, x) => converter(b, (T)m, x);

    /// <summary>True if modules of <paramref name="type"/> (or a base type) can be exported.</summary>
    public static bool CanExport(Type type)
    {
        for (var t = type; t != null; t = t.BaseType)
            if (Converters.ContainsKey(t)) return true;
        return false;
    }

    internal static Func<OnnxGraphBuilder, Module, string, string> ConverterFor(Module module)
    {
        for (var t = module.GetType(); t != null; t = t.BaseType)
            if (Converters.TryGetValue(t, out var c)) return c;
        throw new NotSupportedException(
            $"ONNX export: no converter for {module.GetType().Name}; register one with OnnxExporter.Register<{module.GetType().Name}>(...).");
    }

    /// <summary>The model as ONNX protobuf bytes.</summary>
    /// <param name="model">The module to export (its current parameters are copied in).</param>
    /// <param name="inputShape">The input's shape, -1 for the batch axis (e.g. [-1, 64]).</param>
    /// <param name="options">Opset and names, or null for the defaults.</param>
    /// <exception cref="ArgumentException">The opset is outside 17..21 or the input shape has a zero or negative size other than -1.</exception>
    /// <exception cref="NotSupportedException">A module type has no converter.</exception>
    public static byte[] Export(Module model, int[] inputShape, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        if (options.Opset is < 17 or > 21)
            throw new ArgumentException($"ONNX export: opset {options.Opset} is not supported (17 to 21).");
        if (inputShape.Length == 0 || inputShape.Any(d => d == 0 || d < -1))
            throw new ArgumentException($"ONNX export: input shape {Shape.Format(inputShape)} must have positive sizes or -1 (batch).");
        var b = new OnnxGraphBuilder(options.Opset);
        if (options.InputName == options.OutputName)
            throw new ArgumentException($"ONNX export: input and output need different names (both '{options.InputName}').");
        b.Declare(options.InputName, inputShape);
        b.Declare(options.OutputName, []); // reserved, so no converter's value takes the name
        string y;
        using (GradMode.NoGrad())
            y = b.Convert(model, options.InputName);
        var outShape = b.ShapeOf(y);
        // A final Identity gives the output a stable name whatever the last node was.
        var nodes = b.Nodes.Append(new NodeProto { OpType = "Identity", Name = options.OutputName, Inputs = [y], Outputs = [options.OutputName] }).ToList();
        var graph = new GraphProto
        {
            Name = options.GraphName,
            Nodes = nodes,
            Initializers = b.Initializers,
            Inputs = [new ValueInfoProto { Name = options.InputName, Shape = inputShape }],
            Outputs = [new ValueInfoProto { Name = options.OutputName, Shape = outShape }],
        };
        var proto = new ModelProto
        {
            // The IR version that introduced each opset (onnx/helper.py VERSION_TABLE).
            IrVersion = options.Opset switch { <= 18 => 8, <= 20 => 9, _ => 10 },
            OpsetVersion = options.Opset,
            ProducerName = "Engine",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = options.DocString,
            Graph = graph,
        };
        return proto.ToBytes();
    }

    /// <summary>Writes the model to <paramref name="path"/> atomically (see <see cref="Export"/>).</summary>
    public static void Save(Module model, string path, int[] inputShape, OnnxExportOptions? options = null)
    {
        var bytes = Export(model, inputShape, options);
        Checkpoints.Safetensors.AtomicWrite(path, s => s.Write(bytes));
    }
}
