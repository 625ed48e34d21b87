using System.Diagnostics;
using Engine.Autodiff;
using Engine.Nn;
using Engine.Optim;
using Engine.Training;

namespace Engine.Samples;

/// <summary>
/// The `gr-diagonal` task: the solvable model behind the implicit bias of finite-difference gradient regularization
/// (Karakida et al. 2023). A diagonal linear network w = u ⊙ u - v ⊙ v (u = v = α·1 at the start, so w = 0) fits
/// noiseless sparse regression y = X w* with more features than samples (d &gt; n, w* k-sparse with entries ±1), so
/// infinitely many w interpolate the data and the optimizer's implicit bias picks one: the interpolator of minimal
/// "hyperbolic entropy" potential at the effective scales α_i = sqrt(u_i·v_i) (Woodworth et al. 2020; gradient flow
/// keeps them at α). Small α_i is ℓ1-like (sparse), large α_i ℓ2-like. Gradient regularization multiplies u_i·v_i by
/// exp(-8γ∫r_i² - 32γε∫r_i (A D r)_i) (r the gradient in w of the loss being stepped on, A = XᵀX/n of its samples,
/// D = diag(u² + v²); forward difference +ε, backward -ε). Every optimizer but the full-batch "gd" baseline steps on
/// the same random mini-batches (default 2 samples): there r_i² and r_i (A D r)_i are spread over all coordinates
/// (for one sample both are ∝ x_i²), so F-GR shrinks every scale, more with a larger ε, and picks sparser, better
/// minima. The task prints the test error (mean squared error on fresh samples), the ℓ1 norm of the solution and the
/// mean scales α_i / α on and off the support of w*, for GD, SGD, SAM, forward F-GR at several ε and backward F-GR.
/// </summary>
/// <remarks>
/// With full batches for every optimizer (`--batch 0`) the ordering reverses: r = A(w - w*) is concentrated on the
/// support of w*, so GR shrinks the support's scales far more than the rest, which makes the support costlier under
/// the potential and the solution denser (the same GD/SGD split Even et al. 2023 find for large step sizes); see
/// notes/opt.md for the numbers.
/// </remarks>
public static class GrDiagonalTask
{
    /// <summary>Every option the task reads besides the global ones (see <see cref="CommonOptions"/>).</summary>
    public static readonly IReadOnlyList<OptionSpec> OwnOptions =
    [
        Opt.Int("n", "training samples", 1, @default: "40"),
        Opt.Int("d", "features", 1, @default: "100"),
        Opt.Int("k", "non-zero entries of the true weights", 0, @default: "3"),
        Opt.Float("alpha", "initial scale of u and v", 0, minExclusive: true, @default: "0.1"),
        Opt.Float("lr", "learning rate of every run", 0, minExclusive: true, @default: "0.02"),
        Opt.Int("steps", "steps of every run", 1, @default: "4000; --quick 2000"),
        Opt.Float("gamma", "F-GR penalty strength", 0, @default: "0.05"),
        Opt.Floats("eps", "forward F-GR ascent steps", 0, minExclusive: true, @default: "0.05,0.2,0.5"),
        Opt.Float("beps", "backward F-GR descent step", 0, minExclusive: true, @default: "0.2"),
        Opt.Int("batch", "mini-batch of every run but gd (0: full batch)", 0, @default: "2"),
        Opt.Float("rho", "SAM radius", 0, @default: "0.05"),
        Opt.Float("noise", "label noise (train only)", 0, @default: "0"),
        Opt.Float("flood-level", "flood level b of the flooding runs (0: no flooding run)", 0, @default: "0.001"),
        Opt.Text("batches", "comma-separated batch sizes of the batch-size sweep (0: full batch)", "1,2,4,8,0"),
        CommonOptions.Seed,
        CompiledSteps.Option(),
    ];

    /// <summary>Settings of one experiment.</summary>
    /// <param name="Batch">Mini-batch size of every optimizer except the full-batch "gd" baseline (0: full batch for all).</param>
    /// <param name="BackwardEpsilon">Descent step of the backward F-GR run.</param>
    /// <param name="Flood">Flood level b of the flooding run (0: no flooding run).</param>
    /// <param name="Compile">Compile every run's training step (see <see cref="CompiledSteps"/>).</param>
    public sealed record Config(int N = 40, int D = 100, int K = 3, float Alpha = 0.1f, float Lr = 0.02f, int Steps = 4000,
        float Gamma = 0.05f, float[]? Epsilons = null, float Rho = 0.05f, int Seed = 1, int TestSamples = 2000, int CurvePoints = 40, float Noise = 0f,
        int Batch = 2, float BackwardEpsilon = 0.2f, float Flood = 0.001f, bool Compile = false)
    {
        /// <summary>The forward F-GR ascent steps (default 0.05, 0.2, 0.5).</summary>
        public float[] Eps => Epsilons ?? [0.05f, 0.2f, 0.5f];
    }

