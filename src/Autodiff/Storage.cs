using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>A device buffer shared by a tensor and its reshape views; freed when the last of them is disposed.</summary>
internal sealed class Storage
{
    private int refs = 1;

    public Storage(DeviceBuffer<float> buffer) => Buffer = buffer;

    public DeviceBuffer<float> Buffer { get; }

    public void AddRef() => Interlocked.Increment(ref refs);

    public void Release()
    {
        if (Interlocked.Decrement(ref refs) == 0) Buffer.Dispose();
    }
}
