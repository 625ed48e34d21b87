using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>Test buffers on a kernel set: uploads and filled buffers (uploaded, not the Fill kernel).</summary>
public static class DeviceData
{
    /// <summary>A device buffer holding <paramref name="data"/>.</summary>
    public static DeviceBuffer<float> Upload(IKernelSet k, float[] data)
    {
        var b = k.Allocate(data.Length);
        try { b.CopyFromHost(data); }
        catch { b.Dispose(); throw; }
        return b;
    }

    /// <summary>A device int buffer holding <paramref name="data"/>.</summary>
    public static DeviceBuffer<int> Upload(IKernelSet k, int[] data)
    {
        var b = k.AllocateInt(data.Length);
        try { b.CopyFromHost(data); }
        catch { b.Dispose(); throw; }
        return b;
    }

    /// <summary>A device buffer of <paramref name="n"/> copies of <paramref name="value"/>.</summary>
    public static DeviceBuffer<float> Filled(IKernelSet k, long n, float value)
    {
        var h = new float[n];
        Array.Fill(h, value);
        return Upload(k, h);
    }
}
