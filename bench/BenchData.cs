using Engine.Kernels;

namespace Engine.Bench;

/// <summary>Operands for the GEMM benchmarks: uniform values in [-1, 1) and their copies on the CPU set.</summary>
internal static class BenchData
{
    /// <summary><paramref name="count"/> values drawn uniformly from [-1, 1) by <paramref name="rng"/>.</summary>
    public static float[] Uniform(Random rng, long count)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            values[i] = (float)(rng.NextDouble() * 2 - 1);
        }
        return values;
    }

    /// <summary>A buffer on the CPU set holding <paramref name="values"/>.</summary>
    public static DeviceBuffer<float> OnCpu(float[] values)
    {
        var buffer = Device.Cpu.Kernels.Allocate(values.Length);
        buffer.CopyFromHost(values);
        return buffer;
    }
}
