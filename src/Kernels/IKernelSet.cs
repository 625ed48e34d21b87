namespace Engine.Kernels;

/// <summary>
/// The raw operations one device can run: buffers and shapes in, buffers out, nothing about graphs.
/// Two implementations exist: <c>CpuKernelSet</c> (hand-written SIMD, split over cores) and
/// <c>IlgpuKernelSet</c> (ILGPU kernels for CUDA, OpenCL and ILGPU's CPU emulator).
/// </summary>
/// <remarks>
/// Conventions shared by every method:
/// <list type="bullet">
/// <item>All data is float32, contiguous and row-major; a shape is an <c>int[]</c> (a scalar has shape <c>[]</c>).</item>
/// <item>Outputs are overwritten unless the method says it accumulates (<see cref="IndexAdd"/>, <see cref="Axpy"/>, <see cref="Gemm"/> with beta).</item>
/// <item>Callers (the autodiff layer) validate shapes and values before calling; kernels only assert what is cheap.</item>
/// <item>Every buffer passed belongs to the device this kernel set serves.</item>
/// </list>
/// </remarks>
public partial interface IKernelSet
{
    /// <summary>A short name: "cpu-simd" or "ilgpu-&lt;accelerator&gt;".</summary>
    string Name { get; }

    /// <summary>Allocates an uninitialised float buffer.</summary>
    DeviceBuffer<float> Allocate(long length);

    /// <summary>Allocates an uninitialised int buffer (indices, labels).</summary>
    DeviceBuffer<int> AllocateInt(long length);

    /// <summary>Waits until all queued work on the device has finished.</summary>
    void Synchronize();

    /// <summary>dst[i] = value.</summary>
    void Fill(DeviceBuffer<float> dst, float value);

    /// <summary>dst[dstOffset + i] = src[srcOffset + i] for i &lt; count.</summary>
    void Copy(DeviceBuffer<float> src, long srcOffset, DeviceBuffer<float> dst, long dstOffset, long count);

    /// <summary>dst[i] = <see cref="CounterRng.Uniform"/>(seed, i, low, high): bitwise identical on every kernel set.</summary>
    void RandomUniform(DeviceBuffer<float> dst, ulong seed, float low, float high);

    /// <summary>dst[i] = <see cref="CounterRng.Normal(ulong, ulong, float, float)"/>(seed, i, mean, std): bitwise identical on every kernel set.</summary>
    void RandomNormal(DeviceBuffer<float> dst, ulong seed, float mean, float std);

    /// <summary>y[i] = op(x[i]) for i &lt; x.Length (y may be x).</summary>
    void Unary(UnaryOp op, DeviceBuffer<float> x, DeviceBuffer<float> y);

    /// <summary>y[i] = scale * x[i] + shift (y may be x).</summary>
    void Affine(DeviceBuffer<float> x, DeviceBuffer<float> y, float scale, float shift);

    /// <summary>
    /// y = op(a, b) with NumPy broadcasting. <paramref name="yShape"/> is the broadcast shape of
    /// <paramref name="aShape"/> and <paramref name="bShape"/> (the caller computes and checks it);
    /// shapes of lower rank are aligned to the right.
    /// </summary>
    void Binary(BinaryOp op, DeviceBuffer<float> a, int[] aShape, DeviceBuffer<float> b, int[] bShape, DeviceBuffer<float> y, int[] yShape);

    /// <summary>y = x broadcast to <paramref name="yShape"/> (NumPy rules, right-aligned).</summary>
    void BroadcastTo(DeviceBuffer<float> x, int[] xShape, DeviceBuffer<float> y, int[] yShape);

    /// <summary>
    /// Reduces <paramref name="x"/> over <paramref name="axes"/> (sorted, distinct, in range). The output's layout is
    /// <paramref name="xShape"/> with those axes removed (keepdims only changes the shape, not the data).
    /// Sums accumulate in double precision on the CPU set and in float with pairwise/tree order on ILGPU.
    /// </summary>
    void Reduce(ReduceOp op, DeviceBuffer<float> x, int[] xShape, int[] axes, DeviceBuffer<float> y);

