using Engine.Kernels;

namespace Engine.Distributed;

/// <summary>Picks the communicator a launched job uses.</summary>
public static class Communicators
{
    /// <summary>
    /// The communicator for a process of an <c>mpirun</c> job training on <paramref name="device"/>: NCCL over MPI
    /// when the device is a CUDA GPU and libnccl.so.2 is present, else MPI alone (a GPU's buffers then travel through
    /// host memory).
    /// </summary>
    /// <exception cref="DllNotFoundException">Open MPI is not installed.</exception>
    public static Communicator ForDevice(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var world = MpiCommunicator.World;
        return NcclCommunicator.IsAvailable(device) ? NcclCommunicator.Create(world, device) : world;
    }
}