    /// <summary>Result of one training run.</summary>
    /// <param name="TestError">Mean squared error on the test samples.</param>
    /// <param name="L1">‖w‖₁ of the solution.</param>
    /// <param name="TrainLoss">Final training loss on all training samples (½ mean squared error).</param>
    /// <param name="TestCurve">Test error at evenly spaced steps.</param>
    /// <param name="LossCurve">Full training loss at the same steps.</param>
    /// <param name="AlphaEffSupport">Mean effective initialisation scale sqrt(u_i v_i) / α over the support of w*.</param>
    /// <param name="AlphaEffOffSupport">The same over the other coordinates.</param>
    /// <param name="Step">How the training step ran (eager or compiled, with its device counts).</param>
    public sealed record RunResult(double TestError, double L1, double TrainLoss, double[] TestCurve, double[] LossCurve,
        double AlphaEffSupport, double AlphaEffOffSupport, StepReport Step);

    /// <summary>The sparse-regression data: train X [n, d], y [n]; test X, y; and w*.</summary>
    public sealed record Problem(float[] X, float[] Y, float[] TestX, float[] TestY, float[] WStar, int N, int D);

    /// <summary>Draws the data from <paramref name="c"/>.Seed: Gaussian features, w* with k entries ±1 at random places.</summary>
    public static Problem MakeProblem(Config c)
    {
        var rng = new Random(c.Seed);
        double Normal()
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        var w = new float[c.D];
        foreach (var j in Enumerable.Range(0, c.D).OrderBy(_ => rng.Next()).Take(c.K)) w[j] = rng.Next(2) == 0 ? -1f : 1f;
        float[] Features(int rows) => Enumerable.Range(0, rows * c.D).Select(_ => (float)Normal()).ToArray();
        float[] Targets(float[] x, int rows)
        {
            var y = new float[rows];
            for (int i = 0; i < rows; i++)
            {
                double s = 0;
                for (int j = 0; j < c.D; j++) s += (double)x[i * c.D + j] * w[j];
                y[i] = (float)s;
            }
            return y;
        }
        var x = Features(c.N);
        var tx = Features(c.TestSamples);
        var y = Targets(x, c.N);
        for (int i = 0; i < y.Length; i++) y[i] += (float)(c.Noise * Normal()); // label noise (train only)
        return new Problem(x, y, tx, Targets(tx, c.TestSamples), w, c.N, c.D);
    }

