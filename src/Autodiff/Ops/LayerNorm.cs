using Engine.Kernels;

namespace Engine.Autodiff;

public static partial class Ops
{
    /// <summary>
    /// Layer normalisation over the last axis: (x - mean) / sqrt(var + eps) · gamma + beta, with the biased variance
    /// (as PyTorch). <paramref name="gamma"/> and <paramref name="beta"/> have the last axis' length; x may have any
    /// rank ≥ 1 (the leading axes are rows). Forward and backward are fused kernels (<c>ILayerNormKernels</c>, or their
    /// composite fallback on a kernel set without them); when the backward pass is itself recorded (createGraph), the
    /// same gradient is built from differentiable ops instead, so it can be differentiated again.
    /// </summary>
    public static Tensor LayerNorm(this Tensor x, Tensor gamma, Tensor beta, float eps = 1e-5f)
    {
        const string op = "layer_norm";
        CheckSameDevice(op, x, gamma);
        CheckSameDevice(op, x, beta);
        if (x.Rank < 1) throw new ArgumentException($"{op}: input {x.Describe()} needs at least one axis.");
        int d = x.shape[^1];
        if (gamma.Rank != 1 || gamma.shape[0] != d || beta.Rank != 1 || beta.shape[0] != d)
            throw new ArgumentException($"{op}: gamma {gamma.Describe()} and beta {beta.Describe()} must be [{d}] for input {x.Describe()}.");
        int rows = checked((int)Shape.Size(x.shape.AsSpan(0, x.Rank - 1)));
        var device = x.Device;
        var y = Tensor.Empty(x.shape, device);
        var mean = Tensor.Empty([rows], device);
        var rstd = Tensor.Empty([rows], device);
        var size = new LayerNormSize(rows, d);
        var stats = new LayerNormStats(mean.Buffer, rstd.Buffer);
        x.K.LayerNormKernels().LayerNorm(x.Buffer, gamma.Buffer, beta.Buffer, y.Buffer, stats, size, eps);
        return y.Record(op, [x, gamma, beta], g =>
        {
            if (!GradMode.IsEnabled)
            {
                // Plain backward pass: one fused kernel for all three gradients.
                var dx = Tensor.Empty(x.shape, device);
                var dgamma = Tensor.Empty([d], device);
                var dbeta = Tensor.Empty([d], device);
                x.K.LayerNormKernels().LayerNormBackward(g.Buffer, x.Buffer, new LayerNormStats(mean.Buffer, rstd.Buffer), gamma.Buffer,
                    new LayerNormGradients(dx.Buffer, dgamma.Buffer, dbeta.Buffer), size);
                return [KeepIf(dx, x.RequiresGrad), KeepIf(dgamma, gamma.RequiresGrad), KeepIf(dbeta, beta.RequiresGrad)];
            }
            return LayerNormBackwardRecorded(x, gamma, beta, g, eps);
        });
    }

    /// <summary><paramref name="t"/> when <paramref name="keep"/>, else disposes it and returns null.</summary>
    private static Tensor? KeepIf(Tensor t, bool keep)
    {
        if (keep) return t;
        t.Dispose();
        return null;
    }

    /// <summary>
    /// The LayerNorm gradient in differentiable ops (for createGraph): the row statistics are recomputed from x so that
    /// the result depends on x through the tape. dx = rstd · (dxhat - mean(dxhat) - xhat · mean(dxhat · xhat)),
    /// dgamma = Σ_rows g · xhat, dbeta = Σ_rows g.
    /// </summary>
    private static Tensor?[] LayerNormBackwardRecorded(Tensor x, Tensor gamma, Tensor beta, Tensor g, float eps)
    {
        var c = x - x.Mean(-1, keepDim: true);
        var rstd = (c.Square().Mean(-1, keepDim: true) + eps).Sqrt().Reciprocal();
        var xhat = c * rstd;
        Tensor? dx = null, dgamma = null, dbeta = null;
        if (x.RequiresGrad)
        {
            var dxhat = g * gamma;
            dx = rstd * (dxhat - dxhat.Mean(-1, keepDim: true) - xhat * (dxhat * xhat).Mean(-1, keepDim: true));
        }
        int[] lead = [.. Enumerable.Range(0, x.Rank - 1)];
        if (gamma.RequiresGrad) dgamma = lead.Length == 0 ? g * xhat : (g * xhat).Sum(lead);
        if (beta.RequiresGrad) dbeta = lead.Length == 0 ? g : g.Sum(lead);
        return [dx, dgamma, dbeta];
    }
}
