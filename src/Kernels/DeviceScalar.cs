namespace Engine.Kernels;

/// <summary>
/// One number kept in device memory, so that a training step can compute it on the device and pass it to the next
/// kernel without a host round trip: the squared gradient norm a reduction writes, SAM's perturbation scale, the
/// learning rate, Adam's step count. Kernels read and write it; the host uploads it with <see cref="Write"/> (a
/// host-to-device copy) and reads it only when asked, with <see cref="Read"/> (a device-to-host copy, counted by
/// <see cref="DeviceCounters.DeviceToHostCopies"/>).
/// </summary>
/// <remarks>
/// Storage is the same on every kernel set, whether or not its device has fp64: a float buffer of two elements
/// (hi, lo), a double-float pair whose value is hi + lo with hi = the value rounded to float and lo = the rounded
/// remainder. That holds 48 significant bits (a double holds 53) over float's exponent range: a double result
/// outside it (beyond ±3.4e38) is stored as an infinity, and below 1.2e-38 it loses relative precision. A kernel
/// that takes a float parameter from a scalar (learning rate, perturbation scale) reads hi, the value rounded to
/// float. Dispose to free the buffer.
/// </remarks>
public sealed class DeviceScalar : IDisposable
{
    /// <summary>Allocates a scalar on <paramref name="device"/> holding <paramref name="value"/> (uploaded).</summary>
    public DeviceScalar(Device device, double value = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        device.ThrowIfDisposed("DeviceScalar");
        Buffer = device.Kernels.Allocate(2);
        try
        {
            Write(value);
        }
        catch
        {
            Buffer.Dispose();
            throw;
        }
    }

    private DeviceScalar(DeviceBuffer<float> buffer) => Buffer = buffer;

    /// <summary>
    /// A scalar stored in an existing two-element buffer (a compiled graph's memory slot); disposing the scalar
    /// disposes that buffer.
    /// </summary>
    /// <exception cref="ArgumentException">The buffer does not hold exactly two elements.</exception>
    public static DeviceScalar Over(DeviceBuffer<float> buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (buffer.Length != 2)
            throw new ArgumentException($"DeviceScalar.Over: a scalar needs a buffer of 2 elements (hi, lo), got {buffer.Length}.");
        return new DeviceScalar(buffer);
    }

    /// <summary>The device holding the value.</summary>
    public Device Device => Buffer.Device;

    /// <summary>The two floats (hi, lo) behind the value, for kernels.</summary>
    public DeviceBuffer<float> Buffer { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Buffer.IsDisposed;

    /// <summary>Uploads <paramref name="value"/> (one host-to-device copy).</summary>
    public void Write(double value)
    {
        var (hi, lo) = Split(value);
        Buffer.CopyFromHost([hi, lo]);
    }

    /// <summary>Downloads the value (one device-to-host copy; waits for the kernels that write it).</summary>
    public double Read()
    {
        Span<float> pair = stackalloc float[2];
        Buffer.CopyToHost(pair);
        return Join(pair[0], pair[1]);
    }

    /// <summary>The (hi, lo) pair that stores <paramref name="value"/>: hi = value rounded to float, lo = the rest rounded.</summary>
    public static (float Hi, float Lo) Split(double value)
    {
        float hi = (float)value;
        // value - hi is exact in double; an infinite or NaN hi leaves no finite remainder.
        float lo = float.IsFinite(hi) ? (float)(value - hi) : 0f;
        return (hi, lo);
    }

    /// <summary>The value of a stored pair: hi + lo in double.</summary>
    public static double Join(float hi, float lo) => (double)hi + lo;

    /// <inheritdoc />
    public override string ToString() => $"DeviceScalar on {Device.Name}";

    /// <summary>Frees the device memory.</summary>
    public void Dispose() => Buffer.Dispose();
}
