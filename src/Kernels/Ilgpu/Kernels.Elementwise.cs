using ILGPU;

namespace Engine.Kernels.Ilgpu;

/// <summary>Scalars of one fused SGD step.</summary>
internal struct SgdParams
{
    public float Lr, Momentum, Dampening, WeightDecay;
    /// <summary>1 when momentum is used (a velocity buffer is passed).</summary>
    public int UseMomentum;
    public int Nesterov;
    public int FirstStep;
}

/// <summary>Scalars of one fused Adam/AdamW step; bias corrections precomputed on the host.</summary>
internal struct AdamParams
{
    public float Lr, Beta1, Beta2, Eps, WeightDecay, BiasCorrection1, BiasCorrection2;
    public int Decoupled;
}

internal static partial class IlgpuKernels
{
    /// <summary><see cref="ScalarMath.Apply(UnaryOp, float)"/> without the throwing default (kernels cannot throw).</summary>
    internal static float ApplyUnary(int op, float x)
    {
        switch (op)
        {
            case (int)UnaryOp.Neg: return -x;
            case (int)UnaryOp.Exp: return MathF.Exp(x);
            case (int)UnaryOp.Log: return MathF.Log(x);
            case (int)UnaryOp.Sqrt: return MathF.Sqrt(x);
            case (int)UnaryOp.Relu: return x > 0f ? x : 0f;
            case (int)UnaryOp.GeluTanh:
                return 0.5f * x * (1f + MathF.Tanh(ScalarMath.SqrtTwoOverPi * (x + 0.044715f * x * x * x)));
            case (int)UnaryOp.GeluErf: return 0.5f * x * (1f + ScalarMath.Erf(x * ScalarMath.InvSqrt2));
            case (int)UnaryOp.Tanh: return MathF.Tanh(x);
            case (int)UnaryOp.Sigmoid: return 1f / (1f + MathF.Exp(-x));
            case (int)UnaryOp.Erf: return ScalarMath.Erf(x);
            case (int)UnaryOp.Abs: return MathF.Abs(x);
            case (int)UnaryOp.Sign: return x > 0f ? 1f : x < 0f ? -1f : 0f;
            case (int)UnaryOp.Step: return x > 0f ? 1f : 0f;
            case (int)UnaryOp.Square: return x * x;
            case (int)UnaryOp.Reciprocal: return 1f / x;
            default: return x;
        }
    }

    /// <summary><see cref="ScalarMath.Apply(BinaryOp, float, float)"/> without the throwing default.</summary>
    internal static float ApplyBinary(int op, float a, float b)
    {
        switch (op)
        {
            case (int)BinaryOp.Add: return a + b;
            case (int)BinaryOp.Sub: return a - b;
            case (int)BinaryOp.Mul: return a * b;
            case (int)BinaryOp.Div: return a / b;
            case (int)BinaryOp.Maximum: return a >= b ? a : b;
            case (int)BinaryOp.Minimum: return a <= b ? a : b;
            case (int)BinaryOp.Pow: return MathF.Pow(a, b);
            case (int)BinaryOp.Equal: return a == b ? 1f : 0f;
            case (int)BinaryOp.Greater: return a > b ? 1f : 0f;
            default: return a;
        }
    }

    internal static void Fill(ArrayView<float> dst, float value)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride) dst[i] = value;
    }

    internal static void RandomUniform(ArrayView<float> dst, ulong seed, float low, float high)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride)
            dst[i] = CounterRng.Uniform(seed, (ulong)i, low, high);
    }

    internal static void RandomNormal(ArrayView<float> dst, ulong seed, float mean, float std)
    {
        for (long i = GlobalStart; i < dst.Length; i += GlobalStride)
            dst[i] = CounterRng.Normal(seed, (ulong)i, mean, std);
    }

    internal static void Unary(ArrayView<float> x, ArrayView<float> y, int op)
    {
        for (long i = GlobalStart; i < x.Length; i += GlobalStride) y[i] = ApplyUnary(op, x[i]);
    }

    internal static void Affine(ArrayView<float> x, ArrayView<float> y, float scale, float shift)
    {
        for (long i = GlobalStart; i < x.Length; i += GlobalStride) y[i] = scale * x[i] + shift;
    }

    internal static void Axpy(ArrayView<float> x, ArrayView<float> y, float alpha)
    {
        for (long i = GlobalStart; i < x.Length; i += GlobalStride) y[i] += alpha * x[i];
    }

    /// <summary>y[i] = op(a[offA(i)], b[offB(i)]) over <paramref name="count"/> outputs.</summary>
    internal static void Binary(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, long count, StridedLayout layout, int op)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
        {
            var o = Offsets(i, layout);
            y[i] = ApplyBinary(op, a[o.A], b[o.B]);
        }
    }

    /// <summary>y[i] = x[offA(i)]: broadcasting and permutation.</summary>
    internal static void Gather(ArrayView<float> x, ArrayView<float> y, long count, StridedLayout layout)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
            y[i] = x[Offsets(i, layout).A];
    }

    internal static void Sgd(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> velocity, SgdParams p)
    {
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float w = param[i];
            float g = grad[i] + p.WeightDecay * w;
            if (p.UseMomentum != 0)
            {
                float v = p.FirstStep != 0 ? g : p.Momentum * velocity[i] + (1f - p.Dampening) * g;
                velocity[i] = v;
                g = p.Nesterov != 0 ? g + p.Momentum * v : v;
            }
            param[i] = w - p.Lr * g;
        }
    }

    internal static void Adam(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, AdamParams p)
    {
        for (long i = GlobalStart; i < param.Length; i += GlobalStride)
        {
            float w = param[i];
            float g = grad[i];
            if (p.Decoupled != 0) w *= 1f - p.Lr * p.WeightDecay;
            else g += p.WeightDecay * w;
            float mi = p.Beta1 * m[i] + (1f - p.Beta1) * g;
            float vi = p.Beta2 * v[i] + (1f - p.Beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            param[i] = w - p.Lr * (mi / p.BiasCorrection1) / (MathF.Sqrt(vi / p.BiasCorrection2) + p.Eps);
        }
    }

    /// <summary>y[r, c] = labels[r] == c, over rows * classes outputs.</summary>
    internal static void OneHot(ArrayView<int> labels, ArrayView<float> y, int classes, long count)
    {
        for (long i = GlobalStart; i < count; i += GlobalStride)
        {
            long r = i / classes;
            int c = (int)(i - r * classes);
            y[i] = labels[r] == c ? 1f : 0f;
        }
    }
}
