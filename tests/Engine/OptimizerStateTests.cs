using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Autodiff;
using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

/// <summary>
/// The optimizer-state contract: every optimizer, wrapper, parameter-group layout and scheduler resumes bitwise
/// from a checkpoint into fresh objects; wrappers save their base optimizer's state and nothing of their own; and
/// every mismatch is refused before the module, the optimizer or the generator changes.
/// </summary>
/// <remarks>In the <see cref="GlobalRandomCollection"/>: loading a checkpoint with an optimizer restores the global generator.</remarks>
[Collection(GlobalRandomCollection.Name)]
public class OptimizerStateTests
{
    private static readonly Device D = Device.Cpu;
    private static readonly int[] Labels = Enumerable.Range(0, 11).Select(i => i % 3).ToArray();

    private static Sequential Model(ulong seed) =>
        new(new Linear(5, 7, seed: seed, device: D), new Tanh(), new Linear(7, 3, seed: seed + 1, device: D));

    /// <summary>
    /// An optimizer from a spec "[wrapper/]base[+scheduler]": bases sgd, sgd-momentum, sgd-nesterov, adam, adamw (a
    /// "-groups" suffix splits the model into two groups with their own rate and decay); wrappers sam, asam, fgr-fwd,
    /// fgr-bwd, dbgr; schedulers step, multistep, cosine, onecycle, plateau.
    /// </summary>
    private static (Optimizer Optimizer, LrScheduler? Scheduler) Build(string spec, Sequential m)
    {
        var (rest, schedulerName) = spec.Split('+') is [var a, var b] ? (a, b) : (spec, null);
        var (wrapperName, baseName) = rest.Split('/') is [var w, var c] ? (w, c) : (null, rest);
        bool grouped = baseName.EndsWith("-groups");
        if (grouped) baseName = baseName[..^"-groups".Length];
        var ps = m.Parameters();
        // Layer 0's weight and bias, then layer 2's with their own rate and decay.
        ParamGroup[] Groups() => [new ParamGroup(ps.Take(2)), new ParamGroup(ps.Skip(2), learningRate: 0.03f, weightDecay: 0.05f)];
        Optimizer inner = (baseName, grouped) switch
        {
            ("sgd", false) => new Sgd(ps, 0.1f),
            ("sgd", true) => new Sgd(Groups(), 0.1f),
            ("sgd-momentum", false) => new Sgd(ps, 0.1f, momentum: 0.9f, dampening: 0.1f, weightDecay: 1e-3f),
            ("sgd-momentum", true) => new Sgd(Groups(), 0.1f, momentum: 0.9f, dampening: 0.1f, weightDecay: 1e-3f),
            ("sgd-nesterov", false) => new Sgd(ps, 0.1f, momentum: 0.9f, weightDecay: 1e-3f, nesterov: true),
            ("adam", false) => new Adam(ps, 1e-2f, weightDecay: 1e-3f),
            ("adam", true) => new Adam(Groups(), 1e-2f, weightDecay: 1e-3f),
            ("adamw", false) => new AdamW(ps, 1e-2f),
            ("adamw", true) => new AdamW(Groups(), 1e-2f),
            _ => throw new ArgumentException(spec),
        };
        Optimizer opt = wrapperName switch
        {
            null => inner,
            "sam" => new Sam(inner, 0.05f),
            "asam" => new Sam(inner, 0.5f, adaptive: true),
            "fgr-fwd" => new FiniteDifferenceGr(inner, 0.02f, 0.05f),
            "fgr-bwd" => new FiniteDifferenceGr(inner, 0.02f, 0.05f, FdDirection.Backward),
            "dbgr" => new DoubleBackpropGr(inner, 0.02f),
            _ => throw new ArgumentException(spec),
        };
        LrScheduler? scheduler = schedulerName switch
        {
            null => null,
            "step" => new StepLr(opt, 2, 0.5f),
            "multistep" => new MultiStepLr(opt, [1, 4], 0.3f),
            "cosine" => new WarmupCosineLr(opt, 2, 6, 1e-4f, 0.2f),
            "onecycle" => new OneCycleLr(opt, 0.05f, 6),
            "plateau" => new ReduceLrOnPlateau(opt, factor: 0.5f, patience: 0, threshold: 0.5),
            _ => throw new ArgumentException(spec),
        };
        return (opt, scheduler);
    }