    /// <summary>
    /// Trains u, v by steps of <paramref name="makeOptimizer"/> (given the two parameters, returns the optimizer; its
    /// Step(closure) is used) on mini-batches of <paramref name="batch"/> rows drawn with replacement (0: full batch;
    /// the draws depend only on the seed, so every optimizer sees the same batches, and both gradients of one step use
    /// the same batch) and returns the test error and ℓ1 norm of w = u⊙u - v⊙v. Each step is compiled when
    /// <paramref name="c"/>.Compile says so.
    /// </summary>
    public static RunResult Train(Problem pr, Config c, Kernels.Device device, Func<Tensor[], Optimizer> makeOptimizer, int batch = 0,
        Flooding? flooding = null)
    {
        using var u = Tensor.Full([pr.D, 1], c.Alpha, device);
        using var v = Tensor.Full([pr.D, 1], c.Alpha, device);
        u.RequiresGrad = true;
        v.RequiresGrad = true;
        u.Name = "u";
        v.Name = "v";
        using var x = Tensor.FromArray(pr.X, [pr.N, pr.D], device);
        using var y = Tensor.FromArray(pr.Y, [pr.N, 1], device);
        using var opt = makeOptimizer([u, v]);
        Tensor Loss(Tensor xb, Tensor yb)
        {
            var w = u * u - v * v;
            var r = xb.MatMul(w) - yb;
            return r.Square().Mean() * 0.5f;
        }
        Tensor Step(Tensor xb, Tensor yb) => opt.Step(() =>
        {
            var l = flooding != null ? flooding.Apply(Loss(xb, yb)) : Loss(xb, yb);
            if (opt is not DoubleBackpropGr) l.Backward();
            return l;
        });
        using var trainingStep = TrainingStep.Create<Tensor>(Step, c.Compile);
        var batchRng = new Random(c.Seed + 1000);
        var bx = new float[Math.Max(batch, 0) * pr.D];
        var by = new float[Math.Max(batch, 0)];
        int every = Math.Max(1, c.Steps / Math.Max(1, c.CurvePoints));
        var testCurve = new List<double>();
        var lossCurve = new List<double>();
        double lastLoss = double.NaN;
        for (int step = 0; step < c.Steps; step++)
        {
            using var scope = new TensorScope();
            Tensor xb = x, yb = y;
            if (batch > 0)
            {
                for (int b = 0; b < batch; b++)
                {
                    int row = batchRng.Next(pr.N);
                    Array.Copy(pr.X, row * pr.D, bx, b * pr.D, pr.D);
                    by[b] = pr.Y[row];
                }
                xb = Tensor.FromArray(bx, [batch, pr.D], device);
                yb = Tensor.FromArray(by, [batch, 1], device);
            }
            trainingStep.Run(xb, yb);
            if ((step + 1) % every == 0 || step == c.Steps - 1)
            {
                using (GradMode.NoGrad()) lastLoss = Loss(x, y).Item();
                if (!double.IsFinite(lastLoss)) throw new InvalidOperationException($"gr-diagonal: training diverged at step {step + 1} (loss {lastLoss}); lower --lr.");
                lossCurve.Add(lastLoss);
                testCurve.Add(TestError(pr, Weights(u, v)));
            }
        }
        var wFinal = Weights(u, v);
        // Gradient flow conserves u_i·v_i (= α² at the start); what an optimizer changes it to is the effective
        // initialisation scale α_i = sqrt(u_i·v_i) that fixes which interpolating w it picks (smaller: closer to min ℓ1).
        var ua = u.ToArray();
        var va = v.ToArray();
        double Scale(bool onSupport) => Enumerable.Range(0, pr.D).Where(j => (pr.WStar[j] != 0) == onSupport)
            .Select(j => Math.Sqrt(Math.Max(0, (double)ua[j] * va[j])) / c.Alpha).DefaultIfEmpty(double.NaN).Average();
        return new RunResult(TestError(pr, wFinal), wFinal.Sum(a => Math.Abs((double)a)), lastLoss, testCurve.ToArray(), lossCurve.ToArray(),
            Scale(true), Scale(false), trainingStep.Report());
    }

    private static float[] Weights(Tensor u, Tensor v)
    {
        var ua = u.ToArray();
        var va = v.ToArray();
        return Enumerable.Range(0, ua.Length).Select(i => ua[i] * ua[i] - va[i] * va[i]).ToArray();
    }

    /// <summary>Mean squared error of w on the test samples.</summary>
    public static double TestError(Problem pr, float[] w)
    {
        int rows = pr.TestY.Length;
        double s = 0;
        for (int i = 0; i < rows; i++)
        {
            double p = 0;
            for (int j = 0; j < pr.D; j++) p += (double)pr.TestX[i * pr.D + j] * w[j];
            s += (p - pr.TestY[i]) * (p - pr.TestY[i]);
        }
        return s / rows;
    }

