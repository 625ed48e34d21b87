using ILGPU;

namespace Engine.Kernels.Ilgpu;

internal static partial class IlgpuKernels
{
    // Direct DFTs, one thread per output element (grid-stride). The angle index j·k mod n is advanced incrementally
    // (t += k, minus n on overflow), so it never overflows and every twiddle comes from one exact host table
    // tw[2t] = cos(2πt/n), tw[2t + 1] = sin(2πt/n) (computed in double). O(n) per output: simple and exact in structure;
    // the CPU set has the fast algorithms.

    /// <summary>y[b, k] = scale · Σ_j x[b, j] e^{sign · 2πi jk/n} over complex [batch, n, 2].</summary>
    internal static void DftComplex(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, int batch, int n, float sign, float scale)
    {
        long total = (long)batch * n;
        for (long idx = GlobalStart; idx < total; idx += GlobalStride)
        {
            long b = idx / n;
            int k = (int)(idx - b * n);
            long row = b * n * 2;
            float sr = 0f, si = 0f;
            int t = 0;
            for (int j = 0; j < n; j++)
            {
                float c = tw[2 * t], s = sign * tw[2 * t + 1];
                float xr = x[row + 2 * j], xi = x[row + 2 * j + 1];
                sr += xr * c - xi * s;
                si += xr * s + xi * c;
                t += k;
                if (t >= n) t -= n;
            }
            y[2 * idx] = sr * scale;
            y[2 * idx + 1] = si * scale;
        }
    }

    /// <summary>Real-input DFT: x [batch, n] to y [batch, n/2 + 1, 2]; imaginary parts of DC and Nyquist exactly 0.</summary>
    internal static void DftReal(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, int batch, int n)
    {
        int bins = n / 2 + 1;
        long total = (long)batch * bins;
        for (long idx = GlobalStart; idx < total; idx += GlobalStride)
        {
            long b = idx / bins;
            int k = (int)(idx - b * bins);
            long row = b * n;
            float sr = 0f, si = 0f;
            int t = 0;
            for (int j = 0; j < n; j++)
            {
                float xr = x[row + j];
                sr += xr * tw[2 * t];
                si -= xr * tw[2 * t + 1];
                t += k;
                if (t >= n) t -= n;
            }
            y[2 * idx] = sr;
            y[2 * idx + 1] = k == 0 || 2 * k == n ? 0f : si;
        }
    }

    /// <summary>
    /// Inverse real DFT (NumPy's irfft): x [batch, n/2 + 1, 2] to y [batch, n],
    /// y_j = (1/n)(Re X_0 + Σ_{0 &lt; k &lt; n/2} 2 Re(X_k e^{2πi jk/n}) + [n even] Re X_{n/2} (-1)^j).
    /// </summary>
    internal static void IdftReal(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, int batch, int n)
    {
        int bins = n / 2 + 1;
        long total = (long)batch * n;
        for (long idx = GlobalStart; idx < total; idx += GlobalStride)
        {
            long b = idx / n;
            int j = (int)(idx - b * n);
            long row = b * bins * 2;
            float acc = x[row];
            int t = j;
            if (t >= n) t -= n;
            for (int k = 1; k < bins; k++)
            {
                float xr = x[row + 2 * k], xi = x[row + 2 * k + 1];
                float term = xr * tw[2 * t] - xi * tw[2 * t + 1];
                acc += 2 * k == n ? xr * tw[2 * t] : 2f * term;
                t += j;
                if (t >= n) t -= n;
            }
            y[idx] = acc / n;
        }
    }

    /// <summary>
    /// Complex DFT along the h axis of [batch, h, m, 2]: y[b, k1, c] = scale · Σ_j x[b, j, c] e^{sign · 2πi j·k1/h}.
    /// </summary>
    internal static void DftColumns(ArrayView<float> x, ArrayView<float> y, ArrayView<float> tw, int batch, int h, int m, float sign, float scale)
    {
        long total = (long)batch * h * m;
        for (long idx = GlobalStart; idx < total; idx += GlobalStride)
        {
            long b = idx / ((long)h * m);
            long rest = idx - b * h * m;
            int k1 = (int)(rest / m);
            int c = (int)(rest - (long)k1 * m);
            long basis = b * h * m;
            float sr = 0f, si = 0f;
            int t = 0;
            for (int j = 0; j < h; j++)
            {
                float cs = tw[2 * t], s = sign * tw[2 * t + 1];
                long at = 2 * (basis + (long)j * m + c);
                float xr = x[at], xi = x[at + 1];
                sr += xr * cs - xi * s;
                si += xr * s + xi * cs;
                t += k1;
                if (t >= h) t -= h;
            }
            y[2 * idx] = sr * scale;
            y[2 * idx + 1] = si * scale;
        }
    }
}
