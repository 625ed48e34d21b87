using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>Operands and calls shared by the GEMM path tests (<see cref="GemmSkinnyTests"/>, <see cref="GemmSmallTests"/>).</summary>
internal static class GemmTestData
{
    /// <summary>C_p = alpha op(A_p) op(B_p) + beta C_p on <paramref name="kernels"/>, returning C's buffer.</summary>
    public static float[] Run(IKernelSet kernels, GemmSize size, float[] a, long strideA, bool transA, float[] b, long strideB, bool transB,
        float[] c, long strideC, float alpha, float beta)
    {
        using var ab = DeviceData.Upload(kernels, a);
        using var bb = DeviceData.Upload(kernels, b);
        using var cb = DeviceData.Upload(kernels, c);
        kernels.Gemm(size, new GemmOperand(ab, transA, strideA), new GemmOperand(bb, transB, strideB),
            new GemmOutput(cb, strideC) { Alpha = alpha, Beta = beta });
        return cb.ToArray();
    }

    /// <summary><paramref name="batch"/> matrices of <paramref name="size"/> values, <paramref name="stride"/> apart (0: one), NaN between and after.</summary>
    public static float[] Laid(Random rng, int batch, long size, long stride, int tail)
    {
        var data = Nans((int)((batch - 1) * stride + size + tail));
        int count = stride == 0 ? 1 : batch;
        for (int p = 0; p < count; p++)
            for (long e = 0; e < size; e++)
                data[p * stride + e] = (float)(rng.NextDouble() * 2 - 1);
        return data;
    }

    /// <summary><paramref name="count"/> NaNs.</summary>
    public static float[] Nans(int count) => Enumerable.Repeat(float.NaN, count).ToArray();

    /// <summary>The bit patterns of <paramref name="values"/>, for bitwise comparisons.</summary>
    public static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
