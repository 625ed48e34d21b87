namespace Engine.Autodiff;

/// <summary>
/// Checks analytic gradients against central differences.
/// </summary>
/// <remarks>
/// The scalar checked is L = Σ w ⊙ f(inputs) with a fixed random projection w in [-1, 1], so every output element
/// contributes. The numeric derivative is (L(x + ε e_i) - L(x - ε e_i)) / 2ε with L accumulated in double on the host.
/// Tolerances: an entry passes when |analytic - numeric| ≤ atol + rtol·|numeric|. Defaults ε = 1e-3, atol = 1e-3,
/// rtol = 1e-2 suit float32: the truncation error is O(ε²·f''') ≈ 1e-6, and the rounding error of float32 outputs
/// is about 6e-8·|f|·√n / ε ≈ 1e-4 for outputs of order 1. Keep inputs away from kinks (relu at 0, |x| at 0, ties
/// of max), where central differences are meaningless.
/// </remarks>
public static class GradCheck
{
    /// <summary>Outcome of a check.</summary>
    /// <param name="Passed">True if every checked entry is within tolerance.</param>
    /// <param name="MaxAbsError">Largest |analytic - numeric| seen.</param>
    /// <param name="Checked">Number of entries checked.</param>
    /// <param name="Report">The worst entries, for a failure message.</param>
    public sealed record Result(bool Passed, double MaxAbsError, int Checked, string Report);

    /// <summary>
    /// Compares gradients of <paramref name="f"/> with respect to every input that requires gradients. At most
    /// <paramref name="maxEntriesPerInput"/> entries per input are probed (chosen at random, seeded).
    /// </summary>
    public static Result Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-3, double atol = 1e-3,
        double rtol = 1e-2, int maxEntriesPerInput = 48, int seed = 1)
    {
        foreach (var x in inputs)
            if (!x.IsLeaf) throw new ArgumentException($"gradcheck: input {x.Describe()} must be a leaf tensor.");

        double[] w;
        Tensor wT;
        using (GradMode.NoGrad())
        {
            var y0 = f(inputs);
            var rng = new Random(seed);
            w = new double[y0.Size];
            for (int i = 0; i < w.Length; i++) w[i] = rng.NextDouble() * 2 - 1;
            wT = Tensor.FromArray(w.Select(v => (float)v).ToArray(), y0.Shape, y0.Device);
        }

        foreach (var x in inputs) x.ZeroGrad();
        var y = f(inputs);
        if (!y.RequiresGrad) throw new ArgumentException("gradcheck: the function's output does not depend on any input that requires gradients.");
        Ops.Sum(y * wT).Backward();

        var report = new System.Text.StringBuilder();
        bool ok = true;
        double maxAbs = 0;
        int count = 0;
        var pick = new Random(seed + 7);
        for (int xi = 0; xi < inputs.Length; xi++)
        {
            var x = inputs[xi];
            if (!x.RequiresGrad) continue;
            var analytic = x.Grad?.ToArray() ?? new float[x.Size];
            var data = x.ToArray();
            var entries = Enumerable.Range(0, data.Length).ToArray();
            if (entries.Length > maxEntriesPerInput)
                entries = entries.OrderBy(_ => pick.Next()).Take(maxEntriesPerInput).ToArray();
            foreach (var i in entries)
            {
                float orig = data[i];
                data[i] = (float)(orig + eps);
                double plus = Evaluate(f, inputs, x, data, w);
                data[i] = (float)(orig - eps);
                double minus = Evaluate(f, inputs, x, data, w);
                data[i] = orig;
                x.CopyFrom(data);
                // The step actually taken in float32, not the nominal 2ε.
                double h = (double)(float)(orig + eps) - (float)(orig - eps);
                double numeric = (plus - minus) / h;
                double err = Math.Abs(analytic[i] - numeric);
                maxAbs = Math.Max(maxAbs, err);
                count++;
                if (err > atol + rtol * Math.Abs(numeric))
                {
                    ok = false;
                    if (report.Length < 2000)
                        report.AppendLine($"input {xi} {x.Describe()} entry {i}: analytic {analytic[i]:G6}, numeric {numeric:G6}, |diff| {err:G3}");
                }
            }
        }
        foreach (var x in inputs) x.ZeroGrad();
        return new Result(ok, maxAbs, count, report.ToString());
    }

    /// <summary>Like <see cref="Check"/>, but throws with the worst entries when the check fails.</summary>
    public static void Assert(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-3, double atol = 1e-3,
        double rtol = 1e-2, int maxEntriesPerInput = 48)
    {
        var r = Check(f, inputs, eps, atol, rtol, maxEntriesPerInput);
        if (!r.Passed)
            throw new InvalidOperationException($"gradcheck failed ({r.Checked} entries checked, max |diff| {r.MaxAbsError:G3}):\n{r.Report}");
    }

    private static double Evaluate(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor x, float[] data, double[] w)
    {
        x.CopyFrom(data);
        using var _ = GradMode.NoGrad();
        var y = f(inputs).ToArray();
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += w[i] * y[i];
        return s;
    }
}
