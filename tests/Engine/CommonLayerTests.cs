using Engine.Autodiff;
using Engine.Kernels;
using Engine.Kernels.Cpu;
using Engine.Nn;

namespace Engine.Tests.EngineTests;

/// <summary>
/// Dropout, Embedding and the relative-L2 loss on both kernel sets: values against host computations, gradients,
/// train/eval behaviour, reproducibility and errors.
/// </summary>
public abstract class CommonLayerTests
{
    /// <summary>The device under test.</summary>
    protected abstract Device Device { get; }

    [Fact]
    public void Dropout_zeroes_a_fraction_p_scales_the_rest_and_passes_through_in_eval()
    {
        using var scope = new TensorScope();
        using var drop = new Dropout(0.3f, seed: 7);
        var x = Tensor.Ones([40, 50], Device);
        var y = drop.Forward(x).ToArray();
        int zeros = y.Count(v => v == 0f);
        Assert.All(y, v => Assert.True(v == 0f || Math.Abs(v - 1f / 0.7f) < 1e-6, $"{v}"));
        // 2000 draws at p = 0.3: mean 600, sd ≈ 20.5.
        Assert.InRange(zeros, 520, 680);
        drop.Eval();
        Assert.Same(x, drop.Forward(x));
        drop.Train();
        Assert.NotEqual(y, drop.Forward(x).ToArray()); // a new mask per call
    }

    [Fact]
    public void Dropout_masks_are_reproducible_from_seed_and_call_count()
    {
        using var scope = new TensorScope();
        var x = Tensor.Normal([7, 9], 3, device: Device);
        using var a = new Dropout(0.5f, seed: 11);
        using var b = new Dropout(0.5f, seed: 11);
        var a1 = a.Forward(x).ToArray();
        var a2 = a.Forward(x).ToArray();
        Assert.Equal(a1, b.Forward(x).ToArray());
        b.Calls = 1; // resume: the next call is the second
        Assert.Equal(a2, b.Forward(x).ToArray());
        Assert.Equal(2, b.Calls);
        // The same masks on the other kernel set (the counter-based generator is bitwise identical).
        var other = Device.Kind == DeviceKind.Cpu ? Device.Get(DeviceKind.IlgpuCpu) : Device.Cpu;
        using var c = new Dropout(0.5f, seed: 11);
        Assert.Equal(a1, c.Forward(x.To(other)).ToArray());
    }

    [Fact]
    public void Dropout_gradient_is_the_mask()
    {
        using var scope = new TensorScope();
        using var drop = new Dropout(0.25f, seed: 2);
        var x = Tensor.Normal([5, 6], 1, device: Device);
        x.RequiresGrad = true;
        var y = drop.Forward(x);
        y.Sum().Backward();
        var yv = y.ToArray();
        var xv = x.ToArray();
        var g = x.Grad!.ToArray();
        for (int i = 0; i < g.Length; i++) Assert.Equal(yv[i] == 0f ? 0f : yv[i] / xv[i], g[i], 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1.5f));
        Assert.Equal(0f, new Dropout(1f).Forward(x).Abs().Max().Item());
    }

    [Fact]
    public void Embedding_looks_up_rows_and_adds_gradients_of_repeated_indices()
    {
        using var scope = new TensorScope();
        using var emb = new Embedding(5, 3, seed: 1, device: Device);
        var table = emb.Weight.ToArray();
        var idx = Tensor.FromArray([4f, 0f, 4f, 2f, 1f, 4f], [2, 3], Device);
        var y = emb.Forward(idx);
        Assert.Equal([2, 3, 3], y.Shape);
        var yv = y.ToArray();
        int[] flat = [4, 0, 4, 2, 1, 4];
        for (int i = 0; i < 6; i++)
            for (int d = 0; d < 3; d++) Assert.Equal(table[flat[i] * 3 + d], yv[i * 3 + d]);
        y.Sum().Backward();
        // Rows 0, 1 and 2 are used once, row 3 never, row 4 three times.
        Assert.Equal([1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 0f, 0f, 0f, 3f, 3f, 3f], emb.Weight.Grad!.ToArray());
        GradCheck.Assert(_ => emb.Forward([3, 3, 0]).Tanh(), [emb.Weight], maxEntriesPerInput: 15);
        var e = Assert.Throws<ArgumentException>(() => emb.Forward([1, 5]));
        Assert.Contains("Embedding", e.Message);
        Assert.Contains("5", e.Message);
        Assert.Throws<ArgumentException>(() => emb.Forward(Tensor.FromArray([0.5f], [1], Device)));
    }

    [Fact]
    public void Relative_l2_matches_host_and_gradchecks()
    {
        using var scope = new TensorScope();
        var p = Tensor.Normal([3, 4, 2], 5, device: Device);
        var t = Tensor.Normal([3, 4, 2], 6, device: Device);
        var pv = p.ToArray();
        var tv = t.ToArray();
        double expected = 0;
        for (int b = 0; b < 3; b++)
        {
            double e = 0, n = 0;
            for (int i = 0; i < 8; i++)
            {
                e += Math.Pow(pv[b * 8 + i] - tv[b * 8 + i], 2);
                n += Math.Pow(tv[b * 8 + i], 2);
            }
            expected += Math.Sqrt(e / n) / 3;
        }
        Assert.Equal(expected, Losses.RelativeL2(p, t).Item(), 5);
        p.RequiresGrad = true;
        GradCheck.Assert(xs => Losses.RelativeL2(xs[0], t), [p]);
        Assert.Throws<ArgumentException>(() => Losses.RelativeL2(p, Tensor.Zeros([3, 8], Device)));
    }
}

