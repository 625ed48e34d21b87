using Engine.Autodiff;
using Engine.Kernels;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.EngineTests;

public class ModuleTests
{
    private static readonly Device Cpu = Device.Cpu;

    private sealed class Forgetful : Module
    {
        // A trainable tensor held in a field but never registered: must be reported, not silently skipped.
        private readonly Tensor hidden = Tensor.Zeros([3], Device.Cpu);

        public Forgetful()
        {
            hidden.RequiresGrad = true;
            RegisterParameter("w", Tensor.Zeros([2], Device.Cpu));
        }

        public override Tensor Forward(Tensor input) => input * hidden;
    }

    private sealed class ForgetfulParent : Module
    {
        private readonly Linear child = new(2, 2, device: Device.Cpu);
        public override Tensor Forward(Tensor input) => child.Forward(input);
    }

    private sealed class Twice : Module
    {
        public Twice()
        {
            RegisterParameter("a", Tensor.Zeros([1], Device.Cpu));
            RegisterParameter("a", Tensor.Zeros([1], Device.Cpu));
        }

        public override Tensor Forward(Tensor input) => input;
    }

    [Fact]
    public void NamedParametersAreDottedPathsInRegistrationOrder()
    {
        using var m = new Sequential(new Linear(3, 4, device: Cpu), new ReLU(), new Linear(4, 2, bias: false, device: Cpu));
        var names = m.NamedParameters().Select(p => p.Name).ToArray();
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight" }, names);
        Assert.Equal(3 * 4 + 4 + 4 * 2, m.ParameterCount);
        Assert.All(m.Parameters(), p => Assert.True(p.RequiresGrad));
    }

    [Fact]
    public void UnregisteredTrainableTensorIsAnError()
    {
        using var m = new Forgetful();
        var e = Assert.Throws<InvalidOperationException>(() => m.Parameters());
        Assert.Contains("hidden", e.Message);
        Assert.Contains("RegisterParameter", e.Message);
    }

    [Fact]
    public void UnregisteredChildModuleIsAnError()
    {
        using var m = new ForgetfulParent();
        var e = Assert.Throws<InvalidOperationException>(() => m.NamedParameters());
        Assert.Contains("child", e.Message);
    }

    [Fact]
    public void DuplicateNameIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => new Twice());
        Assert.Contains("'a'", e.Message);
    }

    [Fact]
    public void EveryParameterReachesTheOptimizerAndChanges()
    {
        using var m = new Sequential(new Linear(3, 5, seed: 1, device: Cpu), new Tanh(), new Linear(5, 2, seed: 2, device: Cpu));
        var before = m.Parameters().Select(p => p.ToArray()).ToList();
        using var opt = new Sgd(m.Parameters(), 0.1f);
        var x = Tensor.Uniform([4, 3], 7, -1, 1, Cpu);
        var loss = m.Forward(x).Square().Mean();
        loss.Backward();
        opt.Step();
        var after = m.Parameters().Select(p => p.ToArray()).ToList();
        Assert.Equal(m.Parameters().Count, opt.Parameters.Count);
        for (int i = 0; i < before.Count; i++) Assert.NotEqual(before[i], after[i]);
    }

    [Fact]
    public void LinearMatchesHostComputation()
    {
        using var lin = new Linear(3, 2, seed: 3, device: Cpu);
        var w = lin.Weight.ToArray();
        var b = lin.Bias!.ToArray();
        var x = new float[] { 1, 2, 3, -1, 0.5f, 2 };
        var y = lin.Forward(Tensor.FromArray(x, [2, 3], Cpu)).ToArray();
        for (int r = 0; r < 2; r++)
            for (int o = 0; o < 2; o++)
            {
                double e = b[o];
                for (int i = 0; i < 3; i++) e += x[r * 3 + i] * w[o * 3 + i];
                Assert.Equal(e, y[r * 2 + o], 1e-5);
            }
    }

    [Fact]
    public void LinearRejectsWrongInputWidth()
    {
        using var lin = new Linear(3, 2, device: Cpu);
        var e = Assert.Throws<ArgumentException>(() => lin.Forward(Tensor.Zeros([4, 5], Cpu)));
        Assert.Contains("Linear", e.Message);
        Assert.Contains("[4, 5]", e.Message);
    }

    [Fact]
    public void InitializersHaveTheirDocumentedScale()
    {
        var w = Tensor.Zeros([256, 512], Cpu);
        Init.KaimingNormal(w, 5);
        double std = Std(w.ToArray());
        Assert.InRange(std, Math.Sqrt(2.0 / 512) * 0.95, Math.Sqrt(2.0 / 512) * 1.05);
        Init.XavierUniform(w, 6);
        var v = w.ToArray();
        double bound = Math.Sqrt(6.0 / (256 + 512));
        Assert.All(v, x => Assert.InRange(x, -bound, bound));
        Assert.InRange(Std(v), bound / Math.Sqrt(3) * 0.95, bound / Math.Sqrt(3) * 1.05);
        Init.KaimingUniform(w, 7);
        Assert.InRange(Std(w.ToArray()), Math.Sqrt(2.0 / 512) * 0.95, Math.Sqrt(2.0 / 512) * 1.05);
        Init.XavierNormal(w, 8);
        Assert.InRange(Std(w.ToArray()), Math.Sqrt(2.0 / 768) * 0.95, Math.Sqrt(2.0 / 768) * 1.05);
        var id = Tensor.Zeros([3, 4], Cpu);
        Init.Identity(id);
        Assert.Equal(new float[] { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0 }, id.ToArray());
    }

    private static double Std(float[] v)
    {
        double m = v.Average(x => (double)x);
        return Math.Sqrt(v.Average(x => (x - m) * (x - m)));
    }
}