    /// <summary>Steps <paramref name="from"/> to <paramref name="to"/> - 1 on step-dependent batches, stepping the scheduler after each.</summary>
    private static void Train(Sequential m, Optimizer opt, LrScheduler? scheduler, int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            using var scope = new TensorScope();
            var x = Tensor.Normal([11, 5], 100 + (ulong)i, 0f, 1.5f, D);
            var loss = opt.StepOnLoss(() => m.Forward(x).CrossEntropy(Labels));
            if (scheduler is ReduceLrOnPlateau plateau) plateau.Step(loss.Item());
            else scheduler?.Step();
        }
    }

    private static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    /// <summary>Every parameter's and optimizer tensor's bits and every optimizer scalar, to compare runs exactly.</summary>
    private static List<string> Fingerprint(Module m, Optimizer opt)
    {
        var r = m.Parameters().Select(p => string.Join(",", Bits(p))).ToList();
        foreach (var (key, v) in opt.StateDict())
            r.Add(key + "=" + (v.Kind == StateKind.Tensor ? string.Join(",", Bits(v.Tensor)) : v.ToString()));
        return r;
    }

    public static TheoryData<string> Specs => new()
    {
        "sgd", "sgd-momentum", "sgd-nesterov", "adam", "adamw", "sgd-momentum-groups", "adamw-groups",
        "sam/adam", "sam/sgd-momentum", "asam/adam", "asam/sgd", "fgr-fwd/adam", "fgr-fwd/sgd-momentum",
        "fgr-bwd/adam", "fgr-bwd/sgd", "dbgr/adam", "dbgr/sgd", "sam/adam-groups",
        "adam+step", "sgd-momentum+multistep", "adamw+cosine", "sgd+onecycle", "sgd-nesterov+plateau",
        "sam/adam+onecycle", "asam/sgd-groups+step", "fgr-fwd/sgd+plateau", "fgr-bwd/adamw+cosine", "dbgr/adam-groups+multistep",
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void ResumingFromACheckpointIsBitwiseEqualToAnUninterruptedRun(string spec)
    {
        const int k = 3;
        using var straight = Model(1);
        var (optS, schedS) = Build(spec, straight);
        using var _s = optS;
        Train(straight, optS, schedS, 0, 2 * k);

        byte[] file;
        using (var first = Model(1))
        {
            var (optA, schedA) = Build(spec, first);
            using var _a = optA;
            Train(first, optA, schedA, 0, k);
            using var ms = new MemoryStream();
            Checkpoint.Write(first, ms, optA);
            file = ms.ToArray();
        }

        // Fresh objects: another initialisation, a new optimizer and scheduler, everything from the file.
        using var resumed = Model(40);
        var (optB, schedB) = Build(spec, resumed);
        using var _b = optB;
        Checkpoint.Read(resumed, file, optB);
        Assert.Equal(k, optB.StepCount);
        Train(resumed, optB, schedB, k, 2 * k);

        Assert.Equal(Fingerprint(straight, optS), Fingerprint(resumed, optB));
        Assert.Equal(2 * k, optB.StepCount);
        Assert.Equal(optS.ParamGroups.Select(g => g.LearningRate), optB.ParamGroups.Select(g => g.LearningRate));
        Assert.Equal(schedS?.LastEpoch, schedB?.LastEpoch);
    }

    /// <summary>
    /// Loading into an optimizer that has already run further (its device step counts and uploaded learning rates
    /// ahead of the file's) resumes bitwise as well: the device copies follow the loaded host values.
    /// </summary>
    [Theory]
    [InlineData("adam+step")]
    [InlineData("sam/adamw-groups+cosine")]
    [InlineData("sgd-momentum-groups+multistep")]
    public void LoadingIntoAnOptimizerThatRanFurtherResumesBitwise(string spec)
    {
        const int k = 3;
        using var straight = Model(1);
        var (optS, schedS) = Build(spec, straight);
        using var _s = optS;
        Train(straight, optS, schedS, 0, k);
        using var ms = new MemoryStream();
        Checkpoint.Write(straight, ms, optS);
        Train(straight, optS, schedS, k, 2 * k);

        using var ahead = Model(40);
        var (optB, schedB) = Build(spec, ahead);
        using var _b = optB;
        Train(ahead, optB, schedB, 0, 2 * k + 1);
        Checkpoint.Read(ahead, ms.ToArray(), optB);
        Train(ahead, optB, schedB, k, 2 * k);

        Assert.Equal(Fingerprint(straight, optS), Fingerprint(ahead, optB));
    }

    [Fact]
    public void AWrappersCheckpointHoldsItsBaseOptimizersStateAndStepCount()
    {
        using var m = Model(3);
        var (opt, _) = Build("sam/adam", m);
        using var sam = (Sam)opt;
        Train(m, sam, null, 0, 2);
        Assert.Equal(2, sam.StepCount);
        Assert.Equal(2, sam.Inner.StepCount);

        var file = Safetensors.Read(Write(m, sam));
        Assert.Equal("Sam(Adam)", file.Metadata["engine.optimizer.type"]);
        Assert.Equal(2L, BinaryPrimitives.ReadInt64LittleEndian(file.Find("optimizer.step_count")!.Data.Span));
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(SafetensorsDType.F32, file.Find($"optimizer.state.{i}.exp_avg")!.DType);
            Assert.Equal(SafetensorsDType.F32, file.Find($"optimizer.state.{i}.exp_avg_sq")!.DType);
            Assert.Equal(2L, BinaryPrimitives.ReadInt64LittleEndian(file.Find($"optimizer.state.{i}.step")!.Data.Span));
        }
        // SAM's saved copy of the weights is scratch: the per-parameter entries are Adam's and nothing else.
        var perParameter = file.Tensors.Select(t => t.Name).Where(n => n.StartsWith("optimizer.state.") && n != "optimizer.state.params").ToList();
        Assert.Equal(12, perParameter.Count);
        Assert.All(perParameter, n => Assert.Contains(n.Split('.')[^1], new[] { "exp_avg", "exp_avg_sq", "step" }));
        Assert.Equal(0.05, BinaryPrimitives.ReadDoubleLittleEndian(file.Find("optimizer.wrapper.rho")!.Data.Span), 7);

        // The base optimizer saved alone records the same steps.
        var inner = Safetensors.Read(Write(m, sam.Inner));
        Assert.Equal("Adam", inner.Metadata["engine.optimizer.type"]);
        Assert.Equal(2L, BinaryPrimitives.ReadInt64LittleEndian(inner.Find("optimizer.step_count")!.Data.Span));
    }

    [Fact]
    public void StateDictsLoadInMemoryAndNameTheirLayout()
    {
        using var a = Model(1);
        var (optA, _) = Build("sgd-momentum-groups", a);
        using var _a = optA;
        Train(a, optA, null, 0, 2);
        var state = optA.StateDict();
        Assert.Equal("Sgd", state["type"].Text);
        Assert.Equal(2L, state["step_count"].Int64);
        Assert.Equal(2L, state["param_groups.count"].Int64);
        Assert.Equal([2, 3], state["param_groups.1.params"].Int32s);
        Assert.Equal((double)0.03f, state["param_groups.1.lr"].Float64);
        Assert.Equal((double)0.05f, state["param_groups.1.weight_decay"].Float64);
        Assert.Equal((double)0.9f, state["config.momentum"].Float64);
        Assert.False(state["config.nesterov"].Boolean);
        Assert.Equal([0, 1, 2, 3], state["state.params"].Int32s);
        Assert.Equal([7, 5], state["state.0.momentum_buffer"].Tensor.Shape);

        using var b = Model(2);
        var (optB, _) = Build("sgd-momentum-groups", b);
        using var _b = optB;
        optB.LoadStateDict(state);
        Assert.Equal(Fingerprint(a, optA).Skip(4), Fingerprint(b, optB).Skip(4));
        b.LoadStateDict(a.StateDict());
        Train(a, optA, null, 2, 3);
        Train(b, optB, null, 2, 3);
        Assert.Equal(Fingerprint(a, optA), Fingerprint(b, optB));
    }

    [Fact]
    public void ACheckpointWrittenOnOneDeviceLoadsOnAnother()
    {
        using var cpu = Model(1);
        var (optCpu, _) = Build("sam/adam-groups", cpu);
        using var _c = optCpu;
        Train(cpu, optCpu, null, 0, 2);
        var file = Write(cpu, optCpu);
        // This collection runs alone, so the ILGPU emulator is not shared with another test here.
        var ilgpu = Device.Get(DeviceKind.IlgpuCpu);
        using var other = new Sequential(new Linear(5, 7, seed: 8, device: ilgpu), new Tanh(), new Linear(7, 3, seed: 9, device: ilgpu));
        using var optOther = new Sam(new Adam([new ParamGroup(other.Parameters().Take(2)),
            new ParamGroup(other.Parameters().Skip(2), learningRate: 0.03f, weightDecay: 0.05f)], 1e-2f, weightDecay: 1e-3f), 0.05f);
        Checkpoint.Read(other, file, optOther);
        Assert.Same(ilgpu, optOther.StateDict()["state.0.exp_avg"].Tensor.Device);
        Assert.Equal(Fingerprint(cpu, optCpu), Fingerprint(other, optOther));
    }

    [Fact]
    public void LoadingForgetsStateOfParametersTheSavedRunNeverUpdated()
    {
        using var a = Model(1);
        using var optA = new Adam(a.Parameters(), 1e-2f);
        var state = optA.StateDict(); // no step taken: no per-parameter state
        Assert.Empty(state["state.params"].Int32s);
        using var b = Model(2);
        using var optB = new Adam(b.Parameters(), 1e-2f);
        Train(b, optB, null, 0, 1);
        optB.LoadStateDict(state);
        Assert.Empty(optB.StateDict()["state.params"].Int32s);
        Assert.Equal(0, optB.StepCount);
    }

    // ---------- refusals ----------

    private static byte[] Write(Module m, Optimizer? opt)
    {
        using var ms = new MemoryStream();
        Checkpoint.Write(m, ms, opt);
        return ms.ToArray();
    }

    /// <summary>A file of a Sam(Adam) run with a StepLr, two steps in.</summary>
    private static byte[] SavedRun(string spec = "sam/adam+step")
    {
        using var m = Model(1);
        var (opt, s) = Build(spec, m);
        using var _ = opt;
        Train(m, opt, s, 0, 2);
        return Write(m, opt);
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        // case, target optimizer spec, expected text in the message
        { "missing-step", "sam/adam+step", "entry 'state.1.step' is missing" },
        { "missing-moment", "sam/adam+step", "entry 'state.0.exp_avg' is missing" },
        { "wrong-shape", "sam/adam+step", "has shape [5, 7], expected [7, 5]" },
        { "nan-moment", "sam/adam+step", "NaN" },
        { "unknown-entry", "sam/adam+step", "'state.0.surprise'" },
        { "bogus-format", "sam/adam+step", "'engine.format' is 'bogus'" },
        { "newer-format", "sam/adam+step", "newer version of Engine (format 3)" },
        { "missing-format", "sam/adam+step", "not an Engine checkpoint" },
        { "format-1", "sam/adam+step", "format 1 files hold no restorable optimizer state" },
        { "same", "fgr-fwd/adam+step", "saved from Sam(Adam); this optimizer is FiniteDifferenceGr(Adam)" },
        { "same", "adam+step", "saved from Sam(Adam); this optimizer is Adam" },
        { "same", "sam/sgd+step", "saved from Sam(Adam); this optimizer is Sam(Sgd)" },
        { "same", "asam/adam+step", "hyper-parameter 'rho' is 0.05000000074505806 in the state but 0.5 here" },
        { "same", "sam/adam-groups+step", "the state has 1 parameter group(s), this optimizer 2" },
        { "same", "sam/adam", "attach the same scheduler" },
        { "same", "sam/adam+multistep", "saved from StepLr; this scheduler is MultiStepLr" },
        { "no-scheduler", "sam/adam+step", "holds no scheduler state" },
        { "plain-into-wrapper", "sam/adam+step", "saved from Adam; this optimizer is Sam(Adam)" },
        { "missing-optimizer", "sam/adam+step", "no optimizer state was saved" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void MismatchesAreRefusedBeforeAnythingChanges(string kind, string targetSpec, string expected)
    {
        byte[] file = kind switch
        {
            "no-scheduler" => SavedRun("sam/adam"),
            "plain-into-wrapper" => SavedRun("adam+step"),
            "missing-optimizer" => SavedWeights(),
            _ => Corrupt(SavedRun(), kind),
        };
        using var m = Model(9);
        var (opt, s) = Build(targetSpec, m);
        using var _ = opt;
        Train(m, opt, s, 0, 1);
        var before = Fingerprint(m, opt);
        var epoch = s?.LastEpoch;
        var generator = Engine.Random.StateDict();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Read(m, file, opt));
        Assert.Contains(expected, e.Message);
        Assert.Equal(before, Fingerprint(m, opt));
        Assert.Equal(epoch, s?.LastEpoch);
        Assert.Equal(generator["draws"].Int64, Engine.Random.StateDict()["draws"].Int64);
    }

    private static byte[] SavedWeights()
    {
        using var m = Model(1);
        return Write(m, null);
    }

    [Fact]
    public void FormatOneFilesLoadTheirWeights()
    {
        using var source = Model(1);
        var file = Corrupt(Write(source, null), "format-1");
        using var m = Model(2);
        Checkpoint.Read(m, file);
        Assert.Equal(source.Parameters().Select(Bits), m.Parameters().Select(Bits));
    }

    // ---------- file surgery ----------

    private static (JsonObject Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return ((JsonObject)JsonNode.Parse(Encoding.UTF8.GetString(file, 8, n))!, file[(8 + n)..]);
    }

    private static byte[] Join(JsonObject header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header.ToJsonString());
        var r = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)h.Length);
        h.CopyTo(r, 8);
        data.CopyTo(r, 8 + h.Length);
        return r;
    }

    private static long[] Offsets(JsonObject header, string name) =>
        header[name]!["data_offsets"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();

    /// <summary>Drops a tensor and its bytes, moving the data of the tensors after it.</summary>
    private static byte[] Remove(byte[] file, string name)
    {
        var (h, d) = Split(file);
        var off = Offsets(h, name);
        long size = off[1] - off[0];
        h.Remove(name);
        foreach (var (key, node) in h.ToList())
        {
            if (key == "__metadata__") continue;
            var o = Offsets(h, key);
            if (o[0] >= off[1]) node!["data_offsets"] = new JsonArray(o[0] - size, o[1] - size);
        }
        return Join(h, [.. d[..(int)off[0]], .. d[(int)off[1]..]]);
    }

    private static byte[] Corrupt(byte[] file, string kind)
    {
        var (h, d) = Split(file);
        var meta = h["__metadata__"]!.AsObject();
        switch (kind)
        {
            case "missing-step": return Remove(file, "optimizer.state.1.step");
            case "missing-moment": return Remove(file, "optimizer.state.0.exp_avg");
            case "wrong-shape":
                h["optimizer.state.0.exp_avg"]!["shape"] = new JsonArray(5, 7);
                return Join(h, d);
            case "nan-moment":
                BinaryPrimitives.WriteSingleLittleEndian(d.AsSpan((int)Offsets(h, "optimizer.state.0.exp_avg")[0] + 8), float.NaN);
                return Join(h, d);
            case "unknown-entry":
                h["optimizer.state.0.surprise"] = new JsonObject
                {
                    ["dtype"] = "I64", ["shape"] = new JsonArray(), ["data_offsets"] = new JsonArray(d.Length, d.Length + 8),
                };
                return Join(h, [.. d, 1, 0, 0, 0, 0, 0, 0, 0]);
            case "bogus-format": meta["engine.format"] = "bogus"; return Join(h, d);
            case "newer-format": meta["engine.format"] = "engine-checkpoint/3"; return Join(h, d);
            case "missing-format": meta.Remove("engine.format"); return Join(h, d);
            case "format-1": meta["engine.format"] = "engine-checkpoint/1"; return Join(h, d);
            case "same": return file;
            default: throw new ArgumentException(kind);
        }
    }
}
