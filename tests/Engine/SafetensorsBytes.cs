using System.Buffers.Binary;
using System.Text;

namespace Engine.Tests.EngineTests;

/// <summary>Builds raw safetensors bytes for the checkpoint tests.</summary>
internal static class SafetensorsBytes
{
    /// <summary>The 8-byte header length, the header text as UTF-8, then <paramref name="data"/>.</summary>
    public static byte[] Join(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var r = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)h.Length);
        h.CopyTo(r, 8);
        data.CopyTo(r, 8 + h.Length);
        return r;
    }
}