    /// <summary>
    /// Runs every optimizer of the experiment; keys: gd (full batch), sgd (plain steps on the mini-batches, only when
    /// <see cref="Config.Batch"/> &gt; 0), sam, fgr-eps&lt;ε&gt;..., bgr-eps&lt;ε&gt;; all but gd on the mini-batches. With a
    /// flood level b &gt; 0 also flood-b&lt;b&gt; (SGD on |L - b| + b) and fgr-flood-eps&lt;η&gt; (forward F-GR with
    /// ε = γ = η, the learning rate): near the flood level flooding alternates an ascent step θ + η g and a descent step,
    /// θ ← θ - η [g(θ + η g) - g(θ)], which is the finite-difference gradient of (η/2)‖g‖², i.e. F-GR's regulariser
    /// with ε = γ = η (Karakida et al. 2023) without F-GR's own loss-gradient term.
    /// </summary>
    public static Dictionary<string, RunResult> RunAll(Config c, Kernels.Device device, TextWriter? log = null)
    {
        var pr = MakeProblem(c);
        var runs = new Dictionary<string, (Func<Tensor[], Optimizer> Make, int Batch, Flooding? Flood)> { ["gd"] = (ps => new Sgd(ps, c.Lr), 0, null) };
        if (c.Batch > 0) runs["sgd"] = (ps => new Sgd(ps, c.Lr), c.Batch, null);
        runs["sam"] = (ps => new Sam(new Sgd(ps, c.Lr), c.Rho), c.Batch, null);
        foreach (var e in c.Eps) runs[$"fgr-eps{Fmt(e)}"] = (ps => new FiniteDifferenceGr(new Sgd(ps, c.Lr), c.Gamma, e, FdDirection.Forward), c.Batch, null);
        var eb = c.BackwardEpsilon;
        runs[$"bgr-eps{Fmt(eb)}"] = (ps => new FiniteDifferenceGr(new Sgd(ps, c.Lr), c.Gamma, eb, FdDirection.Backward), c.Batch, null);
        if (c.Flood > 0)
        {
            runs[$"flood-b{Fmt(c.Flood)}"] = (ps => new Sgd(ps, c.Lr), c.Batch, new Flooding(c.Flood));
            runs[$"fgr-flood-eps{Fmt(c.Lr)}"] = (ps => new FiniteDifferenceGr(new Sgd(ps, c.Lr), c.Lr, c.Lr, FdDirection.Forward), c.Batch, null);
        }
        var results = new Dictionary<string, RunResult>();
        foreach (var (name, (make, batch, flood)) in runs)
        {
            var sw = Stopwatch.StartNew();
            var r = Train(pr, c, device, make, batch, flood);
            results[name] = r;
            log?.WriteLine($"  {name,-14} test error {r.TestError,8:F4}   l1 {r.L1,7:F4}   train loss {r.TrainLoss,8:G3}   alpha_eff/alpha support {r.AlphaEffSupport:F3} off {r.AlphaEffOffSupport:F3}   ({sw.Elapsed.TotalSeconds:F1} s; {CompiledSteps.Describe(r.Step)})");
        }
        return results;
    }

    /// <summary>
    /// The batch-size sweep: for each batch size (0: full batch) the test error of plain steps and of forward F-GR at
    /// every ε of <paramref name="c"/>, all on the same draws of mini-batches; "ordered" says whether F-GR's error falls
    /// as ε grows and every F-GR run beats the plain steps (the paper's claim).
    /// </summary>
    public static List<Dictionary<string, object>> BatchSweep(Config c, int[] batches, Kernels.Device device, TextWriter? log = null)
    {
        var pr = MakeProblem(c);
        var rows = new List<Dictionary<string, object>>();
        // A run that diverges (the largest ε with single-sample batches can) counts as failing the claim.
        double Error(Func<Tensor[], Optimizer> make, int b)
        {
            try { return Train(pr, c, device, make, b).TestError; }
            catch (InvalidOperationException) { return double.NaN; }
        }
        foreach (int b in batches)
        {
            var errors = new Dictionary<string, double> { ["sgd"] = Error(ps => new Sgd(ps, c.Lr), b) };
            foreach (var e in c.Eps)
                errors[$"fgr-eps{Fmt(e)}"] = Error(ps => new FiniteDifferenceGr(new Sgd(ps, c.Lr), c.Gamma, e, FdDirection.Forward), b);
            var fgr = c.Eps.Select(e => errors[$"fgr-eps{Fmt(e)}"]).ToArray();
            bool ordered = fgr.All(double.IsFinite) && fgr.Zip(fgr.Skip(1)).All(p => p.Second < p.First) && fgr.All(v => v < errors["sgd"]);
            rows.Add(new Dictionary<string, object>
            {
                ["batch"] = b,
                ["test_error"] = errors.ToDictionary(kv => kv.Key, kv => double.IsFinite(kv.Value) ? (object)kv.Value : "diverged"),
                ["larger_eps_better"] = ordered,
            });
            log?.WriteLine($"  batch {(b == 0 ? "full" : b.ToString()),4}: {string.Join("  ", errors.Select(kv => $"{kv.Key} {(double.IsFinite(kv.Value) ? kv.Value.ToString("F4") : "diverged")}"))}  claim {(ordered ? "holds" : "fails")}");
        }
        return rows;
    }

