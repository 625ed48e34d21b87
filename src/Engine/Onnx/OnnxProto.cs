using Google.Protobuf;

namespace Engine.Onnx;

// The subset of onnx.proto (proto2) that the exporter writes, as hand-written serializers over Google.Protobuf's
// CodedOutputStream; field numbers are those of onnx/onnx.proto. Nested messages are serialized to bytes first and
// written as length-delimited fields. Repeated scalars are written unpacked, as proto2 declares them.

/// <summary>Serialization helpers shared by the message classes.</summary>
internal static class Proto
{
    public static byte[] Serialize(Action<CodedOutputStream> write)
    {
        using var ms = new MemoryStream();
        using (var o = new CodedOutputStream(ms, leaveOpen: true))
        {
            write(o);
            o.Flush();
        }
        return ms.ToArray();
    }

    public static void String(CodedOutputStream o, int field, string? value)
    {
        if (value == null) return;
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteString(value);
    }

    public static void Bytes(CodedOutputStream o, int field, byte[] value)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(value));
    }

    public static void Message(CodedOutputStream o, int field, byte[] serialized) => Bytes(o, field, serialized);

    public static void Int64(CodedOutputStream o, int field, long value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt64(value);
    }

    public static void Int32(CodedOutputStream o, int field, int value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt32(value);
    }

    public static void Float(CodedOutputStream o, int field, float value)
    {
        o.WriteTag(field, WireFormat.WireType.Fixed32);
        o.WriteFloat(value);
    }
}

/// <summary>TensorProto.DataType values used here.</summary>
internal enum OnnxDataType
{
    Float = 1,
    Int64 = 7,
}

/// <summary>TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian bytes).</summary>
internal sealed class TensorProto
{
    public required string Name { get; init; }
    public required long[] Dims { get; init; }
    public required OnnxDataType DataType { get; init; }
    public required byte[] RawData { get; init; }

    public byte[] ToBytes() => Proto.Serialize(o =>
    {
        foreach (var d in Dims) Proto.Int64(o, 1, d);
        Proto.Int32(o, 2, (int)DataType);
        Proto.String(o, 8, Name);
        Proto.Bytes(o, 9, RawData);
    });
}

/// <summary>AttributeProto: name = 1, f = 2, i = 3, s = 4, t = 5, floats = 7, ints = 8, type = 20.</summary>
internal sealed class AttributeProto
{
    public enum Kind { Float = 1, Int = 2, String = 3, Tensor = 4, Floats = 6, Ints = 7 }

    public required string Name { get; init; }
    public required Kind Type { get; init; }
    public float F { get; init; }
    public long I { get; init; }
    public string? S { get; init; }
    public TensorProto? T { get; init; }
    public float[]? Floats { get; init; }
    public long[]? Ints { get; init; }

    public byte[] ToBytes() => Proto.Serialize(o =>
    {
        Proto.String(o, 1, Name);
        switch (Type)
        {
            case Kind.Float: Proto.Float(o, 2, F); break;
            case Kind.Int: Proto.Int64(o, 3, I); break;
            case Kind.String: Proto.Bytes(o, 4, System.Text.Encoding.UTF8.GetBytes(S ?? "")); break;
            case Kind.Tensor: Proto.Message(o, 5, T!.ToBytes()); break;
            case Kind.Floats: foreach (var f in Floats!) Proto.Float(o, 7, f); break;
            case Kind.Ints: foreach (var i in Ints!) Proto.Int64(o, 8, i); break;
        }
        Proto.Int32(o, 20, (int)Type);
    });
}

/// <summary>NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7.</summary>
internal sealed class NodeProto
{
    public required string OpType { get; init; }
    public required string Name { get; init; }
    public required IReadOnlyList<string> Inputs { get; init; }
    public required IReadOnlyList<string> Outputs { get; init; }
    public IReadOnlyList<AttributeProto> Attributes { get; init; } = [];

    public byte[] ToBytes() => Proto.Serialize(o =>
    {
        foreach (var i in Inputs) Proto.String(o, 1, i);
        foreach (var x in Outputs) Proto.String(o, 2, x);
        Proto.String(o, 3, Name);
        Proto.String(o, 4, OpType);
        foreach (var a in Attributes) Proto.Message(o, 5, a.ToBytes());
    });
}

/// <summary>
/// ValueInfoProto (name = 1, type = 2) of a float tensor: TypeProto.tensor_type = 1 → Tensor { elem_type = 1,
/// shape = 2 → TensorShapeProto { dim = 1 → Dimension { dim_value = 1 | dim_param = 2 } } }. A negative
/// dimension is written as the symbolic "batch".
/// </summary>
internal sealed class ValueInfoProto
{
    public required string Name { get; init; }
    public required int[] Shape { get; init; }

    public byte[] ToBytes()
    {
        var shape = Proto.Serialize(o =>
        {
            foreach (var d in Shape)
                Proto.Message(o, 1, Proto.Serialize(od =>
                {
                    if (d < 0) Proto.String(od, 2, "batch");
                    else Proto.Int64(od, 1, d);
                }));
        });
        var tensorType = Proto.Serialize(o =>
        {
            Proto.Int32(o, 1, (int)OnnxDataType.Float);
            Proto.Message(o, 2, shape);
        });
        var type = Proto.Serialize(o => Proto.Message(o, 1, tensorType));
        return Proto.Serialize(o =>
        {
            Proto.String(o, 1, Name);
            Proto.Message(o, 2, type);
        });
    }
}

/// <summary>GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.</summary>
internal sealed class GraphProto
{
    public required string Name { get; init; }
    public required IReadOnlyList<NodeProto> Nodes { get; init; }
    public required IReadOnlyList<TensorProto> Initializers { get; init; }
    public required IReadOnlyList<ValueInfoProto> Inputs { get; init; }
    public required IReadOnlyList<ValueInfoProto> Outputs { get; init; }

    public byte[] ToBytes() => Proto.Serialize(o =>
    {
        foreach (var n in Nodes) Proto.Message(o, 1, n.ToBytes());
        Proto.String(o, 2, Name);
        foreach (var t in Initializers) Proto.Message(o, 5, t.ToBytes());
        foreach (var i in Inputs) Proto.Message(o, 11, i.ToBytes());
        foreach (var x in Outputs) Proto.Message(o, 12, x.ToBytes());
    });
}

/// <summary>
/// ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7,
/// opset_import = 8 → OperatorSetIdProto { domain = 1, version = 2 }.
/// </summary>
internal sealed class ModelProto
{
    public required long IrVersion { get; init; }
    public required long OpsetVersion { get; init; }
    public required string ProducerName { get; init; }
    public required string ProducerVersion { get; init; }
    public string? DocString { get; init; }
    public required GraphProto Graph { get; init; }

    public byte[] ToBytes() => Proto.Serialize(o =>
    {
        Proto.Int64(o, 1, IrVersion);
        Proto.String(o, 2, ProducerName);
        Proto.String(o, 3, ProducerVersion);
        Proto.String(o, 6, DocString);
        Proto.Message(o, 7, Graph.ToBytes());
        Proto.Message(o, 8, Proto.Serialize(os =>
        {
            Proto.String(os, 1, "");
            Proto.Int64(os, 2, OpsetVersion);
        }));
    });
}
