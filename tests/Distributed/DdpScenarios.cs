using Engine.Autodiff;
using Engine.Data;
using Engine.Distributed;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;
using Engine.Spn;

namespace Engine.Tests.Distributed;

/// <summary>How a scenario's loss is computed from a batch.</summary>
public enum LossKind
{
    /// <summary>Cross-entropy of logits against labels.</summary>
    Classify,
    /// <summary>Mean squared error against targets.</summary>
    Regress,
    /// <summary>Negative mean log-likelihood (density estimation).</summary>
    Density,
}

/// <summary>
/// One small data-parallel training run: a model, an optimizer, synthetic data and a global batch. The same
/// definitions drive the ranks (in-process threads or MPI processes) and the references they are compared with.
/// </summary>
public sealed record DdpScenario(string Name, Func<int, Module> CreateModel, Func<IReadOnlyList<Tensor>, Optimizer> CreateOptimizer,
    Func<Dataset> CreateData, LossKind Loss, int GlobalBatch = 16, int Steps = 20);

/// <summary>The scenarios, the data-parallel training loop and its two references.</summary>
public static class DdpScenarios
{
    private static Device Cpu => Device.Cpu;

    /// <summary>Every scenario by name.</summary>
    public static IReadOnlyDictionary<string, DdpScenario> All { get; } = new[]
    {
        new DdpScenario("mlp", Mlp, ps => new Adam(ps, 1e-2f), () => Classification(16), LossKind.Classify),
        new DdpScenario("mixer", seed => new Mixer(4, 2, 8, 1, 8, 16, classes: 4, randomPermutations: true, seed: seed, device: Cpu),
            ps => new Adam(ps, 1e-2f), () => Classification(16), LossKind.Classify),
        new DdpScenario("fno", seed => new Fno1d(4, 8, blocks: 2, projectionHidden: 16, seed: (ulong)seed, device: Cpu),
            ps => new Adam(ps, 3e-3f), Operator, LossKind.Regress),
        new DdpScenario("spn", seed => new Spn.Spn(RegionGraph.RandomBinary(8, 2, 2, 5), 4, 4, seed: seed, device: Cpu),
            ps => new Adam(ps, 3e-2f), Binary, LossKind.Density),
        new DdpScenario("sam", Mlp, ps => new Sam(new Sgd(ps, 0.1f, momentum: 0.9f), rho: 0.05f), () => Classification(16), LossKind.Classify),
        new DdpScenario("fgr", Mlp, ps => new FiniteDifferenceGr(new Adam(ps, 1e-2f), gamma: 0.05f, epsilon: 0.05f), () => Classification(16), LossKind.Classify),
        new DdpScenario("dbgr", Mlp, ps => new DoubleBackpropGr(new Adam(ps, 1e-2f), gamma: 0.05f), () => Classification(16), LossKind.Classify),
    }.ToDictionary(s => s.Name);

    private static Module Mlp(int seed) =>
        new Sequential(new Linear(16, 24, seed: 10 * (ulong)seed, device: Cpu), new ReLU(), new Linear(24, 4, seed: 10 * (ulong)seed + 1, device: Cpu));