    /// <summary>
    /// Batched GEMM, row-major: for each p &lt; batch, C_p = alpha * op(A_p) op(B_p) + beta * C_p, with op(A_p) m x k,
    /// op(B_p) k x n, C_p m x n. A_p starts at p * strideA (A_p is m x k, or k x m when <paramref name="transA"/>);
    /// likewise B and C. A stride of 0 shares one matrix across the batch. When beta is 0, C is not read (NaN in C
    /// does not leak).
    /// </summary>
    void Gemm(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA,
        DeviceBuffer<float> b, long strideB, bool transB,
        float beta, DeviceBuffer<float> c, long strideC);

    /// <summary>y = x with axes permuted: y.shape[i] = xShape[perm[i]].</summary>
    void Permute(DeviceBuffer<float> x, int[] xShape, int[] perm, DeviceBuffer<float> y);

    /// <summary>
    /// Index select along <paramref name="axis"/>: y[..., j, ...] = x[..., index[j], ...] for j &lt; indexLength;
    /// y has xShape with xShape[axis] replaced by indexLength. Indices are validated by the caller.
    /// </summary>
    void IndexSelect(DeviceBuffer<float> x, int[] xShape, int axis, DeviceBuffer<int> index, int indexLength, DeviceBuffer<float> y);

    /// <summary>
    /// Scatter-add along <paramref name="axis"/>, the adjoint of <see cref="IndexSelect"/>:
    /// y[..., index[j], ...] += src[..., j, ...]. <paramref name="srcShape"/> has index length at <paramref name="axis"/>;
    /// y has <paramref name="yShape"/>. Accumulates into y (repeated indices add up).
    /// </summary>
    void IndexAdd(DeviceBuffer<float> src, int[] srcShape, int axis, DeviceBuffer<int> index, DeviceBuffer<float> y, int[] yShape);

    /// <summary>
    /// Softmax (or log-softmax when <paramref name="log"/>) along the middle axis of x viewed as
    /// [outer, axisLength, inner]; numerically stable (max subtracted).
    /// </summary>
    void Softmax(DeviceBuffer<float> x, DeviceBuffer<float> y, int outer, int axisLength, int inner, bool log);

    /// <summary>
    /// Fused, stable cross-entropy per row: loss[r] = logsumexp(logits[r, :]) - logits[r, labels[r]],
    /// logits [rows, classes]. Labels are validated by the caller.
    /// </summary>
    void CrossEntropy(DeviceBuffer<float> logits, DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> loss);

    /// <summary>y[r, c] = 1 if labels[r] == c else 0, y [rows, classes].</summary>
    void OneHot(DeviceBuffer<int> labels, int rows, int classes, DeviceBuffer<float> y);

    /// <summary>y[i] += alpha * x[i].</summary>
    void Axpy(float alpha, DeviceBuffer<float> x, DeviceBuffer<float> y);

