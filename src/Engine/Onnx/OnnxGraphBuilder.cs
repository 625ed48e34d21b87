using System.Globalization;
using System.Runtime.InteropServices;
using Engine.Nn;

namespace Engine.Onnx;

/// <summary>An attribute of an ONNX node (int, ints, float or string).</summary>
public sealed class OnnxAttribute
{
    internal OnnxAttribute(AttributeProto proto) => Proto = proto;

    internal AttributeProto Proto { get; }

    /// <summary>An INT attribute.</summary>
    public static OnnxAttribute Int(string name, long value) => new(new AttributeProto { Name = name, Type = AttributeProto.Kind.Int, I = value });

    /// <summary>An INTS attribute.</summary>
    public static OnnxAttribute Ints(string name, params long[] values) => new(new AttributeProto { Name = name, Type = AttributeProto.Kind.Ints, Ints = values });

    /// <summary>A FLOAT attribute.</summary>
    public static OnnxAttribute Float(string name, float value) => new(new AttributeProto { Name = name, Type = AttributeProto.Kind.Float, F = value });

    /// <summary>A STRING attribute.</summary>
    public static OnnxAttribute String(string name, string value) => new(new AttributeProto { Name = name, Type = AttributeProto.Kind.String, S = value });
}

/// <summary>
/// Builds one ONNX graph while the exporter walks a module tree. Converters (see <see cref="OnnxExporter.Register{T}"/>)
/// add initializers and nodes and record each new value's shape; a shape uses -1 for the batch axis, which stays
/// symbolic in the model. Value and initializer names are made unique automatically.
/// </summary>
public sealed class OnnxGraphBuilder
{
    private readonly List<NodeProto> nodes = new();
    private readonly List<TensorProto> initializers = new();
    private readonly Dictionary<string, int[]> shapes = new(StringComparer.Ordinal);
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private readonly Stack<string> scope = new();

    internal OnnxGraphBuilder(int opset) => Opset = opset;

    /// <summary>The opset version being written (converters may pick ops by it, e.g. Gelu from 20).</summary>
    public int Opset { get; }

    internal IReadOnlyList<NodeProto> Nodes => nodes;
    internal IReadOnlyList<TensorProto> Initializers => initializers;

    /// <summary>The dotted module path of the module being converted ("blocks.0.token1"), for names.</summary>
    public string Scope => string.Join(".", scope.Reverse());

    /// <summary>A fresh value name starting with <paramref name="hint"/> (prefixed by the current scope).</summary>
    public string Fresh(string hint)
    {
        var baseName = scope.Count > 0 ? Scope + "." + hint : hint;
        var name = baseName;
        for (int i = 1; !names.Add(name); i++) name = baseName + "_" + i.ToString(CultureInfo.InvariantCulture);
        return name;
    }

    /// <summary>Declares a value that exists without a node (the graph input).</summary>
    internal void Declare(string name, int[] shape)
    {
        names.Add(name);
        shapes[name] = (int[])shape.Clone();
    }

    /// <summary>The shape of <paramref name="value"/> (-1 = batch).</summary>
    /// <exception cref="InvalidOperationException">The value is unknown (a converter forgot <see cref="SetShape"/>).</exception>
    public int[] ShapeOf(string value) => shapes.TryGetValue(value, out var s)
        ? (int[])s.Clone()
        : throw new InvalidOperationException($"ONNX export: no shape recorded for value '{value}'.");

    /// <summary>Records the shape of <paramref name="value"/> (-1 = batch).</summary>
    public void SetShape(string value, int[] shape) => shapes[value] = (int[])shape.Clone();

    /// <summary>Adds a float initializer (a constant such as a weight); returns its name.</summary>
    public string AddInitializer(string hint, ReadOnlySpan<float> values, params long[] dims)
    {
        CheckCount(hint, values.Length, dims);
        var name = Fresh(hint);
        var raw = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian) Checkpoints.Safetensors.SwapBytes(raw, 4);
        initializers.Add(new TensorProto { Name = name, Dims = dims, DataType = OnnxDataType.Float, RawData = raw });
        shapes[name] = dims.Select(d => (int)d).ToArray();
        return name;
    }

    /// <summary>Adds an int64 initializer (indices, shapes, axes); returns its name.</summary>
    public string AddInt64Initializer(string hint, ReadOnlySpan<long> values, params long[] dims)
    {
        CheckCount(hint, values.Length, dims);
        var name = Fresh(hint);
        var raw = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian) Checkpoints.Safetensors.SwapBytes(raw, 8);
        initializers.Add(new TensorProto { Name = name, Dims = dims, DataType = OnnxDataType.Int64, RawData = raw });
        shapes[name] = dims.Select(d => (int)d).ToArray();
        return name;
    }

    /// <summary>A scalar float constant.</summary>
    public string Constant(string hint, float value) => AddInitializer(hint, [value]);

    private static void CheckCount(string hint, int count, long[] dims)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        if (n != count)
            throw new ArgumentException($"ONNX export: initializer '{hint}' has {count} values, its dims [{string.Join(", ", dims)}] need {n}.");
    }

    /// <summary>
    /// Adds a node <paramref name="opType"/> with one output of shape <paramref name="outputShape"/>; returns the
    /// output's name.
    /// </summary>
    public string Node(string opType, string[] inputs, int[] outputShape, params OnnxAttribute[] attributes)
    {
        foreach (var i in inputs)
            if (i.Length > 0 && !names.Contains(i))
                throw new InvalidOperationException($"ONNX export: node {opType} reads '{i}', which no node or initializer produces.");
        var output = Fresh(opType.ToLowerInvariant());
        nodes.Add(new NodeProto
        {
            OpType = opType,
            Name = output,
            Inputs = inputs,
            Outputs = [output],
            Attributes = attributes.Select(a => a.Proto).ToList(),
        });
        shapes[output] = (int[])outputShape.Clone();
        return output;
    }

    /// <summary>An elementwise node whose output has the shape of its first input.</summary>
    public string Elementwise(string opType, params string[] inputs) => Node(opType, inputs, ShapeOf(inputs[0]));

    /// <summary>Reshape to <paramref name="shape"/> (one entry may be -1: the batch axis).</summary>
    public string Reshape(string input, params int[] shape) =>
        Node("Reshape", [input, AddInt64Initializer("shape", shape.Select(d => (long)d).ToArray(), shape.Length)], shape);

    /// <summary>Transposes the axes of <paramref name="input"/> by <paramref name="perm"/>.</summary>
    public string Transpose(string input, params int[] perm)
    {
        var s = ShapeOf(input);
        return Node("Transpose", [input], perm.Select(p => s[p]).ToArray(), OnnxAttribute.Ints("perm", perm.Select(p => (long)p).ToArray()));
    }

    /// <summary>Converts <paramref name="module"/> applied to <paramref name="input"/> with its registered converter.</summary>
    /// <param name="module">The module.</param>
    /// <param name="input">The input value's name.</param>
    /// <param name="name">The module's name in its parent (for value names), or null.</param>
    /// <exception cref="NotSupportedException">No converter is registered for the module's type.</exception>
    public string Convert(Module module, string input, string? name = null)
    {
        if (name != null) scope.Push(name);
        try
        {
            return OnnxExporter.ConverterFor(module)(this, module, input);
        }
        finally
        {
            if (name != null) scope.Pop();
        }
    }
}