    /// <summary>96 samples of 16 features, 4 classes decided by which quarter holds the largest feature sum.</summary>
    private static Dataset Classification(int features)
    {
        var rng = new System.Random(11);
        int n = 96;
        var x = new float[n * features];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            var sums = new double[4];
            for (int j = 0; j < features; j++)
            {
                float v = (float)(rng.NextDouble() * 2 - 1);
                x[i * features + j] = v;
                sums[j * 4 / features] += v;
            }
            y[i] = Array.IndexOf(sums, sums.Max());
        }
        return new Dataset(x, [features], y);
    }

    /// <summary>96 smooth functions on 16 points and their running integrals.</summary>
    private static Dataset Operator()
    {
        var rng = new System.Random(12);
        int n = 96, s = 16;
        var x = new float[n * s];
        var t = new float[n * s];
        for (int i = 0; i < n; i++)
        {
            double a = rng.NextDouble() * 2 - 1, b = rng.NextDouble() * 2 - 1, acc = 0;
            for (int k = 0; k < s; k++)
            {
                double u = a * Math.Sin(2 * Math.PI * k / s) + b * Math.Cos(2 * Math.PI * k / s);
                acc += u / s;
                x[i * s + k] = (float)u;
                t[i * s + k] = (float)acc;
            }
        }
        return new Dataset(x, [s], targets: t, targetShape: [s]);
    }

    /// <summary>96 binary vectors of 8 variables from two correlated clusters.</summary>
    private static Dataset Binary()
    {
        var rng = new System.Random(13);
        int n = 96, d = 8;
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            bool cluster = rng.NextDouble() < 0.5;
            for (int j = 0; j < d; j++) x[i * d + j] = rng.NextDouble() < (cluster ^ (j % 2 == 0) ? 0.85 : 0.15) ? 1f : 0f;
        }
        return new Dataset(x, [d]);
    }

    /// <summary>The scenario's loss of <paramref name="model"/> on a batch.</summary>
    public static Tensor Loss(DdpScenario scenario, Module model, Batch batch) => scenario.Loss switch
    {
        LossKind.Classify => Losses.CrossEntropy(model.Forward(batch.X), batch.LabelIndex!),
        LossKind.Regress => Losses.Mse(model.Forward(batch.X), batch.Targets!),
        _ => -model.Forward(batch.X).Mean(),
    };

    /// <summary>The parameters' values, in registration order.</summary>
    public static float[][] Snapshot(Module model) => model.Parameters().Select(p => p.ToArray()).ToArray();

    /// <summary>
    /// Trains the scenario on this rank with <see cref="DistributedDataParallel"/>: each rank starts from its own
    /// random initialisation (seed 1 + 1000·rank, so only the broadcast makes them equal), takes its share of every
    /// global batch, and trains until the optimizer has taken <see cref="DdpScenario.Steps"/> steps. With
    /// <paramref name="resumeFrom"/> it first loads that checkpoint (written with any rank count) and skips the
    /// batches already trained on; with <paramref name="saveTo"/> it saves one at the end. Returns the final parameters.
    /// </summary>
    public static float[][] Train(DdpScenario scenario, Communicator communicator, DistributedDataParallelOptions? options = null,
        Action<int>? afterStep = null, string? resumeFrom = null, string? saveTo = null)
    {
        using var model = scenario.CreateModel(1 + 1000 * communicator.Rank);
        using var ddp = new DistributedDataParallel(model, communicator, options);
        using var optimizer = scenario.CreateOptimizer(model.Parameters());
        using var hook = ddp.RegisterOptimizer(optimizer);
        if (resumeFrom != null) DistributedCheckpoint.Load(communicator, model, resumeFrom, optimizer);
        var loader = new DataLoader(scenario.CreateData(), scenario.GlobalBatch, seed: 3, device: Cpu, sampler: new DistributedSampler(communicator));
        int step = 0, done = optimizer.StepCount;
        while (step < scenario.Steps)
        {
            foreach (var batch in loader.NextEpoch())
            {
                using var scope = new TensorScope();
                using (batch)
                {
                    if (step >= done) optimizer.StepOnLoss(() => Loss(scenario, ddp, batch));
                }
                afterStep?.Invoke(step);
                if (++step == scenario.Steps) break;
            }
        }
        ddp.VerifyReplicasInSync();
        if (saveTo != null) DistributedCheckpoint.Save(communicator, model, saveTo, optimizer);
        return Snapshot(model);
    }

    /// <summary>
    /// One process, one replica, batch <see cref="DdpScenario.GlobalBatch"/>: what the data-parallel run approximates.
    /// </summary>
    public static float[][] SingleProcess(DdpScenario scenario)
    {
        using var model = scenario.CreateModel(1);
        using var optimizer = scenario.CreateOptimizer(model.Parameters());
        var loader = new DataLoader(scenario.CreateData(), scenario.GlobalBatch, seed: 3, device: Cpu);
        int step = 0;
        while (step < scenario.Steps)
        {
            foreach (var batch in loader.NextEpoch())
            {
                using var scope = new TensorScope();
                using (batch) optimizer.StepOnLoss(() => Loss(scenario, model, batch));
                if (++step == scenario.Steps) break;
            }
        }
        return Snapshot(model);
    }

    /// <summary>
    /// The data-parallel step written out in one process: every gradient evaluation the optimizer asks for computes
    /// each rank's share's gradient separately, sums them in rank order (g₀ + g₁ + ...) and divides by the rank
    /// count, as the ranks' all-reduce does. For <see cref="DoubleBackpropGr"/>, whose gradient is not taken by a
    /// backward pass, it averages each share's combined gradient g + γ H g instead (what the wrapper does for it).
    /// </summary>
    public static float[][] SummedPartialGradients(DdpScenario scenario, int ranks)
    {
        using var model = scenario.CreateModel(1);
        var ps = model.Parameters();
        using var optimizer = scenario.CreateOptimizer(ps);
        var data = scenario.CreateData();
        var loaders = Enumerable.Range(0, ranks)
            .Select(r => new DataLoader(data, scenario.GlobalBatch, seed: 3, device: Cpu, sampler: new DistributedSampler(r, ranks))).ToArray();
        var dbgr = optimizer as DoubleBackpropGr;
        using var capture = dbgr == null ? null : new GradientCapture(ps);
        using var shareOptimizer = dbgr == null ? null : new DoubleBackpropGr(capture!, dbgr.Gamma);
        int step = 0;
        while (step < scenario.Steps)
        {
            var epochs = loaders.Select(l => l.NextEpoch().GetEnumerator()).ToArray();
            while (step < scenario.Steps && epochs.All(e => e.MoveNext()))
            {
                using var scope = new TensorScope();
                var batches = epochs.Select(e => e.Current).ToArray();
                if (dbgr != null)
                {
                    var shares = batches.Select(b =>
                    {
                        shareOptimizer!.Step(() => Loss(scenario, model, b));
                        return capture!.Take();
                    }).ToArray();
                    SetAverage(ps, shares);
                    dbgr.Inner.Step();
                }
                else
                {
                    optimizer.Step(() =>
                    {
                        Tensor? first = null;
                        var shares = batches.Select(b =>
                        {
                            foreach (var p in ps) p.ZeroGrad();
                            var loss = Loss(scenario, model, b);
                            loss.Backward();
                            first ??= loss;
                            return ps.Select(p => Owned(p.Grad!)).ToArray();
                        }).ToArray();
                        SetAverage(ps, shares);
                        return first;
                    });
                }
                foreach (var b in batches) b.Dispose();
                step++;
            }
        }
        return Snapshot(model);
    }

    /// <summary>Sets each parameter's gradient to (Σ_r shares[r]) / ranks, summed in rank order, and frees the shares.</summary>
    private static void SetAverage(IReadOnlyList<Tensor> ps, Tensor[][] shares)
    {
        for (int i = 0; i < ps.Count; i++)
        {
            var sum = shares[0][i];
            for (int r = 1; r < shares.Length; r++)
            {
                InPlace.Axpy(1f, shares[r][i], sum);
                shares[r][i].Dispose();
            }
            InPlace.Scale(sum, 1f / shares.Length);
            ps[i].ZeroGrad();
            ps[i].Grad = sum;
        }
    }

    private static Tensor Owned(Tensor g)
    {
        var copy = Tensor.Empty(g.Shape, g.Device);
        copy.Persistent = true;
        InPlace.Copy(g, copy);
        return copy;
    }

    /// <summary>A stand-in base optimizer that keeps the gradients it is asked to step with, for the references.</summary>
    private sealed class GradientCapture(IReadOnlyList<Tensor> parameters) : Optimizer
    {
        private readonly List<ParamGroup> groups = [new ParamGroup(parameters)];
        private Tensor[]? taken;

        public override IReadOnlyList<Tensor> Parameters => parameters;
        public override IReadOnlyList<ParamGroup> ParamGroups => groups;
        public override int StepCount => 0;

        public override void Step() => taken = parameters.Select(p => Owned(p.Grad!)).ToArray();

        public Tensor[] Take() => taken ?? throw new InvalidOperationException("no step was taken");

        public override StateDict StateDict() => throw new NotSupportedException();

        public override Action PrepareLoadStateDict(StateDict state, bool allowNonFinite = false) => throw new NotSupportedException();
    }
}