    /// <summary>
    /// One fused SGD step over a parameter buffer (PyTorch semantics):
    /// g = grad + weightDecay * p; if momentum != 0: v = momentum * v + (1 - dampening) * g (v = g on the first step,
    /// signalled by <paramref name="firstStep"/>), g = nesterov ? g + momentum * v : v; p -= lr * g.
    /// <paramref name="velocity"/> may be null when momentum is 0.
    /// </summary>
    void SgdStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float>? velocity,
        float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep);

    /// <summary>
    /// One fused Adam/AdamW step (PyTorch semantics), <paramref name="step"/> counted from 1.
    /// Adam (decoupled = false): g = grad + weightDecay * p. AdamW (decoupled = true): p *= 1 - lr * weightDecay.
    /// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²; p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    /// </summary>
    void AdamStep(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> m, DeviceBuffer<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled, int step);

    /// <summary>
    /// Layer normalisation of x viewed as [rows, cols], per row: mean = Σx / cols, rstd = 1 / sqrt(var + eps) with the
    /// biased variance Σ(x - mean)² / cols, y = (x - mean) · rstd · gamma + beta. gamma and beta are [cols]; the row
    /// statistics are saved into <paramref name="mean"/> and <paramref name="rstd"/> ([rows]) for the backward pass.
    /// Statistics accumulate in double on the CPU set (two passes: mean, then squared deviations) and in compensated
    /// float on ILGPU. When cols is 0, mean and rstd are NaN.
    /// </summary>
    void LayerNorm(DeviceBuffer<float> x, DeviceBuffer<float> gamma, DeviceBuffer<float> beta, DeviceBuffer<float> y,
        DeviceBuffer<float> mean, DeviceBuffer<float> rstd, int rows, int cols, float eps);

    /// <summary>
    /// Backward of <see cref="LayerNorm"/> from the saved <paramref name="mean"/> and <paramref name="rstd"/>:
    /// with xhat = (x - mean) · rstd and dxhat = dy · gamma,
    /// dx = rstd · (dxhat - mean(dxhat) - xhat · mean(dxhat · xhat)) (row means over cols), dgamma = Σ_rows dy · xhat,
    /// dbeta = Σ_rows dy. All three outputs are overwritten (not accumulated). The column sums are deterministic: the
    /// CPU set splits rows into a fixed, shape-only set of blocks and adds their double partials in block order.
    /// </summary>
    void LayerNormBackward(DeviceBuffer<float> dy, DeviceBuffer<float> x, DeviceBuffer<float> mean, DeviceBuffer<float> rstd,
        DeviceBuffer<float> gamma, DeviceBuffer<float> dx, DeviceBuffer<float> dgamma, DeviceBuffer<float> dbeta, int rows, int cols);

    /// <summary>
    /// <see cref="Gemm"/> with each operand read (and C written) through an optional index map, so that a gather or
    /// scatter by a permutation costs no pass of its own: it is folded into the GEMM's operand loads and C stores.
    /// For an operand X with map <c>xIndex</c> of length L, the element at (unmapped) offset o of matrix X_p
    /// (o = row * ld + column of the stored, untransposed matrix) is read from
    /// <c>X_p[(o / L) * L + xIndex[o % L]]</c>; for C, the element at offset o is written there. Every index must lie
    /// in [0, L), and L should divide the matrix size; a C map must be a permutation of 0..L-1 (each element is stored
    /// exactly once). A null map (length ignored) is the identity, so with three null maps this is <see cref="Gemm"/>.
    /// Used by the Kronecker product y = J_out (A ⊗ B) J_in x: J_in is the map of the operand holding x and
    /// J_out⁻¹ the map of C.
    /// </summary>
    void GemmIndexed(int batch, int m, int n, int k, float alpha,
        DeviceBuffer<float> a, long strideA, bool transA, DeviceBuffer<int>? aIndex, int aIndexLength,
        DeviceBuffer<float> b, long strideB, bool transB, DeviceBuffer<int>? bIndex, int bIndexLength,
        float beta, DeviceBuffer<float> c, long strideC, DeviceBuffer<int>? cIndex, int cIndexLength);

    // ---- FFT (issue 4) ----
    // Complex data is interleaved float pairs (re, im). Every transform runs along the last axis (two last axes for the
    // 2-D ones), batched over the leading rows. Lengths are ≥ 1 (callers reject 0); any length works: powers of two
    // take a radix-4/2 path, lengths with prime factors 2, 3, 5, 7 a mixed-radix path, and lengths with a larger prime
    // factor Bluestein's chirp-z transform (CPU set; see Engine.Kernels.Cpu.Fft.LanePlan). Input and output must not
    // overlap.

    /// <summary>
    /// Batched complex DFT of x [batch, n, 2] into y [batch, n, 2]:
    /// y[b, k] = scale · Σ_j x[b, j] · e^{∓2πi jk/n}, minus sign for the forward transform, plus for
    /// <paramref name="inverse"/>. No normalisation beyond <paramref name="scale"/> (pass 1/n for NumPy's ifft).
    /// </summary>
    void Fft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n, bool inverse, float scale);

    /// <summary>
    /// Batched real-input DFT: x [batch, n] real to y [batch, n/2 + 1, 2], the non-negative frequencies
    /// y[b, k] = Σ_j x[b, j] e^{-2πi jk/n}, k ≤ n/2 (NumPy's rfft, unnormalised). The imaginary parts of bin 0 and (even
    /// n) bin n/2 are written as exact zeros.
    /// </summary>
    void Rfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n);

    /// <summary>
    /// Batched inverse of <see cref="Rfft"/> (NumPy's irfft, "backward" norm): x [batch, n/2 + 1, 2] to y [batch, n] real,
    /// y[b, j] = (1/n) Σ_{k &lt; n} X_k e^{2πi jk/n} with the Hermitian extension X_{n-k} = conj(X_k). The imaginary
    /// parts of bin 0 and (even n) bin n/2 are ignored, as NumPy does.
    /// </summary>
    void Irfft(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int n);

    /// <summary>
    /// Batched 2-D real-input DFT over the last two axes: x [batch, h, w] to y [batch, h, w/2 + 1, 2]
    /// (NumPy's rfft2: rfft along w, then a complex DFT along h). Unnormalised.
    /// </summary>
    void Rfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w);

    /// <summary>
    /// Batched inverse of <see cref="Rfft2"/> (NumPy's irfft2): x [batch, h, w/2 + 1, 2] to y [batch, h, w] real:
    /// an inverse complex DFT along h, then <see cref="Irfft"/> along w; normalised by 1/(h·w).
    /// </summary>
    void Irfft2(DeviceBuffer<float> x, DeviceBuffer<float> y, int batch, int h, int w);

    // ---- Multi-gradient optimizers (issue 6) ----
    // SAM, finite-difference and double-backprop gradient regularization evaluate the gradient at perturbed
    // parameters: save θ, move it, take the second gradient, restore θ exactly, then combine the two gradients.

    /// <summary>
    /// Saves and moves a parameter: backup[i] = param[i]; then param[i] += scale · s_i · grad[i] with s_i = param[i]²
    /// when <paramref name="squareParam"/> (adaptive SAM's |θ|² scaling) and 1 otherwise. The product is one fused
    /// multiply-add on every kernel set, so the moved values agree bitwise between them.
    /// </summary>
    void Perturb(DeviceBuffer<float> param, DeviceBuffer<float> grad, DeviceBuffer<float> backup, float scale, bool squareParam);

    /// <summary>param[i] = backup[i]: copies the saved values back (bit-exact, never an inverse step).</summary>
    void Restore(DeviceBuffer<float> backup, DeviceBuffer<float> param);

    /// <summary>grad[i] = a · grad[i] + b · grad2[i] (one fused multiply-add on b · grad2).</summary>
    void CombineGradients(DeviceBuffer<float> grad, DeviceBuffer<float> grad2, float a, float b);

    /// <summary>
    /// Σ over every buffer k and element i of (w_k[i] · x_k[i])², or of x_k[i]² where <paramref name="weights"/> is
    /// null or its k-th entry is null: the squared global norm of a list of gradients (weights: adaptive SAM's
    /// || |θ| ⊙ g ||²). Accumulates in double on the CPU set; on ILGPU each group folds a float partial with a
    /// shared-memory tree and the host adds the partials in double. Weight buffers must be as long as their x.
    /// </summary>
    double SumOfSquares(IReadOnlyList<DeviceBuffer<float>> buffers, IReadOnlyList<DeviceBuffer<float>?>? weights = null);
}
