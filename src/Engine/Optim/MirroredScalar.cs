using Engine.Kernels;

namespace Engine.Optim;

/// <summary>
/// A <see cref="DeviceScalar"/> and the host's knowledge of its value, so that a value that stays the same from step
/// to step (a learning rate, a constant scale, a count the kernels advance) is uploaded only when it changes.
/// </summary>
internal sealed class MirroredScalar(Device device, double value) : IDisposable
{
    private double? known = value;

    /// <summary>The scalar on the device.</summary>
    public DeviceScalar Scalar { get; } = new(device, value);

    /// <summary>The scalar, holding <paramref name="value"/>: uploaded unless it holds those bits already.</summary>
    public DeviceScalar Holding(double value)
    {
        if (known is not { } held || BitConverter.DoubleToInt64Bits(held) != BitConverter.DoubleToInt64Bits(value))
        {
            Scalar.Write(value);
            known = value;
        }
        return Scalar;
    }

    /// <summary>Records that a kernel set the scalar to <paramref name="value"/> on the device.</summary>
    public void Became(double value) => known = value;

    /// <summary>Records that a kernel wrote a value the host does not know.</summary>
    public void Forget() => known = null;

    /// <summary>Frees the device scalar.</summary>
    public void Dispose() => Scalar.Dispose();
}