/// <summary>The common layers on the CPU SIMD kernel set.</summary>
public sealed class CpuCommonLayerTests : CommonLayerTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);
}

/// <summary>The common layers on the ILGPU kernel set (CPU emulator).</summary>
[Collection("ilgpu")]
public sealed class IlgpuCommonLayerTests : CommonLayerTests
{
    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.IlgpuCpu);
}

/// <summary>Module summaries and the CPU thread setting (process-wide state: not run in parallel with other tests).</summary>
[Collection("ilgpu")]
public sealed class ModuleSummaryAndThreadTests
{
    [Fact]
    public void Module_tree_shows_names_settings_shapes_and_counts()
    {
        using var m = new Sequential(new Linear(64, 128, seed: 1, device: Device.Cpu), new ReLU(), new Dropout(0.1f),
            new Linear(128, 2, bias: false, seed: 2, device: Device.Cpu));
        var text = m.ToString();
        Assert.Equal(
            "Sequential (8,576 parameters)\n" +
            "  (0): Linear(64 → 128) (8,320 parameters)\n" +
            "    weight [128, 64]\n" +
            "    bias [128]\n" +
            "  (1): ReLU\n" +
            "  (2): Dropout(p=0.1)\n" +
            "  (3): Linear(128 → 2, no bias) (256 parameters)\n" +
            "    weight [2, 128]", text);
        using var mixer = new Mixer(8, 4, 6, 1, 5, 7, seed: 1, device: Device.Cpu);
        var mt = mixer.ToString();
        Assert.StartsWith($"Mixer(", mt);
        Assert.Contains($"({mixer.ParameterCount:N0} parameters)", mt.Split('\n')[0]);
        Assert.Contains("input_permutation (index buffer, 24 entries)", mt);
    }

    [Fact]
    public void Cpu_thread_count_limits_the_threads_a_kernel_uses_and_keeps_results()
    {
        int saved = CpuThreads.Count;
        try
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuThreads.Count = 0);
            var x = Tensor.Normal([300, 300], 1, device: Device.Cpu);
            var w = Tensor.Normal([300, 300], 2, device: Device.Cpu);
            var many = (x.MatMul(w).Sum(1) + x.Exp().Sum()).ToArray();
            CpuThreads.Count = 1;
            var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
            CpuParallel.For(1 << 20, 1024, (_, _) => threads[Environment.CurrentManagedThreadId] = true);
            Assert.Single(threads);
            Assert.Equal(Environment.CurrentManagedThreadId, threads.Keys.Single());
            var one = (x.MatMul(w).Sum(1) + x.Exp().Sum()).ToArray();
            for (int i = 0; i < many.Length; i++) Assert.True(Math.Abs(one[i] - many[i]) <= 1e-3 * Math.Abs(many[i]) + 1e-3, $"{i}: {one[i]} vs {many[i]}");
            CpuThreads.Count = 2;
            Assert.Equal(2, CpuThreads.Count);
        }
        finally
        {
            CpuThreads.Count = saved;
        }
    }
}