    private static string Fmt(float e) => e.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Runs the task; returns the metrics written to gr-diagonal.json.</summary>
    public static Dictionary<string, object> Run(Options o, Kernels.Device device, TextWriter log)
    {
        bool quick = o.Quick;
        var d = new Config();
        var eps = o.Floats("eps");
        var c = new Config(
            N: o.Int("n", d.N), D: o.Int("d", d.D), K: o.Int("k", d.K), Alpha: o.Float("alpha", d.Alpha),
            Lr: o.Float("lr", d.Lr), Steps: o.Int("steps", quick ? d.Steps / 2 : d.Steps), Gamma: o.Float("gamma", d.Gamma),
            Epsilons: eps, Rho: o.Float("rho", d.Rho), Seed: o.Int("seed", d.Seed), Noise: o.Float("noise", d.Noise),
            Batch: o.Int("batch", d.Batch), BackwardEpsilon: o.Float("beps", d.BackwardEpsilon), Flood: o.Float("flood-level", d.Flood),
            Compile: CompiledSteps.Requested(o, "gr-diagonal"));
        var batches = o.Get("batches", "1,2,4,8,0").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(v => int.TryParse(v, out int b) && b >= 0 ? b : throw new ArgumentException($"gr-diagonal: --batches takes sizes >= 0 (0: full batch), got '{v}'."))
            .ToArray();
        log.WriteLine($"gr-diagonal: w = u*u - v*v, n {c.N}, d {c.D}, {c.K}-sparse truth, alpha {c.Alpha}, lr {c.Lr}, {c.Steps} steps on mini-batches of {(c.Batch > 0 ? c.Batch.ToString() : "all")} (gd: full batch), gamma {c.Gamma}, eps {string.Join(",", c.Eps.Select(Fmt))}, backward eps {Fmt(c.BackwardEpsilon)}, rho {c.Rho}, seed {c.Seed}, device {device.Name}");
        var results = RunAll(c, device, log);
        log.WriteLine($"gr-diagonal: batch-size sweep (test error; sgd and forward F-GR on the same mini-batches, 0 = full batch)");
        var sweep = BatchSweep(c, batches, device, log);
        var runs = results.ToDictionary(kv => kv.Key, kv =>
        {
            var row = new Dictionary<string, object>
            {
                ["test_error"] = kv.Value.TestError,
                ["l1"] = kv.Value.L1,
                ["train_loss"] = kv.Value.TrainLoss,
                ["alpha_eff_support"] = kv.Value.AlphaEffSupport,
                ["alpha_eff_off_support"] = kv.Value.AlphaEffOffSupport,
            };
            CompiledSteps.AddToRow(row, kv.Value.Step);
            return (object)row;
        });
        var curves = new Dictionary<string, double[]>();
        foreach (var (name, r) in results)
        {
            curves[name + "/test_error"] = r.TestCurve;
            curves[name + "/train_loss"] = r.LossCurve;
        }
        var metrics = new Dictionary<string, object>
        {
            ["task"] = "gr-diagonal",
            ["device"] = device.Name,
            ["n"] = c.N,
            ["d"] = c.D,
            ["k"] = c.K,
            ["alpha"] = c.Alpha,
            ["lr"] = c.Lr,
            ["steps"] = c.Steps,
            ["gamma"] = c.Gamma,
            ["epsilons"] = c.Eps,
            ["backward_epsilon"] = c.BackwardEpsilon,
            ["batch"] = c.Batch,
            ["rho"] = c.Rho,
            ["seed"] = c.Seed,
            ["flood_level"] = c.Flood,
            ["runs"] = runs,
            ["batch_sweep"] = sweep,
            ["paper_setting_note"] = "Karakida et al. (ICML 2023) analyse this diagonal linear network; their experiment's step size, batch, "
                + "initialisation scale and data could not be read here (only the paper's abstract was reachable), so this setting is ours",
            ["curves"] = curves,
        };
        // The top-level counts are the SAM run's (two gradient evaluations per step); every run has its own in "runs",
        // and "compiled" holds only when every run's step was (the batch sweep's runs are not counted).
        CompiledSteps.Add(metrics, results["sam"].Step);
        metrics["compiled"] = results.Values.All(r => r.Step.Compiled);
        metrics["step_counts_of"] = "the sam run; every run in \"runs\" has its own counts";
        return metrics;
    }
}
