using Engine.Autodiff;
using Engine.Kernels;

namespace Engine.Tests.Autodiff;

/// <summary>
/// <see cref="Autograd.Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor}?, bool)"/> and
/// <see cref="Autograd.Hvp"/>: Hessian-vector products against analytic Hessians (quadratic, logistic regression),
/// against a double-precision reference Hessian of a 2-layer tanh MLP, and against finite differences of gradients.
/// </summary>
public class HessianVectorTests
{
    private static readonly Device D = Device.Cpu;

    private static double[] Rand(Random rng, int n, double scale = 1) =>
        Enumerable.Range(0, n).Select(_ => scale * (rng.NextDouble() * 2 - 1)).ToArray();

    private static Tensor T(double[] v, int[] shape, bool grad = false) =>
        Tensor.FromArray(v.Select(x => (float)x).ToArray(), shape, D, grad);

    private static double[] MatVec(double[,] h, double[] v)
    {
        int n = v.Length;
        var r = new double[n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) r[i] += h[i, j] * v[j];
        return r;
    }

    private static void AssertClose(double[] expected, float[] actual, double rel, string what)
    {
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= rel * scale + 1e-6,
                $"{what}[{i}]: expected {expected[i]:G6}, got {actual[i]:G6} (scale {scale:G3})");
    }

    [Fact]
    public void QuadraticHvpIsTheSymmetrisedMatrix()
    {
        // L = ½ xᵀ A x with A not symmetric: H = (A + Aᵀ)/2.
        const int n = 9;
        var rng = new Random(1);
        var a = Rand(rng, n * n);
        var x0 = Rand(rng, n);
        var v = Rand(rng, n);
        using var scope = new TensorScope();
        var x = T(x0, [n, 1], grad: true);
        var at = T(a, [n, n]);
        var loss = (x * at.MatMul(x)).Sum() * 0.5f;
        var hv = Autograd.Hvp(loss, [x], [T(v, [n, 1])])[0].ToArray();
        var h = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) h[i, j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        AssertClose(MatVec(h, v), hv, 1e-5, "quadratic Hv");
        Assert.Null(x.Grad); // functional: nothing accumulated
    }

    [Fact]
    public void LogisticRegressionHvpMatchesAnalyticHessian()
    {
        // L = mean(softplus(z) - y z), z = X w: H = Xᵀ diag(σ(z)(1-σ(z))) X / m.
        const int m = 23, d = 7;
        var rng = new Random(2);
        var xs = Rand(rng, m * d);
        var ys = Enumerable.Range(0, m).Select(_ => (double)rng.Next(2)).ToArray();
        var w0 = Rand(rng, d, 0.7);
        var v = Rand(rng, d);
        using var scope = new TensorScope();
        var w = T(w0, [d, 1], grad: true);
        var z = T(xs, [m, d]).MatMul(w);
        var loss = ((z.Exp() + 1f).Log() - T(ys, [m, 1]) * z).Mean();
        var hv = Autograd.Hvp(loss, [w], [T(v, [d, 1])])[0].ToArray();
        var h = new double[d, d];
        for (int r = 0; r < m; r++)
        {
            double zr = 0;
            for (int j = 0; j < d; j++) zr += xs[r * d + j] * w0[j];
            double s = 1 / (1 + Math.Exp(-zr)), c = s * (1 - s) / m;
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++) h[i, j] += c * xs[r * d + i] * xs[r * d + j];
        }
        AssertClose(MatVec(h, v), hv, 1e-4, "logistic Hv");
    }

    /// <summary>A 2-layer tanh MLP with scalar output and squared loss, L = ½ mean((w2ᵀ tanh(W1 x)) - y)², over params [W1 | w2].</summary>
    private const int In = 3, Hid = 4, Rows = 6;

    private static double HostLoss(double[] p, double[] xs, double[] ys)
    {
        double l = 0;
        for (int r = 0; r < Rows; r++)
        {
            double f = 0;
            for (int h = 0; h < Hid; h++)
            {
                double a = 0;
                for (int i = 0; i < In; i++) a += xs[r * In + i] * p[i * Hid + h];
                f += Math.Tanh(a) * p[In * Hid + h];
            }
            l += 0.5 * (f - ys[r]) * (f - ys[r]);
        }
        return l / Rows;
    }

    /// <summary>The reference Hessian in double: central differences of the loss, step 1e-4 (error ~1e-8).</summary>
    private static double[,] HostHessian(double[] p, double[] xs, double[] ys)
    {
        int n = p.Length;
        var h = new double[n, n];
        const double e = 1e-4;
        double F(int i, double di, int j, double dj)
        {
            var q = (double[])p.Clone();
            q[i] += di;
            q[j] += dj;
            return HostLoss(q, xs, ys);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                h[i, j] = (F(i, e, j, e) - F(i, e, j, -e) - F(i, -e, j, e) + F(i, -e, j, -e)) / (4 * e * e);
        return h;
    }

    private static (Tensor W1, Tensor W2, Func<Tensor> Loss) EngineMlp(double[] p, double[] xs, double[] ys)
    {
        var w1 = T(p[..(In * Hid)], [In, Hid], grad: true);
        var w2 = T(p[(In * Hid)..], [Hid, 1], grad: true);
        var x = T(xs, [Rows, In]);
        var y = T(ys, [Rows, 1]);
        return (w1, w2, () => ((x.MatMul(w1).Tanh().MatMul(w2) - y).Square() * 0.5f).Mean());
    }

    [Fact]
    public void TanhMlpHvpMatchesReferenceHessianAndGradientDifferences()
    {
        var rng = new Random(3);
        int n = In * Hid + Hid;
        var p = Rand(rng, n, 0.8);
        var xs = Rand(rng, Rows * In, 1.2);
        var ys = Rand(rng, Rows);
        var v = Rand(rng, n);
        var hRef = HostHessian(p, xs, ys);
        using var scope = new TensorScope();
        var (w1, w2, lossFn) = EngineMlp(p, xs, ys);
        var hv = Autograd.Hvp(lossFn(), [w1, w2], [T(v[..(In * Hid)], [In, Hid]), T(v[(In * Hid)..], [Hid, 1])]);
        var got = hv[0].ToArray().Concat(hv[1].ToArray()).ToArray();
        AssertClose(MatVec(hRef, v), got, 1e-4, "MLP Hv vs reference Hessian");

        // Central differences of the engine's own gradients: (g(θ + h v) - g(θ - h v)) / 2h.
        const double step = 1e-2;
        float[] GradAt(double sign)
        {
            var q = p.Select((x, i) => x + sign * step * v[i]).ToArray();
            var (a, b, f) = EngineMlp(q, xs, ys);
            var g = Autograd.Grad(f(), [a, b]);
            return g[0]!.ToArray().Concat(g[1]!.ToArray()).ToArray();
        }
        var gp = GradAt(1);
        var gm = GradAt(-1);
        var fd = gp.Select((x, i) => ((double)x - gm[i]) / (2 * step)).ToArray();
        AssertClose(fd, got, 2e-3, "MLP Hv vs gradient differences");
    }

    [Fact]
    public void GradReturnsGradientsWithoutAccumulatingAndNullForUnusedInputs()
    {
        using var scope = new TensorScope();
        var a = Tensor.FromArray([1f, 2f, 3f], [3], D, requiresGrad: true);
        var b = Tensor.FromArray([4f], [1], D, requiresGrad: true);
        var h = a * a; // intermediate input
        var loss = (h * 3f).Sum();
        var g = Autograd.Grad([loss], [a, b, h]);
        Assert.Equal([6f, 12f, 18f], g[0]!.ToArray());
        Assert.Null(g[1]);
        Assert.Equal([3f, 3f, 3f], g[2]!.ToArray());
        Assert.Null(a.Grad);
        Assert.Null(b.Grad);
        // Two outputs with explicit output gradients: Σ ⟨go_k, y_k⟩.
        var g2 = Autograd.Grad([a * 2f, a.Sum()], [a], [Tensor.FromArray([1f, 0f, -1f], [3], D), Tensor.Scalar(5f, D)]);
        Assert.Equal([7f, 5f, 3f], g2[0]!.ToArray());
    }

    [Fact]
    public void GradWithCreateGraphIsDifferentiable()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray([0.5f, -1.5f], [2], D, requiresGrad: true);
        var g = Autograd.Grad((x * x * x).Sum(), [x], createGraph: true)[0]!; // 3x²
        Assert.True(g.RequiresGrad);
        var gg = Autograd.Grad(g.Sum(), [x])[0]!; // 6x
        Assert.Equal([3f, -9f], gg.ToArray());
    }

    [Fact]
    public void HvpOfALinearLossIsZeroAndBadInputIsClear()
    {
        using var scope = new TensorScope();
        var w = Tensor.FromArray([1f, 2f], [2], D, requiresGrad: true);
        var c = Tensor.FromArray([3f, 4f], [2], D);
        var hv = Autograd.Hvp((w * c).Sum(), [w], [c]);
        Assert.Equal([0f, 0f], hv[0].ToArray());
        Assert.Throws<ArgumentException>(() => Autograd.Hvp((w * c).Sum(), [w], [Tensor.Zeros([3], D)]));
        Assert.Throws<ArgumentException>(() => Autograd.Hvp(w * c, [w], [c]));
        Assert.Throws<ArgumentException>(() => Autograd.Grad((w * c).Sum(), [c]));
        Assert.Throws<InvalidOperationException>(() => Autograd.Grad(c.Sum(), [w]));
        Assert.Throws<InvalidOperationException>(() => Autograd.Grad([w * c], [w]));
    }
}
